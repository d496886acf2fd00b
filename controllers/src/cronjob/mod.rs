//! The CronJob controller: starts a Job `<cronjob>-<scheduled unix minutes>` at each
//! time the schedule (in `timeZone`) comes due, as upstream's: honouring `suspend`,
//! `startingDeadlineSeconds`, `concurrencyPolicy` (Allow, Forbid, Replace) and the
//! history limits, keeping `status.active`, `lastScheduleTime` and `lastSuccessfulTime`,
//! and recording upstream's events. It wakes itself for the next scheduled time.
//!
//! [`schedule`] parses and evaluates cron expressions; [`jobs`] owns the Job side.

pub mod jobs;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::common::events::{EventRecorder, NORMAL, WARNING};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};
use schedule::Schedule;

/// More missed start times than this earn a warning, as upstream.
const TOO_MANY_MISSED: usize = 100;

struct Controller {
    client: kube::Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    recorder: EventRecorder,
    queue: WorkQueue,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let cronjobs = informer(
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(c) | Event::InitApply(c) = ev {
                q.add(key_of(c));
            }
        },
    );
    let q = queue.clone();
    let jobs = informer(
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            let (Event::Apply(j) | Event::Delete(j)) = ev else {
                return;
            };
            let owner = j
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.controller == Some(true));
            if let Some(r) = owner.filter(|r| r.kind == "CronJob") {
                let ns = j.metadata.namespace.clone().unwrap_or_default();
                q.add(format!("{ns}/{}", r.name));
            }
        },
    );
    cronjobs.wait_until_ready().await?;
    jobs.wait_until_ready().await?;
    let c = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), "cronjob-controller"),
        client,
        cronjobs,
        jobs,
        queue: queue.clone(),
    });
    queue
        .run(
            ctx.options.concurrent_cron_job_syncs,
            "cronjob",
            move |key| {
                let c = c.clone();
                async move { c.sync(&key).await }
            },
        )
        .await;
    Ok(())
}

/// The most recent due time in (earliest, now] and how many were due, where earliest
/// is the last schedule time (or creation), moved up to `now - startingDeadlineSeconds`.
pub fn most_recent(
    sched: &Schedule,
    cj: &CronJob,
    now: Timestamp,
    tz: &TimeZone,
) -> (Option<Timestamp>, usize) {
    let status = cj.status.as_ref();
    let mut earliest = status
        .and_then(|s| s.last_schedule_time.as_ref())
        .or(cj.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    if let Some(sds) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds)
        && let Ok(floor) = now.checked_sub(jiff::SignedDuration::from_secs(sds))
        && floor > earliest
    {
        earliest = floor;
    }
    let mut last = None;
    let mut missed = 0;
    let mut t = earliest;
    while let Some(next) = sched.next_after(t, tz) {
        if next > now || missed > 1_000_000 {
            break;
        }
        last = Some(next);
        missed += 1;
        t = next;
    }
    (last, missed)
}

fn time_zone(cj: &CronJob) -> Result<TimeZone, String> {
    match cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        Some(name) => TimeZone::get(name).map_err(|e| e.to_string()),
        None => Ok(TimeZone::system()),
    }
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(cj) = self.cronjobs.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(());
        };
        let uid = cj.metadata.uid.clone();
        let owned: Vec<Arc<Job>> = self
            .jobs
            .state()
            .into_iter()
            .filter(|j| {
                j.metadata.namespace.as_deref() == Some(ns)
                    && j.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| r.controller == Some(true) && Some(&r.uid) == uid.as_ref())
            })
            .collect();
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let before = cj.status.clone().unwrap_or_default();
        let mut status = before.clone();
        jobs::reconcile_active(&self.recorder, &cj, &owned, &mut status).await;
        jobs::cleanup_history(&self.recorder, &api, &cj, &owned).await?;
        let result = if cj.metadata.deletion_timestamp.is_some() {
            Ok(())
        } else {
            self.schedule(key, &cj, &owned, &api, &mut status).await
        };
        if status != before {
            let mut fresh = (*cj).clone();
            fresh.status = Some(status);
            let cjs: Api<CronJob> = Api::namespaced(self.client.clone(), ns);
            cjs.replace_status(name, &PostParams::default(), &fresh)
                .await?;
        }
        result
    }

    /// Starts the Job for the most recent due time, if one is due and allowed, and
    /// wakes up again for the next one.
    async fn schedule(
        &self,
        key: &str,
        cj: &CronJob,
        owned: &[Arc<Job>],
        api: &Api<Job>,
        status: &mut CronJobStatus,
    ) -> anyhow::Result<()> {
        let spec = cj.spec.clone().unwrap_or_default();
        let tz = match time_zone(cj) {
            Ok(tz) => tz,
            Err(e) => {
                let tzname = spec.time_zone.clone().unwrap_or_default();
                let msg = format!("invalid timeZone: {tzname:?}: {e}");
                self.recorder
                    .record(cj, WARNING, "UnknownTimeZone", &msg)
                    .await;
                return Ok(());
            }
        };
        if spec.suspend == Some(true) {
            return Ok(());
        }
        let sched = match Schedule::parse(&spec.schedule) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("unparseable schedule: {:?} : {e}", spec.schedule);
                self.recorder
                    .record(cj, WARNING, "UnparseableSchedule", &msg)
                    .await;
                return Ok(());
            }
        };
        let now = Timestamp::now();
        self.requeue_next(key, &sched, now, &tz);
        let (due, missed) = most_recent(&sched, cj, now, &tz);
        let Some(due) = due else {
            return Ok(());
        };
        if missed > TOO_MANY_MISSED {
            let msg = format!(
                "too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
            );
            self.recorder
                .record(cj, WARNING, "TooManyMissedTimes", &msg)
                .await;
        }
        if let Some(sds) = spec.starting_deadline_seconds
            && due + jiff::SignedDuration::from_secs(sds) < now
        {
            let when = due
                .to_zoned(tz.clone())
                .strftime("%a, %d %b %Y %H:%M:%S %z");
            let msg = format!("Missed scheduled time to start a job: {when}");
            self.recorder
                .record(cj, WARNING, "MissSchedule", &msg)
                .await;
            return Ok(());
        }
        let name = jobs::job_name(cj, due);
        let active = status.active.clone().unwrap_or_default();
        let exists = owned
            .iter()
            .any(|j| j.metadata.name.as_deref() == Some(name.as_str()));
        if exists
            || active
                .iter()
                .any(|r| r.name.as_deref() == Some(name.as_str()))
        {
            return Ok(());
        }
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !active.is_empty() => {
                let msg = "Not starting job because prior execution is running and concurrency policy is Forbid";
                self.recorder
                    .record(cj, NORMAL, "JobAlreadyActive", msg)
                    .await;
                return Ok(());
            }
            Some("Replace") => {
                for r in &active {
                    jobs::delete_job(
                        &self.recorder,
                        api,
                        cj,
                        r.name.as_deref().unwrap_or_default(),
                    )
                    .await?;
                }
                status.active = None;
            }
            _ => {}
        }
        self.start_job(cj, due, &tz, api, status).await
    }

    async fn start_job(
        &self,
        cj: &CronJob,
        due: Timestamp,
        tz: &TimeZone,
        api: &Api<Job>,
        status: &mut CronJobStatus,
    ) -> anyhow::Result<()> {
        let job = jobs::job_for(cj, due, tz);
        let name = job.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &job).await {
            Ok(made) => {
                let msg = format!("Created job {name}");
                self.recorder
                    .record(cj, NORMAL, "SuccessfulCreate", &msg)
                    .await;
                status
                    .active
                    .get_or_insert_with(Vec::new)
                    .push(jobs::reference(&made));
                status.last_schedule_time = Some(Time(due));
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // made by an earlier sync whose status write was lost
                status.last_schedule_time = Some(Time(due));
                Ok(())
            }
            Err(e) => {
                let msg = format!("Error creating job: {}", crate::common::error_message(&e));
                self.recorder
                    .record(cj, WARNING, "FailedCreate", &msg)
                    .await;
                Err(e.into())
            }
        }
    }

    fn requeue_next(&self, key: &str, sched: &Schedule, now: Timestamp, tz: &TimeZone) {
        if let Some(next) = sched.next_after(now, tz) {
            let wait = Duration::try_from(next.duration_since(now)).unwrap_or_default();
            self.queue.add_after(key, wait + Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cronjob(created: &str, last: Option<&str>, deadline: Option<i64>) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "c", "creationTimestamp": created},
            "spec": {"schedule": "*/10 * * * *", "startingDeadlineSeconds": deadline,
                     "jobTemplate": {"spec": {"template": {}}}},
            "status": {"lastScheduleTime": last},
        }))
        .expect("cronjob")
    }

    #[test]
    fn most_recent_due_time() {
        let sched = Schedule::parse("*/10 * * * *").expect("schedule");
        let now: Timestamp = "2024-03-01T10:35:00Z".parse().expect("now");
        let tz = TimeZone::UTC;
        let fresh = cronjob("2024-03-01T10:31:00Z", None, None);
        assert_eq!(most_recent(&sched, &fresh, now, &tz), (None, 0));
        let old = cronjob("2024-03-01T09:55:00Z", None, None);
        let (t, missed) = most_recent(&sched, &old, now, &tz);
        assert_eq!(
            t.map(|t| t.to_string()).as_deref(),
            Some("2024-03-01T10:30:00Z")
        );
        assert_eq!(missed, 4);
        let ran = cronjob("2024-03-01T09:55:00Z", Some("2024-03-01T10:30:00Z"), None);
        assert_eq!(most_recent(&sched, &ran, now, &tz).0, None);
        // a starting deadline bounds how far back missed times are looked for
        let bounded = cronjob("2024-03-01T09:55:00Z", None, Some(60));
        assert_eq!(most_recent(&sched, &bounded, now, &tz), (None, 0));
    }
}
