//! [`LocalStore`]: results in a local directory (the CLI's `--out`), with lock files standing in
//! for blob leases.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;

use super::{
    ByteStream, Chunks, LOCK_TTL_SECONDS, Lock, LockAttempt, ResultStore, StoreError, validate,
};

/// Bytes read per chunk from a local file.
const LOCAL_READ_CHUNK: usize = 1024 * 1024;

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

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;

    use super::*;

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
