//! rbac.authorization.k8s.io/v1: role bindings and cluster role bindings. Roles and
//! cluster roles have no printer upstream and get the default table.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::format::{age, arr, name, s};
use crate::{AGE, Column, NAME, Printer, col, wide};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "rolebindings" => &ROLE_BINDINGS,
        "clusterrolebindings" => &CLUSTER_ROLE_BINDINGS,
        _ => return None,
    })
}

static ROLE_BINDINGS: Printer = Printer {
    columns: ROLE_BINDING_COLUMNS,
    cells: binding_cells,
};
const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col("Role", "string", "Kind/name of the role granted."),
    AGE,
    wide(
        "Users",
        "string",
        "Users the role binding grants the role to.",
    ),
    wide(
        "Groups",
        "string",
        "Groups the role binding grants the role to.",
    ),
    wide(
        "ServiceAccounts",
        "string",
        "Service accounts the role binding grants the role to.",
    ),
];

static CLUSTER_ROLE_BINDINGS: Printer = Printer {
    columns: CLUSTER_ROLE_BINDING_COLUMNS,
    cells: binding_cells,
};
const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col("Role", "string", "Kind/name of the cluster role granted."),
    AGE,
    wide(
        "Users",
        "string",
        "Users the cluster role binding grants the role to.",
    ),
    wide(
        "Groups",
        "string",
        "Groups the cluster role binding grants the role to.",
    ),
    wide(
        "ServiceAccounts",
        "string",
        "Service accounts the cluster role binding grants the role to.",
    ),
];

fn binding_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let role = &obj["roleRef"];
    let (mut users, mut groups, mut service_accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr(&obj["subjects"]) {
        let subject_name = s(&subject["name"]);
        match s(&subject["kind"]) {
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", s(&subject["namespace"])))
            }
            _ => {}
        }
    }
    vec![
        name(obj),
        Value::from(format!("{}/{}", s(&role["kind"]), s(&role["name"]))),
        age(obj, now),
        Value::from(users.join(", ")),
        Value::from(groups.join(", ")),
        Value::from(service_accounts.join(", ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    #[test]
    fn role_binding_subjects() {
        let rb = json!({"metadata": {"name": "readers", "creationTimestamp": ago(5)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "system:authenticated"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}
        ]});
        assert_eq!(
            binding_cells(&rb, NOW),
            vec![
                json!("readers"),
                json!("ClusterRole/view"),
                json!("5s"),
                json!("alice, bob"),
                json!("system:authenticated"),
                json!("kube-system/default")
            ]
        );
    }
}
