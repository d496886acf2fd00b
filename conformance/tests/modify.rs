//! Changing objects in place: `edit`, `patch` (strategic, merge, json, status),
//! `label`, `annotate`, `set image`, `scale` and `replace`.

use conformance::*;
use serde_json::json;

fn with_configmap(prefix: &str) -> Namespace {
    let ns = Namespace::new(prefix);
    ns.k(&[
        "create",
        "configmap",
        "x",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ])
    .ok_exactly("configmap/x created");
    ns
}

fn with_deployment(prefix: &str) -> Namespace {
    let ns = Namespace::new(prefix);
    ns.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ])
    .ok_exactly("deployment.apps/web created");
    ns
}

#[test]
fn edit_with_an_editor_script() {
    let ns = with_configmap("edit");
    let editor = ns.script("edit.sh", r#"sed -i 's/^  a: "1"$/  a: edited/' "$1""#);
    ns.k_env(&["edit", "configmap", "x"], &[("EDITOR", &editor)])
        .ok_exactly("configmap/x edited");
    assert_eq!(ns.jsonpath(&["configmap", "x"], "{.data.a}"), "edited");

    // KUBE_EDITOR wins over EDITOR; an editor that changes nothing cancels the edit.
    let rv = ns.jsonpath(&["configmap", "x"], "{.metadata.resourceVersion}");
    let out = ns.k_env(
        &["edit", "configmap", "x"],
        &[("KUBE_EDITOR", "true"), ("EDITOR", &editor)],
    );
    out.ok();
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("Edit cancelled, no changes made."),
        "{out}"
    );
    assert_eq!(
        ns.jsonpath(&["configmap", "x"], "{.metadata.resourceVersion}"),
        rv
    );

    // Editing a deployment's spec bumps its generation.
    let ns = with_deployment("edit-deploy");
    let editor = ns.script(
        "replicas.sh",
        r#"sed -i 's/^  replicas: 2$/  replicas: 4/' "$1""#,
    );
    ns.k_env(&["edit", "deployment", "web"], &[("EDITOR", &editor)])
        .ok_exactly("deployment.apps/web edited");
    assert_eq!(
        ns.jsonpath(
            &["deployment", "web"],
            "{.spec.replicas} {.metadata.generation}"
        ),
        "4 2"
    );
}

#[test]
fn patch_strategic_merge_and_json() {
    let ns = with_configmap("patch");
    ns.k(&["patch", "configmap", "x", "-p", r#"{"data":{"c":"3"}}"#])
        .ok_exactly("configmap/x patched");
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=merge",
        "-p",
        r#"{"data":{"b":null}}"#,
    ])
    .ok_exactly("configmap/x patched");
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/a","value":"10"}]"#,
    ])
    .ok_exactly("configmap/x patched");
    assert_eq!(
        ns.get_json(&["configmap", "x"])["data"],
        json!({"a": "10", "c": "3"})
    );
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"10"}}"#,
    ])
    .ok_exactly("configmap/x patched (no change)");

    // A failing json-patch test changes nothing.
    let before = ns.snapshot("configmaps");
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/a","value":"nope"},{"op":"remove","path":"/data/c"}]"#,
    ])
    .fails();
    assert_eq!(ns.snapshot("configmaps"), before);
}

#[test]
fn patch_strategic_merges_containers_by_name() {
    let ns = with_deployment("patch-smp");
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26","env":[{"name":"MODE","value":"test"}]}]}}}}"#;
    ns.k(&["patch", "deployment", "web", "-p", patch])
        .ok_exactly("deployment.apps/web patched");
    let containers =
        ns.get_json(&["deployment", "web"])["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().map(Vec::len), Some(1), "{containers}");
    assert_eq!(containers[0]["image"], "nginx:1.26");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "MODE", "value": "test"}])
    );
    assert_eq!(containers[0]["imagePullPolicy"], "IfNotPresent");
    // The same patch as merge replaces the whole list.
    let merge =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"other","image":"busybox"}]}}}}"#;
    ns.k(&["patch", "deployment", "web", "--type=merge", "-p", merge])
        .ok_exactly("deployment.apps/web patched");
    assert_eq!(
        ns.jsonpath(
            &["deployment", "web"],
            "{.spec.template.spec.containers[*].name}"
        ),
        "other"
    );
    assert_eq!(
        ns.jsonpath(&["deployment", "web"], "{.metadata.generation}"),
        "3"
    );
}

#[test]
fn patch_status_subresource_is_separate_from_spec() {
    let ns = with_deployment("patch-status");
    ns.k(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":5}}"#,
    ])
    .ok_exactly("deployment.apps/web patched");
    assert_eq!(
        ns.jsonpath(
            &["deployment", "web"],
            "{.status.replicas} {.spec.replicas} {.metadata.generation}"
        ),
        "5 2 1"
    );
    // Status written through the main resource is ignored...
    ns.k(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":9}}"#,
    ])
    .ok_exactly("deployment.apps/web patched (no change)");
    // ...and spec written through status is ignored.
    ns.k(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":7}}"#,
    ])
    .ok_exactly("deployment.apps/web patched (no change)");
    assert_eq!(
        ns.jsonpath(
            &["deployment", "web"],
            "{.status.replicas} {.spec.replicas}"
        ),
        "5 2"
    );
    assert_table(
        ns.k(&["get", "deployment", "web", "--subresource=status"])
            .ok(),
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        &[&["web", "0/2", "0", "0", "{age}"]],
    );
}

#[test]
fn label_and_annotate() {
    let ns = with_configmap("label");
    ns.k(&["label", "configmap", "x", "env=prod", "tier=fe"])
        .ok_exactly("configmap/x labeled");
    ns.k(&["label", "configmap", "x", "env=dev"])
        .fails_exactly("error: 'env' already has a value (prod), and --overwrite is false");
    ns.k(&["label", "configmap", "x", "env=dev", "--overwrite"])
        .ok_exactly("configmap/x labeled");
    ns.k(&["label", "configmap", "x", "tier-"])
        .ok_exactly("configmap/x unlabeled");
    assert_eq!(
        ns.jsonpath(&["configmap", "x"], "{.metadata.labels}"),
        r#"{"env":"dev"}"#
    );
    ns.k(&["label", "configmap", "--all", "all=yes"])
        .ok_exactly("configmap/x labeled");

    ns.k(&["annotate", "configmap", "x", "note=hello world"])
        .ok_exactly("configmap/x annotated");
    ns.k(&["annotate", "configmap", "x", "note=again"])
        .fails_exactly("error: --overwrite is false but found the following declared annotation(s): 'note' already has a value (hello world)");
    ns.k(&["annotate", "configmap", "x", "note=again", "--overwrite"])
        .ok_exactly("configmap/x annotated");
    assert_eq!(
        ns.jsonpath(&["configmap", "x"], "{.metadata.annotations.note}"),
        "again"
    );
    ns.k(&["annotate", "configmap", "x", "note-"])
        .ok_exactly("configmap/x annotated");
    assert_eq!(
        ns.jsonpath(&["configmap", "x"], "{.metadata.annotations}"),
        ""
    );

    // A stale resourceVersion precondition is a conflict, and changes nothing.
    let before = ns.snapshot("configmaps");
    ns.k(&[
        "label",
        "configmap",
        "x",
        "stale=yes",
        "--resource-version=1",
    ])
    .fails_with(
        "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; \
         please apply your changes to the latest version and try again",
    );
    assert_eq!(ns.snapshot("configmaps"), before);
}

#[test]
fn set_image() {
    let ns = with_deployment("set-image");
    ns.k(&["set", "image", "deployment/web", "nginx=nginx:1.27"])
        .ok_exactly("deployment.apps/web image updated");
    assert_eq!(
        ns.jsonpath(
            &["deployment", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.27"
    );
    ns.k(&["set", "image", "deployment/web", "nope=nginx:1"])
        .fails_exactly("error: unable to find container named \"nope\"");
}

#[test]
fn scale_through_the_scale_subresource() {
    let ns = with_deployment("scale");
    ns.k(&["scale", "deployment", "web", "--replicas=5"])
        .ok_exactly("deployment.apps/web scaled");
    assert_eq!(ns.jsonpath(&["deployment", "web"], "{.spec.replicas}"), "5");
    ns.k(&[
        "scale",
        "deployment",
        "web",
        "--current-replicas=2",
        "--replicas=3",
    ])
    .fails_exactly("error: Expected replicas to be 2, was 5");
    assert_eq!(ns.jsonpath(&["deployment", "web"], "{.spec.replicas}"), "5");

    let path = format!("/apis/apps/v1/namespaces/{}/deployments/web/scale", ns.name);
    let scale: serde_json::Value =
        serde_json::from_str(ns.kubectl(&["get", "--raw", &path]).ok()).expect("json");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=web");
    assert_eq!(scale["metadata"]["name"], "web");
}

#[test]
fn replace_from_a_file() {
    let ns = with_configmap("replace");
    let yaml = ns
        .k(&["get", "configmap", "x", "-o", "yaml"])
        .ok()
        .replace("a: \"1\"", "a: replaced");
    let f = ns.write("x.yaml", &yaml);
    ns.k(&["replace", "-f", &f])
        .ok_exactly("configmap/x replaced");
    assert_eq!(
        ns.get_json(&["configmap", "x"])["data"],
        json!({"a": "replaced", "b": "2"})
    );
    // Without a resourceVersion, replace is unconditional.
    let f = ns.write(
        "fresh.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  only: one\n",
    );
    ns.k(&["replace", "-f", &f])
        .ok_exactly("configmap/x replaced");
    assert_eq!(
        ns.get_json(&["configmap", "x"])["data"],
        json!({"only": "one"})
    );
}
