//! Every refused field of one request at once: each check records its refusal and the
//! request goes on being checked, so a caller fixes everything in one round trip.

use poem_openapi::Object;
use serde::Serialize;

use super::problem::{Problem, ProblemCode};

/// One refused field or parameter, as a problem's `errors` lists it.
#[derive(Object, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field or parameter as the request names it, e.g. `ReleaseName`.
    pub field: String,
    /// What is wrong with it and what it takes, e.g. `must not be empty`.
    pub detail: String,
}

/// The kinds of refusal a request's fields can get, the most basic first: with several
/// refusals of different kinds, the problem's `type` is the first of them here.
const PRECEDENCE: [ProblemCode; 4] = [
    ProblemCode::InvalidRequest,
    ProblemCode::RequestApproversDisabled,
    ProblemCode::UnresolvedMacro,
    ProblemCode::InvalidField,
];

/// The refusals of one request's fields, in the order they were checked.
#[derive(Default)]
pub struct Refusals {
    found: Vec<(FieldProblem, Problem)>,
}

impl Refusals {
    /// Records `problem`, a refusal of `field` (its detail starting `field: `, as every
    /// field check words it).
    pub fn refuse(&mut self, field: &str, problem: Problem) {
        let detail = problem
            .detail
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(&problem.detail)
            .to_owned();
        let item = FieldProblem {
            field: field.to_owned(),
            detail,
        };
        self.found.push((item, problem));
    }

    /// The value of a check of `field`, or `None` with its refusal recorded.
    pub fn check<T>(&mut self, field: &str, checked: Result<T, Problem>) -> Option<T> {
        checked.map_err(|problem| self.refuse(field, problem)).ok()
    }

    /// `Ok` when nothing was refused; otherwise one problem naming every refusal in its
    /// `detail` and listing each in `errors`. A single refusal keeps its own `type` and
    /// `detail`.
    pub fn finish(mut self) -> Result<(), Problem> {
        match self.found.len() {
            0 => Ok(()),
            1 => {
                let (item, mut problem) = self.found.remove(0);
                problem.errors = Some(vec![item]);
                Err(problem)
            }
            _ => {
                let code = PRECEDENCE
                    .into_iter()
                    .find(|code| self.found.iter().any(|(_, p)| p.kind == code.urn()))
                    .unwrap_or(ProblemCode::InvalidField);
                let items: Vec<FieldProblem> = self.found.into_iter().map(|(i, _)| i).collect();
                let detail = items
                    .iter()
                    .map(|i| format!("{}: {}", i.field, i.detail))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut problem = Problem::new(code, detail);
                problem.errors = Some(items);
                Err(problem)
            }
        }
    }
}

/// The refusal of a required field or parameter that was not sent: field names are
/// case-sensitive, so `releaseName` does not stand for `ReleaseName`.
pub fn missing(field: &str) -> Problem {
    Problem::invalid_request(format!(
        "{field}: is required (field names are case-sensitive: {field})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refusal_keeps_its_problem_and_several_are_named_together() {
        let mut one = Refusals::default();
        assert_eq!(one.check("a", Ok::<_, Problem>(1)), Some(1));
        one.refuse("a", Problem::invalid_field("a: must not be empty"));
        let problem = one.finish().unwrap_err();
        assert_eq!(problem.detail, "a: must not be empty");
        assert_eq!(problem.kind, ProblemCode::InvalidField.urn());
        assert_eq!(
            problem.errors,
            Some(vec![FieldProblem {
                field: "a".into(),
                detail: "must not be empty".into()
            }])
        );

        let mut several = Refusals::default();
        several.refuse("a", Problem::invalid_field("a: must not be empty"));
        several.refuse("b", missing("b"));
        several.refuse("c", Problem::invalid_field("the two differ"));
        let problem = several.finish().unwrap_err();
        assert_eq!(
            problem.detail,
            "a: must not be empty; b: is required (field names are case-sensitive: b); c: the two differ"
        );
        assert_eq!(problem.kind, ProblemCode::InvalidRequest.urn());
        assert_eq!(problem.errors.map(|e| e.len()), Some(3));
        assert_eq!(Refusals::default().finish(), Ok(()));
    }
}
