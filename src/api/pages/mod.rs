//! Server-rendered pages for approvers, and JSON/HTML content negotiation.

use std::sync::LazyLock;

use minijinja::{Environment, context};
use poem::{
    IntoResponse, Request, Response,
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiResponse,
    payload::Json,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
};

use super::{approval::ApprovalView, problem::Problem};

/// Pages load nothing from elsewhere, run no script, and cannot be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("approval.html", include_str!("templates/approval.html")),
        ("result.html", include_str!("templates/result.html")),
        ("error.html", include_str!("templates/error.html")),
    ] {
        env.add_template(name, source)
            .expect("built-in page templates are valid");
    }
    env
});

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

/// A 200 answer as JSON, or as an HTML page for browsers.
pub enum Negotiated<T> {
    /// For API clients.
    Json(T),
    /// For browsers.
    Html(String),
}

impl<T: poem_openapi::types::ToJSON + Send> IntoResponse for Negotiated<T> {
    fn into_response(self) -> Response {
        match self {
            Self::Json(value) => Json(value).into_response(),
            Self::Html(body) => html_response(StatusCode::OK, body),
        }
    }
}

impl<T: poem_openapi::types::ToJSON + Send> ApiResponse for Negotiated<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The approval: JSON for API clients, an HTML page when the client accepts `text/html` before `application/json`.",
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

fn html_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-frame-options", "DENY")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
}

fn render(name: &str, ctx: minijinja::Value) -> String {
    TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|err| {
            tracing::error!(error = %err, template = name, "page rendering failed");
            "<!doctype html><title>deploy-gate</title><p>This page could not be shown.</p>"
                .to_owned()
        })
}

fn view_context(view: &ApprovalView) -> minijinja::Value {
    let release = &view.release;
    let approvers: Vec<_> = release
        .approvers
        .iter()
        .map(|a| {
            context! {
                email => a.email,
                decision => a.decision.as_str(),
                decided_at => a.decided_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
                comment => a.comment,
                is_me => a.email == view.approver,
            }
        })
        .collect();
    context! {
        release_name => release.release_name,
        release_id => release.release_id,
        team_project => release.team_project,
        stage => release.stage,
        status => release.status.as_str(),
        created_at => release.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        deadline => release.deadline.format("%Y-%m-%d %H:%M UTC").to_string(),
        required => release.approvals.required,
        approved => release.approvals.approved,
        approvers => approvers,
        approver => view.approver,
        decision => view.decision.as_str(),
        comment => view.comment,
        can_decide => view.can_decide,
    }
}

/// The page an approver opens from the email.
pub fn approval_page(view: &ApprovalView, token: &str) -> String {
    let mut ctx = view_context(view);
    ctx = context! { token => token, ..ctx };
    render("approval.html", ctx)
}

/// The page shown after a decision.
pub fn result_page(view: &ApprovalView) -> String {
    render("result.html", view_context(view))
}

/// A helpful page for a refused link (expired, invalid, already decided).
pub fn error_page(problem: &Problem) -> Response {
    let body = render(
        "error.html",
        context! { title => problem.title, detail => problem.detail, status => problem.status },
    );
    html_response(problem.status_code(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_template_renders_and_escapes_what_it_shows() {
        let problem = Problem::invalid_request("<b>bad</b>");
        let page = error_page(&problem);
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        for name in ["approval.html", "result.html"] {
            let html = TEMPLATES
                .get_template(name)
                .unwrap()
                .render(context! { release_name => "<script>x</script>", approvers => Vec::<u8>::new(), status => "pending" })
                .unwrap();
            assert!(
                html.contains("&lt;script&gt;x") && !html.contains("<script>"),
                "{name} must escape"
            );
        }
    }
}
