//! The status a replica controller reports (upstream's `calculateStatus`): counts of the
//! pods it owns and the `ReplicaFailure` condition while creating or deleting fails.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::common::pods::{is_pod_available, is_pod_ready};

/// Why the last create/delete round failed, for the `ReplicaFailure` condition.
pub struct ManageFailure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    pub message: String,
}

/// Inputs to the status computation.
pub struct StatusInputs<'a> {
    pub current: &'a Value,
    pub generation: Option<i64>,
    pub template_labels: Option<&'a std::collections::BTreeMap<String, String>>,
    pub min_ready_seconds: i32,
    /// Active pods the owner controls.
    pub active: &'a [&'a Pod],
    /// Pods the owner controls that are being deleted.
    pub terminating: usize,
    pub failure: Option<ManageFailure>,
}

fn conditions(current: &Value, failure: Option<ManageFailure>) -> Vec<Value> {
    let mut conds: Vec<Value> = current
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_failure = conds.iter().any(|c| c["type"] == "ReplicaFailure");
    match failure {
        Some(f) if !has_failure => conds.push(json!({
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "reason": f.reason,
            "message": f.message,
        })),
        Some(_) => {}
        None => conds.retain(|c| c["type"] != "ReplicaFailure"),
    }
    conds
}

/// The new status, as the JSON the API stores (zero counts omitted as Go's `omitempty`
/// does, `replicas` always present).
pub fn calculate(input: StatusInputs<'_>) -> Value {
    let now = Timestamp::now();
    let template_sel = input.template_labels.map(|l| {
        crate::common::selector(
            &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some(l.clone()),
                ..Default::default()
            },
        )
    });
    let fully_labeled = input
        .active
        .iter()
        .filter(|p| match &template_sel {
            Some(Ok(sel)) => crate::common::matches(sel, p.metadata.labels.as_ref()),
            _ => true,
        })
        .count();
    let ready = input.active.iter().filter(|p| is_pod_ready(p)).count();
    let available = input
        .active
        .iter()
        .filter(|p| is_pod_available(p, input.min_ready_seconds, now))
        .count();
    let mut status = serde_json::Map::new();
    status.insert("replicas".into(), json!(input.active.len()));
    for (k, v) in [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if v > 0 {
            status.insert(k.into(), json!(v));
        }
    }
    status.insert("terminatingReplicas".into(), json!(input.terminating));
    if let Some(g) = input.generation {
        status.insert("observedGeneration".into(), json!(g));
    }
    let conds = conditions(input.current, input.failure);
    if !conds.is_empty() {
        status.insert("conditions".into(), Value::Array(conds));
    }
    Value::Object(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_condition_comes_and_goes() {
        let current = json!({});
        let input = |current, failure| StatusInputs {
            current,
            generation: Some(2),
            template_labels: None,
            min_ready_seconds: 0,
            active: &[],
            terminating: 0,
            failure,
        };
        let failed = calculate(input(
            &current,
            Some(ManageFailure {
                reason: "FailedCreate",
                message: "forbidden".into(),
            }),
        ));
        assert_eq!(failed["conditions"][0]["reason"], "FailedCreate");
        assert_eq!(failed["replicas"], 0);
        assert_eq!(failed["observedGeneration"], 2);
        assert!(failed.get("readyReplicas").is_none());
        let healed = calculate(input(&failed, None));
        assert!(healed.get("conditions").is_none());
    }
}
