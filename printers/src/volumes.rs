//! Core (v1) resources about capacity: persistent volumes, persistent volume claims and
//! resource quotas. Quantities print in canonical form (`1Gi`, `500m`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::core::deleting;
use crate::format::{age, arr, name, s};
use crate::quantity::canonical;
use crate::{AGE, Column, NAME, Printer, col, wide};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "persistentvolumes" => &PERSISTENT_VOLUMES,
        "persistentvolumeclaims" => &PERSISTENT_VOLUME_CLAIMS,
        "resourcequotas" => &RESOURCE_QUOTAS,
        _ => return None,
    })
}

const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// A quantity as upstream prints it; the zero quantity (`0`) when unset.
pub(crate) fn quantity(v: &Value) -> String {
    canonical(v).unwrap_or_else(|| "0".into())
}

/// Access modes abbreviated in upstream's fixed order (`RWO,ROX,RWX,RWOP`).
fn access_modes(modes: &Value) -> String {
    let modes: Vec<&str> = arr(modes).iter().map(s).collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the beta annotation wins when present, even if empty.
fn storage_class(obj: &Value) -> &str {
    match obj["metadata"]["annotations"].get(BETA_CLASS_ANNOTATION) {
        Some(class) => s(class),
        None => s(&obj["spec"]["storageClassName"]),
    }
}

fn or_unset(v: &Value) -> &str {
    v.as_str().unwrap_or("<unset>")
}

static PERSISTENT_VOLUMES: Printer = Printer {
    columns: PV_COLUMNS,
    cells: pv_cells,
};
const PV_COLUMNS: &[Column] = &[
    NAME,
    col("Capacity", "string", "Storage capacity of the volume."),
    col(
        "Access Modes",
        "string",
        "Ways the volume can be mounted (RWO, ROX, RWX, RWOP).",
    ),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when its claim is released.",
    ),
    col(
        "Status",
        "string",
        "Phase of the volume (Available, Bound, Released, Failed).",
    ),
    col(
        "Claim",
        "string",
        "Namespace/name of the claim bound to the volume.",
    ),
    col("StorageClass", "string", "Storage class of the volume."),
    col(
        "VolumeAttributesClass",
        "string",
        "Volume attributes class of the volume.",
    ),
    col("Reason", "string", "Why the volume is in its phase."),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "Whether the volume is a filesystem or a raw block device.",
    ),
];

fn pv_cells(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &pv["spec"];
    let claim = &spec["claimRef"];
    let claim = if claim.is_object() {
        format!("{}/{}", s(&claim["namespace"]), s(&claim["name"]))
    } else {
        String::new()
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        s(&pv["status"]["phase"])
    };
    vec![
        name(pv),
        Value::from(quantity(&spec["capacity"]["storage"])),
        Value::from(access_modes(&spec["accessModes"])),
        Value::from(s(&spec["persistentVolumeReclaimPolicy"])),
        Value::from(phase),
        Value::from(claim),
        Value::from(storage_class(pv)),
        Value::from(or_unset(&spec["volumeAttributesClassName"])),
        Value::from(s(&pv["status"]["reason"])),
        age(pv, now),
        Value::from(or_unset(&spec["volumeMode"])),
    ]
}

static PERSISTENT_VOLUME_CLAIMS: Printer = Printer {
    columns: PVC_COLUMNS,
    cells: pvc_cells,
};
const PVC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Phase of the claim (Pending, Bound, Lost).",
    ),
    col("Volume", "string", "Name of the volume bound to the claim."),
    col(
        "Capacity",
        "string",
        "Storage capacity of the bound volume.",
    ),
    col(
        "Access Modes",
        "string",
        "Ways the bound volume can be mounted.",
    ),
    col(
        "StorageClass",
        "string",
        "Storage class the claim asks for.",
    ),
    col(
        "VolumeAttributesClass",
        "string",
        "Volume attributes class the claim asks for.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "Whether the claim wants a filesystem or a raw block device.",
    ),
];

fn pvc_cells(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &pvc["spec"];
    let status = &pvc["status"];
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        s(&status["phase"])
    };
    let volume = s(&spec["volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(&status["capacity"]["storage"]),
            access_modes(&status["accessModes"]),
        )
    };
    vec![
        name(pvc),
        Value::from(phase),
        Value::from(volume),
        Value::from(capacity),
        Value::from(modes),
        Value::from(storage_class(pvc)),
        Value::from(or_unset(&spec["volumeAttributesClassName"])),
        age(pvc, now),
        Value::from(or_unset(&spec["volumeMode"])),
    ]
}

static RESOURCE_QUOTAS: Printer = Printer {
    columns: RESOURCE_QUOTA_COLUMNS,
    cells: resource_quota_cells,
};
const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Used and hard amounts of every non-limit resource.",
    ),
    col(
        "Limit",
        "string",
        "Used and hard amounts of every limits.* resource.",
    ),
    AGE,
];

fn resource_quota_cells(rq: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = &rq["status"];
    let mut resources: Vec<&String> = status["hard"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for resource in resources {
        let entry = format!(
            "{resource}: {}/{}",
            quantity(&status["used"][resource.as_str()]),
            quantity(&status["hard"][resource.as_str()])
        );
        let is_limit = resource
            .split_once('.')
            .is_some_and(|(prefix, _)| prefix == "limits");
        if is_limit {
            limits.push(entry)
        } else {
            requests.push(entry)
        }
    }
    vec![
        name(rq),
        Value::from(requests.join(", ")),
        Value::from(limits.join(", ")),
        age(rq, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    #[test]
    fn bound_volume_and_claim() {
        let pv = json!({"metadata": {"name": "pv-1", "creationTimestamp": ago(90)},
            "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard",
                     "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            pv_cells(&pv, NOW),
            vec![
                json!("pv-1"),
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("standard"),
                json!("<unset>"),
                json!(""),
                json!("90s"),
                json!("Filesystem")
            ]
        );
        let pvc = json!({"metadata": {"name": "data", "creationTimestamp": ago(90),
                                      "annotations": {BETA_CLASS_ANNOTATION: "legacy"}},
            "spec": {"volumeName": "pv-1", "storageClassName": "standard", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
        assert_eq!(
            pvc_cells(&pvc, NOW),
            vec![
                json!("data"),
                json!("Bound"),
                json!("pv-1"),
                json!("1Gi"),
                json!("RWO"),
                json!("legacy"),
                json!("<unset>"),
                json!("90s"),
                json!("Filesystem")
            ]
        );
    }

    #[test]
    fn pending_and_terminating_claims() {
        let pvc = json!({"metadata": {"name": "c", "deletionTimestamp": ago(1)},
            "spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}});
        let c = pvc_cells(&pvc, NOW);
        assert_eq!(
            c[1..6],
            [
                json!("Terminating"),
                json!(""),
                json!(""),
                json!(""),
                json!("fast")
            ]
        );
        assert_eq!(c[8], json!("<unset>"));
    }

    #[test]
    fn resource_quota_request_and_limit() {
        let rq = json!({"metadata": {"name": "quota", "creationTimestamp": ago(30)},
            "status": {"hard": {"pods": "3", "requests.cpu": "2", "limits.memory": "2Gi", "limits.cpu": "4000m"},
                       "used": {"pods": "1", "requests.cpu": "500m", "limits.memory": "512Mi"}}});
        assert_eq!(
            resource_quota_cells(&rq, NOW),
            vec![
                json!("quota"),
                json!("pods: 1/3, requests.cpu: 500m/2"),
                json!("limits.cpu: 0/4, limits.memory: 512Mi/2Gi"),
                json!("30s")
            ]
        );
    }
}
