//! `attack-graph.json`: the privilege graph in BloodHound CE's OpenGraph format, for teams who
//! explore paths in BloodHound (`{"metadata": {"source_kind": …}, "graph": {"nodes": […],
//! "edges": […]}}`; nodes carry `id`, one to three `kinds` and flat `properties`, edges `kind`,
//! `start`/`end` matched by id).
//!
//! The graph is the part of the tenant that makes up paths: every assessed subject with what it
//! holds (groups, directory roles, application permissions, Azure roles and their scopes), the
//! resources it runs in with their scope chain up to `/`, and every principal that can run code
//! as it (`MIACanExecuteAs`, with the assignment that gives it). It is written in two passes
//! over the subjects, nodes then edges, a chunk of subjects at a time, so memory stays bounded:
//! each node and edge is written once (a set of 64-bit keys remembers them), and an edge is
//! written only when both its ends are.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::Serialize;
use serde_json::{Value, json};

use crate::classification::Tier;
use crate::model::SubjectKind;
use crate::resolve::azure::ScopeKind;
use crate::resolve::paths::{Control, HoldingKind, NodeKind, Route};
use crate::resolve::{Resolver, Subject};

/// `metadata.source_kind`: BloodHound adds it to every node's kinds.
pub const SOURCE_KIND: &str = "MIAssess";

/// Subjects per written chunk.
const SUBJECTS_PER_CHUNK: usize = 500;

/// A node as OpenGraph writes it.
#[derive(Debug, Clone, Serialize)]
struct Node {
    id: String,
    kinds: Vec<&'static str>,
    properties: BTreeMap<&'static str, Value>,
}

/// One end of an edge.
#[derive(Debug, Clone, Serialize)]
struct End {
    value: String,
    match_by: &'static str,
}

/// An edge as OpenGraph writes it.
#[derive(Debug, Clone, Serialize)]
struct Edge {
    kind: &'static str,
    start: End,
    end: End,
    properties: BTreeMap<&'static str, Value>,
}

/// The nodes and edges one subject brings.
#[derive(Debug, Default)]
struct Part {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Part {
    fn node(&mut self, id: &str, kind: &'static str, properties: Vec<(&'static str, Value)>) {
        self.nodes.push(Node {
            id: id.to_ascii_lowercase(),
            kinds: vec![kind],
            properties: properties.into_iter().collect(),
        });
    }

    fn edge(
        &mut self,
        kind: &'static str,
        start: &str,
        end: &str,
        properties: Vec<(&'static str, Value)>,
    ) {
        let end_of = |value: &str| End {
            value: value.to_ascii_lowercase(),
            match_by: "id",
        };
        self.edges.push(Edge {
            kind,
            start: end_of(start),
            end: end_of(end),
            properties: properties.into_iter().collect(),
        });
    }

    /// The scope chain of a resource or scope, up to `/`, as nodes and `MIAContains` edges.
    fn scope_chain(&mut self, resolver: &Resolver<'_>, id: &str) {
        let chain = resolver.paths().ancestors(id);
        for scope in &chain {
            self.node(
                scope,
                "MIAAzureScope",
                vec![
                    ("name", json!(scope)),
                    ("scopekind", json!(ScopeKind::of(scope).as_str())),
                ],
            );
        }
        for pair in chain.windows(2) {
            self.edge("MIAContains", &pair[1], &pair[0], Vec::new());
        }
    }
}

fn principal_kind(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::ManagedIdentity => "MIAManagedIdentity",
        NodeKind::ServicePrincipal => "MIAServicePrincipal",
        NodeKind::User => "MIAUser",
        NodeKind::Group => "MIAGroup",
        NodeKind::ForeignPrincipal => "MIAForeignPrincipal",
        NodeKind::DirectoryRole => "MIADirectoryRole",
        NodeKind::AppPermission => "MIAAppPermission",
        NodeKind::AzureScope => "MIAAzureScope",
        NodeKind::Unknown => "MIAPrincipal",
    }
}

fn tier_value(tier: Option<Tier>) -> Value {
    json!(tier.map(Tier::as_str))
}

fn control_properties(control: &Control) -> Vec<(&'static str, Value)> {
    let (route, via) = match &control.route {
        Route::Host { host_id, .. } => ("host", host_id.clone()),
        Route::DeploymentStorage { container_id, .. } => {
            ("deploymentStorage", container_id.clone())
        }
        Route::FederatedCredential {
            identity_resource_id,
        } => ("federatedCredential", identity_resource_id.clone()),
        Route::Assign {
            identity_resource_id,
            ..
        } => ("assign", identity_resource_id.clone()),
    };
    vec![
        ("role", json!(control.role_name)),
        ("action", json!(control.action)),
        ("grantedby", json!(control.granted_by)),
        ("assignmentid", json!(control.assignment_id)),
        ("scope", json!(control.scope)),
        ("route", json!(route)),
        ("via", json!(via)),
    ]
}

/// Everything one subject brings to the graph.
fn part(resolver: &Resolver<'_>, subject: Subject<'_>) -> Part {
    let view = resolver.resolve(subject);
    let mut part = Part::default();
    let is_identity = view.kind != SubjectKind::ServicePrincipal;
    part.node(
        &view.id,
        if is_identity {
            "MIAManagedIdentity"
        } else {
            "MIAServicePrincipal"
        },
        vec![
            ("name", json!(view.display_name)),
            ("objectid", json!(view.id)),
            ("tier", tier_value(view.tier())),
            ("subjectkind", json!(view.kind)),
            ("holdscredentials", json!(!view.credentials.is_empty())),
        ],
    );
    for group in view.groups.iter().flatten() {
        part.node(
            &group.id,
            "MIAGroup",
            vec![
                ("name", json!(group.display_name)),
                ("objectid", json!(group.id)),
                ("roleassignable", json!(group.is_assignable_to_role)),
                ("privileged", json!(!group.privileged_because.is_empty())),
            ],
        );
        part.edge("MIAMemberOf", &view.id, &group.id, Vec::new());
    }
    for role in view.directory_roles.iter().flatten() {
        let holder = role
            .via_group
            .as_ref()
            .map_or(view.id.as_str(), |g| g.id.as_str());
        part.node(
            &role.role_definition_id,
            "MIADirectoryRole",
            vec![
                ("name", json!(role.role_name)),
                ("tier", tier_value(Some(role.tier))),
                ("privileged", json!(role.is_privileged)),
            ],
        );
        part.edge(
            "MIAHasRole",
            holder,
            &role.role_definition_id,
            vec![
                ("assignmentid", json!(role.assignment_id)),
                ("state", json!(role.state)),
                ("directoryscope", json!(role.directory_scope_id)),
            ],
        );
    }
    for role in view.app_roles.iter().flatten() {
        let id = format!("{}/{}", role.resource_id, role.app_role_id);
        part.node(
            &id,
            "MIAAppPermission",
            vec![
                (
                    "name",
                    json!(
                        role.permission
                            .clone()
                            .unwrap_or_else(|| role.app_role_id.clone())
                    ),
                ),
                ("resource", json!(role.resource_name)),
                ("tier", tier_value(Some(role.tier))),
            ],
        );
        part.edge(
            "MIAHasAppRole",
            &view.id,
            &id,
            vec![("assignmentid", json!(role.assignment_id))],
        );
    }
    for role in view.azure_roles.iter().flatten() {
        let holder = role
            .via_group
            .as_ref()
            .map_or(view.id.as_str(), |g| g.id.as_str());
        part.scope_chain(resolver, &role.scope);
        part.edge(
            "MIAHasAzureRole",
            holder,
            &scope_id(&role.scope),
            vec![
                ("role", json!(role.role_name)),
                ("assignmentid", json!(role.assignment_id)),
                ("tier", tier_value(Some(role.tier))),
            ],
        );
    }
    let paths = resolver.paths();
    for (host, host_type) in paths.hosts_of(&view.id) {
        part.scope_chain(resolver, &host);
        if let Some(first) = part
            .nodes
            .iter_mut()
            .rev()
            .find(|n| n.id == host.to_ascii_lowercase())
        {
            first.kinds = vec!["MIAAzureResource"];
            first.properties.insert("resourcetype", json!(host_type));
        }
        part.edge("MIAHasManagedIdentity", &host, &view.id, Vec::new());
    }
    if is_identity {
        // The identity's most dangerous actors (as its record lists them), each with its first
        // control; the node says how many there are in all. Every actor of every identity
        // would be actors × identities edges: one Owner at a management group reaches every
        // identity below it.
        let actors = paths.actors(&view.id);
        if let Some(node) = part.nodes.first_mut() {
            node.properties.insert("actorcount", json!(actors.count));
        }
        for actor in &actors.first {
            let control = &actor.control;
            part.node(
                &actor.principal.id,
                principal_kind(actor.principal.kind),
                vec![
                    ("name", json!(actor.principal.name)),
                    ("objectid", json!(actor.principal.id)),
                    ("guest", json!(actor.guest)),
                ],
            );
            part.scope_chain(resolver, &control.scope);
            part.edge(
                "MIAHasAzureRole",
                &control.actor_id,
                &scope_id(&control.scope),
                vec![
                    ("role", json!(control.role_name)),
                    ("assignmentid", json!(control.assignment_id)),
                ],
            );
            part.edge(
                "MIACanExecuteAs",
                &control.actor_id,
                &view.id,
                control_properties(control),
            );
        }
    }
    // Ownership both ways: what the subject owns (with what that holds), and who owns it.
    let owns_edge = |part: &mut Part, owned: &crate::resolve::paths::OwnedRef| {
        part.edge(
            "MIAOwns",
            &owned.owner_id,
            &owned.gives,
            vec![
                ("objectid", json!(owned.object_id)),
                ("objectkind", json!(owned.object_kind)),
                ("objectname", json!(owned.object_name)),
            ],
        );
    };
    for (owned, node) in paths.owned_by(&view.id) {
        part.node(
            &node.id,
            principal_kind(node.node_kind),
            vec![
                ("name", json!(node.name)),
                ("objectid", json!(node.id)),
                ("tier", tier_value(node.tier)),
            ],
        );
        owns_edge(&mut part, owned);
        for holding in &node.holdings {
            part.node(
                &holding.target.id,
                principal_kind(holding.target.kind),
                vec![("name", json!(holding.target.name))],
            );
            part.edge(
                match holding.kind {
                    HoldingKind::DirectoryRole => "MIAHasRole",
                    HoldingKind::AppPermission => "MIAHasAppRole",
                    HoldingKind::AzureAccessAdministration => "MIAHasAzureRole",
                },
                holding
                    .via_group
                    .as_ref()
                    .map_or(node.id.as_str(), |g| g.id.as_str()),
                &holding.target.id,
                vec![("assignmentid", json!(holding.assignment_id))],
            );
            if let Some(group) = &holding.via_group {
                part.node(
                    &group.id,
                    "MIAGroup",
                    vec![("name", json!(group.display_name))],
                );
                part.edge("MIAMemberOf", &node.id, &group.id, Vec::new());
            }
        }
    }
    for owned in paths.owners_of(&view.id) {
        let owner_kind = paths.kind_of(&owned.owner_id);
        part.node(
            &owned.owner_id,
            principal_kind(owner_kind),
            vec![
                ("name", json!(paths.principal_name(&owned.owner_id))),
                ("objectid", json!(owned.owner_id)),
            ],
        );
        owns_edge(&mut part, owned);
    }
    part
}

/// The node id of a scope: lower case, `/` for the root.
fn scope_id(scope: &str) -> String {
    let id = crate::resolve::azure::normalise_id(scope);
    if id.is_empty() { "/".to_owned() } else { id }
}

fn key<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Nodes,
    Edges,
    Done,
}

/// `attack-graph.json`, piece by piece.
#[derive(Debug)]
pub struct OpenGraphChunks<'r, 'a> {
    resolver: &'r Resolver<'a>,
    phase: Phase,
    next: usize,
    written: HashSet<u64>,
    nodes: HashSet<u64>,
    any: bool,
}

/// The privilege graph of a resolved snapshot as OpenGraph JSON, in pieces.
pub fn chunks<'r, 'a>(resolver: &'r Resolver<'a>) -> OpenGraphChunks<'r, 'a> {
    OpenGraphChunks {
        resolver,
        phase: Phase::Header,
        next: 0,
        written: HashSet::new(),
        nodes: HashSet::new(),
        any: false,
    }
}

impl OpenGraphChunks<'_, '_> {
    fn write_item<T: Serialize>(
        &mut self,
        out: &mut Vec<u8>,
        item: &T,
    ) -> Result<(), serde_json::Error> {
        if self.any {
            out.push(b',');
        }
        self.any = true;
        serde_json::to_writer(out, item)
    }

    fn piece(&mut self) -> Result<Vec<u8>, serde_json::Error> {
        let subjects = self.resolver.subjects();
        let end = (self.next + SUBJECTS_PER_CHUNK).min(subjects.len());
        let mut out = Vec::with_capacity(64 * 1024);
        for subject in &subjects[self.next..end] {
            let part = part(self.resolver, *subject);
            if self.phase == Phase::Nodes {
                // A node is written with its first edge's subject; a subject without any edge
                // is left out (OpenGraph rejects isolated nodes).
                if part.edges.is_empty() {
                    continue;
                }
                for node in &part.nodes {
                    if self.written.insert(key(&node.id)) {
                        self.nodes.insert(key(&node.id));
                        // A managed identity first written as another's actor or owner still
                        // says how many principals can act as it.
                        if node.kinds.first() == Some(&"MIAManagedIdentity")
                            && !node.properties.contains_key("actorcount")
                        {
                            let mut node = node.clone();
                            let count = self.resolver.paths().actor_count(&node.id);
                            node.properties.insert("actorcount", json!(count));
                            self.write_item(&mut out, &node)?;
                        } else {
                            self.write_item(&mut out, node)?;
                        }
                    }
                }
            } else {
                for edge in &part.edges {
                    let assignment = edge.properties.get("assignmentid").map(Value::to_string);
                    let id = key(&(edge.kind, &edge.start.value, &edge.end.value, assignment));
                    let known = self.nodes.contains(&key(&edge.start.value))
                        && self.nodes.contains(&key(&edge.end.value));
                    if known && self.written.insert(id) {
                        self.write_item(&mut out, edge)?;
                    }
                }
            }
        }
        self.next = end;
        Ok(out)
    }
}

impl Iterator for OpenGraphChunks<'_, '_> {
    type Item = Result<Vec<u8>, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let total = self.resolver.subjects().len();
        match self.phase {
            Phase::Header => {
                self.phase = Phase::Nodes;
                Some(Ok(format!(
                    "{{\"metadata\":{{\"source_kind\":\"{SOURCE_KIND}\"}},\"graph\":{{\"nodes\":["
                )
                .into_bytes()))
            }
            Phase::Nodes | Phase::Edges if self.next < total => Some(self.piece()),
            Phase::Nodes => {
                self.phase = Phase::Edges;
                self.next = 0;
                self.any = false;
                self.written.clear();
                Some(Ok(b"],\"edges\":[".to_vec()))
            }
            Phase::Edges => {
                self.phase = Phase::Done;
                Some(Ok(b"]}}".to_vec()))
            }
            Phase::Done => None,
        }
    }
}
