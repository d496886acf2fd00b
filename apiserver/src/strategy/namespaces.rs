//! Namespace rules: the `kubernetes` finalizer, the Terminating phase, and the `finalize`
//! subresource that the namespace controller uses to let a namespace go.

use serde_json::{Value, json};

pub fn prepare_for_create(ns: &mut Value) {
    if ns.pointer("/spec/finalizers").is_none() {
        ns["spec"] = json!({"finalizers": ["kubernetes"]});
    }
    ns["status"] = json!({"phase": "Active"});
}

pub fn prepare_for_update(sub: &str, old: &Value, new: &mut Value) {
    // spec.finalizers change only through /finalize
    if sub != "finalize" {
        match old.pointer("/spec/finalizers") {
            Some(f) => new["spec"]["finalizers"] = f.clone(),
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }
}

pub fn spec_finalizers_empty(ns: &Value) -> bool {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty())
}

/// Marks a namespace Terminating; it stays while spec finalizers remain.
pub fn mark_terminating(ns: &mut Value) -> bool {
    ns["status"]["phase"] = Value::String("Terminating".into());
    !spec_finalizers_empty(ns)
}
