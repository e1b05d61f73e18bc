//! Microsoft Graph: a small typed client.
//!
//! `client` owns HTTP, authentication, paging, retries and request accounting. The serde shapes
//! of the Graph resources it reads are snapshot data (`crate::snapshot::graph`). Nothing here
//! knows about assessments or storage.

pub mod client;

pub use client::{GraphClient, GraphError, GraphStats, RetryPolicy};
