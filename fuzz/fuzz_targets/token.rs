//! Any bytes as the approval token of `GET /approval?token=…`, through the application's
//! real routes and middleware: never a panic, and always `401` with the problem type
//! `token-invalid`, since random bytes never carry a valid HS256 signature for its secret.
#![no_main]

use std::fmt::Write;

use deploy_gate_fuzz::{call, problem_type};
use libfuzzer_sys::fuzz_target;
use poem::{Request, http::StatusCode};

fuzz_target!(|token: &[u8]| {
    let response = call(Request::builder().uri_str(approval_uri(token)).finish());
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "GET /approval answered {status}"
    );
    assert_eq!(
        problem_type(response).as_deref(),
        Some("urn:deploy-gate:problem:token-invalid"),
    );
});

/// `/approval?token=` with every byte of `token` but ASCII letters and digits percent-encoded.
fn approval_uri(token: &[u8]) -> String {
    let mut uri = String::from("/approval?token=");
    for &byte in token {
        if byte.is_ascii_alphanumeric() {
            uri.push(char::from(byte));
        } else {
            write!(uri, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    uri
}
