//! What a new pod charges against compute-resource quotas (upstream's pod quota
//! evaluator): `requests.cpu`/`cpu`, `requests.memory`/`memory`, `limits.cpu`,
//! `limits.memory`, ephemeral storage, hugepages and extended resources, from the pod's
//! effective requests and limits (containers, init containers and sidecars, pod-level
//! resources, overhead); which tracked resources its containers fail to specify; and
//! whether a pod is in a quota's scopes (`spec.scopes`, `spec.scopeSelector`).

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
    // container names sorted and once each, as upstream's string sets print them
    let parts: Vec<String> = missing
        .iter_mut()
        .map(|(name, cs)| {
            cs.sort();
            cs.dedup();
            format!("{name} for: {}", cs.join(","))
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// One scope requirement: `spec.scopes` entries are `Exists`.
struct ScopeRequirement {
    scope: String,
    operator: String,
    values: Vec<String>,
}

fn scope_requirements(quota: &Value) -> Vec<ScopeRequirement> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<ScopeRequirement> = strings(quota.pointer("/spec/scopes"))
        .into_iter()
        .map(|scope| ScopeRequirement {
            scope,
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    if let Some(exprs) = quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
    {
        for e in exprs {
            let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            out.push(ScopeRequirement {
                scope: text("scopeName"),
                operator: text("operator"),
                values: strings(e.get("values")),
            });
        }
    }
    out
}

/// Whether a quota has scopes (only pods can be in them).
pub fn has_scopes(quota: &Value) -> bool {
    !scope_requirements(quota).is_empty()
}

fn is_best_effort(pod: &Value) -> bool {
    let sets_compute = |list: BTreeMap<String, Quantity>| {
        list.iter()
            .any(|(n, q)| (n == "cpu" || n == "memory") && *q > Quantity::zero())
    };
    let mut any = false;
    for list in ["containers", "initContainers"] {
        for c in containers(pod, list) {
            any |= sets_compute(container_list(c, "requests"))
                || sets_compute(container_list(c, "limits"));
        }
    }
    for field in ["requests", "limits"] {
        any |= sets_compute(resource_list(
            pod.pointer(&format!("/spec/resources/{field}")),
        ));
    }
    !any
}

fn uses_cross_namespace_affinity(pod: &Value) -> bool {
    let terms = |kind: &str| {
        let a = pod.pointer(&format!("/spec/affinity/{kind}"));
        let required = a
            .and_then(|a| a.get("requiredDuringSchedulingIgnoredDuringExecution"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let preferred: Vec<Value> = a
            .and_then(|a| a.get("preferredDuringSchedulingIgnoredDuringExecution"))
            .and_then(Value::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(|t| t.get("podAffinityTerm").cloned())
                    .collect()
            })
            .unwrap_or_default();
        required.into_iter().chain(preferred).any(|t| {
            t.get("namespaces")
                .and_then(Value::as_array)
                .is_some_and(|n| !n.is_empty())
                || t.get("namespaceSelector").is_some_and(|s| !s.is_null())
        })
    };
    terms("podAffinity") || terms("podAntiAffinity")
}

fn in_scope(req: &ScopeRequirement, pod: &Value) -> bool {
    let flag = |yes: bool| match req.operator.as_str() {
        "DoesNotExist" => !yes,
        _ => yes,
    };
    let terminating = pod
        .pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|d| d >= 0);
    match req.scope.as_str() {
        "Terminating" => flag(terminating),
        "NotTerminating" => flag(!terminating),
        "BestEffort" => flag(is_best_effort(pod)),
        "NotBestEffort" => flag(!is_best_effort(pod)),
        "CrossNamespacePodAffinity" => flag(uses_cross_namespace_affinity(pod)),
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            match req.operator.as_str() {
                "In" => class.is_some_and(|c| req.values.iter().any(|v| v == c)),
                "NotIn" => !class.is_some_and(|c| req.values.iter().any(|v| v == c)),
                "DoesNotExist" => class.is_none(),
                _ => class.is_some(),
            }
        }
        _ => false,
    }
}

/// Whether a pod is in every scope of the quota (a quota without scopes takes all).
pub fn pod_in_quota_scopes(quota: &Value, pod: &Value) -> bool {
    scope_requirements(quota).iter().all(|r| in_scope(r, pod))
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
            Some("must specify limits.cpu for: b,init")
        );
        assert_eq!(missing_compute(&pod, &["pods"]), None);
    }

    #[test]
    fn scopes() {
        let best_effort = json!({"spec": {"containers": [{"name": "c"}]}});
        let high = json!({"spec": {"priorityClassName": "high", "activeDeadlineSeconds": 10,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
        let q = |spec: Value| json!({"spec": spec});
        let be = q(json!({"scopes": ["BestEffort"]}));
        assert!(pod_in_quota_scopes(&be, &best_effort) && !pod_in_quota_scopes(&be, &high));
        let pc = q(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}));
        assert!(pod_in_quota_scopes(&pc, &high) && !pod_in_quota_scopes(&pc, &best_effort));
        let term = q(json!({"scopes": ["Terminating"]}));
        assert!(pod_in_quota_scopes(&term, &high) && !pod_in_quota_scopes(&term, &best_effort));
        assert!(pod_in_quota_scopes(&q(json!({})), &best_effort));
        assert!(has_scopes(&be) && !has_scopes(&q(json!({}))));
    }
}
