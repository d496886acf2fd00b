//! Admission webhooks through a real kube-apiserver: a mutating webhook adds a label, a
//! validating one refuses with its message, failurePolicy Fail vs Ignore when the webhook
//! is down, a timeout, and DELETE admission. The webhook is a real HTTPS server in the
//! test (testenv's), trusted through `caBundle`.

use testenv as common;

use std::time::Duration;

use common::webhook_server::{answer, closed_port, handler, patch, pki, serve};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("configmap")
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A webhook configuration of `kind` (Mutating/Validating) for configmaps in
/// namespaces labelled `webhook-test=<label>`.
fn configuration(kind: &str, name: &str, url: &str, ca: &str, extra: Value, label: &str) -> Value {
    let mut hook = json!({
        "name": format!("{name}.example.com"),
        "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "namespaceSelector": {"matchLabels": {"webhook-test": label}},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(h), Some(e)) = (hook.as_object_mut(), extra.as_object()) {
        h.extend(e.clone());
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": format!("{kind}WebhookConfiguration"),
        "metadata": {"name": name},
        "webhooks": [hook],
    })
}

async fn install(client: &kube::Client, config: Value) {
    let kind = config["kind"].as_str().unwrap_or_default().to_string();
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        &kind,
    ));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let obj: DynamicObject = serde_json::from_value(config).expect("configuration");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create webhook configuration");
}

async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"webhook-test": name}}}),
    )
    .expect("namespace");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

#[tokio::test]
async fn mutating_and_validating_webhooks() {
    let server = common::TestServer::start();
    let client = server.client_without_retries().await;
    let pki = pki();
    let addr = serve(
        &pki,
        handler(|path, review| async move {
            let name = review["request"]["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let op = review["request"]["operation"].as_str().unwrap_or("").to_string();
            let user = review["request"]["userInfo"]["username"].clone();
            if path.starts_with("/mutate") && op != "DELETE" {
                let ops = json!([
                    {"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}},
                    {"op": "add", "path": "/metadata/annotations", "value": {"user": user}},
                ]);
                return (200, answer(&review, patch(ops)));
            }
            if path.starts_with("/mutate") {
                return (200, answer(&review, json!({})));
            }
            if op == "DELETE" {
                let old = review["request"]["oldObject"]["metadata"]["name"].clone();
                if old == "keep" {
                    return (
                        200,
                        answer(&review, json!({"allowed": false, "status": {"code": 403, "message": "keep stays"}})),
                    );
                }
                return (200, answer(&review, json!({})));
            }
            if name.starts_with("bad") {
                return (
                    200,
                    answer(
                        &review,
                        json!({"allowed": false, "status": {"code": 422, "reason": "Invalid", "message": "names starting with bad are refused"}}),
                    ),
                );
            }
            (200, answer(&review, json!({"warnings": ["looked at by the test webhook"]})))
        }),
    )
    .await;
    namespace(&client, "hooked").await;
    let base = format!("https://127.0.0.1:{}", addr.port());
    install(
        &client,
        configuration(
            "Mutating",
            "mutate",
            &format!("{base}/mutate"),
            &pki.ca_bundle,
            json!({}),
            "hooked",
        ),
    )
    .await;
    install(
        &client,
        configuration(
            "Validating",
            "validate",
            &format!("{base}/validate"),
            &pki.ca_bundle,
            json!({}),
            "hooked",
        ),
    )
    .await;

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "hooked");
    let made = cms
        .create(&PostParams::default(), &cm("good"))
        .await
        .expect("create");
    let labels = made.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("mutated").map(String::as_str), Some("yes"));
    let annotations = made.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("user").map(String::as_str),
        Some("kubernetes-admin"),
        "{made:?}"
    );
    // stored as the webhook left it
    let got = cms.get("good").await.expect("get");
    assert_eq!(got.metadata.labels, made.metadata.labels);

    let (code, message) = api_error(
        cms.create(&PostParams::default(), &cm("bad-one"))
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 422);
    assert_eq!(
        message,
        "admission webhook \"validate.example.com\" denied the request: names starting with bad are refused"
    );
    assert!(cms.get_opt("bad-one").await.expect("get").is_none());

    // DELETE goes through admission too
    cms.create(&PostParams::default(), &cm("keep"))
        .await
        .expect("create keep");
    let (code, message) = api_error(
        cms.delete("keep", &DeleteParams::default())
            .await
            .expect_err("delete refused"),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "admission webhook \"validate.example.com\" denied the request: keep stays"
    );
    assert!(cms.get_opt("keep").await.expect("get").is_some());
    cms.delete("good", &DeleteParams::default())
        .await
        .expect("delete good");

    // namespaces the selector leaves out are not sent to the webhooks
    let plain: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let made = plain
        .create(&PostParams::default(), &cm("bad-but-elsewhere"))
        .await
        .expect("create");
    assert!(made.metadata.labels.is_none());
}

#[tokio::test]
async fn failure_policy_and_timeout() {
    let server = common::TestServer::start();
    let client = server.client_without_retries().await;
    let pki = pki();
    let down = closed_port().await;
    let slow = serve(
        &pki,
        handler(|_, review| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (200, answer(&review, json!({})))
        }),
    )
    .await;
    for ns in ["fail", "ignore", "slow"] {
        namespace(&client, ns).await;
    }
    let down_url = format!("https://127.0.0.1:{}/validate", down.port());
    install(
        &client,
        configuration(
            "Validating",
            "down-fail",
            &down_url,
            &pki.ca_bundle,
            json!({"failurePolicy": "Fail"}),
            "fail",
        ),
    )
    .await;
    install(
        &client,
        configuration(
            "Validating",
            "down-ignore",
            &down_url,
            &pki.ca_bundle,
            json!({"failurePolicy": "Ignore"}),
            "ignore",
        ),
    )
    .await;
    install(
        &client,
        configuration(
            "Validating",
            "slow",
            &format!("https://127.0.0.1:{}/validate", slow.port()),
            &pki.ca_bundle,
            json!({"failurePolicy": "Fail", "timeoutSeconds": 1}),
            "slow",
        ),
    )
    .await;

    let fail: Api<ConfigMap> = Api::namespaced(client.clone(), "fail");
    let (code, message) = api_error(
        fail.create(&PostParams::default(), &cm("x"))
            .await
            .expect_err("webhook down, Fail"),
    );
    assert_eq!(code, 500);
    assert_eq!(
        message,
        format!(
            "Internal error occurred: failed calling webhook \"down-fail.example.com\": failed to call webhook: Post \"{down_url}?timeout=10s\": dial tcp 127.0.0.1:{}: connect: connection refused",
            down.port()
        )
    );
    assert!(fail.get_opt("x").await.expect("get").is_none());

    let ignore: Api<ConfigMap> = Api::namespaced(client.clone(), "ignore");
    ignore
        .create(&PostParams::default(), &cm("x"))
        .await
        .expect("webhook down, Ignore: admitted");

    let slow_api: Api<ConfigMap> = Api::namespaced(client.clone(), "slow");
    let started = std::time::Instant::now();
    let (code, message) = api_error(
        slow_api
            .create(&PostParams::default(), &cm("x"))
            .await
            .expect_err("timeout"),
    );
    assert_eq!(code, 500);
    assert!(
        message.starts_with("Internal error occurred: failed calling webhook \"slow.example.com\": failed to call webhook: Post \"")
            && message.ends_with("context deadline exceeded"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after timeoutSeconds"
    );
}

async fn create_dynamic(client: &kube::Client, kind: &str, obj: Value) {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        kind,
    ));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let obj: DynamicObject = serde_json::from_value(obj).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"));
}

#[tokio::test]
async fn validating_admission_policy_denies_with_its_messages() {
    let server = common::TestServer::start();
    let client = server.client_without_retries().await;
    namespace(&client, "policed").await;
    create_dynamic(
        &client,
        "ValidatingAdmissionPolicy",
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "small-configmaps"},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"],
                }]},
                "variables": [{"name": "keys", "expression": "has(object.data) ? object.data.size() : 0"}],
                "validations": [
                    {
                        "expression": "variables.keys <= 2",
                        "messageExpression": "'too many keys: ' + string(variables.keys)",
                    },
                    {"expression": "!object.metadata.name.startsWith('tmp-')", "reason": "Forbidden"},
                ],
            },
        }),
    )
    .await;
    create_dynamic(
        &client,
        "ValidatingAdmissionPolicyBinding",
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "small-configmaps-binding"},
            "spec": {
                "policyName": "small-configmaps",
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"webhook-test": "policed"}}},
            },
        }),
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "policed");
    let big: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "big"}, "data": {"a": "1", "b": "2", "c": "3"}}),
    )
    .expect("configmap");
    // the binding may take a moment to be read: retry briefly
    let mut refused = None;
    for _ in 0..50 {
        match cms.create(&PostParams::default(), &big).await {
            Err(e) => {
                refused = Some(api_error(e));
                break;
            }
            Ok(_) => {
                cms.delete("big", &DeleteParams::default())
                    .await
                    .expect("delete");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let (code, message) = refused.expect("the policy refuses a configmap with 3 keys");
    assert_eq!(code, 422);
    assert_eq!(
        message,
        "configmaps \"big\" is forbidden: ValidatingAdmissionPolicy 'small-configmaps' with binding 'small-configmaps-binding' denied request: too many keys: 3"
    );
    let (code, message) = api_error(
        cms.create(&PostParams::default(), &cm("tmp-x"))
            .await
            .expect_err("refused by name"),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "configmaps \"tmp-x\" is forbidden: ValidatingAdmissionPolicy 'small-configmaps' with binding 'small-configmaps-binding' denied request: failed expression: !object.metadata.name.startsWith('tmp-')"
    );
    cms.create(&PostParams::default(), &cm("fine"))
        .await
        .expect("a small configmap is admitted");
    // elsewhere the binding does not apply
    let plain: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    plain
        .create(&PostParams::default(), &big)
        .await
        .expect("not bound in default");
}
