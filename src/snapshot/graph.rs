//! Serde shapes of the Graph resources mi-assess reads.
//!
//! Every field is optional or defaulted so that documented payloads, trimmed `$select`
//! responses and future additions all parse; unknown fields are ignored.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// The `$select` of the bulk service-principal lists (credential-bearing principals).
pub const SERVICE_PRINCIPAL_SELECT: &str = "id,appId,displayName,servicePrincipalType,alternativeNames,accountEnabled,appOwnerOrganizationId,servicePrincipalNames,tags,passwordCredentials,keyCredentials";

/// The `$select` list for managed identities: what the assessment reads of them. Their
/// `servicePrincipalNames` (the app id and an identity.azure.net URI) and `tags` are left out:
/// nothing uses them, and at tens of thousands of identities they are megabytes held for nothing.
pub const MANAGED_IDENTITY_SELECT: &str = "id,appId,displayName,servicePrincipalType,alternativeNames,accountEnabled,passwordCredentials,keyCredentials";

/// The `$select` of one managed identity read by id (targeted scans): as
/// [`MANAGED_IDENTITY_SELECT`] without `keyCredentials`. Selecting `keyCredentials` puts a
/// call under a limit of 150 requests per minute per tenant, so only the bulk lists (999 per
/// page) ask for it; a managed identity holds no credential Graph would list there anyway.
pub const MANAGED_IDENTITY_GET_SELECT: &str =
    "id,appId,displayName,servicePrincipalType,alternativeNames,accountEnabled,passwordCredentials";

/// `servicePrincipalType` of managed identities.
pub const MANAGED_IDENTITY_TYPE: &str = "ManagedIdentity";

/// A Microsoft Entra service principal (`#microsoft.graph.servicePrincipal`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Object id (equals ARM `principalId` for managed identities).
    #[serde(default)]
    pub id: String,
    /// Application (client) id (equals ARM `clientId` for managed identities).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Display name: the resource name (system-assigned) or identity name (user-assigned).
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Application`, `ManagedIdentity`, `Legacy`, …
    #[serde(default)]
    pub service_principal_type: Option<String>,
    /// For managed identities: `isExplicit=…` and the ARM resource id.
    #[serde(default)]
    pub alternative_names: Vec<String>,
    /// Whether sign-in is enabled.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// Tenant that owns the backing application (null for managed identities).
    #[serde(default)]
    pub app_owner_organization_id: Option<String>,
    /// Service principal names.
    #[serde(default)]
    pub service_principal_names: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Client secrets (metadata only; Graph never returns secret values here).
    #[serde(default)]
    pub password_credentials: Vec<Credential>,
    /// Certificates.
    #[serde(default)]
    pub key_credentials: Vec<Credential>,
}

impl ServicePrincipal {
    /// True for `servicePrincipalType eq 'Legacy'`.
    pub fn is_legacy(&self) -> bool {
        self.service_principal_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Legacy"))
    }

    /// True for `servicePrincipalType eq 'ManagedIdentity'`.
    pub fn is_managed_identity(&self) -> bool {
        self.service_principal_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(MANAGED_IDENTITY_TYPE))
    }
}

/// Metadata of a password or key credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// Credential id.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Friendly name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Start of validity (ISO 8601), parsed where it is read.
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    /// End of validity (ISO 8601), parsed where it is read.
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
}

/// An app role a resource service principal defines (`appRoles[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    /// App role id (`appRoleId` in assignments).
    #[serde(default)]
    pub id: String,
    /// Permission name, e.g. `RoleManagement.ReadWrite.Directory`.
    #[serde(default)]
    pub value: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Application` for application permissions.
    #[serde(default)]
    pub allowed_member_types: Vec<String>,
    /// Whether the role can still be assigned.
    #[serde(default)]
    pub is_enabled: Option<bool>,
}

/// A resource service principal with the app roles it defines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceServicePrincipal {
    /// Object id in this tenant.
    #[serde(default)]
    pub id: String,
    /// Application id (the same in every tenant for first-party APIs).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// App roles it defines.
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
}

/// `$select` for resource service principals.
pub const RESOURCE_SERVICE_PRINCIPAL_SELECT: &str = "id,appId,displayName,appRoles";

/// An app role granted to a principal (an application permission).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    /// Assignment id (used to delete it).
    #[serde(default)]
    pub id: String,
    /// App role id, unique within its resource.
    #[serde(default)]
    pub app_role_id: String,
    /// The principal holding the role.
    #[serde(default)]
    pub principal_id: String,
    /// Object id of the resource service principal.
    #[serde(default)]
    pub resource_id: String,
    /// Resource display name.
    #[serde(default)]
    pub resource_display_name: Option<String>,
    /// When it was granted.
    #[serde(default)]
    pub created_date_time: Option<String>,
}

/// `$select` for app role assignments.
pub const APP_ROLE_ASSIGNMENT_SELECT: &str =
    "id,appRoleId,principalId,resourceId,resourceDisplayName,createdDateTime";

/// A directory object from `memberOf`/`transitiveMemberOf`, `owners`, an expanded `owners` or
/// `directoryObjects/getByIds`: a group, a directory role, an administrative unit, a user, a
/// service principal or an application, told apart by `@odata.type`. Fields a type does not have
/// stay `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// `#microsoft.graph.group`, `#microsoft.graph.directoryRole`, …
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    /// Object id.
    #[serde(default)]
    pub id: String,
    /// Display name (null under Graph's limited-information rule).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Group: whether Entra roles can be assigned to it.
    #[serde(default)]
    pub is_assignable_to_role: Option<bool>,
    /// Group: whether it is a security group.
    #[serde(default)]
    pub security_enabled: Option<bool>,
    /// Directory role: the built-in role template id.
    #[serde(default)]
    pub role_template_id: Option<String>,
    /// Service principal or application: the application (client) id, which links an
    /// application registration to its service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Service principal: `Application`, `ManagedIdentity`, `Legacy`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_type: Option<String>,
    /// User: `Member` or `Guest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

impl DirectoryObject {
    /// True for groups.
    pub fn is_group(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.group")
    }

    /// True for activated directory roles.
    pub fn is_directory_role(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.directoryRole")
    }

    /// True for users (members and guests).
    pub fn is_user(&self) -> bool {
        self.odata_type.as_deref() == Some(USER_TYPE)
    }

    /// True for guest users (`userType` `Guest`).
    pub fn is_guest(&self) -> bool {
        self.is_user()
            && self
                .user_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("Guest"))
    }

    /// True for service principals (managed identities included).
    pub fn is_service_principal(&self) -> bool {
        self.odata_type.as_deref() == Some(SERVICE_PRINCIPAL_TYPE)
    }

    /// True for application registrations.
    pub fn is_application(&self) -> bool {
        self.odata_type.as_deref() == Some(APPLICATION_TYPE)
    }

    /// True for a group Graph returned with limited information (the scanner may not read
    /// groups): only its type and id, every other property null. A full group always has a
    /// display name, and `isAssignableToRole: null` then says nothing.
    pub fn is_limited_group(&self) -> bool {
        self.is_group()
            && self.display_name.is_none()
            && self.is_assignable_to_role.is_none()
            && self.security_enabled.is_none()
    }
}

/// `@odata.type` of users.
pub const USER_TYPE: &str = "#microsoft.graph.user";
/// `@odata.type` of service principals.
pub const SERVICE_PRINCIPAL_TYPE: &str = "#microsoft.graph.servicePrincipal";
/// `@odata.type` of application registrations.
pub const APPLICATION_TYPE: &str = "#microsoft.graph.application";
/// `@odata.type` of groups.
pub const GROUP_TYPE: &str = "#microsoft.graph.group";

/// The `$select` nested in `$expand=owners(…)` and used on `/{collection}/{id}/owners`: what
/// tells a user (member or guest) from a service principal (managed identity or not).
/// Properties of derived types are accepted on directory-object collections; a type that lacks
/// one returns it as null.
pub const OWNER_SELECT: &str = "id,displayName,appId,servicePrincipalType,userType";

/// Graph's documented cut of an expanded directory-object relationship: "`$expand` typically
/// returns a maximum of 20 items for the expanded relationship and has no @odata.nextLink"
/// (`concepts/query-parameters.md`). A list this long may be cut and is read again in full.
pub const EXPAND_LIMIT: usize = 20;

/// A directory role definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    /// Definition id (equals the template id for built-in roles).
    #[serde(default)]
    pub id: String,
    /// Template id.
    #[serde(default)]
    pub template_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Built-in or custom.
    #[serde(default)]
    pub is_built_in: Option<bool>,
    /// What the role allows: the directory actions of each permission block (custom roles are
    /// tiered by them).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub role_permissions: Vec<RolePermission>,
    /// Microsoft's "privileged" label. Only Graph **beta** exposes `isPrivileged` (v1.0's
    /// `unifiedRoleDefinition` has no such property), so v1.0 collection leaves it `None` and
    /// the classification data supplies the label for built-in roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_privileged: Option<bool>,
}

/// One permission block of a directory role definition (`unifiedRolePermission`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolePermission {
    /// Directory actions, e.g. `microsoft.directory/applications/credentials/update`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub allowed_resource_actions: Vec<String>,
    /// A condition that narrows the actions (e.g. to owned objects), when there is one.
    #[serde(default)]
    pub condition: Option<String>,
}

/// A list Graph may send as `null` (a `$select`ed property the object lacks) reads as empty.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// `$select` for role definitions (v1.0: `isPrivileged` is beta-only and is not asked for).
pub const ROLE_DEFINITION_SELECT: &str = "id,templateId,displayName,isBuiltIn,rolePermissions";

/// An active directory role assignment, or a PIM schedule (eligible or active).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Assignment or schedule id.
    #[serde(default)]
    pub id: String,
    /// The principal: a service principal, user or role-assignable group.
    #[serde(default)]
    pub principal_id: String,
    /// Role definition id.
    #[serde(default)]
    pub role_definition_id: String,
    /// `/` for the tenant, `/administrativeUnits/{id}` for an AU.
    #[serde(default)]
    pub directory_scope_id: Option<String>,
    /// Schedules: `Direct`, `Group` or `Inherited`.
    #[serde(default)]
    pub member_type: Option<String>,
    /// Active schedules: `Assigned` or `Activated`.
    #[serde(default)]
    pub assignment_type: Option<String>,
    /// Schedules: `Provisioned`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Schedules: start and expiration.
    #[serde(default)]
    pub schedule_info: Option<serde_json::Value>,
}

/// `$select` for active role assignments.
pub const ROLE_ASSIGNMENT_SELECT: &str = "id,principalId,roleDefinitionId,directoryScopeId";
/// `$select` for PIM schedules.
pub const ROLE_SCHEDULE_SELECT: &str =
    "id,principalId,roleDefinitionId,directoryScopeId,memberType,status,scheduleInfo";
/// `$select` for PIM active schedules (adds `assignmentType`).
pub const ROLE_ASSIGNMENT_SCHEDULE_SELECT: &str = "id,principalId,roleDefinitionId,directoryScopeId,memberType,assignmentType,status,scheduleInfo";

/// A delegated permission grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2PermissionGrant {
    /// Grant id.
    #[serde(default)]
    pub id: String,
    /// The client service principal.
    #[serde(default)]
    pub client_id: String,
    /// `AllPrincipals` or `Principal`.
    #[serde(default)]
    pub consent_type: Option<String>,
    /// The user, for `Principal` grants.
    #[serde(default)]
    pub principal_id: Option<String>,
    /// The resource service principal.
    #[serde(default)]
    pub resource_id: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
}

/// `$select` for delegated grants.
pub const OAUTH2_GRANT_SELECT: &str = "id,clientId,consentType,principalId,resourceId,scope";

/// An application registration (only its credentials matter here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Object id of the application.
    #[serde(default)]
    pub id: String,
    /// Application (client) id, shared with its service principal.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Client secrets.
    #[serde(default)]
    pub password_credentials: Vec<Credential>,
    /// Certificates.
    #[serde(default)]
    pub key_credentials: Vec<Credential>,
}

/// `$select` for applications.
pub const APPLICATION_SELECT: &str = "id,appId,displayName,passwordCredentials,keyCredentials";
