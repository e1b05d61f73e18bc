//! A Graph collection page, decoded as listings decode it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let url = url::Url::parse("https://graph.microsoft.com/v1.0/servicePrincipals").unwrap();
    if let Ok(page) = mi_assess::graph::client::decode_page(&url, data)
        && let Some(link) = page.next_link
    {
        let endpoint = url::Url::parse("https://graph.microsoft.com").unwrap();
        let _ = mi_assess::http::checked_link(&link, &endpoint);
    }
});
