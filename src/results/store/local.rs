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
            Err(e) if is_missing(&e) => Ok(None),
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
            Err(e) if is_missing(&e) => return Ok(None),
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
        // Appended, never `with_extension`: that would turn `x/..json` into `x/..`.
        let mut temp = full.clone().into_os_string();
        temp.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let temp = PathBuf::from(temp);
        let mut file = tokio::fs::File::create(&temp).await.map_err(io)?;
        for chunk in chunks {
            file.write_all(&chunk?).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&temp, &full).await.map_err(io)
    }

    async fn try_lock(&self, path: &str, holder: &str) -> Result<LockAttempt, StoreError> {
        let holder = holder.to_owned();
        let lock_path = path.to_owned();
        self.update_lock(path, move |existing, now| match existing {
            Some(held) if held.expires > now => (
                LockChange::Keep,
                LockAttempt::Held {
                    holder: Some(held.holder),
                },
            ),
            expired => {
                let token = uuid::Uuid::new_v4().to_string();
                let lock = Lock {
                    path: lock_path,
                    lease_id: token.clone(),
                    holder: holder.clone(),
                    previous_holder: expired.map(|e| e.holder),
                };
                (
                    LockChange::Write(LocalLock::new(holder, token, now)),
                    LockAttempt::Acquired(lock),
                )
            }
        })
        .await
    }

    async fn renew_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        let token = lock.lease_id.clone();
        let holder = lock.holder.clone();
        let path = lock.path.clone();
        self.update_lock(&lock.path, move |existing, now| match existing {
            Some(held) if held.token == token => (
                LockChange::Write(LocalLock::new(holder, token, now)),
                Ok(()),
            ),
            // Lost: another run took the lock after this one's expired.
            _ => (
                LockChange::Keep,
                Err(StoreError::Io {
                    operation: "renew",
                    path,
                    message: "the lock is no longer held by this run".into(),
                }),
            ),
        })
        .await?
    }

    async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        let token = lock.lease_id.clone();
        self.update_lock(&lock.path, move |existing, _| match existing {
            Some(held) if held.token == token => (LockChange::Remove, ()),
            _ => (LockChange::Keep, ()),
        })
        .await
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

/// True when an I/O error means the file is not there: missing, or a path that runs through a
/// file (`a.json/child`), which cannot exist either.
fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// The content of a local lock file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LocalLock {
    holder: String,
    token: String,
    expires: i64,
}

impl LocalLock {
    fn new(holder: String, token: String, now: i64) -> Self {
        Self {
            holder,
            token,
            expires: now + i64::from(LOCK_TTL_SECONDS),
        }
    }
}

/// What a lock operation does to the lock file.
enum LockChange {
    Keep,
    Write(LocalLock),
    Remove,
}

impl LocalStore {
    async fn read_local_lock(&self, path: &str) -> Result<Option<LocalLock>, StoreError> {
        match self.get(path).await? {
            // An unreadable lock file is treated as absent: it cannot prove anyone holds it.
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            None => Ok(None),
        }
    }

    /// Reads the lock file at `path`, lets `decide` choose what to do with it, and does it, all
    /// under an exclusive OS lock on a `.guard` file beside it: a second process (or task)
    /// waits, then sees the first one's write. Never a read-then-write race.
    async fn update_lock<T: Send + 'static>(
        &self,
        path: &str,
        decide: impl FnOnce(Option<LocalLock>, i64) -> (LockChange, T) + Send + 'static,
    ) -> Result<T, StoreError> {
        let full = self.resolve(path)?;
        let path = path.to_owned();
        let io = move |operation: &'static str, e: std::io::Error| StoreError::Io {
            operation,
            path: path.clone(),
            message: e.to_string(),
        };
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("lock", e))?;
            }
            let mut guard_name = full.clone().into_os_string();
            guard_name.push(".guard");
            let guard = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&guard_name)
                .map_err(|e| io("lock", e))?;
            guard.lock().map_err(|e| io("lock", e))?;
            let existing = match std::fs::read(&full) {
                Ok(bytes) => serde_json::from_slice::<LocalLock>(&bytes).ok(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io("lock", e)),
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let (change, answer) = decide(existing, now);
            match change {
                LockChange::Keep => {}
                LockChange::Write(lock) => {
                    let body = serde_json::to_vec(&lock)
                        .map_err(|e| io("lock", std::io::Error::other(e)))?;
                    let mut temp = full.clone().into_os_string();
                    temp.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
                    std::fs::write(&temp, body).map_err(|e| io("lock", e))?;
                    std::fs::rename(&temp, &full).map_err(|e| io("lock", e))?;
                }
                LockChange::Remove => match std::fs::remove_file(&full) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io("release", e)),
                },
            }
            // Dropping the guard file releases the OS lock.
            drop(guard);
            Ok(answer)
        })
        .await
        .map_err(|e| StoreError::Io {
            operation: "lock",
            path: String::new(),
            message: e.to_string(),
        })?
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;

    use super::*;

    /// Many takers at once, as two CLI runs into one folder are: exactly one gets the lock
    /// (the read-then-write lock this replaced let 3 of 6 tries overlap).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_takers_get_the_lock_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        for round in 0..5 {
            let path = format!("locks/tenant-{round}.lock");
            let takers: Vec<_> = (0..16)
                .map(|i| {
                    let store = LocalStore::new(dir.path());
                    let path = path.clone();
                    tokio::spawn(async move { store.try_lock(&path, &format!("run-{i}")).await })
                })
                .collect();
            let mut acquired = 0;
            for taker in takers {
                if let LockAttempt::Acquired(_) = taker.await.expect("joins").expect("locks") {
                    acquired += 1;
                }
            }
            assert_eq!(
                acquired, 1,
                "round {round}: {acquired} takers hold the lock"
            );
        }
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
