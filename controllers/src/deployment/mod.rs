//! The Deployment controller (upstream's `pkg/controller/deployment`).
//!
//! Each sync claims the ReplicaSets matching the Deployment's selector, finds the one
//! whose template equals the Deployment's (the *new* ReplicaSet, named
//! `<deployment>-<pod-template-hash>`), and then, as upstream's `syncDeployment`:
//! being deleted -> status only; paused or a scaling event -> proportional scaling;
//! otherwise a `Recreate` or `RollingUpdate` rollout step ([`rollout`]). Status and
//! conditions come from [`progress`]; the pure arithmetic lives in [`util`].

pub mod progress;
pub mod rollout;
pub mod util;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::Context;
use crate::common::controller_ref::{controller_of, recheck_owner};
use crate::common::{self, EventRecorder, OwnerInfo, ReconcileError, events};

pub const COMPONENT: &str = "deployment-controller";

/// Entry point of `deployment`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run_controller(ctx))
}

/// What every sync shares: the client, caches and the event recorder.
pub struct Shared {
    pub client: kube::Client,
    pub rss: Store<ReplicaSet>,
    pub pods: Store<Pod>,
    /// Open once the caches above hold their first lists.
    pub rss_ready: common::ReadyGate,
    pub pods_ready: common::ReadyGate,
    pub recorder: EventRecorder,
}

async fn run_controller(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let (rss, rs_writer) = reflector::store();
    let rs_events = reflector::reflector(
        rs_writer,
        watcher(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let (pods, pod_writer) = reflector::store();
    let pod_events = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let n = ctx.options.concurrent_deployment_syncs.max(1) as u16;
    let controller = Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_config(controller::Config::default().concurrency(n));
    let deployments = controller.store();
    let (for_rs, for_pod, rs_lookup) = (deployments.clone(), deployments, rss.clone());
    let shared = Arc::new(Shared {
        recorder: EventRecorder::new(client.clone(), COMPONENT),
        client,
        rss_ready: common::ReadyGate::of(&rss),
        pods_ready: common::ReadyGate::of(&pods),
        rss,
        pods,
    });
    controller
        .watches_stream(rs_events, move |rs: ReplicaSet| {
            deployments_of_rs(&for_rs, &rs)
        })
        .watches_stream(pod_events, move |pod: Pod| {
            deployment_of_pod(&for_pod, &rs_lookup, &pod)
        })
        .run(reconcile, error_policy, shared)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "deployment sync failed");
            }
        })
        .await;
    Ok(())
}

/// A ReplicaSet's controller, or for an orphan every Deployment that would adopt it.
fn deployments_of_rs(
    deployments: &Store<Deployment>,
    rs: &ReplicaSet,
) -> Vec<ObjectRef<Deployment>> {
    let ns = rs.namespace().unwrap_or_default();
    if let Some(r) = controller_of(&rs.metadata) {
        return if r.kind == "Deployment" {
            vec![ObjectRef::new(&r.name).within(&ns)]
        } else {
            vec![]
        };
    }
    deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
        .filter(|d| {
            common::selector_opt(d.spec.as_ref().map(|s| &s.selector))
                .is_some_and(|s| common::matches(&s, rs.metadata.labels.as_ref()))
        })
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

/// A pod matters to its ReplicaSet's Deployment (Recreate waits for old pods to go).
fn deployment_of_pod(
    deployments: &Store<Deployment>,
    rss: &Store<ReplicaSet>,
    pod: &Pod,
) -> Option<ObjectRef<Deployment>> {
    let r = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet")?;
    let ns = pod.namespace().unwrap_or_default();
    let rs = rss.get(&ObjectRef::new(&r.name).within(&ns))?;
    let d = controller_of(&rs.metadata).filter(|d| d.kind == "Deployment")?;
    let key = ObjectRef::new(&d.name).within(&ns);
    // only Recreate deployments care about individual pods
    let dep = deployments.get(&key)?;
    (!util::is_rolling_update(&dep)).then_some(key)
}

fn error_policy(d: Arc<Deployment>, err: &ReconcileError, _: Arc<Shared>) -> Action {
    tracing::warn!(deployment = %d.name_any(), error = %err, "sync failed, requeueing");
    Action::requeue(Duration::from_secs(5))
}

/// One sync of one Deployment: the mutable view of it and its API handles.
pub struct Sync<'a> {
    pub sh: &'a Shared,
    pub d: Deployment,
    pub rs_api: Api<ReplicaSet>,
    pub d_api: Api<Deployment>,
}

async fn reconcile(d: Arc<Deployment>, sh: Arc<Shared>) -> Result<Action, ReconcileError> {
    let started = std::time::Instant::now();
    let key = common::key(d.namespace().as_deref(), &d.name_any());
    let result = sync_deployment(d, sh).await;
    // upstream logs this at V(4)
    tracing::debug!(deployment = %key, duration = ?started.elapsed(), "Finished syncing deployment");
    result
}

async fn sync_deployment(d: Arc<Deployment>, sh: Arc<Shared>) -> Result<Action, ReconcileError> {
    sh.rss_ready
        .wait()
        .await
        .map_err(|e| anyhow::anyhow!("rs cache: {e}"))?;
    sh.pods_ready
        .wait()
        .await
        .map_err(|e| anyhow::anyhow!("pod cache: {e}"))?;
    let ns = d.namespace().unwrap_or_default();
    let mut s = Sync {
        sh: &sh,
        d: d.as_ref().clone(),
        rs_api: Api::namespaced(sh.client.clone(), &ns),
        d_api: Api::namespaced(sh.client.clone(), &ns),
    };
    let selector = d.spec.as_ref().map(|s| &s.selector);
    if selector.is_some_and(|s| {
        s.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
    }) {
        let msg = "This deployment is selecting all pods. A non-empty selector is required.";
        sh.recorder
            .record(d.as_ref(), events::WARNING, "SelectingAll", msg)
            .await;
        return Ok(Action::await_change());
    }
    let rss = s.claim_replica_sets().await?;
    let status = if d.metadata.deletion_timestamp.is_some() {
        rollout::sync_status_only(&mut s, rss).await?
    } else {
        s.check_paused_conditions().await?;
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || rollout::is_scaling_event(&s, &rss) {
            rollout::sync_scale(&mut s, rss).await?
        } else if util::is_rolling_update(&d) {
            rollout::rollout_rolling(&mut s, rss).await?
        } else {
            rollout::rollout_recreate(&mut s, rss).await?
        }
    };
    Ok(match progress::requeue_stuck(&s.d, &status) {
        Some(after) => Action::requeue(after),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

impl Sync<'_> {
    pub fn name(&self) -> String {
        self.d.name_any()
    }

    /// The ReplicaSets this Deployment controls, adopting and releasing as upstream.
    async fn claim_replica_sets(&self) -> anyhow::Result<Vec<ReplicaSet>> {
        let ns = self.d.namespace();
        let Some(selector) = common::selector_opt(self.d.spec.as_ref().map(|s| &s.selector)) else {
            anyhow::bail!("deployment {} has an invalid selector", self.name());
        };
        let candidates: Vec<Arc<ReplicaSet>> = self
            .sh
            .rss
            .state()
            .into_iter()
            .filter(|rs| rs.namespace() == ns)
            .collect();
        let owner = OwnerInfo::of(&self.d);
        let claimed = common::claim(&self.rs_api, &owner, &selector, candidates, || {
            recheck_owner(&self.d_api, &owner)
        })
        .await?;
        Ok(claimed.iter().map(|rs| rs.as_ref().clone()).collect())
    }

    /// Writes `status` when it differs from the current one.
    pub async fn update_status(&mut self, status: DeploymentStatus) -> anyhow::Result<()> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut d = self.d.clone();
        d.status = Some(status);
        self.d = self
            .d_api
            .replace_status(&self.name(), &PostParams::default(), &d)
            .await?;
        Ok(())
    }

    /// Records the revision on the Deployment (`deployment.kubernetes.io/revision`).
    pub async fn set_revision(&mut self, revision: i64) -> anyhow::Result<()> {
        let rev = revision.to_string();
        let current = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(util::REVISION));
        if current == Some(&rev) {
            return Ok(());
        }
        // an update, as upstream (its deployment-controller role may update, not patch);
        // a conflict requeues the sync, which then sees the newer object
        let mut d = self.d.clone();
        d.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(util::REVISION.to_string(), rev);
        self.d = self
            .d_api
            .replace(&self.name(), &PostParams::default(), &d)
            .await?;
        Ok(())
    }

    async fn check_paused_conditions(&mut self) -> anyhow::Result<()> {
        let Some(c) = progress::paused_condition(&self.d) else {
            return Ok(());
        };
        let mut status = self.d.status.clone().unwrap_or_default();
        progress::set_condition(&mut status, c);
        self.update_status(status).await
    }

    pub async fn event(&self, type_: &str, reason: &str, message: &str) {
        self.sh
            .recorder
            .record(&self.d, type_, reason, message)
            .await;
    }
}
