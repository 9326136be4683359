//! The page templates, and the error page browsers get instead of a problem document.

pub mod readable;

use std::sync::LazyLock;

use minijinja::{Environment, context};
use poem::{
    IntoResponse, Response,
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiResponse,
    registry::{MetaResponses, Registry},
};

use super::http::{
    negotiate::html_response,
    problem::{ErrorStatuses, Problem, ProblemResponse},
};

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("approval.html", include_str!("templates/approval.html")),
        ("result.html", include_str!("templates/result.html")),
        ("error.html", include_str!("templates/error.html")),
        ("board.html", include_str!("templates/board.html")),
        ("timeline.html", include_str!("templates/timeline.html")),
        ("home.html", include_str!("templates/home.html")),
        ("mail_list.html", include_str!("templates/mail_list.html")),
        (
            "mail_message.html",
            include_str!("templates/mail_message.html"),
        ),
    ] {
        env.add_template(name, source)
            .expect("built-in page templates are valid");
    }
    env.set_formatter(crate::notify::neutralising_formatter);
    env
});

/// Who reads an error page; it decides the advice the page gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// An approver who followed the link of an approval email.
    Approver,
    /// Someone with the API key, looking at the release board.
    Operator,
}

/// A refused request: an error page for a browser, a problem document for an API client.
/// The OpenAPI document describes it as the problem documents of the operation's statuses `E`.
pub struct ProblemPage<E> {
    response: ProblemResponse<E>,
    /// Who reads the page; `None` when the client wants JSON.
    audience: Option<Audience>,
}

impl<E> ProblemPage<E> {
    /// `problem` as a page for `audience` when the client wants HTML, else as a problem document.
    pub fn new(problem: impl Into<ProblemResponse<E>>, html: bool, audience: Audience) -> Self {
        Self {
            response: problem.into(),
            audience: html.then_some(audience),
        }
    }
}

impl<E: ErrorStatuses> ApiResponse for ProblemPage<E> {
    fn meta() -> MetaResponses {
        ProblemResponse::<E>::meta()
    }

    fn register(registry: &mut Registry) {
        ProblemResponse::<E>::register(registry);
    }
}

impl<E: Send> IntoResponse for ProblemPage<E> {
    fn into_response(self) -> Response {
        match self.audience {
            Some(audience) => error_page(&self.response.problem, audience),
            None => self.response.into_response(),
        }
    }
}

impl<E: Send> From<ProblemPage<E>> for poem::Error {
    fn from(page: ProblemPage<E>) -> Self {
        poem::Error::from_response(page.into_response())
    }
}

/// The named template rendered with `ctx`; a plain apology page if it fails (logged).
pub fn render(name: &str, ctx: minijinja::Value) -> String {
    TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|err| {
            tracing::error!(error = %err, template = name, "page rendering failed");
            "<!doctype html><title>deploy-gate</title><p>This page could not be shown.</p>"
                .to_owned()
        })
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
        context! {
            title => problem.title,
            detail => problem.detail,
            status => problem.status,
            advice,
            home => audience == Audience::Operator,
        },
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

/// The page at `/` for browsers: links to the board, the API docs, health, and the
/// mail preview when emails go to the mail folder (`mail_preview`).
pub fn home_page(mail_preview: bool) -> Response {
    html_response(
        StatusCode::OK,
        render("home.html", context! { mail_preview }),
    )
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
