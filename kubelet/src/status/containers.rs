//! Container statuses: from the spec's containers and the runtime's view of them, the API
//! `ContainerStatus` entries (state, lastState, ready, started, restartCount, image,
//! imageID, containerID, volumeMounts, resources), plus the image and container id
//! spellings a containerd-based node reports.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, ResourceRequirements, VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::{Digest, Sha256};

use super::phase::is_restartable_init_container;
use super::{ContainerRuntimeStatus, RuntimeState, StatusInputs, Terminated};

/// The waiting reason of a container not created yet.
const CONTAINER_CREATING: &str = "ContainerCreating";
/// ... of a container whose pod still runs its init containers.
const POD_INITIALIZING: &str = "PodInitializing";

fn hex_sha256(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A containerd-style container id, stable for one run of one container of one pod.
pub fn container_id(pod_uid: &str, container: &str, restart_count: i32) -> String {
    let n = restart_count.to_string();
    format!("containerd://{}", hex_sha256(&[pod_uid, container, &n]))
}

/// The fully qualified reference a runtime reports for an image the spec names:
/// `nginx` -> `docker.io/library/nginx:latest`, and its digest reference
/// (`docker.io/library/nginx@sha256:...`, derived from the name: no registry is asked).
pub fn normalize_image(image: &str) -> (String, String) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let repo = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    // a tag is what follows the last ':' after the last '/'
    let slash = repo.rfind('/').map_or(0, |i| i + 1);
    let (bare, tag) = match repo[slash..].rfind(':') {
        Some(i) => (&repo[..slash + i], &repo[slash + i + 1..]),
        None => (repo.as_str(), "latest"),
    };
    if let Some(d) = digest {
        return (format!("{repo}@{d}"), format!("{bare}@{d}"));
    }
    let reference = format!("{bare}:{tag}");
    let id = format!("{bare}@sha256:{}", hex_sha256(&[&reference]));
    (reference, id)
}

fn terminated_state(t: &Terminated, container_id: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(container_id.to_string()),
            exit_code: t.exit_code,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: Some(Time(t.started_at)),
            finished_at: Some(Time(t.finished_at)),
            signal: None,
        }),
        ..Default::default()
    }
}

fn waiting_state(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..Default::default()
    }
}

/// The container's resources as the status reports them: cpu, memory and ephemeral
/// storage requests and limits, when any is set.
fn status_resources(c: &Container) -> Option<ResourceRequirements> {
    let keep = |m: &Option<BTreeMap<String, Quantity>>| -> Option<BTreeMap<String, Quantity>> {
        let m: BTreeMap<_, _> = m
            .iter()
            .flatten()
            .filter(|(k, _)| matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!m.is_empty()).then_some(m)
    };
    let r = c.resources.as_ref()?;
    let (limits, requests) = (keep(&r.limits), keep(&r.requests));
    (limits.is_some() || requests.is_some()).then(|| ResourceRequirements {
        limits,
        requests,
        ..Default::default()
    })
}

fn volume_mounts(c: &Container) -> Option<Vec<VolumeMountStatus>> {
    let mounts = c.volume_mounts.as_ref().filter(|m| !m.is_empty())?;
    Some(
        mounts
            .iter()
            .map(|m| {
                let ro = m.read_only == Some(true);
                VolumeMountStatus {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: ro.then_some(true),
                    recursive_read_only: ro.then(|| "Disabled".to_string()),
                }
            })
            .collect(),
    )
}

fn from_runtime(c: &Container, r: &ContainerRuntimeStatus, is_init: bool) -> ContainerStatus {
    let running = matches!(r.state, RuntimeState::Running { .. });
    let started = running && (c.startup_probe.is_none() || r.startup_probe_succeeded == Some(true));
    let ready = match &r.state {
        // a regular init container is ready once it has succeeded, never while it runs
        RuntimeState::Exited(t) if is_init && !is_restartable_init_container(c) => t.exit_code == 0,
        _ if is_init && !is_restartable_init_container(c) => false,
        RuntimeState::Running { .. } => {
            started && (c.readiness_probe.is_none() || r.readiness_probe_succeeded == Some(true))
        }
        _ => false,
    };
    let state = match &r.state {
        RuntimeState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        RuntimeState::Exited(t) => terminated_state(t, &r.container_id),
        RuntimeState::Waiting { reason, message } => waiting_state(
            reason.as_deref().unwrap_or(CONTAINER_CREATING),
            message.clone(),
        ),
    };
    ContainerStatus {
        name: c.name.clone(),
        container_id: (!r.container_id.is_empty()).then(|| r.container_id.clone()),
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        state: Some(state),
        last_state: Some(
            r.last_termination
                .as_ref()
                .map(|t| terminated_state(t, ""))
                .unwrap_or_default(),
        ),
        ready,
        started: Some(started),
        restart_count: r.restart_count,
        resources: status_resources(c),
        allocated_resources: status_resources(c).and_then(|r| r.requests),
        volume_mounts: volume_mounts(c),
        ..Default::default()
    }
}

/// The statuses of `containers` (a pod's init or regular containers, in spec order).
pub(crate) fn container_statuses(
    containers: Option<&[Container]>,
    inputs: &StatusInputs<'_>,
    has_init: bool,
    is_init: bool,
) -> Vec<ContainerStatus> {
    let default_reason = if has_init {
        POD_INITIALIZING
    } else {
        CONTAINER_CREATING
    };
    containers
        .unwrap_or_default()
        .iter()
        .map(|c| match inputs.runtime.container(&c.name) {
            Some(r) => {
                let mut s = from_runtime(c, r, is_init);
                if let RuntimeState::Waiting { reason: None, .. } = r.state {
                    s.state = Some(waiting_state(default_reason, None));
                }
                s
            }
            None => ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                state: Some(waiting_state(default_reason, None)),
                last_state: Some(ContainerState::default()),
                started: Some(false),
                resources: status_resources(c),
                ..Default::default()
            },
        })
        .collect()
}
