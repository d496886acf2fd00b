//! The TaintNodesByCondition admission plugin: a new Node starts tainted
//! `node.kubernetes.io/not-ready:NoSchedule`, so nothing is scheduled there before the
//! node lifecycle controller has seen it report Ready.

use serde_json::{Value, json};

const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Adds the not-ready taint unless the node already carries it.
pub fn admit(node: &mut Value) {
    let Some(spec) = node
        .as_object_mut()
        .map(|n| n.entry("spec").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    let Some(taints) = taints.as_array_mut() else {
        return;
    };
    let present = taints.iter().any(|t| {
        t.get("key").and_then(Value::as_str) == Some(NOT_READY)
            && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
    });
    if !present {
        taints.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taint_added_once() {
        let mut node = json!({"metadata": {"name": "n"}});
        admit(&mut node);
        admit(&mut node);
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": NOT_READY, "effect": "NoSchedule"}])
        );
    }
}
