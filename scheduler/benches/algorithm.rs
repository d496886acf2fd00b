//! Throughput of the scheduling algorithm alone (no API server): 5,000 nodes, pods with
//! requests scheduled one after another and assumed into the cache, as the loop does.
//! `cargo bench -p kube-scheduler --bench algorithm` prints pods per second.

use std::sync::Arc;
use std::time::Instant;

use kube_scheduler::algorithm::{Algorithm, Nominated};
use kube_scheduler::cache::Cache;
use kube_scheduler::config::SchedulerConfig;
use kube_scheduler::podinfo::PodInfo;
use serde_json::json;

fn main() {
    let nodes: usize = std::env::var("NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let pods: usize = std::env::var("PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20000);
    let mut cache = Cache::new();
    for i in 0..nodes {
        let node = json!({"metadata": {"name": format!("node-{i}"), "labels": {
                "kubernetes.io/hostname": format!("node-{i}"),
                "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
            "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                "images": [{"names": ["registry.k8s.io/pause:3.10"], "sizeBytes": 300000}]}});
        cache.upsert_node(Arc::new(serde_json::from_value(node).expect("node")));
    }
    let profile = SchedulerConfig::default()
        .build_profiles()
        .expect("profile")
        .remove(0);
    let mut algo = Algorithm::seeded(7);
    let nominated = Nominated::new();
    let infos: Vec<Arc<PodInfo>> = (0..pods)
        .map(|i| {
            PodInfo::new(Arc::new(
                serde_json::from_value(
                    json!({"metadata": {"name": format!("pod-{i}"), "namespace": "default",
                    "labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}),
                )
                .expect("pod"),
            ))
        })
        .collect();
    let start = Instant::now();
    let mut evaluated = 0;
    for p in &infos {
        let r = algo
            .schedule(&profile, &cache, &nominated, p)
            .expect("fits");
        evaluated += r.evaluated;
        cache.add_pod(p.clone(), &r.node, true);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{pods} pods on {nodes} nodes: {:.0} pods/s ({:.1} µs/pod, {:.0} nodes evaluated/pod)",
        pods as f64 / secs,
        secs * 1e6 / pods as f64,
        evaluated as f64 / pods as f64
    );
}
