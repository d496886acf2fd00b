//! What a pod charges against a quota (upstream's pod evaluator): `count/pods` always,
//! `pods` and its compute resources (requests and limits of cpu, memory,
//! ephemeral-storage, hugepages, extended resources) while it is not terminal, and
//! whether it is in a quota scope (Terminating, BestEffort, PriorityClass, ...).

use k8s_openapi::api::core::v1::{Container, Pod, PodAffinityTerm};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::quantity::Quantity;
use super::usage::{
    ResourceList, ScopeRequirement, add_into, is_extended, parse_list, selector_matches,
};

fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Whether a pod is still charged to quota (upstream's `QuotaV1Pod`): not terminal, and
/// not stuck terminating past its grace period.
pub fn pod_charged(pod: &Pod, now: Timestamp) -> bool {
    if matches!(pod_phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    if let (Some(deleted), Some(grace)) = (
        pod.metadata.deletion_timestamp.as_ref(),
        pod.metadata.deletion_grace_period_seconds,
    ) && now > deleted.0 + SignedDuration::from_secs(grace)
    {
        return false;
    }
    true
}

fn add_list(total: &mut ResourceList, more: &ResourceList) {
    add_into(total, more);
}

fn max_list(total: &mut ResourceList, more: &ResourceList) {
    for (name, q) in more {
        match total.get(name) {
            Some(current) if current >= q => {}
            _ => {
                total.insert(name.clone(), *q);
            }
        }
    }
}

/// A pod's effective requests or limits (upstream's `PodRequests`/`PodLimits`): the
/// containers' sum, raised to what init containers need (restartable sidecars run
/// alongside the rest), plus overhead (for limits only where a limit is set).
fn pod_resources(pod: &Pod, pick: fn(&Container) -> ResourceList, limits: bool) -> ResourceList {
    let Some(spec) = pod.spec.as_ref() else {
        return ResourceList::new();
    };
    let mut total = ResourceList::new();
    for c in &spec.containers {
        add_list(&mut total, &pick(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init = ResourceList::new();
    for c in spec.init_containers.iter().flatten() {
        let own = pick(c);
        let needed = if c.restart_policy.as_deref() == Some("Always") {
            add_list(&mut total, &own);
            add_list(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut tmp = own;
            add_list(&mut tmp, &sidecars);
            tmp
        };
        max_list(&mut init, &needed);
    }
    max_list(&mut total, &init);
    // pod-level resources, where set, stand for the pod's cpu and memory
    let pod_level = spec.resources.as_ref().map(|r| {
        parse_list(if limits {
            r.limits.as_ref()
        } else {
            r.requests.as_ref()
        })
    });
    for (name, q) in pod_level.into_iter().flatten() {
        if name == "cpu" || name == "memory" {
            total.insert(name, q);
        }
    }
    let overhead = parse_list(spec.overhead.as_ref());
    for (name, q) in overhead {
        match total.get_mut(&name) {
            Some(v) => v.add(&q),
            None if !limits => {
                total.insert(name, q);
            }
            None => {}
        }
    }
    total
}

fn requests_of(c: &Container) -> ResourceList {
    parse_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn limits_of(c: &Container) -> ResourceList {
    parse_list(c.resources.as_ref().and_then(|r| r.limits.as_ref()))
}

/// What a pod charges: `count/pods` always; `pods` and compute resources while it is
/// charged (see [`pod_charged`]).
pub fn pod_usage(pod: &Pod, now: Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/pods".into(), Quantity::count(1));
    if !pod_charged(pod, now) {
        return out;
    }
    let requests = pod_resources(pod, requests_of, false);
    let limits = pod_resources(pod, limits_of, true);
    let mut compute = ResourceList::new();
    compute.insert("pods".into(), Quantity::count(1));
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(name) {
            compute.insert(name.into(), *q);
            compute.insert(format!("requests.{name}"), *q);
        }
        if let Some(q) = limits.get(name) {
            compute.insert(format!("limits.{name}"), *q);
        }
    }
    for (name, q) in &requests {
        if name.starts_with("hugepages-") {
            compute.insert(name.clone(), *q);
            compute.insert(format!("requests.{name}"), *q);
        }
        if is_extended(name) {
            compute.insert(format!("requests.{name}"), *q);
        }
    }
    add_into(&mut out, &compute);
    out
}

/// Upstream's BestEffort QoS class: no container asks for or limits cpu or memory.
pub fn is_best_effort(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let sets_compute = |list: &ResourceList| {
        list.iter()
            .any(|(n, q)| (n == "cpu" || n == "memory") && *q > Quantity::zero())
    };
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut lists: Vec<ResourceList> = containers
        .flat_map(|c| [requests_of(c), limits_of(c)])
        .collect();
    if let Some(r) = spec.resources.as_ref() {
        lists.push(parse_list(r.requests.as_ref()));
        lists.push(parse_list(r.limits.as_ref()));
    }
    !lists.iter().any(sets_compute)
}

fn is_terminating(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .is_some_and(|d| d >= 0)
}

fn cross_namespace(term: &PodAffinityTerm) -> bool {
    term.namespaces.as_ref().is_some_and(|n| !n.is_empty()) || term.namespace_selector.is_some()
}

fn uses_cross_namespace_affinity(pod: &Pod) -> bool {
    let Some(affinity) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return false;
    };
    let terms = |required: Option<&Vec<PodAffinityTerm>>,
                 preferred: Option<Vec<&PodAffinityTerm>>| {
        required.into_iter().flatten().any(cross_namespace)
            || preferred.into_iter().flatten().any(cross_namespace)
    };
    let affinity_uses = affinity.pod_affinity.as_ref().is_some_and(|a| {
        terms(
            a.required_during_scheduling_ignored_during_execution
                .as_ref(),
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
                .map(|w| w.iter().map(|t| &t.pod_affinity_term).collect()),
        )
    });
    let anti_uses = affinity.pod_anti_affinity.as_ref().is_some_and(|a| {
        terms(
            a.required_during_scheduling_ignored_during_execution
                .as_ref(),
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
                .map(|w| w.iter().map(|t| &t.pod_affinity_term).collect()),
        )
    });
    affinity_uses || anti_uses
}

/// Whether a pod is in a quota scope (upstream's `podMatchesScopeFunc`).
pub fn pod_matches_scope(req: &ScopeRequirement, pod: &Pod) -> bool {
    match req.scope.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = pod
                .spec
                .as_ref()
                .and_then(|s| s.priority_class_name.as_deref())
                .filter(|c| !c.is_empty());
            selector_matches(req, class)
        }
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resourcequota::usage::usage_stats;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn show(list: &ResourceList) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }

    fn req(scope: &str, op: &str, values: &[&str]) -> ScopeRequirement {
        ScopeRequirement {
            scope: scope.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn pod_usage_sums_containers_and_init_containers() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                            "limits": {"cpu": "1"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m", "example.com/gpu": "1",
                                                         "hugepages-2Mi": "4Mi"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "2", "memory": "100Mi"}}},
            ],
        }}));
        let used = show(&pod_usage(&p, Timestamp::now()));
        assert_eq!(used["pods"], "1");
        assert_eq!(used["count/pods"], "1");
        assert_eq!(used["requests.cpu"], "2", "init container needs more");
        assert_eq!(used["cpu"], "2");
        assert_eq!(used["requests.memory"], "1Gi");
        assert_eq!(used["limits.cpu"], "1");
        assert_eq!(used["requests.example.com/gpu"], "1");
        assert_eq!(used["requests.hugepages-2Mi"], "4Mi");
        assert!(!used.contains_key("limits.memory"));
    }

    #[test]
    fn terminal_pods_only_count_as_objects() {
        let p = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]},
            "status": {"phase": "Succeeded"}}));
        let used = show(&pod_usage(&p, Timestamp::now()));
        assert_eq!(used.len(), 1);
        assert_eq!(used["count/pods"], "1");
    }

    #[test]
    fn stats_start_at_zero_and_respect_scopes() {
        let best_effort = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        let burstable = pod(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}}));
        let resources = vec!["pods".to_string(), "requests.cpu".to_string()];
        let now = Timestamp::now();
        let all = usage_stats(
            [&best_effort, &burstable],
            &resources,
            &[],
            |r, p| pod_matches_scope(r, p),
            |p| pod_usage(p, now),
        );
        assert_eq!(show(&all)["pods"], "2");
        assert_eq!(show(&all)["requests.cpu"], "100m");
        let scoped = usage_stats(
            [&best_effort, &burstable],
            &resources,
            &[req("BestEffort", "Exists", &[])],
            |r, p| pod_matches_scope(r, p),
            |p| pod_usage(p, now),
        );
        assert_eq!(show(&scoped)["pods"], "1");
        assert_eq!(show(&scoped)["requests.cpu"], "0");
    }

    #[test]
    fn pod_scopes() {
        let p = pod(
            json!({"spec": {"activeDeadlineSeconds": 10, "priorityClassName": "high",
            "containers": [{"name": "a", "resources": {"limits": {"memory": "1Gi"}}}]}}),
        );
        assert!(pod_matches_scope(&req("Terminating", "Exists", &[]), &p));
        assert!(!pod_matches_scope(
            &req("NotTerminating", "Exists", &[]),
            &p
        ));
        assert!(!pod_matches_scope(&req("BestEffort", "Exists", &[]), &p));
        assert!(pod_matches_scope(&req("NotBestEffort", "Exists", &[]), &p));
        assert!(pod_matches_scope(
            &req("PriorityClass", "In", &["high"]),
            &p
        ));
        assert!(!pod_matches_scope(
            &req("PriorityClass", "NotIn", &["high"]),
            &p
        ));
        assert!(pod_matches_scope(&req("PriorityClass", "Exists", &[]), &p));
        let plain = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        assert!(pod_matches_scope(
            &req("PriorityClass", "DoesNotExist", &[]),
            &plain
        ));
        assert!(pod_matches_scope(
            &req("PriorityClass", "NotIn", &["high"]),
            &plain
        ));
        assert!(!pod_matches_scope(
            &req("PriorityClass", "In", &["high"]),
            &plain
        ));
    }
}
