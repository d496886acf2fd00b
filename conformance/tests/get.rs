//! `kubectl get` in every output format, with selectors, across namespaces, in chunks
//! and watching.

use conformance::*;
use std::time::Duration;

/// Three labelled configmaps: one (app=web), two (app=web, tier=fe), three (app=db).
fn three_configmaps(prefix: &str) -> Namespace {
    let ns = Namespace::new(prefix);
    let file = ns.write(
        "cms.yaml",
        "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
  labels: {app: web}
data: {a: '1'}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: two
  labels: {app: web, tier: fe}
data: {a: '2', b: '2'}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: three
  labels: {app: db}
data: {}
",
    );
    ns.k(&["create", "-f", &file])
        .ok_exactly("configmap/one created\nconfigmap/two created\nconfigmap/three created");
    ns
}

#[test]
fn get_default_table() {
    let ns = three_configmaps("get-table");
    // Lists come back sorted by name.
    assert_table(
        ns.k(&["get", "configmaps", "-l", "app"]).ok(),
        &["NAME", "DATA", "AGE"],
        &[
            &["one", "1", "{age}"],
            &["three", "0", "{age}"],
            &["two", "2", "{age}"],
        ],
    );
    // Several names: printed in the order asked.
    assert_table(
        ns.k(&["get", "cm", "two", "one"]).ok(),
        &["NAME", "DATA", "AGE"],
        &[&["two", "2", "{age}"], &["one", "1", "{age}"]],
    );
    assert_lines(
        ns.k(&["get", "configmap", "one", "--no-headers"]).ok(),
        &["one 1 {age}"],
    );
}

#[test]
fn get_yaml_and_json_of_one_object() {
    let ns = Namespace::new("get-yaml");
    ns.k(&["create", "configmap", "one", "--from-literal=a=1"])
        .ok_exactly("configmap/one created");
    let n = &ns.name;
    assert_lines(
        ns.k(&["get", "configmap", "one", "-o", "yaml"]).ok(),
        &[
            "apiVersion: v1",
            "data:",
            "  a: \"1\"",
            "kind: ConfigMap",
            "metadata:",
            "  creationTimestamp: \"{ts}\"",
            "  name: one",
            &format!("  namespace: {n}"),
            "  resourceVersion: \"{int}\"",
            "  uid: {uid}",
        ],
    );
    assert_lines(
        ns.k(&["get", "configmap", "one", "-o", "json"]).ok(),
        &[
            "{",
            "    \"apiVersion\": \"v1\",",
            "    \"data\": {",
            "        \"a\": \"1\"",
            "    },",
            "    \"kind\": \"ConfigMap\",",
            "    \"metadata\": {",
            "        \"creationTimestamp\": \"{ts}\",",
            "        \"name\": \"one\",",
            &format!("        \"namespace\": \"{n}\","),
            "        \"resourceVersion\": \"{int}\",",
            "        \"uid\": \"{uid}\"",
            "    }",
            "}",
        ],
    );
    // managedFields are hidden unless asked for; kubectl create records itself.
    let out = ns.k(&[
        "get",
        "configmap",
        "one",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let cm: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
    let mf = &cm["metadata"]["managedFields"][0];
    assert_eq!(mf["manager"], "kubectl-create");
    assert_eq!(mf["operation"], "Update");
    assert_eq!(mf["apiVersion"], "v1");
    assert_eq!(mf["fieldsType"], "FieldsV1");
    assert_eq!(
        mf["fieldsV1"],
        serde_json::json!({"f:data": {".": {}, "f:a": {}}})
    );
}

#[test]
fn get_list_as_yaml_json_name() {
    let ns = three_configmaps("get-list");
    let list: serde_json::Value = serde_json::from_str(
        ns.k(&["get", "configmaps", "-l", "app=web", "-o", "json"])
            .ok(),
    )
    .expect("json");
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(list["items"][0]["kind"], "ConfigMap");
    assert_eq!(list["items"][0]["apiVersion"], "v1");

    let yaml = ns.k(&["get", "configmaps", "-l", "app=web", "-o", "yaml"]);
    let yaml = yaml.ok();
    assert!(
        yaml.starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n"),
        "{yaml}"
    );
    assert!(
        yaml.ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"),
        "{yaml}"
    );

    ns.k(&["get", "configmaps", "-l", "app=web", "-o", "name"])
        .ok_exactly("configmap/one\nconfigmap/two");
    ns.k(&[
        "get",
        "configmap/one",
        "secret/nope",
        "-o",
        "name",
        "--ignore-not-found",
    ])
    .ok_exactly("configmap/one");
}

#[test]
fn get_jsonpath_and_custom_columns() {
    let ns = three_configmaps("get-jsonpath");
    assert_eq!(ns.jsonpath(&["configmap", "two"], "{.data.b}"), "2");
    assert_eq!(
        ns.jsonpath(&["configmaps", "-l", "app"], "{.items[*].metadata.name}"),
        "one three two"
    );
    assert_eq!(
        ns.jsonpath(
            &["configmaps", "-l", "app=web"],
            r#"{range .items[*]}{.metadata.name}={.metadata.labels.app}{"\n"}{end}"#
        ),
        "one=web\ntwo=web\n"
    );
    assert_eq!(
        ns.jsonpath(&["configmap", "two"], "{.metadata.labels}"),
        r#"{"app":"web","tier":"fe"}"#
    );
    assert_table(
        ns.k(&[
            "get",
            "configmaps",
            "-l",
            "app=web",
            "-o",
            "custom-columns=NAME:.metadata.name,A:.data.a,TIER:.metadata.labels.tier",
        ])
        .ok(),
        &["NAME", "A", "TIER"],
        &[&["one", "1", "<none>"], &["two", "2", "fe"]],
    );
}

#[test]
fn get_label_selectors() {
    let ns = three_configmaps("get-labels");
    let names = |sel: &str| {
        ns.k(&["get", "configmaps", "-l", sel, "-o", "name"])
            .ok()
            .to_string()
    };
    assert_eq!(names("app=web"), "configmap/one\nconfigmap/two\n");
    assert_eq!(names("app==web,tier=fe"), "configmap/two\n");
    assert_eq!(names("app!=web,app"), "configmap/three\n");
    assert_eq!(
        names("app in (db, web),!tier"),
        "configmap/one\nconfigmap/three\n"
    );
    assert_eq!(names("app notin (web),app"), "configmap/three\n");
    assert_eq!(names("tier"), "configmap/two\n");
    let none = ns.k(&["get", "configmaps", "-l", "app=nothing"]);
    assert_eq!(none.ok(), "");
    assert_eq!(
        none.stderr,
        format!("No resources found in {} namespace.\n", ns.name)
    );

    assert_table(
        ns.k(&["get", "configmaps", "-l", "app", "--show-labels"])
            .ok(),
        &["NAME", "DATA", "AGE", "LABELS"],
        &[
            &["one", "1", "{age}", "app=web"],
            &["three", "0", "{age}", "app=db"],
            &["two", "2", "{age}", "app=web,tier=fe"],
        ],
    );
    assert_table(
        ns.k(&["get", "configmaps", "-l", "app", "-L", "tier"]).ok(),
        &["NAME", "DATA", "AGE", "TIER"],
        &[
            &["one", "1", "{age}"],
            &["three", "0", "{age}"],
            &["two", "2", "{age}", "fe"],
        ],
    );
}

#[test]
fn get_field_selectors() {
    let ns = three_configmaps("get-fields");
    let names = |sel: &str| {
        ns.k(&[
            "get",
            "configmaps",
            "-l",
            "app",
            "--field-selector",
            sel,
            "-o",
            "name",
        ])
        .ok()
        .to_string()
    };
    assert_eq!(names("metadata.name=two"), "configmap/two\n");
    assert_eq!(
        names("metadata.name!=two"),
        "configmap/one\nconfigmap/three\n"
    );
    assert_eq!(
        names(&format!("metadata.namespace={}", ns.name)),
        "configmap/one\nconfigmap/three\nconfigmap/two\n"
    );
    let bad = ns.k(&["get", "configmaps", "--field-selector", "data.a=1"]);
    assert!(
        bad.fails().starts_with("Error from server (BadRequest): "),
        "{bad}"
    );
    bad.fails_with("field label not supported: data.a");
}

#[test]
fn get_all_namespaces() {
    let a = three_configmaps("get-all-a");
    let b = Namespace::new("get-all-b");
    let label = format!("run={}", a.name);
    a.k(&["label", "configmap", "one", &label])
        .ok_exactly("configmap/one labeled");
    b.k(&["create", "configmap", "other"])
        .ok_exactly("configmap/other created");
    b.k(&["label", "configmap", "other", &label])
        .ok_exactly("configmap/other labeled");
    let mut want = [
        [a.name.as_str(), "one", "1", "{age}"],
        [b.name.as_str(), "other", "0", "{age}"],
    ];
    want.sort();
    let rows: Vec<&[&str]> = want.iter().map(|r| r.as_slice()).collect();
    assert_table(
        a.kubectl(&["get", "configmaps", "-A", "-l", &label]).ok(),
        &["NAMESPACE", "NAME", "DATA", "AGE"],
        &rows,
    );
    assert_eq!(
        a.kubectl(&[
            "get",
            "configmaps",
            "--all-namespaces",
            "-l",
            &label,
            "-o",
            "jsonpath={.items[*].metadata.name}"
        ])
        .ok(),
        if a.name < b.name {
            "one other"
        } else {
            "other one"
        }
    );
}

#[test]
fn get_in_chunks() {
    let ns = three_configmaps("get-chunks");
    ns.k(&[
        "get",
        "configmaps",
        "-l",
        "app",
        "--chunk-size=1",
        "-o",
        "name",
    ])
    .ok_exactly("configmap/one\nconfigmap/three\nconfigmap/two");
    assert_table(
        ns.k(&["get", "configmaps", "-l", "app", "--chunk-size=2"])
            .ok(),
        &["NAME", "DATA", "AGE"],
        &[
            &["one", "1", "{age}"],
            &["three", "0", "{age}"],
            &["two", "2", "{age}"],
        ],
    );
    // The continue token, as a client sees it.
    let path = format!(
        "/api/v1/namespaces/{}/configmaps?limit=2&labelSelector=app",
        ns.name
    );
    let page: serde_json::Value =
        serde_json::from_str(ns.kubectl(&["get", "--raw", &path]).ok()).expect("json");
    assert_eq!(page["kind"], "ConfigMapList");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("continue token");
    let next = format!("{path}&continue={token}");
    let page: serde_json::Value =
        serde_json::from_str(ns.kubectl(&["get", "--raw", &next]).ok()).expect("json");
    assert_eq!(page["items"][0]["metadata"]["name"], "two");
    assert!(
        page["metadata"].get("continue").is_none_or(|c| c == ""),
        "{page}"
    );
}

#[test]
fn get_wide_and_resource_name_forms() {
    let ns = Namespace::new("get-wide");
    ns.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ])
    .ok_exactly("deployment.apps/web created");
    assert_table(
        ns.k(&["get", "deployments", "-o", "wide"]).ok(),
        &[
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ],
        &[&[
            "web",
            "0/2",
            "0",
            "0",
            "{age}",
            "nginx",
            "nginx:1.25",
            "app=web",
        ]],
    );
    for form in [
        "deploy",
        "deployment",
        "deployments",
        "deployments.apps",
        "deployment.v1.apps",
        "deploy/web",
    ] {
        let args: Vec<&str> = if form.contains('/') {
            vec!["get", form, "-o", "name"]
        } else {
            vec!["get", form, "web", "-o", "name"]
        };
        ns.k(&args).ok_exactly("deployment.apps/web");
    }
    // "all" is a category from discovery; a controller may have added replicasets and pods.
    let all = ns.k(&["get", "all", "-o", "name"]);
    assert!(
        all.ok().lines().any(|l| l == "deployment.apps/web"),
        "{all}"
    );
    ns.k(&["get", "deployment", "nope"])
        .fails_exactly("Error from server (NotFound): deployments.apps \"nope\" not found");
    ns.k(&["get", "foos"])
        .fails_exactly("error: the server doesn't have a resource type \"foos\"");
}

#[test]
fn get_watch_sees_later_changes() {
    let ns = Namespace::new("get-watch");
    ns.k(&["create", "configmap", "x", "--from-literal=a=1"])
        .ok_exactly("configmap/x created");
    ns.k(&["label", "configmap", "x", "w=1"])
        .ok_exactly("configmap/x labeled");
    let t = Duration::from_secs(15);
    let line = |s: &mut Stream| normalize(&s.next_line(t));

    // The default table, as a user watches it.
    let mut rows = ns.spawn(&["get", "configmap", "x", "-w"]);
    assert_eq!(line(&mut rows), "NAME DATA AGE");
    let first = line(&mut rows);
    assert!(matches("x 1 {age}", &first), "first watch row: {first:?}");
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ])
    .ok_exactly("configmap/x patched");
    let next = line(&mut rows);
    assert!(
        matches("x 2 {age}", &next),
        "watch row after patch: {next:?}"
    );
    drop(rows);

    let mut cols = ns.spawn(&[
        "get",
        "configmap",
        "x",
        "-w",
        "-o",
        "custom-columns=NAME:.metadata.name,A:.data.a",
    ]);
    assert_eq!(line(&mut cols), "NAME A");
    assert_eq!(line(&mut cols), "x 1");
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"3"}}"#,
    ])
    .ok_exactly("configmap/x patched");
    assert_eq!(line(&mut cols), "x 3");
    drop(cols);

    // A list watch sees objects created after the list.
    let mut names = ns.spawn(&["get", "configmaps", "-l", "w", "-w", "-o", "name"]);
    assert_eq!(line(&mut names), "configmap/x");
    ns.k(&["create", "configmap", "y"])
        .ok_exactly("configmap/y created");
    ns.k(&["label", "configmap", "y", "w=1"])
        .ok_exactly("configmap/y labeled");
    assert_eq!(line(&mut names), "configmap/y");
    drop(names);

    // Watch events, including a deletion.
    let mut events = ns.spawn(&[
        "get",
        "configmaps",
        "-l",
        "w",
        "-w",
        "--output-watch-events",
    ]);
    assert_eq!(line(&mut events), "EVENT NAME DATA AGE");
    let added = [line(&mut events), line(&mut events)];
    assert!(
        matches("ADDED x 2 {age}", &added[0]) && matches("ADDED y 0 {age}", &added[1]),
        "{added:?}"
    );
    ns.k(&["delete", "configmap", "y"])
        .ok_exactly(&deleted("configmap", "y", Some(&ns.name), ""));
    let gone = line(&mut events);
    assert!(matches("DELETED y 0 {age}", &gone), "{gone:?}");
}
