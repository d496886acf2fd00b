//! The cronjob and ttl-after-finished controllers against a real apiserver. The
//! schedule logic itself is unit-tested; here a CronJob whose last schedule time lies
//! in the past is due at once, so the creation path runs without waiting for a clock.

mod workloads_support;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use workloads_support::{Cluster, obj};

fn cronjob(name: &str, policy: &str) -> CronJob {
    obj(json!({
        "metadata": {"name": name},
        "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": policy,
            "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"labels": {"from": name}}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}},
    }))
}

async fn make_due(api: &Api<CronJob>, name: &str, minutes_ago: i64) {
    let past = Timestamp::now() - jiff::SignedDuration::from_mins(minutes_ago);
    let patch = json!({"status": {"lastScheduleTime": past.to_string()}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("set lastScheduleTime");
}

async fn complete(api: &Api<Job>, name: &str) {
    let now = Timestamp::now().to_string();
    let patch = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "lastTransitionTime": now}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("complete job");
}

async fn reasons(c: &Cluster, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(c.client.clone(), "cron");
    let list = events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    list.into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn due_cronjob_starts_a_job_and_sees_it_complete() {
    let c = Cluster::start("cronjob").await;
    c.namespace("cron").await;
    let cjs: Api<CronJob> = Api::namespaced(c.client.clone(), "cron");
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "cron");
    cjs.create(&PostParams::default(), &cronjob("tick", "Forbid"))
        .await
        .expect("cronjob");
    make_due(&cjs, "tick", 12).await;
    let job = c
        .wait_for("the due job", || async {
            let l = jobs
                .list(&ListParams::default().labels("from=tick"))
                .await
                .ok()?;
            l.items.into_iter().next()
        })
        .await;
    let name = job.metadata.name.clone().unwrap_or_default();
    let minutes: i64 = name
        .strip_prefix("tick-")
        .and_then(|m| m.parse().ok())
        .expect("job named <cronjob>-<minutes>");
    assert_eq!(minutes % 5, 0, "named by a */5 scheduled time");
    let ann = job.metadata.annotations.clone().unwrap_or_default();
    assert!(ann.contains_key("batch.kubernetes.io/cronjob-scheduled-timestamp"));
    let owner = &job.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(owner.kind, "CronJob");
    let cj = c
        .wait_for("status.active", || async {
            let cj = cjs.get("tick").await.ok()?;
            let active = cj.status.as_ref()?.active.clone()?;
            (active.len() == 1).then_some(cj)
        })
        .await;
    let last = cj
        .status
        .and_then(|s| s.last_schedule_time)
        .expect("lastScheduleTime");
    assert_eq!(last.0.as_second() / 60, minutes);

    complete(&jobs, &name).await;
    let cj = c
        .wait_for("lastSuccessfulTime", || async {
            let cj = cjs.get("tick").await.ok()?;
            let s = cj.status.clone()?;
            (s.active.is_none() && s.last_successful_time.is_some()).then_some(cj)
        })
        .await;
    assert!(cj.status.is_some());
    let r = reasons(&c, "tick").await;
    assert!(r.iter().any(|r| r == "SuccessfulCreate"));
    assert!(r.iter().any(|r| r == "SawCompletedJob"));
}

/// A CronJob with `policy` whose earlier run `<name>-1` still runs (listed active) and
/// whose next scheduled time is already due.
async fn due_while_running(c: &Cluster, name: &str, policy: &str) {
    let cjs: Api<CronJob> = Api::namespaced(c.client.clone(), "cron");
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "cron");
    let cj = cjs
        .create(&PostParams::default(), &cronjob(name, policy))
        .await
        .expect("cronjob");
    let old: Job = obj(json!({
        "metadata": {"name": format!("{name}-1"), "labels": {"from": name}, "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": name,
            "uid": cj.metadata.uid, "controller": true}]},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}},
    }));
    let old = jobs
        .create(&PostParams::default(), &old)
        .await
        .expect("old job");
    let past = (Timestamp::now() - jiff::SignedDuration::from_mins(12)).to_string();
    let patch = json!({"status": {"lastScheduleTime": past, "active": [{
        "apiVersion": "batch/v1", "kind": "Job", "name": format!("{name}-1"), "namespace": "cron",
        "uid": old.metadata.uid}]}});
    cjs.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status");
}

#[tokio::test]
async fn forbid_policy_waits_for_the_running_job() {
    let c = Cluster::start("cronjob").await;
    c.namespace("cron").await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "cron");
    due_while_running(&c, "calm", "Forbid").await;
    c.wait_for("JobAlreadyActive", || async {
        reasons(&c, "calm")
            .await
            .iter()
            .any(|r| r == "JobAlreadyActive")
            .then_some(())
    })
    .await;
    let all = jobs
        .list(&ListParams::default().labels("from=calm"))
        .await
        .expect("jobs");
    assert_eq!(all.items.len(), 1, "no second job while one runs");
}

#[tokio::test]
async fn replace_policy_replaces_the_running_job() {
    let c = Cluster::start("cronjob").await;
    c.namespace("cron").await;
    let cjs: Api<CronJob> = Api::namespaced(c.client.clone(), "cron");
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "cron");
    due_while_running(&c, "swap", "Replace").await;
    let new = c
        .wait_for("the replacement job", || async {
            let l = jobs
                .list(&ListParams::default().labels("from=swap"))
                .await
                .ok()?;
            l.items
                .into_iter()
                .find(|j| j.metadata.name.as_deref() != Some("swap-1"))
        })
        .await;
    c.wait_for("old job deleted", || async {
        let j = jobs.get_opt("swap-1").await.ok()?;
        j.is_none_or(|j| j.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    let cj = c
        .wait_for("only the new job active", || async {
            let cj = cjs.get("swap").await.ok()?;
            let active = cj.status.as_ref()?.active.clone()?;
            (active.len() == 1 && active[0].name == new.metadata.name).then_some(cj)
        })
        .await;
    assert!(cj.status.is_some());
    assert!(
        reasons(&c, "swap")
            .await
            .iter()
            .any(|r| r == "SuccessfulDelete")
    );
}

#[tokio::test]
async fn finished_jobs_are_deleted_after_their_ttl() {
    let c = Cluster::start("ttl-after-finished").await;
    c.namespace("cron").await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "cron");
    let j: Job = obj(json!({
        "metadata": {"name": "short"},
        "spec": {"ttlSecondsAfterFinished": 1, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }));
    jobs.create(&PostParams::default(), &j).await.expect("job");
    complete(&jobs, "short").await;
    c.wait_for("job deleted", || async {
        let j = jobs.get_opt("short").await.ok()?;
        j.is_none_or(|j| j.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
}
