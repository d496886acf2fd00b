//! The Job controller: runs a Job's pods to completion as upstream's does. Pods are
//! created from the template (up to `parallelism`, with pod-failure backoff), finished
//! pods are accounted for through the `batch.kubernetes.io/job-tracking` finalizer and
//! `status.uncountedTerminatedPods`, and the Job ends with upstream's conditions
//! (SuccessCriteriaMet then Complete; FailureTarget then Failed with BackoffLimitExceeded,
//! DeadlineExceeded or PodFailurePolicy), honouring `suspend`, Indexed completion and
//! `podFailurePolicy`.
//!
//! This module owns the informers and the orphan-finalizer cleanup; [`sync`] decides and
//! acts for one Job, [`state`] is the pure logic, [`pods`] the pod writes.

mod pods;
pub mod state;
mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::common::{EventRecorder, Expectations};
use crate::workqueue::{WorkQueue, informer, key_of};

/// Consecutive failures since the last success, for the pod-failure backoff.
#[derive(Default, Clone, Copy)]
struct BackoffRecord {
    failures: u32,
    last_failure: Option<Timestamp>,
}

struct Controller {
    client: kube::Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    recorder: EventRecorder,
    expectations: Expectations,
    queue: WorkQueue,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

/// The `namespace/name` key of the Job controlling `pod`, if any.
fn job_key_of(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))?;
    (owner.kind == "Job" && owner.api_version.starts_with("batch/")).then(|| {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        format!("{ns}/{}", owner.name)
    })
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let synced = Arc::new(AtomicBool::new(false));
    let (jobs_tx, jobs_rx) = tokio::sync::watch::channel(None::<Store<Job>>);
    let (q, c2, s2) = (queue.clone(), client.clone(), synced.clone());
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            let (Event::Apply(p) | Event::InitApply(p) | Event::Delete(p)) = ev else {
                return;
            };
            let Some(key) = job_key_of(p) else {
                return;
            };
            let jobs = jobs_rx.borrow().clone();
            let owner_gone = jobs.is_some_and(|j| {
                let (ns, name) = crate::workqueue::split_key(&key);
                let uid = p
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|r| r.controller == Some(true))
                    .map(|r| r.uid.clone());
                j.get(&ObjectRef::new(name).within(ns))
                    .is_none_or(|job| job.metadata.uid != uid)
            });
            if owner_gone && s2.load(Ordering::Relaxed) && state::has_finalizer(p) {
                orphan_cleanup(c2.clone(), p.clone());
            } else {
                q.add(key);
            }
        },
    );
    let (q, store_for_delete) = (queue.clone(), pods.clone());
    let c2 = client.clone();
    let jobs = informer(
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        move |ev| match ev {
            Event::Apply(j) | Event::InitApply(j) => q.add(key_of(j)),
            Event::Delete(j) => {
                let uid = j.metadata.uid.clone();
                for p in store_for_delete.state() {
                    let owned = p
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| Some(&r.uid) == uid.as_ref());
                    if owned && state::has_finalizer(&p) {
                        orphan_cleanup(c2.clone(), p.as_ref().clone());
                    }
                }
                q.add(key_of(j));
            }
            _ => {}
        },
    );
    jobs.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    let _ = jobs_tx.send(Some(jobs.clone()));
    synced.store(true, Ordering::Relaxed);
    let c = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), "job-controller"),
        client,
        jobs,
        pods,
        expectations: Expectations::new(),
        queue: queue.clone(),
        backoff: Mutex::new(HashMap::new()),
    });
    queue
        .run(ctx.options.concurrent_job_syncs, "job", move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// Removes the tracking finalizer from a pod whose Job is gone (upstream's orphan pod
/// handling), in the background.
fn orphan_cleanup(client: kube::Client, pod: Pod) {
    tokio::spawn(async move {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client, &ns);
        if let Err(e) = pods::remove_finalizer(&api, &pod).await {
            tracing::debug!(pod = ?pod.metadata.name, error = %e, "removing finalizer of orphan pod");
        }
    });
}
