//! admissionregistration.k8s.io: webhook configurations, validating and mutating
//! admission policies, and their bindings.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::format::{age, arr, name, s};
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => &WEBHOOKS,
        "validatingadmissionpolicies" => &VALIDATING_POLICIES,
        "mutatingadmissionpolicies" => &MUTATING_POLICIES,
        "validatingadmissionpolicybindings" | "mutatingadmissionpolicybindings" => &BINDINGS,
        _ => return None,
    })
}

static WEBHOOKS: Printer = Printer {
    columns: WEBHOOK_COLUMNS,
    cells: webhook_cells,
};
const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Number of webhooks in the configuration.",
    ),
    AGE,
];

fn webhook_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(arr(&obj["webhooks"]).len()),
        age(obj, now),
    ]
}

static VALIDATING_POLICIES: Printer = Printer {
    columns: VALIDATING_POLICY_COLUMNS,
    cells: validating_policy_cells,
};
const VALIDATING_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Validations",
        "integer",
        "Number of validation rules in the policy.",
    ),
    col(
        "ParamKind",
        "string",
        "apiVersion/kind of the resources that parameterize the policy.",
    ),
    AGE,
];

static MUTATING_POLICIES: Printer = Printer {
    columns: MUTATING_POLICY_COLUMNS,
    cells: mutating_policy_cells,
};
const MUTATING_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col("Mutations", "integer", "Number of mutations in the policy."),
    col(
        "ParamKind",
        "string",
        "apiVersion/kind of the resources that parameterize the policy.",
    ),
    AGE,
];

fn param_kind(spec: &Value) -> String {
    let kind = &spec["paramKind"];
    if kind.is_object() {
        format!("{}/{}", s(&kind["apiVersion"]), s(&kind["kind"]))
    } else {
        "<unset>".into()
    }
}

fn validating_policy_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    vec![
        name(obj),
        Value::from(arr(&spec["validations"]).len()),
        Value::from(param_kind(spec)),
        age(obj, now),
    ]
}

fn mutating_policy_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    vec![
        name(obj),
        Value::from(arr(&spec["mutations"]).len()),
        Value::from(param_kind(spec)),
        age(obj, now),
    ]
}

static BINDINGS: Printer = Printer {
    columns: BINDING_COLUMNS,
    cells: binding_cells,
};
const BINDING_COLUMNS: &[Column] = &[
    NAME,
    col("PolicyName", "string", "Policy the binding applies."),
    col(
        "ParamRef",
        "string",
        "Parameter resource(s) the binding configures the policy with.",
    ),
    AGE,
];

/// A label selector as upstream's generated `String()` debug form prints it, which is
/// what binding tables show for selector-based param references.
fn selector_debug_string(sel: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = sel["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k, s(v))).collect())
        .unwrap_or_default();
    labels.sort();
    let labels: String = labels
        .into_iter()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    let expressions: String = arr(&sel["matchExpressions"])
        .iter()
        .map(|e| {
            let values: Vec<&str> = arr(&e["values"]).iter().map(s).collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                s(&e["key"]),
                s(&e["operator"]),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}

fn binding_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    let param_ref = &spec["paramRef"];
    let param = match (s(&param_ref["name"]), s(&param_ref["namespace"])) {
        _ if !param_ref.is_object() => "<unset>".into(),
        ("", _) if param_ref["selector"].is_object() => {
            selector_debug_string(&param_ref["selector"])
        }
        ("", _) => "<unset>".into(),
        // without a namespace the param may be cluster-scoped or in any namespace
        (param_name, "") => format!("*/{param_name}"),
        (param_name, namespace) => format!("{namespace}/{param_name}"),
    };
    vec![
        name(obj),
        Value::from(s(&spec["policyName"])),
        Value::from(param),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    #[test]
    fn webhooks_and_policies() {
        let wh = json!({"metadata": {"name": "hooks", "creationTimestamp": ago(60)}, "webhooks": [{}, {}]});
        assert_eq!(
            webhook_cells(&wh, NOW),
            vec![json!("hooks"), json!(2), json!("60s")]
        );
        let vap = json!({"metadata": {"name": "replicas", "creationTimestamp": ago(60)},
            "spec": {"validations": [{"expression": "true"}],
                     "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
        assert_eq!(
            validating_policy_cells(&vap, NOW),
            vec![
                json!("replicas"),
                json!(1),
                json!("v1/ConfigMap"),
                json!("60s")
            ]
        );
        let map = json!({"metadata": {"name": "m"}, "spec": {"mutations": [{}, {}, {}]}});
        assert_eq!(
            mutating_policy_cells(&map, NOW)[1..3],
            [json!(3), json!("<unset>")]
        );
    }

    #[test]
    fn policy_bindings() {
        let b = |param: Value| json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": param}});
        assert_eq!(
            binding_cells(&b(json!({"name": "cfg", "namespace": "ns"})), NOW)[2],
            json!("ns/cfg")
        );
        assert_eq!(
            binding_cells(&b(json!({"name": "cfg"})), NOW)[2],
            json!("*/cfg")
        );
        assert_eq!(
            binding_cells(&b(Value::Null), NOW)[1..3],
            [json!("p"), json!("<unset>")]
        );
        let sel = json!({"selector": {"matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}});
        assert_eq!(
            binding_cells(&b(sel), NOW)[2],
            json!(
                "&LabelSelector{MatchLabels:map[string]string{env: prod,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:In,Values:[a b],},},}"
            )
        );
    }
}
