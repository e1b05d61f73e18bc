//! The can-execute-as action table (`data/attack-paths/execute-as.json`): which Azure RBAC
//! actions on a host resource let their holder run code as its managed identities, and which
//! actions on a user-assigned identity let the holder take it over. Parsed once; a role
//! definition is matched against it by its actions, wildcards and `notActions` included, never
//! by role id.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::snapshot::azure::RoleDefinitionRow;

const TABLE_JSON: &str = include_str!("../../../data/attack-paths/execute-as.json");

/// One host resource type and the actions that give code execution on it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostEntry {
    /// ARM resource type, e.g. `Microsoft.Compute/virtualMachines`.
    pub resource_type: String,
    /// How the holder turns the action into the identity's token (for evidence).
    pub how: String,
    /// Control-plane actions, any one of which is enough.
    pub actions: Vec<String>,
    /// Data-plane actions, any one of which is enough.
    pub data_actions: Vec<String>,
    /// Whether the host runs its code from deployment storage (Flex Consumption function apps).
    pub deployment_storage: bool,
    /// Keys of the table's `sources`.
    pub sources: Vec<String>,
}

/// The actions on a function app's deployment storage account that choose its code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentStorageEntry {
    /// How (for evidence).
    pub how: String,
    /// Control-plane actions.
    pub actions: Vec<String>,
    /// Data-plane actions.
    pub data_actions: Vec<String>,
    /// Keys of the table's `sources`.
    pub sources: Vec<String>,
}

/// How a user-assigned identity is taken over.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserAssignedEntry {
    /// The action that adds a federated credential (enough on its own).
    pub federated_credential_write: String,
    /// The action that attaches the identity to a resource (enough with compute write).
    pub assign: String,
    /// How each route works (`federatedCredential`, `assign`).
    pub how: HashMap<String, String>,
    /// Keys of the table's `sources`.
    pub sources: Vec<String>,
}

/// The whole table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecuteAsTable {
    /// Host entries.
    pub hosts: Vec<HostEntry>,
    /// Deployment storage of function apps.
    pub deployment_storage: DeploymentStorageEntry,
    /// User-assigned identities.
    pub user_assigned_identity: UserAssignedEntry,
    /// Source key → citation.
    pub sources: HashMap<String, String>,
    #[serde(skip)]
    by_type: HashMap<String, usize>,
}

static TABLE: LazyLock<ExecuteAsTable> =
    LazyLock::new(|| match ExecuteAsTable::from_json(TABLE_JSON) {
        Ok(table) => table,
        Err(e) => {
            tracing::error!(
                error = %e,
                "embedded execute-as table is unreadable; no host control edges are computed"
            );
            ExecuteAsTable::default()
        }
    });

/// What the role allows of an entry: the table action and the role's pattern that grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedAction {
    /// The table's action (or data action).
    pub action: String,
    /// The role's `actions` (or `dataActions`) pattern that matches it.
    pub granted_by: String,
}

impl ExecuteAsTable {
    /// The table shipped in `data/attack-paths/`, parsed once.
    pub fn embedded() -> &'static ExecuteAsTable {
        &TABLE
    }

    /// Parses a table.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let mut table: ExecuteAsTable = serde_json::from_str(json)?;
        table.by_type = table
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.resource_type.to_ascii_lowercase(), i))
            .collect();
        Ok(table)
    }

    /// The entry for a resource type (any case), with its position in [`Self::hosts`].
    pub fn host(&self, resource_type: &str) -> Option<(usize, &HostEntry)> {
        let i = *self.by_type.get(&resource_type.to_ascii_lowercase())?;
        Some((i, &self.hosts[i]))
    }

    /// The write action that attaches a user-assigned identity to a host of each type
    /// (`{type}/write`), for the assign route.
    pub fn compute_write_actions(&self) -> impl Iterator<Item = String> + '_ {
        self.hosts
            .iter()
            .map(|h| format!("{}/write", h.resource_type))
    }
}

/// The first of `actions` / `data_actions` the role allows, with the pattern that allows it.
pub fn first_allowed(
    role: &RoleDefinitionRow,
    actions: &[String],
    data_actions: &[String],
) -> Option<AllowedAction> {
    let control = actions.iter().find_map(|a| {
        role.granting_patterns(a)
            .into_iter()
            .next()
            .map(|p| AllowedAction {
                action: a.clone(),
                granted_by: p,
            })
    });
    control.or_else(|| {
        data_actions.iter().find_map(|a| {
            role.granting_data_patterns(a)
                .into_iter()
                .next()
                .map(|p| AllowedAction {
                    action: a.clone(),
                    granted_by: p,
                })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::azure::RolePermission;

    fn role(actions: &[&str], not_actions: &[&str], data: &[&str]) -> RoleDefinitionRow {
        RoleDefinitionRow {
            id: "/providers/Microsoft.Authorization/roleDefinitions/x".into(),
            permissions: vec![RolePermission {
                actions: actions.iter().map(|s| s.to_string()).collect(),
                not_actions: not_actions.iter().map(|s| s.to_string()).collect(),
                data_actions: data.iter().map(|s| s.to_string()).collect(),
                not_data_actions: Vec::new(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn embedded_table_parses_and_every_entry_cites_a_defined_source() {
        let table = ExecuteAsTable::from_json(TABLE_JSON).expect("the shipped table parses");
        assert!(table.hosts.len() >= 12, "{}", table.hosts.len());
        let mut cited: Vec<&String> = table.hosts.iter().flat_map(|h| &h.sources).collect();
        cited.extend(&table.deployment_storage.sources);
        cited.extend(&table.user_assigned_identity.sources);
        for host in &table.hosts {
            assert!(
                !host.sources.is_empty(),
                "{} cites nothing",
                host.resource_type
            );
            assert!(
                !host.actions.is_empty() || !host.data_actions.is_empty(),
                "{} has no action",
                host.resource_type
            );
        }
        for key in cited {
            assert!(table.sources.contains_key(key), "undefined source {key}");
        }
        // Every type the issue names is covered.
        for t in [
            "microsoft.compute/virtualmachines",
            "Microsoft.Compute/virtualMachineScaleSets",
            "Microsoft.HybridCompute/machines",
            "Microsoft.Web/sites",
            "Microsoft.Web/sites/slots",
            "Microsoft.Automation/automationAccounts",
            "Microsoft.Logic/workflows",
            "Microsoft.ContainerService/managedClusters",
            "Microsoft.App/containerApps",
            "Microsoft.App/jobs",
            "Microsoft.DataFactory/factories",
            "Microsoft.Batch/batchAccounts",
        ] {
            assert!(table.host(t).is_some(), "{t}");
        }
        assert_eq!(ExecuteAsTable::embedded().hosts.len(), table.hosts.len());
    }

    #[test]
    fn roles_match_by_actions_wildcards_and_not_actions() {
        let table = ExecuteAsTable::embedded();
        let (_, vm) = table.host("Microsoft.Compute/virtualMachines").unwrap();
        // A custom role with the exact action.
        let custom = role(
            &["Microsoft.Compute/virtualMachines/runCommand/action"],
            &[],
            &[],
        );
        let allowed = first_allowed(&custom, &vm.actions, &vm.data_actions).unwrap();
        assert_eq!(
            allowed.action,
            "Microsoft.Compute/virtualMachines/runCommand/action"
        );
        // A wildcard (Log Analytics Contributor's extensions/*).
        let wildcard = role(
            &["*/read", "Microsoft.Compute/virtualMachines/extensions/*"],
            &[],
            &[],
        );
        let allowed = first_allowed(&wildcard, &vm.actions, &vm.data_actions).unwrap();
        assert_eq!(
            allowed.granted_by,
            "Microsoft.Compute/virtualMachines/extensions/*"
        );
        // notActions that remove every route.
        let removed = role(
            &["Microsoft.Compute/*"],
            &[
                "Microsoft.Compute/virtualMachines/runCommand/action",
                "Microsoft.Compute/virtualMachines/runCommands/*",
                "Microsoft.Compute/virtualMachines/extensions/*",
            ],
            &[],
        );
        assert_eq!(first_allowed(&removed, &vm.actions, &vm.data_actions), None);
        // Read only gives nothing.
        assert_eq!(
            first_allowed(&role(&["*/read"], &[], &[]), &vm.actions, &[]),
            None
        );
        // Data actions count for Batch jobs.
        let (_, batch) = table.host("Microsoft.Batch/batchAccounts").unwrap();
        let submitter = role(&[], &[], &["Microsoft.Batch/batchAccounts/jobs/*"]);
        let allowed = first_allowed(&submitter, &batch.actions, &batch.data_actions).unwrap();
        assert_eq!(allowed.action, "Microsoft.Batch/batchAccounts/jobs/write");
    }
}
