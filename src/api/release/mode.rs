//! Poll or callback mode of `POST /release`. Azure's Invoke REST API task and check send
//! the callback headers by default in every mode, so only `?mode=callback` or the body's
//! `Mode` asks for callback mode.

use crate::{api::http::problem::Problem, domain::macros::unresolved_macro};

/// How `POST /release` serves its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The caller polls; callback fields are ignored.
    Poll,
    /// The caller waits for a `TaskCompleted` event.
    Callback,
}

/// The mode asked for by the query parameter `mode` and the body field `Mode`; absent
/// means poll. Fails on another value (an empty one too, as the OpenAPI document says)
/// or when the two differ.
pub fn requested_mode(query: Option<&str>, body: Option<&str>) -> Result<Mode, Problem> {
    let query = parse("mode", query)?;
    let body = parse("Mode", body)?;
    match (query, body) {
        (Some(q), Some(b)) if q != b => Err(Problem::invalid_field(
            "the query parameter mode and the body field Mode differ; send one of them",
        )),
        (q, b) => Ok(q.or(b).unwrap_or(Mode::Poll)),
    }
}

fn parse(name: &str, value: Option<&str>) -> Result<Option<Mode>, Problem> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if let Some(found) = unresolved_macro(value) {
        return Err(Problem::unresolved_macro(name, found));
    }
    match value {
        "poll" => Ok(Some(Mode::Poll)),
        "callback" => Ok(Some(Mode::Callback)),
        _ => Err(Problem::invalid_field(format!(
            "{name}: must be `poll` or `callback`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_unless_callback_is_asked_for_one_way_or_both_alike() {
        assert_eq!(requested_mode(None, None), Ok(Mode::Poll));
        assert_eq!(requested_mode(Some("callback"), None), Ok(Mode::Callback));
        assert_eq!(requested_mode(None, Some("callback")), Ok(Mode::Callback));
        assert_eq!(
            requested_mode(Some("callback"), Some("callback")),
            Ok(Mode::Callback)
        );
        assert_eq!(requested_mode(Some("poll"), Some("poll")), Ok(Mode::Poll));
    }

    #[test]
    fn other_values_and_a_disagreement_are_refused() {
        assert!(requested_mode(Some("Callback"), None).is_err());
        assert!(requested_mode(None, Some("wait")).is_err());
        assert!(requested_mode(Some(""), None).is_err());
        assert!(requested_mode(None, Some(" ")).is_err());
        assert!(requested_mode(Some("poll"), Some("callback")).is_err());
        let problem = requested_mode(None, Some("$(Mode)")).unwrap_err();
        assert!(problem.kind.ends_with("unresolved-macro"), "{problem}");
    }
}
