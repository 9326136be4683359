//! Errors as RFC 9457 problem documents (`application/problem+json`), with the
//! status set at run time and each operation documenting only its own statuses.

use std::{fmt, marker::PhantomData};

use poem::{
    IntoResponse, Response,
    error::{ParsePathError, ResponseError},
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
};
use serde::Serialize;

pub use super::problem_code::ProblemCode;
use super::{plain_words::plain_words, refusals::FieldProblem};
use crate::{domain::macros, store::StoreError};

/// Content type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `WWW-Authenticate` challenge of an `unauthorized` problem: the key as a Bearer token or a Basic password.
const API_KEY_CHALLENGE: &str = r#"Bearer realm="deploy-gate", Basic realm="deploy-gate""#;

/// An RFC 9457 problem document.
#[derive(Object, Serialize, Clone, Debug, PartialEq, Eq)]
#[oai(example, skip_serializing_if_is_none)]
pub struct Problem {
    /// A URI naming the kind of problem, stable for clients to match on, e.g. `urn:deploy-gate:problem:invalid-field`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, in plain language; a refused body or query names
    /// every refused field, separated by `; `.
    pub detail: String,
    /// Each refused field or parameter of the request, when fields were refused (an RFC 9457
    /// extension member): its name and what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        Self {
            errors: Some(vec![FieldProblem {
                field: "ReleaseName".to_owned(),
                detail: "must not be empty".to_owned(),
            }]),
            ..Self::invalid_field("ReleaseName: must not be empty")
        }
    }
}

impl Problem {
    /// A problem of kind `code`, with its status and title, and what went wrong this time.
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            kind: code.urn().to_owned(),
            title: code.title().to_owned(),
            status: code.status().as_u16(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// 400: a field failed validation.
    pub fn invalid_field(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::InvalidField, detail)
    }

    /// 400: the body or a parameter could not be parsed.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::InvalidRequest, detail)
    }

    /// 400: `field` holds `found`, a pipeline macro Azure DevOps left unresolved.
    pub fn unresolved_macro(field: &str, found: &str) -> Self {
        Self::new(ProblemCode::UnresolvedMacro, macros::describe(field, found))
    }

    /// 401: credentials missing or wrong.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::Unauthorized, detail)
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::NotFound, detail)
    }

    /// 413: the body is larger than allowed.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ProblemCode::BodyTooLarge,
            format!("request bodies may be at most {limit} bytes"),
        )
    }

    /// 408: the body did not arrive in time.
    pub fn body_too_slow(within: std::time::Duration) -> Self {
        Self::new(
            ProblemCode::RequestTimeout,
            format!("the request body did not arrive within {within:?}"),
        )
    }

    /// 500: an internal failure; the cause is logged, never returned.
    pub fn internal() -> Self {
        Self::new(
            ProblemCode::Internal,
            "the service could not complete the request; it has been logged",
        )
    }

    /// 503: a dependency (the database) is unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::Unavailable, detail)
    }

    /// 503: the connection cap is reached; the connection is closed after this answer.
    pub fn too_many_connections() -> Self {
        Self::new(
            ProblemCode::TooManyConnections,
            "the service is serving as many connections as it may; retry shortly",
        )
    }

    /// True for the 401 of a missing or wrong API key, which must name the accepted schemes.
    pub fn asks_for_api_key(&self) -> bool {
        self.kind == ProblemCode::Unauthorized.urn()
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl std::error::Error for Problem {}

impl ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status_code()
    }

    fn as_response(&self) -> Response {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut response = Response::builder()
            .status(self.status_code())
            .header(header::CONTENT_TYPE, PROBLEM_JSON);
        if self.asks_for_api_key() {
            // A 401 must name the schemes that would be accepted (RFC 9110 §11.6.1).
            response = response.header(header::WWW_AUTHENTICATE, API_KEY_CHALLENGE);
        }
        // The request's span carries the type into the access log.
        tracing::Span::current().record("problem", self.kind.as_str());
        response.body(body)
    }
}

/// The error statuses one operation can return, for its OpenAPI description.
pub trait ErrorStatuses: Send + Sync + 'static {
    /// The statuses, each with the description published in the OpenAPI document.
    const STATUSES: &'static [(u16, &'static str)];
}

/// A problem returned by an operation whose possible statuses are `E`.
pub struct ProblemResponse<E> {
    /// The problem.
    pub problem: Problem,
    marker: PhantomData<E>,
}

impl<E> fmt::Debug for ProblemResponse<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.problem.fmt(f)
    }
}

/// A database failure: the cause is logged here, once, and the client is told to try again.
impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, cause = ?err, "database request failed");
        Self::unavailable("the database is unavailable; try again")
    }
}

/// A database failure, as [`Problem`]'s conversion makes it, so handlers use `?` on the store.
impl<E: ErrorStatuses> From<StoreError> for ProblemResponse<E> {
    fn from(err: StoreError) -> Self {
        Problem::from(err).into()
    }
}

impl<E: ErrorStatuses> From<Problem> for ProblemResponse<E> {
    fn from(problem: Problem) -> Self {
        // Every test that reaches a refusal also checks that the operation's OpenAPI
        // description lists the refusal's status.
        debug_assert!(
            E::STATUSES
                .iter()
                .any(|(status, _)| *status == problem.status),
            "answered {} ({}), a status the operation does not document",
            problem.status,
            problem.kind
        );
        Self {
            problem,
            marker: PhantomData,
        }
    }
}

impl<E: ErrorStatuses> ApiResponse for ProblemResponse<E> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: E::STATUSES
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: Problem::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

impl<E: Send> IntoResponse for ProblemResponse<E> {
    fn into_response(self) -> Response {
        self.problem.as_response()
    }
}

impl<E: Send> From<ProblemResponse<E>> for poem::Error {
    fn from(response: ProblemResponse<E>) -> Self {
        poem::Error::from_response(response.into_response())
    }
}

/// Gives every error that escapes an operation (poem's own 400/404/405/415,
/// and internal failures) the problem-document shape.
pub fn problem_for_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    problem_of(&err).as_response()
}

/// The problem document of an error that is not already a response.
pub fn problem_of(err: &poem::Error) -> Problem {
    if let Some(problem) = err.downcast_ref::<Problem>() {
        return problem.clone();
    }
    if err.is::<ParsePathError>() {
        return Problem::not_found("no such resource");
    }
    let status = err.status();
    match status {
        StatusCode::NOT_FOUND => Problem::not_found("no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            ProblemCode::MethodNotAllowed,
            "this path does not accept that method",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
            ProblemCode::UnsupportedMediaType,
            "send application/json (or a form, where the operation accepts one)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(ProblemCode::BodyTooLarge, err.to_string()),
        s if s.is_client_error() => Problem::invalid_request(plain_words(&err.to_string())),
        _ => {
            tracing::error!(error = %err, "request failed");
            Problem::internal()
        }
    }
}
