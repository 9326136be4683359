//! A release awaiting approval: its identity and the validated creation request.

use super::{approver::ApproverEmail, link::ReleaseUrl};

/// Longest accepted `TeamProject`, `ReleaseName` or `Stage`, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest accepted `ReleaseId`, in characters.
pub const MAX_RELEASE_ID_CHARS: usize = 128;
/// Most approvers one release may name.
pub const MAX_APPROVERS: usize = 100;

/// Highest accepted deployment `Attempt`.
pub const MAX_ATTEMPT: u32 = 10_000;

/// Whether a round approves a deployment before it runs or after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before the deployment (Azure's `preDeploy`); the default.
    #[default]
    Pre,
    /// After the deployment (Azure's `postDeploy`).
    Post,
}

impl Phase {
    /// `pre` or `post`, as stored and as in `?Phase=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pre => "pre",
            Self::Post => "post",
        }
    }

    /// Reads `pre` or `post`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pre" => Some(Self::Pre),
            "post" => Some(Self::Post),
            _ => None,
        }
    }
}

/// What identifies a release's round of approval: (`TeamProject`, `ReleaseId`,
/// `Stage`) plus the deployment `Attempt` and the `Phase`. A stage is approved
/// once per attempt before its deployment, and again after it where Azure asks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReleaseKey {
    /// Azure DevOps project name.
    pub team_project: String,
    /// Release id as text (Azure substitutes `$(Release.ReleaseId)` as text).
    pub release_id: String,
    /// Gated stage or environment; empty when not given.
    pub stage: String,
    /// Deployment attempt of the stage, from 1.
    pub attempt: u32,
    /// Before or after the deployment.
    pub phase: Phase,
}

impl ReleaseKey {
    /// Validates the three named parts of the first attempt's pre-deployment
    /// round; `stage` may be empty, the others may not.
    pub fn parse(team_project: &str, release_id: &str, stage: &str) -> Result<Self, FieldError> {
        Ok(Self {
            team_project: Self::parse_team_project(team_project)?,
            release_id: parse_release_id(release_id)?,
            stage: parse_stage(stage)?,
            attempt: 1,
            phase: Phase::Pre,
        })
    }

    /// The same release and stage, in the round of `attempt` and `phase`.
    pub fn in_round(self, attempt: u32, phase: Phase) -> Result<Self, FieldError> {
        if !(1..=MAX_ATTEMPT).contains(&attempt) {
            return Err(FieldError::new(
                "Attempt",
                format!("must be between 1 and {MAX_ATTEMPT}"),
            ));
        }
        Ok(Self {
            attempt,
            phase,
            ..self
        })
    }

    /// Whether this is the first attempt's pre-deployment round, the one a
    /// path without `Attempt` and `Phase` names when it is the only one.
    pub fn is_first_round(&self) -> bool {
        self.attempt == 1 && self.phase == Phase::Pre
    }

    /// Path of the release's status, `/release/{TeamProject}/{ReleaseId}`, with
    /// `?Stage=` when it has one; every part percent-encoded.
    pub fn status_path(&self) -> String {
        self.path_under("/release")
    }

    /// `{base}/{TeamProject}/{ReleaseId}`, percent-encoded, with `?Stage=` when
    /// it has one and `Attempt`/`Phase` when they are not the first round's.
    pub fn path_under(&self, base: &str) -> String {
        let enc = |s: &str| {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        let mut path = format!(
            "{base}/{}/{}",
            enc(&self.team_project),
            enc(&self.release_id)
        );
        let mut query = Vec::new();
        if !self.stage.is_empty() {
            query.push(format!("Stage={}", enc(&self.stage)));
        }
        if !self.is_first_round() {
            query.push(format!("Attempt={}", self.attempt));
            query.push(format!("Phase={}", self.phase.as_str()));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        path
    }

    /// Validates a project name alone (e.g. a filter); surrounding spaces are dropped.
    pub fn parse_team_project(team_project: &str) -> Result<String, FieldError> {
        required_text("TeamProject", team_project, MAX_TEXT_CHARS)
    }

    /// `project/release-id[/stage][ (attempt 2, post)]`, for logs.
    pub fn display(&self) -> String {
        let mut shown = if self.stage.is_empty() {
            format!("{}/{}", self.team_project, self.release_id)
        } else {
            format!("{}/{}/{}", self.team_project, self.release_id, self.stage)
        };
        if !self.is_first_round() {
            shown.push_str(&format!(
                " (attempt {}, {})",
                self.attempt,
                self.phase.as_str()
            ));
        }
        shown
    }
}

/// A validated request to gate a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRelease {
    /// Identity.
    pub key: ReleaseKey,
    /// Human-readable name.
    pub name: String,
    /// Approvers named in the request; `None` leaves them to the approvers API or static list.
    pub approvers: Option<Vec<ApproverEmail>>,
    /// The Azure DevOps approval this round decides (from a service hook), for write-back.
    pub azure_approval: Option<AzureApprovalRef>,
    /// The identity ids the service-hook event says that approval is assigned to.
    pub azure_assigned_to: Vec<String>,
    /// Who requested the release (`RequestedFor`); their own approval does not count by default.
    pub requested_for: Option<ApproverEmail>,
    /// The release's or run's page in Azure DevOps, linked from emails and pages.
    pub release_url: Option<ReleaseUrl>,
    /// The release definition or pipeline name.
    pub definition_name: Option<String>,
}

impl NewRelease {
    /// Validates the name and the approver list alongside an already parsed key.
    pub fn parse(
        key: ReleaseKey,
        name: &str,
        approvers: Option<Vec<ApproverEmail>>,
    ) -> Result<Self, FieldError> {
        let name = parse_release_name(name)?;
        if let Some(list) = &approvers {
            check_approver_count(list)?;
        }
        let approvers = approvers.filter(|list| !list.is_empty());
        Ok(Self {
            key,
            name,
            approvers,
            azure_approval: None,
            azure_assigned_to: Vec::new(),
            requested_for: None,
            release_url: None,
            definition_name: None,
        })
    }
}

/// Which Azure DevOps approvals API an approval belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AzureApprovalKind {
    /// A classic release approval (`…/_apis/release/approvals/{id}`), id a number.
    Classic,
    /// A YAML pipeline approval (`…/_apis/pipelines/approvals`), id a GUID.
    Yaml,
}

impl AzureApprovalKind {
    /// `classic` or `yaml`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Yaml => "yaml",
        }
    }

    /// Reads `classic` or `yaml`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "classic" => Some(Self::Classic),
            "yaml" => Some(Self::Yaml),
            _ => None,
        }
    }
}

/// One approval Azure DevOps raised, which deploy-gate decides for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AzureApprovalRef {
    /// Which API it belongs to.
    pub kind: AzureApprovalKind,
    /// Azure's id of the approval.
    pub id: String,
}

/// Validates a `ReleaseName`: not blank, no control characters, at most 256 characters.
pub fn parse_release_name(name: &str) -> Result<String, FieldError> {
    required_text("ReleaseName", name, MAX_TEXT_CHARS)
}

/// Validates a `ReleaseId` given as text: not blank, no control characters, at most 128 characters.
pub fn parse_release_id(release_id: &str) -> Result<String, FieldError> {
    required_text("ReleaseId", release_id, MAX_RELEASE_ID_CHARS)
}

/// Validates a `Stage`: may be empty, no control characters, at most 256 characters.
pub fn parse_stage(stage: &str) -> Result<String, FieldError> {
    optional_text("Stage", stage, MAX_TEXT_CHARS)
}

/// Refuses a list of more than [`MAX_APPROVERS`] approvers.
pub fn check_approver_count<T>(approvers: &[T]) -> Result<(), FieldError> {
    if approvers.len() > MAX_APPROVERS {
        return Err(FieldError::new(
            "Approvers",
            format!("at most {MAX_APPROVERS} approvers may be named"),
        ));
    }
    Ok(())
}

/// Validates a `DefinitionName` (no control characters, at most 256 characters);
/// empty means none.
pub fn parse_definition_name(text: &str) -> Result<Option<String>, FieldError> {
    let name = optional_text("DefinitionName", text, MAX_TEXT_CHARS)?;
    Ok(Some(name).filter(|n| !n.is_empty()))
}

/// A request field that failed validation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's public name, e.g. `ReleaseName`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    optional_text(field, value, max)
}

/// Judges the text as sent (so the rules read the same as the published schema),
/// then drops surrounding spaces.
fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, FieldError> {
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_required_fields_are_refused_and_stage_may_be_empty() {
        assert_eq!(
            ReleaseKey::parse(" ", "1", "").unwrap_err().field,
            "TeamProject"
        );
        assert_eq!(
            ReleaseKey::parse("p", "", "").unwrap_err().field,
            "ReleaseId"
        );
        assert_eq!(ReleaseKey::parse(" p ", " 7 ", "").unwrap().release_id, "7");
    }

    #[test]
    fn a_release_has_an_encoded_status_path_and_a_readable_name() {
        let staged = ReleaseKey::parse("Dev x", "38/6", "prod & qa").unwrap();
        assert_eq!(
            staged.status_path(),
            "/release/Dev%20x/38%2F6?Stage=prod%20%26%20qa"
        );
        assert_eq!(
            staged.path_under("/releases"),
            "/releases/Dev%20x/38%2F6?Stage=prod%20%26%20qa"
        );
        assert_eq!(staged.display(), "Dev x/38/6/prod & qa");
        let unstaged = ReleaseKey::parse("Devx", "386", "").unwrap();
        assert_eq!(unstaged.status_path(), "/release/Devx/386");
        assert_eq!(unstaged.display(), "Devx/386");
        assert_eq!(ReleaseKey::parse_team_project(" Devx ").unwrap(), "Devx");
    }

    #[test]
    fn a_later_round_names_its_attempt_and_phase_and_the_first_round_does_not() {
        let key = ReleaseKey::parse("Devx", "386", "prod").unwrap();
        let post = key.clone().in_round(2, Phase::Post).unwrap();
        assert_eq!(
            post.status_path(),
            "/release/Devx/386?Stage=prod&Attempt=2&Phase=post"
        );
        assert_eq!(post.display(), "Devx/386/prod (attempt 2, post)");
        let unstaged = ReleaseKey::parse("Devx", "386", "").unwrap();
        assert_eq!(
            unstaged.in_round(1, Phase::Post).unwrap().status_path(),
            "/release/Devx/386?Attempt=1&Phase=post"
        );
        assert_eq!(
            key.clone().in_round(0, Phase::Pre).unwrap_err().field,
            "Attempt"
        );
        assert!(key.in_round(1, Phase::Pre).unwrap().is_first_round());
    }

    #[test]
    fn control_characters_and_overlong_text_are_refused() {
        let key = ReleaseKey::parse("p", "1", "").unwrap();
        assert!(NewRelease::parse(key.clone(), "a\r\nBcc: x", None).is_err());
        assert!(NewRelease::parse(key.clone(), &"é".repeat(257), None).is_err());
        assert!(NewRelease::parse(key.clone(), &"é".repeat(256), None).is_ok());
        assert!(NewRelease::parse(key.clone(), "\tR", None).is_err());
        assert!(NewRelease::parse(key, &format!("R{}", " ".repeat(256)), None).is_err());
    }
}
