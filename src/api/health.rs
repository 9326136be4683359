//! Liveness and readiness probes.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, payload::PlainText};

use super::{ApiTags, AppState};

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
