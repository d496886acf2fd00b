//! One scheduling cycle over the cache, without any I/O: PreFilter, Filter over nodes
//! (round-robin start, stopping after `numFeasibleNodesToFind` as upstream), PreScore,
//! Score with normalization and weights, and host selection; plus `FitError`, whose
//! message is upstream's `0/N nodes are available: ...` text.
//!
//! Tie-breaking: among nodes with the highest total score one is chosen uniformly at random
//! (reservoir sampling, as upstream's `selectHost`). A seeded `Algorithm` makes the choice
//! reproducible for benchmarks and side-by-side tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cache::{Cache, NodeInfo};
use crate::config::Profile;
use crate::framework::{Code, CycleState, Snapshot, Status};
use crate::podinfo::PodInfo;

/// Below this many nodes every node is checked.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never drops below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE: i64 = 5;

pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Pods nominated to nodes by preemption but not bound yet, by node.
pub type Nominated = HashMap<String, Vec<Arc<PodInfo>>>;

/// Why a pod fits no node.
#[derive(Clone, Debug, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// The failing status of each node that was evaluated.
    pub statuses: Vec<(String, Status)>,
    pub prefilter_msg: Option<String>,
    pub postfilter_msg: Option<String>,
}

impl FitError {
    /// upstream's `FitError.Error()`: a histogram of reasons sorted as strings.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        let push = |msg: &mut String, part: &str| {
            msg.push(' ');
            msg.push_str(part);
            if !part.ends_with('.') {
                msg.push('.');
            }
        };
        if let Some(pre) = &self.prefilter_msg {
            push(&mut msg, pre);
        } else {
            let mut hist: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, st) in &self.statuses {
                for r in &st.reasons {
                    *hist.entry(r.as_str()).or_default() += 1;
                }
            }
            let mut parts: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            if !parts.is_empty() {
                push(&mut msg, &parts.join(", "));
            }
        }
        if let Some(post) = &self.postfilter_msg {
            push(&mut msg, post);
        }
        msg
    }
}

#[derive(Debug)]
pub enum ScheduleError {
    NoNodes,
    Fit(FitError),
}

/// Where a pod goes, and how much work finding it took.
#[derive(Debug, Clone)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated: usize,
    pub feasible: usize,
}

/// upstream's `numFeasibleNodesToFind`.
pub fn num_feasible_nodes_to_find(percentage: Option<i32>, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let mut pct = percentage.unwrap_or(0) as i64;
    if pct <= 0 {
        pct = (50 - all as i64 / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE);
    }
    let n = (all as i64 * pct / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Runs the profile's PreFilter steps; returns the rejection if one plugin rejects the pod.
pub fn run_pre_filter(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
) -> Result<(), Status> {
    for p in &profile.filters {
        let st = p.pre_filter(state, pod, snap);
        match st.code {
            Code::Success => {}
            Code::Skip => state.skip_filter.push(p.name()),
            _ => {
                return Err(Status {
                    plugin: p.name(),
                    ..st
                });
            }
        }
    }
    state.active_filters = (0..profile.filters.len())
        .filter(|i| !state.skip_filter.contains(&profile.filters[*i].name()))
        .collect();
    Ok(())
}

/// Runs the Filter steps (of plugins PreFilter did not skip) on one node, stopping at the
/// first rejection.
pub fn run_filters(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Status {
    for &i in &state.active_filters {
        let p = &profile.filters[i];
        let st = p.filter(state, pod, node);
        if !st.is_success() {
            return Status {
                plugin: p.name(),
                ..st
            };
        }
    }
    Status::success()
}

/// Filters with the node's nominated pods of equal or higher priority counted in too (so a
/// preemptor's freed space is not taken by others), then without them.
fn filter_with_nominated(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    nominated: &Nominated,
) -> Status {
    if let Some(noms) = (!nominated.is_empty())
        .then(|| nominated.get(&node.name))
        .flatten()
    {
        let mut extra = noms
            .iter()
            .filter(|n| n.priority >= pod.priority && n.uid != pod.uid)
            .peekable();
        if extra.peek().is_some() {
            let mut with = node.clone();
            for n in extra {
                with.add_pod(n.clone());
            }
            let st = run_filters(profile, state, pod, &with);
            if !st.is_success() {
                return st;
            }
        }
    }
    run_filters(profile, state, pod, node)
}

/// The scheduling algorithm's own state: where the next node search starts, and the
/// random source for tie-breaks.
pub struct Algorithm {
    next_start: usize,
    rng: SmallRng,
}

impl Default for Algorithm {
    fn default() -> Self {
        Algorithm {
            next_start: 0,
            rng: SmallRng::from_os_rng(),
        }
    }
}

impl Algorithm {
    /// An algorithm whose tie-breaks are reproducible.
    pub fn seeded(seed: u64) -> Self {
        Algorithm {
            next_start: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Finds a node for the pod (`schedulePod`).
    pub fn schedule(
        &mut self,
        profile: &Profile,
        cache: &Cache,
        nominated: &Nominated,
        pod: &PodInfo,
    ) -> Result<ScheduleResult, ScheduleError> {
        let snap = Snapshot::new(cache);
        let total = cache.num_nodes();
        if total == 0 {
            return Err(ScheduleError::NoNodes);
        }
        let mut state = CycleState::default();
        if let Err(st) = run_pre_filter(profile, &mut state, pod, &snap) {
            let statuses = snap.nodes().map(|n| (n.name.clone(), st.clone())).collect();
            return Err(ScheduleError::Fit(FitError {
                num_all_nodes: total,
                statuses,
                prefilter_msg: Some(st.message()),
                postfilter_msg: None,
            }));
        }
        // A pod nominated by an earlier preemption tries its nominated node first.
        if let Some(nn) = pod.nominated_node_name()
            && let Some(node) = cache.node(nn).filter(|n| n.node.is_some())
            && filter_with_nominated(profile, &state, pod, node, nominated).is_success()
        {
            return Ok(ScheduleResult {
                node: nn.to_string(),
                evaluated: 1,
                feasible: 1,
            });
        }
        let (feasible, statuses, evaluated) =
            self.find_feasible(profile, &state, cache, nominated, pod);
        if feasible.is_empty() {
            return Err(ScheduleError::Fit(FitError {
                num_all_nodes: total,
                statuses,
                prefilter_msg: None,
                postfilter_msg: None,
            }));
        }
        let node = if feasible.len() == 1 {
            feasible[0].name.clone()
        } else {
            let scores = prioritize(profile, &mut state, pod, &feasible, &snap);
            self.select_host(&feasible, &scores)
        };
        Ok(ScheduleResult {
            node,
            evaluated,
            feasible: feasible.len(),
        })
    }

    fn find_feasible<'a>(
        &mut self,
        profile: &Profile,
        state: &CycleState,
        cache: &'a Cache,
        nominated: &Nominated,
        pod: &PodInfo,
    ) -> (Vec<&'a NodeInfo>, Vec<(String, Status)>, usize) {
        let all = cache.all();
        let want =
            num_feasible_nodes_to_find(profile.percentage_of_nodes_to_score, cache.num_nodes());
        let start = self.next_start % all.len().max(1);
        let mut feasible = Vec::with_capacity(want.min(all.len()));
        let mut statuses = Vec::new();
        let mut processed = 0;
        for i in 0..all.len() {
            let node = &all[(start + i) % all.len()];
            processed += 1;
            if node.node.is_none() {
                continue;
            }
            let st = filter_with_nominated(profile, state, pod, node, nominated);
            if st.is_success() {
                feasible.push(node);
                if feasible.len() >= want {
                    break;
                }
            } else {
                statuses.push((node.name.clone(), st));
            }
        }
        self.next_start = (start + processed) % all.len().max(1);
        let evaluated = feasible.len() + statuses.len();
        (feasible, statuses, evaluated)
    }

    fn select_host(&mut self, nodes: &[&NodeInfo], scores: &[i64]) -> String {
        let mut best = 0;
        let mut ties = 0u32;
        for (i, s) in scores.iter().enumerate() {
            if *s > scores[best] {
                best = i;
                ties = 1;
            } else if *s == scores[best] {
                ties += 1;
                if self.rng.random_range(0..ties) == 0 {
                    best = i;
                }
            }
        }
        nodes[best].name.clone()
    }
}

/// PreScore and Score over the feasible nodes: the weighted sum of normalized scores.
pub fn prioritize(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    nodes: &[&NodeInfo],
    snap: &Snapshot,
) -> Vec<i64> {
    let mut total = vec![0i64; nodes.len()];
    for (p, _) in &profile.scorers {
        if p.pre_score(state, pod, nodes, snap).code == Code::Skip {
            state.skip_score.push(p.name());
        }
    }
    let mut scores = vec![0i64; nodes.len()];
    for (p, weight) in &profile.scorers {
        if state.skip_score.contains(&p.name()) {
            continue;
        }
        for (s, n) in scores.iter_mut().zip(nodes) {
            *s = p.score(state, pod, n);
        }
        p.normalize(state, &mut scores);
        for (t, s) in total.iter_mut().zip(&scores) {
            *t += s * weight;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchedulerConfig;
    use crate::plugins::testutil::pod;
    use serde_json::json;

    fn cache(nodes: &[(&str, &str)]) -> Cache {
        let mut c = Cache::new();
        for (name, cpu) in nodes {
            c.upsert_node(Arc::new(
                serde_json::from_value(
                    json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                    "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}),
                )
                .expect("node"),
            ));
        }
        c
    }

    fn profile() -> Profile {
        SchedulerConfig::default()
            .build_profiles()
            .expect("profiles")
            .remove(0)
    }

    #[test]
    fn feasible_counts() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(None, 6000), 300);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
        assert_eq!(num_feasible_nodes_to_find(Some(1), 5000), 100);
    }

    #[test]
    fn picks_least_allocated() {
        let mut c = cache(&[("small", "2"), ("big", "16")]);
        c.add_pod(
            pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]})),
            "small",
            false,
        );
        let p = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}),
        );
        let r = Algorithm::seeded(1)
            .schedule(&profile(), &c, &Nominated::new(), &p)
            .expect("fits");
        assert_eq!(r.node, "big");
    }

    #[test]
    fn fit_error_message() {
        let c = cache(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let p =
            pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}));
        let Err(ScheduleError::Fit(mut e)) =
            Algorithm::seeded(1).schedule(&profile(), &c, &Nominated::new(), &p)
        else {
            panic!("expected a fit error");
        };
        assert_eq!(e.message(), "0/3 nodes are available: 3 Insufficient cpu.");
        e.postfilter_msg = Some(
            "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
                .into(),
        );
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn histogram_sorted_as_strings() {
        let e = FitError {
            num_all_nodes: 12,
            statuses: (0..12)
                .map(|i| {
                    let r = if i < 10 {
                        "Insufficient cpu"
                    } else {
                        "node(s) had untolerated taint(s)"
                    };
                    (format!("n{i}"), Status::unschedulable(r))
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(
            e.message(),
            "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) had untolerated taint(s)."
        );
    }

    #[test]
    fn no_nodes() {
        let c = Cache::new();
        let p = pod(json!({"containers": [{"name": "c"}]}));
        assert!(matches!(
            Algorithm::seeded(1).schedule(&profile(), &c, &Nominated::new(), &p),
            Err(ScheduleError::NoNodes)
        ));
    }
}
