//! Wire types of the Azure Resource Manager calls mi-assess makes: the Resource Graph request
//! and response, the rows its KQL queries project ([`super::queries`]), and the federated
//! identity credential list. Every field has a serde default, so a missing column or property
//! reads as empty rather than failing the whole page; unknown fields are ignored.
//!
//! The rows themselves are snapshot data (`crate::snapshot::azure`): raw rows, not conclusions,
//! so a run can be replayed offline.

use serde::{Deserialize, Serialize};

use crate::snapshot::azure::{EligibleRoleAssignmentRow, FederatedCredential};

/// Body of `POST {arm}/providers/Microsoft.ResourceGraph/resources`.
#[derive(Debug, Clone, Serialize)]
pub struct QueryRequest<'a> {
    /// The KQL query.
    pub query: &'a str,
    /// The subscriptions to run it on; absent for the whole tenant (every subscription the
    /// caller can read, up to Resource Graph's subscription limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<&'a [String]>,
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

/// One page of `GET /subscriptions` (Subscriptions - List): every subscription the caller can
/// read, with no subscription limit.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionListPage {
    /// The subscriptions.
    pub value: Vec<SubscriptionListItem>,
    /// The next page, when there is one.
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

/// One subscription of a [`SubscriptionListPage`]: only its id is read (Resource Graph gives
/// the rest, ancestry included, once it is asked for that subscription).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionListItem {
    /// The subscription id (a GUID).
    pub subscription_id: String,
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

/// One page of `GET {scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances`.
#[derive(Debug, Clone, Deserialize)]
pub struct EligibilityInstancePage {
    /// The instances.
    pub value: Vec<EligibilityInstance>,
    /// The next page, when there is one.
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

/// A role eligibility schedule instance as ARM returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EligibilityInstance {
    /// Resource id.
    pub id: String,
    /// What the eligibility is (`properties` of the instance).
    pub properties: EligibilityInstanceProperties,
}

/// `properties` of a role eligibility schedule instance (`expandedProperties` is not kept: it
/// repeats names the snapshot has elsewhere).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EligibilityInstanceProperties {
    /// The eligibility's scope.
    pub scope: String,
    /// The role definition id.
    pub role_definition_id: String,
    /// The eligible principal.
    pub principal_id: String,
    /// Its type.
    pub principal_type: Option<String>,
    /// The master schedule.
    pub role_eligibility_schedule_id: Option<String>,
    /// `Provisioned`, …
    pub status: Option<String>,
    /// Start.
    pub start_date_time: Option<String>,
    /// End (none: permanent).
    pub end_date_time: Option<String>,
    /// `Direct`, `Group` or `Inherited`.
    pub member_type: Option<String>,
    /// ABAC condition.
    pub condition: Option<String>,
    /// Created.
    pub created_on: Option<String>,
}

impl From<EligibilityInstance> for EligibleRoleAssignmentRow {
    fn from(i: EligibilityInstance) -> Self {
        let p = i.properties;
        Self {
            id: i.id,
            scope: p.scope,
            principal_id: p.principal_id,
            principal_type: p.principal_type,
            role_definition_id: p.role_definition_id,
            condition: p.condition.filter(|c| !c.trim().is_empty()),
            member_type: p.member_type,
            status: p.status,
            start_date_time: p.start_date_time,
            end_date_time: p.end_date_time,
            role_eligibility_schedule_id: p.role_eligibility_schedule_id,
            created_on: p.created_on,
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
        assert_eq!(resource.deployment_storage, None);
        let app: IdentityResourceRow = serde_json::from_value(serde_json::json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/f",
            "deploymentStorage": "https://st.blob.core.windows.net/app-package",
            "deploymentStorageAuthentication": ""
        }))
        .expect("parses");
        assert_eq!(
            app.deployment_storage.as_deref(),
            Some("https://st.blob.core.windows.net/app-package")
        );
        assert_eq!(
            app.deployment_storage_authentication, None,
            "Resource Graph's empty string is none"
        );
        let blank: IdentityResourceRow =
            serde_json::from_value(serde_json::json!({"id": "x", "deploymentStorage": "  "}))
                .expect("parses");
        assert_eq!(blank.deployment_storage, None);
        let page: QueryResponse = serde_json::from_value(serde_json::json!({
            "totalRecords": 3, "count": 1, "data": [{}], "$skipToken": "t", "resultTruncated": "false"
        }))
        .expect("parses");
        assert!(!page.is_truncated());
        assert!(serde_json::from_value::<QueryResponse>(serde_json::json!({"count": 0})).is_err());
    }

    #[test]
    fn eligibility_instances_flatten_their_properties() {
        // The documented example (azure-rest-api-specs, GetRoleEligibilityScheduleInstancesByScope).
        let page: EligibilityInstancePage = serde_json::from_value(serde_json::json!({
            "value": [{
                "properties": {
                    "scope": "/subscriptions/dfa2a084-766f-4003-8ae1-c4aeb893a99f",
                    "roleDefinitionId": "/subscriptions/dfa2a084-766f-4003-8ae1-c4aeb893a99f/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
                    "principalId": "a3bb8764-cb92-4276-9d2a-ca1e895e55ea",
                    "principalType": "User",
                    "status": "Provisioned",
                    "roleEligibilityScheduleId": "/subscriptions/dfa2a084-766f-4003-8ae1-c4aeb893a99f/providers/Microsoft.Authorization/RoleEligibilitySchedules/b1477448-2cc6-4ceb-93b4-54a202a89413",
                    "startDateTime": "2020-09-10T00:32:36.86Z",
                    "endDateTime": "2021-09-10T00:31:41.477Z",
                    "memberType": "Direct",
                    "createdOn": "2020-09-10T00:32:36.86Z",
                    "condition": "",
                    "expandedProperties": {"principal": {"displayName": "User Account"}}
                },
                "name": "21e4b59a-0499-4fe0-a3c3-43a3055b773a",
                "id": "/subscriptions/dfa2a084-766f-4003-8ae1-c4aeb893a99f/providers/Microsoft.Authorization/RoleEligibilityScheduleInstances/21e4b59a-0499-4fe0-a3c3-43a3055b773a",
                "type": "Microsoft.Authorization/RoleEligibilityScheduleInstances"
            }]
        }))
        .expect("parses");
        let row: EligibleRoleAssignmentRow = page.value.into_iter().next().expect("one").into();
        assert_eq!(row.principal_type.as_deref(), Some("User"));
        assert_eq!(
            row.scope,
            "/subscriptions/dfa2a084-766f-4003-8ae1-c4aeb893a99f"
        );
        assert_eq!(row.condition, None, "an empty condition is none");
        assert!(row.is_provisioned());
        assert_eq!(
            row.as_assignment().role_definition_id,
            row.role_definition_id
        );
        assert!(page.next_link.is_none());
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
