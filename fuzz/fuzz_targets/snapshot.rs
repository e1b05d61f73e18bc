//! `--from-snapshot`'s reader (gzip or plain JSON, capped at 1 MiB here), then the assessment of
//! whatever snapshot it accepts: a replayed snapshot must never panic the assessor.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshot) = mi_assess::cli::snapshot_from_reader(data, 1) {
        let _ = mi_assess::assess::assess(&snapshot);
    }
});
