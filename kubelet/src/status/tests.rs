use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;

fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).expect("pod")
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("ts")
}

fn web() -> Pod {
    pod(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 1},
        "spec": {"nodeName": "sim-0", "containers": [{"name": "nginx", "image": "nginx"}]},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2023-11-14T22:13:00Z"}
        ]}
    }))
}

fn running(name: &str, at: Timestamp) -> ContainerRuntimeStatus {
    let (image, image_id) = normalize_image("nginx");
    ContainerRuntimeStatus {
        name: name.into(),
        container_id: container_id("u1", name, 0),
        image,
        image_id,
        state: RuntimeState::Running { started_at: at },
        restart_count: 0,
        last_termination: None,
        startup_probe_succeeded: None,
        readiness_probe_succeeded: None,
    }
}

fn exited(name: &str, code: i32) -> ContainerRuntimeStatus {
    ContainerRuntimeStatus {
        state: RuntimeState::Exited(Terminated::exited(code, ts(1), ts(5))),
        ..running(name, ts(1))
    }
}

fn status(p: &Pod, rt: &PodRuntimeStatus, terminal: bool, now: Timestamp) -> PodStatus {
    let host = vec!["172.16.0.2".to_string()];
    let inputs = StatusInputs {
        runtime: rt,
        host_ips: &host,
        pod_is_terminal: terminal,
        eviction: None,
        now,
    };
    generate_pod_status(p, &inputs)
}

fn condition<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == t)
        .expect("condition")
}

#[test]
fn running_pod_is_ready_with_ips_and_upstream_condition_order() {
    let rt = PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec!["10.128.0.2".into()],
        containers: vec![running("nginx", ts(1))],
    };
    let s = status(&web(), &rt, false, ts(2));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let types: Vec<_> = s
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    assert!(s.conditions.iter().flatten().all(|c| c.status == "True"));
    // the scheduler's transition time is kept; the kubelet's are now
    let sched = condition(&s, "PodScheduled");
    assert_eq!(
        sched.last_transition_time.as_ref().map(|t| t.0.as_second()),
        Some(1_699_999_980)
    );
    assert_eq!(
        condition(&s, "Ready")
            .last_transition_time
            .as_ref()
            .map(|t| t.0),
        Some(ts(2))
    );
    assert_eq!(condition(&s, "Ready").observed_generation, Some(1));
    assert_eq!(s.pod_ip.as_deref(), Some("10.128.0.2"));
    assert_eq!(
        s.pod_ips.as_ref().map(|v| v[0].ip.as_str()),
        Some("10.128.0.2")
    );
    assert_eq!(s.host_ip.as_deref(), Some("172.16.0.2"));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    assert_eq!(s.start_time.as_ref().map(|t| t.0), Some(ts(2)));
    let c = &s.container_statuses.as_ref().expect("statuses")[0];
    assert!(c.ready);
    assert_eq!(c.started, Some(true));
    assert_eq!(c.image, "docker.io/library/nginx:latest");
    assert!(c.image_id.starts_with("docker.io/library/nginx@sha256:"));
    assert!(
        c.container_id
            .as_deref()
            .is_some_and(|i| i.starts_with("containerd://"))
    );
    let started = c
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.clone());
    assert_eq!(started.map(|t| t.0), Some(ts(1)));
    assert!(s.init_container_statuses.is_none());
}

#[test]
fn transition_times_and_start_time_survive_a_rewrite() {
    let rt = PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec!["10.128.0.2".into()],
        containers: vec![running("nginx", ts(1))],
    };
    let mut p = web();
    p.status = Some(status(&p, &rt, false, ts(2)));
    let again = status(&p, &rt, false, ts(50));
    assert_eq!(
        condition(&again, "Ready")
            .last_transition_time
            .as_ref()
            .map(|t| t.0),
        Some(ts(2))
    );
    assert_eq!(again.start_time.as_ref().map(|t| t.0), Some(ts(2)));
}

#[test]
fn creating_containers_are_pending_and_not_ready() {
    let rt = PodRuntimeStatus::default();
    let s = status(&web(), &rt, false, ts(2));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(condition(&s, "PodReadyToStartContainers").status, "False");
    let ready = condition(&s, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [nginx]")
    );
    let c = &s.container_statuses.as_ref().expect("statuses")[0];
    let waiting = c
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref());
    assert_eq!(waiting, Some("ContainerCreating"));
    assert_eq!(s.pod_ip, None);
}

#[test]
fn init_containers_gate_initialized_and_regular_containers_wait() {
    let mut p = web();
    p.spec.as_mut().expect("spec").init_containers = Some(vec![
        serde_json::from_value(json!({"name": "setup", "image": "busybox"})).expect("c"),
    ]);
    let rt = PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec!["10.128.0.3".into()],
        containers: vec![running("setup", ts(1))],
    };
    let s = status(&p, &rt, false, ts(2));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let init = condition(&s, "Initialized");
    assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [setup]")
    );
    let c = &s.container_statuses.as_ref().expect("statuses")[0];
    let waiting = c
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref());
    assert_eq!(waiting, Some("PodInitializing"));

    // init done (exit 0 makes it ready), main running
    let rt = PodRuntimeStatus {
        containers: vec![exited("setup", 0), running("nginx", ts(6))],
        ..rt
    };
    let s = status(&p, &rt, false, ts(7));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Initialized").status, "True");
    let init = &s.init_container_statuses.as_ref().expect("init statuses")[0];
    assert!(init.ready);
    assert_eq!(init.started, Some(false));
    let reason = init
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.reason.as_deref());
    assert_eq!(reason, Some("Completed"));
}

#[test]
fn failed_init_container_fails_a_never_restart_pod() {
    let mut p = web();
    let spec = p.spec.as_mut().expect("spec");
    spec.restart_policy = Some("Never".into());
    spec.init_containers = Some(vec![
        serde_json::from_value(json!({"name": "setup", "image": "busybox"})).expect("c"),
    ]);
    let rt = PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec![],
        containers: vec![exited("setup", 1)],
    };
    assert_eq!(
        status(&p, &rt, false, ts(7)).phase.as_deref(),
        Some("Failed")
    );
}

#[test]
fn completed_containers_by_restart_policy() {
    let rt = |code| PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec!["10.128.0.2".into()],
        containers: vec![exited("nginx", code)],
    };
    let with_policy = |policy: &str| {
        let mut p = web();
        p.spec.as_mut().expect("spec").restart_policy = Some(policy.into());
        p
    };
    let s = status(&with_policy("Never"), &rt(0), false, ts(9));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!(
        condition(&s, "Ready").reason.as_deref(),
        Some("PodCompleted")
    );
    assert_eq!(
        condition(&s, "ContainersReady").reason.as_deref(),
        Some("PodCompleted")
    );
    assert_eq!(
        condition(&s, "Initialized").reason.as_deref(),
        Some("PodCompleted")
    );
    let s = status(&with_policy("Never"), &rt(3), false, ts(9));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(condition(&s, "Ready").reason.as_deref(), Some("PodFailed"));
    let t = s.container_statuses.as_ref().expect("s")[0]
        .state
        .clone()
        .and_then(|s| s.terminated);
    assert_eq!(
        t.as_ref().map(|t| (t.exit_code, t.reason.as_deref())),
        Some((3, Some("Error")))
    );
    // restarting containers keep an Always pod Running, until the pod is terminal
    assert_eq!(
        status(&with_policy("Always"), &rt(0), false, ts(9))
            .phase
            .as_deref(),
        Some("Running")
    );
    assert_eq!(
        status(&with_policy("OnFailure"), &rt(1), false, ts(9))
            .phase
            .as_deref(),
        Some("Running")
    );
    assert_eq!(
        status(&with_policy("Always"), &rt(0), true, ts(9))
            .phase
            .as_deref(),
        Some("Succeeded")
    );
    assert_eq!(
        status(&with_policy("Always"), &rt(137), true, ts(9))
            .phase
            .as_deref(),
        Some("Failed")
    );
}

#[test]
fn terminal_phase_is_sticky_and_keeps_reason() {
    let mut p = web();
    let st = p.status.as_mut().expect("status");
    st.phase = Some("Failed".into());
    st.reason = Some("Evicted".into());
    let rt = PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec![],
        containers: vec![running("nginx", ts(1))],
    };
    let s = status(&p, &rt, false, ts(3));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(s.reason.as_deref(), Some("Evicted"));
}

#[test]
fn readiness_gates_and_probes() {
    let mut p = web();
    p.spec.as_mut().expect("spec").readiness_gates = Some(vec![
        serde_json::from_value(json!({"conditionType": "example.com/lb"})).expect("g"),
    ]);
    let rt = PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec![],
        containers: vec![running("nginx", ts(1))],
    };
    let s = status(&p, &rt, false, ts(3));
    let ready = condition(&s, "Ready");
    assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
    );
    assert_eq!(condition(&s, "ContainersReady").status, "True");
    // another writer's condition is kept, first, and satisfies the gate
    p.status
        .as_mut()
        .expect("st")
        .conditions
        .as_mut()
        .expect("c")
        .push(PodCondition {
            type_: "example.com/lb".into(),
            status: "True".into(),
            ..Default::default()
        });
    let s = status(&p, &rt, false, ts(3));
    assert_eq!(s.conditions.as_ref().expect("c")[0].type_, "example.com/lb");
    assert_eq!(condition(&s, "Ready").status, "True");

    // a readiness probe without a result yet: running but not ready
    let mut p = web();
    p.spec.as_mut().expect("spec").containers[0].readiness_probe =
        Some(serde_json::from_value(json!({"exec": {"command": ["true"]}})).expect("probe"));
    let s = status(&p, &rt, false, ts(3));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert!(!s.container_statuses.as_ref().expect("s")[0].ready);
}

#[test]
fn host_network_pods_take_the_node_ip() {
    let mut p = web();
    p.spec.as_mut().expect("spec").host_network = Some(true);
    let rt = PodRuntimeStatus {
        sandbox_ready: true,
        ips: vec![],
        containers: vec![running("nginx", ts(1))],
    };
    let s = status(&p, &rt, false, ts(3));
    assert_eq!(s.pod_ip.as_deref(), Some("172.16.0.2"));
}

fn qos(containers: serde_json::Value) -> &'static str {
    let spec = serde_json::from_value(json!({"containers": containers})).expect("spec");
    pod_qos_class(&spec)
}

#[test]
fn qos_classes() {
    assert_eq!(qos(json!([{"name": "a"}])), "BestEffort");
    let g = json!({"cpu": "500m", "memory": "1Gi"});
    assert_eq!(
        qos(json!([{"name": "a", "resources": {"requests": g, "limits": g}}])),
        "Guaranteed"
    );
    assert_eq!(
        qos(
            json!([{"name": "a", "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": g}}])
        ),
        "Guaranteed"
    );
    assert_eq!(
        qos(json!([{"name": "a", "resources": {"requests": {"cpu": "100m"}}}])),
        "Burstable"
    );
    assert_eq!(
        qos(json!([{"name": "a", "resources": {"requests": g, "limits": g}}, {"name": "b"}])),
        "Burstable"
    );
}

#[test]
fn quantities() {
    assert_eq!(parse_quantity_milli("100m"), Some(100));
    assert_eq!(parse_quantity_milli("1.5"), Some(1500));
    assert_eq!(parse_quantity_milli("2Ki"), Some(2_048_000));
    assert_eq!(parse_quantity_milli("1e3"), Some(1_000_000));
    assert_eq!(parse_quantity_milli("32Gi"), Some(32 * (1 << 30) * 1000));
    assert_eq!(parse_quantity_milli("1n"), Some(1));
    assert_eq!(parse_quantity_milli("x"), None);
}

#[test]
fn image_references() {
    let (img, id) = normalize_image("nginx");
    assert_eq!(img, "docker.io/library/nginx:latest");
    assert!(id.starts_with("docker.io/library/nginx@sha256:"));
    assert_eq!(
        normalize_image("bitnami/redis:7").0,
        "docker.io/bitnami/redis:7"
    );
    assert_eq!(
        normalize_image("registry.k8s.io/pause:3.10").0,
        "registry.k8s.io/pause:3.10"
    );
    assert_eq!(
        normalize_image("localhost:5000/app").0,
        "localhost:5000/app:latest"
    );
    assert_eq!(container_id("u", "c", 0), container_id("u", "c", 0));
    assert_ne!(container_id("u", "c", 0), container_id("u", "c", 1));
}

#[test]
fn an_exceeded_deadline_fails_the_pod() {
    let rt = PodRuntimeStatus {
        sandbox_ready: false,
        ips: vec!["10.128.0.2".into()],
        containers: vec![exited("nginx", 137)],
    };
    let host = vec!["172.16.0.2".to_string()];
    let inputs = StatusInputs {
        runtime: &rt,
        host_ips: &host,
        pod_is_terminal: true,
        eviction: Some(Eviction::deadline_exceeded()),
        now: ts(9),
    };
    let s = generate_pod_status(&web(), &inputs);
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        s.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    assert_eq!(condition(&s, "Ready").reason.as_deref(), Some("PodFailed"));
}
