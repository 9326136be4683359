//! The result of an operation where a refusal shares its status with an answer (`POST
//! /release`: `403` is the fail-safe verdict "rejected" and the cross-site refusal).

use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse,
    registry::{MetaResponses, Registry},
};

use super::problem::{ErrorStatuses, ProblemResponse};

/// `Result<T, ProblemResponse<E>>` whose document lists a status that both sides use once,
/// with the answer's description and both bodies (a status repeated would be a JSON object
/// with a duplicate key).
pub struct Outcome<T, E>(pub Result<T, ProblemResponse<E>>);

impl<T: ApiResponse, E: ErrorStatuses + Send> ApiResponse for Outcome<T, E> {
    const BAD_REQUEST_HANDLER: bool = T::BAD_REQUEST_HANDLER;

    fn meta() -> MetaResponses {
        let mut merged = T::meta();
        for refusal in ProblemResponse::<E>::meta().responses {
            match merged
                .responses
                .iter_mut()
                .find(|answer| answer.status == refusal.status)
            {
                Some(answer) => answer.content.extend(refusal.content),
                None => merged.responses.push(refusal),
            }
        }
        merged
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        ProblemResponse::<E>::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        Self(Ok(T::from_parse_request_error(err)))
    }
}

impl<T: IntoResponse, E: Send> IntoResponse for Outcome<T, E> {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(answer) => answer.into_response(),
            Err(refusal) => refusal.into_response(),
        }
    }
}
