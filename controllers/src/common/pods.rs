//! Pod helpers shared by the workload controllers: the predicates upstream's
//! `controller_utils.go` and `podutil` define (active, ready, available), building a pod
//! from a template for an owner, and upstream's order for choosing which pods to delete
//! first when scaling down (`ActivePodsWithRanks`).

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::OwnerInfo;

/// The annotation that lowers (or raises) a pod's cost of deletion.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Upstream's `IsPodActive`: not Succeeded, not Failed, not being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// Whether the pod is being deleted (has a deletionTimestamp) but still exists.
pub fn is_pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's `Ready` condition, if any.
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Upstream's `IsPodReady`: the Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod became ready (its Ready condition's lastTransitionTime), if it is ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Upstream's `IsPodAvailable`: ready, and for at least `min_ready_seconds` by `now`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_since(pod) {
        Some(t) => t + SignedDuration::from_secs(i64::from(min_ready_seconds)) < now,
        None => false,
    }
}

/// For a ready pod that is not yet available, how long until it becomes available:
/// controllers requeue after that to count it.
pub fn until_available(
    pod: &Pod,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<std::time::Duration> {
    if min_ready_seconds <= 0 || !is_pod_ready(pod) || is_pod_available(pod, min_ready_seconds, now)
    {
        return None;
    }
    let since = ready_since(pod)?;
    let at = since + SignedDuration::from_secs(i64::from(min_ready_seconds));
    let left = at.duration_since(now);
    Some(
        std::time::Duration::try_from(left).unwrap_or_default() + std::time::Duration::from_secs(1),
    )
}

/// A pod for `owner` from `template`, as upstream's `GetPodFromTemplate`: the template's
/// labels, annotations, finalizers and spec, `generateName: <owner>-`, and the owner's
/// controller reference.
pub fn pod_from_template(template: &PodTemplateSpec, owner: &OwnerInfo) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name)),
            namespace: owner.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner.controller_ref()]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    let Some(s) = pod.status.as_ref() else {
        return 0;
    };
    s.container_statuses
        .iter()
        .flatten()
        .chain(s.init_container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

fn log2_rank(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.duration_since(t).as_nanos();
    if d <= 0 { -1 } else { (d as f64).log2() as i64 }
}

/// Orders two optional times "empty first, then newer first" with upstream's logarithmic
/// buckets (`LogarithmicScaleDown`): times in the same power-of-two age bucket tie and
/// fall back to the uid.
fn newer_first(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    now: Timestamp,
    ua: &str,
    ub: &str,
) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => match log2_rank(x, now).cmp(&log2_rank(y, now)) {
            Ordering::Equal => ua.cmp(ub),
            o => o,
        },
    }
}

/// Upstream's `ActivePodsWithRanks.Less` as an ordering: pods that sort first are deleted
/// first. `rank` is the number of related pods on the same node (doubled-up pods go
/// first).
pub fn deletion_order(a: (&Pod, usize), b: (&Pod, usize), now: Timestamp) -> Ordering {
    let (pa, ra) = a;
    let (pb, rb) = b;
    let na = pa
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    let nb = pb
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let by_phase = phase_ordinal(pa).cmp(&phase_ordinal(pb));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let (ready_a, ready_b) = (is_pod_ready(pa), is_pod_ready(pb));
    if ready_a != ready_b {
        return if ready_a {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let by_cost = deletion_cost(pa).cmp(&deletion_cost(pb));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    if ra != rb {
        return rb.cmp(&ra);
    }
    let (ua, ub) = (
        pa.metadata.uid.as_deref().unwrap_or(""),
        pb.metadata.uid.as_deref().unwrap_or(""),
    );
    if ready_a && ready_b {
        let o = newer_first(ready_since(pa), ready_since(pb), now, ua, ub);
        if o != Ordering::Equal {
            return o;
        }
    }
    let by_restarts = max_restarts(pb).cmp(&max_restarts(pa));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    newer_first(created(pa), created(pb), now, ua, ub)
}

/// The `n` pods to delete first among `pods`, ranked by how many `related` active pods
/// share their node (upstream's `getPodsToDelete`).
pub fn pods_to_delete<'a>(pods: &[&'a Pod], related: &[&Pod], n: usize) -> Vec<&'a Pod> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_pod_active(p)) {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *on_node.entry(node).or_default() += 1;
        }
    }
    let rank = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| on_node.get(n).copied())
            .unwrap_or(0)
    };
    let now = Timestamp::now();
    let mut ranked: Vec<(&Pod, usize)> = pods.iter().map(|p| (*p, rank(p))).collect();
    ranked.sort_by(|a, b| deletion_order(*a, *b, now));
    ranked.into_iter().take(n).map(|(p, _)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, node: &str, phase: &str, ready: Option<Timestamp>) -> Pod {
        let conditions = ready.map(|t| {
            vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(t)),
                ..Default::default()
            }]
        });
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn deletion_prefers_unassigned_pending_unready() {
        let now = Timestamp::now();
        let old = now - SignedDuration::from_hours(10);
        let running = pod("running", "n1", "Running", Some(old));
        let unready = pod("unready", "n1", "Running", None);
        let pending = pod("pending", "n1", "Pending", None);
        let unassigned = pod("unassigned", "", "Pending", None);
        let pods = [&running, &unready, &pending, &unassigned];
        let order: Vec<_> = pods_to_delete(&pods, &pods, 4)
            .into_iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(order, ["unassigned", "pending", "unready", "running"]);
    }

    #[test]
    fn deletion_prefers_recently_ready_and_doubled_up() {
        let now = Timestamp::now();
        let old = pod(
            "old",
            "n1",
            "Running",
            Some(now - SignedDuration::from_hours(100)),
        );
        let young = pod(
            "young",
            "n2",
            "Running",
            Some(now - SignedDuration::from_secs(3)),
        );
        assert_eq!(deletion_order((&young, 0), (&old, 0), now), Ordering::Less);
        assert_eq!(deletion_order((&old, 2), (&young, 1), now), Ordering::Less);
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Timestamp::now();
        let p = pod(
            "p",
            "n",
            "Running",
            Some(now - SignedDuration::from_secs(5)),
        );
        assert!(is_pod_available(&p, 0, now));
        assert!(is_pod_available(&p, 3, now));
        assert!(!is_pod_available(&p, 10, now));
        assert!(until_available(&p, 10, now).is_some());
        assert!(!is_pod_active(&pod("done", "n", "Succeeded", None)));
    }
}
