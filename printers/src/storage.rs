//! storage.k8s.io/v1: storage classes, CSI drivers, CSI nodes, volume attachments and
//! CSI storage capacities.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::format::{age, arr, boolean, name, s};
use crate::quantity::canonical;
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "storageclasses" => &STORAGE_CLASSES,
        "csidrivers" => &CSI_DRIVERS,
        "csinodes" => &CSI_NODES,
        "volumeattachments" => &VOLUME_ATTACHMENTS,
        "csistoragecapacities" => &CSI_STORAGE_CAPACITIES,
        _ => return None,
    })
}

static STORAGE_CLASSES: Printer = Printer {
    columns: STORAGE_CLASS_COLUMNS,
    cells: storage_class_cells,
};
const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "Driver that provisions volumes of the class.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "What happens to provisioned volumes once released.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "When volumes are bound and provisioned.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether claims of the class may grow.",
    ),
    AGE,
];

fn is_default_class(obj: &Value) -> bool {
    let annotations = &obj["metadata"]["annotations"];
    s(&annotations["storageclass.kubernetes.io/is-default-class"]) == "true"
        || s(&annotations["storageclass.beta.kubernetes.io/is-default-class"]) == "true"
}

fn storage_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut class_name = s(&obj["metadata"]["name"]).to_string();
    if is_default_class(obj) {
        class_name.push_str(" (default)");
    }
    vec![
        Value::from(class_name),
        Value::from(s(&obj["provisioner"])),
        Value::from(obj["reclaimPolicy"].as_str().unwrap_or("Delete")),
        Value::from(obj["volumeBindingMode"].as_str().unwrap_or("Immediate")),
        Value::from(boolean(&obj["allowVolumeExpansion"])),
        age(obj, now),
    ]
}

static CSI_DRIVERS: Printer = Printer {
    columns: CSI_DRIVER_COLUMNS,
    cells: csi_driver_cells,
};
const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "Whether volumes need an attach step.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "Whether pod details are passed on mount.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "Whether the scheduler considers reported capacity.",
    ),
    col(
        "TokenRequests",
        "string",
        "Audiences of service account tokens passed on mount.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "Whether volumes are re-published periodically.",
    ),
    col(
        "Modes",
        "string",
        "Volume lifecycle modes the driver supports.",
    ),
    AGE,
];

fn csi_driver_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    let modes: Vec<&str> = arr(&spec["volumeLifecycleModes"]).iter().map(s).collect();
    let token_requests = match spec["tokenRequests"].as_array() {
        Some(list) => list
            .iter()
            .map(|t| s(&t["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".into(),
    };
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    vec![
        name(obj),
        Value::from(spec["attachRequired"].as_bool().unwrap_or(true)),
        Value::from(boolean(&spec["podInfoOnMount"])),
        Value::from(boolean(&spec["storageCapacity"])),
        Value::from(token_requests),
        Value::from(boolean(&spec["requiresRepublish"])),
        Value::from(modes),
        age(obj, now),
    ]
}

static CSI_NODES: Printer = Printer {
    columns: CSI_NODE_COLUMNS,
    cells: csi_node_cells,
};
const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Number of CSI drivers registered on the node.",
    ),
    AGE,
];

fn csi_node_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(arr(&obj["spec"]["drivers"]).len()),
        age(obj, now),
    ]
}

static VOLUME_ATTACHMENTS: Printer = Printer {
    columns: VOLUME_ATTACHMENT_COLUMNS,
    cells: volume_attachment_cells,
};
const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        name: "Attacher",
        type_: "string",
        format: "name",
        description: "CSI driver doing the attachment.",
        priority: 0,
    },
    col("PV", "string", "Persistent volume being attached."),
    col("Node", "string", "Node the volume is attached to."),
    col(
        "Attached",
        "boolean",
        "Whether the attach operation succeeded.",
    ),
    AGE,
];

fn volume_attachment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    vec![
        name(obj),
        Value::from(s(&spec["attacher"])),
        Value::from(s(&spec["source"]["persistentVolumeName"])),
        Value::from(s(&spec["nodeName"])),
        Value::from(boolean(&obj["status"]["attached"])),
        age(obj, now),
    ]
}

static CSI_STORAGE_CAPACITIES: Printer = Printer {
    columns: CAPACITY_COLUMNS,
    cells: capacity_cells,
};
const CAPACITY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "StorageClassName",
        "string",
        "Storage class the capacity applies to.",
    ),
    col("Capacity", "string", "Capacity available for new volumes."),
];

fn capacity_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let capacity = canonical(&obj["capacity"]).unwrap_or_else(|| "<unset>".into());
    vec![
        name(obj),
        Value::from(s(&obj["storageClassName"])),
        Value::from(capacity),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    #[test]
    fn default_storage_class() {
        let sc = json!({"metadata": {"name": "standard", "creationTimestamp": ago(60),
                                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            storage_class_cells(&sc, NOW),
            vec![
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("60s")
            ]
        );
    }

    #[test]
    fn csi_resources() {
        let driver = json!({"metadata": {"name": "hostpath.csi.k8s.io", "creationTimestamp": ago(60)},
            "spec": {"podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                     "tokenRequests": [{"audience": "vault"}, {"audience": ""}]}});
        assert_eq!(
            csi_driver_cells(&driver, NOW),
            vec![
                json!("hostpath.csi.k8s.io"),
                json!(true),
                json!(true),
                json!(false),
                json!("vault,"),
                json!(false),
                json!("Persistent,Ephemeral"),
                json!("60s")
            ]
        );
        let bare = csi_driver_cells(&json!({"metadata": {"name": "d"}}), NOW);
        assert_eq!(bare[4], json!("<unset>"));
        assert_eq!(bare[6], json!("<none>"));

        let node = json!({"metadata": {"name": "node-1"}, "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(csi_node_cells(&node, NOW)[1], json!(2));

        let va = json!({"metadata": {"name": "csi-123", "creationTimestamp": ago(60)},
            "spec": {"attacher": "hostpath.csi.k8s.io", "nodeName": "node-1",
                     "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
        assert_eq!(
            volume_attachment_cells(&va, NOW),
            vec![
                json!("csi-123"),
                json!("hostpath.csi.k8s.io"),
                json!("pv-1"),
                json!("node-1"),
                json!(true),
                json!("60s")
            ]
        );

        let cap = json!({"metadata": {"name": "csisc-1"}, "storageClassName": "fast", "capacity": "2048Mi"});
        assert_eq!(
            capacity_cells(&cap, NOW),
            vec![json!("csisc-1"), json!("fast"), json!("2Gi")]
        );
        assert_eq!(capacity_cells(&json!({}), NOW)[2], json!("<unset>"));
    }
}
