//! A JSON `$batch` reply, decoded and indexed by request id as the `$batch` engine does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let url = url::Url::parse("https://graph.microsoft.com/v1.0/$batch").unwrap();
    if let Ok(answered) = mi_assess::graph::client::decode_batch(&url, data) {
        // Indexed means every id once.
        let mut ids: Vec<&String> = answered.iter().map(|(id, _)| id).collect();
        let count = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }
});
