//! Liveness and readiness probes, and `GET /metrics`.

use std::sync::Arc;

use poem::{Response, http::header, web::Data};
use poem_openapi::{ApiResponse, payload::PlainText};

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

/// `GET /metrics`: Prometheus text (OpenMetrics) exposition.
#[poem::handler]
pub async fn metrics_endpoint(state: Data<&Arc<AppState>>) -> poem::Result<Response> {
    let jobs_due = state
        .store
        .due_job_count(state.clock.now())
        .await
        .map_err(Problem::from)?;
    Ok(Response::builder()
        .header(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(state.metrics.render(jobs_due)))
}
