//! Test harness for the workload and service controllers: a real kube-apiserver
//! (testenv) plus the kube-controller-manager binary running the named controllers, and
//! helpers to play the kubelet's part (pods get an IP and become Running/Ready) since
//! nobody runs pods here.
#![allow(dead_code)]

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

pub struct Cluster {
    pub server: testenv::TestServer,
    pub client: kube::Client,
    kcm: Child,
}

impl Cluster {
    /// Starts an apiserver and a controller manager running `controllers` (comma list).
    pub async fn start(controllers: &str) -> Self {
        Self::start_with(controllers, &[]).await
    }

    pub async fn start_with(controllers: &str, extra: &[&str]) -> Self {
        let server = testenv::TestServer::start();
        let client = server.client().await;
        let log = std::fs::File::create(server.dir.path().join("kcm.log")).expect("kcm log");
        let kcm = Command::new(env!("CARGO_BIN_EXE_kube-controller-manager"))
            .arg(format!(
                "--kubeconfig={}",
                server.kubeconfig_path().display()
            ))
            .arg("--leader-elect=false")
            .arg("--secure-port=0")
            .arg(format!("--controllers={controllers}"))
            .arg("-v=4")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kube-controller-manager");
        Cluster {
            server,
            client,
            kcm,
        }
    }

    /// The controller manager's log so far.
    pub fn kcm_log(&self) -> String {
        std::fs::read_to_string(self.server.dir.path().join("kcm.log")).unwrap_or_default()
    }

    pub async fn namespace(&self, name: &str) {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
    }

    /// Polls `f` until it returns `Some`, failing the test (with the controller
    /// manager's log) after a generous bound: a hang, not a slowness, is the failure.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}\n--- controller manager log ---\n{}",
                    self.kcm_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Plays the kubelet: gives the pod an IP and makes it Running with the given
    /// readiness (Ready and ContainersReady conditions).
    pub async fn set_pod_running(&self, ns: &str, name: &str, ip: &str, ready: bool) {
        let status = if ready { "True" } else { "False" };
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "conditions": [
                {"type": "Ready", "status": status, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
        }});
        self.patch_pod_status(ns, name, patch).await;
    }

    /// Plays the kubelet: the pod's containers ended in `phase` (Succeeded or Failed).
    pub async fn set_pod_finished(&self, ns: &str, name: &str, phase: &str, exit_code: i32) {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({"status": {
            "phase": phase,
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": now},
            ],
            "containerStatuses": [{
                "name": "c", "image": "busybox", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": exit_code, "reason": if exit_code == 0 {"Completed"} else {"Error"},
                    "startedAt": now, "finishedAt": now}},
            }],
        }});
        self.patch_pod_status(ns, name, patch).await;
    }

    pub async fn patch_pod_status(&self, ns: &str, name: &str, patch: serde_json::Value) {
        Api::<Pod>::namespaced(self.client.clone(), ns)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch status of pod {ns}/{name}: {e}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.kcm.kill();
        let _ = self.kcm.wait();
    }
}

/// Deserializes a typed object from JSON (test fixtures).
pub fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("fixture")
}
