//! The ReplicaSet and ReplicationController controllers (upstream's
//! `pkg/controller/replicaset`, which also serves ReplicationControllers).
//!
//! For each owner it claims the active pods matching its selector (adopting orphans,
//! releasing pods that stopped matching), creates missing pods from the template in
//! slow-start batches (1, 2, 4, ... at most 500 per sync) or deletes surplus pods in
//! upstream's ranking order, records `SuccessfulCreate`/`SuccessfulDelete` (or
//! `FailedCreate`/`FailedDelete`) events, and writes the status (counts, observed
//! generation, the `ReplicaFailure` condition). Pod creations and deletions are tracked
//! in [`Expectations`] so a slow watch never causes duplicates.

pub mod kind;
pub mod status;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::Context;
use crate::common::controller_ref::{controller_of, recheck_owner};
use crate::common::expectations::Observed;
use crate::common::pods::{is_pod_active, pod_from_template, pods_to_delete};
use crate::common::{self, EventRecorder, Expectations, OwnerInfo, ReconcileError, events};
use kind::ReplicaOwner;
use status::{ManageFailure, StatusInputs};

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

/// Entry point of `replicaset`.
pub fn run_replicaset(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    let n = ctx.options.concurrent_replicaset_syncs;
    Box::pin(run::<ReplicaSet>(ctx, n))
}

/// Entry point of `replicationcontroller`.
pub fn run_replicationcontroller(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    let n = ctx.options.concurrent_rc_syncs;
    Box::pin(run::<ReplicationController>(ctx, n))
}

struct Shared<K: ReplicaOwner> {
    client: kube::Client,
    pods: Store<Pod>,
    pods_ready: common::ReadyGate,
    owners: Store<K>,
    expectations: Expectations,
    recorder: EventRecorder,
}

async fn run<K: ReplicaOwner>(ctx: Arc<Context>, concurrency: usize) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let (pods, writer) = reflector::store();
    let pod_events = reflector::reflector(
        writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let controller = Controller::new(Api::<K>::all(client.clone()), watcher::Config::default())
        .with_config(controller::Config::default().concurrency(concurrency.max(1) as u16));
    let owners = controller.store();
    let lookup = owners.clone();
    let shared = Arc::new(Shared {
        recorder: EventRecorder::new(client.clone(), K::COMPONENT),
        client,
        pods_ready: common::ReadyGate::of(&pods),
        pods,
        owners,
        expectations: Expectations::new(),
    });
    controller
        .watches_stream(pod_events, move |pod: Pod| owners_of_pod(&lookup, &pod))
        .run(reconcile::<K>, error_policy::<K>, shared)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "{} sync failed", K::kind(&()));
            }
        })
        .await;
    Ok(())
}

/// The owners to sync when a pod changes: its controller, or for an orphan every owner
/// in its namespace whose selector matches (one of them may adopt it).
fn owners_of_pod<K: ReplicaOwner>(owners: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
    let ns = pod.namespace().unwrap_or_default();
    if let Some(r) = controller_of(&pod.metadata) {
        if r.kind == K::kind(&()) {
            return vec![ObjectRef::new(&r.name).within(&ns)];
        }
        return vec![];
    }
    owners
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(ns.as_str()))
        .filter(|o| {
            o.selector()
                .is_some_and(|s| common::matches(&s, pod.metadata.labels.as_ref()))
        })
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

fn error_policy<K: ReplicaOwner>(owner: Arc<K>, err: &ReconcileError, _: Arc<Shared<K>>) -> Action {
    tracing::warn!(owner = %owner.name_any(), error = %err, "sync failed, requeueing");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile<K: ReplicaOwner>(
    owner: Arc<K>,
    sh: Arc<Shared<K>>,
) -> Result<Action, ReconcileError> {
    sh.pods_ready
        .wait()
        .await
        .map_err(|e| anyhow::anyhow!("pod cache: {e}"))?;
    let ns = owner.namespace().unwrap_or_default();
    let key = common::key(Some(&ns), &owner.name_any());
    let started = std::time::Instant::now();
    let result = sync_owner(owner, &sh, &ns, &key).await;
    // upstream logs this at V(4)
    tracing::debug!(kind = K::kind(&()).as_ref(), key = %key, duration = ?started.elapsed(), "Finished syncing");
    result
}

async fn sync_owner<K: ReplicaOwner>(
    owner: Arc<K>,
    sh: &Shared<K>,
    ns: &str,
    key: &str,
) -> Result<Action, ReconcileError> {
    let info = OwnerInfo::of(owner.as_ref());
    let in_ns: Vec<Arc<Pod>> = sh
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns))
        .collect();
    let by_uid: HashMap<String, bool> = in_ns
        .iter()
        .map(|p| {
            (
                p.uid().unwrap_or_default(),
                p.metadata.deletion_timestamp.is_some(),
            )
        })
        .collect();
    let satisfied = sh.expectations.satisfied(key, |uid| match by_uid.get(uid) {
        None => Observed::Absent,
        Some(true) => Observed::Terminating,
        Some(false) => Observed::Present,
    });
    let Some(selector) = owner.selector() else {
        tracing::warn!(owner = %key, "invalid or empty selector; nothing to manage");
        return Ok(Action::await_change());
    };
    let active: Vec<Arc<Pod>> = in_ns.iter().filter(|p| is_pod_active(p)).cloned().collect();
    let api: Api<Pod> = Api::namespaced(sh.client.clone(), ns);
    let owner_api: Api<K> = Api::namespaced(sh.client.clone(), ns);
    let claimed = common::claim(&api, &info, &selector, active, || {
        recheck_owner(&owner_api, &info)
    })
    .await?;
    let terminating = in_ns
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && info.controls(&p.metadata))
        .count();
    let mut failure = None;
    if satisfied && owner.meta().deletion_timestamp.is_none() {
        let claimed_refs: Vec<&Pod> = claimed.iter().map(|p| p.as_ref()).collect();
        let related = related_pods(sh, owner.as_ref(), &in_ns);
        let related_refs: Vec<&Pod> = related.iter().map(|p| p.as_ref()).collect();
        failure =
            manage_replicas(sh, owner.as_ref(), &info, key, &claimed_refs, &related_refs).await;
    }
    let claimed_refs: Vec<&Pod> = claimed.iter().map(|p| p.as_ref()).collect();
    // a failed round is retried (upstream requeues with backoff), after the status says why
    let retry = failure.as_ref().map(|f| f.message.clone());
    let new_status = sync_status(
        &owner_api,
        owner.as_ref(),
        &claimed_refs,
        terminating,
        failure,
    )
    .await?;
    if let Some(message) = retry {
        return Err(anyhow::anyhow!("{message}").into());
    }
    Ok(requeue_after(owner.as_ref(), &new_status, &claimed_refs))
}

/// Computes the status from the claimed pods and writes it when it changed.
async fn sync_status<K: ReplicaOwner>(
    api: &Api<K>,
    owner: &K,
    claimed: &[&Pod],
    terminating: usize,
    failure: Option<ManageFailure>,
) -> anyhow::Result<serde_json::Value> {
    let current = owner.status_json();
    let new_status = status::calculate(StatusInputs {
        current: &current,
        generation: owner.meta().generation,
        template_labels: owner
            .template()
            .and_then(|t| t.metadata.as_ref()?.labels.as_ref()),
        min_ready_seconds: owner.min_ready_seconds(),
        active: claimed,
        terminating,
        failure,
    });
    if status_changed(&current, &new_status) {
        write_status(api, owner, new_status.clone()).await?;
    }
    Ok(new_status)
}

/// Pods of every owner that shares this owner's controller (a Deployment's other
/// ReplicaSets): spreading across nodes counts all of them, as upstream's ranking does.
fn related_pods<K: ReplicaOwner>(sh: &Shared<K>, owner: &K, in_ns: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let siblings: Vec<String> = match controller_of(owner.meta()) {
        Some(parent) => sh
            .owners
            .state()
            .iter()
            .filter(|o| controller_of(o.meta()).is_some_and(|r| r.uid == parent.uid))
            .filter_map(|o| o.uid())
            .collect(),
        None => owner.uid().into_iter().collect(),
    };
    in_ns
        .iter()
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| siblings.contains(&r.uid)))
        .cloned()
        .collect()
}

fn status_changed(current: &serde_json::Value, new: &serde_json::Value) -> bool {
    let mut a = current.clone();
    let mut b = new.clone();
    // an API server without the field drops it; do not fight over it
    if a.get("terminatingReplicas").is_none() {
        if let Some(o) = b.as_object_mut() {
            o.remove("terminatingReplicas");
        }
        if let Some(o) = a.as_object_mut() {
            o.remove("terminatingReplicas");
        }
        if a == b {
            return current.get("observedGeneration") != new.get("observedGeneration");
        }
    }
    a != b
}

async fn write_status<K: ReplicaOwner>(
    api: &Api<K>,
    owner: &K,
    status: serde_json::Value,
) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(owner)?;
    v["status"] = status;
    let updated: K = serde_json::from_value(v)?;
    api.replace_status(&owner.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(())
}

/// Requeue to count pods that become available once minReadySeconds pass.
fn requeue_after<K: ReplicaOwner>(owner: &K, status: &serde_json::Value, pods: &[&Pod]) -> Action {
    let min_ready = owner.min_ready_seconds();
    let ready = status["readyReplicas"].as_i64().unwrap_or(0);
    let available = status["availableReplicas"].as_i64().unwrap_or(0);
    if min_ready > 0 && ready > available {
        let now = common::now();
        let soonest = pods
            .iter()
            .filter_map(|p| common::pods::until_available(p, min_ready, now))
            .min()
            .unwrap_or(Duration::from_secs(min_ready as u64));
        return Action::requeue(soonest);
    }
    Action::requeue(Duration::from_secs(300))
}

/// Creates or deletes pods towards `replicas`; the failure, if any, feeds the
/// `ReplicaFailure` condition.
async fn manage_replicas<K: ReplicaOwner>(
    sh: &Shared<K>,
    owner: &K,
    info: &OwnerInfo,
    key: &str,
    claimed: &[&Pod],
    related: &[&Pod],
) -> Option<ManageFailure> {
    let diff = claimed.len() as i64 - i64::from(owner.replicas());
    let ns = info.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(sh.client.clone(), &ns);
    if diff < 0 {
        let n = ((-diff) as usize).min(BURST_REPLICAS);
        let template = owner.template()?;
        let pod = pod_from_template(template, info);
        tracing::debug!(owner = %key, need = n, "too few replicas, creating");
        let (created, err) = slow_start_batch(n, || create_pod(sh, owner, &api, &pod)).await;
        sh.expectations
            .expect_creations(key, created.iter().filter_map(|p| p.uid()));
        return err.map(|e| ManageFailure {
            reason: "FailedCreate",
            message: common::error_message(&e),
        });
    }
    if diff > 0 {
        let n = (diff as usize).min(BURST_REPLICAS);
        tracing::debug!(owner = %key, surplus = n, "too many replicas, deleting");
        let victims = pods_to_delete(claimed, related, n);
        sh.expectations
            .expect_deletions(key, victims.iter().filter_map(|p| p.uid()));
        let results =
            futures::future::join_all(victims.iter().map(|p| delete_pod(sh, owner, &api, p))).await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Some(ManageFailure {
                reason: "FailedDelete",
                message: common::error_message(&e),
            });
        }
    }
    None
}

async fn create_pod<K: ReplicaOwner>(
    sh: &Shared<K>,
    owner: &K,
    api: &Api<Pod>,
    pod: &Pod,
) -> Result<Pod, kube::Error> {
    match api.create(&PostParams::default(), pod).await {
        Ok(p) => {
            let msg = format!("Created pod: {}", p.name_any());
            sh.recorder
                .record(owner, events::NORMAL, "SuccessfulCreate", &msg)
                .await;
            Ok(p)
        }
        Err(e) => {
            let msg = format!("Error creating: {}", common::error_message(&e));
            sh.recorder
                .record(owner, events::WARNING, "FailedCreate", &msg)
                .await;
            Err(e)
        }
    }
}

async fn delete_pod<K: ReplicaOwner>(
    sh: &Shared<K>,
    owner: &K,
    api: &Api<Pod>,
    pod: &Pod,
) -> Result<(), kube::Error> {
    let name = pod.name_any();
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            let msg = format!("Deleted pod: {name}");
            sh.recorder
                .record(owner, events::NORMAL, "SuccessfulDelete", &msg)
                .await;
            Ok(())
        }
        Err(e) if common::is_not_found(&e) => Ok(()),
        Err(e) => {
            let msg = format!("Error deleting: {}", common::error_message(&e));
            sh.recorder
                .record(owner, events::WARNING, "FailedDelete", &msg)
                .await;
            Err(e)
        }
    }
}

/// Upstream's `slowStartBatch`: runs `f` in batches of 1, 2, 4, ... (never more than
/// remain) and stops at the first batch with a failure, so a quota or admission error
/// costs one call instead of hundreds. Returns the successes and the first error.
pub async fn slow_start_batch<T, F, Fut>(count: usize, f: F) -> (Vec<T>, Option<kube::Error>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut done = Vec::new();
    let mut remaining = count;
    let mut batch = remaining.min(1);
    while batch > 0 {
        let results = futures::future::join_all((0..batch).map(|_| f())).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(t) => done.push(t),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_stops_at_first_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n >= 3 {
                Err(kube::Error::LinesCodecMaxLineLengthExceeded)
            } else {
                Ok(n)
            }
        })
        .await;
        // batches 1 and 2 succeed (3 calls); the batch of 4 fails entirely
        assert_eq!(ok.len(), 3);
        assert!(err.is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        let (ok, err) = slow_start_batch(5, || async { Ok::<_, kube::Error>(()) }).await;
        assert_eq!(ok.len(), 5);
        assert!(err.is_none());
    }
}
