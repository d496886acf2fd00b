//! Core-group rules through the public API, with upstream's exact messages.

use crate::{default, validate_create, validate_update};
use machinery::FieldError;
use serde_json::{Value, json};

fn msgs(e: &[FieldError]) -> Vec<String> {
    e.iter().map(FieldError::message).collect()
}

fn create(resource: &str, mut o: Value) -> Vec<String> {
    default("", "v1", resource, &mut o);
    msgs(&validate_create("", "v1", resource, &o))
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

#[test]
fn valid_pod_passes() {
    let p = pod(
        json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}],
        "env": [{"name": "A", "value": "1"}], "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"port": "http"}}}],
        "volumes": [{"name": "data", "emptyDir": {}}], "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]}),
    );
    assert_eq!(create("pods", p), Vec::<String>::new());
}

#[test]
fn containers_are_required() {
    assert_eq!(
        create("pods", pod(json!({}))),
        vec!["spec.containers: Required value"]
    );
}

#[test]
fn container_rules() {
    let p = pod(json!({"containers": [
        {"name": "Web"},
        {"name": "b", "image": "x", "ports": [{"containerPort": 70000, "protocol": "HTTP"}, {"containerPort": 0}]},
        {"name": "b", "image": "x", "imagePullPolicy": "Sometimes", "env": [{"name": ""}, {"name": "A=B"}]},
    ], "restartPolicy": "Sometimes", "dnsPolicy": "Bogus"}));
    assert_eq!(
        create("pods", p),
        vec![
            "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.containers[0].image: Required value",
            "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[1].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[1].ports[1].containerPort: Required value",
            "spec.containers[2].env[0].name: Required value",
            "spec.containers[2].env[0].name: Invalid value: \"\": environment variable name must be non-empty",
            "spec.containers[2].env[1].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[2].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            "spec.containers[2].name: Duplicate value: \"b\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Bogus\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ]
    );
}

#[test]
fn resources_requests_within_limits() {
    let p = pod(json!({"containers": [{"name": "a", "image": "x",
        "resources": {"requests": {"cpu": "2", "memory": "-1"}, "limits": {"cpu": "1"}}}]}));
    assert_eq!(
        create("pods", p),
        vec![
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
        ]
    );
    let p = pod(
        json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"foo": "1"}}}]}),
    );
    assert_eq!(
        create("pods", p),
        vec![
            "spec.containers[0].resources.limits[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
            "spec.containers[0].resources.limits[foo]: Invalid value: \"foo\": must be a standard resource for containers",
            "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
            "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers",
        ]
    );
    let gpu = pod(
        json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}),
    );
    assert_eq!(
        create("pods", gpu),
        vec![
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
        ]
    );
}

#[test]
fn volume_mounts_need_volumes() {
    let p = pod(
        json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]}),
    );
    assert_eq!(
        create("pods", p),
        vec!["spec.containers[0].volumeMounts[0].name: Invalid value: \"v\": not found"]
    );
}

#[test]
fn pod_spec_fields() {
    let p = pod(
        json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}],
        "activeDeadlineSeconds": 0, "hostname": "Host", "serviceAccountName": "Bad_SA",
        "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"}]}),
    );
    let m = create("pods", p);
    assert_eq!(
        m[0],
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
    );
    assert!(m[1].starts_with(
        "spec.serviceAccountName: Invalid value: \"Bad_SA\": a lowercase RFC 1123 subdomain"
    ));
    assert_eq!(
        m[2],
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"
    );
    assert!(m[3].starts_with("spec.hostname: Invalid value: \"Host\""));
    assert_eq!(
        m[4],
        "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""
    );
    assert_eq!(
        m[5],
        "spec.tolerations[1].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"
    );
    assert_eq!(m.len(), 6);
}

#[test]
fn pod_update_through_api() {
    let mut old = pod(json!({"containers": [{"name": "a", "image": "nginx:1"}]}));
    default("", "v1", "pods", &mut old);
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert!(validate_update("", "v1", "pods", &new, &old).is_empty());
    new["spec"]["restartPolicy"] = json!("Never");
    let m = msgs(&validate_update("", "v1", "pods", &new, &old));
    assert_eq!(m.len(), 1);
    assert!(m[0].starts_with("spec: Forbidden: pod updates may not change fields other than"));
}

#[test]
fn namespace_defaults_and_rules() {
    let mut ns = json!({"metadata": {"name": "team-a"}});
    default("", "v1", "namespaces", &mut ns);
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert!(validate_create("", "v1", "namespaces", &ns).is_empty());
    let bad = json!({"metadata": {"name": "Team.A"}, "spec": {"finalizers": ["custom"]}});
    let m = create("namespaces", bad);
    assert!(
        m[0].starts_with("metadata.name: Invalid value: \"Team.A\": a lowercase RFC 1123 label")
    );
    assert_eq!(
        m[1],
        "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
    );
    let dotted = json!({"metadata": {"name": "a.b"}});
    assert_eq!(
        create("namespaces", dotted),
        vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
    );
}

#[test]
fn services_use_dns1035_names() {
    let s =
        json!({"metadata": {"name": "1web", "namespace": "d"}, "spec": {"ports": [{"port": 80}]}});
    let m = create("services", s);
    assert_eq!(
        m,
        vec![
            "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ]
    );
}

#[test]
fn config_and_secret_through_api() {
    let cm =
        json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "1"}, "immutable": true});
    let mut changed = cm.clone();
    changed["data"]["a"] = json!("2");
    assert_eq!(
        msgs(&validate_update("", "v1", "configmaps", &changed, &cm)),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    let mut s = json!({"metadata": {"name": "s", "namespace": "d"}, "stringData": {"k": "v"}});
    default("", "v1", "secrets", &mut s);
    assert_eq!(s["type"], "Opaque");
    assert!(validate_create("", "v1", "secrets", &s).is_empty());
}

#[test]
fn nodes() {
    let mut n = json!({"metadata": {"name": "node-1"}, "spec": {"taints": [{"key": "a", "effect": "Sometimes"}, {"effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "4"}}});
    default("", "v1", "nodes", &mut n);
    assert_eq!(n["status"]["allocatable"], json!({"cpu": "4"}));
    assert_eq!(
        msgs(&validate_create("", "v1", "nodes", &n)),
        vec![
            "spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            "spec.taints[1].key: Required value",
        ]
    );
}

#[test]
fn persistent_volume_claims() {
    let mut pvc = json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    default("", "v1", "persistentvolumeclaims", &mut pvc);
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");
    assert!(validate_create("", "v1", "persistentvolumeclaims", &pvc).is_empty());
    let bad = json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"accessModes": ["ReadMostly"]}});
    assert_eq!(
        create("persistentvolumeclaims", bad),
        vec![
            "spec.accessModes: Unsupported value: \"ReadMostly\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            "spec.resources[storage]: Required value",
        ]
    );
    let mut changed = pvc.clone();
    changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    assert_eq!(
        msgs(&validate_update(
            "",
            "v1",
            "persistentvolumeclaims",
            &changed,
            &pvc
        )),
        vec![
            "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
        ]
    );
    let mut grown = pvc.clone();
    grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    grown["status"]["phase"] = json!("Bound");
    assert!(validate_update("", "v1", "persistentvolumeclaims", &grown, &pvc).is_empty());
}

#[test]
fn quotas_and_events() {
    let q = json!({"metadata": {"name": "q", "namespace": "d"}, "spec": {"hard": {"pods": "-1", "widgets": "1"}}});
    assert_eq!(
        create("resourcequotas", q),
        vec![
            "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0",
            "spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource type or fully qualified",
        ]
    );
    let e = json!({"metadata": {"name": "e.1", "namespace": "d"}, "involvedObject": {"namespace": "other"}});
    assert_eq!(
        create("events", e),
        vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
    );
    // a new-style event (as events.k8s.io/v1 writes are stored) names its reporter in
    // reportingComponent; errors use upstream's reportingController
    let new_style = json!({"metadata": {"name": "e.2", "namespace": "d"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingComponent": "default-scheduler", "reportingInstance": "h", "action": "Binding", "reason": "Scheduled", "type": "Normal"});
    assert!(create("events", new_style.clone()).is_empty());
    let mut missing = new_style;
    missing
        .as_object_mut()
        .map(|m| m.remove("reportingComponent"));
    assert_eq!(
        create("events", missing),
        vec!["reportingController: Required value"]
    );
}

#[test]
fn replication_controllers() {
    let mut rc = json!({"metadata": {"name": "r", "namespace": "d"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "a", "image": "x"}]}}}});
    default("", "v1", "replicationcontrollers", &mut rc);
    assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(rc["spec"]["replicas"], 1);
    assert!(validate_create("", "v1", "replicationcontrollers", &rc).is_empty());
}
