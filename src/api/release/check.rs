//! The checks of `POST /release`'s body: every field in one pass, each refusal recorded.

use super::{
    callback::CallbackHeaders,
    mode::{Mode, requested_mode},
    request::ReleaseRequest,
    values::{ApproversValue, ReleaseIdValue},
};
use crate::{
    api::http::{
        problem::{Problem, ProblemCode},
        received::Received,
        refusals::Refusals,
        text::Text,
    },
    domain::{
        approver::ApproverEmail,
        link::ReleaseUrl,
        macros::unresolved_macro,
        release::{
            FieldError, NewRelease, Phase, ReleaseKey, check_approver_count, parse_definition_name,
            parse_release_id, parse_release_name, parse_stage,
        },
    },
};

/// What a body that passed every check asks for.
pub struct Asked {
    /// The release, validated.
    pub new: NewRelease,
    /// Poll or callback mode.
    pub mode: Mode,
}

impl ReleaseRequest {
    /// Checks every field in one pass, with the `mode` parameter and the callback
    /// headers: missing, of the wrong type, holding a pipeline macro `$(…)` (callback
    /// fields excepted: only callback mode reads them), or breaking the field's rules;
    /// `Approvers` only where `approvers_allowed` (otherwise whoever can edit a
    /// pipeline could name themselves). Fails with one problem naming every refusal.
    pub fn check(
        &self,
        approvers_allowed: bool,
        mode: Option<&str>,
        headers: &CallbackHeaders,
    ) -> Result<Asked, Problem> {
        let mut refusals = Refusals::default();
        let r = &mut refusals;
        let name = required(r, "ReleaseName", &self.release_name, parse_release_name);
        let release_id = self
            .release_id
            .read(r, "ReleaseId")
            .map(ReleaseIdValue::to_text);
        let release_id = release_id.and_then(|id| {
            r.check("ReleaseId", no_macro("ReleaseId", &id))?;
            r.check("ReleaseId", parse_release_id(&id).map_err(invalid))
        });
        let team_project = required(
            r,
            "TeamProject",
            &self.team_project,
            ReleaseKey::parse_team_project,
        );
        let stage = optional(r, "Stage", &self.stage, |s| parse_stage(s).map_err(invalid));
        let attempt = self.attempt(r);
        let approvers = self.approvers(r, approvers_allowed);
        let requested_for = optional(r, "RequestedFor", &self.requested_for, |text| {
            (!text.trim().is_empty())
                .then(|| {
                    ApproverEmail::parse(text)
                        .map_err(|e| Problem::invalid_field(format!("RequestedFor: {e}")))
                })
                .transpose()
        });
        let release_url = optional(r, "ReleaseUrl", &self.release_url, |url| {
            ReleaseUrl::parse("ReleaseUrl", url).map_err(invalid)
        });
        let definition_name = optional(r, "DefinitionName", &self.definition_name, |name| {
            parse_definition_name(name).map_err(invalid)
        });
        let mode = self.mode(r, mode);
        self.check_callback_lengths(headers, r);
        refusals.finish()?;
        let (
            Some(name),
            Some(release_id),
            Some(team_project),
            Some(stage),
            Some(attempt),
            Some(approvers),
            Some(requested_for),
            Some(release_url),
            Some(definition_name),
            Some(mode),
        ) = (
            name,
            release_id,
            team_project,
            stage,
            attempt,
            approvers,
            requested_for,
            release_url,
            definition_name,
            mode,
        )
        else {
            // Every `None` above recorded a refusal, so `finish` has failed already.
            return Err(Problem::internal());
        };
        let key = ReleaseKey::parse(&team_project, &release_id, &stage.unwrap_or_default())
            .and_then(|key| key.in_round(attempt.unwrap_or(1), Phase::Pre))
            .map_err(invalid)?;
        let mut new = NewRelease::parse(key, &name, approvers).map_err(invalid)?;
        new.requested_for = requested_for.flatten();
        new.release_url = release_url.flatten();
        new.definition_name = definition_name.flatten();
        Ok(Asked { new, mode })
    }

    /// `Attempt`, from 1; `Some(None)` when absent.
    fn attempt(&self, r: &mut Refusals) -> Option<Option<u32>> {
        let Some(attempt) = self.attempt.read(r, "Attempt")? else {
            return Some(None);
        };
        r.check("Attempt", no_macro("Attempt", &attempt.to_text()))?;
        r.check("Attempt", attempt.parse()).map(Some)
    }

    /// `Approvers`, de-duplicated; `Some(None)` when absent.
    fn approvers(&self, r: &mut Refusals, allowed: bool) -> Option<Option<Vec<ApproverEmail>>> {
        let Some(approvers) = self.approvers.read(r, "Approvers")? else {
            return Some(None);
        };
        let names_some = match approvers {
            ApproversValue::Text(text) => !text.trim().is_empty(),
            ApproversValue::List(items) => !items.is_empty(),
        };
        if names_some && !allowed {
            r.refuse(
                "Approvers",
                Problem::new(
                    ProblemCode::RequestApproversDisabled,
                    "Approvers: this service does not take approvers from the request; they come \
                     from its approval policies, approvers API or static list (an operator can \
                     set DEPLOY_GATE_REQUEST_APPROVERS=true to let requests name them)",
                ),
            );
            return None;
        }
        let texts: Vec<&str> = match approvers {
            ApproversValue::Text(text) => vec![text],
            ApproversValue::List(items) => items.iter().map(String::as_str).collect(),
        };
        for text in texts {
            r.check("Approvers", no_macro("Approvers", text))?;
        }
        let list = r.check("Approvers", approvers.parse())?;
        r.check("Approvers", check_approver_count(&list).map_err(invalid))?;
        Some(Some(list))
    }

    /// The mode asked for by the `mode` parameter and the body's `Mode`.
    fn mode(&self, r: &mut Refusals, query: Option<&str>) -> Option<Mode> {
        let body = self.mode.read(r, "Mode")?;
        match requested_mode(query, body.as_deref()) {
            Ok(mode) => Some(mode),
            Err(problem) => {
                let field = if problem.detail.starts_with("mode:") {
                    "mode"
                } else {
                    "Mode"
                };
                r.refuse(field, problem);
                None
            }
        }
    }
}

/// A required text field, read, free of pipeline macros and checked by `rule`.
fn required<R, V>(
    r: &mut Refusals,
    field: &str,
    received: &Received<Text<R>>,
    rule: impl FnOnce(&str) -> Result<V, FieldError>,
) -> Option<V> {
    let text = received.read(r, field)?;
    r.check(field, no_macro(field, text))?;
    r.check(field, rule(text).map_err(invalid))
}

/// An optional text field, read, free of pipeline macros and checked by `rule`;
/// `Some(None)` when absent.
fn optional<R, V>(
    r: &mut Refusals,
    field: &str,
    received: &Received<Option<Text<R>>>,
    rule: impl FnOnce(&str) -> Result<V, Problem>,
) -> Option<Option<V>> {
    let Some(text) = received.read(r, field)? else {
        return Some(None);
    };
    r.check(field, no_macro(field, text))?;
    r.check(field, rule(text)).map(Some)
}

/// Refuses `text` of `field` when it still holds a pipeline macro `$(…)`.
fn no_macro(field: &str, text: &str) -> Result<(), Problem> {
    match unresolved_macro(text) {
        Some(found) => Err(Problem::unresolved_macro(field, found)),
        None => Ok(()),
    }
}

fn invalid(err: FieldError) -> Problem {
    Problem::invalid_field(err.to_string())
}
