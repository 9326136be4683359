//! The release board: `GET /releases` (recent releases) and `GET /releases/{TeamProject}/{ReleaseId}`
//! (one release's timeline), for people (HTML) and scripts (JSON), guarded by the API key.

mod body;
pub mod operator;
mod page;
mod params;
mod timeline;

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
};

use self::{
    body::{ReleaseBoard, StatusFilter},
    params::{BoardParams, PageLimit},
    timeline::ReleaseTimeline,
};
use crate::api::{
    http::{
        auth::Credentials,
        negotiate::{Negotiated, wants_html},
        problem::{ErrorStatuses, Problem},
        received::Received,
        text::{
            CursorRule, NameRule, PhaseRule, ProjectFilterRule, ReleaseIdRule, StageRule, Text,
        },
    },
    pages::{Audience, ProblemPage},
    shared::{
        lookup::{RoundParams, attempt_example, phase_example, round_key, unknown_release},
        state::{ApiTags, AppState},
    },
};

/// Errors of `GET /releases`.
pub struct ListErrors;
impl ErrorStatuses for ListErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (
            400,
            "A query parameter is invalid: `TeamProject` too long or with control characters, an unknown `status`, `limit` outside 1–100, or a `cursor` that no page gave.",
        ),
        (401, "The API key is required and was missing or wrong."),
        (
            429,
            "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// Errors of `GET /releases/{TeamProject}/{ReleaseId}`.
pub struct TimelineErrors;
impl ErrorStatuses for TimelineErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (400, "A path or query parameter is invalid."),
        (401, "The API key is required and was missing or wrong."),
        (404, "No such release."),
        (
            429,
            "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        ),
        (503, "The database is unavailable; try again."),
    ];
}

/// The release board, for operators with the API key.
pub struct BoardApi;

#[OpenApi(tag = "ApiTags::Board")]
impl BoardApi {
    /// Recent releases, newest first.
    ///
    /// Each with its status, pending approvers, approval counts, age, and the paths of its
    /// status and timeline. Filter by project and status; page with `limit` and the `cursor`
    /// of the previous page (`next` is the whole path of the next page). Browsers
    /// (`Accept: text/html`) get the board as a page; they sign in with Basic credentials,
    /// any user name and the API key as the password.
    #[oai(path = "/releases", method = "get", operation_id = "listReleases")]
    #[expect(
        clippy::too_many_arguments,
        reason = "each query parameter is its own documented parameter"
    )]
    async fn list_releases(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        credentials: Credentials,
        /// Only this project's releases (exact name); empty or absent: every project.
        #[oai(name = "TeamProject")]
        team_project: Query<Received<Option<Text<ProjectFilterRule>>>>,
        /// Only releases with this status; `any` (the default) lists them all.
        status: Query<Received<Option<StatusFilter>>>,
        /// Releases per page, 1 to 100; 50 by default.
        limit: Query<Received<Option<PageLimit>>>,
        /// Where the page starts: `next_cursor` of the previous page; absent for the newest.
        cursor: Query<Received<Option<Text<CursorRule>>>>,
    ) -> Result<Negotiated<ReleaseBoard>, ProblemPage<ListErrors>> {
        let html = wants_html(req);
        let board = async {
            state.api_keys.read(|keys| credentials.check(keys))?;
            let params = BoardParams {
                team_project: team_project.0,
                status: status.0,
                limit: limit.0,
                cursor: cursor.0,
            };
            let query = params.query()?;
            let now = state.clock.now();
            let page = state.store.list_releases(&query, now).await?;
            Ok::<_, Problem>(ReleaseBoard::new(&query, page, now))
        }
        .await
        .map_err(|problem| ProblemPage::new(problem, html, Audience::Operator))?;
        Ok(if html {
            Negotiated::Html(page::board_page(&board))
        } else {
            Negotiated::Json(board)
        })
    }

    /// One release's timeline.
    ///
    /// Its current status and what happened, oldest first: received, approvers found, each
    /// email sent, each decision (who, what, when, comment), the final status, callbacks to
    /// Azure DevOps and the write-back of the decision. Browsers get it as a page.
    #[oai(
        path = "/releases/:TeamProject/:ReleaseId",
        method = "get",
        operation_id = "getReleaseTimeline"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "each path and query parameter is its own documented parameter"
    )]
    async fn release_timeline(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        credentials: Credentials,
        /// The Azure DevOps project.
        #[oai(name = "TeamProject")]
        team_project: Path<Text<NameRule>>,
        /// The release id.
        #[oai(name = "ReleaseId")]
        release_id: Path<Text<ReleaseIdRule>>,
        /// The gated stage, if the release was created with one.
        #[oai(name = "Stage")]
        stage: Query<Option<Text<StageRule>>>,
        /// The stage's deployment attempt (`$(Release.AttemptNumber)`, `$(System.StageAttempt)`); without it, the latest round.
        #[oai(
            name = "Attempt",
            validator(minimum(value = "1"), maximum(value = "10000")),
            example = "attempt_example"
        )]
        attempt: Query<Option<u32>>,
        /// `pre` (before the deployment) or `post`; without it, the latest round.
        #[oai(name = "Phase", example = "phase_example")]
        phase: Query<Option<Text<PhaseRule>>>,
    ) -> Result<Negotiated<ReleaseTimeline>, ProblemPage<TimelineErrors>> {
        let html = wants_html(req);
        let timeline = async {
            state.api_keys.read(|keys| credentials.check(keys))?;
            let key = round_key(
                &state,
                &team_project,
                &release_id,
                stage.as_deref(),
                RoundParams {
                    attempt: attempt.0,
                    phase: phase.as_deref(),
                },
            )
            .await?;
            let history = state
                .store
                .release_history(&key)
                .await?
                .ok_or_else(|| unknown_release(&key))?;
            Ok::<_, Problem>(ReleaseTimeline::of(&history, state.clock.now()))
        }
        .await
        .map_err(|problem| ProblemPage::new(problem, html, Audience::Operator))?;
        Ok(if html {
            Negotiated::Html(page::timeline_page(&timeline))
        } else {
            Negotiated::Json(timeline)
        })
    }
}
