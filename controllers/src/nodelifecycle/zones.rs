//! Zones and the pace of evictions, as upstream's node-lifecycle controller:
//!
//! - nodes are grouped into zones by their region and zone labels;
//! - a zone is `FullDisruption` when none of its nodes is Ready, `PartialDisruption` when
//!   more than two and at least `--unhealthy-zone-threshold` of them are not, `Normal`
//!   otherwise;
//! - each zone taints unhealthy nodes NoExecute through its own rate-limited queue:
//!   `--node-eviction-rate` nodes per second normally, `--secondary-node-eviction-rate`
//!   in a partially disrupted zone of a cluster larger than
//!   `--large-cluster-size-threshold` (none in smaller ones), and none at all while every
//!   zone is fully disrupted (then the problem is most likely the control plane's own
//!   connectivity, and evicting everything would only make it worse).
//!
//! Pure data structures; the controller drives them.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;

/// The state of one zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Initial,
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// The zone a node belongs to (upstream's `GetZoneKey`): region and zone labels (the GA
/// ones, else the deprecated beta ones), empty when the node has neither.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |ga: &str, beta: &str| -> String {
        labels
            .and_then(|l| l.get(ga).or_else(|| l.get(beta)))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

/// The number of not-Ready nodes in a zone and the zone's state, from the Ready status of
/// each of its nodes (`None` for a node without a Ready condition).
pub fn compute_zone_state(ready: &[Option<&str>], unhealthy_threshold: f32) -> (usize, ZoneState) {
    let ready_nodes = ready.iter().filter(|s| **s == Some("True")).count();
    let not_ready = ready.len() - ready_nodes;
    let state = if ready_nodes == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f32 / ready.len() as f32 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    };
    (not_ready, state)
}

/// The eviction flags.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub eviction_qps: f32,
    pub secondary_qps: f32,
    pub large_cluster_threshold: i32,
}

impl Rates {
    /// The eviction rate for a zone of `size` nodes in `state` (`None` keeps the rate).
    pub fn qps(&self, state: ZoneState, size: usize) -> Option<f32> {
        match state {
            ZoneState::Normal | ZoneState::FullDisruption => Some(self.eviction_qps),
            ZoneState::PartialDisruption => {
                if i64::try_from(size).unwrap_or(i64::MAX) > i64::from(self.large_cluster_threshold)
                {
                    Some(self.secondary_qps)
                } else {
                    Some(0.0)
                }
            }
            ZoneState::Initial => None,
        }
    }
}

/// What to do after the zones' states were recomputed (upstream's `handleDisruption`).
#[derive(Debug, Default, PartialEq)]
pub struct DisruptionPlan {
    /// Every zone just became fully disrupted: remove all NoExecute taints and stop
    /// evictions everywhere.
    pub enter_full_disruption: bool,
    /// Some zone recovered from a cluster-wide full disruption: every node starts a new
    /// grace period.
    pub exit_full_disruption: bool,
    /// Zones whose eviction rate must be set for their new state.
    pub set_rates: Vec<(String, ZoneState)>,
}

/// Updates `states` to the zones' `new` states and says what the change means.
pub fn plan_disruption(
    states: &mut HashMap<String, ZoneState>,
    new: &HashMap<String, ZoneState>,
) -> DisruptionPlan {
    let all_are_full = new.values().all(|s| *s == ZoneState::FullDisruption);
    for zone in new.keys() {
        states.entry(zone.clone()).or_insert(ZoneState::Initial);
    }
    states.retain(|zone, _| new.contains_key(zone));
    let all_were_full = states.values().all(|s| *s == ZoneState::FullDisruption);
    let mut plan = DisruptionPlan::default();
    if all_are_full && all_were_full {
        return plan;
    }
    let zones: BTreeSet<String> = states.keys().cloned().collect();
    if all_are_full {
        plan.enter_full_disruption = true;
        for zone in zones {
            states.insert(zone, ZoneState::FullDisruption);
        }
        return plan;
    }
    plan.exit_full_disruption = all_were_full;
    for zone in zones {
        let Some(&next) = new.get(&zone) else {
            continue;
        };
        if all_were_full || states.get(&zone) != Some(&next) {
            plan.set_rates.push((zone.clone(), next));
            states.insert(zone, next);
        }
    }
    plan
}

/// A token bucket with a burst of one (upstream's eviction limiter); a rate of zero or
/// less never admits anything.
#[derive(Debug)]
pub struct Limiter {
    qps: f32,
    tokens: f64,
    last: Instant,
}

impl Limiter {
    pub fn new(qps: f32, now: Instant) -> Self {
        Limiter {
            qps,
            tokens: if qps > 0.0 { 1.0 } else { 0.0 },
            last: now,
        }
    }

    pub fn qps(&self) -> f32 {
        self.qps
    }

    /// Takes a token if one is available.
    pub fn try_accept(&mut self, now: Instant) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.qps)).min(1.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A queued node.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedValue {
    pub value: String,
    pub uid: String,
    pub process_at: Instant,
}

/// Upstream's `RateLimitedTimedQueue`: nodes waiting for their NoExecute taint, each at
/// most once until explicitly removed, processed in time order at the limiter's pace.
#[derive(Debug)]
pub struct RateLimitedTimedQueue {
    queue: Vec<TimedValue>,
    /// Values added and not removed (a processed value stays here so that it is not
    /// queued again until removed).
    set: BTreeSet<String>,
    limiter: Limiter,
}

impl RateLimitedTimedQueue {
    pub fn new(qps: f32, now: Instant) -> Self {
        RateLimitedTimedQueue {
            queue: Vec::new(),
            set: BTreeSet::new(),
            limiter: Limiter::new(qps, now),
        }
    }

    /// Queues `value` unless it was added before and not removed. Returns whether added.
    pub fn add(&mut self, value: &str, uid: &str, now: Instant) -> bool {
        if !self.set.insert(value.to_string()) {
            return false;
        }
        self.push(TimedValue {
            value: value.to_string(),
            uid: uid.to_string(),
            process_at: now,
        });
        true
    }

    fn push(&mut self, v: TimedValue) {
        let at = self.queue.partition_point(|q| q.process_at <= v.process_at);
        self.queue.insert(at, v);
    }

    /// Forgets `value`, so that it may be added again. Returns whether it was known.
    pub fn remove(&mut self, value: &str) -> bool {
        self.queue.retain(|q| q.value != value);
        self.set.remove(value)
    }

    /// The next value due, if the limiter admits one (a token is spent on looking, as
    /// upstream's does).
    pub fn next_due(&mut self, now: Instant) -> Option<TimedValue> {
        let head = self.queue.first()?.clone();
        if !self.limiter.try_accept(now) || now < head.process_at {
            return None;
        }
        Some(head)
    }

    /// `value` was handled: it leaves the queue but stays known.
    pub fn done(&mut self, value: &str) {
        self.queue.retain(|q| q.value != value);
    }

    /// `value` must be tried again after `wait`.
    pub fn retry(&mut self, value: &str, wait: Duration, now: Instant) {
        if let Some(at) = self.queue.iter().position(|q| q.value == value) {
            let mut v = self.queue.remove(at);
            v.process_at = now + wait + Duration::from_nanos(1);
            self.push(v);
        }
    }

    /// Replaces the limiter when the rate changes; a new limiter starts drained if the
    /// old one was.
    pub fn swap_limiter(&mut self, qps: f32, now: Instant) {
        if self.limiter.qps() == qps {
            return;
        }
        let mut next = Limiter::new(qps, now);
        if qps > 0.0 && !self.limiter.try_accept(now) {
            next.try_accept(now);
        }
        self.limiter = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zone_keys() {
        let n: Node = serde_json::from_value(json!({"metadata": {"name": "n", "labels": {
            "topology.kubernetes.io/region": "r1", "failure-domain.beta.kubernetes.io/zone": "z1"}}}))
        .expect("node");
        assert_eq!(zone_key(&n), "r1:\x00:z1");
        assert_eq!(zone_key(&Node::default()), "");
    }

    #[test]
    fn zone_states() {
        let t = Some("True");
        let f = Some("False");
        let u = Some("Unknown");
        assert_eq!(
            compute_zone_state(&[u, f], 0.55),
            (2, ZoneState::FullDisruption)
        );
        assert_eq!(compute_zone_state(&[t, u, f], 0.55), (2, ZoneState::Normal));
        assert_eq!(
            compute_zone_state(&[t, u, f, None], 0.55),
            (3, ZoneState::PartialDisruption)
        );
        assert_eq!(
            compute_zone_state(&[t, t, u, f, u], 0.7),
            (3, ZoneState::Normal)
        );
        assert_eq!(compute_zone_state(&[], 0.55), (0, ZoneState::Normal));
    }

    #[test]
    fn eviction_rates() {
        let r = Rates {
            eviction_qps: 0.1,
            secondary_qps: 0.01,
            large_cluster_threshold: 50,
        };
        assert_eq!(r.qps(ZoneState::Normal, 10), Some(0.1));
        assert_eq!(r.qps(ZoneState::FullDisruption, 10), Some(0.1));
        assert_eq!(r.qps(ZoneState::PartialDisruption, 10), Some(0.0));
        assert_eq!(r.qps(ZoneState::PartialDisruption, 51), Some(0.01));
        assert_eq!(r.qps(ZoneState::Initial, 1), None);
    }

    fn map(v: &[(&str, ZoneState)]) -> HashMap<String, ZoneState> {
        v.iter().map(|(k, s)| (k.to_string(), *s)).collect()
    }

    #[test]
    fn full_disruption_stops_and_resumes_evictions() {
        use ZoneState::*;
        let mut states = HashMap::new();
        let plan = plan_disruption(&mut states, &map(&[("a", Normal), ("b", Normal)]));
        assert!(!plan.enter_full_disruption && !plan.exit_full_disruption);
        assert_eq!(plan.set_rates.len(), 2);
        // one zone down: only that zone changes
        let plan = plan_disruption(&mut states, &map(&[("a", FullDisruption), ("b", Normal)]));
        assert_eq!(plan.set_rates, [("a".to_string(), FullDisruption)]);
        // everything down: stop evicting
        let plan = plan_disruption(
            &mut states,
            &map(&[("a", FullDisruption), ("b", FullDisruption)]),
        );
        assert!(plan.enter_full_disruption);
        assert!(plan.set_rates.is_empty());
        let again = plan_disruption(
            &mut states,
            &map(&[("a", FullDisruption), ("b", FullDisruption)]),
        );
        assert_eq!(again, DisruptionPlan::default());
        // one zone back: resume everywhere
        let plan = plan_disruption(&mut states, &map(&[("a", FullDisruption), ("b", Normal)]));
        assert!(plan.exit_full_disruption);
        assert_eq!(plan.set_rates.len(), 2);
        assert_eq!(states["a"], FullDisruption);
        assert_eq!(states["b"], Normal);
    }

    #[test]
    fn a_lone_node_going_down_is_a_full_disruption() {
        use ZoneState::*;
        let mut states = HashMap::new();
        plan_disruption(&mut states, &map(&[("", Normal)]));
        let plan = plan_disruption(&mut states, &map(&[("", FullDisruption)]));
        assert!(plan.enter_full_disruption);
    }

    #[test]
    fn limiter_paces_and_never_admits_at_zero() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1.0, t0);
        assert!(l.try_accept(t0));
        assert!(!l.try_accept(t0 + Duration::from_millis(500)));
        assert!(l.try_accept(t0 + Duration::from_millis(1000)));
        let mut never = Limiter::new(0.0, t0);
        assert!(!never.try_accept(t0 + Duration::from_secs(100)));
    }

    #[test]
    fn queue_holds_each_value_once_until_removed() {
        let t0 = Instant::now();
        let mut q = RateLimitedTimedQueue::new(100.0, t0);
        assert!(q.add("a", "uid-a", t0));
        assert!(!q.add("a", "uid-a", t0));
        assert!(q.add("b", "uid-b", t0));
        let head = q.next_due(t0).expect("due");
        assert_eq!(head.value, "a");
        q.retry("a", Duration::from_secs(1), t0);
        let later = t0 + Duration::from_millis(50);
        assert_eq!(q.next_due(later).map(|v| v.value), Some("b".into()));
        q.done("b");
        assert!(!q.add("b", "uid-b", later), "processed values stay known");
        assert!(q.remove("b"));
        assert!(q.add("b", "uid-b", later));
    }

    #[test]
    fn swapping_to_zero_stops_the_queue() {
        let t0 = Instant::now();
        let mut q = RateLimitedTimedQueue::new(10.0, t0);
        q.add("a", "", t0);
        q.swap_limiter(0.0, t0);
        assert!(q.next_due(t0 + Duration::from_secs(10)).is_none());
        q.swap_limiter(10.0, t0);
        assert!(q.next_due(t0 + Duration::from_secs(10)).is_some());
    }
}
