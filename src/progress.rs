//! What a run is doing now, for whoever watches it: the phase, how much of it is done of how
//! much, and since when. Collection and publishing report into a [`Progress`] (atomics, no
//! locks on the hot path); the CLI draws it (a bar on a terminal, one line per phase
//! elsewhere) and an HTTP-triggered run copies it into `scans/{runId}.json`.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Checking the endpoints and reading the scanner's own token.
    Starting,
    /// Listing the tenant's managed identities (paged).
    ListingIdentities,
    /// Listing application service principals, applications, ownership and groups.
    ListingApplications,
    /// Reading each principal's app role assignments ($batch).
    ReadingAssignments,
    /// Reading each principal's transitive group and role memberships ($batch).
    ReadingMemberships,
    /// Reading directory roles, grants and the resources principals hold roles on.
    ReadingDirectory,
    /// Reading the Azure plane (ARM).
    ReadingAzure,
    /// Reading what identities used (Log Analytics), when a workspace is configured.
    ReadingUsage,
    /// Assessing and writing the results.
    Publishing,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 9] = [
        Phase::Starting,
        Phase::ListingIdentities,
        Phase::ListingApplications,
        Phase::ReadingAssignments,
        Phase::ReadingMemberships,
        Phase::ReadingDirectory,
        Phase::ReadingAzure,
        Phase::ReadingUsage,
        Phase::Publishing,
    ];

    /// Its place, from 1.
    pub fn number(self) -> usize {
        Self::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }

    /// What it does, for people.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::ListingIdentities => "listing managed identities",
            Phase::ListingApplications => "listing applications, owners and groups",
            Phase::ReadingAssignments => "reading app role assignments",
            Phase::ReadingMemberships => "reading group and role memberships",
            Phase::ReadingDirectory => "reading directory roles and grants",
            Phase::ReadingAzure => "reading the Azure plane",
            Phase::ReadingUsage => "reading the usage logs",
            Phase::Publishing => "assessing and writing results",
        }
    }

    /// What its count counts.
    pub fn unit(self) -> &'static str {
        match self {
            Phase::ListingIdentities | Phase::ListingApplications => "objects",
            Phase::ReadingAssignments | Phase::ReadingMemberships => "principals",
            Phase::Publishing => "subjects",
            _ => "requests",
        }
    }
}

/// A run's progress, shared between the run and whoever shows it (cheap to clone).
#[derive(Debug, Clone)]
pub struct Progress(Arc<Inner>);

/// What the run has spent at Graph so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Resource units Graph charged.
    pub resource_units: u64,
    /// Throttled (429) responses.
    pub throttled: u64,
}

/// Reads the run's [`Cost`] (the Graph client's counters).
pub type CostSource = Arc<dyn Fn() -> Cost + Send + Sync>;

struct Inner {
    cost: Mutex<Option<CostSource>>,
    /// Every phase entered, with its total, in order.
    entered: Mutex<Vec<(Phase, Option<u64>)>>,
    phase: Mutex<(Phase, Instant)>,
    done: AtomicU64,
    /// `u64::MAX`: not known.
    total: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("done", &self.done)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Progress::now`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressNow {
    /// The phase.
    pub phase: Phase,
    /// Done in this phase.
    pub done: u64,
    /// To do in this phase, when known.
    pub total: Option<u64>,
    /// Since the phase started.
    pub in_phase: Duration,
    /// Since the run started.
    pub elapsed: Duration,
    /// What the run has spent at Graph.
    pub cost: Cost,
}

impl ProgressNow {
    /// The time the phase still needs at its rate so far, once it has a total and some done.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.total?;
        if self.done == 0 || self.done >= total {
            return None;
        }
        let per_item = self.in_phase.as_secs_f64() / self.done as f64;
        Some(Duration::from_secs_f64(
            per_item * (total - self.done) as f64,
        ))
    }
}

impl Progress {
    /// A run starting now.
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            cost: Mutex::new(None),
            entered: Mutex::new(vec![(Phase::Starting, None)]),
            phase: Mutex::new((Phase::Starting, Instant::now())),
            done: AtomicU64::new(0),
            total: AtomicU64::new(u64::MAX),
            started: Instant::now(),
        }))
    }

    /// Reads the run's cost from `source` from now on (the Graph client that reads for it).
    pub fn measure_cost_with(&self, source: CostSource) {
        if let Ok(mut cost) = self.0.cost.lock() {
            *cost = Some(source);
        }
    }

    /// Enters `phase` with `total` items to do (when known).
    pub fn enter(&self, phase: Phase, total: Option<u64>) {
        if let Ok(mut current) = self.0.phase.lock() {
            *current = (phase, Instant::now());
        }
        if let Ok(mut entered) = self.0.entered.lock() {
            entered.push((phase, total));
        }
        self.0.done.store(0, Ordering::Relaxed);
        self.0
            .total
            .store(total.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The phases entered after the first `seen`, with their totals: a watcher that polls
    /// misses none, however short.
    pub fn entered_since(&self, seen: usize) -> Vec<(Phase, Option<u64>)> {
        self.0
            .entered
            .lock()
            .map(|entered| entered.iter().skip(seen).copied().collect())
            .unwrap_or_default()
    }

    /// Counts `n` more items done in the current phase.
    pub fn advance(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Raises the current phase's total by `n` (a listing learns its size page by page).
    pub fn add_total(&self, n: u64) {
        let _ = self
            .0
            .total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(if t == u64::MAX { n } else { t + n })
            });
    }

    /// Where the run is.
    pub fn now(&self) -> ProgressNow {
        let (phase, since) = self
            .0
            .phase
            .lock()
            .map(|p| *p)
            .unwrap_or((Phase::Starting, self.0.started));
        let total = self.0.total.load(Ordering::Relaxed);
        ProgressNow {
            phase,
            done: self.0.done.load(Ordering::Relaxed),
            total: (total != u64::MAX).then_some(total),
            in_phase: since.elapsed(),
            elapsed: self.0.started.elapsed(),
            cost: self
                .0
                .cost
                .lock()
                .ok()
                .and_then(|source| source.as_ref().map(|read| read()))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_count_from_zero_and_estimate_the_rest() {
        let progress = Progress::new();
        assert_eq!(progress.now().phase, Phase::Starting);
        progress.enter(Phase::ReadingAssignments, Some(100));
        progress.advance(25);
        let now = progress.now();
        assert_eq!(
            (now.phase, now.done, now.total),
            (Phase::ReadingAssignments, 25, Some(100))
        );
        assert!(now.eta().is_some());
        progress.enter(Phase::ListingIdentities, None);
        assert_eq!(progress.now().done, 0);
        assert_eq!(progress.now().total, None);
        progress.add_total(999);
        progress.add_total(1);
        assert_eq!(progress.now().total, Some(1000));
        assert_eq!(Phase::ReadingAssignments.number(), 4);
        assert_eq!(Phase::ALL.len(), Phase::Publishing.number());
    }
}
