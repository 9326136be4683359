//! Any bytes as an approval token: verification answers, never panics.
#![no_main]

use deploy_gate::token::TokenKeys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = TokenKeys::new(b"fuzz-secret-0123456789");
    if let Ok(text) = std::str::from_utf8(data) {
        // Random bytes never carry a valid HS256 signature for this secret.
        assert!(keys.verify(text).is_err());
    }
});
