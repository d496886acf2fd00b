//! The ttl-after-finished controller: deletes a finished Job (Complete or Failed) once
//! `ttlSecondsAfterFinished` have passed since it finished, as upstream: with foreground
//! propagation (its pods go first) and the Job's resourceVersion as precondition, after
//! re-reading it fresh so a Job whose TTL was just changed is not deleted by mistake.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

/// When the Job finished: its Complete or Failed condition's transition time (or
/// completionTime); None while it runs.
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    let status = job.status.as_ref()?;
    let cond = status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    cond.last_transition_time
        .as_ref()
        .or(status.completion_time.as_ref())
        .map(|t| t.0)
}

/// How long until the Job expires (zero when it already has); None without a TTL or
/// while the Job runs.
pub fn time_left(job: &Job, now: Timestamp) -> Option<Duration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = finish_time(job)?;
    let expire = finished
        .checked_add(SignedDuration::from_secs(ttl.into()))
        .ok()?;
    Some(Duration::try_from(expire.duration_since(now)).unwrap_or_default())
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let jobs = informer(
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(j) | Event::InitApply(j) = ev
                && j.metadata.deletion_timestamp.is_none()
                && time_left(j, Timestamp::now()).is_some()
            {
                q.add(key_of(j));
            }
        },
    );
    jobs.wait_until_ready().await?;
    let q = queue.clone();
    queue
        .run(
            ctx.options.concurrent_ttl_after_finished_syncs,
            "ttl-after-finished",
            move |key| {
                let (client, q) = (client.clone(), q.clone());
                async move { sync(&client, &q, &key).await }
            },
        )
        .await;
    Ok(())
}

async fn sync(client: &kube::Client, queue: &WorkQueue, key: &str) -> anyhow::Result<()> {
    let (ns, name) = split_key(key);
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    // always decide on a fresh copy: the TTL may have just been changed
    let Some(job) = api.get_opt(name).await? else {
        return Ok(());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let Some(left) = time_left(&job, Timestamp::now()) else {
        return Ok(());
    };
    if !left.is_zero() {
        queue.add_after(key, left + Duration::from_millis(100));
        return Ok(());
    }
    tracing::info!(job = %key, "cleaning up finished job after its TTL");
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.metadata.uid.clone(),
            resource_version: job.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_counts_from_the_finish() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": 100, "template": {}},
            "status": {"conditions": [{"type": "Complete", "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
        }))
        .expect("job");
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().expect("time");
        assert_eq!(time_left(&job, now), Some(Duration::from_secs(40)));
        let later: Timestamp = "2024-01-01T00:05:00Z".parse().expect("time");
        assert_eq!(time_left(&job, later), Some(Duration::ZERO));
        let mut running = job.clone();
        running.status = None;
        assert_eq!(time_left(&running, now), None);
    }
}
