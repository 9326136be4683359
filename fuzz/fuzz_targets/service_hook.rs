//! Any JSON as a service-hook payload: it maps to a release or is refused, never panics.
#![no_main]

use deploy_gate::azure::hooks::interpret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) {
        let event_type = payload["eventType"].as_str().unwrap_or_default().to_owned();
        let _ = interpret(&event_type, &payload["resource"]);
    }
});
