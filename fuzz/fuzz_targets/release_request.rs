//! Any bytes as the body of `POST /release`, through the real routes and middleware on a
//! SQLite database: every answer is a 2xx or a 4xx, never a 5xx or a panic.
#![no_main]

use std::sync::{Arc, LazyLock};

use deploy_gate::{
    api::{self, AppState},
    config::{Config, Secret, Settings},
    metrics::Metrics,
    store,
    token::TokenKeys,
};
use libfuzzer_sys::fuzz_target;
use poem::{Endpoint, EndpointExt, Request, endpoint::BoxEndpoint, http::Method};

struct Target {
    runtime: tokio::runtime::Runtime,
    endpoint: BoxEndpoint<'static, poem::Response>,
    _dir: tempfile::TempDir,
}

static TARGET: LazyLock<Target> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_settings(Settings {
        database_url: Some(Secret::new(format!(
            "sqlite://{}/fuzz.db",
            dir.path().display()
        ))),
        ..Settings::default()
    })
    .unwrap();
    let store = runtime.block_on(async {
        let store = store::open(&config.database).await.unwrap();
        store.migrate().await.unwrap();
        store
    });
    let state = Arc::new(AppState {
        store,
        tokens: TokenKeys::new(b"fuzz-secret-0123456789"),
        api_keys: Vec::new(),
        hook_secret: None,
        required_approvals: None,
        approval_deadline: config.approval_deadline,
        metrics: Arc::new(Metrics::new()),
        wake_worker: Arc::default(),
    });
    let endpoint = api::routes(state, config.max_body_bytes, config.rate_limits.clone())
        .map_to_response()
        .boxed();
    Target {
        runtime,
        endpoint,
        _dir: dir,
    }
});

fuzz_target!(|body: &[u8]| {
    let target = &*TARGET;
    let request = Request::builder()
        .method(Method::POST)
        .uri_str("/release")
        .content_type("application/json")
        .body(body.to_vec());
    let status = target
        .runtime
        .block_on(target.endpoint.call(request))
        .map(|response| response.status())
        .unwrap_or_else(|err| err.status());
    assert!(
        status.is_success() || status.is_client_error(),
        "POST /release answered {status}"
    );
});
