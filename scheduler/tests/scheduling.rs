//! End-to-end against a real kube-apiserver: the built kube-scheduler binary reports pods
//! that fit nowhere with upstream's PodScheduled condition, message and FailedScheduling
//! event; preempts lower-priority pods; honours schedulerName, profiles from `--config`,
//! and leader election. (Placement through `pods/binding` is in `binding.rs`.)

mod common;

use common::{Env, requests};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_pod_stays_pending_with_upstream_message() {
    let env = Env::start(&[]).await;
    for n in ["n1", "n2", "n3"] {
        env.node(n, "2", "4Gi", json!({}), json!([])).await;
    }
    env.pod(
        "huge",
        json!({}),
        json!({"containers": requests("100", "1Gi")}),
    )
    .await;
    // the scheduler may try the pod before it has seen every node; a node added moves the
    // pod back to the queue, so the message settles on all three
    let want = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    let reason = env
        .wait_pod("huge", "PodScheduled=False naming all 3 nodes", |p| {
            common::unschedulable(p).filter(|(_, message)| message == want)
        })
        .await;
    assert_eq!(reason.0, "Unschedulable");
    let ev = env
        .wait_event_where("huge", "FailedScheduling", |e| {
            e.note.as_deref() == Some(want)
        })
        .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.note.as_deref(), Some(want));
    assert_eq!(
        ev.reporting_controller.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(ev.action.as_deref(), Some("Scheduling"));
    let p = env.pods("default").get("huge").await.expect("pod");
    assert_eq!(common::node_of(&p), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_and_node_affinity_reasons() {
    let env = Env::start(&[]).await;
    let taint = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    env.node("gpu", "8", "16Gi", json!({"accel": "gpu"}), taint)
        .await;
    env.node("cpu1", "4", "8Gi", json!({}), json!([])).await;
    env.node("cpu2", "4", "8Gi", json!({}), json!([])).await;
    env.pod(
        "wants-gpu",
        json!({}),
        json!({"nodeSelector": {"accel": "gpu"}}),
    )
    .await;
    let (reason, msg) = env.wait_unschedulable("wants-gpu").await;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    env.pod(
        "zone-z",
        json!({}),
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]}]}}},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
    )
    .await;
    let (_, msg) = env.wait_unschedulable("zone-z").await;
    assert_eq!(
        msg,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_pods_drive_spread_and_anti_affinity() {
    let env = Env::start(&[]).await;
    let zone = |z: &str| json!({"topology.kubernetes.io/zone": z});
    env.node("a1", "8", "16Gi", zone("a"), json!([])).await;
    let taint = json!([{"key": "maintenance", "effect": "NoSchedule"}]);
    env.node("b1", "8", "16Gi", zone("b"), taint).await;
    // Pods already running (created bound, as a kubelet's static pods are).
    env.pod("web-0", json!({"app": "web"}), json!({"nodeName": "a1"}))
        .await;
    env.pod("db-0", json!({"app": "db"}), json!({"nodeName": "a1"}))
        .await;

    // Zone b counts as an empty domain (taints are ignored by default), so a second web
    // pod in zone a would make the skew 2.
    env.pod(
        "web-1",
        json!({"app": "web"}),
        json!({"topologySpreadConstraints": [{"maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}}]}),
    )
    .await;
    let (_, msg) = env.wait_unschedulable("web-1").await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) had untolerated taint(s). preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );

    // Anti-affinity to the running db pod.
    env.pod(
        "db-1",
        json!({"app": "db"}),
        json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}]}}}),
    )
    .await;
    let (_, msg) = env.wait_unschedulable("db-1").await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 1 node(s) didn't match pod anti-affinity rules, 1 node(s) had untolerated taint(s). preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );

    // The running db pod's own anti-affinity (symmetry) keeps a plain pod it selects off a1.
    env.pod(
        "loner",
        json!({"app": "loner"}),
        json!({"nodeName": "a1", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "noisy"}}}]}}}),
    )
    .await;
    env.pod("noisy", json!({"app": "noisy"}), json!({})).await;
    let (_, msg) = env.wait_unschedulable("noisy").await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, 1 node(s) had untolerated taint(s). preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );
}

async fn priority_class(env: &Env, name: &str, value: i32) {
    let pc: PriorityClass = serde_json::from_value(json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": name}, "value": value
    }))
    .expect("priority class");
    Api::<PriorityClass>::all(env.client.clone())
        .create(&PostParams::default(), &pc)
        .await
        .expect("create priority class");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_pod_preempts_low_priority_one() {
    let env = Env::start(&[]).await;
    priority_class(&env, "low", 10).await;
    priority_class(&env, "high", 1000).await;
    env.node("n1", "2", "4Gi", json!({}), json!([])).await;
    env.pod(
        "victim",
        json!({}),
        json!({"nodeName": "n1", "priorityClassName": "low", "terminationGracePeriodSeconds": 0,
               "containers": requests("1500m", "1Gi")}),
    )
    .await;
    env.pod(
        "preemptor",
        json!({}),
        json!({"priorityClassName": "high", "containers": requests("1500m", "1Gi")}),
    )
    .await;
    let nominated = env
        .wait_pod("preemptor", "nomination", |p| {
            p.status.as_ref()?.nominated_node_name.clone()
        })
        .await;
    assert_eq!(nominated, "n1");
    env.wait_gone("victim").await;
    let ev = env.wait_event("victim", "Preempted").await;
    let uid = env
        .pods("default")
        .get("preemptor")
        .await
        .expect("pod")
        .metadata
        .uid;
    assert_eq!(
        ev.note,
        Some(format!(
            "Preempted by pod {} on node n1",
            uid.unwrap_or_default()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_for_other_schedulers_are_ignored() {
    let env = Env::start(&[]).await;
    env.node("n1", "1", "1Gi", json!({}), json!([])).await;
    env.pod(
        "other",
        json!({}),
        json!({"schedulerName": "someone-else", "containers": requests("4", "1Gi")}),
    )
    .await;
    env.pod(
        "mine",
        json!({}),
        json!({"containers": requests("4", "1Gi")}),
    )
    .await;
    env.wait_unschedulable("mine").await;
    let p = env.pods("default").get("other").await.expect("pod");
    let conds = p.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        !conds
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "False"),
        "{conds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_from_config_file() {
    let mut env = Env::api_only().await;
    let cfg = env.server.dir.path().join("scheduler.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: {}
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
- schedulerName: lenient
  plugins:
    filter:
      disabled:
      - name: TaintToleration
    postFilter:
      disabled:
      - name: DefaultPreemption
"#,
            env.server.kubeconfig_path().display()
        ),
    )
    .expect("config");
    env.spawn_scheduler(
        &["--secure-port=0", &format!("--config={}", cfg.display())],
        &[],
    );
    let taint = json!([{"key": "k", "effect": "NoSchedule"}]);
    env.node("n1", "1", "1Gi", json!({}), taint).await;
    env.pod(
        "strict",
        json!({}),
        json!({"containers": requests("2", "1Gi")}),
    )
    .await;
    env.pod(
        "easy",
        json!({}),
        json!({"schedulerName": "lenient", "containers": requests("2", "1Gi")}),
    )
    .await;
    let (_, msg) = env.wait_unschedulable("strict").await;
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 node(s) had untolerated taint(s). preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    let (_, msg) = env.wait_unschedulable("easy").await;
    assert_eq!(msg, "0/1 nodes are available: 1 Insufficient cpu.");
    let ev = env.wait_event("easy", "FailedScheduling").await;
    assert_eq!(ev.reporting_controller.as_deref(), Some("lenient"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_and_health() {
    let mut env = Env::api_only().await;
    let port = testenv::free_port();
    env.spawn_scheduler(
        &[
            "--leader-elect=true",
            "--leader-elect-lease-duration=4s",
            "--leader-elect-renew-deadline=3s",
            "--leader-elect-retry-period=1s",
            "--bind-address=127.0.0.1",
            &format!("--secure-port={port}"),
        ],
        &[],
    );
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kube-system");
    let lease = env_wait(&env, || async {
        leases.get_opt("kube-scheduler").await.ok().flatten()
    })
    .await;
    let spec = lease.spec.expect("spec");
    let holder = spec.holder_identity.expect("holder");
    let host = kube_scheduler::health::hostname();
    assert!(holder.starts_with(&format!("{host}_")), "{holder}");
    assert_eq!(spec.lease_duration_seconds, Some(4));
    // The leader schedules.
    env.node("n1", "1", "1Gi", json!({}), json!([])).await;
    env.pod("p", json!({}), json!({"containers": requests("2", "1Gi")}))
        .await;
    env.wait_unschedulable("p").await;
    // And renews: renewTime moves forward.
    let first = spec.renew_time.map(|t| t.0);
    let renewed = env_wait(&env, || async {
        let l = leases.get("kube-scheduler").await.ok()?;
        let t = l.spec?.renew_time.map(|t| t.0);
        (t > first).then_some(t)
    })
    .await;
    assert!(renewed > first);
    let out = std::process::Command::new("curl")
        .args(["-sk", &format!("https://127.0.0.1:{port}/healthz")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
}

async fn env_wait<T, F, Fut>(env: &Env, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition never met; scheduler log:\n{}",
            env.scheduler_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
