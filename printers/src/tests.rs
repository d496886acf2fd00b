//! Shared test fixtures and whole-table tests.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::*;

/// The server clock every test prints against.
pub(crate) const NOW: DateTime<Utc> = match DateTime::from_timestamp(1_700_000_000, 0) {
    Some(t) => t,
    None => DateTime::UNIX_EPOCH,
};

/// An RFC 3339 timestamp `secs` seconds before [`NOW`].
pub(crate) fn ago(secs: i64) -> String {
    (NOW - TimeDelta::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn pod(name: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "7", "creationTimestamp": ago(10)},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": phase},
    })
}

#[test]
fn table_with_partial_metadata_rows() {
    let objects = [pod("a", "Running"), pod("b", "Succeeded")];
    let t = table(
        "",
        "pods",
        &objects,
        json!({"resourceVersion": "42", "continue": ""}),
        "",
        NOW,
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
    let columns = t["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(columns.len(), 9);
    assert_eq!(columns[0]["name"], "Name");
    assert_eq!(columns[0]["format"], "name");
    assert_eq!(columns[5]["name"], "IP");
    assert_eq!(columns[5]["priority"], 1);
    let rows = t["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["cells"][0], "a");
    assert_eq!(rows[0]["cells"][4], "10s");
    assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(rows[0]["object"]["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(rows[0]["object"]["metadata"]["resourceVersion"], "7");
    assert!(rows[0].get("conditions").is_none());
    assert_eq!(rows[1]["conditions"][0]["type"], "Completed");
}

#[test]
fn table_include_object_modes() {
    let objects = [pod("a", "Running")];
    let full = table("", "pods", &objects, json!({}), "Object", NOW);
    assert_eq!(full["rows"][0]["object"], objects[0]);
    let none = table("", "pods", &objects, json!({}), "None", NOW);
    assert_eq!(none["rows"][0]["object"], Value::Null);
    assert!(valid_include_object("Metadata"));
    assert!(!valid_include_object("Everything"));
}

#[test]
fn default_table_for_unknown_resources() {
    let crd = json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-03-01T10:20:30Z"}});
    for (group, resource) in [
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "limitranges"),
    ] {
        let cols = columns(group, resource);
        assert_eq!(
            cols.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["Name", "Created At"]
        );
        assert_eq!(cols[1].type_, "date");
        assert_eq!(
            cells(group, resource, &crd, NOW),
            vec![json!("widgets.example.com"), json!("2024-03-01T10:20:30Z")]
        );
    }
    assert_eq!(
        cells("example.com", "widgets", &json!({}), NOW),
        vec![json!(""), json!("0001-01-01T00:00:00Z")]
    );
}

/// Every printer yields exactly one cell per column, even for an empty object.
#[test]
fn every_printer_matches_its_columns() {
    let resources: &[(&str, &[&str])] = &[
        (
            "",
            &[
                "pods",
                "podtemplates",
                "replicationcontrollers",
                "services",
                "endpoints",
                "nodes",
                "events",
                "namespaces",
                "secrets",
                "serviceaccounts",
                "configmaps",
                "limitranges",
                "resourcequotas",
                "persistentvolumes",
                "persistentvolumeclaims",
                "componentstatuses",
            ],
        ),
        (
            "apps",
            &[
                "deployments",
                "replicasets",
                "statefulsets",
                "daemonsets",
                "controllerrevisions",
            ],
        ),
        ("batch", &["jobs", "cronjobs"]),
        ("autoscaling", &["horizontalpodautoscalers"]),
        ("policy", &["poddisruptionbudgets"]),
        (
            "rbac.authorization.k8s.io",
            &[
                "roles",
                "clusterroles",
                "rolebindings",
                "clusterrolebindings",
            ],
        ),
        (
            "networking.k8s.io",
            &["ingresses", "ingressclasses", "networkpolicies"],
        ),
        ("discovery.k8s.io", &["endpointslices"]),
        ("events.k8s.io", &["events"]),
        ("coordination.k8s.io", &["leases"]),
        (
            "storage.k8s.io",
            &[
                "storageclasses",
                "csidrivers",
                "csinodes",
                "volumeattachments",
                "csistoragecapacities",
            ],
        ),
        ("scheduling.k8s.io", &["priorityclasses"]),
        ("node.k8s.io", &["runtimeclasses"]),
        ("certificates.k8s.io", &["certificatesigningrequests"]),
        (
            "admissionregistration.k8s.io",
            &[
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
                "validatingadmissionpolicies",
                "validatingadmissionpolicybindings",
                "mutatingadmissionpolicies",
                "mutatingadmissionpolicybindings",
            ],
        ),
        ("apiextensions.k8s.io", &["customresourcedefinitions"]),
        ("apiregistration.k8s.io", &["apiservices"]),
        (
            "flowcontrol.apiserver.k8s.io",
            &["flowschemas", "prioritylevelconfigurations"],
        ),
    ];
    for (group, list) in resources {
        for resource in *list {
            let n = columns(group, resource).len();
            for obj in [
                json!({}),
                json!(null),
                json!({"metadata": 5, "spec": [], "status": "x"}),
            ] {
                assert_eq!(
                    cells(group, resource, &obj, NOW).len(),
                    n,
                    "{group}/{resource}"
                );
            }
        }
    }
}
