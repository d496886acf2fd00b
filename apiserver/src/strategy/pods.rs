//! Pod rules: initial status (phase, QoS class) and graceful deletion.

use serde_json::{Value, json};

/// Upstream's QoS class from the containers' requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/spec/{f}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant =
            |m: Option<&serde_json::Map<String, Value>>, k: &str| m.and_then(|m| m.get(k)).cloned();
        for r in ["cpu", "memory"] {
            let (q, l) = (relevant(req, r), relevant(lim, r));
            if q.is_some() || l.is_some() {
                any = true;
            }
            // requests default to limits, so a missing request with a limit is equal
            match (q, l) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

pub fn prepare_for_create(pod: &mut Value) {
    let qos = qos_class(pod);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
}

/// A pod on a node gets its grace period; one never scheduled, or already finished, goes
/// at once.
pub fn grace_period(pod: &Value, requested: Option<i64>) -> Option<i64> {
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !scheduled || matches!(phase, "Succeeded" | "Failed") {
        return Some(0);
    }
    let default = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    // upstream turns a requested 0 into 1 unless forced by the kubelet's final delete
    Some(requested.unwrap_or(default).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_spec_changes_bump_the_generation() {
        let r = crate::registry::Registry::with_builtins();
        let pods = r.get("", "v1", "pods").expect("pods");
        let old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}});
        let mut status_only = old.clone();
        status_only["status"]["phase"] = json!("Running");
        status_only["metadata"]["labels"] = json!({"x": "y"});
        assert!(!super::super::spec_changed(&pods, &old, &status_only));
        let mut spec = old.clone();
        spec["spec"]["activeDeadlineSeconds"] = json!(5);
        assert!(super::super::spec_changed(&pods, &old, &spec));
        let mut removed = old.clone();
        removed.as_object_mut().map(|m| m.remove("spec"));
        assert!(super::super::spec_changed(&pods, &old, &removed));
        let mut added = old.clone();
        added["extra"] = json!(1);
        assert!(super::super::spec_changed(&pods, &old, &added));
        let mut deleting = old.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(super::super::spec_changed(&pods, &old, &deleting));
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"spec":{"containers":[{"name":"a"}]}})),
            "BestEffort"
        );
        let g =
            json!({"spec":{"containers":[{"resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]}});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"spec":{"containers":[{"resources":{"requests":{"cpu":"1"}}}]}});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn unscheduled_pods_go_at_once() {
        assert_eq!(grace_period(&json!({"spec":{}}), Some(30)), Some(0));
        assert_eq!(
            grace_period(
                &json!({"spec":{"nodeName":"n"},"status":{"phase":"Running"}}),
                None
            ),
            Some(30)
        );
    }
}
