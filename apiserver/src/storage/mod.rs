//! Versioned object storage with upstream's semantics: one cluster-wide, strictly
//! increasing revision (the resourceVersion), compare-and-swap updates, deletes with
//! preconditions, paginated lists at a fixed revision, and watches from a revision with
//! `410 Gone` once history is compacted.
//!
//! [`Store`] keeps the current state and a bounded window of history in memory (the
//! watch cache) in front of one [`engine::Engine`], where the truth lives: the embedded
//! engine (a committer over a [`Backend`], SQLite) or etcd. Every change is durable in
//! the engine before it is acknowledged or shown to any watcher. This module must not know about resources,
//! HTTP or JSON shapes beyond `metadata.resourceVersion`.

mod backend;
mod consistent;
mod engine;
pub mod etcd;
mod follower;
mod sqlite;
mod writer;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

pub use backend::{Backend, BackendError, Record};
pub use sqlite::SqliteBackend;

/// How many past events are kept in memory for watchers and consistent pagination.
pub const DEFAULT_HISTORY: usize = 10_000;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The watch event type upstream writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change. For deletes `object` is the last state, stamped with the deletion revision.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub key: String,
    pub rev: u64,
    pub object: Arc<Value>,
    /// The state before this change (absent for creations).
    pub prev: Option<Arc<Value>>,
    /// The event's JSON watch line as stored (`{"type":..,"object":..}\n`), encoded once
    /// by the first watcher that can use it and shared by the rest (upstream's caching
    /// object): with many watchers, encoding dominates otherwise.
    pub json_line: std::sync::OnceLock<bytes::Bytes>,
}

/// Errors with storage meaning; the REST layer turns them into `metav1.Status`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// Compare-and-swap failed: the object changed since the given revision.
    #[error("conflict on {key}: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: u64,
        actual: u64,
    },
    /// The revision asked for is older than the history kept.
    #[error("too old resource version: {requested} ({oldest})")]
    Compacted { requested: u64, oldest: u64 },
    /// The revision asked for is newer than the store has reached.
    #[error("too large resource version: {requested}, current: {current}")]
    TooLarge { requested: u64, current: u64 },
    #[error("storage backend failed: {0}")]
    Backend(#[from] BackendError),
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    rev: u64,
    value: Arc<Value>,
}

#[derive(Default)]
pub(super) struct State {
    rev: u64,
    objects: BTreeMap<String, Entry>,
    history: VecDeque<Arc<Event>>,
    /// Revisions at or below this one are no longer in `history`.
    compacted: u64,
    /// The last revision that changed each resource (`/registry/<resource>/...`), so
    /// derived caches (the RBAC authorizer's) know cheaply when to rebuild.
    last_change: std::collections::HashMap<String, u64>,
    /// When the state was last reloaded wholesale: everything counts as changed then.
    reloaded_at: u64,
}

/// The resource segment of a storage key: `/registry/roles/ns/x` -> `roles`.
fn resource_of(key: &str) -> &str {
    key.trim_start_matches('/').split('/').nth(1).unwrap_or("")
}

/// The store: the in-memory state (the watch cache) in front of a durable backend.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    engine: Box<dyn engine::Engine>,
    state: RwLock<State>,
    events: broadcast::Sender<Arc<Event>>,
    /// The revision the in-memory state has reached, for waiters.
    applied: tokio::sync::watch::Sender<u64>,
    /// Bumped when the state is replaced wholesale (the etcd follower reloading after
    /// etcd compacted past it): every open watch ends, and its client re-lists.
    resets: tokio::sync::watch::Sender<u64>,
    history_limit: usize,
}

/// How long a consistent read waits for the watch cache to reach etcd's revision.
const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A list result at one revision.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<Arc<Value>>,
    /// The revision the list reflects.
    pub rev: u64,
    /// The key to continue after, if the limit cut the list.
    pub continue_after: Option<String>,
    /// How many matching items follow (for `remainingItemCount`), when known.
    pub remaining: Option<u64>,
}

/// Which revision a read should reflect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadAt {
    /// The latest state.
    Latest,
    /// Exactly this revision (from history).
    Exact(u64),
}

/// Stamps `metadata.resourceVersion` on an object.
pub fn set_resource_version(obj: &mut Value, rev: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

impl Store {
    /// Opens a store over a backend, loading the current state and recent history.
    pub async fn open(
        backend: Arc<dyn Backend>,
        history_limit: usize,
    ) -> Result<Self, StorageError> {
        let loader = backend.clone();
        let loaded = tokio::task::spawn_blocking(move || loader.load(history_limit))
            .await
            .map_err(|e| BackendError::Other(e.to_string()))??;
        let mut state = State {
            rev: loaded.rev,
            compacted: loaded.rev,
            ..State::default()
        };
        for rec in loaded.current {
            if let Some(value) = rec.value {
                state.objects.insert(
                    rec.key,
                    Entry {
                        rev: rec.rev,
                        value,
                    },
                );
            }
        }
        // rebuild history from the tail of the log so watchers can resume across restarts
        let mut last: BTreeMap<String, Arc<Value>> = BTreeMap::new();
        for rec in loaded.history_base {
            if let Some(v) = rec.value {
                last.insert(rec.key, v);
            }
        }
        if let Some(first) = loaded.history.first() {
            state.compacted = first.rev.saturating_sub(1);
        }
        for rec in loaded.history {
            let prev = last.get(&rec.key).cloned();
            let (kind, object) = match rec.value {
                Some(v) => {
                    last.insert(rec.key.clone(), v.clone());
                    (
                        if prev.is_some() {
                            EventType::Modified
                        } else {
                            EventType::Added
                        },
                        v,
                    )
                }
                None => {
                    let Some(p) = last.remove(&rec.key) else {
                        continue;
                    };
                    let mut gone = (*p).clone();
                    set_resource_version(&mut gone, rec.rev);
                    (EventType::Deleted, Arc::new(gone))
                }
            };
            state.history.push_back(Arc::new(Event {
                kind,
                key: rec.key,
                rev: rec.rev,
                object,
                prev,
                json_line: Default::default(),
            }));
        }
        let (writes, queue) = mpsc::channel(writer::MAX_BATCH * 4);
        let inner = Arc::new(Inner::new(
            Box::new(engine::Embedded {
                writes,
                backend: backend.clone(),
            }),
            state,
            history_limit,
        ));
        tokio::spawn(writer::run(inner.clone(), backend, queue));
        Ok(Store { inner })
    }

    /// Opens a store over etcd: loads the state (with up to `history_limit` revisions of
    /// history when etcd still has them, so watches resume across restarts), then follows
    /// etcd's watch.
    pub async fn open_etcd(etcd: etcd::Etcd, history_limit: usize) -> Result<Self, StorageError> {
        let etcd = Arc::new(etcd);
        let current = etcd.current_revision().await?;
        // etcd's first revision is 1: a young etcd's whole history can be replayed
        let base = current.saturating_sub(history_limit as u64).max(1);
        let (at, items) = match etcd.list_all(base).await {
            Ok(loaded) => loaded,
            // compacted past `base`: start from the latest state
            Err(_) => etcd.list_all(0).await?,
        };
        let mut state = State {
            rev: at,
            compacted: at,
            ..State::default()
        };
        for item in items {
            state.objects.insert(
                item.key,
                Entry {
                    rev: item.rev,
                    value: Arc::new(item.value),
                },
            );
        }
        let inner = Arc::new(Inner::new(
            Box::new(engine::OnEtcd {
                etcd: etcd.clone(),
                revisions: consistent::RevisionBatcher::start(etcd.clone()),
            }),
            state,
            history_limit,
        ));
        tokio::spawn(follower::run(inner.clone(), etcd, at));
        let store = Store { inner };
        store.wait_applied(current, SYNC_TIMEOUT * 10).await?;
        Ok(store)
    }

    /// Waits until the in-memory state has reached `rev`.
    async fn wait_applied(
        &self,
        rev: u64,
        timeout: std::time::Duration,
    ) -> Result<(), StorageError> {
        let mut rx = self.inner.applied.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StorageError::TooLarge {
                requested: rev,
                current: self.current_revision(),
            }),
        }
    }

    /// `get` for a write about to compare and swap: with etcd, when the cached copy is
    /// missing or older than `min_rev` (another API server wrote since), the cache first
    /// catches up with etcd. The embedded store's memory is always current.
    pub async fn get_fresh(
        &self,
        key: &str,
        min_rev: u64,
    ) -> Result<Option<Arc<Value>>, StorageError> {
        let cached = self
            .read()
            .objects
            .get(key)
            .map(|e| (e.rev, e.value.clone()));
        match cached {
            Some((rev, v)) if rev >= min_rev => Ok(Some(v)),
            _ if !self.inner.engine.is_shared() => Ok(self.get(key)),
            _ => {
                self.sync().await?;
                Ok(self.get(key))
            }
        }
    }

    /// Makes the next reads consistent: with etcd, waits until the in-memory state has
    /// caught up with etcd's current revision (writes of other API servers included), as
    /// upstream's consistent reads from the watch cache do. Free with the embedded store,
    /// where memory is the truth.
    pub async fn sync(&self) -> Result<(), StorageError> {
        match self.inner.engine.fresh_revision().await? {
            Some(rev) => self.wait_applied(rev, SYNC_TIMEOUT).await,
            None => Ok(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The last revision that changed any object of `resource` (its storage segment,
    /// e.g. `clusterroles`); 0 if none changed since start.
    pub fn last_change(&self, resource: &str) -> u64 {
        let st = self.read();
        let changed = st.last_change.get(resource).copied().unwrap_or(0);
        changed.max(st.reloaded_at)
    }

    /// Whether other API servers may write the same data (etcd).
    pub fn is_shared(&self) -> bool {
        self.inner.engine.is_shared()
    }

    /// The latest revision.
    pub fn current_revision(&self) -> u64 {
        self.read().rev
    }

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.read().objects.get(key).map(|e| e.value.clone())
    }

    /// Writes through the engine and waits for the outcome.
    async fn write(&self, key: &str, op: writer::Op) -> Result<Arc<Value>, StorageError> {
        self.inner.engine.write(self, key, op).await
    }

    /// Creates `key`; fails if it exists.
    pub async fn create(&self, key: &str, obj: Value) -> Result<Arc<Value>, StorageError> {
        self.write(key, writer::Op::Create(obj)).await
    }

    /// Replaces `key` if its revision is still `expected` (compare and swap). A write that
    /// changes nothing returns the stored object without a new revision, as upstream does.
    pub async fn update(
        &self,
        key: &str,
        expected: u64,
        obj: Value,
    ) -> Result<Arc<Value>, StorageError> {
        self.write(key, writer::Op::Update { expected, obj }).await
    }

    /// Deletes `key`, optionally only if its revision is `expected`.
    pub async fn delete(
        &self,
        key: &str,
        expected: Option<u64>,
    ) -> Result<Arc<Value>, StorageError> {
        self.write(key, writer::Op::Delete { expected }).await
    }

    /// Lists keys under `prefix` (after `start_after`, if given) at `at`, keeping those
    /// `filter` accepts, up to `limit` items.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: ReadAt,
        limit: Option<usize>,
        filter: impl Fn(&Value) -> bool,
    ) -> Result<ListResult, StorageError> {
        let st = self.read();
        let rev = match at {
            ReadAt::Latest => st.rev,
            ReadAt::Exact(r) if r > st.rev => {
                return Err(StorageError::TooLarge {
                    requested: r,
                    current: st.rev,
                });
            }
            ReadAt::Exact(r) if r < st.compacted => {
                return Err(StorageError::Compacted {
                    requested: r,
                    oldest: st.compacted,
                });
            }
            ReadAt::Exact(r) => r,
        };
        // state at `rev`: the current objects with later changes undone
        let mut overlay: BTreeMap<&str, Option<&Arc<Value>>> = BTreeMap::new();
        if rev < st.rev {
            for ev in st.history.iter().rev() {
                if ev.rev <= rev {
                    break;
                }
                if ev.key.starts_with(prefix) {
                    overlay.insert(&ev.key, ev.prev.as_ref());
                }
            }
        }
        let lower = match start_after {
            Some(k) => std::ops::Bound::Excluded(k.to_string()),
            None => std::ops::Bound::Included(prefix.to_string()),
        };
        let current = st
            .objects
            .range::<String, _>((lower.clone(), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.as_str(), Some(&e.value)));
        // merge current keys with overlay keys (which may hold objects deleted since)
        let mut merged: BTreeMap<&str, Option<&Arc<Value>>> = current.collect();
        for (k, v) in overlay {
            let after_start = match &lower {
                std::ops::Bound::Excluded(s) => k > s.as_str(),
                _ => true,
            };
            if after_start {
                merged.insert(k, v);
            }
        }
        let mut items = Vec::new();
        let mut continue_after = None;
        let mut remaining = 0u64;
        for (k, v) in merged {
            let Some(v) = v else { continue };
            if !filter(v) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            items.push(v.clone());
            continue_after = Some(k.to_string());
        }
        if remaining == 0 {
            continue_after = None;
        }
        Ok(ListResult {
            items,
            rev,
            continue_after,
            remaining: (remaining > 0).then_some(remaining),
        })
    }

    /// Counts objects under `prefix` (for `/metrics` and quota).
    pub fn count(&self, prefix: &str) -> usize {
        let st = self.read();
        st.objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    /// Starts a watch of keys under `prefix` for events after `from`. Returns the events
    /// already in history and a receiver for the rest.
    pub fn watch(&self, prefix: &str, from: u64) -> Result<Watch, StorageError> {
        let st = self.read();
        if from < st.compacted {
            return Err(StorageError::Compacted {
                requested: from,
                oldest: st.compacted,
            });
        }
        if from > st.rev {
            return Err(StorageError::TooLarge {
                requested: from,
                current: st.rev,
            });
        }
        let backlog: Vec<Arc<Event>> = st
            .history
            .iter()
            .filter(|e| e.rev > from && e.key.starts_with(prefix))
            .cloned()
            .collect();
        let rx = self.inner.events.subscribe();
        Ok(Watch {
            backlog: backlog.into(),
            rx,
            reset: self.inner.resets.subscribe(),
            prefix: prefix.to_string(),
            last: from.max(st.rev),
        })
    }

    /// The events after revision `from` under any of `prefixes`, oldest first, and the
    /// revision they bring a reader to; `None` when history no longer reaches back to
    /// `from` (compacted, or the state was reloaded since), so the reader must start over
    /// from [`Store::snapshot`]. For derived indexes (the Node authorizer's graph) that
    /// catch up synchronously on use.
    pub fn changes_since(&self, from: u64, prefixes: &[&str]) -> Option<(Vec<Arc<Event>>, u64)> {
        let st = self.read();
        if from < st.compacted || from < st.reloaded_at {
            return None;
        }
        let start = st.history.partition_point(|e| e.rev <= from);
        let events = st
            .history
            .range(start..)
            .filter(|e| prefixes.iter().any(|p| e.key.starts_with(p)))
            .cloned()
            .collect();
        Some((events, st.rev))
    }

    /// A snapshot of current objects under `prefix` with the revision, for
    /// `sendInitialEvents` and initial-state watches.
    pub fn snapshot(&self, prefix: &str) -> (Vec<Arc<Value>>, u64) {
        let st = self.read();
        let items = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e.value.clone())
            .collect();
        (items, st.rev)
    }

    /// Drops history older than `keep` revisions from memory and the backend.
    pub async fn compact(&self, keep: u64) -> Result<(), StorageError> {
        let target = self.current_revision().saturating_sub(keep);
        if target == 0 {
            return Ok(());
        }
        {
            let mut st = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
            while st.history.front().is_some_and(|e| e.rev <= target) {
                st.history.pop_front();
            }
            st.compacted = st.compacted.max(target);
        }
        self.inner.engine.compact(target).await
    }
}

impl Inner {
    fn new(engine: Box<dyn engine::Engine>, state: State, history_limit: usize) -> Self {
        let (events, _) = broadcast::channel(16_384);
        let (applied, _) = tokio::sync::watch::channel(state.rev);
        let (resets, _) = tokio::sync::watch::channel(0);
        Inner {
            engine,
            state: RwLock::new(state),
            events,
            applied,
            resets,
            history_limit,
        }
    }

    /// Replaces the whole state (called with the state lock held, so no watch can start
    /// between the new state and the reset): history restarts at `state.rev`, and every
    /// open watch ends with [`WatchEnd::Reset`].
    fn reset(&self, st: &mut State, state: State) {
        *st = state;
        self.resets.send_modify(|n| *n += 1);
        let _ = self.applied.send_replace(st.rev);
    }

    /// Applies one committed change to memory and tells watchers. Called with the state
    /// lock held, so a watcher that snapshots history and then subscribes can never miss
    /// or double-see an event.
    fn apply(&self, st: &mut State, ev: &Arc<Event>) {
        st.rev = st.rev.max(ev.rev);
        st.last_change
            .insert(resource_of(&ev.key).to_string(), ev.rev);
        match ev.kind {
            EventType::Deleted => {
                st.objects.remove(&ev.key);
            }
            _ => {
                st.objects.insert(
                    ev.key.clone(),
                    Entry {
                        rev: ev.rev,
                        value: ev.object.clone(),
                    },
                );
            }
        }
        st.history.push_back(ev.clone());
        let _ = self.events.send(ev.clone());
        while st.history.len() > self.history_limit {
            if let Some(old) = st.history.pop_front() {
                st.compacted = old.rev;
            }
        }
    }
}

/// Whether `obj` equals the stored object but for `metadata.resourceVersion` (a write
/// that changes nothing). Compares in place: no copy of either object.
pub(super) fn same_but_rv(obj: &Value, stored: &Value) -> bool {
    let (Some(a), Some(b)) = (obj.as_object(), stored.as_object()) else {
        return obj == stored;
    };
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|(k, v)| {
        let Some(w) = b.get(k) else { return false };
        match (k.as_str(), v.as_object(), w.as_object()) {
            ("metadata", Some(m), Some(n)) => {
                let rv = "resourceVersion";
                m.iter().filter(|(k, _)| *k != rv).count()
                    == n.iter().filter(|(k, _)| *k != rv).count()
                    && m.iter().all(|(k, v)| k == rv || n.get(k) == Some(v))
            }
            _ => v == w,
        }
    })
}

/// A running watch: first the backlog, then live events, filtered by prefix.
pub struct Watch {
    backlog: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    reset: tokio::sync::watch::Receiver<u64>,
    prefix: String,
    /// Live events at or below this revision were already in the backlog.
    last: u64,
}

/// Why a watch ended.
#[derive(Debug, PartialEq)]
pub enum WatchEnd {
    /// The watcher fell too far behind; the client must re-list.
    Lagged,
    /// The state was reloaded (history lost); the client must re-list.
    Reset,
    Closed,
}

impl Watch {
    /// The next event, waiting for one if needed.
    pub async fn next(&mut self) -> Result<Arc<Event>, WatchEnd> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(e);
        }
        loop {
            let got = tokio::select! {
                biased;
                changed = self.reset.changed() => {
                    return Err(match changed {
                        Ok(()) => WatchEnd::Reset,
                        Err(_) => WatchEnd::Closed,
                    });
                }
                got = self.rx.recv() => got,
            };
            match got {
                Ok(e) if e.rev > self.last && e.key.starts_with(&self.prefix) => return Ok(e),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return Err(WatchEnd::Lagged),
                Err(broadcast::error::RecvError::Closed) => return Err(WatchEnd::Closed),
            }
        }
    }
}

#[cfg(test)]
mod tests;
