//! The actors of each identity, at the cost of what is local to it.
//!
//! An identity's control edges come from the assignments over its hosts (and their deployment
//! containers) and over its user-assigned identity resource. Most of those assignments sit at
//! a subscription, its management groups, the tenant root group or `/`: every identity of the
//! subscription inherits them. Listing them per identity costs what the estate holds above it,
//! once per identity and output, and at 50,000 identities that is most of a run.
//!
//! So the inherited part is computed once per **chain**: a subscription scope and what an
//! assignment must allow there (code execution on one host type, write on a deployment
//! container, take-over of a user-assigned identity). A chain keeps its distinct actors (for
//! the count) and its [`LISTED_PER_CHAIN`] most dangerous actors with their assignments (for
//! the list). An identity then reads only its resource-group and resource scopes itself.
//!
//! The list is exact: an actor among an identity's [`ACTORS_LISTED`] most dangerous that
//! comes from a chain is among that chain's `ACTORS_LISTED + 1` most dangerous (the one extra
//! is the identity itself, never its own actor). Each listed actor's controls keep the order of
//! the full edge list: segment by segment, its local scopes nearest first, then its chain.

use std::collections::HashMap;

use super::ACTORS_LISTED;
use super::AzureGraph;
use super::execute_as::ExecuteAsTable;
use super::index::{Link, Via};

/// How many of a chain's most dangerous actors it lists with their assignments.
const LISTED_PER_CHAIN: usize = ACTORS_LISTED + 1;

/// What an assignment must allow to give an edge in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Need {
    /// Code execution on a host of this can-execute-as table entry.
    Host(u32),
    /// Write on a function app's deployment container.
    DeploymentStorage,
    /// Take-over of a user-assigned identity (federated credential, or assign with a compute
    /// write).
    UserAssigned,
}

/// The actors of the assignments at one subscription and above whose roles meet one need.
#[derive(Debug, Default)]
struct Chain {
    /// Distinct actors (Graph does not say they are deleted), sorted by number.
    actors: Vec<u32>,
    /// The [`LISTED_PER_CHAIN`] most dangerous of them, each with its assignments in chain
    /// order (nearest scope first).
    listed: Vec<(u32, Vec<u32>)>,
}

/// The inherited actors of every chain an identity of the snapshot uses.
#[derive(Debug, Default)]
pub(super) struct Inherited {
    chains: Vec<Chain>,
    /// Chain number by (subscription scope key, need).
    by_key: HashMap<(String, Need), u32>,
    /// How many distinct actors several chains hold together, by their sorted numbers.
    union_counts: HashMap<Vec<u32>, usize>,
}

/// One part of an identity's edges: the assignments over one resource that meet one need.
#[derive(Debug)]
struct Segment {
    need: Need,
    /// The host's position in the identity's host list (0 for the user-assigned identity).
    position: u32,
    /// Assignments at the resource-group scope and below that meet the need, nearest first.
    local: Vec<u32>,
    /// The chain of the subscription and above.
    chain: Option<u32>,
}

/// The actors of one identity: how many, and the links of the most dangerous.
#[derive(Debug, Default)]
pub(super) struct ListedLinks {
    /// Distinct actors with at least one edge.
    pub count: usize,
    /// Every link of the [`ACTORS_LISTED`] most dangerous actors, each actor's in edge order.
    pub links: Vec<Link>,
}

/// The scopes over `resource` split at its subscription: (resource group and below, nearest
/// first; the subscription key and the scopes from it up), as [`AzureGraph::ancestors`] lists
/// them.
fn split(mut scopes: Vec<String>) -> (Vec<String>, Option<(String, Vec<String>)>) {
    let at = scopes
        .iter()
        .position(|s| s.starts_with("/subscriptions/") && s.matches('/').count() == 2);
    match at {
        Some(at) => {
            let chain = scopes.split_off(at);
            (scopes, Some((chain[0].clone(), chain)))
        }
        None => (scopes, None),
    }
}

impl Inherited {
    /// Computes the chain of every segment of every identity of the scope index, and the
    /// union counts of the identities that use several chains. `rank` is each actor's place
    /// in the actor order (most dangerous first).
    pub(super) fn new(graph: &AzureGraph<'_>, rank: &[u32]) -> Self {
        let mut inherited = Self::default();
        for identity in &graph.index.identities {
            let mut used = Vec::new();
            for (resource, need, _) in graph.segment_resources(identity) {
                let (_, chain) = split(graph.ancestors(&resource));
                let Some((key, scopes)) = chain else {
                    continue;
                };
                let number = match inherited.by_key.get(&(key.clone(), need)) {
                    Some(&n) => n,
                    None => {
                        let n = inherited.chains.len() as u32;
                        inherited.chains.push(Chain::of(graph, &scopes, need, rank));
                        inherited.by_key.insert((key, need), n);
                        n
                    }
                };
                used.push(number);
            }
            used.sort_unstable();
            used.dedup();
            if used.len() > 1 && !inherited.union_counts.contains_key(&used) {
                let count = inherited.union_count(&used);
                inherited.union_counts.insert(used, count);
            }
        }
        inherited
    }

    /// How many distinct actors the chains hold together.
    fn union_count(&self, chains: &[u32]) -> usize {
        match chains {
            [] => 0,
            [one] => self.chains[*one as usize].actors.len(),
            _ => self.union_counts.get(chains).copied().unwrap_or_else(|| {
                let mut all: Vec<u32> = chains
                    .iter()
                    .flat_map(|&c| self.chains[c as usize].actors.iter().copied())
                    .collect();
                all.sort_unstable();
                all.dedup();
                all.len()
            }),
        }
    }

    /// True when some of the chains hold the actor.
    fn holds(&self, chains: &[u32], actor: u32) -> bool {
        chains
            .iter()
            .any(|&c| self.chains[c as usize].actors.binary_search(&actor).is_ok())
    }
}

impl Chain {
    /// The chain of `scopes` (a subscription and above) for `need`.
    fn of(graph: &AzureGraph<'_>, scopes: &[String], need: Need, rank: &[u32]) -> Self {
        let mut edges: Vec<(u32, u32)> = Vec::new();
        for scope in scopes {
            for &i in graph.by_scope.get(scope).into_iter().flatten() {
                let actor = graph.index.actor_of(i);
                if !graph.index.is_deleted(actor) && graph.meets(i, need) {
                    edges.push((actor, i as u32));
                }
            }
        }
        let mut actors: Vec<u32> = edges.iter().map(|&(a, _)| a).collect();
        actors.sort_unstable();
        actors.dedup();
        let mut most = actors.clone();
        let rank_of = |a: &u32| rank.get(*a as usize).copied().unwrap_or(u32::MAX);
        if most.len() > LISTED_PER_CHAIN {
            most.select_nth_unstable_by_key(LISTED_PER_CHAIN - 1, rank_of);
            most.truncate(LISTED_PER_CHAIN);
        }
        let listed = most
            .into_iter()
            .map(|a| {
                let assignments = edges
                    .iter()
                    .filter(|&&(b, _)| b == a)
                    .map(|&(_, i)| i)
                    .collect();
                (a, assignments)
            })
            .collect();
        Self { actors, listed }
    }
}

impl AzureGraph<'_> {
    /// The resources an identity's edges come through, in edge order: each host (with its
    /// deployment container) in host-list order, then its user-assigned identity resource.
    fn segment_resources(&self, identity_key: &str) -> Vec<(String, Need, u32)> {
        let table = ExecuteAsTable::embedded();
        let mut out = Vec::new();
        for (position, host) in self
            .hosts
            .get(identity_key)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some((entry, _)) = table.host(&host.resource_type) else {
                continue;
            };
            out.push((host.id.clone(), Need::Host(entry as u32), position as u32));
            if let Some(container) = self.deployment_container_of(host, entry) {
                out.push((container.clone(), Need::DeploymentStorage, position as u32));
            }
        }
        if let Some(uami) = self.user_assigned.get(identity_key) {
            out.push((uami.clone(), Need::UserAssigned, 0));
        }
        out
    }

    /// True when assignment `i`'s role meets `need`.
    fn meets(&self, i: usize, need: Need) -> bool {
        match need {
            Need::Host(entry) => self.allows_host(i, entry as usize),
            Need::DeploymentStorage => self.writes_deployment_storage(i),
            Need::UserAssigned => self.user_assigned_via(i).is_some(),
        }
    }

    /// How assignment `i` reaches the identity in a segment (it meets the segment's need).
    fn via(&self, i: usize, need: Need, position: u32) -> Option<Via> {
        match need {
            Need::Host(entry) => Some(Via::Host { position, entry }),
            Need::DeploymentStorage => Some(Via::DeploymentStorage { position }),
            Need::UserAssigned => self.user_assigned_via(i),
        }
    }

    /// The segments of an identity (lower-case object id), in edge order.
    fn segments(&self, identity_key: &str) -> Vec<Segment> {
        self.segment_resources(identity_key)
            .into_iter()
            .map(|(resource, need, position)| {
                let (mut local, chain) = split(self.ancestors(&resource));
                let chain = chain.and_then(|(key, scopes)| {
                    let found = self.inherited.by_key.get(&(key, need)).copied();
                    // A chain the index did not compute is read like the local scopes.
                    if found.is_none() {
                        local.extend(scopes);
                    }
                    found
                });
                let local = local
                    .iter()
                    .flat_map(|scope| self.by_scope.get(scope).into_iter().flatten())
                    .filter(|&&i| self.meets(i, need))
                    .map(|&i| i as u32)
                    .collect();
                Segment {
                    need,
                    position,
                    local,
                    chain,
                }
            })
            .collect()
    }

    /// How many principals control the identity, and every link (in edge order, actor by
    /// actor) of the [`ACTORS_LISTED`] most dangerous of them, by `rank`. The identity itself
    /// and deleted principals are never actors.
    pub(super) fn listed_links(&self, identity_id: &str, rank: &[u32]) -> ListedLinks {
        let key = identity_id.to_ascii_lowercase();
        let own = self.index.actor_position(&key);
        let segments = self.segments(&key);
        let is_actor = |a: u32| Some(a) != own && !self.index.is_deleted(a);
        let mut local: Vec<u32> = segments
            .iter()
            .flat_map(|s| s.local.iter().map(|&i| self.index.actor_of(i as usize)))
            .filter(|&a| is_actor(a))
            .collect();
        local.sort_unstable();
        local.dedup();
        let mut chains: Vec<u32> = segments.iter().filter_map(|s| s.chain).collect();
        chains.sort_unstable();
        chains.dedup();
        let inherited = &self.inherited;
        let own_inherited = own.is_some_and(|o| inherited.holds(&chains, o));
        let count = inherited.union_count(&chains) - usize::from(own_inherited)
            + local
                .iter()
                .filter(|&&a| !inherited.holds(&chains, a))
                .count();
        let mut listed = local;
        for &c in &chains {
            listed.extend(
                inherited.chains[c as usize]
                    .listed
                    .iter()
                    .map(|(a, _)| *a)
                    .filter(|&a| is_actor(a)),
            );
        }
        listed.sort_unstable();
        listed.dedup();
        let rank_of = |a: &u32| rank.get(*a as usize).copied().unwrap_or(u32::MAX);
        if listed.len() > ACTORS_LISTED {
            listed.select_nth_unstable_by_key(ACTORS_LISTED - 1, rank_of);
            listed.truncate(ACTORS_LISTED);
        }
        let mut links = Vec::new();
        for segment in &segments {
            let mut push = |i: u32| {
                if let Some(via) = self.via(i as usize, segment.need, segment.position) {
                    links.push(Link { assignment: i, via });
                }
            };
            for &i in &segment.local {
                let actor = self.index.actor_of(i as usize);
                if is_actor(actor) && listed.contains(&actor) {
                    push(i);
                }
            }
            let Some(c) = segment.chain else {
                continue;
            };
            for (actor, assignments) in &inherited.chains[c as usize].listed {
                if is_actor(*actor) && listed.contains(actor) {
                    for &i in assignments {
                        push(i);
                    }
                }
            }
        }
        ListedLinks { count, links }
    }
}
