//! What a new pod charges against compute-resource quotas (upstream's pod quota
//! evaluator): `requests.cpu`/`cpu`, `requests.memory`/`memory`, `limits.cpu`,
//! `limits.memory`, ephemeral storage, hugepages and extended resources, from the pod's
//! effective requests and limits (containers, init containers and sidecars, pod-level
//! resources, overhead); and which tracked resources its containers fail to specify.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::limitranger::resources::{container_list, containers, pod_total, resource_list};
use crate::quantity::Quantity;

/// Resources a quota can only track if every container states them.
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.starts_with("kubernetes.io/") && !name.starts_with("requests.")
}

/// The quota names one container's (or pod's) requests and limits charge.
fn usage(
    requests: &BTreeMap<String, Quantity>,
    limits: &BTreeMap<String, Quantity>,
) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    for (name, q) in requests {
        match name.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                out.insert(name.clone(), *q);
                out.insert(format!("requests.{name}"), *q);
            }
            n if n.starts_with("hugepages-") || is_extended(n) => {
                out.insert(format!("requests.{name}"), *q);
            }
            _ => {}
        }
    }
    for (name, q) in limits {
        if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") {
            out.insert(format!("limits.{name}"), *q);
        }
    }
    out
}

/// The compute usage of a new pod.
pub fn pod_compute_usage(pod: &Value) -> BTreeMap<String, Quantity> {
    let mut requests = pod_total(pod, "requests");
    let mut limits = pod_total(pod, "limits");
    let overhead = resource_list(pod.pointer("/spec/overhead"));
    for (name, q) in &overhead {
        requests
            .entry(name.clone())
            .or_insert_with(Quantity::zero)
            .add(q);
        if let Some(l) = limits.get_mut(name) {
            l.add(q);
        }
    }
    usage(&requests, &limits)
}

/// Upstream's `must specify ...` text when a quota tracks compute resources (`hard`
/// names) that some container does not state, e.g.
/// `must specify limits.cpu for: app; requests.cpu for: app,sidecar`.
pub fn missing_compute(pod: &Value, hard: &[&str]) -> Option<String> {
    let required: BTreeSet<&str> = hard
        .iter()
        .copied()
        .filter(|n| MUST_SPECIFY.contains(n))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for list in ["initContainers", "containers"] {
        for c in containers(pod, list) {
            let have = usage(&container_list(c, "requests"), &container_list(c, "limits"));
            for name in &required {
                if !have.contains_key(*name) {
                    let cname = c
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    missing.entry(name).or_default().push(cname);
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(name, cs)| format!("{name} for: {}", cs.join(",")))
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_and_missing() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "2"}}}],
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
            ],
            "overhead": {"cpu": "100m"},
        }});
        let u = pod_compute_usage(&pod);
        let shown = |k: &str| u.get(k).map(ToString::to_string);
        // the init container's 2 cpu is more than the containers' 750m, plus overhead
        assert_eq!(shown("requests.cpu").as_deref(), Some("2100m"));
        assert_eq!(shown("cpu").as_deref(), Some("2100m"));
        assert_eq!(shown("requests.memory").as_deref(), Some("64Mi"));
        assert_eq!(shown("limits.cpu").as_deref(), Some("1100m"));
        assert_eq!(
            missing_compute(&pod, &["requests.cpu", "limits.cpu", "pods"]).as_deref(),
            Some("must specify limits.cpu for: init,b")
        );
        assert_eq!(missing_compute(&pod, &["pods"]), None);
    }
}
