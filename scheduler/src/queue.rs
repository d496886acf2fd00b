//! The scheduling queue: an active queue ordered by priority then enqueue time
//! (PrioritySort), a backoff queue (per-pod exponential backoff, 1s doubling to 10s by
//! default), and the unschedulable pool, whose pods move back when a cluster event could
//! make them schedulable, or after five minutes. A failure reported after a move request
//! that happened while the pod was being scheduled sends it to backoff, not to the pool, so
//! no event is lost.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::podinfo::PodInfo;

/// How long a pod may stay in the unschedulable pool before it is retried anyway.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

/// A queued pod and its scheduling history.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// When the pod last entered the active queue (its place among equal priorities).
    pub timestamp: Instant,
    /// When the pod was first seen by the queue.
    pub initial_attempt: Instant,
    pub attempts: u32,
    /// The move-request counter when the pod was popped.
    popped_at_cycle: u64,
    last_failure: Option<Instant>,
    generation: u64,
    at: Where,
}

struct ActiveEntry {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    key: String,
    generation: u64,
}

impl PartialEq for ActiveEntry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for ActiveEntry {}
impl PartialOrd for ActiveEntry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ActiveEntry {
    /// The heap pops the greatest: higher priority, then earlier timestamp, then FIFO.
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then(o.timestamp.cmp(&self.timestamp))
            .then(o.seq.cmp(&self.seq))
    }
}

/// The queue. Not synchronized: the scheduler wraps it in a mutex.
pub struct SchedulingQueue {
    pods: HashMap<String, QueuedPod>,
    active: BinaryHeap<ActiveEntry>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String, u64)>>,
    seq: u64,
    move_cycle: u64,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for SchedulingQueue {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(10))
    }
}

impl SchedulingQueue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> Self {
        SchedulingQueue {
            pods: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            seq: 0,
            move_cycle: 0,
            initial_backoff,
            max_backoff,
        }
    }

    fn push_active(&mut self, key: &str, now: Instant) {
        let Some(q) = self.pods.get_mut(key) else {
            return;
        };
        self.seq += 1;
        q.generation = self.seq;
        q.at = Where::Active;
        q.timestamp = now;
        self.active.push(ActiveEntry {
            priority: q.info.priority,
            timestamp: now,
            seq: self.seq,
            key: key.to_string(),
            generation: q.generation,
        });
    }

    fn backoff_expiry(&self, q: &QueuedPod) -> Instant {
        let exp = q.attempts.saturating_sub(1).min(20);
        let d = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        q.last_failure.unwrap_or(q.timestamp) + d
    }

    fn push_backoff(&mut self, key: &str) {
        let Some(q) = self.pods.get(key) else {
            return;
        };
        let expiry = self.backoff_expiry(q);
        self.seq += 1;
        let generation = self.seq;
        if let Some(q) = self.pods.get_mut(key) {
            q.generation = generation;
            q.at = Where::Backoff;
        }
        self.backoff
            .push(Reverse((expiry, generation, key.to_string(), generation)));
    }

    /// Adds a new pending pod, or updates a known one (moving it to the active queue when
    /// it waited as unschedulable: an update may have made it schedulable).
    pub fn add_or_update(&mut self, info: Arc<PodInfo>, now: Instant) {
        let key = info.key();
        match self.pods.get_mut(&key) {
            Some(q) => {
                let changed = q.info.pod.spec != info.pod.spec
                    || q.info.pod.metadata.labels != info.pod.metadata.labels;
                q.info = info;
                if changed && q.at == Where::Unschedulable {
                    if self.backoff_expiry(&self.pods[&key]) > now {
                        self.push_backoff(&key);
                    } else {
                        self.push_active(&key, now);
                    }
                }
            }
            None => {
                self.pods.insert(
                    key.clone(),
                    QueuedPod {
                        info,
                        timestamp: now,
                        initial_attempt: now,
                        attempts: 0,
                        popped_at_cycle: 0,
                        last_failure: None,
                        generation: 0,
                        at: Where::Active,
                    },
                );
                self.push_active(&key, now);
            }
        }
    }

    /// Forgets a pod (deleted, or bound by someone else).
    pub fn delete(&mut self, key: &str) {
        self.pods.remove(key);
    }

    /// Takes the next pod to schedule, if any is active.
    pub fn pop(&mut self) -> Option<QueuedPod> {
        while let Some(e) = self.active.pop() {
            let cycle = self.move_cycle;
            let Some(q) = self.pods.get_mut(&e.key) else {
                continue;
            };
            if q.generation != e.generation || q.at != Where::Active {
                continue;
            }
            q.at = Where::InFlight;
            q.attempts += 1;
            q.popped_at_cycle = cycle;
            return Some(q.clone());
        }
        None
    }

    /// Marks a popped pod done (bound or assumed); it leaves the queue.
    pub fn done(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|q| q.at == Where::InFlight) {
            self.pods.remove(key);
        }
    }

    /// Returns a popped pod that could not be scheduled. Unless a move request arrived
    /// while it was in flight, it waits in the unschedulable pool; `backoff_only` (errors
    /// other than "does not fit") sends it straight to backoff.
    pub fn requeue_failed(&mut self, key: &str, now: Instant, backoff_only: bool) {
        let cycle = self.move_cycle;
        let Some(q) = self.pods.get_mut(key) else {
            return;
        };
        if q.at != Where::InFlight {
            return;
        }
        q.last_failure = Some(now);
        q.timestamp = now;
        if backoff_only || q.popped_at_cycle != cycle {
            self.push_backoff(key);
        } else {
            q.at = Where::Unschedulable;
        }
    }

    /// A cluster event that may help: every unschedulable pod moves to backoff (if still
    /// backing off) or active.
    pub fn move_all_to_active_or_backoff(&mut self, now: Instant) {
        self.move_cycle += 1;
        let keys: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, q)| q.at == Where::Unschedulable)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if self.backoff_expiry(&self.pods[&k]) > now {
                self.push_backoff(&k);
            } else {
                self.push_active(&k, now);
            }
        }
    }

    /// Moves finished backoffs to active, and pods stuck unschedulable for too long.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((expiry, _, _, _))) = self.backoff.peek() {
            if *expiry > now {
                break;
            }
            let Some(Reverse((_, _, key, generation))) = self.backoff.pop() else {
                break;
            };
            if self
                .pods
                .get(&key)
                .is_some_and(|q| q.generation == generation && q.at == Where::Backoff)
            {
                self.push_active(&key, now);
            }
        }
        let stale: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, q)| {
                q.at == Where::Unschedulable
                    && q.last_failure
                        .is_some_and(|t| now.duration_since(t) > MAX_IN_UNSCHEDULABLE)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.push_active(&k, now);
        }
    }

    /// Whether the pod is known to the queue.
    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Every queued pod's key.
    pub fn keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// Pending pods per sub-queue: (active, backoff, unschedulable, in flight).
    pub fn lengths(&self) -> (usize, usize, usize, usize) {
        let mut l = (0, 0, 0, 0);
        for q in self.pods.values() {
            match q.at {
                Where::Active => l.0 += 1,
                Where::Backoff => l.1 += 1,
                Where::Unschedulable => l.2 += 1,
                Where::InFlight => l.3 += 1,
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::pod_json;
    use serde_json::json;

    fn pod(name: &str, prio: i32) -> Arc<PodInfo> {
        pod_json(json!({"metadata": {"name": name, "namespace": "ns"},
            "spec": {"priority": prio, "containers": [{"name": "c"}]}}))
    }

    #[test]
    fn priority_then_fifo() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update(pod("a", 0), t);
        q.add_or_update(pod("b", 10), t + Duration::from_millis(1));
        q.add_or_update(pod("c", 0), t + Duration::from_millis(2));
        let order: Vec<String> = std::iter::from_fn(|| q.pop())
            .map(|p| p.info.name.clone())
            .collect();
        assert_eq!(order, vec!["b", "a", "c"]);
    }

    #[test]
    fn unschedulable_moves_back_on_event_with_backoff() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update(pod("a", 0), t);
        let p = q.pop().expect("pod");
        q.requeue_failed(&p.info.key(), t, false);
        assert_eq!(q.lengths(), (0, 0, 1, 0));
        assert!(q.pop().is_none());
        // An event within the first backoff (1s) goes through backoff.
        q.move_all_to_active_or_backoff(t + Duration::from_millis(100));
        assert_eq!(q.lengths(), (0, 1, 0, 0));
        q.flush(t + Duration::from_millis(500));
        assert!(q.pop().is_none());
        q.flush(t + Duration::from_millis(1001));
        let p = q.pop().expect("after backoff");
        assert_eq!(p.attempts, 2);
        // Second failure: backoff doubles to 2s.
        q.requeue_failed(&p.info.key(), t + Duration::from_secs(2), true);
        q.flush(t + Duration::from_millis(3500));
        assert!(q.pop().is_none());
        q.flush(t + Duration::from_millis(4001));
        assert!(q.pop().is_some());
    }

    #[test]
    fn event_during_flight_skips_the_pool() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update(pod("a", 0), t);
        let p = q.pop().expect("pod");
        q.move_all_to_active_or_backoff(t);
        q.requeue_failed(&p.info.key(), t, false);
        assert_eq!(q.lengths(), (0, 1, 0, 0));
    }

    #[test]
    fn backoff_is_capped() {
        let q = SchedulingQueue::default();
        let t = Instant::now();
        let mut qp = QueuedPod {
            info: pod("a", 0),
            timestamp: t,
            initial_attempt: t,
            attempts: 9,
            popped_at_cycle: 0,
            last_failure: Some(t),
            generation: 0,
            at: Where::Backoff,
        };
        assert_eq!(q.backoff_expiry(&qp), t + Duration::from_secs(10));
        qp.attempts = 3;
        assert_eq!(q.backoff_expiry(&qp), t + Duration::from_secs(4));
    }
}
