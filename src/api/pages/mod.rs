//! Server-rendered pages for approvers and operators, and JSON/HTML content negotiation.

mod operator;

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

pub use operator::{board_page, timeline_page};

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
        ("board.html", include_str!("templates/board.html")),
        ("timeline.html", include_str!("templates/timeline.html")),
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

/// Who reads an error page; it decides the advice the page gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// An approver who followed the link of an approval email.
    Approver,
    /// Someone with the API key, looking at the release board.
    Operator,
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
    // The requester's own approval counts towards nothing (unless the policy allows it).
    let my_approval_counts = release
        .approvers
        .iter()
        .find(|a| a.email == view.approver)
        .is_none_or(|a| a.counts);
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
        my_approval_counts => my_approval_counts,
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

/// A helpful page for a refused request: an approver's link (expired, invalid, already
/// decided) or an operator's view. A missing API key asks the browser to sign in.
pub fn error_page(problem: &Problem, audience: Audience) -> Response {
    let advice = match audience {
        Audience::Approver => {
            "If you still need to decide on this release, ask the person who started it for a new approval email."
        }
        Audience::Operator if problem.asks_for_api_key() => {
            "Sign in with any user name and the API key (DEPLOY_GATE_API_KEY) as the password."
        }
        Audience::Operator if problem.status_code().is_server_error() => "Try again in a moment.",
        Audience::Operator => "Check the address, or start again from the release board.",
    };
    let body = render(
        "error.html",
        context! { title => problem.title, detail => problem.detail, status => problem.status, advice },
    );
    let mut response = html_response(problem.status_code(), body);
    if problem.asks_for_api_key() {
        // Browsers prompt for Basic credentials only, and only when the challenge starts
        // with it, so pages name Basic alone.
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(r#"Basic realm="deploy-gate", charset="UTF-8""#),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_template_renders_and_escapes_what_it_shows() {
        let problem = Problem::invalid_request("<b>bad</b>");
        let page = error_page(&problem, Audience::Approver);
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
