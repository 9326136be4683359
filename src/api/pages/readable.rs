//! Errors that escape the operations (unknown paths, unparsable parameters) made readable:
//! an error page for browsers, and a detail that names the allowed values instead of a type.

use std::{collections::HashMap, sync::Arc};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    error::ResponseError,
    http::{Method, StatusCode},
};
use poem_openapi::{OperationId, error::ParseParamError};
use serde_json::Value;

use super::{Audience, error_page, home_page};
use crate::api::http::{
    negotiate::wants_html,
    plain_words::plain_words,
    problem::{Problem, problem_of},
};

/// The values of each enumeration in the OpenAPI document, by schema name.
pub struct EnumValues(HashMap<String, Vec<String>>);

impl EnumValues {
    /// The enumerations among the schemas of the OpenAPI document `spec`.
    pub fn from_spec(spec: &str) -> Self {
        let doc: Value = serde_json::from_str(spec).unwrap_or_default();
        let schemas = doc["components"]["schemas"].as_object().cloned();
        let values = schemas
            .into_iter()
            .flatten()
            .filter_map(|(name, schema)| {
                let values = schema["enum"].as_array()?;
                let values = values.iter().filter_map(|v| v.as_str().map(str::to_owned));
                Some((name, values.collect()))
            })
            .collect();
        Self(values)
    }

    /// What a client should know about the refused parameter: its name and, for an
    /// enumeration, the values it accepts.
    fn describe(&self, err: &ParseParamError) -> Problem {
        // poem-openapi names the Rust type: `failed to parse "StatusFilter": …`.
        let type_name = err
            .reason
            .strip_prefix("failed to parse \"")
            .and_then(|rest| rest.split('"').next());
        match type_name.and_then(|name| self.0.get(name)) {
            Some(values) => Problem::invalid_request(format!(
                "{}: must be one of {}",
                err.name,
                values.join(", ")
            )),
            None => Problem::invalid_request(plain_words(&format!(
                "failed to parse parameter `{}`: {}",
                err.name, err.reason
            ))),
        }
    }
}

/// The service's entry points for API clients at `/`, as the home page links them for
/// browsers: `{"links": {"board": "/releases", ...}}`, with `mail` only when emails go to
/// the mail folder (`mail_preview`).
fn home_index(mail_preview: bool) -> Response {
    let mut links = serde_json::Map::new();
    for (name, path) in [
        ("board", "/releases"),
        ("docs", "/docs"),
        ("openapi", "/openapi.json"),
        ("health", "/healthz"),
        ("readiness", "/readyz"),
        ("metrics", "/metrics"),
    ] {
        links.insert(name.to_owned(), Value::from(path));
    }
    if mail_preview {
        links.insert("mail".to_owned(), Value::from("/mail"));
    }
    poem::web::Json(serde_json::json!({ "links": links })).into_response()
}

/// Answers an error of `next` that is not already a response with an error page when the
/// client wants HTML, and names the allowed values of a refused parameter for every client.
/// `/`, which no operation serves, is the home page for browsers and an index of the
/// entry points for API clients.
pub async fn readable<E: Endpoint>(
    next: E,
    req: Request,
    values: Arc<EnumValues>,
    mail_preview: bool,
) -> poem::Result<Response> {
    let html = wants_html(&req);
    let home = req.method() == Method::GET && req.uri().path() == "/";
    let err = match next.call(req).await {
        Ok(response) => return Ok(response.into_response()),
        Err(err) if err.is_from_response() => return Err(err),
        Err(err) => err,
    };
    if home && err.status() == StatusCode::NOT_FOUND {
        return Ok(if html {
            home_page(mail_preview)
        } else {
            home_index(mail_preview)
        });
    }
    let problem = match err.downcast_ref::<ParseParamError>() {
        Some(param) => values.describe(param),
        None if html => problem_of(&err),
        None => return Err(err),
    };
    let mut response = if html {
        error_page(&problem, Audience::Operator)
    } else {
        problem.as_response()
    };
    // The metrics still count the answer under the operation that refused it.
    if let Some(operation) = err.data::<OperationId>().copied() {
        response.set_data(operation);
    }
    Ok(response)
}
