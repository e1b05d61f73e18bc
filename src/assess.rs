//! Assessment: a pure function from a [`TenantSnapshot`] to the records and findings a run
//! publishes. No I/O happens here, so every run can be replayed offline.
//!
//! First every principal (managed identity or credential-bearing service principal) is
//! *resolved*: its app role assignments are named and tiered through the resource's `appRoles`
//! and the classification data, its transitive groups are marked privileged or not, and its
//! directory roles (direct or through a group, active or eligible, tenant or AU scope) and its
//! Azure RBAC roles (direct or through a group, any scope) are gathered. Rules then read only
//! these resolved views.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::azure::{AzureIndex, ResolvedAzureRole};
use crate::classification::{Classifier, Tier};
use crate::graph::model::{
    Credential, DirectoryObject, OAuth2PermissionGrant, ResourceServicePrincipal, RoleAssignment,
    ServicePrincipal,
};
use crate::inventory::{IdentityKind, IdentityRecord};
use crate::rules::{self, Finding, Severity};
use crate::snapshot::{CredentialServicePrincipal, Dataset, TenantSnapshot};

/// What one assessment produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// One record per managed identity, sorted by object id.
    pub identities: Vec<IdentityRecord>,
    /// Findings, grouped by subject in assessment order, most severe first within a subject.
    pub findings: Vec<Finding>,
}

impl Assessment {
    /// Number of identities of one kind.
    pub fn count_kind(&self, kind: IdentityKind) -> usize {
        self.identities.iter().filter(|i| i.kind == kind).count()
    }
}

/// What kind of principal a view describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubjectKind {
    /// A system-assigned managed identity.
    SystemAssigned,
    /// A user-assigned managed identity.
    UserAssigned,
    /// An application service principal (not a managed identity).
    ServicePrincipal,
}

impl From<IdentityKind> for SubjectKind {
    fn from(kind: IdentityKind) -> Self {
        match kind {
            IdentityKind::SystemAssigned => Self::SystemAssigned,
            IdentityKind::UserAssigned => Self::UserAssigned,
        }
    }
}

/// An application permission, resolved to its name and tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedAppRole {
    /// The assignment id (what to delete).
    pub assignment_id: String,
    /// Object id of the resource service principal.
    pub resource_id: String,
    /// Application id of the resource (e.g. Microsoft Graph's `00000003-…`).
    pub resource_app_id: Option<String>,
    /// Resource display name.
    pub resource_name: Option<String>,
    /// App role id.
    pub app_role_id: String,
    /// Permission name, e.g. `Mail.Read`; `None` when the resource does not define the role.
    pub permission: Option<String>,
    /// Enterprise Access Model tier.
    pub tier: Tier,
    /// False when the tier comes from the name heuristic rather than the dataset.
    pub classified: bool,
    /// When it was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<String>,
}

/// A group the principal belongs to (directly or transitively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedGroup {
    /// Group object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Role-assignable group.
    pub is_assignable_to_role: Option<bool>,
    /// Security group.
    pub security_enabled: Option<bool>,
    /// Why the group counts as privileged (empty: not privileged).
    pub privileged_because: Vec<String>,
}

/// How a directory role is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoleState {
    /// Active now (permanent or activated through PIM).
    Active,
    /// Eligible through PIM; can be activated.
    Eligible,
}

/// A directory role the principal holds, directly or through a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedDirectoryRole {
    /// Assignment or schedule id.
    pub assignment_id: String,
    /// Role definition id.
    pub role_definition_id: String,
    /// Role name.
    pub role_name: String,
    /// Enterprise Access Model tier.
    pub tier: Tier,
    /// False when the role is not in the classification data.
    pub classified: bool,
    /// Microsoft's "privileged" label (or ControlPlane tier).
    pub is_privileged: bool,
    /// Active or eligible.
    pub state: RoleState,
    /// `/` (tenant) or `/administrativeUnits/{id}`.
    pub directory_scope_id: String,
    /// The group the role is held through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_group: Option<GroupRef>,
}

impl ResolvedDirectoryRole {
    /// True when the role applies to the whole tenant.
    pub fn is_tenant_scope(&self) -> bool {
        self.directory_scope_id == "/"
    }
}

/// A group named in evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    /// Group object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
}

/// A delegated permission grant where the principal is the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedGrant {
    /// Grant id.
    pub id: String,
    /// Resource service principal.
    pub resource_id: String,
    /// Resource name, when known.
    pub resource_name: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// `AllPrincipals` or `Principal`.
    pub consent_type: Option<String>,
}

/// Where a credential lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialHome {
    /// On the application registration.
    Application,
    /// On the service principal object itself.
    ServicePrincipal,
}

/// A secret or certificate on a service principal or its application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedCredential {
    /// Secret (`password`) or certificate (`certificate`).
    pub kind: String,
    /// Where it lives.
    pub home: CredentialHome,
    /// Credential id.
    pub key_id: Option<String>,
    /// Friendly name.
    pub display_name: Option<String>,
    /// Start of validity.
    pub start: Option<String>,
    /// End of validity.
    pub end: Option<String>,
}

/// Everything known about one principal, resolved for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalView {
    /// Object id.
    pub id: String,
    /// Application id.
    pub app_id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Kind.
    pub kind: SubjectKind,
    /// Whether sign-in is enabled.
    pub account_enabled: Option<bool>,
    /// Application permissions; `None` when unknown.
    pub app_roles: Option<Vec<ResolvedAppRole>>,
    /// Transitive groups; `None` when unknown.
    pub groups: Option<Vec<ResolvedGroup>>,
    /// Directory roles; `None` when unknown.
    pub directory_roles: Option<Vec<ResolvedDirectoryRole>>,
    /// Delegated grants as client; `None` when unknown.
    pub delegated_grants: Option<Vec<ResolvedGrant>>,
    /// Azure RBAC roles, direct or through a group; `None` when the Azure plane is unknown.
    pub azure_roles: Option<Vec<ResolvedAzureRole>>,
    /// Credentials (service principals only).
    pub credentials: Vec<ResolvedCredential>,
    /// Data sets that could not be read for this principal.
    pub unknown: Vec<String>,
}

impl PrincipalView {
    /// A subject known only by its id (and a name to show): nothing collected about it, every
    /// data set unknown. Findings about the scanner, an expired suppression's target or a
    /// deleted principal use it.
    pub fn known_only_by_id(id: &str, display_name: &str, kind: SubjectKind) -> Self {
        Self {
            id: id.to_owned(),
            app_id: None,
            display_name: display_name.to_owned(),
            kind,
            account_enabled: None,
            app_roles: None,
            groups: None,
            directory_roles: None,
            delegated_grants: None,
            azure_roles: None,
            credentials: Vec::new(),
            unknown: Vec::new(),
        }
    }

    /// The highest tier across Graph permissions, directory roles and Azure roles, if it holds
    /// any.
    pub fn tier(&self) -> Option<Tier> {
        let app = self.app_roles.iter().flatten().map(|r| r.tier);
        let roles = self.directory_roles.iter().flatten().map(|r| r.tier);
        let azure = self.azure_roles.iter().flatten().map(|r| r.tier);
        app.chain(roles).chain(azure).max()
    }

    /// True when it is a managed identity.
    pub fn is_managed_identity(&self) -> bool {
        self.kind != SubjectKind::ServicePrincipal
    }

    /// Privileged groups it belongs to.
    pub fn privileged_groups(&self) -> impl Iterator<Item = &ResolvedGroup> {
        self.groups
            .iter()
            .flatten()
            .filter(|g| !g.privileged_because.is_empty())
    }
}

/// Subjects assessed together in one step of a streamed run. It bounds the memory a run needs
/// beyond the snapshot: one chunk of resolved views, records and findings at a time.
pub const CHUNK_SUBJECTS: usize = 1_000;

/// What the rules read: a chunk of resolved subjects, with the whole tenant behind it.
///
/// Subject-scoped rules ([`rules::Scope::Subjects`]) report only about `identities` and
/// `service_principals`; tenant-scoped ones see empty lists and look subjects up by id with
/// [`TenantView::subject`].
#[derive(Debug, Clone)]
pub struct TenantView<'a> {
    /// The snapshot behind it.
    pub snapshot: &'a TenantSnapshot,
    /// Managed identities of this chunk, by object id.
    pub identities: Vec<PrincipalView>,
    /// Credential-bearing service principals of this chunk, by object id.
    pub service_principals: Vec<PrincipalView>,
    /// The Azure plane, indexed; `None` when it is unknown.
    pub azure: Option<&'a AzureIndex<'a>>,
    assessor: &'a Assessor<'a>,
    tenant_pass: bool,
}

impl<'a> TenantView<'a> {
    /// Graph base URL for remediation commands.
    pub fn graph(&self) -> &str {
        &self.snapshot.graph_endpoint
    }

    /// True in the one pass per run that holds no chunk and runs the tenant-scoped rules.
    pub fn is_tenant_pass(&self) -> bool {
        self.tenant_pass
    }

    /// Any assessed subject (managed identity or credential-bearing service principal) by object
    /// id, resolved on demand when it is not in this chunk.
    pub fn subject(&self, id: &str) -> Option<PrincipalView> {
        self.identities
            .iter()
            .chain(self.service_principals.iter())
            .find(|v| v.id.eq_ignore_ascii_case(id))
            .cloned()
            .or_else(|| self.assessor.subject(id))
    }

    /// The tier of any assessed subject (`Some(None)`: it holds no privilege), computed once
    /// per run; `None` when no subject has that id.
    pub fn tier_of(&self, id: &str) -> Option<Option<Tier>> {
        self.assessor.tier_of(id)
    }

    /// The managed identity's service principal object, by object id.
    pub fn managed_identity(&self, id: &str) -> Option<&'a ServicePrincipal> {
        match self.assessor.lookup(id)? {
            Subject::Identity(sp) => Some(sp),
            Subject::Credential(_) => None,
        }
    }
}

/// Assesses a snapshot in one piece (tests, the single-identity endpoint, small tenants).
pub fn assess(snapshot: &TenantSnapshot) -> Assessment {
    let assessor = Assessor::new(snapshot);
    let mut out = Assessment::default();
    for chunk in assessor.chunks(usize::MAX) {
        out.identities.extend(chunk.identities);
        out.findings.extend(chunk.findings);
    }
    out
}

/// What one chunk of subjects produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssessedChunk {
    /// Records of the chunk's managed identities, by object id.
    pub identities: Vec<IdentityRecord>,
    /// Findings about the chunk's subjects, grouped by subject (in chunk order), most severe
    /// first within a subject, then by rule id and finding id.
    pub findings: Vec<Finding>,
}

/// One subject of assessment.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    Identity(&'a ServicePrincipal),
    Credential(&'a CredentialServicePrincipal),
}

impl Subject<'_> {
    fn id(&self) -> &str {
        match self {
            Self::Identity(sp) => &sp.id,
            Self::Credential(c) => &c.service_principal.id,
        }
    }
}

/// The assessment of one snapshot, produced a chunk of subjects at a time.
///
/// Building it indexes the snapshot, computes every subject's tier (some rules compare a subject
/// with others) and runs the tenant-scoped rules once. [`Assessor::chunks`] then resolves and
/// assesses the subjects in a fixed order (managed identities by object id, then
/// credential-bearing service principals by object id), so a streamed run can walk the same
/// assessment several times, one output file per walk, without holding it whole.
pub struct Assessor<'a> {
    snapshot: &'a TenantSnapshot,
    context: ResolveContext<'a>,
    subjects: Vec<Subject<'a>>,
    by_id: HashMap<String, usize>,
    tiers: Vec<Option<Tier>>,
    /// Tenant-scoped findings about assessed subjects, by subject index.
    tenant_findings: HashMap<usize, Vec<Finding>>,
    /// Tenant-scoped findings about anything else (deleted principals, unknown ids).
    leftover: Vec<Finding>,
}

impl std::fmt::Debug for Assessor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assessor")
            .field("tenant_id", &self.snapshot.tenant_id)
            .field("subjects", &self.subjects.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Assessor<'a> {
    /// Indexes `snapshot` and runs the tenant-scoped rules.
    pub fn new(snapshot: &'a TenantSnapshot) -> Self {
        let context = ResolveContext::new(snapshot, Classifier::embedded());
        let mut identities: Vec<&ServicePrincipal> = snapshot.managed_identities.iter().collect();
        identities.sort_by(|a, b| a.id.cmp(&b.id));
        let mut credentials: Vec<&CredentialServicePrincipal> = snapshot
            .credential_service_principals
            .known()
            .into_iter()
            .flatten()
            .collect();
        credentials.sort_by(|a, b| a.service_principal.id.cmp(&b.service_principal.id));
        let subjects: Vec<Subject<'a>> = identities
            .into_iter()
            .map(Subject::Identity)
            .chain(credentials.into_iter().map(Subject::Credential))
            .collect();
        let mut by_id = HashMap::with_capacity(subjects.len());
        for (index, subject) in subjects.iter().enumerate() {
            by_id
                .entry(subject.id().to_ascii_lowercase())
                .or_insert(index);
        }
        let mut assessor = Self {
            snapshot,
            context,
            subjects,
            by_id,
            tiers: Vec::new(),
            tenant_findings: HashMap::new(),
            leftover: Vec::new(),
        };
        assessor.tiers = assessor
            .subjects
            .iter()
            .map(|s| assessor.resolve(*s).tier())
            .collect();
        let mut tenant = rules::evaluate(&assessor.view(None));
        crate::suppressions::mark(
            &mut tenant,
            &snapshot.settings.suppressions,
            snapshot.collected_at,
        );
        for finding in tenant {
            match assessor
                .by_id
                .get(&finding.identity_id.to_ascii_lowercase())
            {
                Some(index) => assessor
                    .tenant_findings
                    .entry(*index)
                    .or_default()
                    .push(finding),
                None => assessor.leftover.push(finding),
            }
        }
        sort_findings(&mut assessor.leftover);
        assessor
    }

    /// The assessment, `size` subjects at a time; tenant-wide findings about no assessed subject
    /// come last, in a chunk of their own. Every walk yields the same chunks.
    pub fn chunks(&self, size: usize) -> impl Iterator<Item = AssessedChunk> + Send + '_ {
        let size = size.max(1);
        let starts = (0..self.subjects.len()).step_by(size);
        let leftover = (!self.leftover.is_empty()).then(|| AssessedChunk {
            identities: Vec::new(),
            findings: self.leftover.clone(),
        });
        starts
            .map(move |start| self.chunk(start, (start + size).min(self.subjects.len())))
            .chain(leftover)
    }

    /// A subject resolved on demand.
    pub fn subject(&self, id: &str) -> Option<PrincipalView> {
        self.lookup(id).map(|s| self.resolve(s))
    }

    fn lookup(&self, id: &str) -> Option<Subject<'a>> {
        let index = self.by_id.get(&id.to_ascii_lowercase())?;
        self.subjects.get(*index).copied()
    }

    fn tier_of(&self, id: &str) -> Option<Option<Tier>> {
        let index = self.by_id.get(&id.to_ascii_lowercase())?;
        self.tiers.get(*index).copied()
    }

    fn resolve(&self, subject: Subject<'_>) -> PrincipalView {
        match subject {
            Subject::Identity(sp) => {
                let kind = crate::inventory::classify(&sp.alternative_names)
                    .kind
                    .into();
                self.context.view(sp, kind, Vec::new())
            }
            Subject::Credential(c) => self.context.view(
                &c.service_principal,
                SubjectKind::ServicePrincipal,
                credentials_of(c),
            ),
        }
    }

    /// The view of a chunk (identities, service principals), or of the tenant pass (`None`).
    fn view(&'a self, chunk: Option<(Vec<PrincipalView>, Vec<PrincipalView>)>) -> TenantView<'a> {
        let tenant_pass = chunk.is_none();
        let (identities, service_principals) = chunk.unwrap_or_default();
        TenantView {
            snapshot: self.snapshot,
            identities,
            service_principals,
            azure: self.context.azure.as_ref(),
            assessor: self,
            tenant_pass,
        }
    }

    fn chunk(&self, start: usize, end: usize) -> AssessedChunk {
        let mut identities = Vec::new();
        let mut service_principals = Vec::new();
        for subject in &self.subjects[start..end] {
            let view = self.resolve(*subject);
            match subject {
                Subject::Identity(_) => identities.push(view),
                Subject::Credential(_) => service_principals.push(view),
            }
        }
        let view = self.view(Some((identities, service_principals)));
        let mut findings = rules::evaluate(&view);
        crate::suppressions::mark(
            &mut findings,
            &self.snapshot.settings.suppressions,
            self.snapshot.collected_at,
        );
        for index in start..end {
            if let Some(tenant) = self.tenant_findings.get(&index) {
                findings.extend(tenant.iter().cloned());
            }
        }
        // Grouped by subject in chunk order: the order of `subjects`.
        let position: HashMap<&str, usize> = self.subjects[start..end]
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id(), i))
            .collect();
        findings.sort_by(|a, b| {
            let pa = position.get(a.identity_id.as_str()).copied();
            let pb = position.get(b.identity_id.as_str()).copied();
            pa.cmp(&pb).then_with(|| finding_order(a, b))
        });
        // Finding count and worst severity per subject, in one pass.
        let mut per_subject: HashMap<&str, (usize, Option<Severity>)> = HashMap::new();
        for finding in &findings {
            let entry = per_subject.entry(finding.identity_id.as_str()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(Some(finding.severity));
        }
        let records = view
            .identities
            .into_iter()
            .zip(self.subjects[start..end].iter())
            .filter_map(|(view, subject)| match subject {
                Subject::Identity(sp) => Some((view, sp)),
                Subject::Credential(_) => None,
            })
            .map(|(view, sp)| {
                let mut record = IdentityRecord::from_service_principal(sp);
                let (count, highest) = per_subject.get(sp.id.as_str()).copied().unwrap_or_default();
                record.attach(view, count, highest);
                record
            })
            .collect();
        drop(per_subject);
        AssessedChunk {
            identities: records,
            findings,
        }
    }
}

/// Most severe first, then rule id, then finding id.
fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then_with(|| a.rule_id.cmp(&b.rule_id))
        .then_with(|| a.finding_id.cmp(&b.finding_id))
}

/// Sorts findings by subject id, then [`finding_order`].
fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.identity_id
            .cmp(&b.identity_id)
            .then_with(|| finding_order(a, b))
    });
}

fn credentials_of(c: &CredentialServicePrincipal) -> Vec<ResolvedCredential> {
    let make = |kind: &str, home, cred: &Credential| ResolvedCredential {
        kind: kind.to_owned(),
        home,
        key_id: cred.key_id.clone(),
        display_name: cred.display_name.clone(),
        start: cred.start_date_time.clone(),
        end: cred.end_date_time.clone(),
    };
    let sp = &c.service_principal;
    let mut out: Vec<ResolvedCredential> = Vec::new();
    out.extend(
        c.application_password_credentials
            .iter()
            .map(|k| make("password", CredentialHome::Application, k)),
    );
    out.extend(
        c.application_key_credentials
            .iter()
            .map(|k| make("certificate", CredentialHome::Application, k)),
    );
    out.extend(
        sp.password_credentials
            .iter()
            .map(|k| make("password", CredentialHome::ServicePrincipal, k)),
    );
    out.extend(
        sp.key_credentials
            .iter()
            .map(|k| make("certificate", CredentialHome::ServicePrincipal, k)),
    );
    out
}

/// Items grouped by an object id, compared case-insensitively.
fn by_lowercase_id<'a, T>(items: &'a [T], id: impl Fn(&T) -> &str) -> HashMap<String, Vec<&'a T>> {
    let mut map: HashMap<String, Vec<&'a T>> = HashMap::new();
    for item in items {
        map.entry(id(item).to_ascii_lowercase())
            .or_default()
            .push(item);
    }
    map
}

/// Directory role assignments and schedules indexed by principal.
#[derive(Debug, Default)]
struct RoleIndex<'a> {
    active: Option<HashMap<String, Vec<&'a RoleAssignment>>>,
    eligible: Option<HashMap<String, Vec<&'a RoleAssignment>>>,
}

impl<'a> RoleIndex<'a> {
    fn new(snapshot: &'a TenantSnapshot) -> Self {
        let index = |data: &'a Dataset<Vec<RoleAssignment>>| {
            data.known()
                .map(|items| by_lowercase_id(items, |a| &a.principal_id))
        };
        Self {
            active: index(&snapshot.role_assignments),
            eligible: index(&snapshot.role_eligibility_schedules),
        }
    }

    /// True when a principal (a group) holds any role, active or eligible.
    fn holds_role(&self, principal_id: &str) -> Vec<(RoleState, &'a RoleAssignment)> {
        let key = principal_id.to_ascii_lowercase();
        let mut out = Vec::new();
        for (state, map) in [
            (RoleState::Active, &self.active),
            (RoleState::Eligible, &self.eligible),
        ] {
            if let Some(found) = map.as_ref().and_then(|m| m.get(&key)) {
                out.extend(found.iter().map(|a| (state, *a)));
            }
        }
        out
    }
}

/// The snapshot indexed for resolving principals.
struct ResolveContext<'a> {
    snapshot: &'a TenantSnapshot,
    classifier: &'a Classifier,
    resources: HashMap<&'a str, &'a ResourceServicePrincipal>,
    role_names: HashMap<String, String>,
    roles: RoleIndex<'a>,
    configured: BTreeSet<String>,
    grants_by_client: Option<HashMap<String, Vec<&'a OAuth2PermissionGrant>>>,
    azure: Option<AzureIndex<'a>>,
}

impl<'a> ResolveContext<'a> {
    fn new(snapshot: &'a TenantSnapshot, classifier: &'a Classifier) -> Self {
        let resources: HashMap<&str, &ResourceServicePrincipal> = snapshot
            .resources
            .iter()
            .map(|r| (r.id.as_str(), r))
            .collect();
        let role_names: HashMap<String, String> = snapshot
            .role_definitions
            .known()
            .into_iter()
            .flatten()
            .flat_map(|d| {
                let name = d.display_name.clone().unwrap_or_else(|| d.id.clone());
                let mut keys = vec![(d.id.to_ascii_lowercase(), name.clone())];
                if let Some(t) = &d.template_id {
                    keys.push((t.to_ascii_lowercase(), name));
                }
                keys
            })
            .collect();
        let configured: BTreeSet<String> = snapshot
            .settings
            .privileged_group_ids
            .iter()
            .map(|g| g.to_ascii_lowercase())
            .collect();
        let grants_by_client = snapshot
            .delegated_grants
            .known()
            .map(|grants| by_lowercase_id(grants, |g| &g.client_id));
        Self {
            snapshot,
            classifier,
            resources,
            role_names,
            roles: RoleIndex::new(snapshot),
            configured,
            grants_by_client,
            azure: snapshot
                .azure
                .known()
                .map(|azure| AzureIndex::new(azure, &snapshot.tenant_id)),
        }
    }

    fn view(
        &self,
        sp: &ServicePrincipal,
        kind: SubjectKind,
        credentials: Vec<ResolvedCredential>,
    ) -> PrincipalView {
        let data = self.snapshot.principals.get(&sp.id);
        let mut unknown = Vec::new();
        let app_roles = match data.map(|d| &d.app_role_assignments) {
            Some(Dataset::Collected { items }) => Some(
                items
                    .iter()
                    .map(|a| {
                        let resource = self.resources.get(a.resource_id.as_str());
                        let resource_app_id = resource.and_then(|r| r.app_id.clone());
                        let defined = resource.and_then(|r| {
                            r.app_roles
                                .iter()
                                .find(|role| role.id.eq_ignore_ascii_case(&a.app_role_id))
                        });
                        let class = self.classifier.app_role(
                            resource_app_id.as_deref().unwrap_or_default(),
                            &a.app_role_id,
                            defined.and_then(|r| r.value.as_deref()),
                        );
                        ResolvedAppRole {
                            assignment_id: a.id.clone(),
                            resource_id: a.resource_id.clone(),
                            resource_app_id,
                            resource_name: a
                                .resource_display_name
                                .clone()
                                .or_else(|| resource.and_then(|r| r.display_name.clone())),
                            app_role_id: a.app_role_id.clone(),
                            permission: defined
                                .and_then(|r| r.value.clone())
                                .or_else(|| class.value.map(str::to_owned)),
                            tier: class.tiering.tier,
                            classified: class.tiering.classified,
                            granted_at: a.created_date_time.clone(),
                        }
                    })
                    .collect(),
            ),
            _ => {
                unknown.push("appRoleAssignments".to_owned());
                None
            }
        };
        let memberships: Option<&Vec<DirectoryObject>> = data.and_then(|d| d.memberships.known());
        if memberships.is_none() {
            unknown.push("memberships".to_owned());
        }
        let groups: Option<Vec<ResolvedGroup>> = memberships.map(|objects| {
            objects
                .iter()
                .filter(|o| o.is_group())
                .map(|g| ResolvedGroup {
                    id: g.id.clone(),
                    display_name: g.display_name.clone(),
                    is_assignable_to_role: g.is_assignable_to_role,
                    security_enabled: g.security_enabled,
                    privileged_because: self.group_privileges(g),
                })
                .collect()
        });
        let directory_roles = self.directory_roles(&sp.id, groups.as_deref());
        if directory_roles.is_none() {
            unknown.push("directoryRoles".to_owned());
        }
        let delegated_grants = match &self.grants_by_client {
            Some(by_client) => Some(
                by_client
                    .get(&sp.id.to_ascii_lowercase())
                    .into_iter()
                    .flatten()
                    .map(|g| ResolvedGrant {
                        id: g.id.clone(),
                        resource_id: g.resource_id.clone(),
                        resource_name: self
                            .resources
                            .get(g.resource_id.as_str())
                            .and_then(|r| r.display_name.clone()),
                        scopes: g
                            .scope
                            .as_deref()
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect(),
                        consent_type: g.consent_type.clone(),
                    })
                    .collect(),
            ),
            None => {
                unknown.push("delegatedGrants".to_owned());
                None
            }
        };
        let azure_roles = match &self.azure {
            Some(index) => Some(index.roles_of(self.classifier, &sp.id, groups.as_deref())),
            None => {
                unknown.push("azureRoleAssignments".to_owned());
                None
            }
        };
        PrincipalView {
            id: sp.id.clone(),
            app_id: sp.app_id.clone(),
            display_name: sp.display_name.clone().unwrap_or_else(|| sp.id.clone()),
            kind,
            account_enabled: sp.account_enabled,
            app_roles,
            groups,
            directory_roles,
            delegated_grants,
            azure_roles,
            credentials,
            unknown,
        }
    }

    fn group_privileges(&self, group: &DirectoryObject) -> Vec<String> {
        let mut reasons = Vec::new();
        if group.is_assignable_to_role == Some(true) {
            reasons.push("role-assignable group".to_owned());
        }
        for (state, assignment) in self.roles.holds_role(&group.id) {
            let name = self.role_name(&assignment.role_definition_id);
            let state = match state {
                RoleState::Active => "active",
                RoleState::Eligible => "eligible",
            };
            reasons.push(format!("holds the {state} directory role {name}"));
        }
        if self.configured.contains(&group.id.to_ascii_lowercase()) {
            reasons.push("listed in MI_ASSESS_PRIVILEGED_GROUPS".to_owned());
        }
        reasons.sort();
        reasons.dedup();
        reasons
    }

    fn role_name(&self, role_definition_id: &str) -> String {
        self.classifier
            .directory_role(role_definition_id)
            .map(|c| c.name.to_owned())
            .or_else(|| {
                self.role_names
                    .get(&role_definition_id.to_ascii_lowercase())
                    .cloned()
            })
            .unwrap_or_else(|| role_definition_id.to_owned())
    }

    fn resolve_role(
        &self,
        assignment: &RoleAssignment,
        state: RoleState,
        via_group: Option<GroupRef>,
    ) -> ResolvedDirectoryRole {
        let class = self
            .classifier
            .directory_role(&assignment.role_definition_id);
        let (tier, classified, is_privileged) = match class {
            Some(c) => (
                c.tiering.tier,
                c.tiering.classified,
                c.is_privileged || c.tiering.tier == Tier::ControlPlane,
            ),
            // A custom or unknown role: never assumed harmless.
            None => (Tier::ManagementPlane, false, false),
        };
        ResolvedDirectoryRole {
            assignment_id: assignment.id.clone(),
            role_definition_id: assignment.role_definition_id.clone(),
            role_name: self.role_name(&assignment.role_definition_id),
            tier,
            classified,
            is_privileged,
            state,
            directory_scope_id: assignment
                .directory_scope_id
                .clone()
                .unwrap_or_else(|| "/".to_owned()),
            via_group,
        }
    }

    /// Roles held directly or through any of the principal's groups; `None` when active role
    /// assignments could not be read (eligible-only data cannot rule anything out).
    fn directory_roles(
        &self,
        principal_id: &str,
        groups: Option<&[ResolvedGroup]>,
    ) -> Option<Vec<ResolvedDirectoryRole>> {
        self.roles.active.as_ref()?;
        let mut out = Vec::new();
        for (state, assignment) in self.roles.holds_role(principal_id) {
            out.push(self.resolve_role(assignment, state, None));
        }
        for group in groups.unwrap_or_default() {
            for (state, assignment) in self.roles.holds_role(&group.id) {
                let via = GroupRef {
                    id: group.id.clone(),
                    display_name: group.display_name.clone(),
                };
                out.push(self.resolve_role(assignment, state, Some(via)));
            }
        }
        // One entry per (role, scope, state, path): schedules and assignments can repeat.
        let mut seen = BTreeMap::new();
        for role in out {
            let key = (
                role.role_definition_id.to_ascii_lowercase(),
                role.directory_scope_id.clone(),
                role.state == RoleState::Active,
                role.via_group.as_ref().map(|g| g.id.clone()),
            );
            seen.entry(key).or_insert(role);
        }
        Some(seen.into_values().collect())
    }
}

impl IdentityRecord {
    /// Adds the resolved privileges and the finding count to a record.
    pub fn attach(&mut self, view: PrincipalView, finding_count: usize, highest: Option<Severity>) {
        self.tier = view.tier();
        self.app_roles = view.app_roles;
        self.groups = view.groups;
        self.directory_roles = view.directory_roles;
        self.delegated_grants = view.delegated_grants;
        self.azure_role_assignments = view.azure_roles;
        self.unknown = view.unknown;
        self.finding_count = finding_count;
        self.highest_severity = highest;
    }
}
