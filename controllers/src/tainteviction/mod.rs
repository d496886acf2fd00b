//! The taint-eviction controller: deletes pods bound to nodes with NoExecute taints they
//! do not tolerate, as upstream's `pkg/controller/tainteviction`.
//!
//! A pod that does not tolerate every NoExecute taint of its node is deleted at once; one
//! that tolerates them all for a while (`tolerationSeconds`) is deleted when the shortest
//! of those runs out, unless the taints go away first; one that tolerates them forever
//! stays. Before deleting, the pod gets the `DisruptionTarget` condition (reason
//! `DeletionByTaintManager`), and a `TaintManagerEviction` event records the decision (and
//! any cancellation). This controller only reads taints; adding them is the node-lifecycle
//! controller's job (or an administrator's).

mod timed;
pub mod tolerations;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, PodCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::Context;
use crate::common::events::NORMAL;
use crate::common::{EventRecorder, is_not_found};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};
use timed::TimedWorkers;
use tolerations::{matching_tolerations, min_toleration_time, no_execute_taints};

/// The controller's name (event source and log field), as upstream's.
const NAME: &str = "taint-eviction-controller";
/// Workers for node and for pod updates (upstream's `UpdateWorkerSize`).
const WORKERS: usize = 8;
/// Attempts at marking and deleting one pod.
const DELETE_RETRIES: usize = 5;

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

struct Controller {
    client: kube::Client,
    recorder: EventRecorder,
    pods: Store<Pod>,
    nodes: Store<Node>,
    /// The NoExecute taints of each node that has some.
    tainted: Mutex<HashMap<String, Vec<Taint>>>,
    evictions: TimedWorkers,
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let node_queue = WorkQueue::new();
    let pod_queue = WorkQueue::new();

    // Only changes that matter are queued, as upstream's handlers compare old and new:
    // a node's NoExecute taints, a pod's node and tolerations.
    let q = node_queue.clone();
    let seen_taints: Mutex<HashMap<String, Vec<Taint>>> = Mutex::default();
    let nodes = informer(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        move |ev| match ev {
            Event::Apply(n) | Event::InitApply(n) => {
                let name = key_of(n);
                let taints = no_execute_taints(node_taints(n));
                let mut seen_taints = seen_taints.lock().unwrap_or_else(|p| p.into_inner());
                if seen_taints.get(&name) != Some(&taints) {
                    seen_taints.insert(name.clone(), taints);
                    q.add(name);
                }
            }
            Event::Delete(n) => {
                let name = key_of(n);
                seen_taints
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&name);
                q.add(name);
            }
            Event::Init | Event::InitDone => {}
        },
    );
    let q = pod_queue.clone();
    let seen_pods: Mutex<HashMap<String, (String, Vec<Toleration>)>> = Mutex::default();
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |ev| match ev {
            Event::Apply(p) | Event::InitApply(p) => {
                let key = key_of(p);
                let now = (node_name(p).to_string(), pod_tolerations(p).to_vec());
                let mut seen_pods = seen_pods.lock().unwrap_or_else(|p| p.into_inner());
                if seen_pods.get(&key) != Some(&now) {
                    seen_pods.insert(key.clone(), now);
                    q.add(key);
                }
            }
            Event::Delete(p) => {
                let key = key_of(p);
                seen_pods
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                q.add(key);
            }
            Event::Init | Event::InitDone => {}
        },
    );
    pods.wait_until_ready().await?;
    nodes.wait_until_ready().await?;
    tracing::info!(controller = NAME, "caches synced");

    let ctrl = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), NAME),
        client,
        pods,
        nodes,
        tainted: Mutex::new(HashMap::new()),
        evictions: TimedWorkers::new(),
    });
    let c = ctrl.clone();
    let node_workers = node_queue.run(WORKERS, NAME, move |name| {
        let c = c.clone();
        async move {
            c.handle_node(&name).await;
            Ok(())
        }
    });
    let c = ctrl.clone();
    let pod_workers = pod_queue.run(WORKERS, NAME, move |key| {
        let c = c.clone();
        async move {
            c.handle_pod(&key).await;
            Ok(())
        }
    });
    futures::join!(node_workers, pod_workers);
    Ok(())
}

fn node_taints(n: &Node) -> &[Taint] {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

fn node_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

fn pod_tolerations(p: &Pod) -> &[Toleration] {
    p.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// What to do about one pod on a node with NoExecute taints.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Not every taint is tolerated: delete now.
    DeleteNow,
    /// Tolerated for this long.
    DeleteAfter(Duration),
    /// Tolerated forever: cancel any pending deletion.
    Keep,
}

/// The decision for a pod with `tolerations` on a node with the NoExecute `taints`.
pub fn decide(taints: &[Taint], tolerations: &[Toleration]) -> Decision {
    match matching_tolerations(taints, tolerations) {
        None => Decision::DeleteNow,
        Some(used) => match min_toleration_time(&used) {
            Some(d) => Decision::DeleteAfter(d),
            None => Decision::Keep,
        },
    }
}

impl Controller {
    async fn handle_node(self: &Arc<Self>, name: &str) {
        let Some(node) = self.nodes.get(&ObjectRef::new(name)) else {
            tracing::debug!(node = name, "noticed node deletion");
            self.lock_tainted().remove(name);
            return;
        };
        let taints = no_execute_taints(node_taints(&node));
        tracing::debug!(node = name, ?taints, "updating known NoExecute taints");
        {
            let mut tainted = self.lock_tainted();
            if taints.is_empty() {
                tainted.remove(name);
            } else {
                tainted.insert(name.to_string(), taints.clone());
            }
        }
        // Taints are recorded before the pods are read, so a pod bound meanwhile is seen
        // either here or by its own update.
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| node_name(p) == name)
            .collect();
        if taints.is_empty() {
            for p in &pods {
                self.cancel_with_event(&key_of(p.as_ref())).await;
            }
            return;
        }
        let now = Timestamp::now();
        for p in &pods {
            self.process_pod(&key_of(p.as_ref()), pod_tolerations(p), &taints, now)
                .await;
        }
    }

    async fn handle_pod(self: &Arc<Self>, key: &str) {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(&ObjectRef::new(name).within(ns)) else {
            tracing::debug!(pod = key, "noticed pod deletion");
            self.cancel_with_event(key).await;
            return;
        };
        let node = node_name(&pod);
        if node.is_empty() {
            return;
        }
        let Some(taints) = self.lock_tainted().get(node).cloned() else {
            return;
        };
        self.process_pod(key, pod_tolerations(&pod), &taints, Timestamp::now())
            .await;
    }

    fn lock_tainted(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Taint>>> {
        self.tainted.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn process_pod(
        self: &Arc<Self>,
        key: &str,
        tolerations: &[Toleration],
        taints: &[Taint],
        now: Timestamp,
    ) {
        match decide(taints, tolerations) {
            Decision::DeleteNow => {
                tracing::debug!(pod = key, "not all taints are tolerated; deleting at once");
                self.cancel_with_event(key).await;
                self.schedule_deletion(key, now, now);
            }
            Decision::Keep => {
                tracing::debug!(
                    pod = key,
                    "taints tolerated forever; cancelling any deletion"
                );
                self.cancel_with_event(key).await;
            }
            Decision::DeleteAfter(d) => {
                let trigger = now
                    .checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
                    .unwrap_or(Timestamp::MAX);
                let mut created = now;
                if let Some(scheduled) = self.evictions.scheduled(key) {
                    // a deletion planned earlier stands
                    if scheduled < now {
                        return;
                    }
                    created = scheduled;
                    self.cancel_with_event(key).await;
                }
                self.schedule_deletion(key, created, trigger);
            }
        }
    }

    fn schedule_deletion(self: &Arc<Self>, key: &str, created: Timestamp, fire_at: Timestamp) {
        let this = self.clone();
        let owned = key.to_string();
        tracing::debug!(pod = key, %fire_at, "scheduling pod deletion");
        self.evictions
            .add_work(key, created, fire_at, move || async move {
                this.delete_pod(&owned).await;
            });
    }

    async fn cancel_with_event(&self, key: &str) {
        if self.evictions.cancel(key) {
            tracing::info!(pod = key, "cancelling pod deletion");
            self.record(key, &format!("Cancelling deletion of Pod {key}"))
                .await;
        }
    }

    async fn record(&self, key: &str, message: &str) {
        let (ns, name) = split_key(key);
        let involved = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.to_string()),
            namespace: Some(ns.to_string()),
            ..Default::default()
        };
        self.recorder
            .record_ref(involved, NORMAL, "TaintManagerEviction", message)
            .await;
    }

    async fn delete_pod(&self, key: &str) {
        tracing::info!(controller = NAME, pod = key, "deleting pod");
        self.record(key, &format!("Marking for deletion Pod {key}"))
            .await;
        let (ns, name) = split_key(key);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        for attempt in 1..=DELETE_RETRIES {
            match mark_and_delete(&api, name).await {
                Ok(()) => return,
                Err(e) if attempt == DELETE_RETRIES => {
                    tracing::warn!(pod = key, error = %format!("{e:#}"), "could not delete pod");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

/// The pod's conditions with `DisruptionTarget` set as upstream's taint manager sets it,
/// or `None` when it is already so.
pub fn with_disruption_target(pod: &Pod, now: Timestamp) -> Option<Vec<PodCondition>> {
    let mut conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let wanted = PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByTaintManager".into()),
        message: Some("Taint manager: deleting due to NoExecute taint".into()),
        last_transition_time: Some(Time(Timestamp::from_second(now.as_second()).ok()?)),
        ..Default::default()
    };
    match conditions.iter_mut().find(|c| c.type_ == wanted.type_) {
        Some(c)
            if c.status == wanted.status
                && c.reason == wanted.reason
                && c.message == wanted.message =>
        {
            None
        }
        Some(c) => {
            let keep_time = c.status == wanted.status;
            let transition = c.last_transition_time.clone();
            *c = wanted;
            if keep_time {
                c.last_transition_time = transition;
            }
            Some(conditions)
        }
        None => {
            conditions.push(wanted);
            Some(conditions)
        }
    }
}

/// Adds the DisruptionTarget condition (against the pod's current resourceVersion) and
/// deletes the pod; a pod already gone is done.
async fn mark_and_delete(api: &Api<Pod>, name: &str) -> anyhow::Result<()> {
    let Some(pod) = api.get_opt(name).await? else {
        return Ok(());
    };
    if let Some(conditions) = with_disruption_target(&pod, Timestamp::now()) {
        let patch = json!({
            "metadata": {"resourceVersion": pod.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(e) if is_not_found(&e) => return Ok(()),
            other => {
                other?;
            }
        }
    }
    match api.delete(name, &DeleteParams::default()).await {
        Err(e) if is_not_found(&e) => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            ..Default::default()
        }
    }

    fn tol(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).expect("toleration")
    }

    #[test]
    fn decisions() {
        let unreachable = [taint("node.kubernetes.io/unreachable")];
        assert_eq!(decide(&unreachable, &[]), Decision::DeleteNow);
        let for_a_while = tol(json!({"key": "node.kubernetes.io/unreachable",
            "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 7}));
        assert_eq!(
            decide(&unreachable, std::slice::from_ref(&for_a_while)),
            Decision::DeleteAfter(Duration::from_secs(7))
        );
        let forever = tol(json!({"operator": "Exists"}));
        assert_eq!(decide(&unreachable, &[forever]), Decision::Keep);
        let two = [taint("node.kubernetes.io/unreachable"), taint("other")];
        assert_eq!(decide(&two, &[for_a_while]), Decision::DeleteNow);
    }

    #[test]
    fn disruption_target_is_added_once() {
        let now = Timestamp::now();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .expect("pod");
        let conditions = with_disruption_target(&pod, now).expect("added");
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[1].type_, "DisruptionTarget");
        assert_eq!(
            conditions[1].reason.as_deref(),
            Some("DeletionByTaintManager")
        );
        let mut marked = pod.clone();
        if let Some(s) = marked.status.as_mut() {
            s.conditions = Some(conditions);
        }
        assert!(with_disruption_target(&marked, now).is_none());
    }
}
