//! Result stores: one small trait, with Azure Blob Storage and local-directory implementations
//! that share the same layout.
//!
//! This module owns the trait, its types and path validation; `local` ([`LocalStore`]) and `blob`
//! ([`BlobStore`]) own one implementation each; `conformance` is the test suite both pass.

mod blob;
#[doc(hidden)]
pub mod conformance;
mod local;

pub use blob::BlobStore;
pub use local::LocalStore;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The path is not a relative path inside the store.
    #[error("invalid result path {0:?}")]
    InvalidPath(String),
    /// The results container itself does not exist: a configuration fault, not a missing file.
    #[error(
        "the results container {container} does not exist; check MI_ASSESS_RESULTS_URL and the deployment"
    )]
    ContainerMissing {
        /// The container URL, without any query.
        container: String,
    },
    /// Reading or writing failed.
    #[error("{operation} {path}: {message}")]
    Io {
        /// `write` or `read`.
        operation: &'static str,
        /// Path inside the store.
        path: String,
        /// Cause.
        message: String,
    },
}

/// A lazily produced body, written as it is produced.
pub type Chunks<'a> = Box<dyn Iterator<Item = Result<Bytes, StoreError>> + Send + 'a>;

/// A file's body as it arrives, chunk by chunk.
pub type ByteStream = futures::stream::BoxStream<'static, Result<Bytes, StoreError>>;

/// A held lock (a blob lease, or a lock file for the local store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Lock path inside the store.
    pub path: String,
    /// Lease id (blob) or holder token (local).
    pub lease_id: String,
    /// Who holds it (a run id).
    pub holder: String,
    /// Who held it last before this acquisition, when that is recorded: a run whose lease ran
    /// out rather than being released may have died mid-run.
    pub previous_holder: Option<String>,
}

/// The answer to a lock request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    /// The caller now holds the lock.
    Acquired(Lock),
    /// Someone else holds it; their holder id when it can be read.
    Held {
        /// The holder (a run id), if recorded.
        holder: Option<String>,
    },
}

/// How long a lock lasts unless renewed.
pub const LOCK_TTL_SECONDS: i32 = 60;

/// Where a run's files go. Paths are `/`-separated and relative to the store's root.
#[async_trait]
pub trait ResultStore: Send + Sync + std::fmt::Debug {
    /// Writes (or overwrites) one file from chunks produced on the fly, so memory does not grow
    /// with the file. Blob Storage stages blocks and commits them at the end.
    async fn put_chunks(
        &self,
        path: &str,
        chunks: Chunks<'_>,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), StoreError>;

    /// Takes the lock at `path` for `holder` for [`LOCK_TTL_SECONDS`].
    async fn try_lock(&self, path: &str, holder: &str) -> Result<LockAttempt, StoreError>;

    /// Extends a held lock by another [`LOCK_TTL_SECONDS`].
    async fn renew_lock(&self, lock: &Lock) -> Result<(), StoreError>;

    /// Releases a held lock.
    async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError>;

    /// Who holds the lock at `path`, without taking it.
    async fn lock_holder(&self, path: &str) -> Result<Option<String>, StoreError>;

    /// Writes (or overwrites) one file with its media type and metadata.
    async fn put(
        &self,
        path: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), StoreError>;

    /// Reads one file; `Ok(None)` when it does not exist.
    async fn get(&self, path: &str) -> Result<Option<Bytes>, StoreError>;

    /// Reads one file as a stream of chunks, so a large file is never held whole; `Ok(None)`
    /// when it does not exist. The default reads it whole.
    async fn get_stream(&self, path: &str) -> Result<Option<ByteStream>, StoreError> {
        Ok(self
            .get(path)
            .await?
            .map(|bytes| futures::stream::once(async move { Ok(bytes) }).boxed()))
    }

    /// A human-readable location for `path` (a URL or a filesystem path).
    fn location(&self, path: &str) -> String;
}

/// Refuses a path that is empty, absolute, or has an empty, `.` or `..` segment.
fn validate(path: &str) -> Result<(), StoreError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidPath(path.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside_the_store() {
        for bad in ["", "/abs", "a/../b", "a//b", "./a"] {
            assert!(validate(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(validate("runs/t/2026/01/01/r/manifest.json").is_ok());
    }
}
