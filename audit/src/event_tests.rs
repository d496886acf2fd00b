use chrono::TimeZone;
use serde_json::json;

use super::*;

const RECEIVED: &str = "2026-11-21T21:30:00.123456Z";

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 21, 30, 0)
        .single()
        .expect("valid date")
        + chrono::TimeDelta::microseconds(123_456)
}

fn attrs(verb: &str, ns: &str, resource: &str, name: &str) -> Attributes {
    Attributes {
        user: "alice".into(),
        uid: "u-1".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        verb: verb.into(),
        namespace: ns.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        name: name.into(),
        resource_request: true,
        ..Attributes::default()
    }
}

fn event(config: &RequestAuditConfig, a: &Attributes, uri: &str) -> Event {
    let mut ev = Event::new(
        config,
        a,
        uri,
        vec!["10.0.0.1".into()],
        Some("kubectl/v1.31.0".into()),
        Some("2f9d3b1c-0000-4000-8000-000000000001".into()),
    )
    .expect("level above None");
    ev.set_request_received_timestamp(received());
    ev
}

/// Checks `stageTimestamp` is a microsecond UTC time, then pins it for comparison.
fn pin_stage_time(mut v: Value) -> Value {
    let stamp = v["stageTimestamp"]
        .as_str()
        .expect("stageTimestamp")
        .to_string();
    assert!(DateTime::parse_from_rfc3339(&stamp).is_ok(), "{stamp}");
    assert_eq!(stamp.len(), RECEIVED.len(), "{stamp}");
    assert!(stamp.ends_with('Z'));
    v["stageTimestamp"] = json!("<now>");
    v
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn metadata_get_pod_matches_upstream_shape() {
    let config = RequestAuditConfig::at_level(Level::Metadata);
    let mut ev = event(
        &config,
        &attrs("get", "default", "pods", "web"),
        "/api/v1/namespaces/default/pods/web",
    );
    ev.add_annotation(crate::request::ANNOTATION_AUTHZ_DECISION, "allow");
    ev.add_annotation(crate::request::ANNOTATION_AUTHZ_REASON, "");
    let received = ev.at_stage(Stage::RequestReceived).expect("not omitted");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}});
    ev.set_response(200, Some(&pod));
    let complete = pin_stage_time(ev.at_stage(Stage::ResponseComplete).expect("not omitted"));

    let mut expected = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "2f9d3b1c-0000-4000-8000-000000000001",
        "stage": "RequestReceived",
        "requestURI": "/api/v1/namespaces/default/pods/web",
        "verb": "get",
        "user": {"username": "alice", "uid": "u-1", "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"},
        "requestReceivedTimestamp": RECEIVED,
        "stageTimestamp": RECEIVED,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    });
    assert_eq!(received, expected);
    expected["stage"] = json!("ResponseComplete");
    expected["stageTimestamp"] = json!("<now>");
    expected["responseStatus"] = json!({"metadata": {}, "code": 200});
    assert_eq!(complete, expected);
    // Field order follows upstream's struct, so lines read the same as upstream's.
    assert_eq!(
        keys(&complete),
        [
            "kind",
            "apiVersion",
            "level",
            "auditID",
            "stage",
            "requestURI",
            "verb",
            "user",
            "sourceIPs",
            "userAgent",
            "objectRef",
            "responseStatus",
            "requestReceivedTimestamp",
            "stageTimestamp",
            "annotations"
        ]
    );
    assert_eq!(
        complete["responseStatus"].to_string(),
        r#"{"metadata":{},"code":200}"#
    );
}

#[test]
fn request_response_create_configmap_without_managed_fields() {
    let config = RequestAuditConfig {
        level: Level::RequestResponse,
        omit_stages: vec![Stage::RequestReceived],
        omit_managed_fields: true,
    };
    let a = attrs("create", "kube-system", "configmaps", "");
    let mut ev = event(
        &config,
        &a,
        "/api/v1/namespaces/kube-system/configmaps?fieldManager=kubectl",
    );
    assert_eq!(ev.at_stage(Stage::RequestReceived), None);
    let managed = json!([{"manager": "kubectl", "operation": "Update"}]);
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "kube-system", "managedFields": managed},
        "data": {"mode": "fast"}
    });
    ev.set_request_object(&body);
    let mut created = body.clone();
    created["metadata"]["uid"] = json!("6c1f-uid");
    created["metadata"]["resourceVersion"] = json!("42");
    ev.set_response(201, Some(&created));
    let line = pin_stage_time(ev.at_stage(Stage::ResponseComplete).expect("not omitted"));
    let expected = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "2f9d3b1c-0000-4000-8000-000000000001",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/kube-system/configmaps?fieldManager=kubectl",
        "verb": "create",
        "user": {"username": "alice", "uid": "u-1", "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "configmaps", "namespace": "kube-system", "name": "settings", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "kube-system"},
            "data": {"mode": "fast"}
        },
        "responseObject": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "kube-system", "uid": "6c1f-uid", "resourceVersion": "42"},
            "data": {"mode": "fast"}
        },
        "requestReceivedTimestamp": RECEIVED,
        "stageTimestamp": "<now>"
    });
    assert_eq!(line, expected);
}

#[test]
fn failure_status_is_recorded_and_api_group_kept() {
    let config = RequestAuditConfig::at_level(Level::RequestResponse);
    let mut a = attrs("get", "default", "deployments", "web");
    a.api_group = "apps".into();
    let mut ev = event(
        &config,
        &a,
        "/apis/apps/v1/namespaces/default/deployments/web",
    );
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "deployments.apps \"web\" not found", "reason": "NotFound",
        "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404
    });
    ev.set_response(404, Some(&status));
    let line = ev.at_stage(Stage::ResponseComplete).expect("not omitted");
    assert_eq!(
        line["responseStatus"],
        json!({
            "metadata": {}, "status": "Failure", "message": "deployments.apps \"web\" not found",
            "reason": "NotFound", "details": {"name": "web", "group": "apps", "kind": "deployments"},
            "code": 404
        })
    );
    assert_eq!(line["responseObject"], status);
    assert_eq!(line["objectRef"]["apiGroup"], "apps");
    assert_eq!(
        keys(&line["responseStatus"]),
        ["metadata", "status", "message", "reason", "details", "code"]
    );
}

#[test]
fn levels_decide_what_bodies_are_kept() {
    let body =
        json!({"kind": "Pod", "metadata": {"name": "p", "uid": "u9", "resourceVersion": "7"}});
    let a = attrs("update", "ns", "pods", "p");
    let mut meta = event(&RequestAuditConfig::at_level(Level::Metadata), &a, "/x");
    meta.set_request_object(&body);
    meta.set_response(200, Some(&body));
    let line = meta.at_stage(Stage::ResponseComplete).expect("line");
    assert!(line.get("requestObject").is_none() && line.get("responseObject").is_none());
    // Even at Metadata, the request body completes objectRef.
    assert_eq!(line["objectRef"]["uid"], "u9");
    assert_eq!(line["objectRef"]["resourceVersion"], "7");

    let mut req = event(&RequestAuditConfig::at_level(Level::Request), &a, "/x");
    req.set_request_object(&body);
    req.set_response(200, Some(&body));
    let line = req.at_stage(Stage::ResponseComplete).expect("line");
    assert_eq!(line["requestObject"], body);
    assert!(line.get("responseObject").is_none());
    // Managed fields stay unless the policy omits them; RequestReceived never has bodies.
    assert!(
        req.at_stage(Stage::RequestReceived)
            .expect("line")
            .get("requestObject")
            .is_none()
    );

    let mut patch = event(&RequestAuditConfig::at_level(Level::Request), &a, "/x");
    let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]);
    patch.set_request_patch(&ops);
    assert_eq!(
        patch.at_stage(Stage::ResponseComplete).expect("line")["requestObject"],
        ops
    );
}

#[test]
fn watch_stages_and_fallback_status() {
    let config = RequestAuditConfig::at_level(Level::Metadata);
    let mut ev = event(
        &config,
        &attrs("watch", "", "nodes", ""),
        "/api/v1/nodes?watch=true",
    );
    let fallback = ev.at_stage(Stage::ResponseComplete).expect("line");
    assert_eq!(
        fallback["responseStatus"],
        json!({"metadata": {}, "status": "Success", "message": "Connection closed early", "code": 200})
    );
    ev.set_response(200, None);
    let started = ev.at_stage(Stage::ResponseStarted).expect("line");
    assert_eq!(started["stage"], "ResponseStarted");
    assert_eq!(
        started["responseStatus"],
        json!({"metadata": {}, "code": 200})
    );
    assert!(
        started
            .get("objectRef")
            .is_some_and(|r| r.get("namespace").is_none())
    );
}

#[test]
fn omitted_stages_and_level_none() {
    let config = RequestAuditConfig {
        level: Level::Metadata,
        omit_stages: vec![Stage::RequestReceived, Stage::ResponseStarted],
        omit_managed_fields: false,
    };
    let ev = event(&config, &attrs("get", "a", "pods", "b"), "/x");
    assert!(ev.omits(Stage::RequestReceived));
    assert_eq!(ev.at_stage(Stage::RequestReceived), None);
    assert_eq!(ev.at_stage(Stage::ResponseStarted), None);
    assert!(ev.at_stage(Stage::ResponseComplete).is_some());
    let none = RequestAuditConfig::at_level(Level::None);
    assert!(
        Event::new(
            &none,
            &attrs("get", "a", "pods", "b"),
            "/x",
            vec![],
            None,
            None
        )
        .is_none()
    );
}

#[test]
fn non_resource_requests_and_defaults() {
    let a = Attributes {
        user: "system:anonymous".into(),
        verb: "get".into(),
        path: "/healthz".into(),
        ..Attributes::default()
    };
    let config = RequestAuditConfig::at_level(Level::Metadata);
    let long_agent = "x".repeat(2000);
    let ev = Event::new(
        &config,
        &a,
        "/healthz?verbose",
        vec![],
        Some(long_agent),
        None,
    )
    .expect("event");
    assert!(uuid::Uuid::parse_str(&ev.audit_id).is_ok());
    let line = ev.at_stage(Stage::RequestReceived).expect("line");
    for absent in [
        "objectRef",
        "sourceIPs",
        "annotations",
        "responseStatus",
        "impersonatedUser",
    ] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }
    assert_eq!(line["user"], json!({"username": "system:anonymous"}));
    assert!(
        line["userAgent"]
            .as_str()
            .is_some_and(|u| u.ends_with("...TRUNCATED") && u.len() == 1036)
    );
    assert_eq!(line["requestReceivedTimestamp"], line["stageTimestamp"]);
}

#[test]
fn annotations_impersonation_and_panic() {
    let config = RequestAuditConfig::at_level(Level::Metadata);
    let mut ev = event(&config, &attrs("delete", "a", "pods", "b"), "/x");
    ev.add_annotation("k", "first");
    ev.add_annotation("k", "second");
    ev.add_annotation("k", "first");
    assert_eq!(ev.annotations.get("k").map(String::as_str), Some("first"));
    ev.set_impersonated_user(UserInfo {
        username: "bob".into(),
        groups: vec!["devs".into()],
        ..UserInfo::default()
    });
    ev.set_panic("index out of range");
    let line = ev.at_stage(Stage::Panic).expect("line");
    assert_eq!(
        line["impersonatedUser"],
        json!({"username": "bob", "groups": ["devs"]})
    );
    assert_eq!(
        line["responseStatus"],
        json!({"metadata": {}, "status": "Failure", "message": "APIServer panic'd: index out of range",
               "reason": "InternalError", "code": 500})
    );
    assert_eq!(line["stage"], "Panic");
}

#[test]
fn managed_fields_stripped_from_lists_and_tables() {
    let mf = json!([{"manager": "m"}]);
    let mut list = json!({"kind": "PodList", "metadata": {}, "items": [
        {"metadata": {"name": "a", "managedFields": mf}}, {"metadata": {"name": "b"}}, 7
    ]});
    strip_managed_fields(&mut list);
    assert_eq!(list["items"][0], json!({"metadata": {"name": "a"}}));
    assert_eq!(list["items"][2], json!(7));
    let mut table = json!({"kind": "Table", "rows": [{"cells": [], "object": {"metadata": {"managedFields": mf}}}]});
    strip_managed_fields(&mut table);
    assert_eq!(table["rows"][0]["object"], json!({"metadata": {}}));
    let mut scalar = json!("x");
    strip_managed_fields(&mut scalar);
    assert_eq!(scalar, json!("x"));
}
