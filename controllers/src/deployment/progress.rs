//! Deployment status and conditions (upstream's `deployment/progress.go`, `sync.go`'s
//! `calculateStatus` and `deployment/util`'s condition helpers): replica counts summed
//! over the ReplicaSets, `Available` (minimum availability), `Progressing` (new
//! ReplicaSet created/found/progressing/available, deadline exceeded, paused/resumed)
//! and `ReplicaFailure` copied from the ReplicaSets.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::util::{deployment_replicas, max_unavailable, spec_replicas};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_RS_REASON: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
pub const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
pub const PAUSED_REASON: &str = "DeploymentPaused";
pub const RESUMED_REASON: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE_REASON: &str = "ReplicaSetCreateError";
pub const MIN_AVAILABLE_REASON: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE_REASON: &str = "MinimumReplicasUnavailable";

/// A condition stamped now (both lastUpdateTime and lastTransitionTime).
pub fn condition(type_: &str, status: &str, reason: &str, message: String) -> DeploymentCondition {
    let now = Time(Timestamp::now());
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

pub fn get_condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Upstream's `SetDeploymentCondition`: no-op when status and reason are unchanged;
/// keeps lastTransitionTime when only the reason changes.
pub fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get_condition(s, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, &c.type_.clone());
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            s.conditions = None;
        }
    }
}

/// The progress deadline, unless unset or "infinite" (MaxInt32).
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

fn sum(rss: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> Option<i32>) -> i32 {
    rss.iter().map(|rs| f(rs).unwrap_or(0)).sum()
}

fn st<T: Default>(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> T,
) -> T {
    rs.status.as_ref().map(f).unwrap_or_default()
}

/// Upstream's `calculateStatus`: counts from the ReplicaSets, conditions carried over,
/// and `Available` recomputed.
pub fn calculate(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let old = d.status.clone().unwrap_or_default();
    let available = sum(all, |rs| st(rs, |s| s.available_replicas));
    let total: i32 = all.iter().map(|rs| spec_replicas(rs)).sum();
    let terminating = all
        .iter()
        .any(|rs| st(rs, |s| s.terminating_replicas).is_some())
        .then(|| sum(all, |rs| st(rs, |s| s.terminating_replicas)));
    let nz = |v: i32| (v != 0).then_some(v);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nz(sum(all, |rs| Some(st(rs, |s| s.replicas)))),
        updated_replicas: nz(new_rs.map(|rs| st(rs, |s| s.replicas)).unwrap_or(0)),
        ready_replicas: nz(sum(all, |rs| st(rs, |s| s.ready_replicas))),
        available_replicas: nz(available),
        unavailable_replicas: nz((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: terminating,
    };
    if available >= deployment_replicas(d) - max_unavailable(d) {
        let c = condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE_REASON,
            "Deployment has minimum availability.".into(),
        );
        set_condition(&mut status, c);
    } else {
        let c = condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE_REASON,
            "Deployment does not have minimum availability.".into(),
        );
        set_condition(&mut status, c);
    }
    status
}

/// Upstream's `DeploymentComplete`.
pub fn is_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let r = deployment_replicas(d);
    s.updated_replicas.unwrap_or(0) == r
        && s.replicas.unwrap_or(0) == r
        && s.available_replicas.unwrap_or(0) == r
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream's `DeploymentProgressing`: any progress since the last status.
fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let g = |v: Option<i32>| v.unwrap_or(0);
    let old_old = g(old.replicas) - g(old.updated_replicas);
    let new_old = g(new.replicas) - g(new.updated_replicas);
    g(new.updated_replicas) > g(old.updated_replicas)
        || new_old < old_old
        || g(new.ready_replicas) > g(old.ready_replicas)
        || g(new.available_replicas) > g(old.available_replicas)
}

/// Upstream's `DeploymentTimedOut`.
fn timed_out(d: &Deployment, s: &DeploymentStatus) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = get_condition(s, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE_REASON) => false,
        Some(TIMED_OUT_REASON) => true,
        _ => c.last_update_time.as_ref().is_some_and(|t| {
            t.0 + SignedDuration::from_secs(i64::from(deadline)) < Timestamp::now()
        }),
    }
}

/// Upstream's `syncRolloutStatus` minus the write: the status with the `Progressing`
/// condition advanced and `ReplicaFailure` copied from the ReplicaSets.
pub fn rollout_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let mut s = calculate(all, new_rs, d);
    if progress_deadline(d).is_none() {
        remove_condition(&mut s, PROGRESSING);
    }
    let current = d
        .status
        .as_ref()
        .and_then(|st| get_condition(st, PROGRESSING))
        .cloned();
    let complete_before = s.replicas == s.updated_replicas
        && current
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE_REASON));
    let rs_name = new_rs.and_then(|rs| rs.metadata.name.clone());
    let msg = |what: &str| match &rs_name {
        Some(n) => format!("ReplicaSet {n:?} {what}."),
        None => format!(
            "Deployment {:?} {what}.",
            d.metadata.name.clone().unwrap_or_default()
        ),
    };
    if progress_deadline(d).is_some() && !complete_before {
        if is_complete(d, &s) {
            let c = condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE_REASON,
                msg("has successfully progressed"),
            );
            set_condition(&mut s, c);
        } else if is_progressing(d, &s) {
            let mut c = condition(
                PROGRESSING,
                "True",
                RS_UPDATED_REASON,
                msg("is progressing"),
            );
            if let Some(cur) = &current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut s, PROGRESSING);
            }
            set_condition(&mut s, c);
        } else if timed_out(d, &s) {
            let c = condition(
                PROGRESSING,
                "False",
                TIMED_OUT_REASON,
                msg("has timed out progressing"),
            );
            set_condition(&mut s, c);
        }
    }
    match replica_failure(all, new_rs) {
        Some(c) => set_condition(&mut s, c),
        None => remove_condition(&mut s, REPLICA_FAILURE),
    }
    s
}

/// The first `ReplicaFailure` condition among the ReplicaSets (the new one first).
fn replica_failure(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let ordered = new_rs.into_iter().chain(all.iter().copied());
    for rs in ordered {
        let conds = rs.status.as_ref().and_then(|s| s.conditions.as_ref());
        if let Some(c) = conds.and_then(|cs| cs.iter().find(|c| c.type_ == REPLICA_FAILURE)) {
            return Some(DeploymentCondition {
                type_: REPLICA_FAILURE.into(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            });
        }
    }
    None
}

/// When a progressing deployment must be looked at again to notice its deadline
/// (upstream's `requeueStuckDeployment`).
pub fn requeue_stuck(d: &Deployment, s: &DeploymentStatus) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let c = get_condition(s, PROGRESSING)?;
    if c.status != "True"
        || c.reason.as_deref() == Some(NEW_RS_AVAILABLE_REASON)
        || is_complete(d, s)
    {
        return None;
    }
    let at = c.last_update_time.as_ref()?.0 + SignedDuration::from_secs(i64::from(deadline));
    let left = at.duration_since(Timestamp::now());
    Some(Duration::try_from(left).unwrap_or_default() + Duration::from_secs(1))
}

/// Upstream's `checkPausedConditions`: the Progressing condition to set when the paused
/// state changed, if any.
pub fn paused_condition(d: &Deployment) -> Option<DeploymentCondition> {
    progress_deadline(d)?;
    let s = d.status.clone().unwrap_or_default();
    let cur = get_condition(&s, PROGRESSING);
    let reason = cur.and_then(|c| c.reason.as_deref());
    if reason == Some(TIMED_OUT_REASON) {
        return None;
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let paused_exists = reason == Some(PAUSED_REASON);
    if paused && !paused_exists {
        return Some(condition(
            PROGRESSING,
            "Unknown",
            PAUSED_REASON,
            "Deployment is paused".into(),
        ));
    }
    if !paused && paused_exists {
        return Some(condition(
            PROGRESSING,
            "Unknown",
            RESUMED_REASON,
            "Deployment is resumed".into(),
        ));
    }
    None
}
