//! The pod status lifecycle, as upstream's kubelet computes it: from a Pod (spec and the
//! status last written) and what the runtime reports about the pod's sandbox and
//! containers, the next `PodStatus` (phase, kubelet-owned conditions, container statuses,
//! IPs, QoS class, start time).
//!
//! Pure functions, no I/O: the simulated nodes use them today and the real kubelet's pod
//! workers will use them over CRI. What counts as "the runtime" is [`PodRuntimeStatus`];
//! timestamps come in as arguments so the result is reproducible.

mod conditions;
mod containers;
mod phase;
mod qos;

pub use conditions::{KUBELET_CONDITIONS, reasons};
pub use containers::{container_id, normalize_image};
pub use phase::pod_phase;
pub use qos::{parse_quantity_milli, pod_qos_class};

use k8s_openapi::api::core::v1::{HostIP, Pod, PodIP, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Pod phases, as the API spells them.
pub mod phases {
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
}

/// How a container ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Terminated {
    pub exit_code: i32,
    /// `Completed` for exit code 0, `Error` otherwise, unless the runtime says better
    /// (`OOMKilled`, `ContainerCannotRun`).
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

impl Terminated {
    /// A normal exit with the runtime's usual reason for `exit_code`.
    pub fn exited(exit_code: i32, started_at: Timestamp, finished_at: Timestamp) -> Self {
        Terminated {
            exit_code,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.to_string(),
            message: None,
            started_at,
            finished_at,
        }
    }
}

/// What the runtime says one container is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeState {
    /// Not started: being created, or waiting with a reason (`CrashLoopBackOff`,
    /// `ImagePullBackOff`, ...). `None` means the default waiting reason.
    Waiting {
        reason: Option<String>,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Exited(Terminated),
}

/// One container as the runtime reports it (an init or a regular container).
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerRuntimeStatus {
    pub name: String,
    /// `<runtime>://<id>`, e.g. `containerd://4f1c...`.
    pub container_id: String,
    /// The image as the runtime resolved it (`docker.io/library/nginx:latest`).
    pub image: String,
    /// The image's digest reference (`docker.io/library/nginx@sha256:...`).
    pub image_id: String,
    pub state: RuntimeState,
    pub restart_count: i32,
    /// The previous run's end, after a restart.
    pub last_termination: Option<Terminated>,
    /// The startup probe's result: `None` before its first success (ignored when the
    /// container has no startup probe).
    pub startup_probe_succeeded: Option<bool>,
    /// The readiness probe's last result (ignored when the container has no probe).
    pub readiness_probe_succeeded: Option<bool>,
}

/// What the runtime says about the pod as a whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRuntimeStatus {
    /// The sandbox exists and its network is configured.
    pub sandbox_ready: bool,
    /// The sandbox's IPs, primary first.
    pub ips: Vec<String>,
    /// Every container the runtime knows, init containers included.
    pub containers: Vec<ContainerRuntimeStatus>,
}

impl PodRuntimeStatus {
    pub fn container(&self, name: &str) -> Option<&ContainerRuntimeStatus> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// Everything [`generate_pod_status`] needs besides the pod.
#[derive(Clone, Debug)]
pub struct StatusInputs<'a> {
    pub runtime: &'a PodRuntimeStatus,
    /// The node's IPs, primary first.
    pub host_ips: &'a [String],
    /// The kubelet will not restart the pod's containers again (it is being deleted, or
    /// has finished): terminated containers then make the pod Succeeded or Failed
    /// whatever the restart policy.
    pub pod_is_terminal: bool,
    /// Set when the kubelet evicts the pod (active deadline exceeded, node pressure):
    /// the pod fails with this reason and message whatever its containers do.
    pub eviction: Option<Eviction>,
    pub now: Timestamp,
}

/// Why the kubelet failed a pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Eviction {
    pub reason: String,
    pub message: String,
}

impl Eviction {
    /// `spec.activeDeadlineSeconds` has passed since the pod started.
    pub fn deadline_exceeded() -> Self {
        Eviction {
            reason: "DeadlineExceeded".into(),
            message: "Pod was active on the node longer than the specified deadline".into(),
        }
    }
}

/// The status the kubelet writes next for `pod`, given what the runtime reports. The
/// pod's current `status` is the "old" status: it keeps start time, transition times,
/// other writers' conditions, and a terminal phase once reached.
pub fn generate_pod_status(pod: &Pod, inputs: &StatusInputs<'_>) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let generation = pod.metadata.generation;
    let has_init = spec.init_containers.as_ref().is_some_and(|c| !c.is_empty());

    let init_statuses =
        containers::container_statuses(spec.init_containers.as_deref(), inputs, has_init, true);
    let statuses = containers::container_statuses(Some(&spec.containers), inputs, has_init, false);
    let mut all = init_statuses.clone();
    all.extend(statuses.iter().cloned());

    let mut phase = pod_phase(&spec, &all, inputs.pod_is_terminal).to_string();
    let old_phase = old.phase.clone().unwrap_or_default();
    let terminal = |p: &str| p == phases::SUCCEEDED || p == phases::FAILED;
    // a pod never leaves a terminal phase
    if !terminal(&phase) && terminal(&old_phase) {
        phase = old_phase.clone();
    }
    let (mut reason, mut message) = if phase == old_phase {
        (old.reason.clone(), old.message.clone())
    } else {
        (None, None)
    };
    if let Some(e) = &inputs.eviction
        && !terminal(&old_phase)
    {
        phase = phases::FAILED.to_string();
        reason = Some(e.reason.clone());
        message = Some(e.message.clone());
    }

    let conditions = conditions::pod_conditions(
        pod,
        &old,
        &all,
        &phase,
        inputs.runtime.sandbox_ready,
        inputs.now,
    );

    let mut pod_ips: Vec<String> = inputs.runtime.ips.clone();
    if spec.host_network == Some(true) {
        pod_ips = match old.pod_ips.as_ref().filter(|ips| !ips.is_empty()) {
            Some(ips) => ips.iter().map(|i| i.ip.clone()).collect(),
            None => inputs.host_ips.to_vec(),
        };
    }
    let start_time = old.start_time.clone().unwrap_or(Time(inputs.now));

    PodStatus {
        phase: Some(phase),
        reason,
        message,
        conditions: Some(conditions),
        host_ip: inputs.host_ips.first().cloned(),
        host_ips: (!inputs.host_ips.is_empty()).then(|| {
            inputs
                .host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.into_iter().map(|ip| PodIP { ip }).collect()),
        qos_class: Some(
            old.qos_class
                .clone()
                .unwrap_or_else(|| pod_qos_class(&spec).to_string()),
        ),
        start_time: Some(start_time),
        init_container_statuses: has_init.then_some(init_statuses),
        container_statuses: Some(statuses),
        observed_generation: generation,
        // the rest (nominatedNodeName, resize, resource claims, ...) belongs to others
        ..old
    }
}

#[cfg(test)]
mod tests;
