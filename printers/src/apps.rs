//! apps/v1: deployments, replica sets, stateful sets, daemon sets and controller
//! revisions.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::core::{CONTAINERS, IMAGES, SELECTOR, desired_replicas};
use crate::format::{
    age, containers, controller_of, int, label_selector, labels, name, s, selector_string,
};
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "deployments" => &DEPLOYMENTS,
        "replicasets" => &REPLICA_SETS,
        "statefulsets" => &STATEFUL_SETS,
        "daemonsets" => &DAEMON_SETS,
        "controllerrevisions" => &CONTROLLER_REVISIONS,
        _ => return None,
    })
}

static DEPLOYMENTS: Printer = Printer {
    columns: DEPLOYMENT_COLUMNS,
    cells: deployment_cells,
};
const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Ready replicas out of desired replicas."),
    col(
        "Up-to-date",
        "string",
        "Replicas running the latest pod template.",
    ),
    col("Available", "string", "Replicas available to serve."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn deployment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = &obj["status"];
    let (names, images) = containers(&obj["spec"]["template"]["spec"]);
    // unlike other workloads, an empty selector prints as an empty string here
    let selector = selector_string(&obj["spec"]["selector"]).unwrap_or_else(|_| "<invalid>".into());
    vec![
        name(obj),
        Value::from(format!(
            "{}/{}",
            int(&status["readyReplicas"]),
            desired_replicas(obj)
        )),
        Value::from(int(&status["updatedReplicas"])),
        Value::from(int(&status["availableReplicas"])),
        age(obj, now),
        names,
        images,
        Value::from(selector),
    ]
}

static REPLICA_SETS: Printer = Printer {
    columns: REPLICA_SET_COLUMNS,
    cells: replica_set_cells,
};
const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", "Number of replicas wanted."),
    col("Current", "integer", "Number of replicas that exist."),
    col("Ready", "integer", "Number of replicas that are ready."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn replica_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = &obj["status"];
    let (names, images) = containers(&obj["spec"]["template"]["spec"]);
    vec![
        name(obj),
        Value::from(desired_replicas(obj)),
        Value::from(int(&status["replicas"])),
        Value::from(int(&status["readyReplicas"])),
        age(obj, now),
        names,
        images,
        Value::from(label_selector(&obj["spec"]["selector"])),
    ]
}

static STATEFUL_SETS: Printer = Printer {
    columns: STATEFUL_SET_COLUMNS,
    cells: stateful_set_cells,
};
const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Ready replicas out of desired replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
];

fn stateful_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers(&obj["spec"]["template"]["spec"]);
    let ready = format!(
        "{}/{}",
        int(&obj["status"]["readyReplicas"]),
        desired_replicas(obj)
    );
    vec![name(obj), Value::from(ready), age(obj, now), names, images]
}

static DAEMON_SETS: Printer = Printer {
    columns: DAEMON_SET_COLUMNS,
    cells: daemon_set_cells,
};
const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Number of nodes that should run the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "Number of nodes running the daemon pod.",
    ),
    col(
        "Ready",
        "integer",
        "Number of nodes whose daemon pod is ready.",
    ),
    col(
        "Up-to-date",
        "integer",
        "Number of nodes running the latest daemon pod.",
    ),
    col(
        "Available",
        "integer",
        "Number of nodes whose daemon pod is available.",
    ),
    col(
        "Node Selector",
        "string",
        "Labels a node needs to run the daemon pod.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn daemon_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = &obj["status"];
    let pod_spec = &obj["spec"]["template"]["spec"];
    let (names, images) = containers(pod_spec);
    vec![
        name(obj),
        Value::from(int(&status["desiredNumberScheduled"])),
        Value::from(int(&status["currentNumberScheduled"])),
        Value::from(int(&status["numberReady"])),
        Value::from(int(&status["updatedNumberScheduled"])),
        Value::from(int(&status["numberAvailable"])),
        Value::from(labels(&pod_spec["nodeSelector"])),
        age(obj, now),
        names,
        images,
        Value::from(label_selector(&obj["spec"]["selector"])),
    ]
}

static CONTROLLER_REVISIONS: Printer = Printer {
    columns: CONTROLLER_REVISION_COLUMNS,
    cells: revision_cells,
};
const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Kind.group/name of the controller owning the revision.",
    ),
    col(
        "Revision",
        "string",
        "Revision number of the recorded state.",
    ),
    AGE,
];

/// `kind.group/name` of a controller reference (`statefulset.apps/web`), lower-cased.
fn controller_name(owner: &Value) -> String {
    let api_version = s(&owner["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = s(&owner["kind"]);
    let name = s(&owner["name"]);
    match (kind, group) {
        ("", "") => name.to_string(),
        (kind, "") => format!("{}/{name}", kind.to_lowercase()),
        (kind, group) => format!("{}.{}/{name}", kind.to_lowercase(), group.to_lowercase()),
    }
}

fn revision_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let controller = controller_of(obj)
        .map(controller_name)
        .unwrap_or_else(|| "<none>".into());
    vec![
        name(obj),
        Value::from(controller),
        Value::from(int(&obj["revision"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}})
    }

    #[test]
    fn deployment_two_of_three() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": ago(86400 * 2 + 3600 * 3)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            deployment_cells(&d, NOW),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2d3h"),
                json!("web,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web")
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "spec": {"selector": {}}});
        let c = deployment_cells(&empty, NOW);
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[7], json!(""));
    }

    #[test]
    fn replica_set_and_stateful_set() {
        let rs = json!({"metadata": {"name": "web-5d4f", "creationTimestamp": ago(40)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
                     "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            replica_set_cells(&rs, NOW),
            vec![
                json!("web-5d4f"),
                json!(2),
                json!(2),
                json!(1),
                json!("40s"),
                json!("web,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web,pod-template-hash=5d4f")
            ]
        );
        let sts = json!({"metadata": {"name": "db", "creationTimestamp": ago(40)},
            "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
        assert_eq!(
            stateful_set_cells(&sts, NOW),
            vec![
                json!("db"),
                json!("3/3"),
                json!("40s"),
                json!("web,log"),
                json!("nginx:1.27,busybox")
            ]
        );
    }

    #[test]
    fn daemon_set() {
        let ds = json!({"metadata": {"name": "proxy", "creationTimestamp": ago(40)},
            "spec": {"selector": {"matchLabels": {"k8s-app": "proxy"}},
                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "containers": [{"name": "proxy", "image": "kube-proxy"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(
            daemon_set_cells(&ds, NOW),
            vec![
                json!("proxy"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("40s"),
                json!("proxy"),
                json!("kube-proxy"),
                json!("k8s-app=proxy")
            ]
        );
    }

    #[test]
    fn controller_revision() {
        let cr = json!({"metadata": {"name": "web-7c9", "creationTimestamp": ago(40), "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "other"},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}
        ]}, "revision": 2});
        assert_eq!(
            revision_cells(&cr, NOW),
            vec![
                json!("web-7c9"),
                json!("statefulset.apps/web"),
                json!(2),
                json!("40s")
            ]
        );
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
        assert_eq!(revision_cells(&orphan, NOW)[1], json!("<none>"));
    }
}
