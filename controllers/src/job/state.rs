//! The pure part of the Job controller: classifying a Job's pods, the podFailurePolicy,
//! completion indexes (`"0-2,5"`), pod-failure backoff, and the conditions with
//! upstream's types, reasons and messages.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Condition types, reasons and messages as upstream writes them.
pub mod reason {
    pub const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
    pub const BACKOFF_MESSAGE: &str = "Job has reached the specified backoff limit";
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    pub const DEADLINE_MESSAGE: &str = "Job was active longer than specified deadline";
    pub const POD_FAILURE_POLICY: &str = "PodFailurePolicy";
    pub const COMPLETIONS_REACHED: &str = "CompletionsReached";
    pub const COMPLETIONS_MESSAGE: &str = "Reached expected number of succeeded pods";
    pub const SUSPENDED: &str = "JobSuspended";
    pub const SUSPENDED_MESSAGE: &str = "Job suspended";
    pub const RESUMED: &str = "JobResumed";
    pub const RESUMED_MESSAGE: &str = "Job resumed";
}

/// Upstream's pod-failure backoff: 10s doubling per consecutive failure, at most 6m.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let base = Duration::from_secs(10);
    base.saturating_mul(2u32.saturating_pow((failures - 1).min(16)))
        .min(Duration::from_secs(360))
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

/// The completion index of an Indexed Job's pod.
pub fn pod_index(pod: &Pod) -> Option<i32> {
    let from = |m: Option<&std::collections::BTreeMap<String, String>>| {
        m.and_then(|m| m.get(COMPLETION_INDEX))
            .and_then(|v| v.parse().ok())
    };
    from(pod.metadata.annotations.as_ref()).or_else(|| from(pod.metadata.labels.as_ref()))
}

/// Whether only Failed pods are replaced (podReplacementPolicy `Failed`, the default
/// when a podFailurePolicy is set); otherwise terminating pods are replaced at once.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    match spec.and_then(|s| s.pod_replacement_policy.as_deref()) {
        Some(p) => p == "Failed",
        None => spec.is_some_and(|s| s.pod_failure_policy.is_some()),
    }
}

/// Upstream's `isPodFailed`: Failed, or (unless only Failed pods count) deleted before
/// succeeding.
pub fn is_pod_failed(job: &Job, pod: &Pod) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

/// What a matching podFailurePolicy rule says.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyAction {
    /// Fail the Job, with the message for the FailureTarget condition.
    FailJob(String),
    /// Fail the pod's index only (treated as Count here).
    FailIndex,
    /// Do not count the failure.
    Ignore,
    /// Count the failure against backoffLimit.
    Count,
}

fn exit_codes_match(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<(String, i32)> {
    let req = rule.on_exit_codes.as_ref()?;
    let status = pod.status.as_ref()?;
    let statuses = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten());
    for cs in statuses {
        if req.container_name.as_ref().is_some_and(|n| n != &cs.name) {
            continue;
        }
        let Some(code) = cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code)
        else {
            continue;
        };
        if code == 0 {
            continue;
        }
        let listed = req.values.contains(&code);
        let hit = match req.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        if hit {
            return Some((cs.name.clone(), code));
        }
    }
    None
}

fn conditions_match(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<String> {
    let patterns = rule.on_pod_conditions.as_ref()?;
    let conds = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    patterns
        .iter()
        .find(|p| {
            let want = p.status.as_deref().unwrap_or("True");
            conds
                .into_iter()
                .flatten()
                .any(|c| c.type_ == p.type_ && c.status == want)
        })
        .map(|p| p.type_.clone())
}

/// Matches a failed pod against the Job's podFailurePolicy (first matching rule wins);
/// `Count` when there is no policy or no rule matches.
pub fn match_pod_failure_policy(job: &Job, pod: &Pod) -> PolicyAction {
    let Some(policy) = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
    else {
        return PolicyAction::Count;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (i, rule) in policy.rules.iter().enumerate() {
        let how = if let Some((container, code)) = exit_codes_match(rule, pod) {
            format!("Container {container} for pod {ns}/{name} failed with exit code {code}")
        } else if let Some(cond) = conditions_match(rule, pod) {
            format!("Pod {ns}/{name} has condition {cond}")
        } else {
            continue;
        };
        return match rule.action.as_str() {
            "FailJob" => PolicyAction::FailJob(format!("{how} matching FailJob rule at index {i}")),
            "FailIndex" => PolicyAction::FailIndex,
            "Ignore" => PolicyAction::Ignore,
            _ => PolicyAction::Count,
        };
    }
    PolicyAction::Count
}

/// Parses `status.completedIndexes` (`"1,3-5"`).
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    out.insert(n);
                }
            }
        }
    }
    out
}

/// Formats indexes as upstream: ascending, consecutive runs as `a-b`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = vec![];
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The condition of `type_` if it is `True`.
pub fn true_condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Whether the Job is finished (Complete or Failed).
pub fn is_finished(job: &Job) -> bool {
    true_condition(job, "Complete").is_some() || true_condition(job, "Failed").is_some()
}

/// Sets a condition: a new transition time only when the status changes.
pub fn set_condition(
    conds: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let time = Some(Time(now));
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = time.clone();
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = time;
        return;
    }
    conds.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: time.clone(),
        last_transition_time: time,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    };
    use serde_json::json;

    #[test]
    fn indexes_round_trip() {
        let set = parse_indexes("0-2,5,7-8");
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 5, 7, 8]);
        assert_eq!(format_indexes(&set), "0-2,5,7-8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn backoff_doubles_to_six_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(20), Duration::from_secs(360));
    }

    #[test]
    fn pod_failure_policy_rules() {
        let job = Job {
            spec: Some(JobSpec {
                pod_failure_policy: Some(PodFailurePolicy {
                    rules: vec![
                        PodFailurePolicyRule {
                            action: "Ignore".into(),
                            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                                operator: "In".into(),
                                values: vec![3],
                                container_name: None,
                            }),
                            on_pod_conditions: None,
                        },
                        PodFailurePolicyRule {
                            action: "FailJob".into(),
                            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                                operator: "NotIn".into(),
                                values: vec![0, 3],
                                container_name: Some("main".into()),
                            }),
                            on_pod_conditions: None,
                        },
                    ],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = |code: i32| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "p", "namespace": "ns"},
                "status": {"phase": "Failed", "containerStatuses": [{"name": "main", "image": "i",
                    "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code}}}]},
            }))
            .expect("pod")
        };
        assert_eq!(
            match_pod_failure_policy(&job, &pod(3)),
            PolicyAction::Ignore
        );
        assert_eq!(
            match_pod_failure_policy(&job, &pod(42)),
            PolicyAction::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
                    .into()
            )
        );
        assert!(only_replace_failed(&job));
    }
}
