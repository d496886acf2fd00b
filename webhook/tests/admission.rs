//! Admission webhooks against a real HTTPS server: patches, denials, failure policies,
//! timeouts, matching, match conditions, reinvocation and protocol checks.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{TestResolver, answer, closed_port, handler, patch, pki, serve};
use webhook::{Dispatcher, GroupVersionKind, GroupVersionResource, Operation, Request};

fn pod(name: &str, namespace: &str) -> Request {
    Request {
        uid: "req-1".into(),
        kind: GroupVersionKind::new("", "v1", "Pod"),
        resource: GroupVersionResource::new("", "v1", "pods"),
        name: name.into(),
        namespace: namespace.into(),
        operation: Operation::Create,
        object: Some(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "web"}},
        })),
        ..Request::default()
    }
}

/// A configuration of one webhook reaching the test server over its Service.
fn config(kind: &str, name: &str, ca: &str, webhook: Value) -> Value {
    let mut hook = json!({
        "name": name,
        "clientConfig": {
            "service": {"namespace": "test", "name": "hook", "path": "/hook", "port": 443},
            "caBundle": ca,
        },
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(h), Some(w)) = (hook.as_object_mut(), webhook.as_object()) {
        h.extend(w.clone());
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name}, "webhooks": [hook]})
}

fn mutating(name: &str, ca: &str, webhook: Value) -> Value {
    config("MutatingWebhookConfiguration", name, ca, webhook)
}

fn validating(name: &str, ca: &str, webhook: Value) -> Value {
    config("ValidatingWebhookConfiguration", name, ca, webhook)
}

#[tokio::test]
async fn mutating_webhook_adds_a_label() {
    let pki = pki();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let addr = serve(
        &pki,
        handler(move |path, review| {
            s.lock().unwrap().push((path, review.clone()));
            async move {
                let mut fields = patch(json!([
                    {"op": "add", "path": "/metadata/labels/injected", "value": "yes"}
                ]));
                fields["warnings"] = json!(["deprecated field"]);
                fields["auditAnnotations"] = json!({"decision": "patched"});
                (200, answer(&review, fields))
            }
        }),
    )
    .await;
    let resolver = TestResolver::new(addr);
    let mut req = pod("web-1", "prod");
    let out = Dispatcher::new()
        .mutate(
            &[mutating("inject.example.com", &pki.ca_bundle, json!({}))],
            &mut req,
            &resolver,
        )
        .await
        .expect("admitted");
    let object = req.object.unwrap();
    assert_eq!(object["metadata"]["labels"]["injected"], "yes");
    assert_eq!(object["metadata"]["labels"]["app"], "web");
    assert_eq!(out.warnings, ["deprecated field"]);
    assert!(
        out.audit_annotations
            .contains(&("inject.example.com/decision".into(), "patched".into()))
    );
    let mutation = out
        .audit_annotations
        .iter()
        .find(|(k, _)| k == "mutation.webhook.admission.k8s.io/round_0_index_0")
        .expect("mutation annotation");
    assert!(mutation.1.contains("\"mutated\":true"), "{}", mutation.1);

    let seen = seen.lock().unwrap();
    let (path, review) = &seen[0];
    assert_eq!(path, "/hook?timeout=10s");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(
        review["request"]["kind"],
        json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    assert_eq!(review["request"]["operation"], "CREATE");
    assert_eq!(review["request"]["namespace"], "prod");
    assert_eq!(review["request"]["dryRun"], false);
    assert!(!review["request"]["uid"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn validating_webhook_denies_with_its_message_and_code() {
    let pki = pki();
    let addr = serve(
        &pki,
        handler(|_, review| async move {
            let fields = json!({"allowed": false, "status": {
                "code": 422, "reason": "Invalid", "message": "pods named web-1 are not allowed"}});
            (200, answer(&review, fields))
        }),
    )
    .await;
    let url = format!("https://127.0.0.1:{}/validate", addr.port());
    let config = validating(
        "deny.example.com",
        &pki.ca_bundle,
        json!({"clientConfig": {"url": url, "caBundle": pki.ca_bundle}}),
    );
    let err = Dispatcher::new()
        .validate(&[config], &pod("web-1", "prod"), &TestResolver::new(addr))
        .await
        .expect_err("denied");
    assert_eq!(
        err.error.message,
        "admission webhook \"deny.example.com\" denied the request: pods named web-1 are not allowed"
    );
    assert_eq!(err.error.code, 422);
    assert_eq!(err.error.reason, "Invalid");
}

#[tokio::test]
async fn unreachable_webhook_fails_closed_or_open_by_policy() {
    let pki = pki();
    let down = closed_port().await;
    let url = format!("https://127.0.0.1:{}/x", down.port());
    let resolver = TestResolver::new(down);
    let d = Dispatcher::new();
    let fail = validating(
        "down.example.com",
        &pki.ca_bundle,
        json!({"clientConfig": {"url": url}}),
    );
    let err = d
        .validate(&[fail], &pod("p", "prod"), &resolver)
        .await
        .expect_err("fails closed");
    assert_eq!(err.error.code, 500);
    assert_eq!(err.error.reason, "InternalError");
    assert_eq!(
        err.error.message,
        format!(
            "Internal error occurred: failed calling webhook \"down.example.com\": failed to call webhook: Post \"{url}?timeout=10s\": dial tcp 127.0.0.1:{}: connect: connection refused",
            down.port()
        )
    );

    let ignore = validating(
        "down.example.com",
        &pki.ca_bundle,
        json!({"clientConfig": {"url": url}, "failurePolicy": "Ignore"}),
    );
    let out = d
        .validate(&[ignore], &pod("p", "prod"), &resolver)
        .await
        .expect("fails open");
    assert!(out.audit_annotations.contains(&(
        "failed-open.validating.webhook.admission.k8s.io/round_0_index_0".into(),
        "down.example.com".into()
    )));

    // a Service the resolver does not know: upstream's resolver error is passed through
    let mut req = pod("p", "prod");
    let missing = mutating(
        "svc.example.com",
        &pki.ca_bundle,
        json!({"clientConfig": {"service": {"namespace": "test", "name": "gone"}}}),
    );
    let err = d.mutate(&[missing], &mut req, &resolver).await.unwrap_err();
    assert_eq!(
        err.error.message,
        "Internal error occurred: failed calling webhook \"svc.example.com\": failed to call webhook: Post \"https://gone.test.svc:443/?timeout=10s\": service \"gone\" not found"
    );
}

#[tokio::test]
async fn slow_webhook_times_out_like_go() {
    let pki = pki();
    let addr = serve(
        &pki,
        handler(|_, review| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (200, answer(&review, json!({})))
        }),
    )
    .await;
    let config = validating(
        "slow.example.com",
        &pki.ca_bundle,
        json!({"timeoutSeconds": 1}),
    );
    let started = std::time::Instant::now();
    let err = Dispatcher::new()
        .validate(&[config], &pod("p", "prod"), &TestResolver::new(addr))
        .await
        .expect_err("timed out");
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(
        err.error.message,
        "Internal error occurred: failed calling webhook \"slow.example.com\": failed to call webhook: Post \"https://hook.test.svc:443/hook?timeout=1s\": context deadline exceeded"
    );
}

/// A server counting its calls, allowing everything.
async fn counting(pki: &support::Pki) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let addr = serve(
        pki,
        handler(move |_, review| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { (200, answer(&review, json!({}))) }
        }),
    )
    .await;
    (addr, calls)
}

#[tokio::test]
async fn selectors_and_rules_decide_which_webhooks_run() {
    let pki = pki();
    let (addr, calls) = counting(&pki).await;
    let resolver = TestResolver::new(addr);
    let d = Dispatcher::new();
    let ca = &pki.ca_bundle;
    let (d, resolver, calls) = (&d, &resolver, &calls);
    let run = move |config: Value, req: Request| async move {
        let before = calls.load(Ordering::SeqCst);
        let r = d.validate(&[config], &req, resolver).await;
        (r, calls.load(Ordering::SeqCst) - before)
    };

    let ns_sel = json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}});
    assert_eq!(
        run(validating("n", ca, ns_sel.clone()), pod("p", "prod"))
            .await
            .1,
        1
    );
    assert_eq!(
        run(validating("n", ca, ns_sel.clone()), pod("p", "dev"))
            .await
            .1,
        0
    );
    let (r, n) = run(validating("n", ca, ns_sel.clone()), pod("p", "ghost")).await;
    assert_eq!(n, 0);
    let err = r.unwrap_err().error;
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"ghost\" not found")
    );
    let exprs = json!({"namespaceSelector": {"matchExpressions": [
        {"key": "env", "operator": "NotIn", "values": ["prod"]}]}});
    assert_eq!(run(validating("n", ca, exprs), pod("p", "dev")).await.1, 1);

    // a Namespace being created is judged by its own labels
    let mut ns = pod("team-a", "team-a");
    ns.kind = GroupVersionKind::new("", "v1", "Namespace");
    ns.resource = GroupVersionResource::new("", "v1", "namespaces");
    ns.object = Some(json!({"metadata": {"name": "team-a", "labels": {"env": "prod"}}}));
    let any = json!({"namespaceSelector": {"matchLabels": {"env": "prod"}},
        "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]});
    assert_eq!(run(validating("n", ca, any), ns).await.1, 1);

    let obj_sel = json!({"objectSelector": {"matchLabels": {"app": "web"}}});
    assert_eq!(
        run(validating("o", ca, obj_sel.clone()), pod("p", "dev"))
            .await
            .1,
        1
    );
    let mut other = pod("p", "dev");
    other.object = Some(json!({"metadata": {"labels": {"app": "db"}}}));
    assert_eq!(
        run(validating("o", ca, obj_sel.clone()), other.clone())
            .await
            .1,
        0
    );
    other.old_object = Some(json!({"metadata": {"labels": {"app": "web"}}}));
    assert_eq!(run(validating("o", ca, obj_sel), other).await.1, 1);

    let updates_only = json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""],
        "apiVersions": ["v1"], "resources": ["pods"]}]});
    assert_eq!(
        run(validating("r", ca, updates_only), pod("p", "dev"))
            .await
            .1,
        0
    );
    let status_only = json!({"rules": [{"operations": ["*"], "apiGroups": ["*"],
        "apiVersions": ["*"], "resources": ["*/status"], "scope": "Namespaced"}]});
    let mut status = pod("p", "dev");
    status.sub_resource = "status".into();
    assert_eq!(
        run(validating("r", ca, status_only.clone()), status)
            .await
            .1,
        1
    );
    assert_eq!(
        run(validating("r", ca, status_only), pod("p", "dev"))
            .await
            .1,
        0
    );

    // webhook configurations themselves are never sent to webhooks
    let mut cfg = pod("c", "");
    cfg.kind = GroupVersionKind::new(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
    );
    let all = json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]});
    assert_eq!(run(validating("r", ca, all), cfg).await.1, 0);
}

#[tokio::test]
async fn match_conditions_filter_and_fail_closed() {
    let pki = pki();
    let (addr, calls) = counting(&pki).await;
    let resolver = TestResolver::new(addr);
    let d = Dispatcher::new();
    let conds = json!({"matchConditions": [
        {"name": "not-skipped", "expression": "object.metadata.name != 'skip-me'"},
        {"name": "by-user", "expression": "request.userInfo.username != 'system:admin'"},
    ]});
    let config = validating("c.example.com", &pki.ca_bundle, conds);
    d.validate(
        std::slice::from_ref(&config),
        &pod("skip-me", "dev"),
        &resolver,
    )
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    d.validate(&[config], &pod("web", "dev"), &resolver)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let broken =
        json!({"matchConditions": [{"name": "b", "expression": "object.spec.missing == 1"}]});
    let err = d
        .validate(
            &[validating("c.example.com", &pki.ca_bundle, broken.clone())],
            &pod("web", "dev"),
            &resolver,
        )
        .await
        .unwrap_err()
        .error;
    assert_eq!(err.code, 403);
    assert!(
        err.message.starts_with(
            "pods \"web\" is forbidden: expression 'object.spec.missing == 1' resulted in error: "
        ),
        "{}",
        err.message
    );
    let mut ignore = broken;
    ignore["failurePolicy"] = json!("Ignore");
    d.validate(
        &[validating("c.example.com", &pki.ca_bundle, ignore)],
        &pod("web", "dev"),
        &resolver,
    )
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn earlier_webhooks_are_reinvoked_when_later_ones_change_the_object() {
    let pki = pki();
    let first_calls = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen = first_calls.clone();
    let addr = serve(
        &pki,
        handler(move |path, review| {
            let object = review["request"]["object"].clone();
            if path.starts_with("/first") {
                seen.lock().unwrap().push(object.clone());
            }
            async move {
                let labels = &object["metadata"]["labels"];
                let fields = if path.starts_with("/first") && labels.get("first").is_none() {
                    patch(json!([{"op": "add", "path": "/metadata/labels/first", "value": "1"}]))
                } else if path.starts_with("/second") {
                    patch(json!([{"op": "add", "path": "/metadata/labels/second", "value": "1"}]))
                } else {
                    json!({})
                };
                (200, answer(&review, fields))
            }
        }),
    )
    .await;
    let ca = &pki.ca_bundle;
    let svc = |path: &str| json!({"service": {"namespace": "test", "name": "hook", "path": path}, "caBundle": ca});
    let configs = [
        mutating("b-second", ca, json!({"clientConfig": svc("/second")})),
        mutating(
            "a-first",
            ca,
            json!({"clientConfig": svc("/first"), "reinvocationPolicy": "IfNeeded"}),
        ),
    ];
    let mut req = pod("p", "dev");
    let out = Dispatcher::new()
        .mutate(&configs, &mut req, &TestResolver::new(addr))
        .await
        .unwrap();
    let calls = first_calls.lock().unwrap();
    assert_eq!(
        calls.len(),
        2,
        "a-first runs again after b-second changed the object"
    );
    assert!(calls[0]["metadata"]["labels"].get("second").is_none());
    assert_eq!(calls[1]["metadata"]["labels"]["second"], "1");
    assert_eq!(
        req.object.unwrap()["metadata"]["labels"],
        json!({"app": "web", "first": "1", "second": "1"})
    );
    assert!(
        out.audit_annotations
            .iter()
            .any(|(k, _)| k == "mutation.webhook.admission.k8s.io/round_1_index_0")
    );
}

#[tokio::test]
async fn protocol_violations_are_failed_calls() {
    let pki = pki();
    let addr = serve(
        &pki,
        handler(|path, review| async move {
            if path.starts_with("/wrong-uid") {
                let mut a = answer(&review, json!({}));
                a["response"]["uid"] = json!("wrong");
                (200, a)
            } else {
                (500, json!({"oops": true}))
            }
        }),
    )
    .await;
    let resolver = TestResolver::new(addr);
    let ca = &pki.ca_bundle;
    let svc = |path: &str| json!({"clientConfig": {"service": {"namespace": "test", "name": "hook", "path": path}, "caBundle": ca}});
    let d = Dispatcher::new();
    let err = d
        .validate(
            &[validating("uid.example.com", ca, svc("/wrong-uid"))],
            &pod("p", "dev"),
            &resolver,
        )
        .await
        .unwrap_err()
        .error;
    assert_eq!(err.code, 500);
    assert!(
        err.message.starts_with("Internal error occurred: failed calling webhook \"uid.example.com\": received invalid webhook response: expected response.uid=\"")
            && err.message.ends_with("\", got \"wrong\""),
        "{}",
        err.message
    );
    let err = d
        .validate(
            &[validating("500.example.com", ca, svc("/error"))],
            &pod("p", "dev"),
            &resolver,
        )
        .await
        .unwrap_err()
        .error;
    assert_eq!(
        err.message,
        "Internal error occurred: failed calling webhook \"500.example.com\": failed to call webhook: an error on the server (\"unknown\") has prevented the request from succeeding"
    );

    // no caBundle: the server's certificate is not trusted
    let untrusted = json!({"clientConfig": {"service": {"namespace": "test", "name": "hook"}}});
    let err = d
        .validate(
            &[validating("tls.example.com", ca, untrusted)],
            &pod("p", "dev"),
            &resolver,
        )
        .await
        .unwrap_err()
        .error;
    assert!(
        err.message.ends_with(
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn dry_run_needs_side_effect_free_webhooks() {
    let pki = pki();
    let (addr, calls) = counting(&pki).await;
    let resolver = TestResolver::new(addr);
    let mut req = pod("p", "dev");
    req.dry_run = true;
    let some = mutating(
        "fx.example.com",
        &pki.ca_bundle,
        json!({"sideEffects": "Some"}),
    );
    let err = Dispatcher::new()
        .mutate(&[some], &mut req, &resolver)
        .await
        .unwrap_err()
        .error;
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "admission webhook \"fx.example.com\" does not support dry run"
    );
    let on_dry_run = mutating(
        "fx.example.com",
        &pki.ca_bundle,
        json!({"sideEffects": "NoneOnDryRun"}),
    );
    Dispatcher::new()
        .mutate(&[on_dry_run], &mut req, &resolver)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The API server awaits these inside `Send` handlers.
#[test]
fn dispatch_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let d = Dispatcher::new();
    let resolver = TestResolver::new(([127, 0, 0, 1], 1).into());
    let mut req = pod("p", "dev");
    let validate = d.validate(&[], &req, &resolver);
    assert_send(&validate);
    drop(validate);
    let mutate = d.mutate(&[], &mut req, &resolver);
    assert_send(&mutate);
    drop(mutate);
    let convert = d.convert(&Value::Null, vec![], "v1", &resolver);
    assert_send(&convert);
}
