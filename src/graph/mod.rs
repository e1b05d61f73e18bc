//! Microsoft Graph: a small typed client and the wire types mi-assess reads.
//!
//! `client` owns HTTP, authentication, paging, retries and request accounting; `model` owns the
//! serde shapes of Graph resources. Nothing here knows about assessments or storage.

pub mod client;
pub mod model;

pub use client::{GraphClient, GraphError, GraphStats, RetryPolicy};
