//! kubelet-sim against a real kube-apiserver: nodes and leases appear and renew, a pod
//! bound by hand runs (Running, Ready, podIP) and is deleted for good, and the exit
//! annotations make `restartPolicy: Never` pods Succeeded or Failed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(server: &testenv::TestServer, args: &[&str]) -> Sim {
    // one identity for many nodes: system:masters (the Node authorizer would confine a
    // system:node:<name> certificate to a single node)
    let kubeconfig = server.dir.path().join("sim.kubeconfig");
    std::fs::write(
        &kubeconfig,
        server.kubeconfig_as("system:node:sim", &["system:masters"]),
    )
    .expect("write kubeconfig");
    let log = std::fs::File::create(server.dir.path().join("kubelet-sim.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_kubelet-sim"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .arg("-v=4")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start kubelet-sim");
    Sim(child)
}

fn sim_log(server: &testenv::TestServer) -> String {
    std::fs::read_to_string(server.dir.path().join("kubelet-sim.log")).unwrap_or_default()
}

/// Polls `check` until it returns Some, for up to 60 s.
async fn eventually<T, F, Fut>(server: &testenv::TestServer, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\nkubelet-sim log:\n{}",
            sim_log(server)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(pod: &Pod, t: &str) -> Option<String> {
    let conds = pod.status.as_ref()?.conditions.as_ref()?;
    conds
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

async fn bind(client: &Client, ns: &str, pod: &str, node: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        pod,
        &PostParams::default(),
        &binding,
    )
    .await
    .expect("bind");
}

async fn create_pod(client: &Client, v: serde_json::Value) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(v).expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

async fn wait_phase(server: &testenv::TestServer, client: &Client, name: &str, phase: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually(server, &format!("pod {name} {phase}"), || {
        let pods = pods.clone();
        async move {
            let p = pods.get(name).await.ok()?;
            (p.status.as_ref()?.phase.as_deref() == Some(phase)).then_some(p)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_leases_register_and_renew() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _sim = start_sim(
        &server,
        &[
            "--nodes=3",
            "--node-lease-duration-seconds=4",
            "--node-labels=pool=sim",
        ],
    );
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..3 {
        let name = format!("sim-{i}");
        let node = eventually(&server, &format!("node {name}"), || {
            let nodes = nodes.clone();
            let name = name.clone();
            async move { nodes.get(&name).await.ok() }
        })
        .await;
        let labels = node.metadata.labels.clone().expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["pool"], "sim");
        let status = node.status.expect("status");
        let alloc = status.allocatable.expect("allocatable");
        assert_eq!(alloc["cpu"].0, "8");
        assert_eq!(alloc["memory"].0, "32Gi");
        assert_eq!(alloc["pods"].0, "110");
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        assert_eq!(ready.map(|c| c.status.as_str()), Some("True"));
        assert_eq!(
            node.spec.and_then(|s| s.pod_cidr),
            Some(format!("10.128.{i}.0/24"))
        );
    }

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = eventually(&server, "lease sim-2", || {
        let leases = leases.clone();
        async move { leases.get("sim-2").await.ok() }
    })
    .await;
    let spec = first.spec.clone().expect("lease spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("sim-2"));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    let owner = &first.metadata.owner_references.clone().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "sim-2")
    );
    let renewed_from = spec.renew_time.expect("renewTime");
    eventually(&server, "lease sim-2 renewed", || {
        let leases = leases.clone();
        let before = renewed_from.clone();
        async move {
            let l = leases.get("sim-2").await.ok()?;
            (l.spec?.renew_time? > before).then_some(())
        }
    })
    .await;
}

/// Starts a pod on sim-1 (bound through `pods/binding`, or created with `nodeName`),
/// checks it runs as a kubelet reports it, deletes it and sees it gone.
async fn run_and_delete(via_binding: bool) {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _sim = start_sim(&server, &["--nodes=3"]);
    let nodes: Api<Node> = Api::all(client.clone());
    eventually(&server, "node sim-1", || {
        let nodes = nodes.clone();
        async move { nodes.get("sim-1").await.ok() }
    })
    .await;

    let mut spec = json!({"containers": [{"name": "nginx", "image": "nginx"}]});
    if !via_binding {
        spec["nodeName"] = json!("sim-1");
    }
    create_pod(&client, json!({"metadata": {"name": "web"}, "spec": spec})).await;
    if via_binding {
        bind(&client, "default", "web", "sim-1").await;
    }
    let pod = wait_phase(&server, &client, "web", "Running").await;
    let status = pod.status.clone().expect("status");
    for c in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ] {
        assert_eq!(condition(&pod, c).as_deref(), Some("True"), "condition {c}");
    }
    if via_binding {
        assert_eq!(condition(&pod, "PodScheduled").as_deref(), Some("True"));
    }
    let ip = status.pod_ip.clone().expect("podIP");
    assert!(ip.starts_with("10.128.1."), "podIP {ip} is in sim-1's /24");
    assert_eq!(status.host_ip.as_deref(), Some("172.16.0.3"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    assert!(status.start_time.is_some());
    let cs = &status.container_statuses.expect("container statuses")[0];
    assert!(cs.ready);
    assert_eq!(cs.started, Some(true));
    assert_eq!(cs.image, "docker.io/library/nginx:latest");
    assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());

    // the kubelet's container events, from the node's kubelet
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let reasons = eventually(&server, "Pulled, Created and Started events", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            let mine: Vec<Event> = list
                .items
                .into_iter()
                .filter(|e| e.involved_object.name.as_deref() == Some("web"))
                .filter(|e| {
                    e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("kubelet")
                })
                .collect();
            let reasons: Vec<String> = mine.iter().filter_map(|e| e.reason.clone()).collect();
            (reasons.len() >= 3).then_some(mine)
        }
    })
    .await;
    let started = reasons
        .iter()
        .find(|e| e.reason.as_deref() == Some("Started"))
        .expect("Started");
    assert_eq!(started.message.as_deref(), Some("Started container nginx"));
    assert_eq!(
        started.involved_object.field_path.as_deref(),
        Some("spec.containers{nginx}")
    );
    assert_eq!(
        started.source.as_ref().and_then(|s| s.host.as_deref()),
        Some("sim-1")
    );

    // a graceful delete: the simulated kubelet stops it and removes it for good
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually(&server, "pod web gone", || {
        let pods = pods.clone();
        async move {
            match pods.get("web").await {
                Err(kube::Error::Api(s)) if s.code == 404 => Some(()),
                _ => None,
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_created_on_a_node_run_and_deleted_pods_go_away() {
    run_and_delete(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_bound_through_binding_run_and_deleted_pods_go_away() {
    run_and_delete(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_annotations_and_deadlines_finish_never_restart_pods() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _sim = start_sim(&server, &["--nodes=1"]);
    let job_pod = |name: &str, code: &str| {
        json!({"metadata": {"name": name, "annotations": {
                  "sim.kubelet/exit-after-seconds": "1", "sim.kubelet/exit-code": code}},
               "spec": {"restartPolicy": "Never", "nodeName": "sim-0",
                        "containers": [{"name": "work", "image": "busybox"}]}})
    };
    create_pod(&client, job_pod("ok", "0")).await;
    create_pod(&client, job_pod("bad", "3")).await;

    let ok = wait_phase(&server, &client, "ok", "Succeeded").await;
    let cs = &ok
        .status
        .clone()
        .expect("status")
        .container_statuses
        .expect("cs")[0];
    let t = cs
        .state
        .clone()
        .and_then(|s| s.terminated)
        .expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert!(!cs.ready);
    let ready = ok
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let ready = ready.iter().find(|c| c.type_ == "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );

    // the kubelet fails a pod past its active deadline
    create_pod(
        &client,
        json!({"metadata": {"name": "late"},
               "spec": {"restartPolicy": "Never", "nodeName": "sim-0", "activeDeadlineSeconds": 1,
                        "containers": [{"name": "work", "image": "busybox"}]}}),
    )
    .await;
    let late = wait_phase(&server, &client, "late", "Failed").await;
    let st = late.status.expect("status");
    assert_eq!(st.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        st.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );

    let bad = wait_phase(&server, &client, "bad", "Failed").await;
    let cs = &bad.status.expect("status").container_statuses.expect("cs")[0];
    let t = cs
        .state
        .clone()
        .and_then(|s| s.terminated)
        .expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
}
