//! Result stores: one small trait, with Azure Blob Storage and local-directory implementations
//! that share the same layout.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{NoFormat, RequestContent, StatusCode};
use azure_storage_blob::models::BlockBlobClientUploadOptions;
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use bytes::Bytes;
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

/// Where a run's files go. Paths are `/`-separated and relative to the store's root.
#[async_trait]
pub trait ResultStore: Send + Sync + std::fmt::Debug {
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
        _content_type: &str,
        _metadata: &[(&str, &str)],
    ) -> Result<(), StoreError> {
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
        tokio::fs::write(&temp, &body).await.map_err(io)?;
        tokio::fs::rename(&temp, &full).await.map_err(io)
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

    fn location(&self, path: &str) -> String {
        self.root.join(path).display().to_string()
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
        validate(path)?;
        let io = |e: azure_core::Error| StoreError::Io {
            operation: "read",
            path: path.to_owned(),
            message: e.to_string(),
        };
        match self.container.blob_client(path).download(None).await {
            Ok(result) => result.body.collect().await.map(Some).map_err(io),
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
}
