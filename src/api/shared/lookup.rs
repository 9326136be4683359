//! Finding the release that a path names, for the status, the timeline and operator actions.

use super::state::AppState;
use crate::{
    api::http::{
        problem::Problem,
        text::{PhaseRule, Text},
    },
    domain::{
        release::{Phase, ReleaseKey},
        snapshot::ReleaseSnapshot,
    },
};

/// The key named by a release's path parameters and `Stage`; `400` if invalid.
pub fn path_key(
    team_project: &str,
    release_id: &str,
    stage: Option<&str>,
) -> Result<ReleaseKey, Problem> {
    ReleaseKey::parse(team_project, release_id, stage.unwrap_or_default())
        .map_err(|e| Problem::invalid_field(e.to_string()))
}

/// Which round of a release and stage a path names: `Attempt` and `Phase`
/// where given, else the latest round.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundParams<'a> {
    /// `?Attempt=`.
    pub attempt: Option<u32>,
    /// `?Phase=` (`pre` or `post`).
    pub phase: Option<&'a str>,
}

/// The example of the `Attempt` parameter: a redeploy.
pub fn attempt_example() -> Option<u32> {
    Some(2)
}

/// The example of the `Phase` parameter.
pub fn phase_example() -> Option<Text<PhaseRule>> {
    Some(Text::new("post"))
}

/// The key of the round named by a release's path parameters, `Stage`,
/// `Attempt` and `Phase`; `400` if invalid, `404` if the release and stage
/// have no such round.
pub async fn round_key(
    state: &AppState,
    team_project: &str,
    release_id: &str,
    stage: Option<&str>,
    round: RoundParams<'_>,
) -> Result<ReleaseKey, Problem> {
    let key = path_key(team_project, release_id, stage)?;
    let phase = match round.phase.map(str::trim) {
        None => None,
        Some(text) => Some(Phase::parse(text).ok_or_else(|| {
            Problem::invalid_field("Phase: must be `pre` (before the deployment) or `post`")
        })?),
    };
    if let (Some(attempt), Some(phase)) = (round.attempt, phase) {
        return key
            .in_round(attempt, phase)
            .map_err(|e| Problem::invalid_field(e.to_string()));
    }
    match state.store.latest_round(&key, round.attempt, phase).await? {
        Some(found) => Ok(found),
        None => Err(missing_round(state, &key).await?),
    }
}

/// `404` for a release and stage without the round asked for, naming the rounds the
/// stage has, or else the stages the release id has rounds in.
async fn missing_round(state: &AppState, key: &ReleaseKey) -> Result<Problem, Problem> {
    let rounds = state
        .store
        .known_rounds(&key.team_project, &key.release_id)
        .await?;
    let enc =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let in_stage: Vec<String> = rounds
        .iter()
        .filter(|round| round.stage == key.stage)
        .map(|round| format!("?Attempt={}&Phase={}", round.attempt, round.phase.as_str()))
        .collect();
    if !in_stage.is_empty() {
        return Ok(Problem::not_found(format!(
            "no such round of release {}; it has {}",
            key.display(),
            in_stage.join(", ")
        )));
    }
    let mut stages: Vec<String> = rounds
        .iter()
        .map(|round| match round.stage.as_str() {
            "" => "no Stage".to_owned(),
            stage => format!("?Stage={}", enc(stage)),
        })
        .collect();
    stages.dedup();
    if stages.is_empty() {
        return Ok(unknown_release(key));
    }
    let without = if key.stage.is_empty() {
        " without a stage"
    } else {
        ""
    };
    Ok(Problem::not_found(format!(
        "no release {}{without}; it exists with {}",
        key.display(),
        stages.join(", ")
    )))
}

/// The round named by a release's path parameters, `Stage`, `Attempt` and
/// `Phase`; `404` if unknown.
pub async fn find_by_path(
    state: &AppState,
    team_project: &str,
    release_id: &str,
    stage: Option<&str>,
    round: RoundParams<'_>,
) -> Result<ReleaseSnapshot, Problem> {
    find(
        state,
        &round_key(state, team_project, release_id, stage, round).await?,
    )
    .await
}

/// The release with this key; `404` if unknown.
pub async fn find(state: &AppState, key: &ReleaseKey) -> Result<ReleaseSnapshot, Problem> {
    state
        .store
        .find_release(key)
        .await?
        .ok_or_else(|| unknown_release(key))
}

/// `404` for a release that is not known.
pub fn unknown_release(key: &ReleaseKey) -> Problem {
    Problem::not_found(format!("no release {}", key.display()))
}
