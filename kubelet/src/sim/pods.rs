//! Pod workers of the simulated nodes: one watch over every bound pod, filtered in memory
//! to this process's nodes, drives each pod through the kubelet's status lifecycle with
//! no containers behind it. A "runtime" made up here (sandbox IP, containers started when
//! first seen, exits on request) feeds the shared status code in [`crate::status`];
//! deletion marks the containers terminated and removes the pod with grace period 0.
//!
//! Simulated completion: a pod whose `restartPolicy` is not `Always` and that carries
//! `sim.kubelet/exit-after-seconds: "N"` has its containers exit N seconds after they
//! started, with `sim.kubelet/exit-code` (default 0), so Jobs can finish on these nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use super::events::EventRecorder;
use super::ipam::NodeIpam;
use crate::status::{
    self, ContainerRuntimeStatus, Eviction, PodRuntimeStatus, RuntimeState, StatusInputs,
    Terminated,
};

/// Seconds after which a pod's containers exit (pods with restartPolicy Never or
/// OnFailure only).
pub const EXIT_AFTER_ANNOTATION: &str = "sim.kubelet/exit-after-seconds";
/// The exit code of that exit (default 0).
pub const EXIT_CODE_ANNOTATION: &str = "sim.kubelet/exit-code";

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("pod {0}: {1}")]
    Api(String, #[source] kube::Error),
    #[error("pod {0}: node {1} has no free pod address")]
    NoAddress(String, String),
}

/// What one simulated node needs to run pods.
pub struct NodeRuntime {
    pub host_ips: Vec<String>,
    pub ipam: Mutex<NodeIpam>,
}

/// One pod's simulated sandbox and containers.
#[derive(Clone, Debug)]
struct PodRun {
    node: String,
    started_at: Timestamp,
    ip: Option<String>,
    /// The last status this process wrote, to never write the same one twice.
    last_written: Option<Value>,
}

/// Shared state of the pod workers.
pub struct PodWorkers {
    pub client: Client,
    pub nodes: HashMap<String, NodeRuntime>,
    pub events: EventRecorder,
    runs: Mutex<HashMap<String, PodRun>>,
}

/// Seconds precision: what the API stores, so regenerated statuses compare equal.
fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now())
}

fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

/// When the containers of `pod` exit, if the pod asked to, and with which code.
fn planned_exit(pod: &Pod, started_at: Timestamp) -> Option<(Timestamp, i32)> {
    let policy = pod
        .spec
        .as_ref()?
        .restart_policy
        .as_deref()
        .unwrap_or("Always");
    if policy == "Always" {
        return None;
    }
    let secs: f64 = annotation(pod, EXIT_AFTER_ANNOTATION)?
        .trim()
        .parse()
        .ok()?;
    let code = annotation(pod, EXIT_CODE_ANNOTATION)
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0);
    let at = started_at.as_second() + secs.max(0.0).ceil() as i64;
    Some((Timestamp::from_second(at).ok()?, code))
}

/// The made-up runtime's view of a pod: init containers done, sidecars and regular
/// containers running since `run.started_at`, or exited when stopping or when planned.
fn simulated_runtime(pod: &Pod, run: &PodRun, now: Timestamp, stopping: bool) -> PodRuntimeStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let uid = pod.uid().unwrap_or_default();
    let exit = planned_exit(pod, run.started_at).filter(|(at, _)| *at <= now);
    let container = |c: &k8s_openapi::api::core::v1::Container, state| {
        let (image, image_id) = status::normalize_image(c.image.as_deref().unwrap_or_default());
        ContainerRuntimeStatus {
            name: c.name.clone(),
            container_id: status::container_id(&uid, &c.name, 0),
            image,
            image_id,
            state,
            restart_count: 0,
            last_termination: None,
            startup_probe_succeeded: Some(true),
            readiness_probe_succeeded: Some(true),
        }
    };
    let running = RuntimeState::Running {
        started_at: run.started_at,
    };
    let mut containers = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        let state = if sidecar && !stopping && exit.is_none() {
            running.clone()
        } else {
            let end = if sidecar { now } else { run.started_at };
            RuntimeState::Exited(Terminated::exited(0, run.started_at, end))
        };
        containers.push(container(c, state));
    }
    for c in &spec.containers {
        let state = match exit {
            Some((at, code)) => RuntimeState::Exited(Terminated::exited(code, run.started_at, at)),
            None if stopping => RuntimeState::Exited(Terminated::exited(0, run.started_at, now)),
            None => running.clone(),
        };
        containers.push(container(c, state));
    }
    PodRuntimeStatus {
        sandbox_ready: !stopping && exit.is_none(),
        ips: run.ip.iter().cloned().collect(),
        containers,
    }
}

/// When `spec.activeDeadlineSeconds` runs out, counted from the pod's start time.
fn active_deadline(pod: &Pod, run: &PodRun) -> Option<Timestamp> {
    let secs = pod.spec.as_ref()?.active_deadline_seconds?;
    let start = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(run.started_at, |t| t.0);
    Timestamp::from_second(start.as_second().saturating_add(secs)).ok()
}

fn is_terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// A merge patch from `old` to `new` status: new fields as they are, vanished
/// top-level fields as null.
fn status_patch(uid: &str, old: &Value, new: &Value) -> Value {
    let mut status = new.clone();
    if let (Some(o), Some(n)) = (old.as_object(), status.as_object_mut()) {
        for k in o.keys() {
            n.entry(k.clone()).or_insert(Value::Null);
        }
    }
    json!({"metadata": {"uid": uid}, "status": status})
}

impl PodWorkers {
    pub fn new(client: Client, nodes: HashMap<String, NodeRuntime>, events: EventRecorder) -> Self {
        PodWorkers {
            client,
            nodes,
            events,
            runs: Mutex::new(HashMap::new()),
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodRun>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pod's run, started now (or adopted from the status a previous process wrote).
    /// `starting`: containers are being started now (a pod being deleted never starts).
    fn run_of(&self, pod: &Pod, node: &str, starting: bool) -> Result<PodRun, PodError> {
        let uid = pod.uid().unwrap_or_default();
        if let Some(r) = self.runs().get(&uid) {
            return Ok(r.clone());
        }
        let rt = &self.nodes[node];
        let st = pod.status.clone().unwrap_or_default();
        // a run a previous process started: keep its start time, record no new events
        let adopted = st
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.clone())
            .map(|t| t.0);
        let started_at = adopted.unwrap_or_else(now);
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        let ip = if host_network {
            None
        } else {
            let mut ipam = rt.ipam.lock().unwrap_or_else(|p| p.into_inner());
            let adopted = st.pod_ip.as_deref().filter(|ip| ipam.adopt(&uid, ip));
            match adopted {
                Some(ip) => Some(ip.to_string()),
                None => Some(
                    ipam.allocate(&uid)
                        .ok_or_else(|| PodError::NoAddress(key(pod), node.to_string()))?
                        .to_string(),
                ),
            }
        };
        let run = PodRun {
            node: node.to_string(),
            started_at,
            ip,
            last_written: None,
        };
        self.runs().insert(uid, run.clone());
        if adopted.is_none() && starting {
            self.events.containers_started(pod, node);
        }
        Ok(run)
    }

    /// Forgets a pod's run and frees its address.
    fn forget(&self, uid: &str) {
        if let Some(run) = self.runs().remove(uid)
            && let Some(rt) = self.nodes.get(&run.node)
        {
            rt.ipam
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .release(uid);
        }
    }

    /// Drops runs of pods that no longer exist (deleted by someone else).
    pub fn collect_garbage(&self, live: &std::collections::HashSet<String>) {
        let gone: Vec<String> = self
            .runs()
            .keys()
            .filter(|u| !live.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            tracing::debug!(%uid, "forgetting a pod that is gone");
            self.forget(&uid);
        }
    }

    /// Writes the status generated for `pod` when it differs from the stored one.
    async fn sync_status(
        &self,
        pod: &Pod,
        run: &PodRun,
        stopping: bool,
        eviction: Option<Eviction>,
    ) -> Result<(), PodError> {
        let now = now();
        let runtime = simulated_runtime(pod, run, now, stopping);
        let host_ips = &self.nodes[&run.node].host_ips;
        let inputs = StatusInputs {
            runtime: &runtime,
            host_ips,
            pod_is_terminal: stopping,
            eviction,
            now,
        };
        let new =
            serde_json::to_value(status::generate_pod_status(pod, &inputs)).unwrap_or(Value::Null);
        let old =
            serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or(Value::Null);
        if new == old || run.last_written.as_ref() == Some(&new) {
            return Ok(());
        }
        let uid = pod.uid().unwrap_or_default();
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let patch = status_patch(&uid, &old, &new);
        api.patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| PodError::Api(key(pod), e))?;
        if let Some(r) = self.runs().get_mut(&uid) {
            r.last_written = Some(new);
        }
        Ok(())
    }

    /// A pod being deleted: containers stopped, terminal status written, then the pod
    /// removed for good (grace period 0, only this incarnation).
    async fn terminate(&self, pod: &Pod, node: &str) -> Result<(), PodError> {
        let uid = pod.uid().unwrap_or_default();
        if !is_terminal(pod) {
            if self.runs().contains_key(&uid) {
                self.events.containers_stopping(pod, node);
            }
            let run = self.run_of(pod, node, false)?;
            self.sync_status(pod, &run, true, None).await?;
        }
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&pod.name_any(), &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(PodError::Api(key(pod), e)),
        }
        tracing::debug!(pod = %key(pod), "deleted");
        self.forget(&uid);
        Ok(())
    }
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// One pass over one pod: start it, finish it, or tear it down.
pub async fn reconcile(pod: Arc<Pod>, ctx: Arc<PodWorkers>) -> Result<Action, PodError> {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return Ok(Action::await_change());
    };
    if !ctx.nodes.contains_key(&node) {
        return Ok(Action::await_change());
    }
    if pod.metadata.deletion_timestamp.is_some() {
        ctx.terminate(&pod, &node).await?;
        return Ok(Action::await_change());
    }
    if is_terminal(&pod) {
        // finished: its sandbox is gone, its status stays as the last write left it
        ctx.forget(&pod.uid().unwrap_or_default());
        return Ok(Action::await_change());
    }
    let run = ctx.run_of(&pod, &node, true)?;
    let deadline = active_deadline(&pod, &run);
    if deadline.is_some_and(|d| d <= Timestamp::now()) {
        ctx.events.containers_stopping(&pod, &node);
        let eviction = Some(Eviction::deadline_exceeded());
        ctx.sync_status(&pod, &run, true, eviction).await?;
        return Ok(Action::await_change());
    }
    ctx.sync_status(&pod, &run, false, None).await?;
    let exit = planned_exit(&pod, run.started_at).map(|(at, _)| at);
    let next = [exit, deadline].into_iter().flatten().min().and_then(|at| {
        let wait = at.as_second() - Timestamp::now().as_second();
        (wait >= 0).then(|| Duration::from_secs(wait as u64 + 1))
    });
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// Retries a failed pass after a short pause.
pub fn error_policy(pod: Arc<Pod>, err: &PodError, _ctx: Arc<PodWorkers>) -> Action {
    tracing::warn!(pod = %key(&pod), "{err}");
    Action::requeue(Duration::from_secs(2))
}
