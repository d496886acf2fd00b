//! The etcd follower: one task per API server that watches etcd from the revision the
//! in-memory state was loaded at and applies every change, in revision order, whoever
//! wrote it. This is the watch cache's only source of change with the etcd backend, so
//! every API server on one etcd shows the same objects at the same resourceVersions.
//!
//! It watches all keys, not only ours: every etcd revision then arrives as an event (or a
//! progress notification), and a consistent read can wait for the revision etcd reports.

use std::sync::Arc;
use std::time::Duration;

use super::etcd::{Change, Etcd, WatchBroken};
use super::{Entry, Event, EventType, Inner, State, set_resource_version};

/// Follows etcd from `loaded_at` (the revision the state reflects) for as long as the
/// process runs, reconnecting when the watch breaks.
pub(super) async fn run(inner: Arc<Inner>, etcd: Arc<Etcd>, loaded_at: u64) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let from = current(&inner).max(loaded_at) + 1;
        match follow(&inner, &etcd, from).await {
            Ok(()) => tracing::warn!(from, "the etcd watch ended; watching again"),
            Err(Broken::Etcd(e)) => {
                tracing::warn!(from, error = %e, "the etcd watch failed; watching again")
            }
            Err(Broken::Watch(WatchBroken::Compacted(rev))) => {
                tracing::error!(
                    from,
                    compacted = rev,
                    "etcd compacted past the watch cache; reloading the state (watchers must re-list)"
                );
                if let Err(e) = reload(&inner, &etcd).await {
                    tracing::error!(error = %e, "reloading the state from etcd failed");
                }
            }
            Err(Broken::Watch(WatchBroken::Canceled(why))) => {
                tracing::warn!(from, reason = %why, "etcd cancelled the watch; watching again")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum Broken {
    Etcd(String),
    Watch(WatchBroken),
}

fn current(inner: &Inner) -> u64 {
    inner.state.read().unwrap_or_else(|e| e.into_inner()).rev
}

async fn follow(inner: &Arc<Inner>, etcd: &Etcd, from: u64) -> Result<(), Broken> {
    let mut stream = etcd
        .watch(from)
        .await
        .map_err(|e| Broken::Etcd(e.to_string()))?;
    while let Some(resp) = stream
        .message()
        .await
        .map_err(|e| Broken::Etcd(e.to_string()))?
    {
        let changes = etcd.changes(&resp).map_err(Broken::Watch)?;
        if changes.is_empty() {
            continue;
        }
        let mut st = inner.state.write().unwrap_or_else(|e| e.into_inner());
        for change in changes {
            apply(inner, &mut st, change);
        }
        let _ = inner.applied.send_replace(st.rev);
    }
    Ok(())
}

fn apply(inner: &Inner, st: &mut State, change: Change) {
    match change {
        Change::Put(stored) => {
            if stored.rev <= st.rev
                && st
                    .objects
                    .get(&stored.key)
                    .is_some_and(|e| e.rev >= stored.rev)
            {
                return; // already seen (a replay after reconnecting)
            }
            let prev = st.objects.get(&stored.key).map(|e| e.value.clone());
            let kind = if prev.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            };
            let ev = Arc::new(Event {
                kind,
                key: stored.key,
                rev: stored.rev,
                object: Arc::new(stored.value),
                prev,
                json_line: Default::default(),
            });
            inner.apply(st, &ev);
        }
        Change::Delete { key, rev } => {
            let Some(prev) = st.objects.get(&key).map(|e| e.value.clone()) else {
                st.rev = st.rev.max(rev);
                return;
            };
            let mut gone = (*prev).clone();
            set_resource_version(&mut gone, rev);
            let ev = Arc::new(Event {
                kind: EventType::Deleted,
                key,
                rev,
                object: Arc::new(gone),
                prev: Some(prev),
                json_line: Default::default(),
            });
            inner.apply(st, &ev);
        }
        Change::Other { rev } | Change::Progress { rev } => st.rev = st.rev.max(rev),
    }
}

/// Replaces the state with etcd's latest after the history we needed was compacted.
/// History restarts there: open watches end, and watches from older revisions get
/// `410 Gone`, so clients re-list.
pub(super) async fn reload(inner: &Inner, etcd: &Etcd) -> Result<(), super::StorageError> {
    let (at, items) = etcd.list_all(0).await?;
    let state = State {
        rev: at,
        compacted: at,
        reloaded_at: at,
        objects: items
            .into_iter()
            .map(|s| {
                (
                    s.key,
                    Entry {
                        rev: s.rev,
                        value: Arc::new(s.value),
                    },
                )
            })
            .collect(),
        ..State::default()
    };
    let mut st = inner.state.write().unwrap_or_else(|e| e.into_inner());
    inner.reset(&mut st, state);
    Ok(())
}
