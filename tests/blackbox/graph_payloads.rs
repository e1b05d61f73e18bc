//! Classification on real Graph payloads (tests/fixtures/graph-docs, copied from
//! ../shared/fixtures/graph-docs with their SOURCES.md).

use mi_assess::graph::model::ServicePrincipal;
use mi_assess::inventory::{IdentityKind, IdentityRecord};

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
