//! `apps` rules through the public API, with upstream's exact messages.

use crate::{default, validate_create, validate_update};
use machinery::FieldError;
use serde_json::{Value, json};

fn msgs(e: &[FieldError]) -> Vec<String> {
    e.iter().map(FieldError::message).collect()
}

fn defaulted(resource: &str, mut o: Value) -> Value {
    default("apps", "v1", resource, &mut o);
    o
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"selector": selector,
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
}

#[test]
fn deployment_defaults() {
    let d = defaulted(
        "deployments",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ),
    );
    let s = &d["spec"];
    assert_eq!(s["replicas"], 1);
    assert_eq!(
        s["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(s["revisionHistoryLimit"], 10);
    assert_eq!(s["progressDeadlineSeconds"], 600);
    assert_eq!(s["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        s["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert!(validate_create("apps", "v1", "deployments", &d).is_empty());
    let r = defaulted(
        "deployments",
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert!(r["spec"]["strategy"].get("rollingUpdate").is_none());
}

#[test]
fn selector_must_match_template() {
    let d = defaulted(
        "deployments",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "api"}),
        ),
    );
    assert_eq!(
        msgs(&validate_create("apps", "v1", "deployments", &d)),
        vec![
            "spec.template.metadata.labels: Invalid value: {\"app\":\"api\"}: `selector` does not match template `labels`"
        ]
    );
    let mut missing = defaulted(
        "deployments",
        deployment(json!(null), json!({"app": "web"})),
    );
    if let Some(s) = missing["spec"].as_object_mut() {
        s.remove("selector");
    }
    assert_eq!(
        msgs(&validate_create("apps", "v1", "deployments", &missing)),
        vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
        ]
    );
    let empty = defaulted("deployments", deployment(json!({}), json!({"app": "web"})));
    assert_eq!(
        msgs(&validate_create("apps", "v1", "deployments", &empty)),
        vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
    );
}

#[test]
fn deployment_spec_rules() {
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
    d["spec"]["minReadySeconds"] = json!(700);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let d = defaulted("deployments", d);
    assert_eq!(
        msgs(&validate_create("apps", "v1", "deployments", &d)),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
        ]
    );
    let mut missing_image = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    missing_image["spec"]["template"]["spec"]["containers"][0] = json!({"name": "web"});
    let m = msgs(&validate_create(
        "apps",
        "v1",
        "deployments",
        &defaulted("deployments", missing_image),
    ));
    assert_eq!(
        m,
        vec!["spec.template.spec.containers[0].image: Required value"]
    );
}

#[test]
fn selector_is_immutable() {
    let old = defaulted(
        "deployments",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web", "v": "2"}),
        ),
    );
    let new = defaulted(
        "deployments",
        deployment(
            json!({"matchLabels": {"app": "web", "v": "2"}}),
            json!({"app": "web", "v": "2"}),
        ),
    );
    assert_eq!(
        msgs(&validate_update("apps", "v1", "deployments", &new, &old)),
        vec![
            "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"v\":\"2\"}}: field is immutable"
        ]
    );
    assert!(validate_update("apps", "v1", "deployments", &old, &old).is_empty());
}

#[test]
fn replicasets_and_daemonsets() {
    let mut rs = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    rs["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
    let rs = defaulted("replicasets", rs);
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(
        msgs(&validate_create("apps", "v1", "replicasets", &rs)),
        vec![
            "spec.template.spec.activeDeadlineSeconds: Invalid value: 5: activeDeadlineSeconds in ReplicaSet is not Supported"
        ]
    );
    let ds = defaulted(
        "daemonsets",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ),
    );
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    assert!(validate_create("apps", "v1", "daemonsets", &ds).is_empty());
    let mut both = ds.clone();
    both["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = json!(1);
    assert_eq!(
        msgs(&validate_create("apps", "v1", "daemonsets", &both)),
        vec![
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"
        ]
    );
}

#[test]
fn statefulsets() {
    let mut ss = deployment(json!({"matchLabels": {"app": "db"}}), json!({"app": "db"}));
    ss["spec"]["volumeClaimTemplates"] =
        json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]);
    let ss = defaulted("statefulsets", ss);
    let s = &ss["spec"];
    assert_eq!(s["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        s["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        s["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(s["volumeClaimTemplates"][0]["status"]["phase"], "Pending");
    assert!(validate_create("apps", "v1", "statefulsets", &ss).is_empty());
    let mut dotted = ss.clone();
    dotted["metadata"]["name"] = json!("db.v1");
    assert_eq!(
        msgs(&validate_create("apps", "v1", "statefulsets", &dotted)),
        vec!["metadata.name: Invalid value: \"db.v1\": must not contain dots"]
    );
    let mut changed = ss.clone();
    changed["spec"]["serviceName"] = json!("other");
    changed["spec"]["replicas"] = json!(3);
    assert_eq!(
        msgs(&validate_update(
            "apps",
            "v1",
            "statefulsets",
            &changed,
            &ss
        )),
        vec![
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        ]
    );
    let mut bad = ss.clone();
    bad["spec"]["podManagementPolicy"] = json!("Random");
    assert_eq!(
        msgs(&validate_create("apps", "v1", "statefulsets", &bad)),
        vec![
            "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"
        ]
    );
}
