//! [`BlobStore`]: results in an Azure Blob Storage container; locks are blob leases.

use std::collections::HashMap;
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

use super::{
    ByteStream, Chunks, LOCK_TTL_SECONDS, Lock, LockAttempt, ResultStore, StoreError, validate,
};

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
            // A missing container is not a missing file: a run id would read "not found"
            // where the truth is a broken deployment.
            Err(e) if is_container_missing(&e) => Err(StoreError::ContainerMissing {
                container: self.container_url.to_string(),
            }),
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
                // The last holder's run id is still on the blob (release keeps it).
                let previous_holder = match client.get_properties(None).await {
                    Ok(properties) => run_id_of(&properties.metadata().map_err(io)?),
                    Err(e) => return Err(io(e)),
                };
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
                    previous_holder,
                }))
            }
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(LockAttempt::Held {
                holder: self.lock_holder(path).await?,
            }),
            Err(e) => Err(io(e)),
        }
    }

    async fn renew_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        validate(&lock.path)?;
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
        validate(&lock.path)?;
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
                Ok(run_id_of(&properties.metadata().map_err(io)?))
            }
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }
}

/// The `runId` a lock blob's metadata names (header names, and so metadata keys, come back
/// lower-cased).
fn run_id_of(metadata: &HashMap<String, String>) -> Option<String> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("runId"))
        .map(|(_, v)| v.clone())
}

/// True when Storage answered `ContainerNotFound`.
fn is_container_missing(e: &azure_core::Error) -> bool {
    matches!(
        e.kind(),
        azure_core::error::ErrorKind::HttpResponse { error_code: Some(code), .. }
            if code.eq_ignore_ascii_case("ContainerNotFound")
    )
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
