//! Throughput of the scheduling algorithm alone (no API server): 5,000 nodes over 10
//! zones, pods scheduled one after another and assumed into the cache, as the loop does.
//! The same three workloads as `hack/bench-scheduler`: plain pods, pods with required
//! anti-affinity on the hostname within one of 10 groups, and pods spread over zones
//! (`DoNotSchedule`, maxSkew 1); each phase in its own namespace, on top of the pods of
//! the phases before it.
//! `cargo bench -p kube-scheduler --bench algorithm` prints pods per second per phase.
//! `NODES`, `PODS` (per phase) and `PHASES` (comma separated: plain,anti,spread) adjust it.

use std::sync::Arc;
use std::time::Instant;

use kube_scheduler::algorithm::{Algorithm, Nominated};
use kube_scheduler::cache::Cache;
use kube_scheduler::config::SchedulerConfig;
use kube_scheduler::podinfo::PodInfo;
use serde_json::{Value, json};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pod(phase: &str, i: usize) -> Value {
    let mut p = json!({"metadata": {"name": format!("pod-{i}"), "namespace": phase,
        "labels": {"app": phase}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}});
    match phase {
        "anti" => {
            let group = format!("g{}", i % 10);
            p["metadata"]["labels"]["group"] = json!(group);
            p["spec"]["affinity"] = json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"group": group}},
                    "topologyKey": "kubernetes.io/hostname"}]}});
        }
        "spread" => {
            p["spec"]["topologySpreadConstraints"] = json!([{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "spread"}}}]);
        }
        _ => {}
    }
    p
}

fn main() {
    let nodes = env_num("NODES", 5000);
    let pods = env_num("PODS", 10000);
    let phases = std::env::var("PHASES").unwrap_or_else(|_| "plain,anti,spread".into());
    let mut cache = Cache::new();
    for i in 0..nodes {
        let node = json!({"metadata": {"name": format!("node-{i}"), "labels": {
                "kubernetes.io/hostname": format!("node-{i}"),
                "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
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
    for phase in phases.split(',') {
        let infos: Vec<Arc<PodInfo>> = (0..pods)
            .map(|i| {
                PodInfo::new(Arc::new(
                    serde_json::from_value(pod(phase, i)).expect("pod"),
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
            "{phase}: {pods} pods on {nodes} nodes: {:.0} pods/s ({:.1} µs/pod, {:.0} nodes evaluated/pod)",
            pods as f64 / secs,
            secs * 1e6 / pods as f64,
            evaluated as f64 / pods as f64
        );
    }
}
