//! Timed work, one item per pod: upstream's `TimedWorkerQueue`. Work added for a key runs
//! once at its fire time unless cancelled first; a key with work pending (or running)
//! takes no other work until that work finishes or is cancelled.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::task::AbortHandle;

struct Worker {
    id: u64,
    created_at: Timestamp,
    /// Whether the work waits for a timer (upstream keeps no worker for work that starts
    /// at once, so such work is neither reported by `scheduled` nor "cancelled").
    timed: bool,
    started: bool,
    abort: AbortHandle,
}

/// Work keyed by name (`namespace/name`), each item run once at its time.
#[derive(Clone, Default)]
pub struct TimedWorkers {
    workers: Arc<Mutex<HashMap<String, Worker>>>,
    next_id: Arc<AtomicU64>,
}

impl TimedWorkers {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Worker>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` at `fire_at` (at once if that has passed), unless `key` already has
    /// work. Returns whether the work was added.
    pub fn add_work<F, Fut>(
        &self,
        key: &str,
        created_at: Timestamp,
        fire_at: Timestamp,
        work: F,
    ) -> bool
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut workers = self.lock();
        if workers.contains_key(key) {
            tracing::trace!(key, "work already scheduled; skipping");
            return false;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let delay =
            Duration::try_from(fire_at.duration_since(Timestamp::now())).unwrap_or_default();
        let timed = !delay.is_zero();
        let this = self.clone();
        let owned = key.to_string();
        let task = tokio::spawn(async move {
            if timed {
                tokio::time::sleep(delay).await;
                if !this.start(&owned, id) {
                    return;
                }
            }
            work().await;
            this.finish(&owned, id);
        });
        workers.insert(
            key.to_string(),
            Worker {
                id,
                created_at,
                timed,
                started: !timed,
                abort: task.abort_handle(),
            },
        );
        true
    }

    fn start(&self, key: &str, id: u64) -> bool {
        match self.lock().get_mut(key) {
            Some(w) if w.id == id => {
                w.started = true;
                true
            }
            _ => false,
        }
    }

    fn finish(&self, key: &str, id: u64) {
        let mut workers = self.lock();
        if workers.get(key).is_some_and(|w| w.id == id) {
            workers.remove(key);
        }
    }

    /// Cancels the work for `key`: timed work that has not started never runs; work that
    /// started (or was due at once) finishes. Returns whether timed work was cancelled,
    /// which is when upstream reports the cancellation.
    pub fn cancel(&self, key: &str) -> bool {
        let Some(worker) = self.lock().remove(key) else {
            return false;
        };
        if !worker.started {
            worker.abort.abort();
        }
        worker.timed
    }

    /// When the timed work pending for `key` was created, if there is any.
    pub fn scheduled(&self, key: &str) -> Option<Timestamp> {
        self.lock()
            .get(key)
            .filter(|w| w.timed)
            .map(|w| w.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;
    use std::sync::atomic::AtomicUsize;

    fn counter_work(n: &Arc<AtomicUsize>) -> impl FnOnce() -> futures::future::Ready<()> + use<> {
        let n = n.clone();
        move || {
            n.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(())
        }
    }

    #[tokio::test]
    async fn work_runs_once_at_its_time_unless_cancelled() {
        let q = TimedWorkers::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let now = Timestamp::now();
        let later = now + SignedDuration::from_millis(100);
        assert!(q.add_work("ns/a", now, later, counter_work(&ran)));
        assert!(
            !q.add_work("ns/a", now, later, counter_work(&ran)),
            "one per key"
        );
        assert_eq!(q.scheduled("ns/a"), Some(now));
        assert!(q.add_work("ns/b", now, later, counter_work(&ran)));
        assert!(q.cancel("ns/b"));
        assert!(!q.cancel("ns/b"));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(q.scheduled("ns/a"), None, "finished work is forgotten");
    }

    #[tokio::test]
    async fn immediate_work_is_not_reported_as_scheduled() {
        let q = TimedWorkers::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let now = Timestamp::now();
        let past = now - SignedDuration::from_secs(1);
        q.add_work("ns/a", past, past, counter_work(&ran));
        assert_eq!(q.scheduled("ns/a"), None);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
