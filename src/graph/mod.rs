//! Microsoft Graph: a small typed client.
//!
//! `client` owns paging, `$batch`, pacing and request accounting over the shared HTTP layer
//! (`crate::http`: attempts, retry timing, decoding, origin checks). The serde shapes
//! of the Graph resources it reads are snapshot data (`crate::snapshot::graph`). Nothing here
//! knows about assessments or storage.

pub mod client;

pub use client::{GraphClient, GraphError, GraphStats};
