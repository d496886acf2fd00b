//! Node health bookkeeping, as upstream's `tryUpdateNodeHealth`: when the controller last
//! saw a sign of life from each node (a new Ready heartbeat or a renewed Lease), measured
//! on the controller's own clock so clock skew between machines does not matter, and the
//! conditions a node gets once it has been silent longer than its grace period. Pure
//! functions, no I/O.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The conditions the controller sets to Unknown when a node goes silent
/// (NetworkUnavailable is left alone: it is managed by the network, not the kubelet).
pub const STALE_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller remembers about one node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeHealth {
    /// When (on our clock) the node last showed a sign of life.
    pub probe: Timestamp,
    /// When (on our clock) the node's Ready condition last changed.
    pub ready_transition: Timestamp,
    /// The Ready condition as last seen.
    pub ready: Option<NodeCondition>,
    /// The Lease's renewTime as last seen.
    pub lease_renew: Option<Timestamp>,
}

/// One look at a node.
#[derive(Clone, Debug)]
pub struct Observation {
    pub health: NodeHealth,
    /// The Ready condition the node had when looked at (a made-up Unknown one, dated
    /// from the node's creation, if it never had one).
    pub observed_ready: NodeCondition,
    /// How long the node may stay silent: the startup grace period until it first
    /// reports Ready, the monitor grace period after.
    pub grace: Duration,
}

/// The grace periods (`--node-monitor-grace-period`, `--node-startup-grace-period`).
#[derive(Clone, Copy, Debug)]
pub struct Grace {
    pub monitor: Duration,
    pub startup: Duration,
}

/// A node's condition of the given type.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `now` without its fraction of a second: what a `metav1.Time` keeps.
pub fn whole_seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn created(node: &Node, now: Timestamp) -> Timestamp {
    node.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now)
}

fn fresh(now: Timestamp, ready: Option<NodeCondition>, lease: Option<Timestamp>) -> NodeHealth {
    NodeHealth {
        probe: now,
        ready_transition: now,
        ready,
        lease_renew: lease,
    }
}

/// Updates what we know of a node from its current object and its Lease's renewTime.
pub fn observe(
    saved: Option<&NodeHealth>,
    node: &Node,
    lease_renew: Option<Timestamp>,
    now: Timestamp,
    grace: Grace,
) -> Observation {
    let current = condition(node, "Ready");
    let created = created(node, now);
    let (observed_ready, grace) = match current {
        Some(c) => (c.clone(), grace.monitor),
        None => (
            NodeCondition {
                type_: "Ready".into(),
                status: "Unknown".into(),
                last_heartbeat_time: Some(Time(created)),
                last_transition_time: Some(Time(created)),
                ..Default::default()
            },
            grace.startup,
        ),
    };
    let saved_lease = saved.and_then(|h| h.lease_renew);
    let mut health = match (saved, current) {
        // never reported: the node's age counts against the startup grace period
        (None, None) => NodeHealth {
            probe: created,
            ready_transition: created,
            ready: None,
            lease_renew: None,
        },
        (Some(h), None) => NodeHealth {
            ready: None,
            ..h.clone()
        },
        (None, Some(c)) => fresh(now, Some(c.clone()), None),
        (Some(h), Some(c)) => match &h.ready {
            None => fresh(now, Some(c.clone()), h.lease_renew),
            Some(s) if s.last_heartbeat_time != c.last_heartbeat_time => {
                let transition = if s.last_transition_time != c.last_transition_time {
                    now
                } else {
                    h.ready_transition
                };
                NodeHealth {
                    probe: now,
                    ready_transition: transition,
                    ready: Some(c.clone()),
                    lease_renew: h.lease_renew,
                }
            }
            Some(_) => h.clone(),
        },
    };
    // A renewed Lease is a sign of life too (a kubelet that renews its Lease but never
    // posts status is taken as healthy, as upstream).
    if let Some(renew) = lease_renew
        && saved_lease.is_none_or(|s| s < renew)
    {
        health.lease_renew = Some(renew);
        health.probe = now;
    }
    Observation {
        health,
        observed_ready,
        grace,
    }
}

/// Whether the node has been silent for longer than its grace period.
pub fn is_silent(obs: &Observation, now: Timestamp) -> bool {
    let grace = SignedDuration::try_from(obs.grace).unwrap_or(SignedDuration::MAX);
    obs.health
        .probe
        .checked_add(grace)
        .is_ok_and(|deadline| now > deadline)
}

/// The node's conditions once it has gone silent: Ready and the pressure conditions
/// become Unknown ("NodeStatusUnknown"), or are added as Unknown
/// ("NodeStatusNeverUpdated") if the kubelet never posted them.
pub fn silent_conditions(node: &Node, now: Timestamp) -> Vec<NodeCondition> {
    let now = whole_seconds(now);
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for type_ in STALE_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
            }
            Some(_) => {}
            None => conditions.push(NodeCondition {
                type_: type_.into(),
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some("Kubelet never posted node status.".into()),
                last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                last_transition_time: Some(Time(now)),
            }),
        }
    }
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GRACE: Grace = Grace {
        monitor: Duration::from_secs(40),
        startup: Duration::from_secs(60),
    };

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn node(conditions: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"conditions": conditions},
        }))
        .expect("node")
    }

    fn ready(heartbeat: &str) -> serde_json::Value {
        json!([{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": "2024-01-01T00:00:00Z"}])
    }

    #[test]
    fn a_new_heartbeat_is_a_sign_of_life() {
        let first = observe(
            None,
            &node(ready("2024-01-01T00:01:00Z")),
            None,
            t("2024-01-01T00:01:00Z"),
            GRACE,
        );
        assert_eq!(first.grace, GRACE.monitor);
        assert_eq!(first.health.probe, t("2024-01-01T00:01:00Z"));
        // same heartbeat later: no news
        let same = observe(
            Some(&first.health),
            &node(ready("2024-01-01T00:01:00Z")),
            None,
            t("2024-01-01T00:02:00Z"),
            GRACE,
        );
        assert_eq!(same.health.probe, t("2024-01-01T00:01:00Z"));
        assert!(is_silent(&same, t("2024-01-01T00:02:00Z")));
        // a newer heartbeat: alive again
        let newer = observe(
            Some(&same.health),
            &node(ready("2024-01-01T00:02:00Z")),
            None,
            t("2024-01-01T00:02:01Z"),
            GRACE,
        );
        assert_eq!(newer.health.probe, t("2024-01-01T00:02:01Z"));
        assert!(!is_silent(&newer, t("2024-01-01T00:02:30Z")));
    }

    #[test]
    fn a_renewed_lease_is_a_sign_of_life() {
        let n = node(ready("2024-01-01T00:01:00Z"));
        let first = observe(
            None,
            &n,
            Some(t("2024-01-01T00:01:00Z")),
            t("2024-01-01T00:01:00Z"),
            GRACE,
        );
        let renewed = observe(
            Some(&first.health),
            &n,
            Some(t("2024-01-01T00:01:50Z")),
            t("2024-01-01T00:01:50Z"),
            GRACE,
        );
        assert_eq!(renewed.health.probe, t("2024-01-01T00:01:50Z"));
        assert!(!is_silent(&renewed, t("2024-01-01T00:02:20Z")));
        let stale = observe(
            Some(&renewed.health),
            &n,
            Some(t("2024-01-01T00:01:50Z")),
            t("2024-01-01T00:03:00Z"),
            GRACE,
        );
        assert!(is_silent(&stale, t("2024-01-01T00:03:00Z")));
    }

    #[test]
    fn a_node_that_never_reported_gets_the_startup_grace_from_its_creation() {
        let n = node(json!([]));
        let obs = observe(None, &n, None, t("2024-01-01T00:00:30Z"), GRACE);
        assert_eq!(obs.grace, GRACE.startup);
        assert_eq!(obs.observed_ready.status, "Unknown");
        assert!(!is_silent(&obs, t("2024-01-01T00:00:59Z")));
        assert!(is_silent(&obs, t("2024-01-01T00:01:01Z")));
    }

    #[test]
    fn silent_nodes_go_unknown() {
        let n = node(json!([
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "MemoryPressure", "status": "False"},
            {"type": "DiskPressure", "status": "Unknown", "reason": "Whatever"},
            {"type": "NetworkUnavailable", "status": "False"},
        ]));
        let now = t("2024-01-01T00:05:00Z");
        let c = silent_conditions(&n, now);
        let get = |ty: &str| c.iter().find(|c| c.type_ == ty).expect("condition");
        assert_eq!(get("Ready").status, "Unknown");
        assert_eq!(get("Ready").reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            get("Ready").message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(get("MemoryPressure").status, "Unknown");
        assert_eq!(get("DiskPressure").reason.as_deref(), Some("Whatever"));
        assert_eq!(get("NetworkUnavailable").status, "False");
        assert_eq!(
            get("PIDPressure").reason.as_deref(),
            Some("NodeStatusNeverUpdated")
        );
        assert_eq!(
            get("PIDPressure").message.as_deref(),
            Some("Kubelet never posted node status.")
        );
    }
}
