//! Hand-over from client-side to server-side apply for the `kubectl` manager, as
//! upstream's last-applied manager and updater do it.
//!
//! When `kubectl apply --server-side` (manager `kubectl`) conflicts only on fields the
//! object's `kubectl.kubernetes.io/last-applied-configuration` annotation set and that
//! still hold those values, the apply proceeds as forced: the user is taking over their
//! own client-side configuration. Afterwards, an existing annotation is rewritten to the
//! newly applied configuration so that a later client-side apply computes from it.

use serde_json::Value;

use super::typed::Pos;
use super::walk;
use crate::fieldpath::{Path, Set};

/// The annotation client-side apply keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose applies take over client-side apply ownership.
pub const KUBECTL_MANAGER: &str = "kubectl";

fn annotation(object: &Value) -> Option<&str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
}

/// The fields the last client-side apply set that still hold the values it set.
fn allowed(live: &Value, pos: Pos<'_>) -> Option<Set> {
    let last: Value = serde_json::from_str(annotation(live)?).ok()?;
    if !last.is_object() {
        return None;
    }
    let set = walk::to_field_set(&last, pos);
    let drifted = walk::compare(Some(&last), Some(live), pos).modified;
    Some(set.difference(&drifted))
}

/// Whether every conflicting path is one the last client-side apply owns.
pub(crate) fn conflicts_allowed(
    manager: &str,
    live: &Value,
    pos: Pos<'_>,
    conflicts: &[Path],
) -> bool {
    if manager != KUBECTL_MANAGER {
        return false;
    }
    match allowed(live, pos) {
        Some(set) => conflicts.iter().all(|p| set.has(p)),
        None => false,
    }
}

/// Rewrites an existing last-applied annotation on `object` to `applied` (without the
/// annotation itself), for applies by the `kubectl` manager.
pub(crate) fn sync_annotation(manager: &str, object: &mut Value, applied: &Value) {
    if manager != KUBECTL_MANAGER || annotation(object).is_none() {
        return;
    }
    let mut config = applied.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        let emptied = meta
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
            .is_some_and(|a| a.shift_remove(LAST_APPLIED_ANNOTATION).is_some() && a.is_empty());
        if emptied {
            meta.shift_remove("annotations");
        }
    }
    let text = config.to_string();
    if let Some(annotations) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
    }
}
