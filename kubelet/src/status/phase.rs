//! The pod phase from its container statuses, by upstream's rules: init containers gate
//! Pending, regular (and sidecar) containers decide Running, Succeeded or Failed, and the
//! restart policy decides what "all containers stopped" means.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, PodSpec};

use super::phases::{FAILED, PENDING, RUNNING, SUCCEEDED};

/// A sidecar: an init container with `restartPolicy: Always`.
pub(crate) fn is_restartable_init_container(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn last_terminated_exit(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// True once any regular container has started (running, or terminated after running).
pub(crate) fn any_regular_container_started(spec: &PodSpec, statuses: &[ContainerStatus]) -> bool {
    spec.containers.iter().any(|c| {
        find(statuses, &c.name).is_some_and(|s| {
            s.state
                .as_ref()
                .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
                || last_terminated_exit(s).is_some()
        })
    })
}

#[derive(Default)]
struct Counts {
    pending_init: usize,
    failed_init: usize,
    unknown: usize,
    running: usize,
    waiting: usize,
    stopped: usize,
    succeeded: usize,
}

fn count(spec: &PodSpec, statuses: &[ContainerStatus]) -> Counts {
    let mut n = Counts::default();
    let init = spec.init_containers.as_deref().unwrap_or_default();
    for c in init.iter().filter(|c| !is_restartable_init_container(c)) {
        let Some(st) = find(statuses, &c.name).and_then(|s| s.state.as_ref().map(|st| (s, st)))
        else {
            n.pending_init += 1;
            continue;
        };
        match st {
            (_, st) if st.running.is_some() => n.pending_init += 1,
            (_, st) if st.terminated.is_some() => {
                if st.terminated.as_ref().is_some_and(|t| t.exit_code != 0) {
                    n.failed_init += 1;
                }
            }
            (s, st) if st.waiting.is_some() => match last_terminated_exit(s) {
                Some(code) if code != 0 => n.failed_init += 1,
                Some(_) => {}
                None => n.pending_init += 1,
            },
            _ => n.pending_init += 1,
        }
    }
    for c in init.iter().filter(|c| is_restartable_init_container(c)) {
        let Some(s) = find(statuses, &c.name) else {
            n.unknown += 1;
            continue;
        };
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            if s.started != Some(true) {
                n.pending_init += 1;
            }
            n.running += 1;
        } else if st.terminated.is_some() {
            // a stopped sidecar does not count towards the phase
        } else if st.waiting.is_some() {
            if last_terminated_exit(s).is_none() {
                n.pending_init += 1;
                n.waiting += 1;
            }
        } else {
            n.pending_init += 1;
            n.unknown += 1;
        }
    }
    for c in &spec.containers {
        let Some(s) = find(statuses, &c.name) else {
            n.unknown += 1;
            continue;
        };
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            n.running += 1;
        } else if let Some(t) = &st.terminated {
            n.stopped += 1;
            if t.exit_code == 0 {
                n.succeeded += 1;
            }
        } else if st.waiting.is_some() {
            if last_terminated_exit(s).is_some() {
                n.stopped += 1;
            } else {
                n.waiting += 1;
            }
        } else {
            n.unknown += 1;
        }
    }
    n
}

/// The phase of a pod whose containers (init and regular) report `statuses`.
/// `pod_is_terminal`: the kubelet will not restart anything any more.
pub fn pod_phase(
    spec: &PodSpec,
    statuses: &[ContainerStatus],
    pod_is_terminal: bool,
) -> &'static str {
    let n = count(spec, statuses);
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if n.failed_init > 0 && policy == "Never" {
        return FAILED;
    }
    let initializing = n.pending_init > 0 && !any_regular_container_started(spec, statuses);
    if initializing || n.waiting > 0 {
        return PENDING;
    }
    if n.running > 0 && n.unknown == 0 {
        return RUNNING;
    }
    if n.running == 0 && n.stopped > 0 && n.unknown == 0 {
        if pod_is_terminal {
            return if n.stopped == n.succeeded {
                SUCCEEDED
            } else {
                FAILED
            };
        }
        return match policy {
            // everything is on its way to a restart
            "Always" => RUNNING,
            _ if n.stopped == n.succeeded => SUCCEEDED,
            "Never" => FAILED,
            // OnFailure: the failed ones restart
            _ => RUNNING,
        };
    }
    PENDING
}
