//! Core (v1) configuration-like resources: namespaces, secrets, service accounts,
//! config maps and component statuses.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::format::{age, arr, condition, map_len, name, s};
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "namespaces" => &NAMESPACES,
        "secrets" => &SECRETS,
        "serviceaccounts" => &SERVICE_ACCOUNTS,
        "configmaps" => &CONFIG_MAPS,
        "componentstatuses" => &COMPONENT_STATUSES,
        _ => return None,
    })
}

static NAMESPACES: Printer = Printer {
    columns: NAMESPACE_COLUMNS,
    cells: namespace_cells,
};
const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Lifecycle phase of the namespace (Active, Terminating).",
    ),
    AGE,
];

fn namespace_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(s(&obj["status"]["phase"])),
        age(obj, now),
    ]
}

static SECRETS: Printer = Printer {
    columns: SECRET_COLUMNS,
    cells: secret_cells,
};
const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Kind of secret, which decides the keys it must hold.",
    ),
    col("Data", "string", "Number of keys in the secret."),
    AGE,
];

fn secret_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(s(&obj["type"])),
        Value::from(map_len(&obj["data"])),
        age(obj, now),
    ]
}

static SERVICE_ACCOUNTS: Printer = Printer {
    columns: SERVICE_ACCOUNT_COLUMNS,
    cells: service_account_cells,
};
const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Number of secrets listed for the service account.",
    ),
    AGE,
];

fn service_account_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(arr(&obj["secrets"]).len()),
        age(obj, now),
    ]
}

static CONFIG_MAPS: Printer = Printer {
    columns: CONFIG_MAP_COLUMNS,
    cells: config_map_cells,
};
const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Number of keys, text and binary, in the config map.",
    ),
    AGE,
];

fn config_map_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let keys = map_len(&obj["data"]) + map_len(&obj["binaryData"]);
    vec![name(obj), Value::from(keys), age(obj, now)]
}

static COMPONENT_STATUSES: Printer = Printer {
    columns: COMPONENT_STATUS_COLUMNS,
    cells: component_status_cells,
};
const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Whether the component reports healthy."),
    col(
        "Message",
        "string",
        "Message of the component's health condition.",
    ),
    col(
        "Error",
        "string",
        "Error of the component's health condition.",
    ),
];

fn component_status_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let (status, message, error) = match condition(&obj["conditions"], "Healthy") {
        Some(c) => {
            let status = if s(&c["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            };
            (status, s(&c["message"]), s(&c["error"]))
        }
        None => ("Unknown", "", ""),
    };
    vec![
        name(obj),
        Value::from(status),
        Value::from(message),
        Value::from(error),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    fn meta(name: &str) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": ago(200)})
    }

    #[test]
    fn small_core_resources() {
        let ns = json!({"metadata": meta("kube-system"), "status": {"phase": "Active"}});
        assert_eq!(
            namespace_cells(&ns, NOW),
            vec![json!("kube-system"), json!("Active"), json!("3m20s")]
        );
        let secret = json!({"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            secret_cells(&secret, NOW),
            vec![
                json!("tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("3m20s")
            ]
        );
        let sa = json!({"metadata": meta("default")});
        assert_eq!(
            service_account_cells(&sa, NOW),
            vec![json!("default"), json!(0), json!("3m20s")]
        );
        let cm = json!({"metadata": meta("cfg"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
        assert_eq!(
            config_map_cells(&cm, NOW),
            vec![json!("cfg"), json!(2), json!("3m20s")]
        );
        let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        assert_eq!(
            component_status_cells(&cs, NOW),
            vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
    }
}
