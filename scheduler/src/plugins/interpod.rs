//! InterPodAffinity: required pod affinity and anti-affinity of the incoming pod, the
//! required anti-affinity of pods already running (symmetry), and the preferred terms of
//! both sides as a score, counted per topology domain as upstream.

use std::collections::HashMap;

use serde::Deserialize;

use crate::cache::NodeInfo;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Snapshot, Status};
use crate::podinfo::{AffinityTerm, PodInfo};

pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

type Pairs = HashMap<(String, String), i64>;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InterPodAffinityArgs {
    #[serde(default = "default_hard_weight")]
    pub hard_pod_affinity_weight: i64,
}

fn default_hard_weight() -> i64 {
    1
}

impl Default for InterPodAffinityArgs {
    fn default() -> Self {
        InterPodAffinityArgs {
            hard_pod_affinity_weight: 1,
        }
    }
}

pub struct InterPodAffinity {
    pub args: InterPodAffinityArgs,
}

#[derive(Default)]
struct FilterState {
    existing_anti: Pairs,
    affinity: Pairs,
    anti: Pairs,
    self_match: bool,
}

fn pair(key: &str, node: &NodeInfo) -> Option<(String, String)> {
    node.labels.get(key).map(|v| (key.to_string(), v.clone()))
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, snap: &Snapshot) -> bool {
    let ns = snap.ns_labels(&pod.namespace);
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, ns))
}

impl InterPodAffinity {
    fn filter_state(&self, pod: &PodInfo, snap: &Snapshot) -> FilterState {
        let mut st = FilterState {
            self_match: matches_all(&pod.required_affinity, pod, snap),
            ..Default::default()
        };
        let incoming_ns = snap.ns_labels(&pod.namespace);
        let has_terms =
            !(pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty());
        for node in snap.nodes() {
            if !has_terms && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                for t in &existing.required_anti_affinity {
                    if t.matches(pod, incoming_ns)
                        && let Some(p) = pair(&t.topology_key, node)
                    {
                        *st.existing_anti.entry(p).or_default() += 1;
                    }
                }
                if !has_terms {
                    continue;
                }
                if matches_all(&pod.required_affinity, existing, snap) {
                    for t in &pod.required_affinity {
                        if let Some(p) = pair(&t.topology_key, node) {
                            *st.affinity.entry(p).or_default() += 1;
                        }
                    }
                }
                let ns = snap.ns_labels(&existing.namespace);
                for t in &pod.required_anti_affinity {
                    if t.matches(existing, ns)
                        && let Some(p) = pair(&t.topology_key, node)
                    {
                        *st.anti.entry(p).or_default() += 1;
                    }
                }
            }
        }
        st
    }
}

fn count(m: &Pairs, key: &str, node: &NodeInfo) -> i64 {
    match node.labels.get(key) {
        Some(v) => m.get(&(key.to_string(), v.clone())).copied().unwrap_or(0),
        None => 0,
    }
}

type TopologyScore = HashMap<String, HashMap<String, i64>>;

fn add_term(ts: &mut TopologyScore, t: &AffinityTerm, weight: i64, node: &NodeInfo) {
    if let Some(v) = node.labels.get(&t.topology_key) {
        *ts.entry(t.topology_key.clone())
            .or_default()
            .entry(v.clone())
            .or_default() += weight;
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }
    fn pre_filter(&self, s: &mut CycleState, pod: &PodInfo, snap: &Snapshot) -> Status {
        let has_terms =
            !(pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty());
        if !has_terms && !snap.any_pod_with_affinity() {
            return Status::skip();
        }
        s.write("InterPodAffinity/filter", self.filter_state(pod, snap));
        Status::success()
    }
    fn filter(&self, s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = s.read::<FilterState>("InterPodAffinity/filter") else {
            return Status::success();
        };
        let affinity_ok = pod
            .required_affinity
            .iter()
            .all(|t| count(&st.affinity, &t.topology_key, node) > 0);
        if !(affinity_ok || st.affinity.is_empty() && st.self_match) {
            return Status::unresolvable(ERR_AFFINITY);
        }
        if pod
            .required_anti_affinity
            .iter()
            .any(|t| count(&st.anti, &t.topology_key, node) > 0)
        {
            return Status::unschedulable(ERR_ANTI_AFFINITY);
        }
        let existing = st
            .existing_anti
            .iter()
            .any(|((k, v), c)| *c > 0 && node.labels.get(k) == Some(v));
        if existing {
            return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
    fn pre_score(
        &self,
        s: &mut CycleState,
        pod: &PodInfo,
        _feasible: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status {
        let has_pref =
            !(pod.preferred_affinity.is_empty() && pod.preferred_anti_affinity.is_empty());
        if !has_pref && !snap.any_pod_with_affinity() {
            return Status::skip();
        }
        let incoming_ns = snap.ns_labels(&pod.namespace);
        let hard = self.args.hard_pod_affinity_weight;
        let mut ts = TopologyScore::new();
        for node in snap.nodes() {
            if node.labels.is_empty() || (!has_pref && node.pods_with_affinity == 0) {
                continue;
            }
            for e in &node.pods {
                let ens = snap.ns_labels(&e.namespace);
                for (w, t) in &pod.preferred_affinity {
                    if t.matches(e, ens) {
                        add_term(&mut ts, t, *w as i64, node);
                    }
                }
                for (w, t) in &pod.preferred_anti_affinity {
                    if t.matches(e, ens) {
                        add_term(&mut ts, t, -(*w as i64), node);
                    }
                }
                if hard > 0 {
                    for t in e
                        .required_affinity
                        .iter()
                        .filter(|t| t.matches(pod, incoming_ns))
                    {
                        add_term(&mut ts, t, hard, node);
                    }
                }
                for (w, t) in &e.preferred_affinity {
                    if t.matches(pod, incoming_ns) {
                        add_term(&mut ts, t, *w as i64, node);
                    }
                }
                for (w, t) in &e.preferred_anti_affinity {
                    if t.matches(pod, incoming_ns) {
                        add_term(&mut ts, t, -(*w as i64), node);
                    }
                }
            }
        }
        if ts.is_empty() {
            return Status::skip();
        }
        s.write("InterPodAffinity/score", ts);
        Status::success()
    }
    fn score(&self, s: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(ts) = s.read::<TopologyScore>("InterPodAffinity/score") else {
            return 0;
        };
        ts.iter()
            .filter_map(|(k, vals)| node.labels.get(k).and_then(|v| vals.get(v)))
            .sum()
    }
    fn normalize(&self, _s: &CycleState, scores: &mut [i64]) {
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
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
        for (n, zone) in [("n1", "a"), ("n2", "b")] {
            c.upsert_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": n,
                    "labels": {"zone": zone, "kubernetes.io/hostname": n}}}))
                .expect("node"),
            ));
        }
        c.add_pod(
            pod_json(json!({"metadata": {"name": "db", "namespace": "default", "labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "noisy"}}}]}}}})),
            "n1",
            false,
        );
        c
    }

    fn run(c: &Cache, p: &PodInfo) -> Vec<Status> {
        let pl = InterPodAffinity {
            args: Default::default(),
        };
        let snap = Snapshot::new(c);
        let mut s = CycleState::default();
        pl.pre_filter(&mut s, p, &snap);
        ["n1", "n2"]
            .iter()
            .map(|n| pl.filter(&s, p, c.node(n).expect("n")))
            .collect()
    }

    #[test]
    fn affinity_anti_affinity_and_symmetry() {
        let c = cluster();
        let noisy = pod_json(
            json!({"metadata": {"name": "x", "namespace": "default", "labels": {"app": "noisy"}},
            "spec": {"containers": [{"name": "c"}]}}),
        );
        let st = run(&c, &noisy);
        assert_eq!(st[0].reasons, vec![ERR_EXISTING_ANTI_AFFINITY]);
        assert!(st[1].is_success());

        let near_db = pod_json(json!({"metadata": {"name": "w", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "db"}}}]}}}}));
        let st = run(&c, &near_db);
        assert!(st[0].is_success());
        assert_eq!(st[1].reasons, vec![ERR_AFFINITY]);

        let away = pod_json(json!({"metadata": {"name": "w", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}]}}}}));
        let st = run(&c, &away);
        assert_eq!(st[0].reasons, vec![ERR_ANTI_AFFINITY]);
        assert!(st[1].is_success());
    }

    #[test]
    fn self_affinity_allows_first_pod() {
        let c = cluster();
        let first = pod_json(
            json!({"metadata": {"name": "s", "namespace": "default", "labels": {"app": "cache"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "cache"}}}]}}}}),
        );
        assert!(run(&c, &first).iter().all(|s| s.is_success()));
    }

    #[test]
    fn preferred_scores() {
        let c = cluster();
        let p = pod_json(json!({"metadata": {"name": "w", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm":
                    {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "db"}}}}]}}}}));
        let pl = InterPodAffinity {
            args: Default::default(),
        };
        let snap = Snapshot::new(&c);
        let mut s = CycleState::default();
        let nodes: Vec<&NodeInfo> = ["n1", "n2"].iter().filter_map(|n| c.node(n)).collect();
        assert!(pl.pre_score(&mut s, &p, &nodes, &snap).is_success());
        let mut scores: Vec<i64> = nodes.iter().map(|n| pl.score(&s, &p, n)).collect();
        pl.normalize(&s, &mut scores);
        assert_eq!(scores, vec![100, 0]);
    }
}
