//! Start-up reconciliation of the bootstrap policy (upstream's
//! `reconciliation.ReconcileClusterRole` / `ReconcileRoleBinding` in union mode): the
//! defaults are created when missing, and existing objects that have not opted out
//! (`rbac.authorization.kubernetes.io/autoupdate: "false"`) gain whatever labels,
//! annotations, rules, aggregation selectors or subjects they lack. Nothing a user
//! added is removed.

use serde_json::{Map, Value};

use crate::AUTOUPDATE_ANNOTATION;
use crate::rule::{Rule, covers};

/// The object to write so that `existing` holds what `wanted` (a bootstrap object)
/// needs, or `None` when nothing needs writing.
///
/// - `existing` absent: `Some(wanted)` (create it).
/// - autoupdate annotation `"false"`: `None` (protected).
/// - a binding whose `roleRef` differs: `Some(wanted)`, which must replace the stored
///   object by delete and create since `roleRef` is immutable (see [`needs_recreate`]).
/// - otherwise `existing` with labels and annotations merged (existing values win), the
///   missing rules appended as upstream appends them (one atomic rule each), missing
///   aggregation selectors appended, or missing subjects appended.
pub fn reconcile(existing: Option<&Value>, wanted: &Value) -> Option<Value> {
    let Some(existing) = existing else {
        return Some(wanted.clone());
    };
    let protected = existing
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOUPDATE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("false");
    if protected {
        return None;
    }
    let is_binding = wanted.get("roleRef").is_some();
    if is_binding && existing.get("roleRef") != wanted.get("roleRef") {
        return Some(wanted.clone());
    }
    let mut out = existing.clone();
    merge_meta(&mut out, wanted, "labels");
    merge_meta(&mut out, wanted, "annotations");
    if is_binding {
        union_subjects(&mut out, wanted);
    } else {
        union_rules(&mut out, wanted);
        union_aggregation(&mut out, wanted);
    }
    (out != *existing).then_some(out)
}

/// True when the reconciled object cannot be written as an update because its
/// `roleRef` (immutable) changed: the server deletes `existing` and creates `updated`.
pub fn needs_recreate(existing: &Value, updated: &Value) -> bool {
    updated.get("roleRef").is_some() && existing.get("roleRef") != updated.get("roleRef")
}

fn merge_meta(out: &mut Value, wanted: &Value, field: &str) {
    let Some(want) = wanted
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_object)
    else {
        return;
    };
    let Some(meta) = object_field(out.as_object_mut(), "metadata") else {
        return;
    };
    let Some(have) = object_field(Some(meta), field) else {
        return;
    };
    for (k, v) in want {
        if !have.contains_key(k) {
            have.insert(k.clone(), v.clone());
        }
    }
}

/// `map[field]` as a mutable map, created when absent or null; `None` when there is
/// no map or the field holds something else.
fn object_field<'a>(
    map: Option<&'a mut Map<String, Value>>,
    field: &str,
) -> Option<&'a mut Map<String, Value>> {
    let map = map?;
    let slot = map
        .entry(field.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

fn union_rules(out: &mut Value, wanted: &Value) {
    let have = Rule::list_from_object(out);
    let want = Rule::list_from_object(wanted);
    let (_, missing) = covers(&have, &want);
    if missing.is_empty() {
        return;
    }
    let Some(map) = out.as_object_mut() else {
        return;
    };
    let mut rules = match map.get("rules") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    rules.extend(missing.iter().map(Rule::to_json));
    map.insert("rules".into(), Value::Array(rules));
}

fn selectors(obj: &Value) -> Option<&Vec<Value>> {
    obj.pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
}

fn union_aggregation(out: &mut Value, wanted: &Value) {
    let expected = wanted.get("aggregationRule").filter(|v| !v.is_null());
    let have: Vec<Value> = selectors(out).cloned().unwrap_or_default();
    let Some(map) = out.as_object_mut() else {
        return;
    };
    if expected.is_none() {
        // Not expected to be aggregated at all: drop any aggregation.
        if map.get("aggregationRule").is_some_and(|v| !v.is_null()) {
            map.remove("aggregationRule");
        }
        return;
    }
    let missing: Vec<Value> = selectors(wanted)
        .map(|w| w.iter().filter(|s| !have.contains(s)).cloned().collect())
        .unwrap_or_default();
    if missing.is_empty() {
        return;
    }
    let mut all = have;
    all.extend(missing);
    let mut rule = Map::new();
    rule.insert("clusterRoleSelectors".into(), Value::Array(all));
    map.insert("aggregationRule".into(), Value::Object(rule));
}

fn union_subjects(out: &mut Value, wanted: &Value) {
    let want = wanted
        .get("subjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(map) = out.as_object_mut() else {
        return;
    };
    let mut have = match map.get("subjects") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let before = have.len();
    for s in want {
        if !have.contains(&s) {
            have.push(s);
        }
    }
    if have.len() != before {
        map.insert("subjects".into(), Value::Array(have));
    }
}
