//! The result-store conformance suite (`mi_assess::results::store::conformance`) against the
//! Blob store under Azurite (HTTPS, OAuth bearer tokens): the same checks the local store passes
//! as a unit test.

use mi_assess::results::store::conformance;

use crate::support::*;

/// Where the Blob store knowingly differs from the suite (and from the local store): nowhere.
const BLOB_KNOWN_DIVERGENCES: &[(&str, &str)] = &[];

#[tokio::test]
async fn blob_store_passes_the_conformance_suite() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let store = reader(&sim, &container);
    conformance::run(&store, BLOB_KNOWN_DIVERGENCES).await;
}
