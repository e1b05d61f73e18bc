//! Classification on real Graph payloads (tests/fixtures/graph-docs, copied from
//! ../shared/fixtures/graph-docs with their SOURCES.md).

use mi_assess::assess::IdentityRecord;
use mi_assess::model::IdentityKind;
use mi_assess::snapshot::graph::ServicePrincipal;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/graph-docs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn real_user_assigned_identity_is_classified_from_its_payload() {
    let sp: ServicePrincipal = serde_json::from_str(&fixture(
        "directoryObjects_get.managedIdentity.userAssigned.real.json",
    ))
    .unwrap();
    assert!(sp.is_managed_identity());
    let record = IdentityRecord::from_service_principal(&sp);
    assert_eq!(record.kind, IdentityKind::UserAssigned);
    assert_eq!(record.id, "8097154c-b14f-4898-928c-16ca80e12dfd");
    assert_eq!(
        record.app_id.as_deref(),
        Some("a72223ed-0a1e-4683-9b4b-44bed448bccc")
    );
    assert_eq!(
        record.subscription_id.as_deref(),
        Some("1b877039-42c8-467f-a80b-950b770fa4ff")
    );
    assert_eq!(
        record.resource_group.as_deref(),
        Some("kjh-microsoft-learn")
    );
    assert_eq!(
        record.resource_type.as_deref(),
        Some("Microsoft.ManagedIdentity/userAssignedIdentities")
    );
    assert_eq!(record.resource_name.as_deref(), Some("kjh-mi"));
    assert_eq!(record.classification_note, None);
}

#[test]
fn real_system_assigned_fragment_is_classified() {
    // The fragment is a bare `"alternativeNames": [...]` member; wrap it into an object.
    let text = format!(
        "{{ \"id\": \"x\", \"servicePrincipalType\": \"ManagedIdentity\", {} }}",
        fixture(
            "servicePrincipal.managedIdentity.systemAssigned.alternativeNames.real.fragment.txt"
        )
    );
    let sp: ServicePrincipal = serde_json::from_str(&text).unwrap();
    let record = IdentityRecord::from_service_principal(&sp);
    assert_eq!(record.kind, IdentityKind::SystemAssigned);
    assert_eq!(record.resource_group.as_deref(), Some("MP-PROD-2"));
    assert_eq!(record.resource_type.as_deref(), Some("Microsoft.Web/sites"));
    assert_eq!(record.resource_name.as_deref(), Some("supplychain-mgmt"));
}

#[test]
fn documented_service_principal_lists_parse() {
    for name in [
        "servicePrincipals_list.v1.0.doc-example1.json",
        "servicePrincipals_list.v1.0.doc-legacy-fullobject.json",
        "servicePrincipals_count-filter-top.v1.0.doc-example3.json",
    ] {
        let page: serde_json::Value = serde_json::from_str(&fixture(name)).unwrap();
        let items: Vec<ServicePrincipal> = serde_json::from_value(page["value"].clone()).unwrap();
        assert!(!items.is_empty(), "{name}");
        assert!(
            items.iter().all(|sp| !sp.is_managed_identity()),
            "{name}: documented examples are apps"
        );
    }
}

/// The documented collection payloads, parsed into the model types collection uses.
mod documented_collections {
    use mi_assess::snapshot::graph::{
        AppRoleAssignment, DirectoryObject, OAuth2PermissionGrant, RoleAssignment, RoleDefinition,
    };
    use serde::de::DeserializeOwned;

    fn page<T: DeserializeOwned>(text: &str) -> Vec<T> {
        let value: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        serde_json::from_value(value["value"].clone()).expect("parses into the model")
    }

    fn doc(name: &str) -> String {
        super::fixture(name)
    }

    fn fixed(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/graph-docs-fixed/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn app_role_assignments_and_assigned_to() {
        let assignments: Vec<AppRoleAssignment> = page(&doc(
            "servicePrincipals_id_appRoleAssignments.v1.0.doc.json",
        ));
        assert_eq!(
            assignments[0].app_role_id,
            "e2a3a72e-5f79-4c64-b1b1-878b674786c9"
        );
        assert_eq!(
            assignments[0].resource_id,
            "fea94d6d-b5bf-44d2-a887-4f72a8d74f44"
        );
        let assigned_to: Vec<AppRoleAssignment> =
            page(&doc("servicePrincipals_id_appRoleAssignedTo.v1.0.doc.json"));
        assert!(!assigned_to.is_empty() && assigned_to.iter().all(|a| !a.principal_id.is_empty()));
    }

    #[test]
    fn memberships_tell_groups_from_directory_roles() {
        // The documented transitiveMemberOf example has a trailing comma: the original is invalid
        // JSON, so the test parses a fixed copy (tests/fixtures/graph-docs-fixed/README.md).
        assert!(
            serde_json::from_str::<serde_json::Value>(&doc(
                "servicePrincipals_id_transitiveMemberOf.v1.0.doc.json"
            ))
            .is_err()
        );
        let transitive: Vec<DirectoryObject> = page(&fixed(
            "servicePrincipals_id_transitiveMemberOf.v1.0.doc.fixed.json",
        ));
        assert!(transitive[0].is_group());
        assert_eq!(transitive[0].security_enabled, Some(true));
        let member_of: Vec<DirectoryObject> =
            page(&doc("servicePrincipals_id_memberOf.v1.0.doc.json"));
        assert!(!member_of.is_empty());
        let cast: Vec<DirectoryObject> = page(&doc(
            "servicePrincipals_id_transitiveMemberOf_group-cast-search.v1.0.doc.json",
        ));
        assert!(cast.iter().all(|g| g.display_name.is_some()));
    }

    #[test]
    fn batch_responses_carry_directory_roles_and_errors() {
        let batch: serde_json::Value =
            serde_json::from_str(&doc("batch_response.v1.0.doc.json")).unwrap();
        let responses = batch["responses"].as_array().unwrap();
        let roles: Vec<DirectoryObject> = responses
            .iter()
            .filter(|r| r["status"] == 200 && r["body"]["value"].is_array())
            .flat_map(|r| {
                serde_json::from_value::<Vec<DirectoryObject>>(r["body"]["value"].clone()).unwrap()
            })
            .filter(DirectoryObject::is_directory_role)
            .collect();
        assert_eq!(
            roles[0].role_template_id.as_deref(),
            Some("fe930be7-5e62-47db-91af-98c3a49a38b1")
        );
        assert!(
            responses
                .iter()
                .any(|r| r["status"] == 403 && r["body"]["error"]["code"].is_string())
        );
    }

    #[test]
    fn role_assignments_schedules_and_definitions() {
        // Example 1 has trailing commas; see tests/fixtures/graph-docs-fixed/README.md.
        assert!(
            serde_json::from_str::<serde_json::Value>(&doc(
                "roleManagement_directory_roleAssignments_expand-principal.v1.0.doc-example1.json"
            ))
            .is_err()
        );
        let expanded: Vec<RoleAssignment> = page(&fixed(
            "roleManagement_directory_roleAssignments_expand-principal.v1.0.doc-example1.fixed.json",
        ));
        assert_eq!(
            expanded[0].role_definition_id,
            "62e90394-69f5-4237-9190-012177145e10"
        );
        let filtered: Vec<RoleAssignment> = page(&doc(
            "roleManagement_directory_roleAssignments_filter-principalId.v1.0.doc-example2.json",
        ));
        assert!(filtered.iter().all(|a| a.directory_scope_id.is_some()));
        let eligible: Vec<RoleAssignment> = page(&doc(
            "roleManagement_directory_roleEligibilitySchedules.v1.0.doc.json",
        ));
        assert_eq!(eligible[0].member_type.as_deref(), Some("Direct"));
        let active: Vec<RoleAssignment> = page(&doc(
            "roleManagement_directory_roleAssignmentSchedules.v1.0.doc.json",
        ));
        assert!(active.iter().all(|a| a.assignment_type.is_some()));
        let definitions: Vec<RoleDefinition> = page(&doc(
            "roleManagement_directory_roleDefinitions_isPrivileged.beta.doc.json",
        ));
        assert!(definitions.iter().all(|d| d.display_name.is_some()));
    }

    #[test]
    fn delegated_grants() {
        let grants: Vec<OAuth2PermissionGrant> = page(&doc(
            "servicePrincipals_id_oauth2PermissionGrants.v1.0.doc.json",
        ));
        assert!(!grants.is_empty() && grants.iter().all(|g| g.scope.is_some()));
    }
}
