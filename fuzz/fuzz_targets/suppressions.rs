//! suppressions.json, written by people: each entry validated on its own, then matched.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    if let Ok(parsed) = mi_assess::assess::suppressions::parse(data, now, 365) {
        // Every accepted entry names a rule or a finding, and none outlives the maximum.
        for entry in &parsed.accepted {
            assert!(entry.rule_id.is_some() || entry.finding_id.is_some());
            assert!(entry.expires <= now + time::Duration::days(365));
        }
        let _ = mi_assess::assess::suppressions::Matcher::new(&parsed.accepted, now);
    }
});
