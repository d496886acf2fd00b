//! The node-lifecycle controller, as upstream's `pkg/controller/nodelifecycle`: it watches
//! each node's signs of life and acts when a node goes quiet or unhealthy.
//!
//! - **Health** ([`health`]): every `--node-monitor-period` each node's Ready heartbeat
//!   and its Lease in `kube-node-lease` are checked; a node silent for longer than
//!   `--node-monitor-grace-period` (`--node-startup-grace-period` before it first reports)
//!   gets Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown, its pods are
//!   marked not Ready ([`pods`]), and `NodeNotReady` is recorded.
//! - **Taints** ([`taints`]): NoSchedule taints mirror the node's conditions and
//!   `spec.unschedulable`, on every node change; NoExecute `not-ready`/`unreachable`
//!   taints are added to unhealthy nodes at a rate-limited pace per zone and removed when
//!   they are Ready again. Deleting the pods is the taint-eviction controller's job.
//! - **Zones** ([`zones`]): the eviction pace follows how disrupted each zone is; when
//!   every zone is down, nothing is evicted at all.
//!
//! It also keeps the deprecated beta OS/arch labels in step with the GA ones, as upstream.

pub mod health;
mod monitor;
pub mod pods;
pub mod taints;
pub mod zones;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::Context;
use crate::common::{EventRecorder, is_not_found};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};
use health::{Grace, NodeHealth};
use zones::{RateLimitedTimedQueue, Rates};

/// The controller's name in logs; events come from `node-controller`, as upstream's.
const NAME: &str = "node-lifecycle-controller";
const EVENT_SOURCE: &str = "node-controller";
/// Where kubelets keep their heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Workers for node changes and for newly bound pods (upstream's sizes).
const NODE_WORKERS: usize = 8;
const POD_WORKERS: usize = 4;
/// How often queued nodes get their NoExecute taints (upstream's `NodeEvictionPeriod`).
const TAINT_PERIOD: Duration = Duration::from_millis(100);

/// Label pairs kept equal: the deprecated beta label follows the GA one.
const LABEL_RECONCILE: [(&str, &str); 2] = [
    ("kubernetes.io/os", "beta.kubernetes.io/os"),
    ("kubernetes.io/arch", "beta.kubernetes.io/arch"),
];

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

/// The flags this controller reads.
#[derive(Clone, Copy, Debug)]
struct Config {
    grace: Grace,
    monitor_period: Duration,
    rates: Rates,
    unhealthy_zone_threshold: f32,
}

struct Controller {
    client: kube::Client,
    recorder: EventRecorder,
    config: Config,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    /// What we know of each node's signs of life.
    health: Mutex<HashMap<String, NodeHealth>>,
    /// Per zone, the nodes waiting for their NoExecute taint.
    tainters: Mutex<HashMap<String, RateLimitedTimedQueue>>,
    /// Nodes whose pods could not all be marked not Ready.
    retry: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pod_node(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let o = &ctx.options;
    let config = Config {
        grace: Grace {
            monitor: o.node_monitor_grace_period,
            startup: o.node_startup_grace_period,
        },
        monitor_period: o.node_monitor_period.max(Duration::from_millis(100)),
        rates: Rates {
            eviction_qps: o.node_eviction_rate,
            secondary_qps: o.secondary_node_eviction_rate,
            large_cluster_threshold: o.large_cluster_size_threshold,
        },
        unhealthy_zone_threshold: o.unhealthy_zone_threshold,
    };
    let client = ctx.client.clone();
    let node_queue = WorkQueue::new();
    let pod_queue = WorkQueue::new();

    let q = node_queue.clone();
    let nodes = informer(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(n) | Event::InitApply(n) = ev {
                q.add(key_of(n));
            }
        },
    );
    let leases = informer(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        watcher::Config::default(),
        |_| {},
    );
    // A pod newly bound to a node (or moved) is checked against that node's health.
    let q = pod_queue.clone();
    let bound: Mutex<HashMap<String, String>> = Mutex::default();
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |ev| match ev {
            Event::Apply(p) | Event::InitApply(p) => {
                let node = pod_node(p);
                if node.is_empty() {
                    return;
                }
                let key = key_of(p);
                let mut bound = lock(&bound);
                if bound.get(&key).map(String::as_str) != Some(node) {
                    bound.insert(key.clone(), node.to_string());
                    q.add(key);
                }
            }
            Event::Delete(p) => {
                lock(&bound).remove(&key_of(p));
            }
            Event::Init | Event::InitDone => {}
        },
    );
    leases.wait_until_ready().await?;
    nodes.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    tracing::info!(controller = NAME, "caches synced");

    let ctrl = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), EVENT_SOURCE),
        client,
        config,
        nodes,
        leases,
        pods,
        health: Mutex::default(),
        tainters: Mutex::default(),
        retry: Mutex::default(),
    });
    let c = ctrl.clone();
    let node_workers = node_queue.run(NODE_WORKERS, NAME, move |name| {
        let c = c.clone();
        async move { c.sync_node(&name).await }
    });
    let c = ctrl.clone();
    let pod_workers = pod_queue.run(POD_WORKERS, NAME, move |key| {
        let c = c.clone();
        async move { c.sync_pod(&key).await }
    });
    let c = ctrl.clone();
    let tainting = async move {
        let mut tick = tokio::time::interval(TAINT_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            c.no_execute_tainting_pass().await;
        }
    };
    let c = ctrl.clone();
    let monitoring = async move {
        let mut state = monitor::MonitorState::default();
        let mut tick = tokio::time::interval(c.config.monitor_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            c.monitor_node_health(&mut state).await;
        }
    };
    futures::join!(node_workers, pod_workers, tainting, monitoring);
    Ok(())
}

/// The beta labels to set so that they follow the GA OS and arch labels.
pub fn labels_to_reconcile(node: &Node) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(labels) = node.metadata.labels.as_ref() else {
        return out;
    };
    for (primary, secondary) in LABEL_RECONCILE {
        if let Some(value) = labels.get(primary)
            && labels.get(secondary) != Some(value)
        {
            out.insert(secondary.to_string(), value.clone());
        }
    }
    out
}

impl Controller {
    /// A node changed: its NoSchedule taints follow its conditions, its beta labels the
    /// GA ones.
    async fn sync_node(&self, name: &str) -> anyhow::Result<()> {
        let Some(node) = self.nodes.get(&ObjectRef::new(name)) else {
            return Ok(());
        };
        let (add, remove) = taints::no_schedule_changes(&node);
        if !add.is_empty() || !remove.is_empty() {
            taints::swap_taints(&self.client, &self.nodes, name, &add, &remove).await?;
        }
        let labels = labels_to_reconcile(&node);
        if !labels.is_empty() {
            let api: Api<Node> = Api::all(self.client.clone());
            let patch = json!({"metadata": {"labels": labels}});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Err(e) if !is_not_found(&e) => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// A pod was bound to a node: if that node is not Ready, neither is the pod.
    async fn sync_pod(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(());
        };
        let node = pod_node(&pod);
        let Some(health) = lock(&self.health).get(node).cloned() else {
            // not looked at yet (or gone): the next pass over the node covers the pod
            return Ok(());
        };
        if self.nodes.get(&ObjectRef::new(node)).is_none() {
            anyhow::bail!("node {node} of pod {key} is not in the cache");
        }
        match health.ready {
            Some(ready) if ready.status != "True" => {
                pods::mark_pods_not_ready(
                    &self.client,
                    &self.recorder,
                    std::slice::from_ref(&pod),
                    node,
                )
                .await
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_have_upstream_defaults() {
        use clap::Parser;
        let o = crate::Options::try_parse_from(["kube-controller-manager"]).expect("parse");
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(50));
        assert_eq!(o.node_startup_grace_period, Duration::from_secs(60));
        assert_eq!(o.node_monitor_period, Duration::from_secs(5));
        assert_eq!(o.node_eviction_rate, 0.1);
        assert_eq!(o.secondary_node_eviction_rate, 0.01);
        assert_eq!(o.large_cluster_size_threshold, 50);
        assert_eq!(o.unhealthy_zone_threshold, 0.55);
        let o = crate::Options::try_parse_from([
            "kube-controller-manager",
            "--node-startup-grace-period=2m",
            "--node-eviction-rate=0.5",
        ])
        .expect("parse");
        assert_eq!(o.node_startup_grace_period, Duration::from_secs(120));
        assert_eq!(o.node_eviction_rate, 0.5);
    }

    #[test]
    fn beta_labels_follow_ga_labels() {
        let n: Node = serde_json::from_value(json!({"metadata": {"name": "n", "labels": {
            "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/arch": "arm64"}}}))
        .expect("node");
        let want: BTreeMap<String, String> = [
            ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
            ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ]
        .into();
        assert_eq!(labels_to_reconcile(&n), want);
        assert!(labels_to_reconcile(&Node::default()).is_empty());
    }
}
