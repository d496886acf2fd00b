//! The node-local plugins: NodeUnschedulable, NodeName, NodePorts, TaintToleration and
//! NodeAffinity (filters and, for the last two, scores), with upstream's reasons and codes.

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PreferredSchedulingTerm, Taint, Toleration};

use crate::cache::NodeInfo;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Snapshot, Status, default_normalize};
use crate::podinfo::PodInfo;
use crate::selectors::{node_term_matches, node_terms_match, tolerated};

pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const ERR_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const ERR_TAINT: &str = "node(s) had untolerated taint(s)";
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// Rejects cordoned nodes unless the pod tolerates the unschedulable taint.
pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
    fn filter(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if tolerated(tolerations(pod), &taint) {
            Status::success()
        } else {
            Status::unresolvable(ERR_UNSCHEDULABLE)
        }
    }
}

/// Rejects nodes other than `spec.nodeName` when it is set.
pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
    fn filter(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.node_name() {
            Some(n) if n != node.name => Status::unresolvable(ERR_NODE_NAME),
            _ => Status::success(),
        }
    }
}

/// Rejects nodes where a requested host port is taken.
pub struct NodePorts;

fn ports_conflict(a: &(String, String, i32), b: &(String, String, i32)) -> bool {
    a.2 == b.2 && a.1 == b.1 && (a.0 == b.0 || a.0 == "0.0.0.0" || b.0 == "0.0.0.0")
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
    fn pre_filter(&self, _s: &mut CycleState, pod: &PodInfo, _snap: &Snapshot) -> Status {
        if pod.host_ports.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn filter(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let clash = pod.host_ports.iter().any(|want| {
            node.used_ports
                .iter()
                .any(|used| ports_conflict(want, used))
        });
        if clash {
            Status::unschedulable(ERR_PORTS)
        } else {
            Status::success()
        }
    }
}

/// Filters on NoSchedule/NoExecute taints; scores by untolerated PreferNoSchedule taints.
pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn filter(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tols = tolerations(pod);
        let bad = node
            .taints
            .iter()
            .any(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(tols, t));
        if bad {
            Status::unresolvable(ERR_TAINT)
        } else {
            Status::success()
        }
    }
    fn score(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let soft = |t: &&Toleration| {
            let e = t.effect.as_deref().unwrap_or_default();
            e.is_empty() || e == "PreferNoSchedule"
        };
        node.taints
            .iter()
            .filter(|taint| {
                taint.effect == "PreferNoSchedule"
                    && !tolerations(pod)
                        .iter()
                        .filter(soft)
                        .any(|t| crate::selectors::tolerates(t, taint))
            })
            .count() as i64
    }
    fn normalize(&self, _s: &CycleState, scores: &mut [i64]) {
        default_normalize(MAX_NODE_SCORE, true, scores);
    }
}

/// nodeSelector and required node affinity (filter); preferred node affinity (score).
pub struct NodeAffinity;

fn required_terms(pod: &PodInfo) -> Option<&[NodeSelectorTerm]> {
    pod.pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .map(|s| s.node_selector_terms.as_slice())
}

fn preferred_terms(pod: &PodInfo) -> &[PreferredSchedulingTerm] {
    (|| {
        pod.pod
            .spec
            .as_ref()?
            .affinity
            .as_ref()?
            .node_affinity
            .as_ref()?
            .preferred_during_scheduling_ignored_during_execution
            .as_deref()
    })()
    .unwrap_or_default()
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
/// Whether the pod restricts its nodes at all (a nodeSelector or required node affinity).
pub fn has_node_constraints(pod: &PodInfo) -> bool {
    let has_selector = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref())
        .is_some_and(|m| !m.is_empty());
    has_selector || required_terms(pod).is_some()
}

pub fn pod_matches_node_affinity(pod: &PodInfo, node: &NodeInfo) -> bool {
    let selector = pod.pod.spec.as_ref().and_then(|s| s.node_selector.as_ref());
    if let Some(sel) = selector
        && sel.iter().any(|(k, v)| node.labels.get(k) != Some(v))
    {
        return false;
    }
    match required_terms(pod) {
        Some(terms) => node_terms_match(terms, &node.labels, &node.name),
        None => true,
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn pre_filter(&self, _s: &mut CycleState, pod: &PodInfo, _snap: &Snapshot) -> Status {
        if !has_node_constraints(pod) {
            return Status::skip();
        }
        Status::success()
    }
    fn filter(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod_matches_node_affinity(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(ERR_NODE_AFFINITY)
        }
    }
    fn pre_score(
        &self,
        _s: &mut CycleState,
        pod: &PodInfo,
        _n: &[&NodeInfo],
        _snap: &Snapshot,
    ) -> Status {
        if preferred_terms(pod).is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn score(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        preferred_terms(pod)
            .iter()
            .filter(|t| t.weight != 0 && node_term_matches(&t.preference, &node.labels, &node.name))
            .map(|t| t.weight as i64)
            .sum()
    }
    fn normalize(&self, _s: &CycleState, scores: &mut [i64]) {
        default_normalize(MAX_NODE_SCORE, false, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node, pod};
    use serde_json::json;

    fn run(p: &dyn Plugin, pod: &PodInfo, node: &NodeInfo) -> Status {
        p.filter(&CycleState::default(), pod, node)
    }

    #[test]
    fn unschedulable_and_toleration() {
        let n = node(json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}));
        let p = pod(json!({"containers": [{"name": "c"}]}));
        assert_eq!(
            run(&NodeUnschedulable, &p, &n).reasons,
            vec![ERR_UNSCHEDULABLE]
        );
        let p = pod(json!({"containers": [{"name": "c"}], "tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert!(run(&NodeUnschedulable, &p, &n).is_success());
    }

    #[test]
    fn taints_filter_and_score() {
        let n = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"}]}}));
        let p = pod(json!({"containers": [{"name": "c"}]}));
        let st = run(&TaintToleration, &p, &n);
        assert_eq!(
            st.code,
            crate::framework::Code::UnschedulableAndUnresolvable
        );
        assert_eq!(st.reasons, vec![ERR_TAINT]);
        let p = pod(json!({"containers": [{"name": "c"}], "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}));
        assert!(run(&TaintToleration, &p, &n).is_success());
        assert_eq!(TaintToleration.score(&CycleState::default(), &p, &n), 1);
    }

    #[test]
    fn node_affinity_required_and_preferred() {
        let n = node(json!({"metadata": {"name": "n", "labels": {"zone": "a", "disk": "ssd"}}}));
        let p = pod(
            json!({"containers": [{"name": "c"}], "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
                    {"weight": 7, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}}]}}}),
        );
        assert!(run(&NodeAffinity, &p, &n).is_success());
        assert_eq!(NodeAffinity.score(&CycleState::default(), &p, &n), 5);
        let p = pod(json!({"containers": [{"name": "c"}], "nodeSelector": {"disk": "hdd"}}));
        assert_eq!(run(&NodeAffinity, &p, &n).reasons, vec![ERR_NODE_AFFINITY]);
    }

    #[test]
    fn host_ports() {
        let mut n = node(json!({"metadata": {"name": "n"}}));
        let used = pod(
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
        );
        n.add_pod(used);
        let p = pod(
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]}]}),
        );
        assert_eq!(run(&NodePorts, &p, &n).reasons, vec![ERR_PORTS]);
        let p = pod(
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]}),
        );
        assert!(run(&NodePorts, &p, &n).is_success());
    }
}
