//! Which nodes a DaemonSet's pod belongs on, and the pod for one node: the template's
//! nodeSelector and required node affinity must match the node, and the node's
//! NoSchedule/NoExecute taints must be tolerated (with the tolerations upstream adds to
//! every daemon pod). The pod is pinned by a required node affinity on `metadata.name`,
//! not by `spec.nodeName`, so the scheduler binds it as upstream's does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Taint, Toleration,
};

use crate::common::OwnerInfo;
use crate::common::pods::pod_from_template;

/// The tolerations upstream gives every daemon pod (plus network-unavailable with
/// hostNetwork).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut out = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    out
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => t
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || k == taint.key),
        _ => {
            t.key.as_deref() == Some(taint.key.as_str())
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.clone().unwrap_or_default();
    let num = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(num), values.first().and_then(|x| num(x))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.and_then(num), values.first().and_then(|x| num(x))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let v = node
                .metadata
                .name
                .as_deref()
                .filter(|_| r.key == "metadata.name");
            requirement_matches(r, v)
        })
}

/// Whether the template's nodeSelector and required node affinity select `node`.
pub fn selects(template: &PodTemplateSpec, node: &Node) -> bool {
    let Some(spec) = template.spec.as_ref() else {
        return true;
    };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok =
        required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)));
    selector_ok && affinity_ok
}

/// (should run a new pod there, may keep a running one there).
pub fn placement(template: &PodTemplateSpec, node: &Node) -> (bool, bool) {
    if !selects(template, node) {
        return (false, false);
    }
    let spec = template.spec.clone().unwrap_or_default();
    let mut tolerations = spec.tolerations.clone().unwrap_or_default();
    tolerations.extend(daemon_tolerations(spec.host_network.unwrap_or(false)));
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let untolerated = |effect: &str| {
        taints
            .iter()
            .filter(|t| t.effect == effect)
            .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    };
    let evicting = untolerated("NoExecute");
    (!evicting && !untolerated("NoSchedule"), !evicting)
}

/// The daemon pod for `node` from `template`.
pub fn new_pod(
    owner: &OwnerInfo,
    template: &PodTemplateSpec,
    node: &str,
    labels: &BTreeMap<String, String>,
) -> Pod {
    let mut pod = pod_from_template(template, owner);
    pod.metadata
        .labels
        .get_or_insert_with(Default::default)
        .extend(labels.clone());
    let Some(spec) = pod.spec.as_mut() else {
        return pod;
    };
    let name_req = NodeSelectorRequirement {
        key: "metadata.name".into(),
        operator: "In".into(),
        values: Some(vec![node.to_string()]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: vec![],
        });
    if required.node_selector_terms.is_empty() {
        required
            .node_selector_terms
            .push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_fields = Some(vec![name_req.clone()]);
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for t in daemon_tolerations(spec.host_network.unwrap_or(false)) {
        if !tolerations
            .iter()
            .any(|x| x.key == t.key && x.effect == t.effect)
        {
            tolerations.push(t);
        }
    }
    pod
}

/// The node a daemon pod is pinned to (its name affinity, else `spec.nodeName`).
pub fn node_of(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let required = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    required
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    #[test]
    fn taints_selectors_and_pinning() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"role": "edge"}},
        }))
        .expect("template");
        let plain = node(json!({"metadata": {"name": "a", "labels": {"role": "edge"}}}));
        let other = node(json!({"metadata": {"name": "b", "labels": {"role": "core"}}}));
        let no_schedule = node(
            json!({"metadata": {"name": "c", "labels": {"role": "edge"}},
            "spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}),
        );
        let not_ready = node(
            json!({"metadata": {"name": "d", "labels": {"role": "edge"}},
            "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}),
        );
        assert_eq!(placement(&template, &plain), (true, true));
        assert_eq!(placement(&template, &other), (false, false));
        assert_eq!(placement(&template, &no_schedule), (false, true));
        assert_eq!(
            placement(&template, &not_ready),
            (true, true),
            "daemon tolerations"
        );
        let owner = OwnerInfo {
            api_version: "apps/v1".into(),
            kind: "DaemonSet".into(),
            name: "d".into(),
            namespace: Some("ns".into()),
            uid: "u".into(),
            deleting: false,
        };
        let pod = new_pod(&owner, &template, "a", &BTreeMap::new());
        assert_eq!(node_of(&pod).as_deref(), Some("a"));
        assert!(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_none()
        );
    }
}
