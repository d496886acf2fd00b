//! `kubectl delete`: by name, by label, `--all`, from a file, waiting on finalizers,
//! and what happens to namespaces and unscheduled pods.

use conformance::*;

fn configmaps(ns: &Namespace, names: &[&str], label: &str) {
    for name in names {
        ns.k(&["create", "configmap", name])
            .ok_exactly(&format!("configmap/{name} created"));
        ns.k(&["label", "configmap", name, label])
            .ok_exactly(&format!("configmap/{name} labeled"));
    }
}

#[test]
fn delete_by_name_label_and_all() {
    let ns = Namespace::new("delete");
    let n = Some(ns.name.as_str());
    configmaps(&ns, &["a", "b", "c", "d"], "group=one");
    ns.k(&["label", "configmap", "c", "d", "group=two", "--overwrite"])
        .ok_exactly("configmap/c labeled\nconfigmap/d labeled");

    ns.k(&["delete", "configmap", "a"])
        .ok_exactly(&deleted("configmap", "a", n, ""));
    ns.assert_not_found("configmaps", "a");
    ns.k(&["delete", "configmap", "a"])
        .fails_exactly("Error from server (NotFound): configmaps \"a\" not found");
    ns.k(&["delete", "configmap", "a", "--ignore-not-found"])
        .ok_exactly("");

    ns.k(&["delete", "configmaps", "-l", "group=two"])
        .ok_exactly(&format!(
            "{}\n{}",
            deleted("configmap", "c", n, ""),
            deleted("configmap", "d", n, "")
        ));
    ns.k(&["delete", "configmaps", "-l", "group=two"])
        .ok_exactly("No resources found");

    ns.k(&["delete", "configmaps", "-l", "group", "-o", "name"])
        .ok_exactly("configmap/b");
    ns.k(&["get", "configmaps", "-l", "group", "-o", "name"])
        .ok_exactly("");
}

#[test]
fn delete_all_in_namespace_only() {
    let a = Namespace::new("delete-all-a");
    let b = Namespace::new("delete-all-b");
    configmaps(&a, &["x", "y"], "t=1");
    configmaps(&b, &["z"], "t=1");
    // Secrets are untouched by a configmap --all.
    a.k(&["create", "secret", "generic", "keep", "--from-literal=k=v"])
        .ok_exactly("secret/keep created");
    let out = a.k(&["delete", "configmaps", "--all", "-o", "name"]);
    let mut lines: Vec<&str> = out
        .ok()
        .lines()
        .filter(|l| *l != "configmap/kube-root-ca.crt")
        .collect();
    lines.sort();
    assert_eq!(lines, ["configmap/x", "configmap/y"]);
    a.k(&["get", "configmaps", "-l", "t", "-o", "name"])
        .ok_exactly("");
    a.k(&["get", "secret", "keep", "-o", "name"])
        .ok_exactly("secret/keep");
    b.k(&["get", "configmaps", "-l", "t", "-o", "name"])
        .ok_exactly("configmap/z");
}

#[test]
fn delete_from_file() {
    let ns = Namespace::new("delete-file");
    let n = Some(ns.name.as_str());
    let f = ns.write(
        "objs.yaml",
        "\
apiVersion: v1
kind: ConfigMap
metadata: {name: one}
---
apiVersion: v1
kind: Secret
metadata: {name: two}
",
    );
    ns.k(&["create", "-f", &f])
        .ok_exactly("configmap/one created\nsecret/two created");
    ns.k(&["delete", "-f", &f]).ok_exactly(&format!(
        "{}\n{}",
        deleted("configmap", "one", n, ""),
        deleted("secret", "two", n, "")
    ));
    ns.k(&["delete", "-f", &f]).fails_exactly(
        "Error from server (NotFound): error when deleting \"objs.yaml\": configmaps \"one\" not found\n\
         Error from server (NotFound): error when deleting \"objs.yaml\": secrets \"two\" not found",
    );
}

#[test]
fn delete_waits_for_finalizers() {
    let ns = Namespace::new("delete-wait");
    let n = Some(ns.name.as_str());
    let f = ns.write(
        "held.yaml",
        "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  finalizers: [example.com/hold]
",
    );
    ns.k(&["create", "-f", &f])
        .ok_exactly("configmap/held created");
    // --wait (the default) gives up after --timeout; the object is only marked.
    let out = ns.k(&["delete", "configmap", "held", "--timeout=2s"]);
    assert_eq!(
        out.stdout,
        format!("{}\n", deleted("configmap", "held", n, ""))
    );
    // when the deadline hits while kubectl's watch is being set up, client-go also logs a
    // reflector error line (timing on the client side); the error itself is fixed
    let stderr: Vec<&str> = out
        .fails()
        .lines()
        .filter(|l| !l.contains("reflector.go"))
        .collect();
    assert_eq!(
        stderr,
        ["error: timed out waiting for the condition on configmaps/held"],
        "\n{out}"
    );
    let ts = ns.jsonpath(&["configmap", "held"], "{.metadata.deletionTimestamp}");
    assert!(matches("{ts}", &ts), "deletionTimestamp {ts:?}");
    // A second delete of a terminating object is accepted and changes nothing.
    ns.k(&["delete", "configmap", "held", "--wait=false"])
        .ok_exactly(&deleted("configmap", "held", n, ""));
    // Removing the finalizer completes the deletion.
    ns.k(&[
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .ok_exactly("configmap/held patched");
    ns.assert_not_found("configmaps", "held");
}

#[test]
fn delete_force_and_unscheduled_pod() {
    let ns = Namespace::new("delete-pod");
    let n = Some(ns.name.as_str());
    ns.k(&["create", "configmap", "x"])
        .ok_exactly("configmap/x created");
    let out = ns.k(&["delete", "configmap", "x", "--grace-period=0", "--force"]);
    assert_eq!(
        out.ok(),
        format!(
            "{}\n",
            deleted("configmap", "x", n, "").replace("deleted", "force deleted")
        )
    );
    assert!(
        out.stderr
            .starts_with("Warning: Immediate deletion does not wait for confirmation"),
        "{out}"
    );

    // A pod bound to no node has nothing to wait for: it goes at once.
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
    ns.k(&["delete", "pod", "p", "--timeout=10s"])
        .ok_exactly(&deleted("pod", "p", n, ""));
    ns.assert_not_found("pods", "p");
}

#[test]
fn delete_namespace_marks_it_terminating() {
    let ns = Namespace::new("delete-ns");
    ns.k(&["create", "configmap", "x"])
        .ok_exactly("configmap/x created");
    ns.kubectl(&["delete", "namespace", &ns.name, "--wait=false"])
        .ok_exactly(&deleted("namespace", &ns.name, None, ""));
    // Without a namespace controller it stays Terminating; with one it may be gone.
    let phase = ns.kubectl(&[
        "get",
        "namespace",
        &ns.name,
        "-o",
        "jsonpath={.status.phase}",
        "--ignore-not-found",
    ]);
    assert!(["Terminating", ""].contains(&phase.ok()), "{phase}");
    if phase.stdout == "Terminating" {
        ns.k(&["create", "configmap", "late"]).fails_exactly(&format!(
            "error: failed to create configmap: configmaps \"late\" is forbidden: unable to create new content in namespace {} because it is being terminated",
            ns.name
        ));
    }
}
