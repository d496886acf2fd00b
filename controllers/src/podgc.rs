//! The pod garbage collector: every 20 seconds, as upstream's, it deletes (1) terminated
//! pods beyond `--terminated-pod-gc-threshold`, oldest first; (2) pods bound to nodes
//! that no longer exist, after marking them Failed with a `DisruptionTarget` condition
//! (reason `DeletionByPodGC`); (3) terminating pods that were never scheduled, at once.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;

use crate::Context;
use crate::workqueue::informer;

const GC_PERIOD: Duration = Duration::from_secs(20);

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        |_| {},
    );
    let nodes = informer(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        |_| {},
    );
    pods.wait_until_ready().await?;
    nodes.wait_until_ready().await?;
    let threshold = ctx.options.terminated_pod_gc_threshold;
    loop {
        if let Err(e) = gc(&client, &pods, &nodes, threshold).await {
            tracing::info!(error = %format!("{e:#}"), "pod garbage collection");
        }
        tokio::time::sleep(GC_PERIOD).await;
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The terminated pods to delete so that at most `threshold` remain, oldest first
/// (threshold <= 0 disables this).
pub fn over_threshold(pods: &[Arc<Pod>], threshold: i64) -> Vec<Arc<Pod>> {
    if threshold <= 0 {
        return vec![];
    }
    let mut done: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| {
            matches!(phase(p), "Succeeded" | "Failed") && p.metadata.deletion_timestamp.is_none()
        })
        .cloned()
        .collect();
    let excess = done.len().saturating_sub(threshold as usize);
    done.sort_by_key(|p| {
        (
            p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            p.metadata.name.clone(),
        )
    });
    done.truncate(excess);
    done
}

async fn force_delete(client: &kube::Client, p: &Pod) -> anyhow::Result<()> {
    let ns = p.metadata.namespace.as_deref().unwrap_or_default();
    let name = p.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api
        .delete(name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn gc(
    client: &kube::Client,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    threshold: i64,
) -> anyhow::Result<()> {
    let all = pods.state();
    for p in over_threshold(&all, threshold) {
        tracing::info!(pod = ?p.metadata.name, "deleting terminated pod over the threshold");
        force_delete(client, &p).await?;
    }
    for p in &all {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        match node {
            Some(n) if nodes.get(&ObjectRef::new(&n)).is_none() => {
                if !matches!(phase(p), "Succeeded" | "Failed") {
                    mark_failed(client, p).await?;
                }
                tracing::info!(pod = ?p.metadata.name, node = %n, "deleting orphaned pod");
                force_delete(client, p).await?;
            }
            None if p.metadata.deletion_timestamp.is_some() => {
                tracing::info!(pod = ?p.metadata.name, "deleting unscheduled terminating pod");
                force_delete(client, p).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Marks an orphaned pod Failed with the DisruptionTarget condition upstream adds.
async fn mark_failed(client: &kube::Client, p: &Pod) -> anyhow::Result<()> {
    let ns = p.metadata.namespace.as_deref().unwrap_or_default();
    let name = p.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = crate::common::now().to_string();
    let mut conditions = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    let mut conditions = serde_json::to_value(conditions)?;
    if let Some(list) = conditions.as_array_mut() {
        list.push(
            json!({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": now}),
        );
    }
    let patch = json!({"status": {"phase": "Failed", "conditions": conditions}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "status": {"phase": phase},
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn oldest_terminated_pods_over_the_threshold() {
        let pods = vec![
            pod("new", "Succeeded", "2024-01-03T00:00:00Z"),
            pod("old", "Failed", "2024-01-01T00:00:00Z"),
            pod("mid", "Succeeded", "2024-01-02T00:00:00Z"),
            pod("run", "Running", "2023-01-01T00:00:00Z"),
        ];
        let names = |v: Vec<Arc<Pod>>| -> Vec<String> {
            v.iter().filter_map(|p| p.metadata.name.clone()).collect()
        };
        assert_eq!(names(over_threshold(&pods, 1)), ["old", "mid"]);
        assert!(over_threshold(&pods, 3).is_empty());
        assert!(over_threshold(&pods, 0).is_empty());
    }
}
