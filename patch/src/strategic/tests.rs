use serde_json::{Value, json};

use super::*;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}, "finalizers": ["a"]},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                        {"name": "b", "image": "b:1"}
                    ],
                    "tolerations": [{"key": "k1", "operator": "Exists"}]
                }
            }
        }
    })
}

fn smp(doc: &Value, patch: Value) -> Result<Value, ApiError> {
    strategic_merge_patch(doc, &serde_json::to_vec(&patch).unwrap(), DEPLOYMENT)
}

fn containers(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["containers"]
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn containers_merge_by_name() {
    let out = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}),
    )
    .unwrap();
    assert_eq!(names(containers(&out)), ["a", "b"]);
    assert_eq!(containers(&out)[1]["image"], "b:2");
    assert_eq!(containers(&out)[0]["image"], "a:1");
    assert_eq!(out["spec"]["replicas"], 1);
}

#[test]
fn new_list_items_go_first_as_upstream_places_them() {
    let out = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "c:1"}]}}}}),
    )
    .unwrap();
    assert_eq!(names(containers(&out)), ["c", "a", "b"]);
}

#[test]
fn env_merges_by_name_inside_a_container() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "env": [{"name": "Y", "value": "changed"}, {"name": "Z", "value": "3"}]}
    ]}}}});
    let out = smp(&deployment(), patch).unwrap();
    let env = &containers(&out)[0]["env"];
    let by_name = |n: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
    };
    assert_eq!(by_name("X").unwrap()["value"], "1");
    assert_eq!(by_name("Y").unwrap()["value"], "changed");
    assert_eq!(by_name("Z").unwrap()["value"], "3");
    // The patch's run [Y, Z] follows X, which stood before Y on the server.
    assert_eq!(names(env), ["X", "Y", "Z"]);
}

#[test]
fn ports_merge_by_container_port() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}
    ]}}}});
    let out = smp(&deployment(), patch).unwrap();
    let ports = &containers(&out)[0]["ports"];
    assert_eq!(
        ports,
        &json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
    );
}

#[test]
fn patch_delete_removes_a_list_item() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(names(containers(&out)), ["b"]);
}

#[test]
fn patch_replace_replaces_a_list_and_a_map() {
    let patch = json!({
        "metadata": {"labels": {"$patch": "replace", "only": "this"}},
        "spec": {"template": {"spec": {"containers": [{"name": "z", "image": "z:1"}, {"$patch": "replace"}]}}}
    });
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
    assert_eq!(containers(&out), &json!([{"name": "z", "image": "z:1"}]));
}

#[test]
fn patch_delete_on_a_map_empties_it() {
    let out = smp(
        &deployment(),
        json!({"spec": {"strategy": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["strategy"], json!({}));
}

#[test]
fn finalizers_merge_as_a_set_and_parallel_list_deletes() {
    let out = smp(
        &deployment(),
        json!({"metadata": {"finalizers": ["b", "a"]}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
    let out = smp(&deployment(), json!({"metadata": {"finalizers": ["b"]}})).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
    let out = smp(
        &out,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    let out = smp(
        &deployment(),
        json!({"metadata": {"$deleteFromPrimitiveList/nothere": ["a"]}}),
    )
    .unwrap();
    assert!(out["metadata"].get("nothere").is_none());
}

#[test]
fn set_element_order_orders_the_merged_list() {
    let patch =
        json!({"metadata": {"$setElementOrder/finalizers": ["c", "a"], "finalizers": ["c"]}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a"]));
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "a:2"}]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(names(containers(&out)), ["b", "a"]);
    assert_eq!(containers(&out)[1]["image"], "a:2");
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let bad =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}});
    let e = smp(&deployment(), bad).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "invalid patch format of retainKeys")
    );
}

#[test]
fn nulls_delete_and_lists_without_strategy_replace() {
    let patch = json!({
        "metadata": {"labels": {"tier": null}},
        "spec": {"replicas": null, "template": {"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}}
    });
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert!(out["spec"].get("replicas").is_none());
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "k2", "operator": "Exists"}])
    );
}

#[test]
fn new_values_are_cleaned_of_directives() {
    let mut doc = deployment();
    doc["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("containers");
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": null}]},
        {"name": "gone", "$patch": "delete"}
    ]}}}});
    let out = smp(&doc, patch).unwrap();
    assert_eq!(
        containers(&out),
        &json!([{"name": "a", "image": "a:1", "env": [{"name": "X"}]}])
    );
}

#[test]
fn errors_match_upstream() {
    let e = smp(
        &deployment(),
        json!({"spec": {"strategy": {"$patch": "frob"}}}),
    )
    .unwrap_err();
    assert_eq!(e.code, 500);
    assert!(
        e.message
            .starts_with("Unknown patch type: frob in map: map[$patch:frob]"),
        "{}",
        e.message
    );
    let e = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "map: map[image:x] does not contain declared merge key: name"
    );
    let e = smp(
        &deployment(),
        json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "invalid patch format of primitive list")
    );
    let e = strategic_merge_patch(&deployment(), b"[1]", DEPLOYMENT).unwrap_err();
    assert_eq!(e.code, 400);
    let e = strategic_merge_patch(&deployment(), b"{}", "io.example.v1.Widget").unwrap_err();
    assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));
}

#[test]
fn empty_patch_changes_nothing() {
    assert_eq!(smp(&deployment(), json!({})).unwrap(), deployment());
    assert_eq!(
        strategic_merge_patch(&deployment(), b"null", DEPLOYMENT).unwrap(),
        deployment()
    );
}

#[test]
fn service_ports_merge_by_port() {
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
    let out = strategic_merge_patch(
        &svc,
        br#"{"spec":{"ports":[{"port":80,"targetPort":9090}]}}"#,
        "io.k8s.api.core.v1.Service",
    )
    .unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
    );
}
