//! The DaemonSet controller: one pod per eligible node (see [`nodes`]), removed from
//! nodes it no longer belongs on, failed pods replaced, revisions kept as
//! ControllerRevisions `<ds>-<hash>` with the hash in the pods' `controller-revision-hash`
//! label, RollingUpdate within `maxUnavailable` (OnDelete: only new pods get the new
//! revision), and upstream's status counts.

pub mod nodes;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::common::events::{EventRecorder, NORMAL, WARNING};
use crate::common::expectations::Observed;
use crate::common::{Expectations, OwnerInfo};
use crate::statefulset::revision;
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

const HASH_LABEL: &str = "controller-revision-hash";
const GENERATION_LABEL: &str = "pod-template-generation";

struct Controller {
    client: kube::Client,
    sets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    recorder: EventRecorder,
    expectations: Expectations,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let sets = informer(
        Api::<DaemonSet>::all(client.clone()),
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
                && let Some(r) = p
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|r| r.controller == Some(true) && r.kind == "DaemonSet")
            {
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                q.add(format!("{ns}/{}", r.name));
            }
        },
    );
    let (q, all_sets) = (queue.clone(), sets.clone());
    let nodes = informer(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(_) | Event::Delete(_) = ev {
                all_sets
                    .state()
                    .iter()
                    .for_each(|s| q.add(key_of(s.as_ref())));
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
    nodes.wait_until_ready().await?;
    revisions.wait_until_ready().await?;
    let c = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), "daemonset-controller"),
        client,
        sets,
        pods,
        nodes,
        revisions,
        expectations: Expectations::new(),
    });
    queue
        .run(
            ctx.options.concurrent_daemonset_syncs,
            "daemonset",
            move |key| {
                let c = c.clone();
                async move { c.sync(&key).await }
            },
        )
        .await;
    Ok(())
}

fn hash_of(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(HASH_LABEL)
        .map(String::as_str)
}

fn is_failed(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(ds) = self.sets.get(&ObjectRef::new(name).within(ns)) else {
            self.expectations.forget(key);
            return Ok(());
        };
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let owner = OwnerInfo::of(ds.as_ref());
        let owned =
            |m: &kube::api::ObjectMeta| m.namespace.as_deref() == Some(ns) && owner.controls(m);
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| owned(&p.metadata))
            .collect();
        let hash = self.update_hash(&ds, &owner).await?;
        let satisfied = self.expectations.satisfied(key, |u| {
            match pods.iter().find(|p| p.metadata.uid.as_deref() == Some(u)) {
                None => Observed::Absent,
                Some(p) if p.metadata.deletion_timestamp.is_some() => Observed::Terminating,
                Some(_) => Observed::Present,
            }
        });
        let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        for p in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            if let Some(n) = nodes::node_of(p) {
                by_node.entry(n).or_default().push(p);
            }
        }
        if satisfied {
            self.manage(key, &ds, &owner, &by_node, &hash).await?;
        }
        self.write_status(&ds, &by_node, &hash).await
    }

    /// The hash of the revision recording the current template (made if new).
    async fn update_hash(&self, ds: &DaemonSet, owner: &OwnerInfo) -> anyhow::Result<String> {
        let template = ds.spec.as_ref().map(|s| &s.template);
        let data = revision::template_patch(template);
        let revs: Vec<Arc<ControllerRevision>> = self
            .revisions
            .state()
            .into_iter()
            .filter(|r| owner.controls(&r.metadata))
            .collect();
        let rev = match revs.iter().find(|r| revision::same_data(r, &data)) {
            Some(r) => r.as_ref().clone(),
            None => {
                let next = revs.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
                let labels = template
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
                let rev = revision::make_revision(owner, data, labels, collisions, next);
                let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
                let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), ns);
                match api.create(&PostParams::default(), &rev).await {
                    Ok(made) => made,
                    Err(kube::Error::Api(s)) if s.code == 409 => rev,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let name = rev.metadata.name.unwrap_or_default();
        Ok(name
            .strip_prefix(&format!("{}-", owner.name))
            .unwrap_or(&name)
            .to_string())
    }

    async fn manage(
        &self,
        key: &str,
        ds: &DaemonSet,
        owner: &OwnerInfo,
        by_node: &BTreeMap<String, Vec<&Pod>>,
        hash: &str,
    ) -> anyhow::Result<()> {
        let spec = ds.spec.clone().unwrap_or_default();
        let mut create = vec![];
        let mut delete: Vec<&Pod> = vec![];
        let mut desired = 0usize;
        let mut unavailable = 0usize;
        let mut old: Vec<(&Pod, bool)> = vec![];
        let now = crate::common::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        for node in self.nodes.state() {
            let name = node.metadata.name.clone().unwrap_or_default();
            let (run, keep) = nodes::placement(&spec.template, &node);
            let here = by_node.get(&name).cloned().unwrap_or_default();
            desired += usize::from(run);
            if !keep {
                delete.extend(here);
                continue;
            }
            let (failed, live): (Vec<&Pod>, Vec<&Pod>) =
                here.into_iter().partition(|p| is_failed(p));
            delete.extend(failed);
            match live.split_first() {
                None if run => {
                    create.push(name);
                    unavailable += 1;
                }
                None => {}
                Some((first, extra)) => {
                    delete.extend(extra.iter().copied());
                    let available = crate::common::pods::is_pod_available(first, min_ready, now);
                    unavailable += usize::from(run && !available);
                    if hash_of(first) != Some(hash) {
                        old.push((first, available));
                    }
                }
            }
        }
        let known: Vec<String> = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        for (n, ps) in by_node {
            if !known.contains(n) {
                delete.extend(ps.iter().copied());
            }
        }
        let strategy = spec.update_strategy.unwrap_or_default();
        if strategy.type_.as_deref() != Some("OnDelete") {
            let max = strategy.rolling_update.and_then(|r| r.max_unavailable);
            let budget = max_unavailable(max.as_ref(), desired);
            for (p, available) in old {
                if !available {
                    delete.push(p);
                } else if unavailable < budget {
                    delete.push(p);
                    unavailable += 1;
                }
            }
        }
        self.delete_pods(key, ds, &delete).await?;
        self.create_pods(key, ds, owner, &create, hash).await
    }

    async fn create_pods(
        &self,
        key: &str,
        ds: &DaemonSet,
        owner: &OwnerInfo,
        on: &[String],
        hash: &str,
    ) -> anyhow::Result<()> {
        let spec = ds.spec.clone().unwrap_or_default();
        let mut labels = BTreeMap::from([(HASH_LABEL.to_string(), hash.to_string())]);
        if let Some(g) = ds.metadata.generation {
            labels.insert(GENERATION_LABEL.into(), g.to_string());
        }
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        for node in on {
            let pod = nodes::new_pod(owner, &spec.template, node, &labels);
            match api.create(&PostParams::default(), &pod).await {
                Ok(made) => {
                    self.expectations
                        .expect_creations(key, made.metadata.uid.clone());
                    let msg = format!("Created pod: {}", made.metadata.name.unwrap_or_default());
                    self.recorder
                        .record(ds, NORMAL, "SuccessfulCreate", &msg)
                        .await;
                }
                Err(e) => {
                    let msg = format!("Error creating: {}", crate::common::error_message(&e));
                    self.recorder
                        .record(ds, WARNING, "FailedCreate", &msg)
                        .await;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn delete_pods(&self, key: &str, ds: &DaemonSet, victims: &[&Pod]) -> anyhow::Result<()> {
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        self.expectations
            .expect_deletions(key, victims.iter().filter_map(|p| p.metadata.uid.clone()));
        for p in victims {
            let name = p.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => return Err(e.into()),
            }
            let msg = format!("Deleted pod: {name}");
            self.recorder
                .record(ds, NORMAL, "SuccessfulDelete", &msg)
                .await;
        }
        Ok(())
    }

    async fn write_status(
        &self,
        ds: &DaemonSet,
        by_node: &BTreeMap<String, Vec<&Pod>>,
        hash: &str,
    ) -> anyhow::Result<()> {
        let spec = ds.spec.clone().unwrap_or_default();
        let now = crate::common::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let mut st = DaemonSetStatus {
            observed_generation: ds.metadata.generation,
            collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
            ..Default::default()
        };
        let (mut available, mut updated) = (0, 0);
        for node in self.nodes.state() {
            let name = node.metadata.name.clone().unwrap_or_default();
            let (run, _) = nodes::placement(&spec.template, &node);
            let pod = by_node.get(&name).and_then(|ps| ps.first());
            st.desired_number_scheduled += i32::from(run);
            match (run, pod) {
                (true, Some(p)) => {
                    st.current_number_scheduled += 1;
                    st.number_ready += i32::from(crate::common::pods::is_pod_ready(p));
                    available +=
                        i32::from(crate::common::pods::is_pod_available(p, min_ready, now));
                    updated += i32::from(hash_of(p) == Some(hash));
                }
                (false, Some(_)) => st.number_misscheduled += 1,
                _ => {}
            }
        }
        st.number_available = Some(available);
        st.updated_number_scheduled = Some(updated);
        st.number_unavailable = Some(st.desired_number_scheduled - available);
        if ds.status.as_ref() == Some(&st) {
            return Ok(());
        }
        let mut fresh = ds.clone();
        fresh.status = Some(st);
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
        api.replace_status(
            ds.metadata.name.as_deref().unwrap_or_default(),
            &PostParams::default(),
            &fresh,
        )
        .await?;
        Ok(())
    }
}

/// `maxUnavailable` as a number of nodes (percentages of the desired count round up;
/// default 1, at least 1).
fn max_unavailable(v: Option<&IntOrString>, desired: usize) -> usize {
    let n = match v {
        None => 1,
        Some(IntOrString::Int(n)) => (*n).max(0) as usize,
        Some(IntOrString::String(s)) => {
            let pct: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (desired * pct).div_ceil(100)
        }
    };
    n.max(1)
}
