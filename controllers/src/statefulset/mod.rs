//! The StatefulSet controller: pods with stable identities `<set>-<ordinal>` over
//! `[ordinals.start, start + replicas)`, their claims from volumeClaimTemplates, and
//! revisions as ControllerRevisions. With `OrderedReady` pods are created one at a time
//! in ordinal order, each waiting for the previous to be Running and Ready, and removed
//! highest first; `Parallel` does both at once. `RollingUpdate` replaces pods at or
//! above the partition, highest first, one at a time once all are ready; `OnDelete`
//! only gives new pods the update revision.
//!
//! [`pods`] builds pods and claims, [`revision`] names and records templates; the
//! status (replicas, ready, available, current, updated, revisions) is written here.

pub mod pods;
pub mod revision;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::common::Expectations;
use crate::common::events::{EventRecorder, NORMAL, WARNING};
use crate::common::expectations::Observed;
use crate::workqueue::{WorkQueue, informer, key_of, split_key};
use revision::REVISION_LABEL;

struct Controller {
    client: kube::Client,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    revisions: Store<ControllerRevision>,
    recorder: EventRecorder,
    expectations: Expectations,
}

/// The current and update revisions of one sync.
struct Revisions {
    current: ControllerRevision,
    update: ControllerRevision,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

fn owner_key<K: kube::Resource>(obj: &K, kind: &str) -> Option<String> {
    let r = obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true) && r.kind == kind)?;
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    Some(format!("{ns}/{}", r.name))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let sets = informer(
        Api::<StatefulSet>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(s) | Event::InitApply(s) = ev {
                q.add(key_of(s));
            }
        },
    );
    let q = queue.clone();
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(p) | Event::InitApply(p) | Event::Delete(p) = ev
                && let Some(k) = owner_key(p, "StatefulSet")
            {
                q.add(k);
            }
        },
    );
    let revisions = informer(
        Api::<ControllerRevision>::all(client.clone()),
        watcher::Config::default(),
        |_| {},
    );
    sets.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    revisions.wait_until_ready().await?;
    let c = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), "statefulset-controller"),
        client,
        sets,
        pods,
        revisions,
        expectations: Expectations::new(),
    });
    queue
        .run(
            ctx.options.concurrent_statefulset_syncs,
            "statefulset",
            move |key| {
                let c = c.clone();
                async move { c.sync(&key).await }
            },
        )
        .await;
    Ok(())
}

fn is_running_and_ready(p: &Pod) -> bool {
    let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    running && crate::common::pods::is_pod_ready(p)
}

fn is_finished(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed" | "Succeeded")
    )
}

fn revision_of(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(set) = self.sets.get(&ObjectRef::new(name).within(ns)) else {
            self.expectations.forget(key);
            return Ok(());
        };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let uid = set.metadata.uid.clone();
        let owned = |m: &kube::api::ObjectMeta| {
            m.namespace.as_deref() == Some(ns)
                && m.owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.controller == Some(true) && Some(&r.uid) == uid.as_ref())
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| owned(&p.metadata))
            .collect();
        let revs: Vec<Arc<ControllerRevision>> = self
            .revisions
            .state()
            .into_iter()
            .filter(|r| owned(&r.metadata))
            .collect();
        let revisions = self.revisions(&set, &revs).await?;
        let satisfied = self.expectations.satisfied(key, |u| {
            match pods.iter().find(|p| p.metadata.uid.as_deref() == Some(u)) {
                None => Observed::Absent,
                Some(p) if p.metadata.deletion_timestamp.is_some() => Observed::Terminating,
                Some(_) => Observed::Present,
            }
        });
        if satisfied {
            self.update_pods(key, &set, &pods, &revisions).await?;
        }
        self.write_status(&set, &pods, &revisions).await
    }

    /// Finds or records the revision of the current template; the current revision is
    /// the one the status names (or the update revision for a new set).
    async fn revisions(
        &self,
        set: &StatefulSet,
        revs: &[Arc<ControllerRevision>],
    ) -> anyhow::Result<Revisions> {
        let data = revision::patch_of(set);
        let update = match revs.iter().find(|r| revision::same_data(r, &data)) {
            Some(r) => r.as_ref().clone(),
            None => {
                let next = revs.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
                let rev = revision::new_revision(set, next);
                let ns = set.metadata.namespace.as_deref().unwrap_or_default();
                let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), ns);
                match api.create(&PostParams::default(), &rev).await {
                    Ok(made) => made,
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        api.get(rev.metadata.name.as_deref().unwrap_or_default())
                            .await?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
        let current = revs
            .iter()
            .find(|r| r.metadata.name.is_some() && r.metadata.name == current_name)
            .map(|r| r.as_ref().clone())
            .unwrap_or_else(|| update.clone());
        Ok(Revisions { current, update })
    }

    /// Which revision the pod for `ordinal` is made from.
    fn revision_for<'a>(
        &self,
        set: &StatefulSet,
        r: &'a Revisions,
        ordinal: i32,
    ) -> &'a ControllerRevision {
        let spec = set.spec.clone().unwrap_or_default();
        let strategy = spec.update_strategy.unwrap_or_default();
        let start = pods::ordinal_range(set).start;
        let rolling = strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate";
        let current_replicas = set
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0);
        let keep_current = rolling
            && match strategy.rolling_update.as_ref().and_then(|u| u.partition) {
                Some(p) => ordinal < start + p,
                None => ordinal < start + current_replicas,
            };
        if keep_current { &r.current } else { &r.update }
    }

    /// Creates, replaces and removes pods (see the module docs for the order).
    async fn update_pods(
        &self,
        key: &str,
        set: &StatefulSet,
        all: &[Arc<Pod>],
        r: &Revisions,
    ) -> anyhow::Result<()> {
        let range = pods::ordinal_range(set);
        let spec = set.spec.clone().unwrap_or_default();
        let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
        let mut replicas: BTreeMap<i32, &Pod> = BTreeMap::new();
        let mut condemned: Vec<(i32, &Pod)> = vec![];
        for p in all {
            match pods::ordinal_of(set, p) {
                Some(o) if range.contains(&o) => {
                    replicas.insert(o, p);
                }
                Some(o) => condemned.push((o, p)),
                None => {}
            }
        }
        for ord in range.clone() {
            match replicas.get(&ord) {
                None => {
                    let rev = self.revision_for(set, r, ord);
                    self.create_pod(key, set, rev, ord).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(p) if is_finished(p) && p.metadata.deletion_timestamp.is_none() => {
                    self.delete_pod(key, set, p).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(p)
                    if monotonic
                        && (p.metadata.deletion_timestamp.is_some()
                            || !is_running_and_ready(p)) =>
                {
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        condemned.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
        for (_, p) in &condemned {
            if p.metadata.deletion_timestamp.is_some() {
                if monotonic {
                    return Ok(());
                }
                continue;
            }
            self.delete_pod(key, set, p).await?;
            if monotonic {
                return Ok(());
            }
        }
        self.rolling_update(key, set, &replicas, r).await
    }

    /// Replaces the highest pod at or above the partition that is not at the update
    /// revision, once every pod is running and ready.
    async fn rolling_update(
        &self,
        key: &str,
        set: &StatefulSet,
        replicas: &BTreeMap<i32, &Pod>,
        r: &Revisions,
    ) -> anyhow::Result<()> {
        let strategy = set
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.clone())
            .unwrap_or_default();
        if strategy.type_.as_deref() == Some("OnDelete") {
            return Ok(());
        }
        if replicas
            .values()
            .any(|p| p.metadata.deletion_timestamp.is_some() || !is_running_and_ready(p))
        {
            return Ok(());
        }
        let start = pods::ordinal_range(set).start;
        let partition = strategy
            .rolling_update
            .and_then(|u| u.partition)
            .unwrap_or(0);
        let update = r.update.metadata.name.as_deref();
        for (ord, p) in replicas.iter().rev() {
            if *ord < start + partition {
                break;
            }
            if revision_of(p) != update {
                return self.delete_pod(key, set, p).await;
            }
        }
        Ok(())
    }

    async fn create_pod(
        &self,
        key: &str,
        set: &StatefulSet,
        rev: &ControllerRevision,
        ord: i32,
    ) -> anyhow::Result<()> {
        let ns = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_name = pods::set_name(set);
        let pod_name = format!("{set_name}-{ord}");
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        for claim in pods::claims_for(set, ord) {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            match claims.create(&PostParams::default(), &claim).await {
                Ok(_) => {
                    let msg = format!(
                        "create Claim {cname} Pod {pod_name} in StatefulSet {set_name} success"
                    );
                    self.recorder
                        .record(set, NORMAL, "SuccessfulCreate", &msg)
                        .await;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => {
                    let msg = format!(
                        "create Claim {cname} for Pod {pod_name} in StatefulSet {set_name} failed error: {e}"
                    );
                    self.recorder
                        .record(set, WARNING, "FailedCreate", &msg)
                        .await;
                    return Err(e.into());
                }
            }
        }
        let template = pods::template_of(rev);
        let rev_name = rev.metadata.name.clone().unwrap_or_default();
        let pod = pods::new_pod(set, &template, &rev_name, ord);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        match api.create(&PostParams::default(), &pod).await {
            Ok(made) => {
                self.expectations
                    .expect_creations(key, made.metadata.uid.clone());
                let msg = format!("create Pod {pod_name} in StatefulSet {set_name} successful");
                self.recorder
                    .record(set, NORMAL, "SuccessfulCreate", &msg)
                    .await;
                Ok(())
            }
            Err(e) => {
                let msg =
                    format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}");
                self.recorder
                    .record(set, WARNING, "FailedCreate", &msg)
                    .await;
                Err(e.into())
            }
        }
    }

    async fn delete_pod(&self, key: &str, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let ns = set.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        self.expectations
            .expect_deletions(key, pod.metadata.uid.clone());
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let msg = format!(
            "delete Pod {name} in StatefulSet {} successful",
            pods::set_name(set)
        );
        self.recorder
            .record(set, NORMAL, "SuccessfulDelete", &msg)
            .await;
        Ok(())
    }

    async fn write_status(
        &self,
        set: &StatefulSet,
        all: &[Arc<Pod>],
        r: &Revisions,
    ) -> anyhow::Result<()> {
        let status = compute_status(set, all, r);
        if set.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut fresh = set.clone();
        fresh.status = Some(status);
        let ns = set.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
        api.replace_status(pods::set_name(set), &PostParams::default(), &fresh)
            .await?;
        Ok(())
    }
}

/// The status upstream reports for the set's pods.
fn compute_status(set: &StatefulSet, all: &[Arc<Pod>], r: &Revisions) -> StatefulSetStatus {
    let spec = set.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = crate::common::now();
    let live: Vec<&Pod> = all
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let count = |f: &dyn Fn(&Pod) -> bool| live.iter().filter(|p| f(p)).count() as i32;
    let current = r.current.metadata.name.clone();
    let update = r.update.metadata.name.clone();
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas: live.len() as i32,
        ready_replicas: Some(count(&|p| is_running_and_ready(p))),
        available_replicas: Some(count(&|p| {
            is_running_and_ready(p) && crate::common::pods::is_pod_available(p, min_ready, now)
        })),
        current_replicas: Some(count(&|p| revision_of(p) == current.as_deref())),
        updated_replicas: Some(count(&|p| revision_of(p) == update.as_deref())),
        current_revision: current,
        update_revision: update,
        collision_count: Some(
            set.status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0),
        ),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    let rolling = spec.update_strategy.and_then(|s| s.type_).as_deref() != Some("OnDelete");
    if rolling
        && status.updated_replicas == Some(status.replicas)
        && status.ready_replicas == Some(status.replicas)
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
    status
}
