//! JSON or HTML: which one a client wants, and a `200` answer that is either.

use poem::{
    IntoResponse, Request, Response,
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiResponse,
    payload::Json,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
};

/// Pages load nothing from elsewhere, run no script, and cannot be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// True when the client prefers HTML (a browser) over JSON.
pub fn wants_html(req: &Request) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match (accept.find("text/html"), accept.find("application/json")) {
        (Some(html), Some(json)) => html < json,
        (Some(_), None) => true,
        _ => false,
    }
}

/// A body that browsers get as a page instead.
pub trait PageBody: poem_openapi::types::ToJSON + Send {
    /// The description of its `200` answer in the OpenAPI document.
    const DESCRIPTION: &'static str;
}

/// A 200 answer as JSON, or as an HTML page for browsers.
pub enum Negotiated<T> {
    /// For API clients.
    Json(T),
    /// For browsers.
    Html(String),
}

impl<T: PageBody> IntoResponse for Negotiated<T> {
    fn into_response(self) -> Response {
        match self {
            Self::Json(value) => Json(value).into_response(),
            Self::Html(body) => html_response(StatusCode::OK, body),
        }
    }
}

impl<T: PageBody> ApiResponse for Negotiated<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: T::DESCRIPTION,
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: <T as poem_openapi::types::Type>::schema_ref(),
                    },
                    MetaMediaType {
                        content_type: "text/html; charset=utf-8",
                        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
                    },
                ],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        <T as poem_openapi::types::Type>::register(registry);
    }
}

/// A page with the headers every page carries: no framing, no outside resources, no caching.
pub fn html_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-frame-options", "DENY")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
}
