//! The nextLink origin check: whatever the link, an accepted one is on the endpoint's origin.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(link) = std::str::from_utf8(data) else {
        return;
    };
    let endpoint = url::Url::parse("https://graph.microsoft.com").unwrap();
    if let Ok(url) = mi_assess::http::checked_link(link, &endpoint) {
        assert!(
            mi_assess::http::same_origin(&url, &endpoint),
            "{link} -> {url}"
        );
    }
});
