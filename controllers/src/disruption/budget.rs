//! PodDisruptionBudget arithmetic, as upstream's disruption controller computes it:
//! how many pods are expected and must stay healthy (`minAvailable`/`maxUnavailable`,
//! integers or percentages of the controllers' scale), which pods count as healthy, the
//! `disruptedPods` entries still pending, and the status with its `DisruptionAllowed`
//! condition. No I/O: the controller feeds it pods and scales.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::common::pods::is_pod_ready;

/// How long a pod the eviction API marked as disrupted is given to disappear before it
/// counts again (upstream's `DeletionTimeout`).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// The condition type and its reasons.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// Resolves an int-or-percent against `total`, rounding percentages up (upstream's
/// `GetScaledValueFromIntOrPercent(.., true)`).
pub fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(percent) = s.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .into(),
                );
            };
            let p: i64 = percent
                .parse()
                .map_err(|e| format!("invalid value for IntOrString: invalid value {s:?}: {e}"))?;
            let scaled = (p * i64::from(total) + 99).div_euclid(100);
            i32::try_from(scaled).map_err(|e| e.to_string())
        }
    }
}

/// Whether the budget needs the scale of the pods' controllers (percentages and
/// `maxUnavailable`); an integer `minAvailable` counts the selected pods instead.
pub fn needs_scale(pdb: &PodDisruptionBudget) -> bool {
    let Some(spec) = pdb.spec.as_ref() else {
        return false;
    };
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// `(expectedPods, desiredHealthy)` for a budget selecting `pod_count` pods whose
/// controllers' scales sum to `scale` (when [`needs_scale`]).
pub fn expected_and_desired(
    pdb: &PodDisruptionBudget,
    pod_count: usize,
    scale: i32,
) -> Result<(i32, i32), String> {
    let Some(spec) = pdb.spec.as_ref() else {
        return Ok((0, 0));
    };
    if let Some(max) = spec.max_unavailable.as_ref() {
        let unavailable = scaled_value(max, scale)?;
        return Ok((scale, (scale - unavailable).max(0)));
    }
    match spec.min_available.as_ref() {
        Some(IntOrString::Int(n)) => Ok((i32::try_from(pod_count).unwrap_or(i32::MAX), *n)),
        Some(percent) => Ok((scale, scaled_value(percent, scale)?)),
        None => Ok((0, 0)),
    }
}

/// The `disruptedPods` entries still pending: pods not yet being deleted whose deadline
/// has not passed. Also returns the earliest deadline (to re-check then) and the pods
/// that outlived theirs (upstream warns about them).
pub fn pending_disruptions(
    pods: &[&Pod],
    pdb: &PodDisruptionBudget,
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>, Vec<String>) {
    let mut pending = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let mut expired = Vec::new();
    let Some(marked) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (pending, recheck, expired);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = marked.get(&name) else {
            continue;
        };
        let deadline = at.0 + DELETION_TIMEOUT;
        if deadline < now {
            expired.push(name);
        } else {
            recheck = Some(recheck.map_or(deadline, |r| r.min(deadline)));
            pending.insert(name, at.clone());
        }
    }
    (pending, recheck, expired)
}

/// Pods that count as healthy: Ready, not being deleted, not about to be.
pub fn count_healthy(pods: &[&Pod], disrupted: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            disrupted
                .get(name)
                .is_none_or(|at| at.0 + DELETION_TIMEOUT <= now)
        })
        .filter(|p| is_pod_ready(p))
        .count();
    i32::try_from(healthy).unwrap_or(i32::MAX)
}

/// Disruptions allowed: the healthy surplus, and none while no pods are expected (so a
/// budget whose pods just appeared is safe until its status catches up).
pub fn disruptions_allowed(current_healthy: i32, desired_healthy: i32, expected: i32) -> i32 {
    let allowed = current_healthy - desired_healthy;
    if expected <= 0 || allowed <= 0 {
        0
    } else {
        allowed
    }
}

/// Upstream's `meta.SetStatusCondition`: adds or updates the condition of that type; the
/// transition time moves only when the status changes.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        None => conditions.push(new),
        Some(c) => {
            if c.status != new.status {
                c.status = new.status;
                c.last_transition_time = new.last_transition_time;
            }
            c.reason = new.reason;
            c.message = new.message;
            c.observed_generation = new.observed_generation;
        }
    }
}

fn condition(status: &str, reason: &str, message: String, generation: Option<i64>) -> Condition {
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(crate::common::now()),
    }
}

/// Whether the status' condition already says what its numbers mean.
fn conditions_up_to_date(status: &PodDisruptionBudgetStatus, generation: Option<i64>) -> bool {
    let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
    else {
        return false;
    };
    if status.observed_generation != generation {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == SUFFICIENT_PODS
    } else {
        c.status == "False" && c.reason == INSUFFICIENT_PODS
    }
}

/// The numbers a sync computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
    pub disrupted_pods: BTreeMap<String, Time>,
}

/// The new status for `observed`, or `None` when the current one already says it.
pub fn new_status(pdb: &PodDisruptionBudget, o: Observed) -> Option<PodDisruptionBudgetStatus> {
    let allowed = disruptions_allowed(o.current_healthy, o.desired_healthy, o.expected_pods);
    let generation = pdb.metadata.generation;
    let old = pdb.status.clone().unwrap_or_default();
    let disrupted = (!o.disrupted_pods.is_empty()).then_some(o.disrupted_pods);
    let same_disrupted =
        old.disrupted_pods.as_ref().filter(|m| !m.is_empty()) == disrupted.as_ref();
    if old.current_healthy == o.current_healthy
        && old.desired_healthy == o.desired_healthy
        && old.expected_pods == o.expected_pods
        && old.disruptions_allowed == allowed
        && same_disrupted
        && conditions_up_to_date(&old, generation)
    {
        return None;
    }
    let mut conditions = old.conditions.unwrap_or_default();
    let cond = if allowed > 0 {
        condition("True", SUFFICIENT_PODS, String::new(), generation)
    } else {
        condition("False", INSUFFICIENT_PODS, String::new(), generation)
    };
    set_condition(&mut conditions, cond);
    Some(PodDisruptionBudgetStatus {
        current_healthy: o.current_healthy,
        desired_healthy: o.desired_healthy,
        expected_pods: o.expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: disrupted,
        observed_generation: generation,
        conditions: Some(conditions),
    })
}

/// The status after a failed sync: no disruptions allowed, condition `SyncFailed` with
/// the error (upstream's `failSafe`).
pub fn fail_safe_status(pdb: &PodDisruptionBudget, error: &str) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let mut conditions = status.conditions.take().unwrap_or_default();
    set_condition(
        &mut conditions,
        condition(
            "False",
            SYNC_FAILED,
            error.to_string(),
            status.observed_generation,
        ),
    );
    status.conditions = Some(conditions);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pdb(spec: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": "b", "generation": 1}, "spec": spec}))
            .expect("pdb")
    }

    fn pod(name: &str, ready: bool) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": name}, "status": {"conditions": [
            {"type": "Ready", "status": if ready {"True"} else {"False"}}]}}),
        )
        .expect("pod")
    }

    #[test]
    fn percentages_round_up() {
        let p = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled_value(&p("50%"), 3), Ok(2));
        assert_eq!(scaled_value(&p("34%"), 3), Ok(2));
        assert_eq!(scaled_value(&p("0%"), 3), Ok(0));
        assert_eq!(scaled_value(&p("100%"), 7), Ok(7));
        assert_eq!(scaled_value(&IntOrString::Int(4), 7), Ok(4));
        assert!(scaled_value(&p("5"), 7).is_err());
        assert!(scaled_value(&p("x%"), 7).is_err());
    }

    #[test]
    fn expected_and_desired_follow_the_spec() {
        let min_int = pdb(json!({"minAvailable": 2}));
        assert!(!needs_scale(&min_int));
        assert_eq!(expected_and_desired(&min_int, 3, 0), Ok((3, 2)));
        let min_pct = pdb(json!({"minAvailable": "50%"}));
        assert!(needs_scale(&min_pct));
        assert_eq!(expected_and_desired(&min_pct, 3, 5), Ok((5, 3)));
        let max_int = pdb(json!({"maxUnavailable": 1}));
        assert_eq!(expected_and_desired(&max_int, 3, 4), Ok((4, 3)));
        let max_big = pdb(json!({"maxUnavailable": 9}));
        assert_eq!(expected_and_desired(&max_big, 3, 4), Ok((4, 0)));
        assert_eq!(expected_and_desired(&pdb(json!({})), 3, 4), Ok((0, 0)));
    }

    #[test]
    fn healthy_pods_and_allowed_disruptions() {
        let now = Timestamp::now();
        let (a, b, c) = (pod("a", true), pod("b", true), pod("c", false));
        let pods = [&a, &b, &c];
        let none = BTreeMap::new();
        assert_eq!(count_healthy(&pods, &none, now), 2);
        let disrupted: BTreeMap<String, Time> = [("a".to_string(), Time(now))].into();
        assert_eq!(count_healthy(&pods, &disrupted, now), 1);
        assert_eq!(disruptions_allowed(3, 2, 3), 1);
        assert_eq!(disruptions_allowed(2, 2, 3), 0);
        assert_eq!(disruptions_allowed(3, 0, 0), 0);
    }

    #[test]
    fn stale_disruptions_are_dropped() {
        let now = Timestamp::now();
        let mut budget = pdb(json!({"minAvailable": 1}));
        let old = Time(now - SignedDuration::from_secs(300));
        let recent = Time(now - SignedDuration::from_secs(10));
        budget.status = Some(PodDisruptionBudgetStatus {
            disrupted_pods: Some(
                [
                    ("a".to_string(), old),
                    ("b".to_string(), recent.clone()),
                    ("gone".to_string(), recent),
                ]
                .into(),
            ),
            ..Default::default()
        });
        let (a, b) = (pod("a", true), pod("b", true));
        let (pending, recheck, expired) = pending_disruptions(&[&a, &b], &budget, now);
        assert_eq!(pending.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(expired, ["a"]);
        assert!(recheck.is_some_and(|r| r > now));
    }

    #[test]
    fn status_and_condition() {
        let budget = pdb(json!({"minAvailable": 2}));
        let observed = |healthy| Observed {
            current_healthy: healthy,
            desired_healthy: 2,
            expected_pods: 3,
            disrupted_pods: BTreeMap::new(),
        };
        let status = new_status(&budget, observed(3)).expect("changed");
        assert_eq!(status.disruptions_allowed, 1);
        assert_eq!(status.observed_generation, Some(1));
        let cond = &status.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("True", SUFFICIENT_PODS)
        );
        let mut synced = budget.clone();
        synced.status = Some(status);
        assert!(new_status(&synced, observed(3)).is_none(), "up to date");
        let lower = new_status(&synced, observed(2)).expect("changed");
        assert_eq!(lower.disruptions_allowed, 0);
        let cond = &lower.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("False", INSUFFICIENT_PODS)
        );
        let failed = fail_safe_status(&synced, "boom");
        assert_eq!(failed.disruptions_allowed, 0);
        let cond = &failed.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (cond.reason.as_str(), cond.message.as_str()),
            (SYNC_FAILED, "boom")
        );
    }
}
