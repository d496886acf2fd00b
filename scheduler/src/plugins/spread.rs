//! PodTopologySpread: `whenUnsatisfiable: DoNotSchedule` constraints filter nodes whose
//! domain would exceed `maxSkew` (with `minDomains`, `matchLabelKeys` and the node
//! inclusion policies); `ScheduleAnyway` constraints score nodes by how many matching pods
//! their domain already has, normalized as upstream (fewer is better).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use crate::cache::NodeInfo;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Snapshot, Status};
use crate::plugins::basic::{has_node_constraints, pod_matches_node_affinity};
use crate::podinfo::PodInfo;
use crate::selectors::{Selector, tolerated};
use crate::topology::{DomainCounts, Selection};

pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";
const IGNORED: i64 = i64::MIN;

struct Constraint {
    max_skew: i64,
    key: String,
    selector: Selector,
    min_domains: usize,
    honor_affinity: bool,
    honor_taints: bool,
}

fn constraints(pod: &PodInfo, action: &str) -> Vec<Constraint> {
    let list: &[TopologySpreadConstraint] = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default();
    list.iter()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c| {
            let mut selector = Selector::new(c.label_selector.as_ref());
            for k in c.match_label_keys.iter().flatten() {
                if let Some(v) = pod.labels.get(k) {
                    selector.and_equals(k, v);
                }
            }
            Constraint {
                max_skew: c.max_skew as i64,
                key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.unwrap_or(1).max(1) as usize,
                honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

impl Constraint {
    /// Whether the node counts for this constraint under the node inclusion policies.
    fn includes(&self, pod: &PodInfo, node: &NodeInfo) -> bool {
        if self.honor_affinity && !pod_matches_node_affinity(pod, node) {
            return false;
        }
        if self.honor_taints {
            let tols = pod
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            let bad = node.taints.iter().any(|t| {
                (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(tols, t)
            });
            if bad {
                return false;
            }
        }
        true
    }

    /// Whether every node counts whatever its affinity and taints (the inclusion policies
    /// exclude none for this pod).
    fn includes_every_node(&self, pod: &PodInfo) -> bool {
        !(self.honor_taints || self.honor_affinity && has_node_constraints(pod))
    }

    /// Whether an existing pod counts towards this constraint.
    fn counts(&self, pod: &PodInfo, existing: &PodInfo) -> bool {
        !existing.terminating
            && existing.namespace == pod.namespace
            && self.selector.matches(&existing.labels)
    }

    fn count_on(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        node.pods.iter().filter(|p| self.counts(pod, p)).count() as i64
    }
}

fn has_all_keys(cs: &[Constraint], node: &NodeInfo) -> bool {
    cs.iter().all(|c| node.labels.contains_key(&c.key))
}

/// The cache's counts of the pods a single constraint counts, when its inclusion
/// policies exclude no node for this pod (then every node with the key counts).
fn fast_counts(cs: &[Constraint], pod: &PodInfo, snap: &Snapshot) -> Option<Arc<DomainCounts>> {
    let [c] = cs else {
        return None;
    };
    if !c.includes_every_node(pod) {
        return None;
    }
    let sel = Selection::Spread {
        namespace: pod.namespace.clone(),
        selector: c.selector.clone(),
        key: c.key.clone(),
    };
    snap.counts(&sel).0.into_iter().next().map(|(_, m)| m)
}

/// Adds one to the count of `value`.
fn bump(counts: &mut HashMap<String, i64>, value: &str) {
    match counts.get_mut(value) {
        Some(c) => *c += 1,
        None => {
            counts.insert(value.to_string(), 1);
        }
    }
}

struct FilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: domain value -> matching pods.
    counts: Vec<Arc<DomainCounts>>,
    /// Per constraint: the smallest count over its domains (0 below minDomains).
    min: Vec<i64>,
    /// Per constraint: 1 when the incoming pod matches its own selector.
    self_match: Vec<i64>,
}

struct ScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<Arc<DomainCounts>>,
    weights: Vec<f64>,
}

pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn pre_filter(&self, s: &mut CycleState, pod: &PodInfo, snap: &Snapshot) -> Status {
        let cs = constraints(pod, "DoNotSchedule");
        if cs.is_empty() {
            return Status::skip();
        }
        // Per constraint: the eligible domains, and the matching pods in each. With one
        // constraint whose inclusion policies exclude no node, the eligible domains are
        // every value of its key, known from the cache, and the counts (only of domains
        // with pods) are the cache's; otherwise every eligible domain is entered, at zero
        // first, and the pods are counted here.
        let (counts, domains) = if let Some(c) = fast_counts(&cs, pod, snap) {
            let domains = snap.label_values(&cs[0].key).map_or(0, |v| v.len());
            (vec![c], vec![domains])
        } else {
            let mut counts = vec![DomainCounts::new(); cs.len()];
            for node in snap.nodes().filter(|n| has_all_keys(&cs, n)) {
                for (i, c) in cs.iter().enumerate() {
                    let v = &node.labels[&c.key];
                    if c.includes(pod, node) && !counts[i].contains_key(v) {
                        counts[i].insert(v.clone(), 0);
                    }
                }
            }
            for (node, existing) in snap.pods_in_namespace(&pod.namespace) {
                if !has_all_keys(&cs, node) {
                    continue;
                }
                for (i, c) in cs.iter().enumerate() {
                    if c.counts(pod, existing) && c.includes(pod, node) {
                        bump(&mut counts[i], &node.labels[&c.key]);
                    }
                }
            }
            let domains = counts.iter().map(HashMap::len).collect();
            (counts.into_iter().map(Arc::new).collect(), domains)
        };
        let min = cs
            .iter()
            .zip(&counts)
            .zip(&domains)
            .map(|((c, m), &d)| {
                if d < c.min_domains || m.len() < d {
                    0
                } else {
                    m.values().copied().min().unwrap_or(0)
                }
            })
            .collect();
        s.write(
            "PodTopologySpread/filter",
            FilterState {
                self_match: cs
                    .iter()
                    .map(|c| i64::from(c.selector.matches(&pod.labels)))
                    .collect(),
                constraints: cs,
                counts,
                min,
            },
        );
        Status::success()
    }
    fn filter(&self, s: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = s.read::<FilterState>("PodTopologySpread/filter") else {
            return Status::success();
        };
        for (i, c) in st.constraints.iter().enumerate() {
            let Some(v) = node.labels.get(&c.key) else {
                return Status::unresolvable(ERR_MISSING_LABEL);
            };
            let n = st.counts[i].get(v).copied().unwrap_or(0);
            if n + st.self_match[i] - st.min[i] > c.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }
    fn pre_score(
        &self,
        s: &mut CycleState,
        pod: &PodInfo,
        feasible: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status {
        let cs = constraints(pod, "ScheduleAnyway");
        if cs.is_empty() {
            return Status::skip();
        }
        let mut domains = vec![HashSet::<&str>::new(); cs.len()];
        let mut hosts = 0usize;
        for n in feasible.iter().filter(|n| has_all_keys(&cs, n)) {
            hosts += 1;
            for (i, c) in cs.iter().enumerate() {
                domains[i].insert(n.labels[&c.key].as_str());
            }
        }
        let weights = cs
            .iter()
            .zip(&domains)
            .map(|(c, d)| {
                let size = if c.key == HOSTNAME { hosts } else { d.len() };
                ((size + 2) as f64).ln()
            })
            .collect();
        let counts = if let Some(c) = fast_counts(&cs, pod, snap) {
            vec![c]
        } else {
            let mut counts = vec![DomainCounts::new(); cs.len()];
            for (node, existing) in snap.pods_in_namespace(&pod.namespace) {
                if !has_all_keys(&cs, node) {
                    continue;
                }
                for (i, c) in cs.iter().enumerate() {
                    let v = node.labels[&c.key].as_str();
                    if c.key != HOSTNAME
                        && domains[i].contains(v)
                        && c.counts(pod, existing)
                        && c.includes(pod, node)
                    {
                        bump(&mut counts[i], v);
                    }
                }
            }
            counts.into_iter().map(Arc::new).collect()
        };
        s.write(
            "PodTopologySpread/score",
            ScoreState {
                constraints: cs,
                counts,
                weights,
            },
        );
        Status::success()
    }
    fn score(&self, s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(st) = s.read::<ScoreState>("PodTopologySpread/score") else {
            return 0;
        };
        if !has_all_keys(&st.constraints, node) {
            return IGNORED;
        }
        let mut score = 0.0;
        for (i, c) in st.constraints.iter().enumerate() {
            let cnt = if c.key == HOSTNAME {
                c.count_on(pod, node)
            } else {
                st.counts[i].get(&node.labels[&c.key]).copied().unwrap_or(0)
            };
            score += cnt as f64 * st.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }
    fn normalize(&self, _s: &CycleState, scores: &mut [i64]) {
        let valid = scores.iter().copied().filter(|s| *s != IGNORED);
        let min = valid.clone().min().unwrap_or(0);
        let max = valid.max().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if *s == IGNORED {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::plugins::testutil::pod_json;
    use serde_json::json;
    use std::sync::Arc;

    fn cluster() -> Cache {
        let mut c = Cache::new();
        for (n, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
            c.upsert_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": n,
                    "labels": {"zone": zone, "kubernetes.io/hostname": n}}}))
                .expect("node"),
            ));
        }
        let existing = pod_json(
            json!({"metadata": {"name": "e1", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c"}]}}),
        );
        c.add_pod(existing, "n1", false);
        c
    }

    fn spread_pod(action: &str) -> Arc<PodInfo> {
        pod_json(
            json!({"metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": action,
                 "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
        )
    }

    #[test]
    fn hard_spread_rejects_crowded_zone() {
        let c = cluster();
        let snap = Snapshot::new(&c);
        let p = spread_pod("DoNotSchedule");
        let mut s = CycleState::default();
        assert!(PodTopologySpread.pre_filter(&mut s, &p, &snap).is_success());
        let f = |n: &str| PodTopologySpread.filter(&s, &p, c.node(n).expect("node"));
        assert_eq!(f("n2").reasons, vec![ERR_CONSTRAINTS]);
        assert!(f("n3").is_success());
    }

    #[test]
    fn soft_spread_prefers_empty_zone() {
        let c = cluster();
        let snap = Snapshot::new(&c);
        let p = spread_pod("ScheduleAnyway");
        let nodes: Vec<&NodeInfo> = ["n1", "n2", "n3"]
            .iter()
            .filter_map(|n| c.node(n))
            .collect();
        let mut s = CycleState::default();
        assert!(
            PodTopologySpread
                .pre_score(&mut s, &p, &nodes, &snap)
                .is_success()
        );
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread.score(&s, &p, n))
            .collect();
        PodTopologySpread.normalize(&s, &mut scores);
        assert!(scores[2] > scores[0]);
        assert_eq!(scores[0], scores[1]);
        assert_eq!(scores[2], MAX_NODE_SCORE);
    }
}
