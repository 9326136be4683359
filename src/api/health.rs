//! Liveness and readiness probes, and `GET /metrics`.

use std::{sync::Arc, time::Duration};

use poem::{Response, http::header, web::Data};
use poem_openapi::{ApiResponse, payload::PlainText};

use crate::metrics::DatabaseGauges;

use super::{
    http::problem::Problem,
    shared::state::{ApiTags, AppState},
};

/// Probes for orchestrators.
pub struct HealthApi;

/// Liveness answer.
#[derive(ApiResponse)]
pub enum Liveness {
    /// The process is up and serving.
    #[oai(status = 200)]
    Alive(PlainText<&'static str>),
}

/// Readiness answer.
#[derive(ApiResponse)]
pub enum Readiness {
    /// The database answers.
    #[oai(status = 200)]
    Ready(PlainText<&'static str>),
    /// The database does not answer.
    #[oai(status = 503)]
    NotReady(PlainText<&'static str>),
}

#[poem_openapi::OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: the process is up and serving.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Liveness {
        Liveness::Alive(PlainText("ok"))
    }

    /// Readiness: the database is reachable.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> Readiness {
        match state.store.ping().await {
            Ok(()) => Readiness::Ready(PlainText("ready")),
            Err(err) => {
                tracing::warn!(error = %err, "readiness check: database unreachable");
                Readiness::NotReady(PlainText("database unreachable"))
            }
        }
    }
}

/// `GET /metrics`: Prometheus text (OpenMetrics) exposition. The database's gauges
/// are read at each scrape (two indexed counts), so they are the same on every
/// replica and right after a restart.
#[poem::handler]
pub async fn metrics_endpoint(state: Data<&Arc<AppState>>) -> poem::Result<Response> {
    let now = state.clock.now();
    let jobs_due = state
        .store
        .due_job_count(now)
        .await
        .map_err(Problem::from)?;
    let pending = state
        .store
        .pending_rounds(now)
        .await
        .map_err(Problem::from)?;
    // Whole seconds: times are stored to the millisecond, and hours matter here.
    let oldest_pending_age = pending
        .oldest_created_at
        .and_then(|created| (now - created).to_std().ok())
        .map_or(Duration::ZERO, |age| Duration::from_secs(age.as_secs()));
    let gauges = DatabaseGauges {
        jobs_due,
        pending_releases: pending.count,
        oldest_pending_age,
    };
    Ok(Response::builder()
        .header(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(state.metrics.render(gauges)))
}
