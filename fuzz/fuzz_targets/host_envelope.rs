//! The Functions host's invocation envelope: parsed, then every binding read the handlers use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mi_assess::host::protocol::InvokeRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = InvokeRequest::from_slice(data) {
        let _ = envelope.timer("timer");
        let _ = envelope.http_request("req");
        let _ = envelope.queue_json::<serde_json::Value>("scanRequest");
        let _ = envelope.metadata_string("DequeueCount");
        let _ = envelope.retry_count();
    }
});
