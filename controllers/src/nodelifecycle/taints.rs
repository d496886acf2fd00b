//! The taints the node-lifecycle controller owns, and how it changes them.
//!
//! - NoSchedule taints mirror node conditions (upstream's TaintNodesByCondition):
//!   Ready=False -> `not-ready`, Ready=Unknown -> `unreachable`, MemoryPressure /
//!   DiskPressure / PIDPressure / NetworkUnavailable=True -> their taints, and
//!   `spec.unschedulable` -> `unschedulable`.
//! - NoExecute `not-ready` / `unreachable` taints drive taint-based eviction; they are
//!   added at a rate-limited pace (see `zones`) and removed once the node is Ready.
//!
//! Changes are written as a merge patch pinned to the node's resourceVersion, retried
//! against a fresh read on conflict, so taints added by others are never lost.

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::common::{is_conflict, is_not_found};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// Attempts at one taint change before giving up until the next pass.
const RETRIES: usize = 5;

/// A taint with no value and no time (a template: the time is set when it is added).
pub fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        ..Default::default()
    }
}

/// The taint key a node condition in a status maps to, if any.
fn condition_taint(type_: &str, status: &str) -> Option<&'static str> {
    match (type_, status) {
        ("Ready", "False") => Some(NOT_READY),
        ("Ready", "Unknown") => Some(UNREACHABLE),
        ("MemoryPressure", "True") => Some(MEMORY_PRESSURE),
        ("DiskPressure", "True") => Some(DISK_PRESSURE),
        ("NetworkUnavailable", "True") => Some(NETWORK_UNAVAILABLE),
        ("PIDPressure", "True") => Some(PID_PRESSURE),
        _ => None,
    }
}

/// Whether `key` is one of the keys this controller derives from conditions.
fn is_condition_key(key: &str) -> bool {
    matches!(
        key,
        NOT_READY
            | UNREACHABLE
            | MEMORY_PRESSURE
            | DISK_PRESSURE
            | NETWORK_UNAVAILABLE
            | PID_PRESSURE
    )
}

/// Upstream's `MatchTaint`: same key and effect.
pub fn same_taint(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

/// Whether the node has a taint with the template's key and effect.
pub fn has_taint(node: &Node, template: &Taint) -> bool {
    node_taints(node).iter().any(|t| same_taint(t, template))
}

pub fn node_taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// The NoSchedule taints to add and to remove so that they mirror the node's conditions
/// and `spec.unschedulable`.
pub fn no_schedule_changes(node: &Node) -> (Vec<Taint>, Vec<Taint>) {
    let mut wanted: Vec<Taint> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| condition_taint(&c.type_, &c.status))
        .map(|key| taint(key, NO_SCHEDULE))
        .collect();
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        wanted.push(taint(UNSCHEDULABLE, NO_SCHEDULE));
    }
    let ours: Vec<&Taint> = node_taints(node)
        .iter()
        .filter(|t| t.effect == NO_SCHEDULE && (t.key == UNSCHEDULABLE || is_condition_key(&t.key)))
        .collect();
    let add = wanted
        .iter()
        .filter(|w| !ours.iter().any(|t| same_taint(t, w)))
        .cloned()
        .collect();
    let remove = ours
        .into_iter()
        .filter(|t| !wanted.iter().any(|w| same_taint(t, w)))
        .cloned()
        .collect();
    (add, remove)
}

/// The node's taints after adding `add` (stamped with `now`; a taint already there with
/// the same key, effect and value is kept as is) and removing `remove` (by key and
/// effect); `None` when nothing changes.
pub fn swapped(
    existing: &[Taint],
    add: &[Taint],
    remove: &[Taint],
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let mut out: Vec<Taint> = existing.to_vec();
    let mut changed = false;
    for a in add {
        let stamped = Taint {
            time_added: Some(Time(crate::nodelifecycle::health::whole_seconds(now))),
            ..a.clone()
        };
        match out.iter_mut().find(|t| same_taint(t, a)) {
            Some(t) if t.value == a.value => {}
            Some(t) => {
                *t = stamped;
                changed = true;
            }
            None => {
                out.push(stamped);
                changed = true;
            }
        }
    }
    let before = out.len();
    out.retain(|t| !remove.iter().any(|r| same_taint(t, r)));
    changed |= out.len() != before;
    changed.then_some(out)
}

/// Adds and removes taints on a node (upstream's `SwapNodeControllerTaint`). The first
/// attempt works from the informer's copy; a conflict re-reads the node. Returns whether
/// the node changed; a node that no longer exists is not an error.
pub async fn swap_taints(
    client: &kube::Client,
    nodes: &Store<Node>,
    name: &str,
    add: &[Taint],
    remove: &[Taint],
) -> anyhow::Result<bool> {
    let api: Api<Node> = Api::all(client.clone());
    let mut last_err = None;
    for attempt in 0..RETRIES {
        let node = if attempt == 0 {
            nodes.get(&ObjectRef::new(name)).map(|n| n.as_ref().clone())
        } else {
            api.get_opt(name).await?
        };
        let Some(node) = node else {
            return Ok(false);
        };
        let Some(taints) = swapped(node_taints(&node), add, remove, Timestamp::now()) else {
            return Ok(false);
        };
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::debug!(node = name, ?add, ?remove, "node taints updated");
                return Ok(true);
            }
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) if is_conflict(&e) => last_err = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_err.map_or_else(|| anyhow::anyhow!("too many conflicts"), Into::into))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    fn keys(v: &[Taint]) -> Vec<String> {
        v.iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect()
    }

    #[test]
    fn no_schedule_taints_follow_conditions() {
        let n = node(json!({
            "metadata": {"name": "n"},
            "spec": {"unschedulable": true, "taints": [
                {"key": DISK_PRESSURE, "effect": "NoSchedule"},
                {"key": UNREACHABLE, "effect": "NoExecute"},
                {"key": "example.com/custom", "effect": "NoSchedule"},
            ]},
            "status": {"conditions": [
                {"type": "Ready", "status": "Unknown"},
                {"type": "MemoryPressure", "status": "True"},
                {"type": "DiskPressure", "status": "False"},
            ]},
        }));
        let (add, remove) = no_schedule_changes(&n);
        assert_eq!(
            keys(&add),
            [
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/memory-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule",
            ]
        );
        assert_eq!(
            keys(&remove),
            ["node.kubernetes.io/disk-pressure:NoSchedule"]
        );
    }

    #[test]
    fn swapping_taints() {
        let now = Timestamp::now();
        let existing = vec![
            taint(NOT_READY, NO_EXECUTE),
            taint("example.com/custom", NO_SCHEDULE),
        ];
        let out = swapped(
            &existing,
            &[taint(UNREACHABLE, NO_EXECUTE)],
            &[taint(NOT_READY, NO_EXECUTE)],
            now,
        )
        .expect("changed");
        assert_eq!(
            keys(&out),
            [
                "example.com/custom:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute"
            ]
        );
        assert!(out[1].time_added.is_some());
        assert!(swapped(&out, &[taint(UNREACHABLE, NO_EXECUTE)], &[], now).is_none());
        assert!(swapped(&out, &[], &[taint(NOT_READY, NO_EXECUTE)], now).is_none());
    }
}
