//! The audit log through a real kube-apiserver: a policy file picks the level per
//! request, events are written as upstream's audit.k8s.io/v1 JSON lines with their
//! stages, and every response carries its Audit-Id.

use testenv as common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/readyz*", "/healthz*", "/livez*"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["configmaps"]
- level: Metadata
"#;

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn policy_levels_and_event_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.yaml");
    let log = dir.path().join("audit.log");
    std::fs::write(&policy, POLICY).expect("write policy");
    let server = common::TestServer::start_with(&[
        &format!("--audit-policy-file={}", policy.display()),
        &format!("--audit-log-path={}", log.display()),
    ]);
    let client = server.client_without_retries().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "audited"}, "data": {"k": "v"},
    }))
    .expect("configmap");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let _ = cms.get("missing").await.expect_err("not found");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces.get("default").await.expect("get namespace");

    // the log is written off the request path: wait for the three events
    let deadline = Instant::now() + Duration::from_secs(10);
    let find = |evs: &[Value], verb: &str, resource: &str| {
        evs.iter()
            .find(|e| e["verb"] == verb && e["objectRef"]["resource"] == resource)
            .cloned()
    };
    let evs = loop {
        let evs = events(&log);
        if find(&evs, "get", "namespaces").is_some() || Instant::now() > deadline {
            break evs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        evs.iter().all(|e| e["stage"] == "ResponseComplete"),
        "RequestReceived is omitted: {evs:#?}"
    );
    assert!(
        evs.iter().all(|e| !e["requestURI"]
            .as_str()
            .unwrap_or("")
            .starts_with("/readyz")),
        "health checks are not audited"
    );

    let create = find(&evs, "create", "configmaps").expect("create event");
    assert_eq!(create["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(create["kind"], "Event");
    assert_eq!(create["level"], "RequestResponse");
    assert_eq!(create["user"]["username"], "kubernetes-admin");
    assert_eq!(
        create["objectRef"],
        json!({"resource": "configmaps", "namespace": "default", "name": "audited", "apiVersion": "v1"})
    );
    assert_eq!(
        create["responseStatus"],
        json!({"metadata": {}, "code": 201})
    );
    assert_eq!(create["requestObject"]["data"], json!({"k": "v"}));
    assert_eq!(create["responseObject"]["metadata"]["name"], "audited");
    assert_eq!(
        create["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );
    assert_eq!(create["sourceIPs"], json!(["127.0.0.1"]));

    let missing = find(&evs, "get", "configmaps").expect("get event");
    assert_eq!(missing["responseStatus"]["code"], 404);
    assert_eq!(missing["responseStatus"]["reason"], "NotFound");
    assert_eq!(
        missing["responseStatus"]["message"],
        "configmaps \"missing\" not found"
    );

    let ns = find(&evs, "get", "namespaces").expect("namespace event");
    assert_eq!(ns["level"], "Metadata");
    assert!(ns.get("responseObject").is_none());
    assert!(ns.get("requestObject").is_none());
    assert_eq!(ns["responseStatus"], json!({"metadata": {}, "code": 200}));
    // timestamps with microseconds, as upstream writes them
    let ts = ns["stageTimestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), "2026-11-21T21:30:00.123456Z".len(), "{ts}");
    // the Audit-Id of the response is the event's
    assert!(!ns["auditID"].as_str().unwrap_or("").is_empty());
}
