//! The resolve layer: the snapshot indexed, and the views the rules read.
//!
//! A [`Resolver`] indexes a [`TenantSnapshot`] once (principals, groups, directory roles, the
//! Azure plane), orders the subjects of assessment (managed identities by object id, then
//! credential-bearing service principals by object id), computes every subject's tier (some
//! rules compare one subject with others), builds the privilege graph ([`paths`]) and resolves
//! any subject into a [`PrincipalView`] on demand. A [`TenantView`] is what one rule call reads: a chunk of resolved subjects with the
//! resolver behind it. Pure: no I/O, nothing but the snapshot.

pub mod arm_id;
pub mod azure;
pub mod identity_kind;
pub mod paths;
pub mod principals;
mod roles;
pub mod usage;

use std::collections::HashMap;

pub use arm_id::ArmResourceId;
use azure::AzureIndex;
use paths::{AttackPaths, SubjectNode};
use principals::{PrincipalView, SnapshotIndex, credentials_of};

use crate::classification::{Classifier, Tier};
use crate::model::SubjectKind;
use crate::snapshot::graph::ServicePrincipal;
use crate::snapshot::{CredentialServicePrincipal, TenantSnapshot};

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

/// One subject of assessment.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A managed identity's service principal.
    Identity(&'a ServicePrincipal),
    /// A credential-bearing application service principal.
    Credential(&'a CredentialServicePrincipal),
}

impl Subject<'_> {
    /// Its object id.
    pub fn id(&self) -> &str {
        match self {
            Self::Identity(sp) => &sp.id,
            Self::Credential(c) => &c.service_principal.id,
        }
    }
}

/// The snapshot indexed for resolution, with its subjects in assessment order and their tiers.
pub struct Resolver<'a> {
    snapshot: &'a TenantSnapshot,
    index: SnapshotIndex<'a>,
    subjects: Vec<Subject<'a>>,
    by_id: HashMap<String, usize>,
    tiers: Vec<Option<Tier>>,
    paths: AttackPaths<'a>,
    usage: Option<usage::UsageIndex<'a>>,
}

impl std::fmt::Debug for Resolver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("tenant_id", &self.snapshot.tenant_id)
            .field("subjects", &self.subjects.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Resolver<'a> {
    /// Indexes `snapshot`, orders its subjects and computes their tiers.
    pub fn new(snapshot: &'a TenantSnapshot) -> Self {
        let index = SnapshotIndex::new(snapshot, Classifier::embedded());
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
        for (position, subject) in subjects.iter().enumerate() {
            by_id
                .entry(subject.id().to_ascii_lowercase())
                .or_insert(position);
        }
        let mut resolver = Self {
            snapshot,
            index,
            subjects,
            by_id,
            tiers: Vec::new(),
            paths: AttackPaths::default(),
            usage: usage::UsageIndex::new(snapshot),
        };
        let mut tiers = Vec::with_capacity(resolver.subjects.len());
        let mut nodes = Vec::with_capacity(resolver.subjects.len());
        for subject in &resolver.subjects {
            let view = resolver.resolve(*subject);
            tiers.push(view.tier());
            nodes.push(SubjectNode::from_view(&view, resolver.azure()));
        }
        resolver.tiers = tiers;
        nodes.extend(resolver.owned_nodes());
        resolver.paths = AttackPaths::new(snapshot, nodes);
        resolver
    }

    /// Graph nodes for what collected principals own that is not itself assessed: the service
    /// principals of owned applications, owned service principals, owned groups. Each is resolved
    /// from what collection read about it (its app roles and memberships, its own directory and
    /// Azure roles), so an owner's path runs through what the owned object holds.
    fn owned_nodes(&self) -> Vec<SubjectNode> {
        let Some(ownership) = self.snapshot.ownership.known() else {
            return Vec::new();
        };
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for entry in &ownership.owned {
            let object = &entry.object;
            let node = if object.is_application() {
                object
                    .app_id
                    .as_deref()
                    .and_then(|a| ownership.service_principal_of_app(a))
            } else if object.is_group() || object.is_service_principal() {
                Some(object)
            } else {
                None
            };
            let Some(node) = node else {
                continue;
            };
            let key = node.id.to_ascii_lowercase();
            if self.by_id.contains_key(&key) || !seen.insert(key) {
                continue;
            }
            let principal = ServicePrincipal {
                id: node.id.clone(),
                app_id: node.app_id.clone(),
                display_name: node.display_name.clone(),
                service_principal_type: node.service_principal_type.clone(),
                ..ServicePrincipal::default()
            };
            let view = self
                .index
                .view(&principal, SubjectKind::ServicePrincipal, Vec::new());
            out.push(if node.is_group() {
                SubjectNode::group_from_view(&view, self.azure())
            } else {
                SubjectNode::from_view(&view, self.azure())
            });
        }
        out
    }

    /// The privilege graph: paths to Tier-0 and who controls each identity.
    pub fn paths(&self) -> &AttackPaths<'a> {
        &self.paths
    }

    /// The snapshot behind it.
    pub fn snapshot(&self) -> &'a TenantSnapshot {
        self.snapshot
    }

    /// Every subject, in assessment order.
    pub fn subjects(&self) -> &[Subject<'a>] {
        &self.subjects
    }

    /// The position of a subject in assessment order, by object id (any case).
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(&id.to_ascii_lowercase()).copied()
    }

    /// A subject by object id.
    pub fn lookup(&self, id: &str) -> Option<Subject<'a>> {
        self.subjects.get(self.position(id)?).copied()
    }

    /// A subject resolved on demand, by object id.
    pub fn subject(&self, id: &str) -> Option<PrincipalView> {
        self.lookup(id).map(|s| self.resolve(s))
    }

    /// The tier of a subject (`Some(None)`: it holds no privilege); `None` when no subject has
    /// that id.
    pub fn tier_of(&self, id: &str) -> Option<Option<Tier>> {
        self.tiers.get(self.position(id)?).copied()
    }

    /// The Azure plane, indexed; `None` when it is unknown.
    pub fn azure(&self) -> Option<&AzureIndex<'a>> {
        self.index.azure.as_ref()
    }

    /// The usage plane, indexed; `None` when it was off.
    pub fn usage(&self) -> Option<&usage::UsageIndex<'a>> {
        self.usage.as_ref()
    }

    /// Resolves one subject.
    pub fn resolve(&self, subject: Subject<'_>) -> PrincipalView {
        match subject {
            Subject::Identity(sp) => {
                let kind = identity_kind::classify(&sp.alternative_names).kind.into();
                self.index.view(sp, kind, Vec::new())
            }
            Subject::Credential(c) => self.index.view(
                &c.service_principal,
                SubjectKind::ServicePrincipal,
                credentials_of(c),
            ),
        }
    }

    /// The view of a chunk of resolved subjects (managed identities, service principals), or of
    /// the tenant pass (`None`), which holds none.
    pub fn view(&self, chunk: Option<(Vec<PrincipalView>, Vec<PrincipalView>)>) -> TenantView<'_> {
        let tenant_pass = chunk.is_none();
        let (identities, service_principals) = chunk.unwrap_or_default();
        TenantView {
            snapshot: self.snapshot,
            identities,
            service_principals,
            azure: self.azure(),
            usage: self.usage.as_ref(),
            resolver: self,
            tenant_pass,
        }
    }
}

/// What the rules read: a chunk of resolved subjects, with the whole tenant behind it.
///
/// Subject-scoped rules (`crate::rules::Scope::Subjects`) report only about `identities` and
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
    /// The usage plane, indexed; `None` when it was off.
    pub usage: Option<&'a usage::UsageIndex<'a>>,
    resolver: &'a Resolver<'a>,
    tenant_pass: bool,
}

impl<'a> TenantView<'a> {
    /// Graph base URL for remediation commands: the endpoint collection read (so sovereign
    /// clouds get theirs), except a loopback one (the simulator of the demo, the tests or a
    /// replay of their snapshots), which no pasted command could reach: those get the public
    /// cloud's.
    pub fn graph(&self) -> &str {
        remediation_graph(&self.snapshot.graph_endpoint)
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
            .or_else(|| self.resolver.subject(id))
    }

    /// The tier of any assessed subject (`Some(None)`: it holds no privilege), computed once
    /// per run; `None` when no subject has that id.
    pub fn tier_of(&self, id: &str) -> Option<Option<Tier>> {
        self.resolver.tier_of(id)
    }

    /// The privilege graph: paths to Tier-0 and who controls each identity.
    pub fn paths(&self) -> &AttackPaths<'a> {
        self.resolver.paths()
    }

    /// The managed identity's service principal object, by object id.
    pub fn managed_identity(&self, id: &str) -> Option<&'a ServicePrincipal> {
        match self.resolver.lookup(id)? {
            Subject::Identity(sp) => Some(sp),
            Subject::Credential(_) => None,
        }
    }
}

/// The Graph base URL remediation commands name ([`TenantView::graph`]): the collected
/// endpoint, or the public cloud's for a loopback one.
pub fn remediation_graph(endpoint: &str) -> &str {
    remediation_endpoint(endpoint, crate::config::DEFAULT_GRAPH_ENDPOINT)
}

/// An endpoint as remediation commands name it: as collected, or `public` for a loopback one.
pub fn remediation_endpoint<'e>(endpoint: &'e str, public: &'e str) -> &'e str {
    if is_loopback(endpoint) {
        public
    } else {
        endpoint.trim_end_matches('/')
    }
}

/// True for a URL whose host is a loopback address or `localhost`.
fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
