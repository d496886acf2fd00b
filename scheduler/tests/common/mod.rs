//! Shared set-up for the integration tests: a real kube-apiserver (testenv), the built
//! kube-scheduler binary pointed at it, and helpers to create nodes and pods and wait for
//! what the scheduler does to them.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

pub struct Env {
    pub server: testenv::TestServer,
    pub client: kube::Client,
    pub scheduler: Option<Child>,
    pub log: std::path::PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(c) = self.scheduler.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Env {
    /// Starts an API server only.
    pub async fn api_only() -> Env {
        let server = testenv::TestServer::start();
        let client = server.client().await;
        let log = server.dir.path().join("scheduler.log");
        Env {
            server,
            client,
            scheduler: None,
            log,
        }
    }

    /// Starts an API server and the scheduler with `--leader-elect=false --secure-port=0`
    /// plus `extra` flags.
    pub async fn start(extra: &[&str]) -> Env {
        let mut env = Env::api_only().await;
        env.spawn_scheduler(&["--leader-elect=false", "--secure-port=0"], extra);
        env
    }

    pub fn spawn_scheduler(&mut self, base: &[&str], extra: &[&str]) {
        let log = std::fs::File::create(&self.log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_kube-scheduler"))
            .arg(format!(
                "--kubeconfig={}",
                self.server.kubeconfig_path().display()
            ))
            .args(base)
            .args(extra)
            .arg("-v=4")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kube-scheduler");
        self.scheduler = Some(child);
    }

    pub fn scheduler_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Creates a node with allocatable cpu/memory, 110 pods, a Ready condition, and the
    /// given labels and taints.
    pub async fn node(&self, name: &str, cpu: &str, memory: &str, labels: Value, taints: Value) {
        let mut l = json!({"kubernetes.io/hostname": name});
        if let (Some(m), Some(extra)) = (l.as_object_mut(), labels.as_object()) {
            m.extend(extra.clone());
        }
        let res = json!({"cpu": cpu, "memory": memory, "pods": "110"});
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": l},
            "spec": {"taints": taints},
            "status": {"capacity": res, "allocatable": res,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}]}
        }))
        .expect("node");
        let api: Api<Node> = Api::all(self.client.clone());
        let created = api
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
        if created
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .is_none()
        {
            let status = serde_json::to_value(&node.status).expect("status");
            api.patch_status(
                name,
                &Default::default(),
                &kube::api::Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("node status");
        }
    }

    /// Creates a pod in `default` from a spec (a `pause` container is added when the spec
    /// has no containers) and labels.
    pub async fn pod(&self, name: &str, labels: Value, mut spec: Value) -> Pod {
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "registry.k8s.io/pause:3.10"}]);
        }
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }))
        .expect("pod");
        self.pods("default")
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod")
    }

    /// Waits until `check` returns Some for the pod, or panics with the scheduler log.
    pub async fn wait_pod<T>(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Pod) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(p) = self.pods("default").get(name).await
                && let Some(v) = check(&p)
            {
                return v;
            }
            if Instant::now() > deadline {
                let p = self.pods("default").get(name).await.ok();
                panic!(
                    "pod {name}: {what} never happened; pod: {}\nscheduler log:\n{}",
                    serde_json::to_string_pretty(&p).unwrap_or_default(),
                    self.scheduler_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the pod no longer exists.
    pub async fn wait_gone(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .pods("default")
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            assert!(
                Instant::now() < deadline,
                "pod {name} was never deleted; scheduler log:\n{}",
                self.scheduler_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the pod to be bound; returns the node.
    pub async fn wait_bound(&self, name: &str) -> String {
        self.wait_pod(name, "binding", node_of).await
    }

    /// Waits for a PodScheduled=False condition; returns (reason, message).
    pub async fn wait_unschedulable(&self, name: &str) -> (String, String) {
        self.wait_pod(name, "PodScheduled=False", unschedulable)
            .await
    }

    /// Waits for an events.k8s.io event about the pod with this reason; returns it.
    pub async fn wait_event(&self, pod: &str, reason: &str) -> Event {
        self.wait_event_where(pod, reason, |_| true).await
    }

    /// As [`Env::wait_event`], for an event `check` accepts.
    pub async fn wait_event_where(
        &self,
        pod: &str,
        reason: &str,
        check: impl Fn(&Event) -> bool,
    ) -> Event {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(list) = api.list(&ListParams::default()).await
                && let Some(e) = list.items.into_iter().find(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
                        && check(e)
                })
            {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event for {pod}; scheduler log:\n{}",
                self.scheduler_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The reason and message of a PodScheduled=False condition.
pub fn unschedulable(p: &Pod) -> Option<(String, String)> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    Some((c.reason.clone()?, c.message.clone()?))
}

pub fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref()?.node_name.clone().filter(|n| !n.is_empty())
}

/// A container spec requesting cpu and memory.
pub fn requests(cpu: &str, memory: &str) -> Value {
    json!([{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}])
}
