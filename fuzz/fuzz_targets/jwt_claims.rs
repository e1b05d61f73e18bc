//! The claims of the scanner's own access token, decoded without verification.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data)
        && let Ok(claims) = mi_assess::auth::TokenClaims::from_jwt(token)
        && let Some(tid) = claims.tid
    {
        // A tenant id shapes results paths only once it is a GUID.
        if let Ok(id) = mi_assess::collect::tenant_path_id(&tid) {
            assert!(id.len() == 36 && !id.contains('/'));
        }
    }
});
