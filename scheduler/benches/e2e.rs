//! End-to-end throughput with the API server in the loop: NODES nodes and PODS pending
//! pods are created first, then the kube-scheduler binary starts and the time until every
//! pod is bound is measured (informer sync, scheduling, binding, events).
//! `NODES=5000 PODS=10000 cargo bench -p kube-scheduler --bench e2e`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let (nodes, pods) = (env_or("NODES", 5000), env_or("PODS", 10000));
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let node_api: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..nodes)
        .map(|i| {
            let api = node_api.clone();
            async move {
                let res = json!({"cpu": "32", "memory": "128Gi", "pods": "110"});
                let n: Node = serde_json::from_value(json!({"metadata": {"name": format!("node-{i}"),
                    "labels": {"kubernetes.io/hostname": format!("node-{i}"), "topology.kubernetes.io/zone": format!("z{}", i % 3)}},
                    "status": {"capacity": res, "allocatable": res}}))
                .expect("node");
                api.create(&PostParams::default(), &n).await.map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("nodes");
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    futures::stream::iter(0..pods)
        .map(|i| {
            let api = pod_api.clone();
            async move {
                let p: Pod =
                    serde_json::from_value(json!({"metadata": {"name": format!("pod-{i}")},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}))
                    .expect("pod");
                api.create(&PostParams::default(), &p).await.map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("pods");
    println!("created {nodes} nodes and {pods} pods; starting kube-scheduler");
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-scheduler"))
        .arg(format!(
            "--kubeconfig={}",
            server.kubeconfig_path().display()
        ))
        .args(["--leader-elect=false", "--secure-port=0"])
        .stderr(Stdio::null())
        .spawn()
        .expect("scheduler");
    let deadline = start + Duration::from_secs(600);
    loop {
        let list = pod_api.list(&ListParams::default()).await.expect("list");
        let bound = list
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        if bound == pods {
            break;
        }
        if Instant::now() > deadline {
            println!("only {bound}/{pods} bound after 600s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{pods} pods on {nodes} nodes bound in {secs:.1}s: {:.0} pods/s",
        pods as f64 / secs
    );
    let _ = child.kill();
    let _ = child.wait();
}
