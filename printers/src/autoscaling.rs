//! autoscaling: horizontal pod autoscalers, from v2 objects (`spec.metrics`) or v1
//! objects (`targetCPUUtilizationPercentage`), rendered as `cpu: 10%/50%`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::format::{age, arr, int, name, s};
use crate::quantity::canonical;
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    (resource == "horizontalpodautoscalers").then_some(&HPAS)
}

static HPAS: Printer = Printer {
    columns: HPA_COLUMNS,
    cells: hpa_cells,
};
const HPA_COLUMNS: &[Column] = &[
    NAME,
    col("Reference", "string", "Kind/name of the scaled workload."),
    col(
        "Targets",
        "string",
        "Current and target value of each metric.",
    ),
    col(
        "MinPods",
        "string",
        "Lowest replica count the autoscaler may set.",
    ),
    col(
        "MaxPods",
        "string",
        "Highest replica count the autoscaler may set.",
    ),
    col("Replicas", "string", "Replica count last observed."),
    AGE,
];

/// Metric specs and statuses in the v2 shape, converting a v1 object's CPU target.
fn metrics(hpa: &Value) -> (Vec<Value>, Vec<Value>) {
    let spec = &hpa["spec"];
    let status = &hpa["status"];
    let v1 = s(&hpa["apiVersion"]) == "autoscaling/v1"
        || (spec["metrics"].is_null() && !spec["targetCPUUtilizationPercentage"].is_null());
    if !v1 {
        return (
            arr(&spec["metrics"]).to_vec(),
            arr(&status["currentMetrics"]).to_vec(),
        );
    }
    let specs = match spec["targetCPUUtilizationPercentage"].as_i64() {
        Some(target) => vec![json!({"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}})],
        None => vec![],
    };
    let statuses = match status["currentCPUUtilizationPercentage"].as_i64() {
        Some(current) => vec![json!({"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}})],
        None => vec![],
    };
    (specs, statuses)
}

/// A quantity as Go's `(*Quantity).String()` prints it, `<nil>` when unset.
fn q(v: &Value) -> String {
    canonical(v).unwrap_or_else(|| "<nil>".into())
}

/// `current/target` for metrics with a value or an average value target.
fn value_pair(target: &Value, current: Option<&Value>) -> String {
    if !target["averageValue"].is_null() {
        let current = current
            .filter(|c| !c["averageValue"].is_null())
            .map_or("<unknown>".into(), |c| q(&c["averageValue"]));
        format!("{current}/{} (avg)", q(&target["averageValue"]))
    } else {
        let current = current.map_or("<unknown>".into(), |c| q(&c["value"]));
        format!("{current}/{}", q(&target["value"]))
    }
}

/// `name: current/target` for resource and container-resource metrics.
fn resource_pair(source: &Value, current: Option<&Value>) -> String {
    let target = &source["target"];
    let resource = s(&source["name"]);
    if !target["averageValue"].is_null() {
        let current = current.map_or("<unknown>".into(), |c| q(&c["averageValue"]));
        return format!("{resource}: {current}/{}", q(&target["averageValue"]));
    }
    let current = current
        .and_then(|c| c["averageUtilization"].as_i64())
        .map_or("<unknown>".into(), |u| format!("{u}%"));
    let target = target["averageUtilization"]
        .as_i64()
        .map_or("<auto>".into(), |u| format!("{u}%"));
    format!("{resource}: {current}/{target}")
}

fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    // the status entry at the same index, if it carries this metric's source
    let current = |key: &str| {
        status
            .map(|st| &st[key])
            .filter(|c| c.is_object())
            .map(|c| &c["current"])
    };
    match s(&spec["type"]) {
        "External" => value_pair(&spec["external"]["target"], current("external")),
        "Pods" => {
            let current = current("pods").map_or("<unknown>".into(), |c| q(&c["averageValue"]));
            format!("{current}/{}", q(&spec["pods"]["target"]["averageValue"]))
        }
        "Object" => value_pair(&spec["object"]["target"], current("object")),
        "Resource" => resource_pair(&spec["resource"], current("resource")),
        "ContainerResource" => {
            resource_pair(&spec["containerResource"], current("containerResource"))
        }
        _ => "<unknown type>".into(),
    }
}

fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 2;
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, m)| format_metric(m, statuses.get(i)))
        .collect();
    let shown = list
        .iter()
        .take(MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > MAX {
        format!("{shown} + {} more...", list.len() - MAX)
    } else {
        shown
    }
}

fn hpa_cells(hpa: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &hpa["spec"];
    let target = &spec["scaleTargetRef"];
    let (specs, statuses) = metrics(hpa);
    let min = spec["minReplicas"]
        .as_i64()
        .map_or("<unset>".into(), |n| n.to_string());
    vec![
        name(hpa),
        Value::from(format!("{}/{}", s(&target["kind"]), s(&target["name"]))),
        Value::from(format_metrics(&specs, &statuses)),
        Value::from(min),
        Value::from(int(&spec["maxReplicas"])),
        Value::from(int(&hpa["status"]["currentReplicas"])),
        age(hpa, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};

    #[test]
    fn v2_hpa_with_several_metrics() {
        let hpa = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "web", "creationTimestamp": ago(300)},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                 "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}
                 ]},
        "status": {"currentReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "120m"}}},
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "300Mi"}}}
        ]}});
        assert_eq!(
            hpa_cells(&hpa, NOW),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 12%/50%, memory: 300Mi/1Gi + 1 more..."),
                json!("1"),
                json!(10),
                json!(2),
                json!("5m")
            ]
        );
    }

    #[test]
    fn v1_hpa_and_unknown_current() {
        let hpa = json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "php"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "php"}, "maxReplicas": 5,
                     "targetCPUUtilizationPercentage": 80},
            "status": {"currentReplicas": 1}});
        assert_eq!(
            hpa_cells(&hpa, NOW)[2..6],
            [
                json!("cpu: <unknown>/80%"),
                json!("<unset>"),
                json!(5),
                json!(1)
            ]
        );
        let mut with_current = hpa.clone();
        with_current["status"]["currentCPUUtilizationPercentage"] = json!(33);
        assert_eq!(hpa_cells(&with_current, NOW)[2], json!("cpu: 33%/80%"));
        let no_metrics = json!({"metadata": {"name": "x"}, "spec": {"metrics": []}});
        assert_eq!(hpa_cells(&no_metrics, NOW)[2], json!("<none>"));
    }

    #[test]
    fn external_and_object_metrics() {
        let specs = vec![
            json!({"type": "External", "external": {"target": {"type": "Value", "value": "100"}}}),
            json!({"type": "Object", "object": {"target": {"type": "AverageValue", "averageValue": "2"}}}),
        ];
        let statuses = vec![json!({"type": "External", "external": {"current": {"value": "40"}}})];
        assert_eq!(
            format_metrics(&specs, &statuses),
            "40/100, <unknown>/2 (avg)"
        );
    }
}
