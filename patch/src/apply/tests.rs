use serde_json::{Value, json};

use super::*;

const CM: Option<&str> = Some("io.k8s.api.core.v1.ConfigMap");
const DEPLOY: Option<&str> = Some("io.k8s.api.apps.v1.Deployment");
const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-02T00:00:00Z";

fn cm(labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns", "labels": labels}, "data": data})
}

fn entries(obj: &Value) -> &Vec<Value> {
    obj["metadata"]["managedFields"].as_array().unwrap()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    entries(obj).iter().find(|e| e["manager"] == manager)
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}
        }
    })
}

#[test]
fn create_via_apply_records_fields_v1_as_upstream() {
    let out = apply(
        None,
        &cm(json!({"app": "x"}), json!({"key": "v"})),
        "m1",
        false,
        CM,
        T1,
    )
    .unwrap();
    assert_eq!(out["data"], json!({"key": "v"}));
    assert_eq!(out["metadata"]["name"], "c");
    let e = entry(&out, "m1").unwrap();
    let text = serde_json::to_string(e).unwrap();
    assert_eq!(
        text,
        r#"{"manager":"m1","operation":"Apply","apiVersion":"v1","time":"2025-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:key":{}},"f:metadata":{"f:labels":{"f:app":{}}}}}"#
    );
}

#[test]
fn reapply_is_idempotent() {
    let cfg = cm(json!({"app": "x"}), json!({"key": "v"}));
    let first = apply(None, &cfg, "m1", false, CM, T1).unwrap();
    let second = apply(Some(&first), &cfg, "m1", false, CM, T2).unwrap();
    assert_eq!(first, second);
}

#[test]
fn apply_omitting_a_field_removes_it() {
    let first = apply(
        None,
        &cm(
            json!({"app": "x", "tier": "t"}),
            json!({"key": "v", "other": "o"}),
        ),
        "m1",
        false,
        CM,
        T1,
    )
    .unwrap();
    let second = apply(
        Some(&first),
        &cm(json!({"app": "x"}), json!({"key": "v"})),
        "m1",
        false,
        CM,
        T2,
    )
    .unwrap();
    assert_eq!(second["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(second["data"], json!({"key": "v"}));
    assert_eq!(entry(&second, "m1").unwrap()["time"], T2);
    let mut third_cfg = cm(json!({}), json!({"key": "v"}));
    third_cfg["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    let third = apply(Some(&second), &third_cfg, "m1", false, CM, T2).unwrap();
    assert!(third["metadata"].get("labels").is_none(), "{third}");
}

#[test]
fn fields_another_manager_owns_are_not_removed() {
    let cfg = cm(json!({"app": "x"}), json!({"key": "v"}));
    let first = apply(None, &cfg, "m1", false, CM, T1).unwrap();
    let second = apply(
        Some(&first),
        &cm(json!({"app": "x"}), json!({})),
        "m2",
        false,
        CM,
        T1,
    )
    .unwrap();
    let third = apply(
        Some(&second),
        &cm(json!({}), json!({"key": "v"})),
        "m1",
        false,
        CM,
        T2,
    )
    .unwrap();
    assert_eq!(third["metadata"]["labels"], json!({"app": "x"}));
    // m2's configuration set `data: {}`, which it owns as a value.
    assert_eq!(
        entry(&third, "m2").unwrap()["fieldsV1"],
        json!({"f:data": {}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );
}

#[test]
fn conflicting_apply_is_a_409_with_causes() {
    let first = apply(
        None,
        &cm(json!({"app": "x"}), json!({"key": "v"})),
        "m1",
        false,
        CM,
        T1,
    )
    .unwrap();
    let e = apply(
        Some(&first),
        &cm(json!({"app": "x"}), json!({"key": "w"})),
        "m2",
        false,
        CM,
        T2,
    )
    .unwrap_err();
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"m1\": .data.key"
    );
    let status = e.to_status();
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"m1\"", "field": ".data.key"}])
    );
    // The same value is no conflict: both own the field.
    let shared = apply(
        Some(&first),
        &cm(json!({"app": "x"}), json!({"key": "v"})),
        "m2",
        false,
        CM,
        T2,
    )
    .unwrap();
    assert_eq!(entries(&shared).len(), 2);
}

#[test]
fn several_conflicts_are_listed_by_manager() {
    let first = apply(
        None,
        &cm(json!({"app": "x"}), json!({"a": "1", "b": "2"})),
        "m1",
        false,
        CM,
        T1,
    )
    .unwrap();
    let e = apply(
        Some(&first),
        &cm(json!({"app": "y"}), json!({"a": "9"})),
        "m2",
        false,
        CM,
        T2,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Apply failed with 2 conflicts: conflicts with \"m1\":\n- .data.a\n- .metadata.labels.app"
    );
}

#[test]
fn force_takes_ownership() {
    let first = apply(
        None,
        &cm(json!({"app": "x"}), json!({"key": "v"})),
        "m1",
        false,
        CM,
        T1,
    )
    .unwrap();
    let out = apply(
        Some(&first),
        &cm(json!({}), json!({"key": "w"})),
        "m2",
        true,
        CM,
        T2,
    )
    .unwrap();
    assert_eq!(out["data"]["key"], "w");
    assert_eq!(
        entry(&out, "m1").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}}}})
    );
    assert_eq!(
        entry(&out, "m2").unwrap()["fieldsV1"],
        json!({"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {}}})
    );
}

#[test]
fn update_manager_conflict_names_its_version() {
    let mut created = deployment(json!([{"name": "nginx", "image": "nginx:1"}]));
    update_managed_fields(
        None,
        &mut created,
        "kubectl-client-side-apply",
        "apps/v1",
        DEPLOY,
        T1,
    );
    let mut cfg = deployment(json!([{"name": "nginx", "image": "nginx:1"}]));
    cfg["spec"]["replicas"] = json!(3);
    let e = apply(Some(&created), &cfg, "kubectl", false, DEPLOY, T2).unwrap_err();
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn containers_merge_by_name_across_managers() {
    let first = apply(
        None,
        &deployment(json!([{"name": "a", "image": "a:1"}])),
        "m1",
        false,
        DEPLOY,
        T1,
    )
    .unwrap();
    let second = apply(
        Some(&first),
        &deployment(json!([{"name": "b", "image": "b:1"}])),
        "m2",
        false,
        DEPLOY,
        T2,
    )
    .unwrap();
    let containers = &second["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers,
        &json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])
    );
    let m2 = &entry(&second, "m2").unwrap()["fieldsV1"];
    assert_eq!(
        m2["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    assert_eq!(
        m2["f:spec"]["f:selector"],
        json!({}),
        "a LabelSelector is atomic"
    );
    // m1 dropping its container removes only that one.
    let third = apply(
        Some(&second),
        &deployment(json!([])),
        "m1",
        false,
        DEPLOY,
        T2,
    )
    .unwrap();
    assert_eq!(
        third["spec"]["template"]["spec"]["containers"],
        json!([{"name": "b", "image": "b:1"}])
    );
}

#[test]
fn update_records_fields_v1_with_dot_for_new_maps() {
    let mut obj = cm(json!({"app": "x"}), json!({"key": "v"}));
    update_managed_fields(None, &mut obj, "kubectl-create", "v1", CM, T1);
    let e = entry(&obj, "kubectl-create").unwrap();
    assert_eq!(e["operation"], "Update");
    assert_eq!(
        serde_json::to_string(&e["fieldsV1"]).unwrap(),
        r#"{"f:data":{".":{},"f:key":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}"#
    );
    // A later update by another manager takes only what it changed.
    let old = obj.clone();
    obj["data"]["key"] = json!("w");
    obj["data"]["new"] = json!("n");
    update_managed_fields(Some(&old), &mut obj, "kubectl-edit", "v1", CM, T2);
    assert_eq!(
        entry(&obj, "kubectl-edit").unwrap()["fieldsV1"],
        json!({"f:data": {"f:key": {}, "f:new": {}}})
    );
    assert_eq!(
        entry(&obj, "kubectl-create").unwrap()["fieldsV1"],
        json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );
    // An update that changes nothing leaves the entries alone.
    let before = obj.clone();
    update_managed_fields(Some(&before), &mut obj, "someone", "v1", CM, T2);
    assert_eq!(obj, before);
}

#[test]
fn update_of_a_created_deployment_has_no_dot_on_value_structs() {
    let mut d = deployment(json!([{"name": "nginx", "image": "nginx:1"}]));
    d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}});
    update_managed_fields(None, &mut d, "kubectl-create", "apps/v1", DEPLOY, T1);
    let f = &entry(&d, "kubectl-create").unwrap()["fieldsV1"];
    assert!(f["f:spec"].get(".").is_none());
    assert!(f["f:spec"]["f:template"].get(".").is_none());
    assert!(f["f:spec"]["f:strategy"].get(".").is_none());
    assert_eq!(
        f["f:spec"]["f:strategy"]["f:rollingUpdate"],
        json!({".": {}, "f:maxSurge": {}})
    );
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    assert_eq!(
        f["f:spec"]["f:template"]["f:metadata"]["f:labels"],
        json!({".": {}, "f:app": {}})
    );
}

#[test]
fn first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
    let live = cm(json!({"app": "x"}), json!({"key": "v"}));
    let e = apply(
        Some(&live),
        &cm(json!({"app": "x"}), json!({"key": "w"})),
        "m1",
        false,
        CM,
        T1,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.key"
    );
    let out = apply(
        Some(&live),
        &cm(json!({"app": "x"}), json!({"key": "v"})),
        "m1",
        false,
        CM,
        T1,
    )
    .unwrap();
    assert!(entry(&out, BEFORE_FIRST_APPLY).is_some());
}

#[test]
fn finalizers_are_owned_by_value() {
    let mut cfg = cm(json!({}), json!({}));
    cfg["metadata"] = json!({"name": "c", "finalizers": ["a", "b"]});
    let out = apply(None, &cfg, "m1", false, CM, T1).unwrap();
    assert_eq!(
        entry(&out, "m1").unwrap()["fieldsV1"],
        json!({"f:data": {}, "f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}}})
    );
    let mut cfg2 = cfg.clone();
    cfg2["metadata"]["finalizers"] = json!(["c"]);
    let out2 = apply(Some(&out), &cfg2, "m2", false, CM, T2).unwrap();
    assert_eq!(out2["metadata"]["finalizers"], json!(["a", "b", "c"]));
}

#[test]
fn bad_configurations() {
    let mut cfg = cm(json!({}), json!({}));
    cfg["metadata"]["managedFields"] = json!([]);
    let e = apply(None, &cfg, "m1", false, CM, T1).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "metadata.managedFields must be nil")
    );
    assert_eq!(
        apply(None, &json!([1]), "m1", false, CM, T1)
            .unwrap_err()
            .code,
        400
    );
}

#[test]
fn schemaless_objects_merge_maps_and_replace_lists() {
    let live = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": 1, "list": [1, 2]}});
    let first = apply(Some(&live), &live, "m1", false, None, T1).unwrap();
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"b": 2, "list": [3]}});
    let out = apply(Some(&first), &cfg, "m2", true, None, T2).unwrap();
    assert_eq!(out["spec"], json!({"a": 1, "list": [3], "b": 2}));
}

#[test]
fn manager_name_from_user_agent() {
    assert_eq!(
        manager_name(Some("helm"), "kubectl/v1.35.0 (linux/amd64)"),
        "helm"
    );
    assert_eq!(
        manager_name(None, "kubectl/v1.35.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(manager_name(Some(""), "curl"), "curl");
    assert_eq!(manager_name(None, &"x".repeat(300)).len(), 128);
}

#[test]
fn status_writes_record_the_subresource_and_reset_fields_are_not_owned() {
    let mut created = deployment(json!([{"name": "a", "image": "a:1"}]));
    update_managed_fields(None, &mut created, "kubectl-create", "apps/v1", DEPLOY, T1);
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 2});
    with_status["spec"]["replicas"] = json!(5);
    let request = Request {
        manager: "kube-controller-manager",
        api_version: "apps/v1",
        subresource: "status",
        definition: DEPLOY,
        now: T2,
        reset_fields: &[&["spec"]],
    };
    update_managed_fields_with(Some(&created), &mut with_status, &request);
    let e = entry(&with_status, "kube-controller-manager").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    // The reset spec.replicas stayed with kubectl-create (the strategy would undo it).
    let mut cfg = deployment(json!([{"name": "a", "image": "a:1"}]));
    cfg["status"] = json!({"replicas": 9});
    let out = apply(Some(&with_status), &cfg, "kubectl", false, DEPLOY, T2);
    let e = out.unwrap_err();
    assert!(e.message.contains("conflicts with \"kube-controller-manager\" with subresource \"status\" using apps/v1:\n- .status.replicas"), "{}", e.message);
}

#[test]
fn kubectl_takes_over_its_client_side_apply_fields() {
    let config = deployment(json!([{"name": "a", "image": "a:1"}]));
    let mut created = config.clone();
    created["metadata"]["annotations"] =
        json!({last_applied::LAST_APPLIED_ANNOTATION: serde_json::to_string(&config).unwrap()});
    update_managed_fields(
        None,
        &mut created,
        "kubectl-client-side-apply",
        "apps/v1",
        DEPLOY,
        T1,
    );
    let mut cfg = config.clone();
    cfg["spec"]["replicas"] = json!(3);
    // Another manager name still conflicts.
    assert_eq!(
        apply(Some(&created), &cfg, "helm", false, DEPLOY, T2)
            .unwrap_err()
            .code,
        409
    );
    let out = apply(Some(&created), &cfg, "kubectl", false, DEPLOY, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    let annotation = out["metadata"]["annotations"][last_applied::LAST_APPLIED_ANNOTATION]
        .as_str()
        .unwrap();
    let last: Value = serde_json::from_str(annotation).unwrap();
    assert_eq!(last["spec"]["replicas"], 3);
    // A field changed since the client-side apply is a real conflict.
    let mut drifted = created.clone();
    drifted["spec"]["replicas"] = json!(7);
    update_managed_fields(
        Some(&created),
        &mut drifted,
        "kubectl-scale",
        "apps/v1",
        DEPLOY,
        T2,
    );
    assert_eq!(
        apply(Some(&drifted), &cfg, "kubectl", false, DEPLOY, T2)
            .unwrap_err()
            .code,
        409
    );
}
