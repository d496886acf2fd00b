//! Rules of the small groups through the public API, with upstream's exact messages.

use crate::{default, validate_create, validate_update};
use machinery::FieldError;
use serde_json::{Value, json};

fn msgs(e: &[FieldError]) -> Vec<String> {
    e.iter().map(FieldError::message).collect()
}

fn create(group: &str, version: &str, resource: &str, mut o: Value) -> (Value, Vec<String>) {
    default(group, version, resource, &mut o);
    let m = msgs(&validate_create(group, version, resource, &o));
    (o, m)
}

#[test]
fn priority_classes() {
    let (pc, m) = create(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        json!({"metadata": {"name": "high"}, "value": 1000}),
    );
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    assert!(m.is_empty());
    let (_, m) = create(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        json!({"metadata": {"name": "huge"}, "value": 2_000_000_000}),
    );
    assert_eq!(
        m,
        vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    );
    let (_, m) = create(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        json!({"metadata": {"name": "system-mine"}, "value": 1}),
    );
    assert_eq!(
        m,
        vec![
            "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
        ]
    );
    let (_, m) = create(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000}),
    );
    assert!(m.is_empty());
    let old = json!({"metadata": {"name": "high"}, "value": 1000});
    let new = json!({"metadata": {"name": "high"}, "value": 2000});
    assert_eq!(
        msgs(&validate_update(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            &new,
            &old
        )),
        vec!["value: Forbidden: may not be changed in an update."]
    );
}

#[test]
fn leases() {
    let lease = json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}});
    let (_, m) = create("coordination.k8s.io", "v1", "leases", lease);
    assert_eq!(
        m,
        vec![
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
            "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
        ]
    );
}

#[test]
fn storage_classes() {
    let (sc, m) = create(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        json!({"metadata": {"name": "fast"}, "provisioner": "rancher.io/local-path"}),
    );
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(sc["volumeBindingMode"], "Immediate");
    assert!(m.is_empty());
    let mut changed = sc.clone();
    changed["reclaimPolicy"] = json!("Retain");
    assert_eq!(
        msgs(&validate_update(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            &changed,
            &sc
        )),
        vec!["reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."]
    );
}

#[test]
fn hpas() {
    let hpa = json!({"metadata": {"name": "h", "namespace": "d"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}});
    let (h, m) = create("autoscaling", "v2", "horizontalpodautoscalers", hpa);
    assert!(m.is_empty(), "{m:?}");
    assert_eq!(h["spec"]["minReplicas"], 1);
    assert_eq!(
        h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
    assert_eq!(h["spec"]["behavior"]["scaleUp"]["policies"][0]["value"], 4);
    assert_eq!(
        h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );
    let bad = json!({"metadata": {"name": "h", "namespace": "d"}, "spec": {"scaleTargetRef": {"kind": "Deployment"}, "minReplicas": 3, "maxReplicas": 2}});
    let (_, m) = create("autoscaling", "v2", "horizontalpodautoscalers", bad);
    assert_eq!(
        m,
        vec![
            "spec.scaleTargetRef.name: Required value",
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
        ]
    );
}

#[test]
fn endpoint_slices_and_runtime_classes() {
    let es = json!({"metadata": {"name": "e", "namespace": "d"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]});
    let (es, m) = create("discovery.k8s.io", "v1", "endpointslices", es);
    assert!(m.is_empty(), "{m:?}");
    assert_eq!(es["ports"][0]["protocol"], "TCP");
    let (_, m) = create(
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        json!({"metadata": {"name": "r"}}),
    );
    assert_eq!(m, vec!["handler: Required value"]);
}

#[test]
fn new_style_events_in_their_stored_core_form() {
    // what the API server validates after converting an events.k8s.io/v1 Event to its
    // storage version
    let stored = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e", "namespace": "d"}, "type": "Normal",
        "eventTime": "2026-11-22T13:11:07.151197Z", "reportingComponent": "default-scheduler",
        "reportingInstance": "default-scheduler-h", "action": "Binding", "reason": "Scheduled",
        "message": "bound", "involvedObject": {"kind": "Pod", "name": "p"}});
    let (_, m) = create("events.k8s.io", "v1", "events", stored.clone());
    assert!(m.is_empty(), "{m:?}");
    let mut bad = stored;
    bad.as_object_mut().map(|o| o.remove("reportingComponent"));
    bad["message"] = json!("x".repeat(1025));
    let (_, m) = create("events.k8s.io", "v1", "events", bad);
    assert_eq!(
        m,
        vec![
            "reportingController: Required value",
            "note: Too long: must have at most 1024 bytes",
        ]
    );
}

#[test]
fn new_style_events() {
    let (_, m) = create(
        "events.k8s.io",
        "v1",
        "events",
        json!({"metadata": {"name": "e", "namespace": "d"}, "type": "Normal"}),
    );
    assert_eq!(
        m,
        vec![
            "eventTime: Required value",
            "reportingController: Required value",
            "reportingInstance: Required value",
            "action: Required value",
            "reason: Required value",
        ]
    );
}
