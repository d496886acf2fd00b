//! Harness for the core-controller integration tests: a real kube-apiserver (testenv),
//! kube-controller-manager processes with chosen flags, waiting for conditions, and
//! playing the kubelet's part (pods become Running and Ready) since no kubelet runs.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// One kube-controller-manager process; killed when dropped.
pub struct Kcm {
    child: Child,
    pub log: PathBuf,
}

impl Kcm {
    /// Starts a controller manager against `server` with extra flags.
    pub fn start(server: &testenv::TestServer, name: &str, args: &[&str]) -> Self {
        let log = server.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("kcm log");
        let child = Command::new(env!("CARGO_BIN_EXE_kube-controller-manager"))
            .arg(format!(
                "--kubeconfig={}",
                server.kubeconfig_path().display()
            ))
            .arg("--secure-port=0")
            .arg("-v=4")
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start kube-controller-manager");
        Kcm { child, log }
    }

    /// Starts one without leader election running `controllers`.
    pub fn run(server: &testenv::TestServer, controllers: &str) -> Self {
        let arg = format!("--controllers={controllers}");
        Self::start(server, "kcm", &["--leader-elect=false", &arg])
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Kcm {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // a failed test shows what the controllers were doing
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "--- last lines of {} ---\n{}",
                self.log.display(),
                tail.join("\n")
            );
            // KCM_KEEP_LOGS=<dir> keeps the whole log of a failed test
            if let Some(dir) = std::env::var_os("KCM_KEEP_LOGS") {
                let name = self.log.file_name().unwrap_or_default();
                let _ = std::fs::copy(&self.log, PathBuf::from(dir).join(name));
            }
        }
    }
}

/// Polls `check` until it returns `Some`, failing after `secs` seconds with `what` (a
/// liveness bound for a stuck controller, not a timing assertion).
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (up to 60 s) until the object named `name` is gone from `api`.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(60, what, || async {
        api.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;
}

/// Waits for an Event with `reason` about the object named `object` in `ns`.
pub async fn wait_for_event(
    client: &kube::Client,
    ns: &str,
    object: &str,
    reason: &str,
) -> k8s_openapi::api::core::v1::Event {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    wait_for(60, &format!("event {reason} on {object}"), || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.name.as_deref() == Some(object)
                    && e.reason.as_deref() == Some(reason)
            })
    })
    .await
}

pub async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// Pods in `ns` matching `selector`, excluding those being deleted.
pub async fn live_pods(client: &kube::Client, ns: &str, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api.list(&ListParams::default().labels(selector)).await {
        Ok(l) => l
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect(),
        Err(_) => vec![],
    }
}

/// Plays the kubelet: every live pod matching `selector` becomes Running and Ready.
pub async fn make_pods_ready(client: &kube::Client, ns: &str, selector: &str) -> usize {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut n = 0;
    for p in live_pods(client, ns, selector).await {
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            continue;
        }
        let now = k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let status = json!({"status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
        }});
        if api
            .patch_status(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(status),
            )
            .await
            .is_ok()
        {
            n += 1;
        }
    }
    n
}

/// A pod spec every test can use.
pub fn pod_spec() -> serde_json::Value {
    json!({"containers": [{"name": "c", "image": "busybox"}]})
}
