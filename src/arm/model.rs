//! Wire types of the Azure Resource Manager calls mi-assess makes: the Resource Graph request
//! and response, the rows its KQL queries project ([`super::queries`]), and the federated
//! identity credential list. Every field has a serde default, so a missing column or property
//! reads as empty rather than failing the whole page; unknown fields are ignored.
//!
//! The rows themselves are snapshot data (`crate::snapshot::azure`): raw rows, not conclusions,
//! so a run can be replayed offline.

use serde::{Deserialize, Serialize};

use crate::snapshot::azure::FederatedCredential;

/// Body of `POST {arm}/providers/Microsoft.ResourceGraph/resources`.
#[derive(Debug, Clone, Serialize)]
pub struct QueryRequest<'a> {
    /// The KQL query.
    pub query: &'a str,
    /// Paging and format options.
    pub options: QueryOptions<'a>,
}

/// `QueryRequestOptions`: page size, continuation token and result shape.
#[derive(Debug, Clone, Serialize)]
pub struct QueryOptions<'a> {
    /// Rows per page (Resource Graph allows at most 1000).
    #[serde(rename = "$top")]
    pub top: u32,
    /// Continuation token from the previous page.
    #[serde(rename = "$skipToken", skip_serializing_if = "Option::is_none")]
    pub skip_token: Option<&'a str>,
    /// `objectArray`: each row is a JSON object keyed by column name.
    #[serde(rename = "resultFormat")]
    pub result_format: &'a str,
}

/// One page of a Resource Graph answer. `data` is required: a page without it is malformed.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryResponse {
    /// Rows matching the query across every page.
    #[serde(rename = "totalRecords", default)]
    pub total_records: u64,
    /// Rows in this page.
    #[serde(default)]
    pub count: u64,
    /// The rows (`objectArray` format).
    pub data: Vec<serde_json::Value>,
    /// Continuation token; absent on the last page.
    #[serde(rename = "$skipToken", default)]
    pub skip_token: Option<String>,
    /// `"true"` when Resource Graph cut the result short (it does without `$skipToken` when the
    /// query projects no `id` column).
    #[serde(rename = "resultTruncated", default)]
    pub result_truncated: Option<serde_json::Value>,
}

impl QueryResponse {
    /// True when Resource Graph says the result is truncated.
    pub fn is_truncated(&self) -> bool {
        match &self.result_truncated {
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(serde_json::Value::Bool(b)) => *b,
            _ => false,
        }
    }
}

/// One page of `GET …/userAssignedIdentities/{name}/federatedIdentityCredentials`.
#[derive(Debug, Clone, Deserialize)]
pub struct FederatedCredentialPage {
    /// The credentials.
    pub value: Vec<FederatedCredentialResource>,
    /// The next page, when there is one.
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

/// A federated identity credential as ARM returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FederatedCredentialResource {
    /// Resource id.
    pub id: String,
    /// Credential name.
    pub name: String,
    /// The trust.
    pub properties: FederatedCredentialProperties,
}

/// `properties` of a federated identity credential.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FederatedCredentialProperties {
    /// The external token issuer.
    pub issuer: String,
    /// The external subject (empty when a claims-matching expression is used instead).
    pub subject: Option<String>,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Flexible federated credential expression (newer API versions), when present.
    pub claims_matching_expression: Option<serde_json::Value>,
}

impl From<FederatedCredentialResource> for FederatedCredential {
    fn from(r: FederatedCredentialResource) -> Self {
        Self {
            id: r.id,
            name: r.name,
            issuer: r.properties.issuer,
            subject: r.properties.subject.filter(|s| !s.is_empty()),
            audiences: r.properties.audiences,
            claims_matching_expression: r
                .properties
                .claims_matching_expression
                .filter(|v| !v.is_null()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::azure::{IdentityResourceRow, RoleAssignmentRow};

    #[test]
    fn rows_tolerate_missing_and_extra_columns() {
        let row: RoleAssignmentRow = serde_json::from_value(serde_json::json!({
            "id": "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/a",
            "principalId": "p", "roleDefinitionId": "/providers/x/roleDefinitions/g",
            "scope": "/subscriptions/s", "somethingNew": 1
        }))
        .expect("parses");
        assert_eq!(row.principal_type, None);
        let resource: IdentityResourceRow = serde_json::from_value(serde_json::json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a",
            "type": "microsoft.web/sites",
            "userAssignedIdentities": {"/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u": {"principalId": "x"}}
        }))
        .expect("parses");
        assert_eq!(resource.attached_identities().count(), 1);
        let page: QueryResponse = serde_json::from_value(serde_json::json!({
            "totalRecords": 3, "count": 1, "data": [{}], "$skipToken": "t", "resultTruncated": "false"
        }))
        .expect("parses");
        assert!(!page.is_truncated());
        assert!(serde_json::from_value::<QueryResponse>(serde_json::json!({"count": 0})).is_err());
    }

    #[test]
    fn federated_credentials_flatten_their_properties() {
        let page: FederatedCredentialPage = serde_json::from_value(serde_json::json!({
            "value": [{"id": "/x/federatedIdentityCredentials/gh", "name": "gh",
                "properties": {"issuer": "https://token.actions.githubusercontent.com",
                    "subject": "repo:o/r:environment:prod", "audiences": ["api://AzureADTokenExchange"]}}]
        }))
        .expect("parses");
        let fic: FederatedCredential = page.value.into_iter().next().expect("one").into();
        assert_eq!(fic.name, "gh");
        assert_eq!(fic.subject.as_deref(), Some("repo:o/r:environment:prod"));
        assert_eq!(fic.audiences, vec!["api://AzureADTokenExchange".to_owned()]);
    }
}
