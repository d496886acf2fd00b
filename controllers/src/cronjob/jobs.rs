//! The CronJob controller's dealings with its Jobs: the Job for one scheduled time
//! (`<cronjob>-<scheduled unix minutes>`), keeping `status.active` and
//! `lastSuccessfulTime` true to the Jobs that exist, and deleting finished Jobs beyond
//! the history limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, PropagationPolicy};

use crate::common::OwnerInfo;
use crate::common::events::{EventRecorder, NORMAL};

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The name of the Job for `scheduled`: the CronJob's name and the time in minutes.
pub fn job_name(cj: &CronJob, scheduled: Timestamp) -> String {
    let name = cj.metadata.name.as_deref().unwrap_or_default();
    format!("{name}-{}", scheduled.as_second().div_euclid(60))
}

/// RFC 3339 in the CronJob's zone, `Z` for UTC as Go prints it.
pub fn format_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The Job the CronJob starts for `scheduled`.
pub fn job_for(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), format_in(scheduled, tz));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(cj, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerInfo::of(cj).controller_ref()]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// The reference `status.active` keeps for a Job.
pub fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// `Complete` or `Failed` when the Job has finished.
pub fn finished_type(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// Drops finished or vanished Jobs from `status.active` (with upstream's events) and
/// advances `lastSuccessfulTime`.
pub async fn reconcile_active(
    recorder: &EventRecorder,
    cj: &CronJob,
    jobs: &[Arc<Job>],
    status: &mut CronJobStatus,
) {
    let mut active = status.active.clone().unwrap_or_default();
    for j in jobs {
        let uid = j.metadata.uid.clone();
        let listed = active.iter().any(|r| r.uid == uid);
        if let Some(kind) = finished_type(j) {
            if listed {
                active.retain(|r| r.uid != uid);
                let name = j.metadata.name.as_deref().unwrap_or_default();
                let msg = format!("Saw completed job: {name}, condition: {kind}");
                recorder.record(cj, NORMAL, "SawCompletedJob", &msg).await;
            }
            let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
            if kind == "Complete"
                && let Some(t) = done
                && status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|l| l.0 < t.0)
            {
                status.last_successful_time = Some(t);
            }
        }
    }
    let mut gone = vec![];
    active.retain(|r| {
        let exists = jobs.iter().any(|j| j.metadata.uid == r.uid);
        if !exists {
            gone.push(r.name.clone().unwrap_or_default());
        }
        exists
    });
    for name in gone {
        let msg = format!("Active job went missing: {name}");
        recorder.record(cj, NORMAL, "MissingJob", &msg).await;
    }
    status.active = (!active.is_empty()).then_some(active);
}

/// Deletes a Job with its pods in the background.
pub async fn delete_job(
    recorder: &EventRecorder,
    api: &Api<Job>,
    cj: &CronJob,
    name: &str,
) -> anyhow::Result<()> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    recorder
        .record(
            cj,
            NORMAL,
            "SuccessfulDelete",
            &format!("Deleted job {name}"),
        )
        .await;
    Ok(())
}

/// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit` (default 3) and
/// `failedJobsHistoryLimit` (default 1).
pub async fn cleanup_history(
    recorder: &EventRecorder,
    api: &Api<Job>,
    cj: &CronJob,
    jobs: &[Arc<Job>],
) -> anyhow::Result<()> {
    let spec = cj.spec.clone().unwrap_or_default();
    let limits = BTreeMap::from([
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ]);
    for (kind, limit) in limits {
        let mut finished: Vec<&Arc<Job>> = jobs
            .iter()
            .filter(|j| finished_type(j) == Some(kind))
            .collect();
        let start = |j: &Job| -> Option<Timestamp> {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .or(j.metadata.creation_timestamp.as_ref())
                .map(|t: &Time| t.0)
        };
        finished.sort_by_key(|j| start(j));
        let excess = finished.len().saturating_sub(limit.max(0) as usize);
        for j in finished.into_iter().take(excess) {
            let name = j.metadata.name.clone().unwrap_or_default();
            delete_job(recorder, api, cj, &name).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_named_by_scheduled_minutes() {
        let cj: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "hello", "namespace": "ns", "uid": "u"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"template": {"spec": {"containers": []}}}}},
        }))
        .expect("cronjob");
        let t: Timestamp = "2024-03-01T10:00:00Z".parse().expect("time");
        let j = job_for(&cj, t, &TimeZone::UTC);
        assert_eq!(j.metadata.name.as_deref(), Some("hello-28488120"));
        let ann = j.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            ann.get(SCHEDULED_TIMESTAMP).map(String::as_str),
            Some("2024-03-01T10:00:00Z")
        );
        let owner = &j.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("CronJob", Some(true))
        );
        let ny = TimeZone::get("America/New_York").expect("tz");
        assert_eq!(format_in(t, &ny), "2024-03-01T05:00:00-05:00");
    }
}
