//! The [`ResultStore`] conformance suite: one set of checks that every backend must pass, in the
//! spirit of `object_store`'s integration tests. It is for tests only (a failed check is a
//! panic), which is why it is hidden from the docs: the local store runs it as a unit test, the
//! Blob store as a black-box test against Azurite (`tests/blackbox/store_conformance.rs`).
//!
//! Each check tests what the trait's doc comments promise, through the trait alone:
//!
//! - files: `put` and `put_chunks` write or overwrite (there is no write-once or
//!   if-not-exists flag), `get` and `get_stream` read back the same bytes, a missing file is
//!   `None` and an empty one is not, a large file streams in several chunks, a failing chunk
//!   fails the write with its error;
//! - paths: every operation refuses a path that could leave the store with
//!   [`StoreError::InvalidPath`], and names that only contain dots, percent-encoded dots or
//!   backslashes are ordinary names that reach no other file;
//! - locks: a free lock is taken, a held one refuses a second holder and names the first, renew
//!   keeps it, release frees it for the next holder (or the same one), locks on two paths are
//!   independent, and a superseded lock can neither free nor renew its successor.
//!
//! The trait has no listing, no delete and no metadata read, so none is checked; nor is lock
//! expiry ([`LOCK_TTL_SECONDS`](super::LOCK_TTL_SECONDS) is a minute). The checks run one after
//! another, never racing: the local lock is a read-then-write check, not an exclusive create.
//!
//! [`run`] takes the backend's known divergences, checks that must fail until the backend is
//! fixed: each is listed next to the backend's test, with the reason.

// Test support: a failed expectation is a panic, which `run` catches and reports.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fmt::Debug;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt as _, TryStreamExt as _};

use super::{Chunks, Lock, LockAttempt, ResultStore, StoreError};

/// The folder one check writes in, unique to one run of the suite, so checks never see each
/// other's files and the suite can run again on the same store.
#[derive(Debug, Clone)]
pub struct Scope {
    prefix: String,
}

impl Scope {
    /// A scope under `conformance/{run}/{check}`.
    fn new(run: &str, check: &str) -> Self {
        Self {
            prefix: format!("conformance/{run}/{check}"),
        }
    }

    /// `relative` inside this scope.
    pub fn path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.prefix)
    }
}

/// One check of the suite.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's name, which says what it asserts.
    pub name: &'static str,
    run: for<'a> fn(&'a dyn ResultStore, &'a Scope) -> BoxFuture<'a, ()>,
}

impl Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish()
    }
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check, in the order [`run`] runs them.
        pub const CHECKS: &[Check] = &[$(Check {
            name: stringify!($name),
            run: |store, scope| Box::pin($name(store, scope)),
        }),*];
    };
}

checks![
    put_then_get_returns_the_same_bytes,
    get_of_a_missing_file_is_none,
    get_below_a_file_is_none,
    put_overwrites_with_the_new_content,
    an_empty_file_is_not_a_missing_file,
    put_chunks_writes_the_chunks_in_order,
    put_chunks_of_no_chunks_writes_an_empty_file,
    put_chunks_writes_a_large_file_across_several_blocks,
    put_chunks_overwrites_what_was_there,
    put_chunks_fails_with_the_error_of_a_failing_chunk,
    get_stream_of_a_missing_file_is_none,
    get_stream_returns_a_small_file,
    get_stream_streams_a_large_file_in_several_chunks,
    location_names_the_path,
    invalid_paths_are_refused_by_every_operation,
    renew_and_release_refuse_a_lock_on_an_invalid_path,
    encoded_dots_and_backslashes_do_not_escape_their_folder,
    names_that_start_with_dots_are_ordinary_names,
    an_untaken_lock_has_no_holder,
    try_lock_takes_a_free_lock,
    a_held_lock_refuses_a_second_holder,
    renew_keeps_the_lock_with_its_holder,
    release_frees_the_lock_for_the_next_holder,
    the_same_holder_can_retake_a_released_lock,
    locks_on_different_paths_are_independent,
    a_stale_release_leaves_the_next_holder_in_place,
    a_stale_renew_fails_and_leaves_the_next_holder_in_place,
];

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The check's name.
    pub name: &'static str,
    /// Why it failed (its panic message), or `None` when it passed.
    pub failure: Option<String>,
}

/// Runs every check against `store`, one after another, each in a fresh [`Scope`], and says
/// how each went.
pub async fn outcomes(store: &dyn ResultStore) -> Vec<Outcome> {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut outcomes = Vec::with_capacity(CHECKS.len());
    for check in CHECKS {
        let scope = Scope::new(&run_id, check.name);
        let failure = AssertUnwindSafe((check.run)(store, &scope))
            .catch_unwind()
            .await
            .err()
            .map(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "(a panic without a message)".to_owned())
            });
        outcomes.push(Outcome {
            name: check.name,
            failure,
        });
    }
    outcomes
}

/// Runs every check against `store` and panics with a report unless each passes, except those
/// named in `known_divergences` (`(check, why)`), which must fail: a known divergence that
/// starts passing must be taken off the list.
pub async fn run(store: &dyn ResultStore, known_divergences: &[(&str, &str)]) {
    for (name, _) in known_divergences {
        assert!(
            CHECKS.iter().any(|c| c.name == *name),
            "known divergence {name:?} names no conformance check"
        );
    }
    println!("conformance: {store:?}");
    let mut report = Vec::new();
    let mut unexpected = Vec::new();
    for outcome in outcomes(store).await {
        let name = outcome.name;
        let known = known_divergences.iter().find(|(n, _)| *n == name);
        let line = match (&outcome.failure, known) {
            (None, None) => format!("ok      {name}"),
            (Some(failure), Some((_, why))) => {
                format!("known   {name} (known divergence: {why}): {failure}")
            }
            (Some(failure), None) => {
                unexpected.push(name);
                format!("FAILED  {name}: {failure}")
            }
            (None, Some(_)) => {
                unexpected.push(name);
                format!(
                    "PASSED  {name}: listed as a known divergence but passes; take it off the list"
                )
            }
        };
        println!("conformance: {line}");
        report.push(line);
    }
    assert!(
        unexpected.is_empty(),
        "{store:?} does not conform: {unexpected:?}\n{}",
        report.join("\n")
    );
}

// ---- helpers ----

/// `len` reproducible pseudo-random bytes: any lost, repeated or reordered chunk shows.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    fastrand::Rng::with_seed(seed).fill(&mut bytes);
    bytes
}

fn chunks_of(body: &[u8], size: usize) -> Chunks<'static> {
    let owned: Vec<Result<Bytes, StoreError>> = body
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::new(owned.into_iter())
}

async fn put(store: &dyn ResultStore, path: &str, body: &[u8]) {
    store
        .put(
            path,
            Bytes::copy_from_slice(body),
            "application/octet-stream",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("put {path}: {e}"));
}

async fn get(store: &dyn ResultStore, path: &str) -> Option<Bytes> {
    store
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("get {path}: {e}"))
}

/// The chunks `get_stream` yields, or `None` for a missing file.
async fn stream(store: &dyn ResultStore, path: &str) -> Option<Vec<Bytes>> {
    let chunks = store
        .get_stream(path)
        .await
        .unwrap_or_else(|e| panic!("get_stream {path}: {e}"))?;
    Some(
        chunks
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("reading the stream of {path}: {e}")),
    )
}

fn assert_bytes(actual: Option<Bytes>, expected: &[u8], what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what}: the file is missing"));
    assert!(
        actual == expected,
        "{what}: read {} bytes, wrote {} (first difference at byte {:?})",
        actual.len(),
        expected.len(),
        actual.iter().zip(expected).position(|(a, b)| a != b)
    );
}

fn assert_invalid<T: Debug>(result: Result<T, StoreError>, path: &str, operation: &str) {
    match result {
        Err(StoreError::InvalidPath(refused)) => assert_eq!(
            refused, path,
            "{operation} names the refused path in its error"
        ),
        other => panic!("{operation}({path:?}) should be refused as an invalid path: {other:?}"),
    }
}

async fn acquire(store: &dyn ResultStore, path: &str, holder: &str) -> Lock {
    match store.try_lock(path, holder).await {
        Ok(LockAttempt::Acquired(lock)) => lock,
        other => panic!("{holder} should take the free lock {path}: {other:?}"),
    }
}

async fn assert_refused(store: &dyn ResultStore, path: &str, holder: &str, held_by: &str) {
    match store.try_lock(path, holder).await {
        Ok(LockAttempt::Held { holder: reported }) => assert_eq!(
            reported.as_deref(),
            Some(held_by),
            "a refused try_lock names the holder"
        ),
        other => panic!("{holder} should be refused the lock {path} held by {held_by}: {other:?}"),
    }
}

async fn holder(store: &dyn ResultStore, path: &str) -> Option<String> {
    store
        .lock_holder(path)
        .await
        .unwrap_or_else(|e| panic!("lock_holder {path}: {e}"))
}

/// Paths that could leave the store's root or are not relative `/`-separated names.
const INVALID_PATHS: &[&str] = &[
    "",
    "/",
    "//",
    "/abs",
    ".",
    "..",
    "../escape",
    "a/..",
    "a/../../escape",
    "./a",
    "a/./b",
    "a//b",
    "a/",
];

// ---- files ----

/// `put` writes one file (parents need not exist) and `get` reads back exactly its bytes.
async fn put_then_get_returns_the_same_bytes(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("deep/er/file.bin");
    let body: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    store
        .put(
            &path,
            Bytes::from(body.clone()),
            "application/octet-stream",
            &[("runId", "conformance"), ("kind", "binary")],
        )
        .await
        .expect("put with a media type and metadata");
    assert_bytes(get(store, &path).await, &body, "get after put");
}

/// A missing file reads as `Ok(None)`, next to an existing file and in a missing folder alike.
async fn get_of_a_missing_file_is_none(store: &dyn ResultStore, scope: &Scope) {
    put(store, &scope.path("present/a.json"), b"{}").await;
    for missing in ["present/b.json", "absent/a.json"] {
        assert!(
            get(store, &scope.path(missing)).await.is_none(),
            "{missing} does not exist"
        );
    }
}

/// A path below an existing file does not exist either: `Ok(None)`, not an error.
async fn get_below_a_file_is_none(store: &dyn ResultStore, scope: &Scope) {
    put(store, &scope.path("a.json"), b"{}").await;
    let below = scope.path("a.json/child");
    match store.get(&below).await {
        Ok(None) => {}
        other => panic!("get {below:?} below a file should be Ok(None): {other:?}"),
    }
    match store.get_stream(&below).await {
        Ok(None) => {}
        Ok(Some(_)) => panic!("get_stream {below:?} below a file found a stream"),
        Err(e) => panic!("get_stream {below:?} below a file should be Ok(None): {e}"),
    }
}

/// `put` overwrites: a shorter second body leaves nothing of the first.
async fn put_overwrites_with_the_new_content(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("file.json");
    put(store, &path, &noise(10_000, 1)).await;
    let second = noise(100, 2);
    put(store, &path, &second).await;
    assert_bytes(get(store, &path).await, &second, "get after an overwrite");
}

/// An empty file exists: `get` and `get_stream` give `Some` with no bytes, not `None`.
async fn an_empty_file_is_not_a_missing_file(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("empty");
    put(store, &path, b"").await;
    assert_bytes(get(store, &path).await, b"", "get of an empty file");
    let chunks = stream(store, &path)
        .await
        .expect("get_stream of an empty file is Some");
    assert!(chunks.concat().is_empty(), "an empty file streams no bytes");
}

/// `put_chunks` writes the chunks one after another, empty chunks included.
async fn put_chunks_writes_the_chunks_in_order(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("lines.ndjson");
    let parts: [&[u8]; 5] = [b"{\"a\":1}\n", b"", b"{\"b\"", b":2}\n", b"{\"c\":3}\n"];
    let chunks: Chunks<'_> = Box::new(parts.into_iter().map(|p| Ok(Bytes::from_static(p))));
    store
        .put_chunks(&path, chunks, "application/x-ndjson", &[("runId", "r")])
        .await
        .expect("put_chunks");
    assert_bytes(
        get(store, &path).await,
        &parts.concat(),
        "get after put_chunks",
    );
}

/// `put_chunks` with no chunks at all writes an empty file.
async fn put_chunks_of_no_chunks_writes_an_empty_file(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("nothing");
    store
        .put_chunks(&path, Box::new(std::iter::empty()), "text/plain", &[])
        .await
        .expect("put_chunks of nothing");
    assert_bytes(
        get(store, &path).await,
        b"",
        "get after put_chunks of nothing",
    );
}

/// A file larger than two Blob blocks (4 MiB each), in chunks that do not divide a block,
/// reads back whole through `get` and `get_stream`.
async fn put_chunks_writes_a_large_file_across_several_blocks(
    store: &dyn ResultStore,
    scope: &Scope,
) {
    let path = scope.path("large.ndjson");
    let body = noise(9 * 1024 * 1024 + 12_345, 3);
    store
        .put_chunks(
            &path,
            chunks_of(&body, 100_000),
            "application/x-ndjson",
            &[("runId", "r")],
        )
        .await
        .expect("put_chunks of a large file");
    assert_bytes(get(store, &path).await, &body, "get of a large file");
    let streamed = stream(store, &path).await.expect("the large file exists");
    assert_bytes(
        Some(Bytes::from(streamed.concat())),
        &body,
        "get_stream of a large file",
    );
}

/// `put_chunks` overwrites a file, larger or smaller, written by either `put` or `put_chunks`.
async fn put_chunks_overwrites_what_was_there(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("file");
    put(store, &path, &noise(5 * 1024 * 1024, 4)).await;
    let small = noise(1_000, 5);
    store
        .put_chunks(&path, chunks_of(&small, 300), "text/plain", &[])
        .await
        .expect("put_chunks over a larger file");
    assert_bytes(get(store, &path).await, &small, "a smaller put_chunks");
    let large = noise(5 * 1024 * 1024, 6);
    store
        .put_chunks(&path, chunks_of(&large, 1024 * 1024), "text/plain", &[])
        .await
        .expect("put_chunks over a smaller file");
    assert_bytes(get(store, &path).await, &large, "a larger put_chunks");
}

/// A chunk that fails fails `put_chunks` with that chunk's error, before or after a block's
/// worth of data.
async fn put_chunks_fails_with_the_error_of_a_failing_chunk(
    store: &dyn ResultStore,
    scope: &Scope,
) {
    for (name, good_chunks) in [("early", 1), ("late", 50)] {
        let path = scope.path(name);
        let failure = StoreError::Io {
            operation: "produce",
            path: path.clone(),
            message: format!("boom {name}"),
        };
        let chunks: Chunks<'_> = Box::new(
            std::iter::repeat_n(Bytes::from(noise(100_000, 7)), good_chunks)
                .map(Ok)
                .chain(std::iter::once(Err(failure))),
        );
        match store.put_chunks(&path, chunks, "text/plain", &[]).await {
            Err(StoreError::Io {
                operation: "produce",
                message,
                ..
            }) if message == format!("boom {name}") => {}
            other => panic!("put_chunks with a failing {name} chunk: {other:?}"),
        }
    }
}

/// A missing file streams as `Ok(None)`.
async fn get_stream_of_a_missing_file_is_none(store: &dyn ResultStore, scope: &Scope) {
    put(store, &scope.path("present"), b"x").await;
    assert!(
        stream(store, &scope.path("absent")).await.is_none(),
        "a missing file has no stream"
    );
}

/// A small file streams back its bytes.
async fn get_stream_returns_a_small_file(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("small.json");
    let body = noise(777, 8);
    put(store, &path, &body).await;
    let chunks = stream(store, &path).await.expect("the file exists");
    assert_bytes(Some(Bytes::from(chunks.concat())), &body, "get_stream");
}

/// A large file streams in several chunks, none of them the whole file ("so a large file is
/// never held whole"), which concatenate to the file.
async fn get_stream_streams_a_large_file_in_several_chunks(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("large.bin");
    let body = noise(6 * 1024 * 1024 + 7, 9);
    put(store, &path, &body).await;
    let chunks = stream(store, &path).await.expect("the large file exists");
    let largest = chunks.iter().map(Bytes::len).max().unwrap_or(0);
    assert!(
        chunks.len() > 1 && largest < body.len(),
        "{} bytes came in {} chunk(s), the largest {largest} bytes",
        body.len(),
        chunks.len()
    );
    assert_bytes(Some(Bytes::from(chunks.concat())), &body, "get_stream");
}

/// `location` names the path: it ends with it, and two paths have two locations.
async fn location_names_the_path(store: &dyn ResultStore, scope: &Scope) {
    let a = scope.path("runs/a/manifest.json");
    let b = scope.path("runs/b/manifest.json");
    assert!(
        store.location(&a).ends_with(&a),
        "{:?} should end with {a:?}",
        store.location(&a)
    );
    assert_ne!(store.location(&a), store.location(&b));
}

// ---- paths ----

/// Every file and lock operation that takes a path refuses one that is empty, absolute, or has
/// an empty, `.` or `..` segment, with [`StoreError::InvalidPath`] naming it.
async fn invalid_paths_are_refused_by_every_operation(store: &dyn ResultStore, _scope: &Scope) {
    for &bad in INVALID_PATHS {
        assert_invalid(
            store
                .put(bad, Bytes::from_static(b"x"), "text/plain", &[])
                .await,
            bad,
            "put",
        );
        assert_invalid(
            store
                .put_chunks(bad, chunks_of(b"x", 1), "text/plain", &[])
                .await,
            bad,
            "put_chunks",
        );
        assert_invalid(store.get(bad).await, bad, "get");
        assert_invalid(
            store.get_stream(bad).await.map(|s| s.map(|_| "a stream")),
            bad,
            "get_stream",
        );
        assert_invalid(store.try_lock(bad, "intruder").await, bad, "try_lock");
        assert_invalid(store.lock_holder(bad).await, bad, "lock_holder");
    }
}

/// `renew_lock` and `release_lock` refuse a [`Lock`] whose path is invalid (its fields are
/// public, so one can be made up), like every other operation.
async fn renew_and_release_refuse_a_lock_on_an_invalid_path(
    store: &dyn ResultStore,
    _scope: &Scope,
) {
    for &bad in INVALID_PATHS {
        let forged = Lock {
            path: bad.to_owned(),
            lease_id: uuid::Uuid::new_v4().to_string(),
            holder: "intruder".to_owned(),
            previous_holder: None,
        };
        assert_invalid(store.renew_lock(&forged).await, bad, "renew_lock");
        assert_invalid(store.release_lock(&forged).await, bad, "release_lock");
    }
}

/// Percent-encoded dots and backslashes are either refused or plain characters of a name:
/// they never reach a file outside their folder, nor each other's.
async fn encoded_dots_and_backslashes_do_not_escape_their_folder(
    store: &dyn ResultStore,
    scope: &Scope,
) {
    let outside = scope.path("y");
    let tricky = [
        "x/%2e%2e/y",
        "x/.%2E/y",
        "x/%2E./y",
        "x/%2e%2e%2fy",
        "x\\..\\y",
    ];
    let mut accepted = Vec::new();
    for (i, name) in tricky.iter().enumerate() {
        let path = scope.path(name);
        match store
            .put(&path, Bytes::from(format!("{i}")), "text/plain", &[])
            .await
        {
            Ok(()) => accepted.push((i, path)),
            Err(StoreError::InvalidPath(_)) => {}
            Err(e) => panic!("put {path:?} should be accepted or refused as invalid: {e}"),
        }
    }
    assert!(
        get(store, &outside).await.is_none(),
        "a tricky name wrote {outside:?}"
    );
    for (i, path) in accepted {
        assert_bytes(
            get(store, &path).await,
            format!("{i}").as_bytes(),
            &format!("{path:?} reads back its own body"),
        );
    }
}

/// A segment that merely starts with dots (`..json`, `...`) is an ordinary name: the store
/// refuses only `.` and `..` themselves, so these are written and read back like any other.
async fn names_that_start_with_dots_are_ordinary_names(store: &dyn ResultStore, scope: &Scope) {
    let names = [
        "..hidden", "x/..json", "x/..%2Fy", "x/..\\y", "x/...", "x/.env",
    ];
    for (i, name) in names.iter().enumerate() {
        let path = scope.path(name);
        store
            .put(&path, Bytes::from(format!("{i}")), "text/plain", &[])
            .await
            .unwrap_or_else(|e| panic!("put {path:?}, a valid path: {e}"));
    }
    for (i, name) in names.iter().enumerate() {
        let path = scope.path(name);
        assert_bytes(
            get(store, &path).await,
            format!("{i}").as_bytes(),
            &format!("{path:?} reads back its own body"),
        );
    }
}

// ---- locks ----

/// A lock nobody took has no holder.
async fn an_untaken_lock_has_no_holder(store: &dyn ResultStore, scope: &Scope) {
    assert_eq!(holder(store, &scope.path("never.lock")).await, None);
}

/// `try_lock` on a free lock acquires it for the caller, and `lock_holder` then names them.
async fn try_lock_takes_a_free_lock(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("tenant.lock");
    let lock = acquire(store, &path, "run-a").await;
    assert_eq!(lock.path, path, "the lock names its path");
    assert_eq!(lock.holder, "run-a", "the lock names its holder");
    assert!(!lock.lease_id.is_empty(), "the lock carries a lease id");
    assert_eq!(holder(store, &path).await.as_deref(), Some("run-a"));
}

/// While one holder has the lock, another is refused and told who holds it; the refusal
/// changes nothing, and the first holder can still renew and release.
async fn a_held_lock_refuses_a_second_holder(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("tenant.lock");
    let lock = acquire(store, &path, "run-a").await;
    assert_refused(store, &path, "run-b", "run-a").await;
    assert_refused(store, &path, "run-c", "run-a").await;
    assert_eq!(holder(store, &path).await.as_deref(), Some("run-a"));
    store
        .renew_lock(&lock)
        .await
        .expect("the first holder renews after a refusal");
    store
        .release_lock(&lock)
        .await
        .expect("the first holder releases after a refusal");
    assert_eq!(holder(store, &path).await, None);
}

/// Renewing keeps the lock with its holder, and others are still refused.
async fn renew_keeps_the_lock_with_its_holder(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("tenant.lock");
    let lock = acquire(store, &path, "run-a").await;
    for _ in 0..2 {
        store.renew_lock(&lock).await.expect("renew a held lock");
        assert_eq!(holder(store, &path).await.as_deref(), Some("run-a"));
        assert_refused(store, &path, "run-b", "run-a").await;
    }
}

/// After a release the lock is free: no holder, and the next caller acquires it with a lease
/// of its own, after which the first is refused.
async fn release_frees_the_lock_for_the_next_holder(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("tenant.lock");
    let first = acquire(store, &path, "run-a").await;
    store.release_lock(&first).await.expect("release");
    assert_eq!(holder(store, &path).await, None, "a released lock is free");
    let second = acquire(store, &path, "run-b").await;
    assert_eq!(second.holder, "run-b");
    assert_ne!(
        second.lease_id, first.lease_id,
        "each acquisition has its own lease id"
    );
    assert_eq!(holder(store, &path).await.as_deref(), Some("run-b"));
    assert_refused(store, &path, "run-a", "run-b").await;
}

/// The holder who released a lock can take it again.
async fn the_same_holder_can_retake_a_released_lock(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("tenant.lock");
    let first = acquire(store, &path, "run-a").await;
    store.release_lock(&first).await.expect("release");
    let again = acquire(store, &path, "run-a").await;
    assert_eq!(holder(store, &path).await.as_deref(), Some("run-a"));
    store
        .renew_lock(&again)
        .await
        .expect("renew the retaken lock");
    store
        .release_lock(&again)
        .await
        .expect("release the retaken lock");
    assert_eq!(holder(store, &path).await, None);
}

/// Locks on two paths do not affect each other.
async fn locks_on_different_paths_are_independent(store: &dyn ResultStore, scope: &Scope) {
    let one = scope.path("one.lock");
    let two = scope.path("two.lock");
    let a = acquire(store, &one, "run-a").await;
    let b = acquire(store, &two, "run-b").await;
    assert_eq!(holder(store, &one).await.as_deref(), Some("run-a"));
    assert_eq!(holder(store, &two).await.as_deref(), Some("run-b"));
    store.release_lock(&a).await.expect("release one");
    assert_eq!(holder(store, &one).await, None);
    assert_eq!(
        holder(store, &two).await.as_deref(),
        Some("run-b"),
        "releasing one lock leaves the other held"
    );
    assert_refused(store, &two, "run-c", "run-b").await;
    store.release_lock(&b).await.expect("release two");
}

/// Releasing a lock again after someone else took it does not free theirs (whether the stale
/// release reports an error is not promised).
async fn a_stale_release_leaves_the_next_holder_in_place(store: &dyn ResultStore, scope: &Scope) {
    let path = scope.path("tenant.lock");
    let stale = acquire(store, &path, "run-a").await;
    store.release_lock(&stale).await.expect("release");
    let _current = acquire(store, &path, "run-b").await;
    let _ = store.release_lock(&stale).await;
    assert_eq!(
        holder(store, &path).await.as_deref(),
        Some("run-b"),
        "a stale release must not free the next holder's lock"
    );
    assert_refused(store, &path, "run-c", "run-b").await;
}

/// Renewing a lock after someone else took it fails, so the stale holder learns it lost the
/// lock, and the lock stays with its new holder.
async fn a_stale_renew_fails_and_leaves_the_next_holder_in_place(
    store: &dyn ResultStore,
    scope: &Scope,
) {
    let path = scope.path("tenant.lock");
    let stale = acquire(store, &path, "run-a").await;
    store.release_lock(&stale).await.expect("release");
    let _current = acquire(store, &path, "run-b").await;
    let renewed = store.renew_lock(&stale).await;
    let now = holder(store, &path).await;
    assert!(
        renewed.is_err() && now.as_deref() == Some("run-b"),
        "renewing a superseded lock should fail and leave it with run-b: renew gave {renewed:?}, \
         the holder is now {now:?}"
    );
    assert_refused(store, &path, "run-c", "run-b").await;
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use futures::StreamExt as _;

    use super::*;
    use crate::results::LocalStore;
    use crate::results::store::{ByteStream, validate};

    /// Where the local store knowingly differs from the suite (and from the Blob store).
    /// Where the local store knowingly differs from the suite (and from the Blob store): nowhere.
    const LOCAL_KNOWN_DIVERGENCES: &[(&str, &str)] = &[];

    #[tokio::test]
    async fn local_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(
            &LocalStore::new(dir.path().join("store")),
            LOCAL_KNOWN_DIVERGENCES,
        )
        .await;
    }

    #[tokio::test]
    async fn the_suite_runs_again_on_the_same_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        run(&store, LOCAL_KNOWN_DIVERGENCES).await;
        run(&store, LOCAL_KNOWN_DIVERGENCES).await;
    }

    #[tokio::test]
    #[should_panic(expected = "take it off the list")]
    async fn a_known_divergence_that_passes_fails_the_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut known = LOCAL_KNOWN_DIVERGENCES.to_vec();
        known.push(("put_then_get_returns_the_same_bytes", "not really"));
        run(&LocalStore::new(dir.path()), &known).await;
    }

    #[tokio::test]
    #[should_panic(expected = "names no conformance check")]
    async fn a_known_divergence_must_name_a_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(&LocalStore::new(dir.path()), &[("no_such_check", "typo")]).await;
    }

    #[test]
    fn check_names_are_unique() {
        let mut names: Vec<_> = CHECKS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHECKS.len());
    }

    /// One way of breaking a store, to show the suite notices.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mutation {
        /// `put` drops the last byte.
        PutTruncates,
        /// `get` reads a missing file as empty.
        MissingReadsEmpty,
        /// `get_stream` is the trait's default: the whole file in one chunk.
        StreamsWhole,
        /// `put_chunks` swallows a failing chunk and writes what came before.
        PutChunksIgnoresErrors,
        /// `try_lock` takes the lock even when it is held.
        LockNotExclusive,
        /// `lock_holder` never knows.
        NoHolder,
        /// `release_lock` does nothing.
        ReleaseIgnored,
        /// `release_lock` frees the lock whoever holds it.
        ReleaseFreesAnyHolder,
        /// `location` ignores the path.
        LocationIsTheRoot,
        /// `get` accepts any path and reads it as missing.
        GetUnvalidated,
    }

    /// [`LocalStore`] with one [`Mutation`].
    #[derive(Debug)]
    struct Mutant {
        inner: LocalStore,
        mutation: Mutation,
    }

    #[async_trait]
    impl ResultStore for Mutant {
        async fn put_chunks(
            &self,
            path: &str,
            chunks: Chunks<'_>,
            content_type: &str,
            metadata: &[(&str, &str)],
        ) -> Result<(), StoreError> {
            if self.mutation == Mutation::PutChunksIgnoresErrors {
                let chunks: Chunks<'_> = Box::new(chunks.map_while(Result::ok).map(Ok));
                return self
                    .inner
                    .put_chunks(path, chunks, content_type, metadata)
                    .await;
            }
            self.inner
                .put_chunks(path, chunks, content_type, metadata)
                .await
        }

        async fn try_lock(&self, path: &str, holder: &str) -> Result<LockAttempt, StoreError> {
            if self.mutation == Mutation::LockNotExclusive && validate(path).is_ok() {
                let _ = tokio::fs::remove_file(self.inner.root().join(path)).await;
            }
            self.inner.try_lock(path, holder).await
        }

        async fn renew_lock(&self, lock: &Lock) -> Result<(), StoreError> {
            self.inner.renew_lock(lock).await
        }

        async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
            match self.mutation {
                Mutation::ReleaseIgnored => return Ok(()),
                Mutation::ReleaseFreesAnyHolder if validate(&lock.path).is_ok() => {
                    let _ = tokio::fs::remove_file(self.inner.root().join(&lock.path)).await;
                    return Ok(());
                }
                _ => {}
            }
            self.inner.release_lock(lock).await
        }

        async fn lock_holder(&self, path: &str) -> Result<Option<String>, StoreError> {
            let holder = self.inner.lock_holder(path).await?;
            Ok(holder.filter(|_| self.mutation != Mutation::NoHolder))
        }

        async fn put(
            &self,
            path: &str,
            body: Bytes,
            content_type: &str,
            metadata: &[(&str, &str)],
        ) -> Result<(), StoreError> {
            let body = if self.mutation == Mutation::PutTruncates && !body.is_empty() {
                body.slice(..body.len() - 1)
            } else {
                body
            };
            self.inner.put(path, body, content_type, metadata).await
        }

        async fn get(&self, path: &str) -> Result<Option<Bytes>, StoreError> {
            match self.mutation {
                Mutation::GetUnvalidated if path.split('/').any(|s| s == "..") => Ok(None),
                Mutation::MissingReadsEmpty => {
                    Ok(Some(self.inner.get(path).await?.unwrap_or_default()))
                }
                _ => self.inner.get(path).await,
            }
        }

        async fn get_stream(&self, path: &str) -> Result<Option<ByteStream>, StoreError> {
            if self.mutation == Mutation::StreamsWhole {
                return Ok(self
                    .get(path)
                    .await?
                    .map(|b| futures::stream::once(async move { Ok(b) }).boxed()));
            }
            self.inner.get_stream(path).await
        }

        fn location(&self, path: &str) -> String {
            if self.mutation == Mutation::LocationIsTheRoot {
                return self.inner.root().display().to_string();
            }
            self.inner.location(path)
        }
    }

    /// Each mutation fails at least the checks named for it.
    #[tokio::test]
    async fn the_suite_fails_a_broken_store() {
        let expected: &[(Mutation, &[&str])] = &[
            (
                Mutation::PutTruncates,
                &[
                    "put_then_get_returns_the_same_bytes",
                    "put_overwrites_with_the_new_content",
                    "get_stream_returns_a_small_file",
                ],
            ),
            (
                Mutation::MissingReadsEmpty,
                &["get_of_a_missing_file_is_none"],
            ),
            (
                Mutation::StreamsWhole,
                &["get_stream_streams_a_large_file_in_several_chunks"],
            ),
            (
                Mutation::PutChunksIgnoresErrors,
                &["put_chunks_fails_with_the_error_of_a_failing_chunk"],
            ),
            (
                Mutation::LockNotExclusive,
                &[
                    "a_held_lock_refuses_a_second_holder",
                    "renew_keeps_the_lock_with_its_holder",
                    "release_frees_the_lock_for_the_next_holder",
                    "locks_on_different_paths_are_independent",
                ],
            ),
            (
                Mutation::NoHolder,
                &[
                    "try_lock_takes_a_free_lock",
                    "a_held_lock_refuses_a_second_holder",
                ],
            ),
            (
                Mutation::ReleaseIgnored,
                &[
                    "a_held_lock_refuses_a_second_holder",
                    "release_frees_the_lock_for_the_next_holder",
                    "the_same_holder_can_retake_a_released_lock",
                ],
            ),
            (
                Mutation::ReleaseFreesAnyHolder,
                &["a_stale_release_leaves_the_next_holder_in_place"],
            ),
            (Mutation::LocationIsTheRoot, &["location_names_the_path"]),
            (
                Mutation::GetUnvalidated,
                &["invalid_paths_are_refused_by_every_operation"],
            ),
        ];
        for (mutation, must_fail) in expected {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Mutant {
                inner: LocalStore::new(dir.path()),
                mutation: *mutation,
            };
            let failed: Vec<_> = outcomes(&store)
                .await
                .into_iter()
                .filter(|o| o.failure.is_some())
                .map(|o| o.name)
                .collect();
            for name in *must_fail {
                assert!(
                    failed.contains(name),
                    "{mutation:?} should fail {name}; it failed {failed:?}"
                );
            }
        }
    }
}
