//! Tier classification of permissions and roles (Enterprise Access Model).
//!
//! This module owns one question: how privileged is an application permission (app role), an Entra
//! directory role or an Azure built-in role? The answer is a [`Tier`] (ControlPlane,
//! ManagementPlane, UserAccess) plus whether it came from the dataset or from a name heuristic
//! ([`Tiering::classified`]).
//!
//! The data is a compact copy of the MIT-licensed AzurePrivilegedIAM (EntraOps) classification
//! files, shipped in `data/classification/` with its licence and provenance (`SOURCES.md` there)
//! and embedded at compile time. The black-box test `classification_sync` keeps it in step with
//! the source files and regenerates it. Row formats:
//! - `app-roles.json`: `[resourceAppId, appRoleId, value, tier, category]`;
//! - `directory-roles.json`: `[templateId, name, isPrivileged, tier]`;
//! - `directory-role-actions.json`: `[action, tier]`, the tier of each directory action
//!   (`microsoft.directory/…`) the built-in roles carry, which tiers custom roles;
//! - `azure-roles.json`: `[roleDefinitionId, name, isPrivileged, tier]`;
//!
//! with `tier` one of `"controlPlane"`, `"managementPlane"`, `"userAccess"` or `null`
//! (unclassified upstream).
//!
//! Lookups are case-insensitive on ids. Strings in the results borrow from the [`Classifier`]; for
//! [`Classifier::embedded`] they are `'static`.
//!
//! Nothing here panics on bad data: if the embedded data cannot be parsed (a unit test guards
//! against that), [`Classifier::embedded`] logs an error and falls back to an empty classifier, so
//! every permission is tiered by name and no role is recognised.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

const APP_ROLES_JSON: &str = include_str!("../data/classification/app-roles.json");
const DIRECTORY_ROLES_JSON: &str = include_str!("../data/classification/directory-roles.json");
const AZURE_ROLES_JSON: &str = include_str!("../data/classification/azure-roles.json");
const DIRECTORY_ROLE_ACTIONS_JSON: &str =
    include_str!("../data/classification/directory-role-actions.json");

/// Enterprise Access Model tier; `Ord` so that `max()` gives the most privileged:
/// `UserAccess < ManagementPlane < ControlPlane`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tier {
    /// Tier 2: ordinary access.
    UserAccess,
    /// Tier 1: can manage, or read sensitive data of, workloads.
    ManagementPlane,
    /// Tier 0: can take over the tenant or its identities.
    ControlPlane,
}

impl Tier {
    /// The wire name: `"userAccess"`, `"managementPlane"` or `"controlPlane"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::UserAccess => "userAccess",
            Tier::ManagementPlane => "managementPlane",
            Tier::ControlPlane => "controlPlane",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier plus whether it came from the dataset (`classified: true`) or from a heuristic
/// (`classified: false`, reported as "unclassified").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tiering {
    /// The tier.
    pub tier: Tier,
    /// `true` when the dataset tiers this item, `false` when a heuristic did.
    pub classified: bool,
}

impl Tiering {
    const fn classified(tier: Tier) -> Self {
        Tiering {
            tier,
            classified: true,
        }
    }

    const fn unclassified(tier: Tier) -> Self {
        Tiering {
            tier,
            classified: false,
        }
    }
}

/// Classification of one application permission (app role assignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleClass<'a> {
    /// Its tier.
    pub tiering: Tiering,
    /// The permission's value (name) from the dataset; `None` when the dataset does not know it.
    pub value: Option<&'a str>,
    /// The dataset's category, such as `"Privileged IAM"`; `None` when unknown.
    pub category: Option<&'a str>,
}

/// Classification of one Entra directory role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRoleClass<'a> {
    /// The role's display name in the dataset.
    pub name: &'a str,
    /// Microsoft's `isPrivileged` label (beta `unifiedRoleDefinition.isPrivileged`).
    pub is_privileged: bool,
    /// Its tier; see [`Classifier::directory_role`] for roles the dataset leaves unclassified.
    pub tiering: Tiering,
}

/// Classification of one Azure built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureRoleClass<'a> {
    /// The role's name in the dataset.
    pub name: &'a str,
    /// The dataset's `isPrivileged` label (Azure "privileged administrator" roles).
    pub is_privileged: bool,
    /// Its tier; see [`Classifier::azure_role`] for roles the dataset leaves unclassified.
    pub tiering: Tiering,
}

/// The embedded data could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("classification data {file} is malformed: {source}")]
pub struct DataError {
    file: &'static str,
    #[source]
    source: serde_json::Error,
}

/// `[resourceAppId, appRoleId, value, tier, category]`
type AppRoleRow = (String, String, String, Option<Tier>, String);
/// `[id, name, isPrivileged, tier]`
type RoleRow = (String, String, bool, Option<Tier>);
/// `[action, tier]`
type ActionRow = (String, Option<Tier>);

#[derive(Debug)]
struct AppRoleEntry {
    value: String,
    tier: Option<Tier>,
    category: String,
}

#[derive(Debug)]
struct RoleEntry {
    name: String,
    is_privileged: bool,
    tier: Option<Tier>,
}

impl RoleEntry {
    /// The dataset's tier, or for an unclassified role: ControlPlane if it is labelled
    /// privileged, otherwise ManagementPlane (unknown is never assumed harmless).
    fn tiering(&self) -> Tiering {
        match self.tier {
            Some(tier) => Tiering::classified(tier),
            None if self.is_privileged => Tiering::unclassified(Tier::ControlPlane),
            None => Tiering::unclassified(Tier::ManagementPlane),
        }
    }
}

/// Tiers permissions and roles from the classification data. Use [`Classifier::embedded`].
#[derive(Default)]
pub struct Classifier {
    /// Keyed by (resource appId, appRoleId), both lower-case: app role ids are unique only per
    /// resource app (Graph and Exchange Online share several).
    app_roles: HashMap<(String, String), AppRoleEntry>,
    /// Keyed by lower-case role template id.
    directory_roles: HashMap<String, RoleEntry>,
    /// Keyed by lower-case role definition GUID.
    azure_roles: HashMap<String, RoleEntry>,
    /// Keyed by lower-case directory action.
    directory_role_actions: HashMap<String, Option<Tier>>,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("app_roles", &self.app_roles.len())
            .field("directory_roles", &self.directory_roles.len())
            .field("azure_roles", &self.azure_roles.len())
            .field("directory_role_actions", &self.directory_role_actions.len())
            .finish()
    }
}

/// Microsoft Graph's application id.
pub const MICROSOFT_GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Graph application permissions with a direct path to Global Administrator (AzTier "Direct",
/// plus the two the assessment issue names: AppRoleAssignment/Application.ReadWrite.All).
pub const DIRECT_TO_GLOBAL_ADMIN: &[&str] = &[
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
    "Application.ReadWrite.All",
    "RoleAssignmentSchedule.ReadWrite.Directory",
    "PrivilegedAccess.ReadWrite.AzureADGroup",
    "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-TAP.ReadWrite.All",
    "UserAuthMethod-Phone.ReadWrite.All",
    "UserAuthMethod-HardwareOATH.ReadWrite.All",
    "UserAuthMethod-QR.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
    "DelegatedAdminRelationship.ReadWrite.All",
    "User.DeleteRestore.All",
    "User.EnableDisableAccount.All",
];

static EMBEDDED: LazyLock<Classifier> = LazyLock::new(|| {
    match Classifier::from_json(APP_ROLES_JSON, DIRECTORY_ROLES_JSON, AZURE_ROLES_JSON)
        .and_then(|c| c.with_directory_role_actions(DIRECTORY_ROLE_ACTIONS_JSON))
    {
        Ok(classifier) => classifier,
        Err(e) => {
            tracing::error!(
                error = %e,
                "embedded classification data is unreadable; permissions are tiered by name only \
                 and no directory or Azure role is recognised"
            );
            Classifier::default()
        }
    }
});

impl Classifier {
    /// The classifier over the data shipped in `data/classification/`, parsed once.
    pub fn embedded() -> &'static Classifier {
        &EMBEDDED
    }

    /// Builds a classifier from the three compact files (formats in the module docs). Ids are
    /// matched case-insensitively; if an id appears twice, the more privileged row wins.
    pub fn from_json(
        app_roles: &str,
        directory_roles: &str,
        azure_roles: &str,
    ) -> Result<Classifier, DataError> {
        let app_rows: Vec<AppRoleRow> = parse("app-roles.json", app_roles)?;
        let directory_rows: Vec<RoleRow> = parse("directory-roles.json", directory_roles)?;
        let azure_rows: Vec<RoleRow> = parse("azure-roles.json", azure_roles)?;

        let mut classifier = Classifier::default();
        for (app_id, role_id, value, tier, category) in app_rows {
            let key = (normalize_id(&app_id), normalize_id(&role_id));
            let entry = AppRoleEntry {
                value,
                tier,
                category,
            };
            match classifier.app_roles.get(&key) {
                Some(existing) if existing.tier >= entry.tier => {}
                _ => {
                    classifier.app_roles.insert(key, entry);
                }
            }
        }
        insert_roles(&mut classifier.directory_roles, directory_rows);
        insert_roles(&mut classifier.azure_roles, azure_rows);
        Ok(classifier)
    }

    /// Adds the per-action tiers of directory roles (`directory-role-actions.json`, format in the
    /// module docs); if an action appears twice, the more privileged row wins.
    pub fn with_directory_role_actions(mut self, actions: &str) -> Result<Classifier, DataError> {
        let rows: Vec<ActionRow> = parse("directory-role-actions.json", actions)?;
        for (action, tier) in rows {
            let key = normalize_id(&action);
            let entry = self.directory_role_actions.entry(key).or_insert(tier);
            *entry = (*entry).max(tier);
        }
        Ok(self)
    }

    /// Tier of one directory action (`allowedResourceActions` of a role definition), e.g.
    /// `microsoft.directory/applications/credentials/update`: the dataset's tier, looked up
    /// case-insensitively; for an action it does not know (or leaves unclassified), the
    /// [`tier_by_action`] heuristic, marked `classified: false`.
    pub fn directory_role_action(&self, action: &str) -> Tiering {
        match self.directory_role_actions.get(&normalize_id(action)) {
            Some(Some(tier)) => Tiering::classified(*tier),
            _ => Tiering::unclassified(tier_by_action(action)),
        }
    }

    /// Tier of a custom (or unlisted) directory role by its actions: the highest tier among
    /// them, `classified` only when the dataset tiers every action. A role with no action is
    /// ManagementPlane, unclassified: an unknown role is never assumed harmless.
    pub fn directory_role_by_actions<'a>(
        &self,
        actions: impl IntoIterator<Item = &'a str>,
    ) -> Tiering {
        let mut result: Option<Tiering> = None;
        for action in actions {
            let tiering = self.directory_role_action(action);
            result = Some(match result {
                None => tiering,
                Some(so_far) => Tiering {
                    tier: so_far.tier.max(tiering.tier),
                    classified: so_far.classified && tiering.classified,
                },
            });
        }
        result.unwrap_or(Tiering::unclassified(Tier::ManagementPlane))
    }

    /// Tier of an application permission held through an app role assignment.
    ///
    /// `resource_app_id` is the resource's **appId** (e.g. Graph `00000003-0000-0000-c000-000000000000`),
    /// not the resource service principal's object id. The pair (resource appId, appRoleId) is
    /// looked up case-insensitively; a role id known only for a different resource app is not
    /// used, because app role ids are unique only per resource.
    ///
    /// If the pair is unknown (or the dataset leaves it unclassified), the permission is tiered by
    /// its name with [`tier_by_name`] (`value`, or the dataset's value when known) and marked
    /// `classified: false`.
    pub fn app_role(
        &self,
        resource_app_id: &str,
        app_role_id: &str,
        value: Option<&str>,
    ) -> AppRoleClass<'_> {
        let key = (normalize_id(resource_app_id), normalize_id(app_role_id));
        match self.app_roles.get(&key) {
            Some(entry) => AppRoleClass {
                tiering: match entry.tier {
                    Some(tier) => Tiering::classified(tier),
                    None => Tiering::unclassified(tier_by_name(&entry.value)),
                },
                value: Some(entry.value.as_str()),
                category: non_empty(&entry.category),
            },
            None => AppRoleClass {
                tiering: Tiering::unclassified(tier_by_name(value.unwrap_or_default())),
                value: None,
                category: None,
            },
        }
    }

    /// Tier of a Microsoft Graph application permission known only by its name (a token's
    /// `roles` claim): the dataset's tier for the Graph permission of that value, else
    /// [`tier_by_name`].
    pub fn graph_permission_tier(&self, value: &str) -> Tier {
        let graph = normalize_id(MICROSOFT_GRAPH_APP_ID);
        self.app_roles
            .iter()
            .find(|((app, _), entry)| *app == graph && entry.value.eq_ignore_ascii_case(value))
            .and_then(|(_, entry)| entry.tier)
            .unwrap_or_else(|| tier_by_name(value))
    }

    /// A built-in directory role by its template id (case-insensitive), or `None` when the
    /// dataset does not list it (custom roles, roles newer than the data).
    ///
    /// The three roles the dataset leaves unclassified (Device Join, Device Users, Workplace
    /// Device Join, which carry no permissions there) get `classified: false` and ControlPlane if
    /// labelled privileged, otherwise ManagementPlane.
    pub fn directory_role(&self, template_id: &str) -> Option<DirectoryRoleClass<'_>> {
        let entry = self.directory_roles.get(&normalize_id(template_id))?;
        Some(DirectoryRoleClass {
            name: &entry.name,
            is_privileged: entry.is_privileged,
            tiering: entry.tiering(),
        })
    }

    /// An Azure built-in role by its role definition GUID (case-insensitive), or `None` when the
    /// dataset does not list it (custom roles, roles newer than the data).
    ///
    /// Also accepts a full ARM id such as
    /// `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}`; the GUID
    /// is its last segment. The tier is the highest among the role's classified actions; the
    /// few roles with none are tiered like unclassified directory roles.
    pub fn azure_role(&self, role_definition_id: &str) -> Option<AzureRoleClass<'_>> {
        let guid = role_definition_id
            .trim()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let entry = self.azure_roles.get(&normalize_id(guid))?;
        Some(AzureRoleClass {
            name: &entry.name,
            is_privileged: entry.is_privileged,
            tiering: entry.tiering(),
        })
    }
}

/// Name parts that make a permission more than a read ([`tier_by_name`]).
const WRITE_MARKERS: [&str; 20] = [
    "write",
    "fullcontrol",
    "full_access",
    "manage",
    "send",
    "delete",
    "admin",
    "create",
    "update",
    "invite",
    "enable",
    "disable",
    "restore",
    "provision",
    "assign",
    "reset",
    "revoke",
    "import",
    "execute",
    "impersonat",
];

/// Tiers a permission by its name alone; used for permissions the dataset does not know.
/// Matching is case-insensitive, on substrings, checked in this order:
///
/// 1. **ControlPlane** when the name starts with `RoleManagement` and contains `Write`, starts
///    with `AppRoleAssignment.` or `Application.ReadWrite.`, is `Directory.ReadWrite.All`, or ends
///    with `.ReadWrite.Directory`.
/// 2. **ManagementPlane** when it contains a write or admin marker: `Write` (so `ReadWrite`,
///    `.Write`, `_write`, hence every `*.ReadWrite.All`), `FullControl`, `full_access`, `Manage`,
///    `Send`, `Delete`, `Admin`, `Create`, `Update`, `Invite`, `Enable`, `Disable`, `Restore`,
///    `Provision`, `Assign`, `Reset`, `Revoke`, `Import`, `Execute` or `Impersonat`. (The markers
///    apply whether or not the name ends in `.All`.)
/// 3. **UserAccess** when it is otherwise a read permission: it contains `Read`.
/// 4. **ManagementPlane** for anything else, including an empty name: an unknown permission is
///    never assumed harmless.
pub fn tier_by_name(name: &str) -> Tier {
    let name = name.trim().to_ascii_lowercase();
    let control_plane = (name.starts_with("rolemanagement") && name.contains("write"))
        || name.starts_with("approleassignment.")
        || name.starts_with("application.readwrite.")
        || name == "directory.readwrite.all"
        || name.ends_with(".readwrite.directory");
    if control_plane {
        Tier::ControlPlane
    } else if is_read_only_permission(&name) {
        Tier::UserAccess
    } else {
        Tier::ManagementPlane
    }
}

/// True when a permission's name says it only reads: it contains `Read` and none of the write
/// markers of [`tier_by_name`] (`Write`, `Manage`, `Send`, …), case-insensitively.
pub fn is_read_only_permission(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name.contains("read") && !WRITE_MARKERS.iter().any(|marker| name.contains(marker))
}

/// Tiers a directory action by its name alone; used for actions the dataset does not know.
/// Actions read `namespace/entity[/property]/verb`, matched case-insensitively:
///
/// 1. A read (`…/read`, `…/limitedRead`, `…/restrictedRead`) is **ControlPlane** when it reads
///    secrets (`password`, `credential`, `secret`, `bitlocker`, `/key/`), **UserAccess** when it is
///    a basic read (`/standard/read`, `/basic/read`, `/limitedRead`, `/members/read`,
///    `/memberOf/read`, `/owners/read`), and **ManagementPlane** otherwise.
/// 2. `createAsOwner` and `inviteGuest` are **UserAccess** (the dataset's tier for them).
/// 3. Any other verb in the directory (`microsoft.directory/…`), or `allTasks` on
///    `allEntities` of any service, is **ControlPlane**: it changes identities, their
///    credentials, roles or policies.
/// 4. Anything else (a write elsewhere, an empty or malformed action) is **ManagementPlane**:
///    an unknown action is never assumed harmless.
pub fn tier_by_action(action: &str) -> Tier {
    const SECRET_MARKERS: [&str; 5] = ["password", "credential", "secret", "bitlocker", "/key/"];
    const BASIC_READS: [&str; 6] = [
        "/standard/read",
        "/basic/read",
        "/limitedread",
        "/members/read",
        "/memberof/read",
        "/owners/read",
    ];
    let action = action.trim().to_ascii_lowercase();
    let verb = action.rsplit('/').next().unwrap_or_default();
    if matches!(verb, "read" | "limitedread" | "restrictedread") {
        if SECRET_MARKERS.iter().any(|m| action.contains(m)) {
            Tier::ControlPlane
        } else if BASIC_READS.iter().any(|m| action.ends_with(m)) {
            Tier::UserAccess
        } else {
            Tier::ManagementPlane
        }
    } else if matches!(verb, "createasowner" | "inviteguest") {
        Tier::UserAccess
    } else if action
        .strip_prefix("microsoft.directory/")
        .is_some_and(|rest| rest.contains('/'))
        || action.ends_with("/allentities/allproperties/alltasks")
        || action.ends_with("/allentities/alltasks")
    {
        Tier::ControlPlane
    } else {
        Tier::ManagementPlane
    }
}

fn parse<T: for<'de> Deserialize<'de>>(file: &'static str, text: &str) -> Result<T, DataError> {
    serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|source| DataError { file, source })
}

fn insert_roles(map: &mut HashMap<String, RoleEntry>, rows: Vec<RoleRow>) {
    for (id, name, is_privileged, tier) in rows {
        let key = normalize_id(&id);
        let entry = RoleEntry {
            name,
            is_privileged,
            tier,
        };
        match map.get(&key) {
            Some(existing)
                if (existing.tier, existing.is_privileged) >= (entry.tier, entry.is_privileged) => {
            }
            _ => {
                map.insert(key, entry);
            }
        }
    }
}

fn normalize_id(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
    const EXCHANGE: &str = "00000002-0000-0ff1-ce00-000000000000";
    const CUSTOM_APP: &str = "5d9a4c9e-1111-4222-8333-444455556666";

    fn classifier() -> &'static Classifier {
        Classifier::embedded()
    }

    #[test]
    fn embedded_data_parses_completely() {
        let parsed =
            Classifier::from_json(APP_ROLES_JSON, DIRECTORY_ROLES_JSON, AZURE_ROLES_JSON).unwrap();
        assert_eq!(parsed.app_roles.len(), 862);
        assert_eq!(parsed.directory_roles.len(), 145);
        assert_eq!(parsed.azure_roles.len(), 928);
        // The shared instance is the same data, not the empty fallback.
        assert_eq!(classifier().app_roles.len(), 862);
    }

    #[test]
    fn malformed_data_is_an_error_not_a_panic() {
        let err = Classifier::from_json("[[1]]", "[]", "[]").unwrap_err();
        assert!(err.to_string().contains("app-roles.json"), "{err}");
        let err = Classifier::from_json("[]", "[]", "{").unwrap_err();
        assert!(err.to_string().contains("azure-roles.json"), "{err}");
        assert!(Classifier::from_json("\u{feff}[]", "[]", "[]").is_ok());
    }

    #[test]
    fn control_plane_graph_permission_is_classified() {
        let class = classifier().app_role(GRAPH, "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8", None);
        assert_eq!(class.tiering, Tiering::classified(Tier::ControlPlane));
        assert_eq!(class.value, Some("RoleManagement.ReadWrite.Directory"));
        assert_eq!(class.category, Some("Privileged IAM"));
    }

    #[test]
    fn lookup_ignores_id_case() {
        let class = classifier().app_role(
            &GRAPH.to_uppercase(),
            " 9E3F62CF-CA93-4989-B6CE-BF83C28F9FE8 ",
            Some("ignored"),
        );
        assert_eq!(class.tiering, Tiering::classified(Tier::ControlPlane));
    }

    #[test]
    fn mail_read_write_is_management_plane() {
        let class = classifier().app_role(
            GRAPH,
            "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
            Some("Mail.ReadWrite"),
        );
        assert_eq!(class.tiering, Tiering::classified(Tier::ManagementPlane));
        assert_eq!(class.value, Some("Mail.ReadWrite"));
    }

    #[test]
    fn exchange_full_access_as_app_is_classified() {
        let class = classifier().app_role(EXCHANGE, "dc890d15-9560-4a4c-9b7f-a736ec74ec40", None);
        assert_eq!(class.tiering, Tiering::classified(Tier::ManagementPlane));
        assert_eq!(class.value, Some("full_access_as_app"));
    }

    #[test]
    fn shared_role_id_is_tiered_per_resource_app() {
        // Mail.Read has the same app role id on Graph and on Exchange Online, tiered differently.
        let id = "810c84a8-4a9e-49e6-bf7d-12d183f40d01";
        let graph = classifier().app_role(GRAPH, id, None);
        let exchange = classifier().app_role(EXCHANGE, id, None);
        assert_eq!(graph.tiering, Tiering::classified(Tier::ManagementPlane));
        assert_eq!(exchange.tiering, Tiering::classified(Tier::UserAccess));
    }

    #[test]
    fn graph_role_id_under_another_resource_falls_back_to_the_name() {
        let class = classifier().app_role(
            CUSTOM_APP,
            "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
            Some("Widgets.Read"),
        );
        assert_eq!(class.tiering, Tiering::unclassified(Tier::UserAccess));
        assert_eq!(class.value, None);
        assert_eq!(class.category, None);
        let named = classifier().app_role(
            CUSTOM_APP,
            "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
            Some("RoleManagement.ReadWrite.Directory"),
        );
        assert_eq!(named.tiering, Tiering::unclassified(Tier::ControlPlane));
    }

    #[test]
    fn unknown_permissions_are_tiered_by_name_and_unclassified() {
        let c = classifier();
        let tier = |value: Option<&str>| {
            c.app_role(CUSTOM_APP, "00000000-0000-0000-0000-000000000001", value)
                .tiering
        };
        assert_eq!(
            tier(Some("Widgets.ReadWrite.All")),
            Tiering::unclassified(Tier::ManagementPlane)
        );
        assert_eq!(
            tier(Some("Widgets.Read")),
            Tiering::unclassified(Tier::UserAccess)
        );
        assert_eq!(tier(Some("")), Tiering::unclassified(Tier::ManagementPlane));
        assert_eq!(tier(None), Tiering::unclassified(Tier::ManagementPlane));
        // A new Graph permission (unknown id on the Graph app) is still tiered by its name.
        let new_graph = c.app_role(
            GRAPH,
            "00000000-0000-0000-0000-000000000002",
            Some("RoleManagement.ReadWrite.Everything"),
        );
        assert_eq!(new_graph.tiering, Tiering::unclassified(Tier::ControlPlane));
    }

    #[test]
    fn name_heuristics() {
        let cases = [
            ("RoleManagement.ReadWrite.Directory", Tier::ControlPlane),
            (
                "RoleManagementPolicy.ReadWrite.AzureADGroup",
                Tier::ControlPlane,
            ),
            ("AppRoleAssignment.ReadWrite.All", Tier::ControlPlane),
            ("Application.ReadWrite.OwnedBy", Tier::ControlPlane),
            ("directory.readwrite.all", Tier::ControlPlane),
            ("Widgets.ReadWrite.Directory", Tier::ControlPlane),
            ("RoleManagement.Read.Directory", Tier::ManagementPlane),
            ("Widgets.ReadWrite.All", Tier::ManagementPlane),
            ("Sites.FullControl.All", Tier::ManagementPlane),
            ("full_access_as_app", Tier::ManagementPlane),
            ("Exchange.ManageAsApp", Tier::ManagementPlane),
            ("Event.Write", Tier::ManagementPlane),
            ("vso.loadtest_write", Tier::ManagementPlane),
            ("Mail.Send", Tier::ManagementPlane),
            ("User.DeleteRestore.All", Tier::ManagementPlane),
            ("User.Invite.All", Tier::ManagementPlane),
            ("Widgets.Admin", Tier::ManagementPlane),
            ("user_impersonation", Tier::ManagementPlane),
            ("Sites.Selected", Tier::ManagementPlane),
            ("secop", Tier::ManagementPlane),
            ("  ", Tier::ManagementPlane),
            ("Widgets.Read", Tier::UserAccess),
            ("Widgets.Read.All", Tier::UserAccess),
            ("readonly", Tier::UserAccess),
        ];
        for (name, expected) in cases {
            assert_eq!(tier_by_name(name), expected, "{name}");
        }
    }

    #[test]
    fn tiers_order_and_wire_names() {
        assert!(Tier::UserAccess < Tier::ManagementPlane);
        assert!(Tier::ManagementPlane < Tier::ControlPlane);
        assert_eq!(
            [Tier::UserAccess, Tier::ControlPlane, Tier::ManagementPlane]
                .into_iter()
                .max(),
            Some(Tier::ControlPlane)
        );
        assert_eq!(
            serde_json::to_string(&Tiering::classified(Tier::ManagementPlane)).unwrap(),
            r#"{"tier":"managementPlane","classified":true}"#
        );
        assert_eq!(Tier::UserAccess.to_string(), "userAccess");
        let tier: Tier = serde_json::from_str(r#""controlPlane""#).unwrap();
        assert_eq!(tier, Tier::ControlPlane);
    }

    #[test]
    fn directory_actions_are_tiered_by_the_dataset_then_by_name() {
        let c = classifier();
        assert!(c.directory_role_actions.len() > 600, "{c:?}");
        // In the dataset (case-insensitive).
        assert_eq!(
            c.directory_role_action("Microsoft.Directory/Applications/Credentials/Update"),
            Tiering::classified(Tier::ControlPlane)
        );
        assert_eq!(
            c.directory_role_action("microsoft.directory/groups/standard/read"),
            Tiering::classified(Tier::UserAccess)
        );
        // Not in the dataset: the name decides, never harmless.
        let unknown = [
            (
                "microsoft.directory/widgets/credentials/update",
                Tier::ControlPlane,
            ),
            (
                "microsoft.directory/widgets/password/read",
                Tier::ControlPlane,
            ),
            (
                "microsoft.directory/widgets/standard/read",
                Tier::UserAccess,
            ),
            (
                "microsoft.directory/widgets/allProperties/read",
                Tier::ManagementPlane,
            ),
            (
                "microsoft.directory/widgets/createAsOwner",
                Tier::UserAccess,
            ),
            (
                "microsoft.widgets/allEntities/allProperties/allTasks",
                Tier::ControlPlane,
            ),
            ("microsoft.widgets/reports/update", Tier::ManagementPlane),
            ("", Tier::ManagementPlane),
            ("nonsense", Tier::ManagementPlane),
        ];
        for (action, tier) in unknown {
            assert_eq!(
                c.directory_role_action(action),
                Tiering::unclassified(tier),
                "{action}"
            );
        }
        // A custom role: the highest of its actions; classified only when all are known.
        assert_eq!(
            c.directory_role_by_actions([
                "microsoft.directory/groups/standard/read",
                "microsoft.directory/applications/credentials/update",
            ]),
            Tiering::classified(Tier::ControlPlane)
        );
        assert_eq!(
            c.directory_role_by_actions([
                "microsoft.directory/groups/standard/read",
                "microsoft.directory/widgets/standard/read",
            ]),
            Tiering::unclassified(Tier::UserAccess)
        );
        assert_eq!(
            c.directory_role_by_actions(std::iter::empty()),
            Tiering::unclassified(Tier::ManagementPlane)
        );
    }

    #[test]
    fn global_administrator_is_privileged_control_plane() {
        let role = classifier()
            .directory_role("62E90394-69F5-4237-9190-012177145E10")
            .unwrap();
        assert_eq!(role.name, "Global Administrator");
        assert!(role.is_privileged);
        assert_eq!(role.tiering, Tiering::classified(Tier::ControlPlane));
    }

    #[test]
    fn directory_readers_is_not_privileged() {
        let role = classifier()
            .directory_role("88d8e3e3-8f55-4a1e-953a-9b9898b8876b")
            .unwrap();
        assert_eq!(role.name, "Directory Readers");
        assert!(!role.is_privileged);
        // EntraOps puts Directory Readers in ManagementPlane, not UserAccess.
        assert_eq!(role.tiering, Tiering::classified(Tier::ManagementPlane));
    }

    #[test]
    fn unclassified_and_unknown_directory_roles() {
        let device_join = classifier()
            .directory_role("9c094953-4995-41c8-84c8-3ebb9b32c93f")
            .unwrap();
        assert_eq!(device_join.name, "Device Join");
        assert_eq!(
            device_join.tiering,
            Tiering::unclassified(Tier::ManagementPlane)
        );
        assert_eq!(
            classifier().directory_role("00000000-0000-0000-0000-000000000000"),
            None
        );
    }

    #[test]
    fn azure_owner_and_reader() {
        let owner = classifier()
            .azure_role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635")
            .unwrap();
        assert_eq!(owner.name, "Owner");
        assert!(owner.is_privileged);
        assert_eq!(owner.tiering, Tiering::classified(Tier::ControlPlane));

        let reader = classifier()
            .azure_role("acdd72a7-3385-48ef-bd42-f606fba81ae7")
            .unwrap();
        assert_eq!(reader.name, "Reader");
        assert!(!reader.is_privileged);
        assert_eq!(reader.tiering, Tiering::classified(Tier::UserAccess));
    }

    #[test]
    fn azure_role_accepts_full_arm_ids() {
        let tenant_scope = "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
        let subscription_scope = "/subscriptions/1b877039-42c8-467f-a80b-950b770fa4ff/providers/\
             Microsoft.Authorization/roleDefinitions/ACDD72A7-3385-48EF-BD42-F606FBA81AE7";
        assert_eq!(classifier().azure_role(tenant_scope).unwrap().name, "Owner");
        assert_eq!(
            classifier().azure_role(subscription_scope).unwrap().name,
            "Reader"
        );
        assert_eq!(
            classifier()
                .azure_role("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/"),
            None
        );
    }

    #[test]
    fn duplicate_rows_keep_the_most_privileged() {
        let apps = r#"[["A","R","X.Read","userAccess",""],["a","r","X.Read","controlPlane","C"]]"#;
        let roles = r#"[["T","n",false,null],["t","n",true,"managementPlane"]]"#;
        let c = Classifier::from_json(apps, roles, roles).unwrap();
        let class = c.app_role("a", "R", None);
        assert_eq!(class.tiering, Tiering::classified(Tier::ControlPlane));
        assert_eq!(class.category, Some("C"));
        let role = c.directory_role("T").unwrap();
        assert!(role.is_privileged);
        assert_eq!(role.tiering, Tiering::classified(Tier::ManagementPlane));
        assert!(format!("{c:?}").contains("app_roles: 1"));
    }
}
