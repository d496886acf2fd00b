//! `--dry-run=server`: the request runs through admission and validation, kubectl
//! prints what would happen, and nothing is persisted. `--dry-run=client` never asks.

use conformance::*;
use serde_json::json;

#[test]
fn dry_run_server_create_persists_nothing() {
    let ns = Namespace::new("dry-create");
    ns.k(&[
        "create",
        "configmap",
        "x",
        "--from-literal=a=1",
        "--dry-run=server",
    ])
    .ok_exactly("configmap/x created (server dry run)");
    ns.assert_not_found("configmaps", "x");

    // The object is built as for real: defaults are filled in.
    let out = ns.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--dry-run=server",
        "-o",
        "json",
    ]);
    let d: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["metadata"]["generation"], 1);
    ns.assert_not_found("deployments.apps", "web");

    let f = ns.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yy\ndata:\n  a: '1'\n",
    );
    ns.k(&["create", "-f", &f, "--dry-run=server"])
        .ok_exactly("configmap/yy created (server dry run)");
    ns.k(&["apply", "-f", &f, "--dry-run=server"])
        .ok_exactly("configmap/yy created (server dry run)");
    ns.k(&["apply", "--server-side", "-f", &f, "--dry-run=server"])
        .ok_exactly("configmap/yy serverside-applied (server dry run)");
    ns.assert_not_found("configmaps", "yy");

    // Admission still runs: a missing namespace is still an error.
    ns.kubectl(&[
        "create",
        "configmap",
        "z",
        "-n",
        "conformance-no-such-namespace",
        "--dry-run=server",
    ])
    .fails_exactly(
        "error: failed to create configmap: namespaces \"conformance-no-such-namespace\" not found",
    );

    ns.k(&[
        "create",
        "configmap",
        "x",
        "--from-literal=a=1",
        "--dry-run=client",
    ])
    .ok_exactly("configmap/x created (dry run)");
    ns.assert_not_found("configmaps", "x");
}

#[test]
fn dry_run_server_changes_persist_nothing() {
    let ns = Namespace::new("dry-change");
    let n = Some(ns.name.as_str());
    ns.k(&["create", "configmap", "x", "--from-literal=a=1"])
        .ok_exactly("configmap/x created");
    ns.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])
    .ok_exactly("deployment.apps/web created");
    let before = ns.snapshot("configmaps,deployments");

    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
        "--dry-run=server",
    ])
    .ok_exactly("configmap/x patched"); // kubectl patch prints no dry-run suffix
    ns.k(&["label", "configmap", "x", "l=v", "--dry-run=server"])
        .ok_exactly("configmap/x labeled (server dry run)");
    ns.k(&["annotate", "configmap", "x", "a=v", "--dry-run=server"])
        .ok_exactly("configmap/x annotated (server dry run)");
    ns.k(&[
        "scale",
        "deployment",
        "web",
        "--replicas=5",
        "--dry-run=server",
    ])
    .ok_exactly("deployment.apps/web scaled (server dry run)");
    ns.k(&[
        "set",
        "image",
        "deployment/web",
        "nginx=nginx:2",
        "--dry-run=server",
    ])
    .ok_exactly("deployment.apps/web image updated (server dry run)");
    let f = ns.write(
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: '3'\n",
    );
    ns.k(&["apply", "-f", &f, "--dry-run=server"])
        .ok_exactly("configmap/x configured (server dry run)");
    ns.k(&["replace", "-f", &f, "--dry-run=server"])
        .ok_exactly("configmap/x replaced (server dry run)");
    ns.k(&["delete", "configmap", "x", "--dry-run=server"])
        .ok_exactly(&deleted("configmap", "x", n, " (server dry run)"));
    ns.k(&["delete", "deployment", "web", "--dry-run=server"])
        .ok_exactly(&deleted("deployment.apps", "web", n, " (server dry run)"));

    assert_eq!(ns.snapshot("configmaps,deployments"), before);
    assert_eq!(ns.get_json(&["configmap", "x"])["data"], json!({"a": "1"}));
    assert_eq!(
        ns.jsonpath(
            &["deployment", "web"],
            "{.spec.replicas} {.spec.template.spec.containers[0].image}"
        ),
        "2 nginx"
    );
}
