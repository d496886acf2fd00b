//! The disruption controller: keeps each PodDisruptionBudget's status current, as
//! upstream's `pkg/controller/disruption` does — `currentHealthy`, `desiredHealthy`,
//! `expectedPods`, `disruptionsAllowed`, `observedGeneration`, the pending
//! `disruptedPods`, and the `DisruptionAllowed` condition (`SufficientPods`,
//! `InsufficientPods`, or `SyncFailed` when the budget cannot be computed).
//!
//! Percentages and `maxUnavailable` are resolved against the scale of the selected pods'
//! controllers: Deployments (through their ReplicaSets), ReplicaSets, StatefulSets and
//! ReplicationControllers from watch caches, any other kind through its `scale`
//! subresource. A budget is synced when it changes, when a pod it selects changes, and
//! when a pending disruption expires. The arithmetic lives in [`budget`].

pub mod budget;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};

use crate::Context;
use crate::common::events::{NORMAL, WARNING};
use crate::common::{EventRecorder, matches, selector};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

struct Controller {
    client: kube::Client,
    queue: WorkQueue,
    recorder: EventRecorder,
    pdbs: Store<PodDisruptionBudget>,
    pods: Store<Pod>,
    replicasets: Store<ReplicaSet>,
    deployments: Store<Deployment>,
    statefulsets: Store<StatefulSet>,
    rcs: Store<ReplicationController>,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

/// Whether a budget's selector selects a pod (an empty selector selects every pod of
/// the namespace; a missing or invalid one none).
fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    pdb.metadata.namespace == pod.metadata.namespace
        && pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| selector(s).ok())
            .is_some_and(|s| matches(&s, pod.metadata.labels.as_ref()))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let pdbs = informer(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(p) | Event::InitApply(p) | Event::Delete(p) = ev {
                q.add(key_of(p));
            }
        },
    );
    let (q, budgets) = (queue.clone(), pdbs.clone());
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(pod) | Event::Delete(pod) = ev {
                for pdb in budgets.state() {
                    if selects(&pdb, pod) {
                        q.add(key_of(pdb.as_ref()));
                    }
                }
            }
        },
    );
    let cfg = watcher::Config::default;
    let replicasets = informer(Api::<ReplicaSet>::all(client.clone()), cfg(), |_| {});
    let deployments = informer(Api::<Deployment>::all(client.clone()), cfg(), |_| {});
    let statefulsets = informer(Api::<StatefulSet>::all(client.clone()), cfg(), |_| {});
    let rcs = informer(
        Api::<ReplicationController>::all(client.clone()),
        cfg(),
        |_| {},
    );
    pdbs.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    replicasets.wait_until_ready().await?;
    deployments.wait_until_ready().await?;
    statefulsets.wait_until_ready().await?;
    rcs.wait_until_ready().await?;

    let controller = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), "controllermanager"),
        client,
        queue: queue.clone(),
        pdbs,
        pods,
        replicasets,
        deployments,
        statefulsets,
        rcs,
    });
    queue
        .run(1, "disruption", move |key| {
            let c = controller.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// The API group of an ownerReference's `apiVersion`.
fn group_of(r: &OwnerReference) -> &str {
    r.api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn is_kind(r: &OwnerReference, kind: &str, groups: &[&str]) -> bool {
    r.kind == kind && groups.contains(&group_of(r))
}

fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

fn get<K>(store: &Store<K>, ns: &str, name: &str, uid: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    store
        .get(&ObjectRef::new(name).within(ns))
        .filter(|o| o.meta().uid.as_deref() == Some(uid))
}

impl Controller {
    /// The controller of a pod and its desired scale: `(uid, replicas)`, `None` when no
    /// known controller with that UID exists.
    async fn controller_scale(
        &self,
        r: &OwnerReference,
        ns: &str,
    ) -> anyhow::Result<Option<(String, i32)>> {
        const APPS: &[&str] = &["apps", "extensions"];
        if is_kind(r, "ReplicationController", &[""]) {
            return Ok(get(&self.rcs, ns, &r.name, &r.uid).map(|rc| {
                (
                    r.uid.clone(),
                    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            }));
        }
        if is_kind(r, "ReplicaSet", APPS) {
            let Some(rs) = get(&self.replicasets, ns, &r.name, &r.uid) else {
                return Ok(None);
            };
            // a Deployment's ReplicaSet: the Deployment's scale counts
            if let Some(d) = controller_of(rs.as_ref()).filter(|d| is_kind(d, "Deployment", APPS)) {
                return Ok(get(&self.deployments, ns, &d.name, &d.uid).map(|dep| {
                    let replicas = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    (d.uid.clone(), replicas)
                }));
            }
            let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            return Ok(Some((r.uid.clone(), replicas)));
        }
        if is_kind(r, "StatefulSet", &["apps"]) {
            return Ok(get(&self.statefulsets, ns, &r.name, &r.uid).map(|ss| {
                let replicas = ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                (r.uid.clone(), replicas)
            }));
        }
        self.generic_scale(r, ns).await
    }

    /// Any other controller, through its `scale` subresource.
    async fn generic_scale(
        &self,
        r: &OwnerReference,
        ns: &str,
    ) -> anyhow::Result<Option<(String, i32)>> {
        let all = crate::common::discovery::resources_with(&self.client, &["get"]).await?;
        let Some(d) = crate::common::discovery::by_kind(&all, &r.api_version, &r.kind) else {
            return Ok(None);
        };
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &d.resource);
        let url = format!("{}/{}/scale", api.resource_url(), r.name);
        let req = http::Request::get(url).body(Vec::new())?;
        let scale: Scale = match self.client.request(req).await {
            Ok(s) => s,
            Err(e) if crate::common::is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if scale.metadata.uid.as_deref() != Some(r.uid.as_str()) {
            return Ok(None);
        }
        let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
        Ok(Some((r.uid.clone(), replicas)))
    }

    /// The sum of the scales of the pods' controllers, and the pods with no controller.
    async fn expected_scale(&self, pods: &[&Pod]) -> anyhow::Result<(i32, Vec<String>)> {
        let mut scales: HashMap<String, i32> = HashMap::new();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(r) = controller_of(*pod) else {
                unmanaged.push(pod.name_any());
                continue;
            };
            if scales.contains_key(&r.uid) {
                continue;
            }
            let ns = pod.namespace().unwrap_or_default();
            match self.controller_scale(r, &ns).await? {
                Some((uid, replicas)) => {
                    scales.insert(uid, replicas);
                }
                None => anyhow::bail!("found no controllers for pod {:?}", pod.name_any()),
            }
        }
        Ok((scales.values().sum(), unmanaged))
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(pdb) = self.pdbs.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(());
        };
        match self.try_sync(&pdb).await {
            Ok(()) => Ok(()),
            // a conflict is retried as is, without failing the budget
            Err(SyncError::Api(e)) if crate::common::is_conflict(&e) => Err(e.into()),
            Err(e) => {
                let message = e.to_string();
                tracing::info!(pdb = %key, error = %message, "failed to sync PodDisruptionBudget");
                let mut failed = (*pdb).clone();
                failed.status = Some(budget::fail_safe_status(&pdb, &message));
                self.write_status(&failed).await?;
                // retried with backoff (upstream waits for the next event)
                Err(anyhow::anyhow!(message))
            }
        }
    }

    async fn write_status(&self, pdb: &PodDisruptionBudget) -> Result<(), kube::Error> {
        let ns = pdb.namespace().unwrap_or_default();
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &ns);
        match api
            .replace_status(&pdb.name_any(), &PostParams::default(), pdb)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::common::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn try_sync(&self, pdb: &PodDisruptionBudget) -> Result<(), SyncError> {
        let all = self.pods.state();
        let pods: Vec<&Pod> = all
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| selects(pdb, p))
            .collect();
        if pods.is_empty() {
            self.recorder
                .record(pdb, NORMAL, "NoPods", "No matching pods found")
                .await;
        }
        let (scale, unmanaged) = if budget::needs_scale(pdb) {
            match self.expected_scale(&pods).await {
                Ok(s) => s,
                Err(e) => {
                    let msg = format!("Failed to calculate the number of expected pods: {e:#}");
                    self.recorder
                        .record(pdb, WARNING, "CalculateExpectedPodCountFailed", &msg)
                        .await;
                    return Err(SyncError::Other(format!("{e:#}")));
                }
            }
        } else {
            (0, vec![])
        };
        let (expected, desired) =
            budget::expected_and_desired(pdb, pods.len(), scale).map_err(SyncError::Other)?;
        if !unmanaged.is_empty() {
            tracing::debug!(pdb = ?pdb.metadata.name, pods = ?unmanaged, "unmanaged pods selected");
            let msg = format!(
                "Pods selected by this PodDisruptionBudget (selector: {}) were found to be \
                 unmanaged. As a result, the status of the PDB cannot be calculated correctly, \
                 which may result in undefined behavior. To account for these pods please set \
                 \".spec.minAvailable\" field of the PDB to an integer value.",
                serde_json::to_string(&pdb.spec.as_ref().and_then(|s| s.selector.as_ref()))
                    .unwrap_or_default()
            );
            self.recorder
                .record(pdb, WARNING, "UnmanagedPods", &msg)
                .await;
        }
        let now = crate::common::now();
        let (disrupted, recheck, expired) = budget::pending_disruptions(&pods, pdb, now);
        for name in expired {
            if let Some(pod) = pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(&name))
            {
                let msg = format!(
                    "Pod was expected by PDB {}/{} to be deleted but it wasn't",
                    pdb.namespace().unwrap_or_default(),
                    pdb.name_any()
                );
                self.recorder
                    .record(*pod, WARNING, "NotDeleted", &msg)
                    .await;
            }
        }
        let current = budget::count_healthy(&pods, &disrupted, now);
        let observed = budget::Observed {
            current_healthy: current,
            desired_healthy: desired,
            expected_pods: expected,
            disrupted_pods: disrupted,
        };
        if let Some(status) = budget::new_status(pdb, observed) {
            let mut updated = pdb.clone();
            updated.status = Some(status);
            self.write_status(&updated).await.map_err(SyncError::Api)?;
        }
        if let Some(at) = recheck {
            let wait = std::time::Duration::try_from(at.duration_since(now)).unwrap_or_default();
            self.queue.add_after(key_of(pdb), wait);
        }
        Ok(())
    }
}

/// Why a sync failed: an API error (conflicts are retried as they are) or a budget that
/// cannot be computed.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("{0}")]
    Api(kube::Error),
    #[error("{0}")]
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_select_within_the_namespace() {
        let pdb = |sel: serde_json::Value| -> PodDisruptionBudget {
            serde_json::from_value(json!({"metadata": {"name": "b", "namespace": "ns"},
                "spec": {"selector": sel}}))
            .expect("pdb")
        };
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}}}),
        )
        .expect("pod");
        assert!(selects(&pdb(json!({"matchLabels": {"app": "web"}})), &pod));
        assert!(selects(&pdb(json!({})), &pod), "empty selects all");
        assert!(!selects(&pdb(json!(null)), &pod), "missing selects none");
        assert!(!selects(&pdb(json!({"matchLabels": {"app": "db"}})), &pod));
        let mut other = pod.clone();
        other.metadata.namespace = Some("other".into());
        assert!(!selects(&pdb(json!({})), &other));
    }

    #[test]
    fn owner_groups() {
        let r: OwnerReference = serde_json::from_value(json!({"apiVersion": "apps/v1",
            "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}))
        .expect("ref");
        assert!(is_kind(&r, "ReplicaSet", &["apps", "extensions"]));
        assert!(!is_kind(&r, "ReplicationController", &[""]));
    }
}
