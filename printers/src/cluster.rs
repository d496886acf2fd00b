//! Cluster-level resources of the smaller API groups: pod disruption budgets (policy),
//! leases (coordination), priority classes (scheduling), runtime classes (node),
//! certificate signing requests (certificates), API services (apiregistration), flow
//! schemas and priority levels (flowcontrol).

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::duration::human_duration;
use crate::format::{age, boolean, condition, int, name, or, s};
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("policy", "poddisruptionbudgets") => &PDBS,
        ("coordination.k8s.io", "leases") => &LEASES,
        ("scheduling.k8s.io", "priorityclasses") => &PRIORITY_CLASSES,
        ("node.k8s.io", "runtimeclasses") => &RUNTIME_CLASSES,
        ("certificates.k8s.io", "certificatesigningrequests") => &CSRS,
        ("apiregistration.k8s.io", "apiservices") => &API_SERVICES,
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => &FLOW_SCHEMAS,
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => &PRIORITY_LEVELS,
        _ => return None,
    })
}

static PDBS: Printer = Printer {
    columns: PDB_COLUMNS,
    cells: pdb_cells,
};
const PDB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "Pods that must stay available (number or percentage).",
    ),
    col(
        "Max Unavailable",
        "string",
        "Pods that may be unavailable (number or percentage).",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Pod disruptions currently allowed.",
    ),
    AGE,
];

/// An int-or-string as upstream prints it, `N/A` when unset.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(text) => text.clone(),
        _ => "N/A".into(),
    }
}

fn pdb_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    vec![
        name(obj),
        Value::from(int_or_string(&spec["minAvailable"])),
        Value::from(int_or_string(&spec["maxUnavailable"])),
        Value::from(int(&obj["status"]["disruptionsAllowed"])),
        age(obj, now),
    ]
}

static LEASES: Printer = Printer {
    columns: LEASE_COLUMNS,
    cells: lease_cells,
};
const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col("Holder", "string", "Identity currently holding the lease."),
    AGE,
];

fn lease_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(s(&obj["spec"]["holderIdentity"])),
        age(obj, now),
    ]
}

static PRIORITY_CLASSES: Printer = Printer {
    columns: PRIORITY_CLASS_COLUMNS,
    cells: priority_class_cells,
};
const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col("Value", "integer", "Priority given to pods of the class."),
    col(
        "Global-Default",
        "boolean",
        "Whether pods without a class get this one.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "Whether pods of the class may preempt lower-priority pods.",
    ),
];

fn priority_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(int(&obj["value"])),
        Value::from(boolean(&obj["globalDefault"])),
        age(obj, now),
        Value::from(s(&obj["preemptionPolicy"])),
    ]
}

static RUNTIME_CLASSES: Printer = Printer {
    columns: RUNTIME_CLASS_COLUMNS,
    cells: runtime_class_cells,
};
const RUNTIME_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Handler",
        "string",
        "Container runtime handler that runs pods of the class.",
    ),
    AGE,
];

fn runtime_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), Value::from(s(&obj["handler"])), age(obj, now)]
}

static CSRS: Printer = Printer {
    columns: CSR_COLUMNS,
    cells: csr_cells,
};
const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "Signer asked to sign the certificate.",
    ),
    col("Requestor", "string", "User who created the request."),
    col(
        "RequestedDuration",
        "string",
        "Validity period asked for the certificate.",
    ),
    col(
        "Condition",
        "string",
        "Approval state of the request, and whether it is issued.",
    ),
];

fn csr_condition(csr: &Value) -> String {
    let has = |type_: &str| condition(&csr["status"]["conditions"], type_).is_some();
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !s(&csr["status"]["certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn csr_cells(csr: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &csr["spec"];
    let duration = spec["expirationSeconds"]
        .as_i64()
        .map_or("<none>".into(), |secs| {
            human_duration(TimeDelta::seconds(secs))
        });
    vec![
        name(csr),
        age(csr, now),
        Value::from(or(s(&spec["signerName"]), "<none>")),
        Value::from(s(&spec["username"])),
        Value::from(duration),
        Value::from(csr_condition(csr)),
    ]
}

static API_SERVICES: Printer = Printer {
    columns: API_SERVICE_COLUMNS,
    cells: api_service_cells,
};
const API_SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Service",
        "string",
        "Service serving the API, or Local for the API server itself.",
    ),
    col(
        "Available",
        "string",
        "Whether the API is available, with the reason if not.",
    ),
    AGE,
];

fn api_service_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let service = &obj["spec"]["service"];
    let service = if service.is_object() {
        format!("{}/{}", s(&service["namespace"]), s(&service["name"]))
    } else {
        "Local".into()
    };
    let available = match condition(&obj["status"]["conditions"], "Available") {
        None => "Unknown".to_string(),
        Some(c) if s(&c["status"]) == "True" || s(&c["reason"]).is_empty() => {
            s(&c["status"]).to_string()
        }
        Some(c) => format!("{} ({})", s(&c["status"]), s(&c["reason"])),
    };
    vec![
        name(obj),
        Value::from(service),
        Value::from(available),
        age(obj, now),
    ]
}

static FLOW_SCHEMAS: Printer = Printer {
    columns: FLOW_SCHEMA_COLUMNS,
    cells: flow_schema_cells,
};
const FLOW_SCHEMA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "PriorityLevel",
        "string",
        "Priority level requests of the schema are handled at.",
    ),
    col(
        "MatchingPrecedence",
        "string",
        "Order the schema is matched in; lower matches first.",
    ),
    col(
        "DistinguisherMethod",
        "string",
        "How requests are split into flows.",
    ),
    AGE,
    col(
        "MissingPL",
        "string",
        "Whether the referenced priority level is missing.",
    ),
];

/// Orders flow schemas the way they are matched: by precedence, then name.
pub(crate) fn sort_flow_schemas(schemas: &mut [&Value]) {
    schemas.sort_by(|a, b| {
        let key = |fs: &Value| int(&fs["spec"]["matchingPrecedence"]);
        key(a)
            .cmp(&key(b))
            .then_with(|| s(&a["metadata"]["name"]).cmp(s(&b["metadata"]["name"])))
    });
}

fn flow_schema_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    let method = &spec["distinguisherMethod"];
    let method = if method.is_object() {
        s(&method["type"])
    } else {
        "<none>"
    };
    let missing =
        condition(&obj["status"]["conditions"], "Dangling").map_or("?", |c| s(&c["status"]));
    vec![
        name(obj),
        Value::from(s(&spec["priorityLevelConfiguration"]["name"])),
        Value::from(int(&spec["matchingPrecedence"])),
        Value::from(method),
        age(obj, now),
        Value::from(missing),
    ]
}

static PRIORITY_LEVELS: Printer = Printer {
    columns: PRIORITY_LEVEL_COLUMNS,
    cells: priority_level_cells,
};
const PRIORITY_LEVEL_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", "Whether the level is Limited or Exempt."),
    col(
        "NominalConcurrencyShares",
        "string",
        "Share of the server's concurrency for this level.",
    ),
    col("Queues", "string", "Number of queues of the level."),
    col(
        "HandSize",
        "string",
        "Queues each flow is shuffle-sharded over.",
    ),
    col(
        "QueueLengthLimit",
        "string",
        "Requests each queue may hold.",
    ),
    AGE,
];

fn priority_level_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    let limited = &spec["limited"];
    let none = || Value::from("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length) =
        (none(), none(), none(), none());
    if limited.is_object() {
        shares = Value::from(int(&limited["nominalConcurrencyShares"]));
        let queuing = &limited["limitResponse"]["queuing"];
        if queuing.is_object() {
            queues = Value::from(int(&queuing["queues"]));
            hand_size = Value::from(int(&queuing["handSize"]));
            queue_length = Value::from(int(&queuing["queueLengthLimit"]));
        }
    }
    vec![
        name(obj),
        Value::from(s(&spec["type"])),
        shares,
        queues,
        hand_size,
        queue_length,
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    #[test]
    fn pdb() {
        let pdb = json!({"metadata": {"name": "web", "creationTimestamp": ago(60)},
            "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            pdb_cells(&pdb, NOW),
            vec![
                json!("web"),
                json!("50%"),
                json!("N/A"),
                json!(1),
                json!("60s")
            ]
        );
        let pdb = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": 1}});
        assert_eq!(
            pdb_cells(&pdb, NOW)[1..4],
            [json!("N/A"), json!("1"), json!(0)]
        );
    }

    #[test]
    fn lease_priority_runtime_classes() {
        let lease = json!({"metadata": {"name": "node-1", "creationTimestamp": ago(60)}, "spec": {"holderIdentity": "node-1"}});
        assert_eq!(
            lease_cells(&lease, NOW),
            vec![json!("node-1"), json!("node-1"), json!("60s")]
        );
        let pc = json!({"metadata": {"name": "system-node-critical", "creationTimestamp": ago(60)},
            "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            priority_class_cells(&pc, NOW),
            vec![
                json!("system-node-critical"),
                json!(2000001000),
                json!(false),
                json!("60s"),
                json!("PreemptLowerPriority")
            ]
        );
        let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
        assert_eq!(runtime_class_cells(&rc, NOW)[1], json!("runsc"));
    }

    #[test]
    fn csr() {
        let csr = json!({"metadata": {"name": "csr-abc", "creationTimestamp": ago(60)},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
        assert_eq!(
            csr_cells(&csr, NOW),
            vec![
                json!("csr-abc"),
                json!("60s"),
                json!("kubernetes.io/kube-apiserver-client"),
                json!("alice"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let pending = json!({"metadata": {"name": "p"}, "spec": {}});
        assert_eq!(
            csr_cells(&pending, NOW)[2..6],
            [
                json!("<none>"),
                json!(""),
                json!("<none>"),
                json!("Pending")
            ]
        );
    }

    #[test]
    fn api_services() {
        let local = json!({"metadata": {"name": "v1.apps", "creationTimestamp": ago(60)},
            "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
        assert_eq!(
            api_service_cells(&local, NOW),
            vec![
                json!("v1.apps"),
                json!("Local"),
                json!("True"),
                json!("60s")
            ]
        );
        let remote = json!({"metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
        assert_eq!(
            api_service_cells(&remote, NOW)[1..3],
            [
                json!("kube-system/metrics-server"),
                json!("False (MissingEndpoints)")
            ]
        );
        assert_eq!(api_service_cells(&json!({}), NOW)[2], json!("Unknown"));
    }

    #[test]
    fn flow_control() {
        let fs = json!({"metadata": {"name": "exempt", "creationTimestamp": ago(60)},
            "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        assert_eq!(
            flow_schema_cells(&fs, NOW),
            vec![
                json!("exempt"),
                json!("exempt"),
                json!(1),
                json!("<none>"),
                json!("60s"),
                json!("False")
            ]
        );
        let other = json!({"metadata": {"name": "a"}, "spec": {"matchingPrecedence": 1000, "distinguisherMethod": {"type": "ByUser"}}});
        let tie = json!({"metadata": {"name": "b"}, "spec": {"matchingPrecedence": 1}});
        let mut all = vec![&other, &tie, &fs];
        sort_flow_schemas(&mut all);
        let names: Vec<&str> = all.iter().map(|f| s(&f["metadata"]["name"])).collect();
        assert_eq!(names, ["b", "exempt", "a"]);
        assert_eq!(
            flow_schema_cells(&other, NOW)[3..6],
            [json!("ByUser"), json!("<unknown>"), json!("?")]
        );

        let plc = json!({"metadata": {"name": "workload-low", "creationTimestamp": ago(60)},
            "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
                     "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
        assert_eq!(
            priority_level_cells(&plc, NOW),
            vec![
                json!("workload-low"),
                json!("Limited"),
                json!(100),
                json!(128),
                json!(6),
                json!(50),
                json!("60s")
            ]
        );
        let exempt =
            json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt", "exempt": {}}});
        assert_eq!(
            priority_level_cells(&exempt, NOW)[1..6],
            [
                json!("Exempt"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }
}
