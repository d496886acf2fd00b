//! The key-based work queue and informer glue shared by the controllers that sync one
//! object per key (`namespace/name`), as upstream's `workqueue` + shared informers do.
//!
//! A key is queued at most once; a key being processed that is added again is processed
//! once more after the current sync finishes (never twice at the same time). Failed syncs
//! are retried with per-key exponential backoff. Informers are kube-runtime reflectors
//! whose events are handed to a callback that decides which keys to queue; the callback
//! must not block.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// The `namespace/name` key of an object (`name` for cluster-scoped ones).
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.clone().unwrap_or_default();
    match &meta.namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name,
    }
}

/// Splits a key into namespace (empty for cluster-scoped) and name.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    queued: HashSet<String>,
    processing: HashSet<String>,
    dirty: HashSet<String>,
    failures: HashMap<String, u32>,
}

/// A de-duplicating, rate-limited queue of keys.
#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(300);

impl WorkQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut s = self.lock();
        if s.processing.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            return self.add(key);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Queues `key` again after a delay that doubles with each consecutive failure.
    pub fn add_rate_limited(&self, key: &str) {
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.to_string()).or_default();
            *n += 1;
            *n
        };
        let delay = BASE_DELAY
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(30)))
            .min(MAX_DELAY);
        self.add_after(key, delay);
    }

    /// Forgets the failures counted for `key`.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// How many times in a row `key` has failed.
    pub fn requeues(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    async fn get(&self) -> String {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.queued.remove(&key);
                    s.processing.insert(key.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    fn done(&self, key: &str) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.remove(key) && s.queued.insert(key.to_string()) {
            s.queue.push_back(key.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Runs `workers` workers calling `sync` for each key, forever. A sync error re-queues
    /// the key with backoff; success forgets its failures.
    pub async fn run<F, Fut>(&self, workers: usize, name: &'static str, sync: F)
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send,
    {
        let sync = Arc::new(sync);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            let q = self.clone();
            let sync = sync.clone();
            set.spawn(async move {
                loop {
                    let key = q.get().await;
                    match sync(key.clone()).await {
                        Ok(()) => q.forget(&key),
                        Err(e) => {
                            tracing::info!(controller = name, %key, error = %format!("{e:#}"), "error syncing; retrying");
                            q.add_rate_limited(&key);
                        }
                    }
                    q.done(&key);
                }
            });
        }
        while set.join_next().await.is_some() {}
    }
}

/// Starts a reflector for `api` and calls `handler` with every watch event (after the
/// store has applied it). Returns the store, ready once the first list has arrived.
pub fn informer<K, H>(api: Api<K>, config: watcher::Config, handler: H) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    H: Fn(&Event<K>) + Send + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, config).default_backoff());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => handler(&ev),
                Err(e) => tracing::debug!(error = %e, "watch error"),
            }
        }
    });
    reader
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_requeues_dirty_keys() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        let k = q.get().await;
        assert_eq!(k, "a");
        q.add("a"); // while processing: comes back after done
        assert_eq!(q.get().await, "b");
        q.done("b");
        q.done("a");
        assert_eq!(q.get().await, "a");
        assert!(q.lock().queue.is_empty());
    }

    #[test]
    fn keys() {
        assert_eq!(split_key("ns/n"), ("ns", "n"));
        assert_eq!(split_key("n"), ("", "n"));
    }
}
