//! `kubectl apply` (client-side and `--server-side`) and `kubectl diff`.

use conformance::*;
use serde_json::json;

const CM_V1: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
data:
  a: '1'
  b: '1'
";

const CM_V2: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
data:
  a: '2'
";

#[test]
fn apply_client_side_twice_then_change() {
    let ns = Namespace::new("apply-csa");
    let f = ns.write("cm.yaml", CM_V1);
    ns.k(&["apply", "-f", &f]).ok_exactly("configmap/x created");
    ns.k(&["apply", "-f", &f])
        .ok_exactly("configmap/x unchanged");
    let cm = ns.get_json(&["configmap", "x"]);
    let last: serde_json::Value = serde_json::from_str(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("annotation"),
    )
    .expect("last-applied is JSON");
    assert_eq!(last["data"], json!({"a": "1", "b": "1"}));
    assert_eq!(last["metadata"]["name"], "x");

    // The change drops b: a three-way merge removes it from the live object.
    ns.write("cm.yaml", CM_V2);
    ns.k(&["apply", "-f", &f])
        .ok_exactly("configmap/x configured");
    assert_eq!(ns.get_json(&["configmap", "x"])["data"], json!({"a": "2"}));
    ns.k(&["apply", "-f", &f])
        .ok_exactly("configmap/x unchanged");
}

#[test]
fn apply_deployment_and_change_image() {
    let ns = Namespace::new("apply-deploy");
    let deploy = |image: &str| {
        format!(
            "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: {image}
"
        )
    };
    let f = ns.write("deploy.yaml", &deploy("nginx:1.25"));
    ns.k(&["apply", "-f", &f])
        .ok_exactly("deployment.apps/web created");
    ns.k(&["apply", "-f", &f])
        .ok_exactly("deployment.apps/web unchanged");
    assert_eq!(
        ns.jsonpath(&["deployment", "web"], "{.metadata.generation}"),
        "1"
    );
    ns.write("deploy.yaml", &deploy("nginx:1.27"));
    ns.k(&["apply", "-f", &f])
        .ok_exactly("deployment.apps/web configured");
    assert_eq!(
        ns.jsonpath(
            &["deployment", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.27"
    );
    assert_eq!(
        ns.jsonpath(&["deployment", "web"], "{.metadata.generation}"),
        "2"
    );
}

#[test]
fn apply_server_side_twice_then_change() {
    let ns = Namespace::new("apply-ssa");
    let f = ns.write("cm.yaml", CM_V1);
    ns.k(&["apply", "--server-side", "-f", &f])
        .ok_exactly("configmap/x serverside-applied");
    ns.k(&["apply", "--server-side", "-f", &f])
        .ok_exactly("configmap/x serverside-applied");
    let cm = ns.get_json(&["configmap", "x", "--show-managed-fields"]);
    assert!(
        cm["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );
    let managed = cm["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert_eq!(managed[0]["manager"], "kubectl");
    assert_eq!(managed[0]["operation"], "Apply");
    assert_eq!(managed[0]["apiVersion"], "v1");
    assert_eq!(
        managed[0]["fieldsV1"],
        json!({"f:data": {"f:a": {}, "f:b": {}}})
    );

    // Fields the applier no longer sets, and owns alone, are removed.
    ns.write("cm.yaml", CM_V2);
    ns.k(&["apply", "--server-side", "-f", &f])
        .ok_exactly("configmap/x serverside-applied");
    assert_eq!(ns.get_json(&["configmap", "x"])["data"], json!({"a": "2"}));

    // Another manager takes a field over; applying it again is a conflict...
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"other"}}"#,
    ])
    .ok_exactly("configmap/x patched");
    let before = ns.snapshot("configmaps");
    ns.write("cm.yaml", &CM_V2.replace("'2'", "'3'"));
    ns.k(&["apply", "--server-side", "-f", &f]).fails_with(
        "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.a",
    );
    assert_eq!(ns.snapshot("configmaps"), before);
    // ...unless forced.
    ns.k(&["apply", "--server-side", "--force-conflicts", "-f", &f])
        .ok_exactly("configmap/x serverside-applied");
    assert_eq!(ns.jsonpath(&["configmap", "x"], "{.data.a}"), "3");
}

#[test]
fn apply_server_side_with_field_manager_shares_ownership() {
    let ns = Namespace::new("apply-ssa-share");
    let f = ns.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: '1'\n",
    );
    ns.k(&["apply", "--server-side", "--field-manager=first", "-f", &f])
        .ok_exactly("configmap/x serverside-applied");
    ns.k(&["apply", "--server-side", "--field-manager=second", "-f", &f])
        .ok_exactly("configmap/x serverside-applied");
    let cm = ns.get_json(&["configmap", "x", "--show-managed-fields"]);
    let mut managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    managers.sort();
    assert_eq!(managers, ["first", "second"]);
}

#[test]
fn diff_shows_only_the_change() {
    let ns = Namespace::new("diff");
    let f = ns.write("cm.yaml", CM_V1);
    // A new object: all of it is added.
    let new = ns.k(&["diff", "-f", &f]);
    assert_eq!(
        new.status.code(),
        Some(1),
        "diff of a new object exits 1\n{new}"
    );
    assert!(new.stdout.lines().any(|l| l == "+  name: x"), "{new}");

    ns.k(&["apply", "-f", &f]).ok_exactly("configmap/x created");
    let same = ns.k(&["diff", "-f", &f]);
    assert_eq!(same.status.code(), Some(0), "{same}");
    assert_eq!(same.stdout, "");

    ns.write("cm.yaml", CM_V2);
    let diff = ns.k(&["diff", "-f", &f]);
    assert_eq!(diff.status.code(), Some(1), "{diff}");
    // Only the data moved: a dry-run must not bump resourceVersion or generation.
    let changed: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    let mut changed = changed
        .into_iter()
        .filter(|l| !l.contains("last-applied-configuration") && !l.contains("\"data\""))
        .collect::<Vec<_>>();
    changed.sort();
    assert_eq!(
        changed,
        ["+  a: \"2\"", "-  a: \"1\"", "-  b: \"1\""],
        "\n{diff}"
    );
    // And nothing was stored.
    assert_eq!(
        ns.get_json(&["configmap", "x"])["data"],
        json!({"a": "1", "b": "1"})
    );

    let ssa = ns.k(&["diff", "--server-side", "--force-conflicts", "-f", &f]);
    assert_eq!(ssa.status.code(), Some(1), "{ssa}");
    assert!(ssa.stdout.lines().any(|l| l == "+  a: \"2\""), "{ssa}");
}
