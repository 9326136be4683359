//! Finding the release that a path names, for the status, the timeline and operator actions.

use super::state::AppState;
use crate::{
    api::http::problem::Problem, domain::release::ReleaseKey, domain::snapshot::ReleaseSnapshot,
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

/// The release named by its path parameters and `Stage`; `404` if unknown.
pub async fn find_by_path(
    state: &AppState,
    team_project: &str,
    release_id: &str,
    stage: Option<&str>,
) -> Result<ReleaseSnapshot, Problem> {
    find(state, &path_key(team_project, release_id, stage)?).await
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
