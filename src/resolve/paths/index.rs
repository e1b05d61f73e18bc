//! Indexes of the Azure side of the privilege graph, so that each question costs what its
//! answer holds rather than what the estate holds: role assignments by id, the hosts and the
//! user-assigned identities under each scope, and every assignment's actor and table access
//! as small integers.
//!
//! On top of them, the control edges of an identity as a light stream of [`Link`]s (an
//! assignment and how it reaches the identity): the same edges, in the same order, as
//! `AzureGraph::controls`, turned into [`Control`]s only where a caller keeps one. The search
//! relaxes each actor once per severity class (a later, equally short or longer edge from the
//! same actor can never shorten a path), and an actor list builds controls only for the actors
//! it lists.

use std::collections::{HashMap, HashSet};

use super::execute_as::ExecuteAsTable;
use super::{AzureGraph, Control, Route, scope_key};
use crate::resolve::azure::role_guid;
use crate::snapshot::azure::{AzureSnapshot, UserAssignedIdentityRow};

/// A host under a scope: whose it is, where in that identity's host list, and its entry in
/// the can-execute-as table.
#[derive(Debug, Clone, Copy)]
pub(super) struct HostAt {
    principal: u32,
    position: u32,
    entry: u32,
}

/// How a link reaches its identity.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via {
    /// Code execution on the identity's host at this position of its host list, whose table
    /// entry is `entry`.
    Host { position: u32, entry: u32 },
    /// Federated-credential write on the user-assigned identity.
    FederatedCredential,
    /// `assign/action` on the user-assigned identity, with the compute write of assignment
    /// `writer`.
    Assign { writer: u32 },
    /// Write on the deployment container of the identity's host at this position of its host
    /// list (a Flex Consumption function app).
    DeploymentStorage { position: u32 },
}

/// The `exhausted` key of a host's deployment container (host entries use their table entry).
const DEPLOYMENT_STORAGE_ENTRY: u32 = u32::MAX - 1;

/// How one assignment reaches an identity it controls, before it is a [`Control`].
#[derive(Debug, Clone)]
pub(super) enum Reached {
    /// Its host at this position of its host list, of table entry `entry`.
    Host { position: usize, entry: usize },
    /// Federated-credential write on the user-assigned identity of this row.
    FederatedCredential(usize),
}

/// One effective control edge of an identity, before it is a [`Control`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    /// The assignment.
    pub assignment: u32,
    /// How it reaches the identity.
    pub via: Via,
}

/// The scope and actor indexes of one Azure snapshot.
#[derive(Debug, Default)]
pub(super) struct ScopeIndex {
    /// Assignment position by lower-case id.
    by_id: HashMap<String, u32>,
    /// Lower-case object ids of the identities that run in a host or are user-assigned
    /// identities, sorted: what the scope lists below number identities by.
    pub identities: Vec<String>,
    /// Per user-assigned identity row: its identity number (`u32::MAX`: no principal id).
    identity_of_row: Vec<u32>,
    /// The hosts under each scope key (the scope itself included).
    hosts_under: HashMap<String, Vec<HostAt>>,
    /// The user-assigned identities (positions in the snapshot's rows, principal id known)
    /// under each scope key.
    user_assigned_under: HashMap<String, Vec<u32>>,
    /// Distinct actors of role assignments, lower case.
    pub actors: Vec<String>,
    /// Actor position by lower-case id.
    actor_position: HashMap<String, u32>,
    /// Per assignment: its actor.
    actor_of: Vec<u32>,
    /// Per actor: Graph says it no longer exists.
    deleted: Vec<bool>,
    /// Per assignment: bit `e` set when its role allows the action of table host entry `e`.
    host_mask: Vec<u64>,
    /// Per assignment: its role allows federated-credential write.
    federated: Vec<bool>,
    /// Per assignment: its role allows `assign/action`.
    assign: Vec<bool>,
}

/// Bits of [`ScopeIndex::host_mask`]: entries past it are looked up in the role map.
const MASK_BITS: usize = 64;

impl ScopeIndex {
    /// Indexes `azure` for `graph` (whose scope chains, hosts and role access it reads).
    pub(super) fn new(graph: &AzureGraph<'_>, azure: &AzureSnapshot) -> Self {
        let table = ExecuteAsTable::embedded();
        let mut index = Self::default();
        let count = graph.assignments.len();
        index.by_id.reserve(count);
        index.actor_of.reserve(count);
        index.host_mask.reserve(count);
        for (i, a) in graph.assignments.iter().enumerate() {
            let position = i as u32;
            index
                .by_id
                .entry(a.id.to_ascii_lowercase())
                .or_insert(position);
            let actor = index.actor(&a.principal_id);
            index.actor_of.push(actor);
            let access = graph.roles.get(&role_guid(&a.role_definition_id));
            let mut mask = 0u64;
            for (e, allowed) in access
                .into_iter()
                .flat_map(|r| r.hosts.iter())
                .enumerate()
                .take(MASK_BITS)
            {
                if allowed.is_some() {
                    mask |= 1 << e;
                }
            }
            index.host_mask.push(mask);
            index
                .federated
                .push(access.is_some_and(|r| r.federated_credential.is_some()));
            index
                .assign
                .push(access.is_some_and(|r| r.assign.is_some()));
        }
        index.deleted = index
            .actors
            .iter()
            .map(|a| graph.deleted.contains(a))
            .collect();
        let row_principal = |row: &UserAssignedIdentityRow| {
            row.principal_id
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(str::to_ascii_lowercase)
        };
        let mut identities: Vec<String> = graph
            .hosts
            .keys()
            .cloned()
            .chain(
                azure
                    .user_assigned_identities
                    .iter()
                    .filter_map(row_principal),
            )
            .collect();
        identities.sort_unstable();
        identities.dedup();
        index.identities = identities;
        let number = |id: &str| {
            index
                .identities
                .binary_search_by(|p| p.as_str().cmp(id))
                .map_or(u32::MAX, |p| p as u32)
        };
        index.identity_of_row = azure
            .user_assigned_identities
            .iter()
            .map(|row| row_principal(row).map_or(u32::MAX, |p| number(&p)))
            .collect();
        let mut hosts_under: HashMap<String, Vec<HostAt>> = HashMap::new();
        for (p, principal) in index.identities.iter().enumerate() {
            for (position, host) in graph.hosts.get(principal).into_iter().flatten().enumerate() {
                let Some((entry, _)) = table.host(&host.resource_type) else {
                    continue;
                };
                let at = HostAt {
                    principal: p as u32,
                    position: position as u32,
                    entry: entry as u32,
                };
                for scope in graph.ancestors(&host.id) {
                    hosts_under.entry(scope).or_default().push(at);
                }
            }
        }
        index.hosts_under = hosts_under;
        for (u, row) in azure.user_assigned_identities.iter().enumerate() {
            if index.identity_of_row[u] == u32::MAX {
                continue;
            }
            for scope in graph.ancestors(&row.id) {
                index
                    .user_assigned_under
                    .entry(scope)
                    .or_default()
                    .push(u as u32);
            }
        }
        index
    }

    /// Orders every scope's user-assigned identities by `key` (the most privileged first).
    pub(super) fn rank_user_assigned<K: Ord>(&mut self, key: impl Fn(u32) -> K) {
        for rows in self.user_assigned_under.values_mut() {
            rows.sort_by_key(|&u| key(u));
        }
    }

    /// The identity number of a user-assigned identity row (`u32::MAX`: no principal id).
    pub(super) fn identity_of_row(&self, row: u32) -> u32 {
        self.identity_of_row
            .get(row as usize)
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// The position of an actor, added when new.
    fn actor(&mut self, principal_id: &str) -> u32 {
        let key = principal_id.to_ascii_lowercase();
        if let Some(&p) = self.actor_position.get(&key) {
            return p;
        }
        let p = self.actors.len() as u32;
        self.actors.push(key.clone());
        self.actor_position.insert(key, p);
        p
    }

    /// The actor of assignment `i`.
    pub(super) fn actor_of(&self, i: usize) -> u32 {
        self.actor_of[i]
    }

    /// True when Graph says the actor no longer exists.
    pub(super) fn is_deleted(&self, actor: u32) -> bool {
        self.deleted.get(actor as usize).copied().unwrap_or(false)
    }

    /// The position of an actor by object id (any case), if it holds an assignment.
    pub(super) fn actor_position(&self, principal_id: &str) -> Option<u32> {
        self.actor_position
            .get(&principal_id.to_ascii_lowercase())
            .copied()
    }
}

impl<'a> AzureGraph<'a> {
    /// True when assignment `i`'s role allows the action of table host entry `entry`.
    pub(super) fn allows_host(&self, i: usize, entry: usize) -> bool {
        if entry < MASK_BITS {
            return self.index.host_mask[i] & (1 << entry) != 0;
        }
        self.roles
            .get(&role_guid(&self.assignments[i].role_definition_id))
            .is_some_and(|r| r.hosts.get(entry).is_some_and(Option::is_some))
    }

    /// The assignments over a resource, nearest scope first, without copying the lists.
    fn assignments_at(&self, resource_id: &str) -> impl Iterator<Item = usize> + '_ {
        self.ancestors(resource_id)
            .into_iter()
            .flat_map(move |scope| self.by_scope.get(&scope).into_iter().flatten().copied())
    }

    /// The effective control edges of an identity as links, in the order of
    /// `AzureGraph::controls` (hosts in order, each over its scopes nearest first; then the
    /// user-assigned identity), without self-control or deleted actors.
    pub(super) fn links(&self, identity_id: &str) -> Vec<Link> {
        let table = ExecuteAsTable::embedded();
        let key = identity_id.to_ascii_lowercase();
        let own = self.index.actor_position(&key);
        let mut out = Vec::new();
        let mut push = |i: usize, via: Via| {
            let actor = self.index.actor_of[i];
            if Some(actor) == own || self.index.deleted[actor as usize] {
                return;
            }
            out.push(Link {
                assignment: i as u32,
                via,
            });
        };
        for (position, host) in self.hosts.get(&key).into_iter().flatten().enumerate() {
            let Some((entry, _)) = table.host(&host.resource_type) else {
                continue;
            };
            for i in self.assignments_at(&host.id) {
                if self.allows_host(i, entry) {
                    push(
                        i,
                        Via::Host {
                            position: position as u32,
                            entry: entry as u32,
                        },
                    );
                }
            }
            if let Some(container) = self.deployment_container_of(host, entry) {
                for i in self.assignments_at(container) {
                    if self.writes_deployment_storage(i) {
                        push(
                            i,
                            Via::DeploymentStorage {
                                position: position as u32,
                            },
                        );
                    }
                }
            }
        }
        if let Some(uami) = self.user_assigned.get(&key) {
            for i in self.assignments_at(uami) {
                if let Some(via) = self.user_assigned_via(i) {
                    push(i, via);
                }
            }
        }
        out
    }

    /// The links of an identity whose actors are not yet `relaxed`, the first of each; marks
    /// them relaxed. A (scope, table entry) whose every actor is relaxed (or deleted) is
    /// `exhausted` and never read again, so one search reads each assignment about once.
    pub(super) fn fresh_links(
        &self,
        identity_id: &str,
        relaxed: &mut [bool],
        exhausted: &mut HashSet<(String, u32)>,
    ) -> Vec<Link> {
        let table = ExecuteAsTable::embedded();
        let key = identity_id.to_ascii_lowercase();
        let own = self.index.actor_position(&key);
        let mut out = Vec::new();
        let mut scan = |scope: String, entry: u32, via: &dyn Fn(usize) -> Option<Via>| {
            if exhausted.contains(&(scope.clone(), entry)) {
                return;
            }
            let mut skipped_own = false;
            for &i in self.by_scope.get(&scope).into_iter().flatten() {
                let Some(via) = via(i) else {
                    continue;
                };
                let actor = self.index.actor_of[i];
                if Some(actor) == own {
                    skipped_own = true;
                    continue;
                }
                let Some(done) = relaxed.get_mut(actor as usize) else {
                    continue;
                };
                if *done || self.index.deleted[actor as usize] {
                    continue;
                }
                *done = true;
                out.push(Link {
                    assignment: i as u32,
                    via,
                });
            }
            if !skipped_own {
                exhausted.insert((scope, entry));
            }
        };
        for (position, host) in self.hosts.get(&key).into_iter().flatten().enumerate() {
            let Some((entry, _)) = table.host(&host.resource_type) else {
                continue;
            };
            let via = |i: usize| {
                self.allows_host(i, entry).then_some(Via::Host {
                    position: position as u32,
                    entry: entry as u32,
                })
            };
            for scope in self.ancestors(&host.id) {
                scan(scope, entry as u32, &via);
            }
            if let Some(container) = self.deployment_container_of(host, entry) {
                let via = |i: usize| {
                    self.writes_deployment_storage(i)
                        .then_some(Via::DeploymentStorage {
                            position: position as u32,
                        })
                };
                for scope in self.ancestors(container) {
                    scan(scope, DEPLOYMENT_STORAGE_ENTRY, &via);
                }
            }
        }
        if let Some(uami) = self.user_assigned.get(&key) {
            let via = |i: usize| self.user_assigned_via(i);
            for scope in self.ancestors(uami) {
                scan(scope, u32::MAX, &via);
            }
        }
        out
    }

    /// The deployment container of a host whose type runs from one (table entry `entry`).
    pub(super) fn deployment_container_of<'h>(
        &self,
        host: &'h super::HostRef,
        entry: usize,
    ) -> Option<&'h String> {
        let table = ExecuteAsTable::embedded();
        host.deployment_container
            .as_ref()
            .filter(|_| table.hosts.get(entry).is_some_and(|h| h.deployment_storage))
    }

    /// True when assignment `i`'s role can write a deployment container (write or list keys on
    /// the account, or write its blobs).
    pub(super) fn writes_deployment_storage(&self, i: usize) -> bool {
        self.roles
            .get(&role_guid(&self.assignments[i].role_definition_id))
            .is_some_and(|r| r.deployment_storage.is_some())
    }

    /// How assignment `i` controls a user-assigned identity under its scope, if it does
    /// effectively.
    pub(super) fn user_assigned_via(&self, i: usize) -> Option<Via> {
        if self.index.federated[i] {
            return Some(Via::FederatedCredential);
        }
        if !self.index.assign[i] {
            return None;
        }
        let w = self
            .compute_writers
            .get(&self.assignments[i].principal_id.to_ascii_lowercase())
            .copied()?;
        self.roles
            .get(&role_guid(&self.assignments[w].role_definition_id))
            .is_some_and(|r| r.compute_write.is_some())
            .then_some(Via::Assign { writer: w as u32 })
    }

    /// The [`Control`] of a link of `identity_id`.
    pub(super) fn control_of(&self, identity_id: &str, link: &Link) -> Control {
        let table = ExecuteAsTable::embedded();
        let i = link.assignment as usize;
        let how = &table.user_assigned_identity.how;
        let uami = || {
            self.user_assigned
                .get(&identity_id.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()
        };
        let allowed = |pick: &dyn Fn(&super::RoleAccess) -> Option<super::AllowedAction>| {
            self.roles
                .get(&role_guid(&self.assignments[i].role_definition_id))
                .and_then(pick)
                .unwrap_or_else(|| super::AllowedAction {
                    action: String::new(),
                    granted_by: String::new(),
                })
        };
        match link.via {
            Via::Host { position, entry } => {
                let host = self
                    .hosts
                    .get(&identity_id.to_ascii_lowercase())
                    .and_then(|h| h.get(position as usize));
                let host_entry = table.hosts.get(entry as usize);
                self.control(
                    i,
                    &allowed(&|r| r.hosts.get(entry as usize).cloned().flatten()),
                    host_entry.map(|h| h.how.as_str()).unwrap_or_default(),
                    Route::Host {
                        host_id: host.map(|h| h.id.clone()).unwrap_or_default(),
                        host_type: host_entry
                            .map(|h| h.resource_type.clone())
                            .unwrap_or_default(),
                    },
                )
            }
            Via::DeploymentStorage { position } => {
                let host = self
                    .hosts
                    .get(&identity_id.to_ascii_lowercase())
                    .and_then(|h| h.get(position as usize));
                self.control(
                    i,
                    &allowed(&|r| r.deployment_storage.clone()),
                    &table.deployment_storage.how,
                    Route::DeploymentStorage {
                        host_id: host.map(|h| h.id.clone()).unwrap_or_default(),
                        container_id: host
                            .and_then(|h| h.deployment_container.clone())
                            .unwrap_or_default(),
                    },
                )
            }
            Via::FederatedCredential => self.control(
                i,
                &allowed(&|r| r.federated_credential.clone()),
                how.get("federatedCredential")
                    .map(String::as_str)
                    .unwrap_or_default(),
                Route::FederatedCredential {
                    identity_resource_id: uami(),
                },
            ),
            Via::Assign { writer } => {
                let w = writer as usize;
                let write = self
                    .roles
                    .get(&role_guid(&self.assignments[w].role_definition_id))
                    .and_then(|r| r.compute_write.clone())
                    .map(|a| a.action)
                    .unwrap_or_default();
                self.control(
                    i,
                    &allowed(&|r| r.assign.clone()),
                    how.get("assign").map(String::as_str).unwrap_or_default(),
                    Route::Assign {
                        identity_resource_id: uami(),
                        compute_assignment_id: self.assignments[w].id.clone(),
                        compute_action: write,
                    },
                )
            }
        }
    }

    /// The [`Control`] of each actor's first link, with how many links the actor has, in the
    /// order of the actors' first links.
    pub(super) fn first_controls(
        &self,
        identity_id: &str,
        links: &[Link],
    ) -> Vec<(Control, usize)> {
        let mut firsts: Vec<(u32, &Link, usize)> = Vec::new();
        for link in links {
            let actor = self.index.actor_of(link.assignment as usize);
            match firsts.iter_mut().find(|(a, ..)| *a == actor) {
                Some((_, _, n)) => *n += 1,
                None => firsts.push((actor, link, 1)),
            }
        }
        firsts
            .into_iter()
            .map(|(_, link, n)| (self.control_of(identity_id, link), n))
            .collect()
    }

    /// The assignment's position, by id (any case).
    pub(super) fn assignment(&self, assignment_id: &str) -> Option<usize> {
        self.index
            .by_id
            .get(&assignment_id.to_ascii_lowercase())
            .map(|&i| i as usize)
    }

    /// The identities assignment `i` controls, by identity number (so by lower-case object
    /// id), each once with its first way: a host under its scope whose type its role allows
    /// (the first in the identity's host list), else the user-assigned identity under its
    /// scope when the role can write its federated credentials. The holder is left out.
    pub(super) fn reached_by(&self, i: usize) -> Vec<(u32, Reached)> {
        let mut out = self.reached_by_all(i);
        let holder = self.assignments[i].principal_id.to_ascii_lowercase();
        out.retain(|(p, _)| self.index.identities[*p as usize] != holder);
        out
    }

    /// [`Self::reached_by`] with the holder left in.
    pub(super) fn reached_by_all(&self, i: usize) -> Vec<(u32, Reached)> {
        let a = &self.assignments[i];
        let scope = scope_key(&a.scope);
        let mut hosts: Vec<(u32, u32, u32)> = self
            .index
            .hosts_under
            .get(&scope)
            .into_iter()
            .flatten()
            .filter(|at| self.allows_host(i, at.entry as usize))
            .map(|at| (at.principal, at.position, at.entry))
            .collect();
        hosts.sort_unstable();
        hosts.dedup_by_key(|h| h.0);
        let mut out: Vec<(u32, Reached)> = hosts
            .into_iter()
            .map(|(p, position, entry)| {
                (
                    p,
                    Reached::Host {
                        position: position as usize,
                        entry: entry as usize,
                    },
                )
            })
            .collect();
        if self.index.federated[i] {
            let mut rows: Vec<(u32, u32)> = self
                .index
                .user_assigned_under
                .get(&scope)
                .into_iter()
                .flatten()
                .map(|&u| (self.index.identity_of_row[u as usize], u))
                .filter(|(p, _)| out.binary_search_by_key(p, |(q, _)| *q).is_err())
                .collect();
            rows.sort_unstable();
            rows.dedup_by_key(|r| r.0);
            out.extend(
                rows.into_iter()
                    .map(|(p, u)| (p, Reached::FederatedCredential(u as usize))),
            );
            out.sort_by_key(|(p, _)| *p);
        }
        out
    }

    /// True when assignment `i` reaches the identity (lower-case object id) as
    /// [`Self::reached_by`] counts it, before the holder is left out: a host of the identity
    /// under the assignment's scope whose type its role allows, or its user-assigned identity
    /// under the scope when the role writes federated credentials.
    pub(super) fn reaches(&self, i: usize, identity_key: &str) -> bool {
        let table = ExecuteAsTable::embedded();
        let scope = scope_key(&self.assignments[i].scope);
        let over = |resource: &str| self.ancestors(resource).contains(&scope);
        let by_host = self.hosts.get(identity_key).into_iter().flatten().any(|h| {
            table
                .host(&h.resource_type)
                .is_some_and(|(entry, _)| self.allows_host(i, entry) && over(&h.id))
        });
        by_host
            || (self.index.federated[i]
                && self
                    .user_assigned
                    .get(identity_key)
                    .is_some_and(|uami| over(uami)))
    }

    /// The control assignment `i` gives over the identity `principal` through `reached`.
    pub(super) fn control_reached(
        &self,
        i: usize,
        principal: &str,
        reached: &Reached,
    ) -> Option<Control> {
        let table = ExecuteAsTable::embedded();
        let access = self
            .roles
            .get(&role_guid(&self.assignments[i].role_definition_id))?;
        match reached {
            Reached::Host { position, entry } => {
                let host = self.hosts.get(principal)?.get(*position)?;
                let host_entry = table.hosts.get(*entry)?;
                let allowed = access.hosts.get(*entry).cloned().flatten()?;
                let route = Route::Host {
                    host_id: host.id.clone(),
                    host_type: host_entry.resource_type.clone(),
                };
                Some(self.control(i, &allowed, &host_entry.how, route))
            }
            Reached::FederatedCredential(row) => {
                let identity_resource_id = &self.user_assigned_rows.get(*row)?.id;
                let allowed = access.federated_credential.as_ref()?;
                let how = table
                    .user_assigned_identity
                    .how
                    .get("federatedCredential")
                    .map(String::as_str)
                    .unwrap_or_default();
                let route = Route::FederatedCredential {
                    identity_resource_id: identity_resource_id.clone(),
                };
                Some(self.control(i, allowed, how, route))
            }
        }
    }

    /// The user-assigned identity rows (principal id known) under a scope, most privileged
    /// first (tier, then name, then resource id; identities that are not subjects last).
    pub(super) fn user_assigned_under(
        &self,
        scope: &str,
    ) -> impl Iterator<Item = &'a UserAssignedIdentityRow> + '_ {
        let rows = self.user_assigned_rows;
        self.index
            .user_assigned_under
            .get(&scope_key(scope))
            .into_iter()
            .flatten()
            .filter_map(move |&u| rows.get(u as usize))
    }
}
