//! Any bytes as the body of `POST /release`, through the application's real routes and
//! middleware on SQLite: every answer is a 2xx or a 4xx, never a 5xx or a panic.
#![no_main]

use deploy_gate_fuzz::{assert_2xx_or_4xx, call};
use libfuzzer_sys::fuzz_target;
use poem::{Request, http::Method};

fuzz_target!(|body: &[u8]| {
    let request = Request::builder()
        .method(Method::POST)
        .uri_str("/release")
        .content_type("application/json")
        .body(body.to_vec());
    assert_2xx_or_4xx(&call(request), "POST /release");
});
