//! The ARM resource id parser, and the identity-kind classification that reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = mi_assess::resolve::ArmResourceId::parse(text) {
        assert!(!id.resource_type.is_empty() && !id.name.is_empty());
    }
    let names: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let _ = mi_assess::resolve::identity_kind::classify(&names);
});
