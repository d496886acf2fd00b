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
const ZONE: &str = "topology.kubernetes.io/zone";
const IGNORED: i64 = i64::MIN;

struct Constraint {
    max_skew: i64,
    key: String,
    selector: Selector,
    min_domains: usize,
    honor_affinity: bool,
    honor_taints: bool,
}

/// Compiles the constraints of `list` with `action`; `selector` replaces each one's own
/// (the default constraints carry none: the pod's Services and controller give it).
fn compile(
    list: &[TopologySpreadConstraint],
    pod: &PodInfo,
    action: &str,
    selector: Option<&Selector>,
) -> Vec<Constraint> {
    list.iter()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c| {
            let mut selector = match selector {
                Some(s) => s.clone(),
                None => Selector::new(c.label_selector.as_ref()),
            };
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

/// The cache's counts of the pods a constraint counts, when its inclusion policies
/// exclude no node for this pod (then every node with the key counts).
fn memo_counts(c: &Constraint, pod: &PodInfo, snap: &Snapshot) -> Option<Arc<DomainCounts>> {
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
    /// System defaults: nodes lacking a key are scored by the other constraints.
    lenient: bool,
}

/// The plugin, with its `PodTopologySpreadArgs`.
pub struct PodTopologySpread {
    /// The constraints a pod without any of its own is spread by.
    defaults: Vec<TopologySpreadConstraint>,
    /// Whether those are upstream's system defaults (`defaultingType: System`): then a
    /// node lacking one of their keys is still scored by the others.
    system: bool,
}

impl Default for PodTopologySpread {
    /// `defaultingType: System`: spread by node (maxSkew 3) and by zone (maxSkew 5),
    /// softly, as upstream.
    fn default() -> Self {
        let soft = |key: &str, max_skew| TopologySpreadConstraint {
            topology_key: key.to_string(),
            max_skew,
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        };
        PodTopologySpread {
            defaults: vec![soft(HOSTNAME, 3), soft(ZONE, 5)],
            system: true,
        }
    }
}

/// `PodTopologySpreadArgs` of the scheduler configuration.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SpreadArgs {
    #[serde(default)]
    default_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default)]
    defaulting_type: Option<String>,
}

impl PodTopologySpread {
    /// The plugin for `args`, checked as upstream validates them.
    pub fn new(args: SpreadArgs) -> Result<Self, String> {
        let field = "PodTopologySpreadArgs";
        match args.defaulting_type.as_deref().unwrap_or("System") {
            "System" if !args.default_constraints.is_empty() => Err(format!(
                "{field}.defaultConstraints: Invalid value: \"{} constraint(s)\": when .defaultingType is \"System\", .defaultConstraints must be empty",
                args.default_constraints.len()
            )),
            "System" => Ok(Self::default()),
            "List" => {
                for (i, c) in args.default_constraints.iter().enumerate() {
                    let at = format!("{field}.defaultConstraints[{i}]");
                    if c.label_selector.is_some() {
                        return Err(format!(
                            "{at}.labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"
                        ));
                    }
                    if c.max_skew <= 0 {
                        return Err(format!(
                            "{at}.maxSkew: Invalid value: {}: must be greater than zero",
                            c.max_skew
                        ));
                    }
                    if c.topology_key.is_empty() {
                        return Err(format!(
                            "{at}.topologyKey: Required value: can not be empty"
                        ));
                    }
                    if !matches!(
                        c.when_unsatisfiable.as_str(),
                        "DoNotSchedule" | "ScheduleAnyway"
                    ) {
                        return Err(format!(
                            "{at}.whenUnsatisfiable: Unsupported value: \"{}\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\"",
                            c.when_unsatisfiable
                        ));
                    }
                }
                Ok(PodTopologySpread {
                    defaults: args.default_constraints,
                    system: false,
                })
            }
            other => Err(format!(
                "{field}.defaultingType: Unsupported value: \"{other}\": supported values: \"List\", \"System\""
            )),
        }
    }

    /// The pod's constraints with `action`, or, when it has none at all, the defaults
    /// with the selector of its Services and controller (none when nothing selects it).
    /// The flag tells whether nodes lacking a key are still scored.
    fn constraints(&self, pod: &PodInfo, action: &str, snap: &Snapshot) -> (Vec<Constraint>, bool) {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if !own.is_empty() {
            return (compile(own, pod, action, None), false);
        }
        if !self.defaults.iter().any(|c| c.when_unsatisfiable == action) {
            return (vec![], false);
        }
        let selector = snap.cache.owners.default_selector(pod);
        if selector.is_empty() {
            return (vec![], false);
        }
        (
            compile(&self.defaults, pod, action, Some(&selector)),
            self.system,
        )
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn pre_filter(&self, s: &mut CycleState, pod: &PodInfo, snap: &Snapshot) -> Status {
        let (cs, _) = self.constraints(pod, "DoNotSchedule", snap);
        if cs.is_empty() {
            return Status::skip();
        }
        // Per constraint: the eligible domains, and the matching pods in each. With one
        // constraint whose inclusion policies exclude no node, the eligible domains are
        // every value of its key, known from the cache, and the counts (only of domains
        // with pods) are the cache's; otherwise every eligible domain is entered, at zero
        // first, and the pods are counted here.
        let single = match cs.as_slice() {
            [c] => memo_counts(c, pod, snap),
            _ => None,
        };
        let (counts, domains) = if let Some(c) = single {
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
        let (cs, lenient) = self.constraints(pod, "ScheduleAnyway", snap);
        if cs.is_empty() {
            return Status::skip();
        }
        // The nodes scored: those with every key, or with the system defaults every
        // feasible node (a node without a zone is still spread by hostname). A node
        // lacking a key counts as its "" domain in the normalizing weights, as upstream.
        let mut domains = vec![HashSet::<&str>::new(); cs.len()];
        let mut hosts = 0usize;
        for n in feasible.iter().filter(|n| lenient || has_all_keys(&cs, n)) {
            hosts += 1;
            for (i, c) in cs.iter().enumerate() {
                domains[i].insert(n.labels.get(&c.key).map_or("", String::as_str));
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
        // Per constraint, the matching pods per domain (hostname's are counted per node
        // in score). The cache's counts serve a constraint no inclusion policy narrows,
        // unless the other constraints' keys narrow the nodes that count (several
        // constraints of the pod's own); the others are counted in one pass.
        let mut counts: Vec<Option<Arc<DomainCounts>>> = cs
            .iter()
            .map(|c| {
                if c.key == HOSTNAME {
                    Some(Arc::new(DomainCounts::new()))
                } else if lenient || cs.len() == 1 {
                    memo_counts(c, pod, snap)
                } else {
                    None
                }
            })
            .collect();
        if counts.iter().any(Option::is_none) {
            let mut scanned = vec![DomainCounts::new(); cs.len()];
            for (node, existing) in snap.pods_in_namespace(&pod.namespace) {
                if !lenient && !has_all_keys(&cs, node) {
                    continue;
                }
                for (i, c) in cs.iter().enumerate() {
                    let Some(v) = node.labels.get(&c.key) else {
                        continue;
                    };
                    if counts[i].is_none()
                        && domains[i].contains(v.as_str())
                        && c.counts(pod, existing)
                        && c.includes(pod, node)
                    {
                        bump(&mut scanned[i], v);
                    }
                }
            }
            for (slot, m) in counts.iter_mut().zip(scanned) {
                slot.get_or_insert_with(|| Arc::new(m));
            }
        }
        let counts = counts.into_iter().flatten().collect();
        s.write(
            "PodTopologySpread/score",
            ScoreState {
                constraints: cs,
                counts,
                weights,
                lenient,
            },
        );
        Status::success()
    }
    fn score(&self, s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(st) = s.read::<ScoreState>("PodTopologySpread/score") else {
            return 0;
        };
        if !st.lenient && !has_all_keys(&st.constraints, node) {
            return IGNORED;
        }
        let mut score = 0.0;
        for (i, c) in st.constraints.iter().enumerate() {
            let Some(v) = node.labels.get(&c.key) else {
                continue;
            };
            let cnt = if c.key == HOSTNAME {
                c.count_on(pod, node)
            } else {
                st.counts[i].get(v).copied().unwrap_or(0)
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
        assert!(
            PodTopologySpread::default()
                .pre_filter(&mut s, &p, &snap)
                .is_success()
        );
        let f = |n: &str| PodTopologySpread::default().filter(&s, &p, c.node(n).expect("node"));
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
            PodTopologySpread::default()
                .pre_score(&mut s, &p, &nodes, &snap)
                .is_success()
        );
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread::default().score(&s, &p, n))
            .collect();
        PodTopologySpread::default().normalize(&s, &mut scores);
        assert!(scores[2] > scores[0]);
        assert_eq!(scores[0], scores[1]);
        assert_eq!(scores[2], MAX_NODE_SCORE);
    }

    /// Scores of `p` over `nodes` after pre_score and normalize, or `None` when the plugin
    /// skips the pod.
    fn scores(
        plugin: &PodTopologySpread,
        c: &Cache,
        p: &PodInfo,
        nodes: &[&str],
    ) -> Option<Vec<i64>> {
        let snap = Snapshot::new(c);
        let nodes: Vec<&NodeInfo> = nodes.iter().filter_map(|n| c.node(n)).collect();
        let mut s = CycleState::default();
        let st = plugin.pre_score(&mut s, p, &nodes, &snap);
        if !st.is_success() {
            return None;
        }
        let mut scores: Vec<i64> = nodes.iter().map(|n| plugin.score(&s, p, n)).collect();
        plugin.normalize(&s, &mut scores);
        Some(scores)
    }

    /// n1, n2 in zone a, n3 in zone b, n4 without a zone; two pods of ReplicaSet web-1
    /// on n1.
    fn replicaset_cluster() -> Cache {
        let mut c = Cache::new();
        for (n, zone) in [
            ("n1", Some("a")),
            ("n2", Some("a")),
            ("n3", Some("b")),
            ("n4", None),
        ] {
            let mut labels = json!({"kubernetes.io/hostname": n});
            if let Some(z) = zone {
                labels[ZONE] = json!(z);
            }
            c.upsert_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": n, "labels": labels}}))
                    .expect("node"),
            ));
        }
        for i in 0..2 {
            c.add_pod(replica(&format!("e{i}")), "n1", false);
        }
        // a pod the ReplicaSet's selector does not select, on n3
        c.add_pod(
            pod_json(json!({"metadata": {"name": "other", "namespace": "default",
                "labels": {"app": "db"}}, "spec": {"containers": [{"name": "c"}]}})),
            "n3",
            false,
        );
        let rs = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        };
        c.owners.set(
            crate::owners::Kind::ReplicaSet,
            "default",
            "web-1",
            Some(crate::owners::OwnerSelector::Selector(Selector::new(Some(
                &rs,
            )))),
        );
        c
    }

    fn replica(name: &str) -> Arc<PodInfo> {
        pod_json(json!({"metadata": {"name": name, "namespace": "default",
            "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-1", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c"}]}}))
    }

    #[test]
    fn system_defaults_spread_a_replicaset_by_node_and_zone() {
        let c = replicaset_cluster();
        let got = scores(
            &PodTopologySpread::default(),
            &c,
            &replica("p"),
            &["n1", "n2", "n3", "n4"],
        );
        // upstream's arithmetic: hostname (maxSkew 3) weight ln(4+2), zone (maxSkew 5)
        // weight ln(3+2) (domains a, b, and "" for n4); raw scores 13, 9, 6 and 2 (n4 is
        // scored by hostname alone), normalized 100 * (max + min - s) / max
        assert_eq!(got, Some(vec![15, 46, 69, 100]));
        // the defaults never filter
        let mut s = CycleState::default();
        let snap = Snapshot::new(&c);
        assert!(
            PodTopologySpread::default()
                .pre_filter(&mut s, &replica("p"), &snap)
                .code
                == crate::framework::Code::Skip
        );
    }

    #[test]
    fn no_defaults_without_an_owner_or_with_own_constraints() {
        let c = replicaset_cluster();
        let bare = pod_json(json!({"metadata": {"name": "p", "namespace": "default",
            "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(
            scores(&PodTopologySpread::default(), &c, &bare, &["n1", "n3"]),
            None
        );
        // defaultingType List with no constraints: nothing by default
        let list = PodTopologySpread::new(
            serde_json::from_value(json!({"defaultingType": "List"})).expect("args"),
        )
        .expect("valid");
        assert_eq!(scores(&list, &c, &replica("p"), &["n1", "n3"]), None);
        // a pod with constraints of its own is spread by them only: n4 lacks the zone
        // key and is ignored
        let own = pod_json(json!({"metadata": {"name": "p", "namespace": "default",
            "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-1", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway",
                 "labelSelector": {"matchLabels": {"app": "web"}}}]}}));
        let got = scores(&PodTopologySpread::default(), &c, &own, &["n1", "n3", "n4"]);
        assert_eq!(got, Some(vec![0, 100, 0]));
    }

    #[test]
    fn several_own_constraints_are_counted_from_the_pods() {
        // two constraints of the pod's own: the zone counts come from walking the pods,
        // only those on nodes with both keys; n4 lacks the zone and is ignored
        let c = replicaset_cluster();
        let p = pod_json(json!({"metadata": {"name": "p", "namespace": "default",
            "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway",
                 "labelSelector": {"matchLabels": {"app": "web"}}},
                {"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway",
                 "labelSelector": {"matchLabels": {"app": "web"}}}]}}));
        // weights ln(2+2) for zones a and b, ln(3+2) for three hosts; raw 6, 3, 0
        let got = scores(
            &PodTopologySpread::default(),
            &c,
            &p,
            &["n1", "n2", "n3", "n4"],
        );
        assert_eq!(got, Some(vec![0, 50, 100, 0]));
    }

    #[test]
    fn list_defaults_are_validated_and_applied() {
        let bad = |v: serde_json::Value| {
            PodTopologySpread::new(serde_json::from_value(v).expect("args")).err()
        };
        assert!(
            bad(json!({"defaultingType": "System", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}))
            .is_some_and(|e| e.contains("must be empty"))
        );
        assert!(
            bad(json!({"defaultingType": "Sometimes"}))
                .is_some_and(|e| e.contains("Unsupported value"))
        );
        assert!(
            bad(json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {}}]}))
            .is_some_and(|e| e.contains("must not define a selector"))
        );
        // a hard default constraint filters the ReplicaSet's pods
        let hard = PodTopologySpread::new(
            serde_json::from_value(json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}]}))
            .expect("args"),
        )
        .expect("valid");
        let c = replicaset_cluster();
        let snap = Snapshot::new(&c);
        let mut s = CycleState::default();
        let p = replica("p");
        assert!(hard.pre_filter(&mut s, &p, &snap).is_success());
        let f = |n: &str| hard.filter(&s, &p, c.node(n).expect("node"));
        assert_eq!(f("n2").reasons, vec![ERR_CONSTRAINTS]);
        assert!(f("n3").is_success());
        assert_eq!(f("n4").reasons, vec![ERR_MISSING_LABEL]);
    }
}
