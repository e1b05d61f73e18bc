//! Collection: the Graph calls that build a [`TenantSnapshot`]. All I/O of an assessment lives
//! here; nothing in this module judges what it reads.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::graph::model::{MANAGED_IDENTITY_TYPE, SERVICE_PRINCIPAL_SELECT, ServicePrincipal};
use crate::graph::{GraphClient, GraphError};
use crate::snapshot::{SNAPSHOT_SCHEMA_VERSION, ScannerIdentity, TenantSnapshot};

/// Why collection stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A Graph call failed while collecting one data set.
    #[error("collecting {what}: {source}")]
    Graph {
        /// The data set, e.g. "managed identities".
        what: &'static str,
        /// The underlying failure.
        #[source]
        source: GraphError,
    },
    /// The scanner's token carries no tenant id.
    #[error("the Graph access token carries no tenant id (tid claim)")]
    UnknownTenant,
}

impl CollectError {
    fn graph(what: &'static str) -> impl FnOnce(GraphError) -> Self {
        move |source| Self::Graph { what, source }
    }
}

/// The scanner's tenant and identity, from the claims of its Graph token.
pub async fn whoami(graph: &GraphClient) -> Result<(String, ScannerIdentity), CollectError> {
    let claims = graph
        .tokens()
        .claims()
        .await
        .map_err(|e| CollectError::graph("the scanner identity")(e.into()))?;
    let tenant_id = claims.tid.clone().ok_or(CollectError::UnknownTenant)?;
    Ok((
        tenant_id,
        ScannerIdentity {
            object_id: claims.oid,
            app_id: claims.appid,
            roles: claims.roles,
        },
    ))
}

/// Path and query that lists every managed identity, 999 per page.
pub fn managed_identity_list_query() -> String {
    format!(
        "servicePrincipals?$filter=servicePrincipalType eq '{MANAGED_IDENTITY_TYPE}'&$select={SERVICE_PRINCIPAL_SELECT}&$top=999"
    )
}

/// Reads the whole tenant into a snapshot.
pub async fn collect_tenant(graph: &GraphClient) -> Result<TenantSnapshot, CollectError> {
    let (tenant_id, scanner) = whoami(graph).await?;
    collect_tenant_as(graph, tenant_id, scanner).await
}

/// Reads the whole tenant into a snapshot, for a scanner whose tenant and identity are known.
pub async fn collect_tenant_as(
    graph: &GraphClient,
    tenant_id: String,
    scanner: ScannerIdentity,
) -> Result<TenantSnapshot, CollectError> {
    let managed_identities: Vec<ServicePrincipal> = graph
        .list(&managed_identity_list_query())
        .await
        .map_err(CollectError::graph("managed identities"))?;
    tracing::info!(
        count = managed_identities.len(),
        "listed managed identities"
    );
    Ok(TenantSnapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION.to_owned(),
        tenant_id,
        collected_at: OffsetDateTime::now_utc(),
        graph_endpoint: graph.endpoint().to_string(),
        scanner,
        managed_identities,
    })
}

/// Reads one service principal and returns it only if it is a managed identity.
pub async fn fetch_managed_identity(
    graph: &GraphClient,
    object_id: Uuid,
) -> Result<Option<ServicePrincipal>, GraphError> {
    let path = format!("servicePrincipals/{object_id}?$select={SERVICE_PRINCIPAL_SELECT}");
    match graph.get::<ServicePrincipal>(&path).await {
        Ok(sp) if sp.is_managed_identity() => Ok(Some(sp)),
        Ok(_) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
