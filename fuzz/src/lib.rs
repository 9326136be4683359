//! The application the fuzz targets call: built by `App::build`, the constructor the
//! service itself uses, so the targets cannot drift from it. It is configured as a
//! user would on the embedded defaults: SQLite and `.eml` mail in a temporary folder,
//! a fixed token secret, port 0. Requests go to its endpoint in-process; the job
//! worker is not started, so jobs only queue.

use std::sync::LazyLock;

use deploy_gate::{
    secret::Secret,
    settings::{Config, Settings},
    startup::App,
};
use poem::{Endpoint, Request, Response};

/// The token secret of the fuzzed application.
pub const TOKEN_SECRET: &str = "fuzz-secret-0123456789";

/// A built application, the runtime that drives it, and the folder holding its files.
struct Target {
    runtime: tokio::runtime::Runtime,
    app: App,
    _dir: tempfile::TempDir,
}

static TARGET: LazyLock<Target> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = Config::from_settings(Settings {
        bind: Some(([127, 0, 0, 1], 0).into()),
        database_url: Some(Secret::new(format!(
            "sqlite://{}/fuzz.db",
            dir.path().display()
        ))),
        mail_dir: Some(dir.path().join("mail")),
        token_secret: Some(Secret::new(TOKEN_SECRET)),
        ..Settings::default()
    })
    .expect("a valid configuration");
    let app = runtime
        .block_on(App::build(config))
        .expect("the application builds");
    Target {
        runtime,
        app,
        _dir: dir,
    }
});

/// Sends `request` through the application's routes and middleware and returns the
/// response every client would get (errors turned into their responses).
pub fn call(request: Request) -> Response {
    let target = &*TARGET;
    target
        .runtime
        .block_on(target.app.endpoint().call(request))
        .unwrap_or_else(|err| err.into_response())
}

/// The `type` of the problem document in `response`'s body, if it is one.
pub fn problem_type(response: Response) -> Option<String> {
    let body = TARGET
        .runtime
        .block_on(response.into_body().into_bytes())
        .ok()?;
    let problem: serde_json::Value = serde_json::from_slice(&body).ok()?;
    problem["type"].as_str().map(str::to_owned)
}

/// Asserts that `response` is a 2xx or a 4xx: anything else is a finding.
pub fn assert_2xx_or_4xx(response: &Response, what: &str) {
    let status = response.status();
    assert!(
        status.is_success() || status.is_client_error(),
        "{what} answered {status}"
    );
}
