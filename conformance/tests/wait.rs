//! `kubectl wait`: for a jsonpath value, a condition, creation and deletion, and the
//! timeout when the condition never comes.

use conformance::*;
use std::thread;
use std::time::Duration;

/// Runs `args` in `ns` after `delay`, in the background, checking the output.
fn later(ns: &Namespace, delay: Duration, args: &[&str], want: &str) -> thread::JoinHandle<()> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (name, want) = (ns.name.clone(), want.to_string());
    thread::spawn(move || {
        thread::sleep(delay);
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["-n", &name]);
        cluster()
            .run(&all, None, std::path::Path::new("."))
            .ok_exactly(&want);
    })
}

const SOON: Duration = Duration::from_millis(500);

#[test]
fn wait_for_jsonpath() {
    let ns = Namespace::new("wait-jsonpath");
    ns.k(&["create", "configmap", "x", "--from-literal=a=1"])
        .ok_exactly("configmap/x created");
    let patch = later(
        &ns,
        SOON,
        &[
            "patch",
            "configmap",
            "x",
            "--type=merge",
            "-p",
            r#"{"data":{"a":"2"}}"#,
        ],
        "configmap/x patched",
    );
    ns.k(&[
        "wait",
        "--for=jsonpath={.data.a}=2",
        "configmap/x",
        "--timeout=20s",
    ])
    .ok_exactly("configmap/x condition met");
    patch.join().expect("patch");
    // Already true: returns at once.
    ns.k(&[
        "wait",
        "--for=jsonpath={.data.a}=2",
        "configmap/x",
        "--timeout=5s",
    ])
    .ok_exactly("configmap/x condition met");
    ns.k(&[
        "wait",
        "--for=jsonpath={.data.a}=never",
        "configmap/x",
        "--timeout=1s",
    ])
    .fails_exactly("error: timed out waiting for the condition on configmaps/x");
}

#[test]
fn wait_for_condition() {
    let ns = Namespace::new("wait-condition");
    ns.default_serviceaccount();
    let pod = ns.write(
        "pod.yaml",
        "\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: main, image: busybox}]
",
    );
    ns.k(&["create", "-f", &pod]).ok_exactly("pod/p created");
    let status =
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":null}]}}"#;
    let ready = later(
        &ns,
        SOON,
        &[
            "patch",
            "pod",
            "p",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
        "pod/p patched",
    );
    ns.k(&["wait", "--for=condition=Ready", "pod/p", "--timeout=20s"])
        .ok_exactly("pod/p condition met");
    ready.join().expect("patch");
    ns.k(&[
        "wait",
        "--for=condition=Ready=false",
        "pod/p",
        "--timeout=1s",
    ])
    .fails_exactly("error: timed out waiting for the condition on pods/p");
}

#[test]
fn wait_for_create_and_delete() {
    let ns = Namespace::new("wait-create");
    let create = later(
        &ns,
        SOON,
        &["create", "configmap", "y"],
        "configmap/y created",
    );
    ns.k(&["wait", "--for=create", "configmap/y", "--timeout=20s"])
        .ok_exactly("configmap/y condition met");
    create.join().expect("create");

    let delete = later(
        &ns,
        SOON,
        &["delete", "configmap", "y"],
        &deleted("configmap", "y", Some(&ns.name), ""),
    );
    ns.k(&["wait", "--for=delete", "configmap/y", "--timeout=20s"])
        .ok_exactly("configmap/y condition met");
    delete.join().expect("delete");
}
