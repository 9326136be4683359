//! Bench-only: a bare poem server that answers every request with a constant,
//! the framework's own ceiling on this machine. `bench/run` loads it exactly as
//! it loads deploy-gate, so that each figure also appears as a ratio to this one.
//!
//! `cargo run --release --example bare_poem -- 127.0.0.1:8001`

use poem::{Response, Server, handler, http::header, listener::TcpListener};

/// About the size of a small JSON answer; the same for every method and path.
const BODY: &str = r#"{"status":"pending","approved":false}"#;

#[handler]
fn constant() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(BODY)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    Server::new(TcpListener::bind(bind)).run(constant).await
}
