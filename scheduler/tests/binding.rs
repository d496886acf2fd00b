//! End-to-end placement through `pods/binding`: where pods land, the `Scheduled` event,
//! and pods becoming schedulable after cluster changes or preemption.

mod common;

use std::collections::HashMap;

use common::{Env, requests};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_to_least_allocated_node_and_records_scheduled() {
    // the nodes exist before the scheduler starts, so its first list has them all (a
    // node added afterwards may reach it after the pod does)
    let mut env = Env::api_only().await;
    env.node("small", "2", "4Gi", json!({}), json!([])).await;
    env.node("medium", "4", "8Gi", json!({}), json!([])).await;
    env.node("large", "16", "32Gi", json!({}), json!([])).await;
    env.spawn_scheduler(&["--leader-elect=false", "--secure-port=0"], &[]);
    env.pod(
        "web",
        json!({}),
        json!({"containers": requests("1", "1Gi")}),
    )
    .await;
    assert_eq!(env.wait_bound("web").await, "large");
    let ev = env.wait_event("web", "Scheduled").await;
    assert_eq!(
        ev.note.as_deref(),
        Some("Successfully assigned default/web to large")
    );
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(
        ev.reporting_controller.as_deref(),
        Some("default-scheduler")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_pods_see_each_others_resources() {
    let env = Env::start(&[]).await;
    for n in ["n1", "n2", "n3"] {
        env.node(n, "1", "4Gi", json!({}), json!([])).await;
    }
    for i in 0..3 {
        env.pod(
            &format!("p{i}"),
            json!({}),
            json!({"containers": requests("800m", "1Gi")}),
        )
        .await;
    }
    let mut nodes: Vec<String> = Vec::new();
    for i in 0..3 {
        nodes.push(env.wait_bound(&format!("p{i}")).await);
    }
    nodes.sort();
    assert_eq!(nodes, vec!["n1", "n2", "n3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_node_makes_pending_pod_schedulable() {
    let env = Env::start(&[]).await;
    env.node("n1", "2", "4Gi", json!({}), json!([])).await;
    env.pod(
        "huge",
        json!({}),
        json!({"containers": requests("100", "1Gi")}),
    )
    .await;
    env.wait_unschedulable("huge").await;
    env.node("n2", "128", "256Gi", json!({}), json!([])).await;
    assert_eq!(env.wait_bound("huge").await, "n2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_tolerations_and_affinity_placement() {
    let env = Env::start(&[]).await;
    let taint = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    env.node(
        "gpu",
        "8",
        "16Gi",
        json!({"accel": "gpu", "zone": "a"}),
        taint,
    )
    .await;
    env.node("cpu1", "4", "8Gi", json!({"zone": "a"}), json!([]))
        .await;
    env.node("cpu2", "4", "8Gi", json!({"zone": "b"}), json!([]))
        .await;
    for i in 0..4 {
        env.pod(&format!("plain-{i}"), json!({}), json!({})).await;
        assert_ne!(env.wait_bound(&format!("plain-{i}")).await, "gpu");
    }
    env.pod(
        "gpu-ok",
        json!({}),
        json!({"nodeSelector": {"accel": "gpu"},
               "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
    )
    .await;
    assert_eq!(env.wait_bound("gpu-ok").await, "gpu");
    env.pod(
        "zone-b",
        json!({}),
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}),
    )
    .await;
    assert_eq!(env.wait_bound("zone-b").await, "cpu2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_topology_spread_and_anti_affinity_placement() {
    let env = Env::start(&[]).await;
    let zone = |z: &str| json!({"topology.kubernetes.io/zone": z});
    env.node("a1", "8", "16Gi", zone("a"), json!([])).await;
    env.node("a2", "8", "16Gi", zone("a"), json!([])).await;
    env.node("b1", "8", "16Gi", zone("b"), json!([])).await;
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    let mut per_zone: HashMap<String, usize> = HashMap::new();
    for i in 0..4 {
        let name = format!("spread-{i}");
        env.pod(&name, json!({"app": "spread"}), spread.clone())
            .await;
        let node = env.wait_bound(&name).await;
        *per_zone.entry(node[..1].to_string()).or_default() += 1;
    }
    assert_eq!(per_zone.get("a"), Some(&2));
    assert_eq!(per_zone.get("b"), Some(&2));
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}]}}});
    let mut nodes = Vec::new();
    for i in 0..3 {
        let name = format!("db-{i}");
        env.pod(&name, json!({"app": "db"}), anti.clone()).await;
        nodes.push(env.wait_bound(&name).await);
    }
    nodes.sort();
    assert_eq!(nodes, vec!["a1", "a2", "b1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemptor_is_bound_after_its_victim_goes() {
    let env = Env::start(&[]).await;
    for (name, value) in [("low", 10), ("high", 1000)] {
        let pc: PriorityClass = serde_json::from_value(json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value
        }))
        .expect("pc");
        Api::<PriorityClass>::all(env.client.clone())
            .create(&PostParams::default(), &pc)
            .await
            .expect("create pc");
    }
    env.node("n1", "2", "4Gi", json!({}), json!([])).await;
    env.pod(
        "victim",
        json!({}),
        json!({"priorityClassName": "low", "terminationGracePeriodSeconds": 0,
               "containers": requests("1500m", "1Gi")}),
    )
    .await;
    assert_eq!(env.wait_bound("victim").await, "n1");
    env.pod(
        "preemptor",
        json!({}),
        json!({"priorityClassName": "high", "containers": requests("1500m", "1Gi")}),
    )
    .await;
    env.wait_gone("victim").await;
    assert_eq!(env.wait_bound("preemptor").await, "n1");
}
