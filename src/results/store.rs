//! Result stores: one small trait, with Azure Blob Storage and local-directory implementations
//! that share the same layout.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{NoFormat, RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientAcquireLeaseResultHeaders as _, BlobClientGetPropertiesResultHeaders as _,
    BlobClientSetMetadataOptions, BlockBlobClientCommitBlockListOptions,
    BlockBlobClientUploadOptions, BlockLookupList, LeaseState,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use url::Url;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The path is not a relative path inside the store.
    #[error("invalid result path {0:?}")]
    InvalidPath(String),
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

/// Bytes read per chunk from a local file.
const LOCAL_READ_CHUNK: usize = 1024 * 1024;

/// A held lock (a blob lease, or a lock file for the local store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Lock path inside the store.
    pub path: String,
    /// Lease id (blob) or holder token (local).
    pub lease_id: String,
    /// Who holds it (a run id).
    pub holder: String,
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

/// Results in a local directory, for the CLI.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn resolve(&self, path: &str) -> Result<PathBuf, StoreError> {
        validate(path)?;
        let full = self.root.join(path);
        debug_assert!(
            full.components()
                .all(|c| !matches!(c, Component::ParentDir))
        );
        Ok(full)
    }
}

#[async_trait]
impl ResultStore for LocalStore {
    async fn put(
        &self,
        path: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let chunks: Chunks<'_> = Box::new(std::iter::once(Ok(body)));
        self.put_chunks(path, chunks, content_type, metadata).await
    }

    async fn get(&self, path: &str) -> Result<Option<Bytes>, StoreError> {
        let full = self.resolve(path)?;
        match tokio::fs::read(&full).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io {
                operation: "read",
                path: path.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    async fn get_stream(&self, path: &str) -> Result<Option<ByteStream>, StoreError> {
        use tokio::io::AsyncReadExt as _;
        let full = self.resolve(path)?;
        let owned = path.to_owned();
        let io = move |e: std::io::Error| StoreError::Io {
            operation: "read",
            path: owned.clone(),
            message: e.to_string(),
        };
        let file = match tokio::fs::File::open(&full).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let chunks = futures::stream::try_unfold(file, move |mut file| {
            let io = io.clone();
            async move {
                let mut buffer = Vec::with_capacity(LOCAL_READ_CHUNK);
                let read = (&mut file)
                    .take(LOCAL_READ_CHUNK as u64)
                    .read_to_end(&mut buffer)
                    .await
                    .map_err(io)?;
                Ok((read > 0).then(|| (Bytes::from(buffer), file)))
            }
        });
        Ok(Some(chunks.boxed()))
    }

    fn location(&self, path: &str) -> String {
        self.root.join(path).display().to_string()
    }

    async fn put_chunks(
        &self,
        path: &str,
        chunks: Chunks<'_>,
        _content_type: &str,
        _metadata: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt as _;
        let full = self.resolve(path)?;
        let io = |e: std::io::Error| StoreError::Io {
            operation: "write",
            path: path.to_owned(),
            message: e.to_string(),
        };
        if let Some(parent) = full.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // Write to a temporary name and rename, so readers never see half a file.
        let temp = full.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&temp).await.map_err(io)?;
        for chunk in chunks {
            file.write_all(&chunk?).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&temp, &full).await.map_err(io)
    }

    async fn try_lock(&self, path: &str, holder: &str) -> Result<LockAttempt, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(existing) = self.read_local_lock(path).await?
            && existing.expires > now
        {
            return Ok(LockAttempt::Held {
                holder: Some(existing.holder),
            });
        }
        let token = uuid::Uuid::new_v4().to_string();
        self.write_local_lock(path, holder, &token).await?;
        // Re-read: if two processes raced, only the last writer holds it.
        match self.read_local_lock(path).await? {
            Some(written) if written.token == token => Ok(LockAttempt::Acquired(Lock {
                path: path.to_owned(),
                lease_id: token,
                holder: holder.to_owned(),
            })),
            other => Ok(LockAttempt::Held {
                holder: other.map(|o| o.holder),
            }),
        }
    }

    async fn renew_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        self.write_local_lock(&lock.path, &lock.holder, &lock.lease_id)
            .await
    }

    async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        match self.read_local_lock(&lock.path).await? {
            Some(existing) if existing.token == lock.lease_id => {
                tokio::fs::remove_file(self.resolve(&lock.path)?)
                    .await
                    .map_err(|e| StoreError::Io {
                        operation: "release",
                        path: lock.path.clone(),
                        message: e.to_string(),
                    })
            }
            _ => Ok(()),
        }
    }

    async fn lock_holder(&self, path: &str) -> Result<Option<String>, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Ok(self
            .read_local_lock(path)
            .await?
            .filter(|l| l.expires > now)
            .map(|l| l.holder))
    }
}

/// The content of a local lock file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LocalLock {
    holder: String,
    token: String,
    expires: i64,
}

impl LocalStore {
    async fn read_local_lock(&self, path: &str) -> Result<Option<LocalLock>, StoreError> {
        match self.get(path).await? {
            // An unreadable lock file is treated as absent: it cannot prove anyone holds it.
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            None => Ok(None),
        }
    }

    async fn write_local_lock(
        &self,
        path: &str,
        holder: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        let lock = LocalLock {
            holder: holder.to_owned(),
            token: token.to_owned(),
            expires: time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(LOCK_TTL_SECONDS),
        };
        let body = serde_json::to_vec(&lock).map_err(|e| StoreError::Io {
            operation: "write",
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        self.put(path, Bytes::from(body), "application/json", &[])
            .await
    }
}

/// Results in an Azure Blob Storage container, written with the official `azure_storage_blob`
/// crate and the scanner's own identity.
pub struct BlobStore {
    container: BlobContainerClient,
    container_url: Url,
}

impl BlobStore {
    /// A store for the container at `container_url`, authenticating with `credential`.
    pub fn new(container_url: Url, credential: Arc<dyn TokenCredential>) -> anyhow::Result<Self> {
        let container = BlobContainerClient::new(
            container_url.clone(),
            Some(credential),
            Some(BlobContainerClientOptions::default()),
        )
        .map_err(|e| anyhow::anyhow!("cannot create a blob client for {container_url}: {e}"))?;
        Ok(Self {
            container,
            container_url,
        })
    }
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("container_url", &self.container_url.as_str())
            .finish()
    }
}

#[async_trait]
impl ResultStore for BlobStore {
    async fn put(
        &self,
        path: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        validate(path)?;
        let metadata: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let options = BlockBlobClientUploadOptions {
            blob_content_type: Some(content_type.to_owned()),
            metadata: (!metadata.is_empty()).then_some(metadata),
            ..Default::default()
        };
        // `RequestContent::from` is an inherent method taking Vec<u8>; use the From<Bytes> impl.
        let content: RequestContent<Bytes, NoFormat> = body.into();
        self.container
            .blob_client(path)
            .upload(content, Some(options))
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Io {
                operation: "write",
                path: path.to_owned(),
                message: e.to_string(),
            })
    }

    async fn get(&self, path: &str) -> Result<Option<Bytes>, StoreError> {
        let Some(chunks) = self.get_stream(path).await? else {
            return Ok(None);
        };
        let chunks: Vec<Bytes> = chunks.try_collect().await?;
        Ok(Some(match <[Bytes; 1]>::try_from(chunks) {
            Ok([only]) => only,
            Err(chunks) => Bytes::from(chunks.concat()),
        }))
    }

    async fn get_stream(&self, path: &str) -> Result<Option<ByteStream>, StoreError> {
        validate(path)?;
        let owned = path.to_owned();
        let io = move |e: azure_core::Error| StoreError::Io {
            operation: "read",
            path: owned.clone(),
            message: e.to_string(),
        };
        match self.container.blob_client(path).download(None).await {
            Ok(result) => Ok(Some(result.body.map_err(io).boxed())),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    fn location(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.container_url.as_str().trim_end_matches('/')
        )
    }

    async fn put_chunks(
        &self,
        path: &str,
        chunks: Chunks<'_>,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        validate(path)?;
        let io = |e: azure_core::Error| StoreError::Io {
            operation: "write",
            path: path.to_owned(),
            message: e.to_string(),
        };
        let blob = self.container.blob_client(path).block_blob_client();
        let mut block_ids: Vec<Vec<u8>> = Vec::new();
        let mut buffer: Vec<u8> = Vec::with_capacity(BLOCK_SIZE);
        for chunk in chunks {
            buffer.extend_from_slice(&chunk?);
            if buffer.len() >= BLOCK_SIZE {
                let block = std::mem::replace(&mut buffer, Vec::with_capacity(BLOCK_SIZE));
                block_ids.push(stage(&blob, block).await.map_err(io)?);
            }
        }
        if block_ids.is_empty() {
            // Small enough for a single Put Blob.
            return self
                .put(path, Bytes::from(buffer), content_type, metadata)
                .await;
        }
        if !buffer.is_empty() {
            block_ids.push(stage(&blob, buffer).await.map_err(io)?);
        }
        let list = BlockLookupList {
            latest: Some(block_ids),
            ..Default::default()
        };
        let options = BlockBlobClientCommitBlockListOptions {
            blob_content_type: Some(content_type.to_owned()),
            metadata: Some(
                metadata
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        };
        blob.commit_block_list(list.try_into().map_err(io)?, Some(options))
            .await
            .map(|_| ())
            .map_err(io)
    }

    async fn try_lock(&self, path: &str, holder: &str) -> Result<LockAttempt, StoreError> {
        validate(path)?;
        let io = |e: azure_core::Error| StoreError::Io {
            operation: "lock",
            path: path.to_owned(),
            message: e.to_string(),
        };
        let client = self.container.blob_client(path);
        // The lease needs a blob; create it once (an existing one is fine).
        let created: RequestContent<Bytes, NoFormat> =
            Bytes::from_static(b"mi-assess tenant lock\n").into();
        match client
            .upload(
                created,
                Some(BlockBlobClientUploadOptions::default().if_not_exists()),
            )
            .await
        {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.http_status(),
                    Some(StatusCode::Conflict | StatusCode::PreconditionFailed)
                ) => {}
            Err(e) => return Err(io(e)),
        }
        match client.acquire_lease(LOCK_TTL_SECONDS, None).await {
            Ok(response) => {
                let lease_id = response
                    .lease_id()
                    .map_err(io)?
                    .ok_or_else(|| StoreError::Io {
                        operation: "lock",
                        path: path.to_owned(),
                        message: "the lease response carries no lease id".into(),
                    })?;
                let metadata = HashMap::from([("runId".to_owned(), holder.to_owned())]);
                let options = BlobClientSetMetadataOptions {
                    lease_id: Some(lease_id.clone()),
                    ..Default::default()
                };
                client
                    .set_metadata(&metadata, Some(options))
                    .await
                    .map_err(io)?;
                Ok(LockAttempt::Acquired(Lock {
                    path: path.to_owned(),
                    lease_id,
                    holder: holder.to_owned(),
                }))
            }
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(LockAttempt::Held {
                holder: self.lock_holder(path).await?,
            }),
            Err(e) => Err(io(e)),
        }
    }

    async fn renew_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        self.container
            .blob_client(&lock.path)
            .renew_lease(lock.lease_id.clone(), None)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Io {
                operation: "renew",
                path: lock.path.clone(),
                message: e.to_string(),
            })
    }

    async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        self.container
            .blob_client(&lock.path)
            .release_lease(lock.lease_id.clone(), None)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Io {
                operation: "release",
                path: lock.path.clone(),
                message: e.to_string(),
            })
    }

    async fn lock_holder(&self, path: &str) -> Result<Option<String>, StoreError> {
        validate(path)?;
        let io = |e: azure_core::Error| StoreError::Io {
            operation: "read",
            path: path.to_owned(),
            message: e.to_string(),
        };
        match self.container.blob_client(path).get_properties(None).await {
            Ok(properties) => {
                let leased = matches!(
                    properties.lease_state().map_err(io)?,
                    Some(LeaseState::Leased)
                );
                if !leased {
                    return Ok(None);
                }
                // Header names, and so metadata keys, come back lower-cased.
                Ok(properties
                    .metadata()
                    .map_err(io)?
                    .into_iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("runId"))
                    .map(|(_, v)| v))
            }
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }
}

/// Block size for streamed uploads.
const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// Stages one block with a fresh 16-byte id (block ids of a blob must all have one length).
async fn stage(
    blob: &azure_storage_blob::BlockBlobClient,
    block: Vec<u8>,
) -> azure_core::Result<Vec<u8>> {
    let id = uuid::Uuid::new_v4().as_bytes().to_vec();
    let length = block.len() as u64;
    let content: RequestContent<Bytes, NoFormat> = Bytes::from(block).into();
    blob.stage_block(&id, length, content, None).await?;
    Ok(id)
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

    #[tokio::test]
    async fn local_store_round_trips_and_reports_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        assert!(store.get("a/b.json").await.expect("read").is_none());
        store
            .put(
                "a/b.json",
                Bytes::from_static(b"{}"),
                "application/json",
                &[],
            )
            .await
            .expect("write");
        assert_eq!(
            store.get("a/b.json").await.expect("read").as_deref(),
            Some(&b"{}"[..])
        );
    }

    #[tokio::test]
    async fn local_store_streams_a_large_file_in_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        assert!(
            store
                .get_stream("big.ndjson")
                .await
                .expect("read")
                .is_none()
        );
        let body: Vec<u8> = (0..(LOCAL_READ_CHUNK * 5 / 2))
            .map(|i| (i % 251) as u8)
            .collect();
        store
            .put("big.ndjson", Bytes::from(body.clone()), "text/plain", &[])
            .await
            .expect("write");
        let chunks: Vec<Bytes> = store
            .get_stream("big.ndjson")
            .await
            .expect("read")
            .expect("exists")
            .try_collect()
            .await
            .expect("streams");
        assert_eq!(chunks.len(), 3, "1 MiB at a time");
        assert_eq!(chunks.concat(), body);
    }
}
