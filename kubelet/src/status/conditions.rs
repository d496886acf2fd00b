//! The conditions the kubelet owns (PodReadyToStartContainers, Initialized, Ready,
//! ContainersReady, PodScheduled), with upstream's reasons and messages, and the status
//! manager's rule for transition times: a condition keeps its `lastTransitionTime` while
//! its status does not change.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::phase::{any_regular_container_started, is_restartable_init_container};
use super::phases::{FAILED, SUCCEEDED};

/// Condition reasons, as upstream's kubelet spells them.
pub mod reasons {
    pub const UNKNOWN_CONTAINER_STATUSES: &str = "UnknownContainerStatuses";
    pub const POD_COMPLETED: &str = "PodCompleted";
    pub const POD_FAILED: &str = "PodFailed";
    pub const CONTAINERS_NOT_READY: &str = "ContainersNotReady";
    pub const CONTAINERS_NOT_INITIALIZED: &str = "ContainersNotInitialized";
    pub const READINESS_GATES_NOT_READY: &str = "ReadinessGatesNotReady";
}

/// The condition types the kubelet writes; others' conditions are kept as they are.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

fn cond(pod: &Pod, type_: &str, ok: bool, reason: Option<&str>, message: String) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message: (!message.is_empty()).then_some(message),
        observed_generation: pod.metadata.generation,
        ..Default::default()
    }
}

/// Go's `fmt.Sprintf("%s", []string{...})`: `[a b]`.
fn go_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn containers_ready(
    pod: &Pod,
    spec: &PodSpec,
    all: &[ContainerStatus],
    phase: &str,
) -> PodCondition {
    const T: &str = "ContainersReady";
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_restartable_init_container(c));
    let (mut unknown, mut unready) = (Vec::new(), Vec::new());
    for c in sidecars.chain(spec.containers.iter()) {
        match find(all, &c.name) {
            Some(s) if !s.ready => unready.push(c.name.clone()),
            Some(_) => {}
            None => unknown.push(c.name.clone()),
        }
    }
    if (phase == SUCCEEDED && unknown.is_empty()) || phase == FAILED {
        let reason = if phase == FAILED {
            reasons::POD_FAILED
        } else {
            reasons::POD_COMPLETED
        };
        return cond(pod, T, false, Some(reason), String::new());
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !unready.is_empty() {
        messages.push(format!(
            "containers with unready status: {}",
            go_list(&unready)
        ));
    }
    if messages.is_empty() {
        return cond(pod, T, true, None, String::new());
    }
    cond(
        pod,
        T,
        false,
        Some(reasons::CONTAINERS_NOT_READY),
        messages.join(", "),
    )
}

fn ready(pod: &Pod, containers_ready: &PodCondition, others: &[PodCondition]) -> PodCondition {
    const T: &str = "Ready";
    if containers_ready.status != "True" {
        let mut c = containers_ready.clone();
        c.type_ = T.to_string();
        return c;
    }
    let gates = pod
        .spec
        .iter()
        .flat_map(|s| s.readiness_gates.iter().flatten());
    let mut messages = Vec::new();
    for g in gates {
        match others.iter().find(|c| c.type_ == g.condition_type) {
            None => messages.push(format!(
                "corresponding condition of pod readiness gate {:?} does not exist.",
                g.condition_type
            )),
            Some(c) if c.status != "True" => messages.push(format!(
                "the status of pod readiness gate {:?} is not \"True\", but {}",
                g.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        return cond(pod, T, true, None, String::new());
    }
    cond(
        pod,
        T,
        false,
        Some(reasons::READINESS_GATES_NOT_READY),
        messages.join(", "),
    )
}

fn initialized(pod: &Pod, spec: &PodSpec, all: &[ContainerStatus], phase: &str) -> PodCondition {
    const T: &str = "Initialized";
    let (mut unknown, mut incomplete) = (Vec::new(), Vec::new());
    for c in spec.init_containers.iter().flatten() {
        let Some(s) = find(all, &c.name) else {
            unknown.push(c.name.clone());
            continue;
        };
        let done = if is_restartable_init_container(c) {
            s.started == Some(true)
        } else {
            s.ready
        };
        if !done {
            incomplete.push(c.name.clone());
        }
    }
    if phase == SUCCEEDED && unknown.is_empty() {
        return cond(pod, T, true, Some(reasons::POD_COMPLETED), String::new());
    }
    if any_regular_container_started(spec, all) {
        return cond(pod, T, true, None, String::new());
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !incomplete.is_empty() {
        messages.push(format!(
            "containers with incomplete status: {}",
            go_list(&incomplete)
        ));
    }
    if messages.is_empty() {
        return cond(pod, T, true, None, String::new());
    }
    let reason = reasons::CONTAINERS_NOT_INITIALIZED;
    cond(pod, T, false, Some(reason), messages.join(", "))
}

/// The pod's next conditions: others' conditions first, as they were, then the
/// kubelet's in upstream's order. Transition times carry over from `old` for conditions
/// whose status did not change.
pub(crate) fn pod_conditions(
    pod: &Pod,
    old: &PodStatus,
    all: &[ContainerStatus],
    phase: &str,
    sandbox_ready: bool,
    now: Timestamp,
) -> Vec<PodCondition> {
    let spec = pod.spec.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let mut out: Vec<PodCondition> = old_conditions
        .iter()
        .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    let others = out.clone();
    let containers = containers_ready(pod, &spec, all, phase);
    out.push(cond(
        pod,
        "PodReadyToStartContainers",
        sandbox_ready,
        None,
        String::new(),
    ));
    out.push(initialized(pod, &spec, all, phase));
    out.push(ready(pod, &containers, &others));
    out.push(containers);
    let mut scheduled = cond(pod, "PodScheduled", true, None, String::new());
    // the scheduler wrote this one; the kubelet does not claim a generation for it
    scheduled.observed_generation = None;
    out.push(scheduled);
    for c in out.iter_mut().skip(others.len()) {
        let before = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match before {
            Some(o) if o.status == c.status && o.last_transition_time.is_some() => {
                o.last_transition_time.clone()
            }
            _ => Some(Time(now)),
        };
        if c.type_ == "PodScheduled" {
            c.observed_generation = before.and_then(|o| o.observed_generation);
        }
    }
    out
}
