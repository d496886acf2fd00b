//! One task per simulated node keeps it alive as a kubelet does: registers the Node,
//! creates its Lease in `kube-node-lease` (owned by the Node), renews it every quarter of
//! the lease duration, and rewrites the Ready heartbeat every report interval. Tasks
//! start at staggered offsets so N nodes spread their writes evenly over the interval.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Semaphore;

use super::nodes::{self, SimNode};

/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Settings shared by every node's heartbeat task.
pub struct HeartbeatConfig {
    pub lease_duration_seconds: i32,
    pub report_frequency: Duration,
    /// Caps the API writes in flight across all nodes.
    pub writes: Arc<Semaphore>,
}

impl HeartbeatConfig {
    /// The kubelet renews at a quarter of the lease duration (10 s for 40 s).
    pub fn renew_interval(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.lease_duration_seconds.max(1)) / 4.0)
    }
}

fn lease_object(node: &Node, duration: i32) -> anyhow::Result<Lease> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let uid = node.metadata.uid.clone().unwrap_or_default();
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": duration,
            "renewTime": MicroTime(Timestamp::now()),
        },
    }))?)
}

/// Renews the node's lease, creating it when missing (or gone).
async fn renew(leases: &Api<Lease>, node: &Node, duration: i32) -> anyhow::Result<()> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let patch = json!({"spec": {
        "holderIdentity": name,
        "leaseDurationSeconds": duration,
        "renewTime": MicroTime(Timestamp::now()),
    }});
    match leases
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let lease = lease_object(node, duration)?;
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(e).with_context(|| format!("creating the lease of node {name}")),
            }
        }
        Err(e) => Err(e).with_context(|| format!("renewing the lease of node {name}")),
    }
}

/// Registers the node, retrying until it succeeds. Errors back off up to 10 s.
async fn register_until_done(api: &Api<Node>, node: &SimNode, cfg: &HeartbeatConfig) -> Node {
    let mut backoff = Duration::from_millis(200);
    loop {
        let result = {
            let _permit = cfg.writes.acquire().await;
            nodes::register(api, node).await
        };
        match result {
            Ok(n) => return n,
            Err(e) => {
                tracing::warn!(node = %node.spec.name, "registration failed, retrying: {e:#}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Keeps one node alive forever: registration, then lease renewals and heartbeats,
/// starting after `offset` so that nodes' writes interleave.
pub async fn run_node(client: Client, node: SimNode, cfg: Arc<HeartbeatConfig>, offset: Duration) {
    let nodes_api: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut current = register_until_done(&nodes_api, &node, &cfg).await;
    tracing::debug!(node = %node.spec.name, "registered");
    // the lease exists as soon as the node does; renewals then follow the stagger
    {
        let _permit = cfg.writes.acquire().await;
        if let Err(e) = renew(&leases, &current, cfg.lease_duration_seconds).await {
            tracing::warn!(node = %node.spec.name, "{e:#}");
        }
    }
    let mut last_report = tokio::time::Instant::now();
    let period = cfg.renew_interval();
    let mut tick = tokio::time::interval_at(last_report + period + offset, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let permit = cfg.writes.acquire().await;
        if let Err(e) = renew(&leases, &current, cfg.lease_duration_seconds).await {
            tracing::warn!(node = %node.spec.name, "{e:#}");
        }
        if last_report.elapsed() < cfg.report_frequency {
            continue;
        }
        match nodes::heartbeat(&nodes_api, &node, &current).await {
            Ok(n) => {
                current = n;
                last_report = tokio::time::Instant::now();
            }
            Err(e) if is_not_found(&e) => {
                tracing::warn!(node = %node.spec.name, "node was deleted; registering it again");
                drop(permit);
                current = register_until_done(&nodes_api, &node, &cfg).await;
                last_report = tokio::time::Instant::now();
            }
            Err(e) => tracing::warn!(node = %node.spec.name, "{e:#}"),
        }
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<kube::Error>()
        .is_some_and(|e| matches!(e, kube::Error::Api(s) if s.code == 404))
}
