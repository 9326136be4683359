//! Bench-only: a stand-in for the approvers API (`DEPLOY_GATE_APPROVERS_URL`)
//! that names three approvers for every release, after an optional delay.
//!
//! `cargo run --release --example bench_approvers -- 127.0.0.1:8002 4000`
//! (address, then the delay in milliseconds before each answer).

use std::time::Duration;

use poem::{
    EndpointExt, Response, Server, handler, http::header, listener::TcpListener, web::Data,
};

const ANSWER: &str =
    r#"{"approvers": ["ana@example.com", "bo@example.com", {"email": "cy@example.com"}]}"#;

#[handler]
async fn approvers(delay: Data<&Duration>) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(*delay.0).await;
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(ANSWER)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8002".to_owned());
    let delay_ms: u64 = match args.next() {
        Some(text) => text.parse().map_err(std::io::Error::other)?,
        None => 0,
    };
    let app = approvers.data(Duration::from_millis(delay_ms));
    Server::new(TcpListener::bind(bind)).run(app).await
}
