//! InterPodAffinity: required pod affinity and anti-affinity of the incoming pod, the
//! required anti-affinity of pods already running (symmetry), and the preferred terms of
//! both sides as a score, counted per topology domain as upstream.

use std::sync::Arc;

use serde::Deserialize;

use crate::cache::NodeInfo;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Snapshot, Status};
use crate::podinfo::{AffinityTerm, PodInfo};
use crate::topology::{Counts, DomainCounts, Selection, TermKind};

pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

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

/// Per-domain pod counts under one topology key, with the weight each pod carries.
struct Weighted {
    key: String,
    counts: Arc<DomainCounts>,
    weight: i64,
}

impl Weighted {
    /// The weighted count of the node's domain.
    fn on(&self, node: &NodeInfo) -> i64 {
        node.labels
            .get(&self.key)
            .and_then(|v| self.counts.get(v.as_str()))
            .map_or(0, |c| c * self.weight)
    }
}

struct FilterState {
    /// Domains of existing pods whose required anti-affinity selects the incoming pod.
    existing_anti: Vec<Weighted>,
    /// Domains of pods matching all of the incoming pod's required affinity terms.
    affinity: Counts,
    /// Per required anti-affinity term of the incoming pod: domains of pods it selects.
    anti: Vec<Counts>,
    self_match: bool,
}

fn single(t: &AffinityTerm) -> Selection {
    Selection::Terms(vec![t.clone()])
}

impl InterPodAffinity {
    fn filter_state(&self, pod: &PodInfo, snap: &Snapshot) -> FilterState {
        let incoming_ns = snap.ns_labels(&pod.namespace);
        let existing_anti = snap
            .terms()
            .0
            .iter()
            .filter(|((kind, t), (_, counts))| {
                *kind == TermKind::RequiredAntiAffinity
                    && !counts.is_empty()
                    && t.matches(pod, incoming_ns)
            })
            .map(|((_, t), (_, counts))| Weighted {
                key: t.topology_key.clone(),
                counts: counts.clone(),
                weight: 1,
            })
            .collect();
        let affinity = if pod.required_affinity.is_empty() {
            Counts::default()
        } else {
            snap.counts(&Selection::Terms(pod.required_affinity.clone()))
        };
        FilterState {
            existing_anti,
            affinity,
            anti: pod
                .required_anti_affinity
                .iter()
                .map(|t| snap.counts(&single(t)))
                .collect(),
            self_match: Selection::Terms(pod.required_affinity.clone())
                .selects(pod, snap.cache.namespaces()),
        }
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
        // Every topology key of the required affinity terms must be on the node, even
        // for the first pod of a group with affinity to itself.
        let keys_present = pod
            .required_affinity
            .iter()
            .all(|t| node.labels.contains_key(&t.topology_key));
        let affinity_ok = keys_present
            && (pod
                .required_affinity
                .iter()
                .all(|t| st.affinity.get(&t.topology_key, &node.labels) > 0)
                || !st.affinity.any() && st.self_match);
        if !affinity_ok {
            return Status::unresolvable(ERR_AFFINITY);
        }
        if pod
            .required_anti_affinity
            .iter()
            .zip(&st.anti)
            .any(|(t, c)| c.get(&t.topology_key, &node.labels) > 0)
        {
            return Status::unschedulable(ERR_ANTI_AFFINITY);
        }
        if st.existing_anti.iter().any(|w| w.on(node) > 0) {
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
        let mut weighted = Vec::new();
        let mut push = |key: &str, counts: &Arc<DomainCounts>, weight: i64| {
            if !counts.is_empty() && weight != 0 {
                weighted.push(Weighted {
                    key: key.to_string(),
                    counts: counts.clone(),
                    weight,
                });
            }
        };
        // The incoming pod's preferred terms, over the pods they select.
        let own = pod
            .preferred_affinity
            .iter()
            .map(|(w, t)| (*w as i64, t))
            .chain(
                pod.preferred_anti_affinity
                    .iter()
                    .map(|(w, t)| (-(*w as i64), t)),
            );
        for (w, t) in own {
            for (key, counts) in &snap.counts(&single(t)).0 {
                push(key, counts, w);
            }
        }
        // Existing pods' terms that select the incoming pod.
        let incoming_ns = snap.ns_labels(&pod.namespace);
        for ((kind, t), (_, counts)) in &snap.terms().0 {
            let weight = match kind {
                TermKind::RequiredAffinity => self.args.hard_pod_affinity_weight,
                TermKind::RequiredAntiAffinity => continue,
                TermKind::Preferred(w) => *w as i64,
                TermKind::PreferredAnti(w) => -(*w as i64),
            };
            if weight != 0 && t.matches(pod, incoming_ns) {
                push(&t.topology_key, counts, weight);
            }
        }
        if weighted.is_empty() {
            return Status::skip();
        }
        s.write("InterPodAffinity/score", weighted);
        Status::success()
    }
    fn score(&self, s: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        s.read::<Vec<Weighted>>("InterPodAffinity/score")
            .map_or(0, |ws| ws.iter().map(|w| w.on(node)).sum())
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
    fn self_affinity_needs_the_topology_key_on_the_node() {
        let mut c = cluster();
        c.upsert_node(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "bare"}})).expect("node"),
        ));
        let first = pod_json(
            json!({"metadata": {"name": "s", "namespace": "default", "labels": {"app": "cache"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "cache"}}}]}}}}),
        );
        let pl = InterPodAffinity {
            args: Default::default(),
        };
        let snap = Snapshot::new(&c);
        let mut s = CycleState::default();
        pl.pre_filter(&mut s, &first, &snap);
        let st = pl.filter(&s, &first, c.node("bare").expect("bare"));
        assert_eq!(st.reasons, vec![ERR_AFFINITY]);
        assert!(
            pl.filter(&s, &first, c.node("n1").expect("n1"))
                .is_success()
        );
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
