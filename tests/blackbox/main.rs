//! Black-box tests: the real `mi-assess` binary, spawned and spoken to the way the Azure
//! Functions host does, against the Graph simulator and Azurite (HTTPS, OAuth); and the result
//! store's conformance suite, run on the Blob store against the same Azurite.
//!
//! Run them with `scripts/test.sh`, which starts Azurite and exports
//! `MI_ASSESS_TEST_AZURITE_BLOB` and `SSL_CERT_FILE`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod azure;
mod classification_sync;
mod cli;
mod faults;
mod graph_payloads;
mod host_contract;
mod runs;
mod scale;
mod store_conformance;
mod support;
mod usage;
