//! The aggregation layer through a real kube-apiserver: an aggregated API server (a test
//! HTTPS server) registered by an APIService is checked, listed in discovery, and
//! answers through the API server with the front-proxy user headers; `kubectl top node`
//! works against it; built-in groups have Local APIServices.

use testenv as common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::webhook_server::{TestRequest, pki, request_handler, serve_requests};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn apiservices(client: &kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
    ));
    Api::all_with(client.clone(), &ar)
}

/// The aggregated metrics API: discovery and node metrics.
fn metrics_api(req: &TestRequest) -> (u16, Value) {
    let n1 = json!({
        "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "n1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "timestamp": "2026-01-01T00:00:00Z", "window": "10s",
        "usage": {"cpu": "250m", "memory": "512Mi"},
    });
    let schema = json!({"type": "object", "description": "NodeMetrics sets resource usage metrics of a node.",
        "properties": {"window": {"type": "string"}}});
    match req.path.split('?').next().unwrap_or("") {
        "/openapi/v3/apis/metrics.k8s.io/v1beta1" => (
            200,
            json!({"openapi": "3.0.0", "info": {"title": "metrics", "version": "v1beta1"}, "paths": {},
                "components": {"schemas": {"io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics": schema}}}),
        ),
        "/openapi/v2" => (
            200,
            json!({"swagger": "2.0", "info": {"title": "metrics", "version": "v1beta1"},
                "paths": {"/apis/metrics.k8s.io/v1beta1/nodes": {"get": {"operationId": "listMetricsV1beta1NodeMetrics"}}},
                "definitions": {"io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics": schema}}),
        ),
        "/apis/metrics.k8s.io/v1beta1/nodes/n1" => (200, n1),
        "/apis/metrics.k8s.io/v1beta1" => (
            200,
            json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
                "resources": [
                    {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
                    {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
                ],
            }),
        ),
        "/apis/metrics.k8s.io/v1beta1/nodes" => (
            200,
            json!({
                "kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                "items": [n1],
            }),
        ),
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not here"}),
        ),
    }
}

#[tokio::test]
async fn an_aggregated_api_answers_through_the_server() {
    let identity = rcgen::generate_simple_self_signed(vec!["front-proxy-client".to_string()])
        .expect("proxy client cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("proxy.crt");
    let key = dir.path().join("proxy.key");
    std::fs::write(&cert, identity.cert.pem()).expect("write cert");
    std::fs::write(&key, identity.signing_key.serialize_pem()).expect("write key");
    let server = common::TestServer::start_with(&[
        &format!("--proxy-client-cert-file={}", cert.display()),
        &format!("--proxy-client-key-file={}", key.display()),
    ]);
    let client = server.client_without_retries().await;

    // built-in groups are Local APIServices
    let local = apiservices(&client).get("v1.apps").await.expect("v1.apps");
    let cond = &local.data["status"]["conditions"][0];
    assert_eq!(cond["type"], "Available");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "Local");

    // the aggregated server, reached through a Service whose endpoint is loopback; its
    // certificate is for hook.test.svc
    let seen: Arc<Mutex<Vec<TestRequest>>> = Arc::default();
    let record = seen.clone();
    let pki = pki();
    let addr = serve_requests(
        &pki,
        request_handler(move |req: TestRequest| {
            let record = record.clone();
            async move {
                let answer = metrics_api(&req);
                record.lock().expect("lock").push(req);
                answer
            }
        }),
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "test"}})).expect("ns"),
        )
        .await
        .expect("namespace");
    let services: Api<Service> = Api::namespaced(client.clone(), "test");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "hook"},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": addr.port()}]},
            }))
            .expect("service"),
        )
        .await
        .expect("service");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "test");
    slices
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "hook-1", "labels": {"kubernetes.io/service-name": "hook"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}],
            }))
            .expect("slice"),
        )
        .await
        .expect("endpointslice");
    let apiservice: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {
            "group": "metrics.k8s.io", "version": "v1beta1",
            "service": {"namespace": "test", "name": "hook", "port": 443},
            "caBundle": pki.ca_bundle,
            "groupPriorityMinimum": 100, "versionPriority": 100,
        },
    }))
    .expect("apiservice");
    apiservices(&client)
        .create(&PostParams::default(), &apiservice)
        .await
        .expect("create apiservice");

    // available once its discovery check passed
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = apiservices(&client)
            .get("v1beta1.metrics.k8s.io")
            .await
            .expect("get");
        let c = &got.data["status"]["conditions"][0];
        if c["status"] == "True" {
            assert_eq!(c["reason"], "Passed");
            assert_eq!(c["message"], "all checks passed");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not available: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // discovery lists the group; requests go through with the user's identity
    let groups = client.list_api_groups().await.expect("groups");
    assert!(
        groups.groups.iter().any(|g| g.name == "metrics.k8s.io"),
        "{groups:?}"
    );
    let req = http::Request::get("/apis/metrics.k8s.io/v1beta1/nodes")
        .body(Vec::new())
        .expect("request");
    let list: Value = client.request(req).await.expect("node metrics");
    assert_eq!(list["items"][0]["usage"]["cpu"], "250m");
    let proxied = seen
        .lock()
        .expect("lock")
        .iter()
        .rev()
        .find(|r| r.path.starts_with("/apis/metrics.k8s.io/v1beta1/nodes"))
        .cloned()
        .expect("the request reached the aggregated server");
    assert_eq!(proxied.header("x-remote-user"), vec!["kubernetes-admin"]);
    assert!(proxied.header("x-remote-group").contains(&"system:masters"));
    assert!(proxied.header("authorization").is_empty());

    // its OpenAPI documents are merged into ours
    let req = http::Request::get("/openapi/v3/apis/metrics.k8s.io/v1beta1")
        .body(Vec::new())
        .expect("request");
    let v3: Value = client.request(req).await.expect("openapi v3");
    assert_eq!(v3["info"]["title"], "metrics");
    let req = http::Request::get("/openapi/v2")
        .header("Accept", "application/json")
        .body(Vec::new())
        .expect("request");
    let v2: Value = client.request(req).await.expect("openapi v2");
    assert!(
        v2["definitions"]
            .get("io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics")
            .is_some()
    );
    assert_eq!(
        v2["paths"]["/apis/metrics.k8s.io/v1beta1/nodes"]["get"]["operationId"],
        "listMetricsV1beta1NodeMetrics"
    );
    assert!(v2["paths"].get("/apis/apps/v1/deployments").is_some());

    // kubectl top node: node metrics from the aggregated API, capacity from the node
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "n1"},
                "status": {"capacity": {"cpu": "2", "memory": "4Gi"}, "allocatable": {"cpu": "2", "memory": "4Gi"}},
            }))
            .expect("node"),
        )
        .await
        .expect("node");
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../_output/bin/kubectl").to_string()
    });
    // async: the aggregated server answers on this test's runtime
    let out = tokio::process::Command::new(&kubectl)
        .args(["--kubeconfig"])
        .arg(server.kubeconfig_path())
        .args(["top", "node", "n1"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {kubectl} (hack/install-deps.sh installs it): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][0], "NAME", "{stdout}");
    assert_eq!(rows[1][..3], ["n1", "250m", "12%"], "{stdout}");

    // a Service that goes makes the APIService unavailable and its group leaves discovery
    services
        .delete("hook", &Default::default())
        .await
        .expect("delete service");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = apiservices(&client)
            .get("v1beta1.metrics.k8s.io")
            .await
            .expect("get");
        let c = &got.data["status"]["conditions"][0];
        if c["status"] == "False" {
            assert_eq!(c["reason"], "ServiceNotFound");
            assert_eq!(c["message"], "service/hook in \"test\" is not present");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still available: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let groups = client.list_api_groups().await.expect("groups");
    assert!(!groups.groups.iter().any(|g| g.name == "metrics.k8s.io"));
}

async fn whoami(client: &kube::Client) -> Result<Value, kube::Error> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
    ));
    let review: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {},
    }))
    .expect("review");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let out = api.create(&PostParams::default(), &review).await?;
    Ok(out.data["status"]["userInfo"].clone())
}

#[tokio::test]
async fn front_proxy_headers_authenticate_only_for_the_front_proxy_ca() {
    let (proxy_ca, proxy_ca_key) = common::new_ca();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("front-proxy-ca.crt");
    std::fs::write(&ca_file, &proxy_ca).expect("write ca");
    let server = common::TestServer::start_with(&[
        &format!("--requestheader-client-ca-file={}", ca_file.display()),
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-uid-headers=X-Remote-Uid",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--authorization-mode=RBAC",
        "--anonymous-auth=false",
    ]);
    let headers = [
        ("X-Remote-User", "alice"),
        ("X-Remote-Uid", "alice-1"),
        ("X-Remote-Group", "devs"),
        ("X-Remote-Extra-Scopes", "read"),
        ("X-Remote-Extra-Example.com%2fteam", "blue"),
    ];

    // the front proxy: its headers name the user
    let (cert, key) = common::client_cert(&proxy_ca_key, "front-proxy-client", &[]);
    let proxy = server.client_with_cert(&cert, &key, &headers).await;
    assert_eq!(
        whoami(&proxy).await.expect("whoami through the proxy"),
        json!({
            "username": "alice", "uid": "alice-1",
            "groups": ["devs", "system:authenticated"],
            "extra": {"example.com/team": ["blue"], "scopes": ["read"]},
        })
    );
    // without a username header the proxy's certificate is no user certificate
    let bare = server.client_with_cert(&cert, &key, &[]).await;
    let err = whoami(&bare).await.expect_err("no user");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );

    // a certificate of the front-proxy CA with another name is not trusted with headers
    let (cert, key) = common::client_cert(&proxy_ca_key, "intruder", &[]);
    let intruder = server.client_with_cert(&cert, &key, &headers).await;
    let err = whoami(&intruder).await.expect_err("intruder");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );

    // a user certificate of --client-ca-file: the headers are ignored
    let (ca, ca_key) = server.ca();
    let (cert, key) = common::client_cert(ca_key, "bob", &["team"]);
    let bob = server.client_with_cert(&cert, &key, &headers).await;
    assert_eq!(
        whoami(&bob).await.expect("whoami as bob"),
        json!({"username": "bob", "groups": ["team", "system:authenticated"]})
    );

    // aggregated servers learn how to trust us from kube-system
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(server.client().await, "kube-system");
    let data = cms
        .get("extension-apiserver-authentication")
        .await
        .expect("configmap")
        .data
        .expect("data");
    assert_eq!(data["client-ca-file"], ca);
    assert_eq!(data["requestheader-client-ca-file"], proxy_ca);
    assert_eq!(
        data["requestheader-allowed-names"],
        "[\"front-proxy-client\"]"
    );
    assert_eq!(
        data["requestheader-username-headers"],
        "[\"X-Remote-User\"]"
    );
    assert_eq!(data["requestheader-uid-headers"], "[\"X-Remote-Uid\"]");
    assert_eq!(data["requestheader-group-headers"], "[\"X-Remote-Group\"]");
    assert_eq!(
        data["requestheader-extra-headers-prefix"],
        "[\"X-Remote-Extra-\"]"
    );
}
