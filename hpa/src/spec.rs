//! autoscaling/v2 spec defaulting and typed views of the parts the controller uses.

use serde_json::{Map, Value, json};

use crate::quantity::milli_from_value;

/// Default target for an HPA without metrics: 80% average CPU utilization.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

fn default_scale_up_rules() -> Value {
    json!({
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}
        ]
    })
}

/// Scale-down defaults. As upstream, `stabilizationWindowSeconds` is left unset
/// here: the controller fills it from its downscale stabilization window (300s).
fn default_scale_down_rules() -> Value {
    json!({
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}
        ]
    })
}

fn merge_rules(given: Option<&Value>, defaults: Value) -> Value {
    let mut out = match defaults {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(Value::Object(g)) = given {
        for key in [
            "selectPolicy",
            "stabilizationWindowSeconds",
            "policies",
            "tolerance",
        ] {
            if let Some(v) = g.get(key).filter(|v| !v.is_null()) {
                out.insert(key.to_string(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Applies upstream's autoscaling/v2 defaulting to an HPA `spec` object and
/// returns the defaulted spec: `minReplicas` 1, a missing/empty `metrics` list
/// becomes 80% CPU utilization, and when `behavior` is present its unset
/// scaling rules/fields are filled (scale up: window 0, Max, Pods 4/15s and
/// Percent 100/15s; scale down: Max, Percent 100/15s).
pub fn default_spec(spec: &Value) -> Value {
    let mut out = match spec {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if out.get("minReplicas").is_none_or(Value::is_null) {
        out.insert("minReplicas".into(), json!(1));
    }
    let metrics_empty = out
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if metrics_empty {
        out.insert(
            "metrics".into(),
            json!([{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}
                }
            }]),
        );
    }
    if let Some(b) = out.get("behavior").filter(|b| b.is_object()).cloned() {
        let up = merge_rules(b.get("scaleUp"), default_scale_up_rules());
        let down = merge_rules(b.get("scaleDown"), default_scale_down_rules());
        let mut bm = b.as_object().cloned().unwrap_or_default();
        bm.insert("scaleUp".into(), up);
        bm.insert("scaleDown".into(), down);
        out.insert("behavior".into(), Value::Object(bm));
    }
    Value::Object(out)
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Policy {
    pub kind: String,
    pub value: i32,
    pub period_seconds: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rules {
    pub stabilization_window_seconds: Option<i32>,
    pub select_policy: String,
    pub policies: Vec<Policy>,
    pub tolerance: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Behavior {
    pub scale_up: Rules,
    pub scale_down: Rules,
}

#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub metrics: Vec<Value>,
    pub behavior: Option<Behavior>,
}

pub(crate) fn as_i32(v: Option<&Value>) -> Option<i32> {
    v.and_then(Value::as_i64)
        .and_then(|i| i32::try_from(i).ok())
}

fn parse_rules(v: &Value) -> Rules {
    Rules {
        stabilization_window_seconds: as_i32(v.get("stabilizationWindowSeconds")),
        select_policy: v
            .get("selectPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Max")
            .to_string(),
        policies: v
            .get("policies")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        Some(Policy {
                            kind: p.get("type")?.as_str()?.to_string(),
                            value: as_i32(p.get("value"))?,
                            period_seconds: as_i32(p.get("periodSeconds"))?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        tolerance: v
            .get("tolerance")
            .and_then(milli_from_value)
            .map(|m| m as f64 / 1000.0),
    }
}

/// Parses (and defaults) the spec of an HPA object.
pub(crate) fn parse_spec(hpa: &Value) -> Spec {
    let spec = default_spec(hpa.get("spec").unwrap_or(&Value::Null));
    let behavior = spec
        .get("behavior")
        .filter(|b| b.is_object())
        .map(|b| Behavior {
            scale_up: parse_rules(b.get("scaleUp").unwrap_or(&Value::Null)),
            scale_down: parse_rules(b.get("scaleDown").unwrap_or(&Value::Null)),
        });
    Spec {
        min_replicas: as_i32(spec.get("minReplicas")).unwrap_or(1),
        max_replicas: as_i32(spec.get("maxReplicas")).unwrap_or(0),
        metrics: spec
            .get("metrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        behavior,
    }
}
