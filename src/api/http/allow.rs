//! `Allow` on `405 Method Not Allowed` answers (RFC 9110 §15.5.6), naming the methods of the
//! path as the OpenAPI document lists them, so the two cannot disagree.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, StatusCode, header},
};
use serde_json::Value;

/// The methods of every path template of the OpenAPI document, read once at start.
pub struct AllowedMethods {
    paths: Vec<(Vec<Segment>, HeaderValue)>,
}

/// One segment of a path template.
enum Segment {
    Literal(String),
    Parameter,
}

/// Methods in the order they are listed; `HEAD` is served wherever `GET` is.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

impl AllowedMethods {
    /// Reads the `paths` of an OpenAPI document (JSON); a document without paths allows nothing.
    pub fn from_spec(spec: &str) -> Self {
        let doc: Value = serde_json::from_str(spec).unwrap_or_default();
        let paths = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(template, item)| {
                let declared: Vec<String> =
                    item.as_object()?.keys().map(|m| m.to_uppercase()).collect();
                let allowed: Vec<&str> = METHODS
                    .into_iter()
                    .filter(|m| {
                        declared.iter().any(|d| d == m)
                            || (*m == "HEAD" && declared.iter().any(|d| d == "GET"))
                    })
                    .collect();
                let value = HeaderValue::from_str(&allowed.join(", ")).ok()?;
                Some((segments(template), value))
            })
            .collect();
        Self { paths }
    }

    /// The `Allow` value for a request path, if it matches a path template.
    pub fn for_path(&self, path: &str) -> Option<&HeaderValue> {
        let parts: Vec<&str> = path.split('/').collect();
        self.paths
            .iter()
            .find(|(template, _)| {
                template.len() == parts.len()
                    && template
                        .iter()
                        .zip(&parts)
                        .all(|(segment, part)| match segment {
                            Segment::Literal(literal) => literal == part,
                            Segment::Parameter => !part.is_empty(),
                        })
            })
            .map(|(_, value)| value)
    }
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Parameter
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// Adds `Allow` to a 405 answer of `next` that lacks one.
pub async fn add_allow<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    allowed: Arc<AllowedMethods>,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let mut response = next.call(req).await?.into_response();
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::ALLOW)
        && let Some(value) = allowed.for_path(&path)
    {
        response.headers_mut().insert(header::ALLOW, value.clone());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_template_allows_its_documented_methods_and_head_with_get() {
        let allowed = AllowedMethods::from_spec(&crate::api::openapi_json());
        let allow = |path| {
            allowed
                .for_path(path)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(allow("/release").as_deref(), Some("POST"));
        assert_eq!(allow("/release/Devx/386").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/approval").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allow("/healthz").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/release/Devx"), None);
        assert_eq!(allow("/release//386"), None);
        assert_eq!(allow("/nothing"), None);
    }
}
