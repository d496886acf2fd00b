use serde_json::{Value, json};

use super::*;

fn run(
    f: fn(&PodView) -> Option<CheckResult>,
    metadata: Value,
    spec: Value,
) -> Option<(String, String)> {
    f(&PodView {
        metadata: &metadata,
        spec: &spec,
    })
    .map(|r| (r.forbidden_reason, r.forbidden_detail))
}

fn fails(f: fn(&PodView) -> Option<CheckResult>, spec: Value, reason: &str, detail: &str) {
    assert_eq!(
        run(f, json!({}), spec),
        Some((reason.to_string(), detail.to_string()))
    );
}

fn passes(f: fn(&PodView) -> Option<CheckResult>, spec: Value) {
    assert_eq!(run(f, json!({}), spec), None);
}

#[test]
fn privileged_containers() {
    passes(
        privileged,
        json!({"containers": [{"name": "a", "securityContext": {"privileged": false}}]}),
    );
    fails(
        privileged,
        json!({
            "initContainers": [{"name": "i", "securityContext": {"privileged": true}}],
            "containers": [{"name": "a", "securityContext": {"privileged": true}}, {"name": "b"}],
        }),
        "privileged",
        r#"containers "i", "a" must not set securityContext.privileged=true"#,
    );
    fails(
        privileged,
        json!({"ephemeralContainers": [{"name": "e", "securityContext": {"privileged": true}}]}),
        "privileged",
        r#"container "e" must not set securityContext.privileged=true"#,
    );
}

#[test]
fn baseline_capabilities() {
    passes(
        capabilities_baseline,
        json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["CHOWN", "KILL"]}}}]}),
    );
    fails(
        capabilities_baseline,
        json!({"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]}}},
            {"name": "b", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}},
        ]}),
        "non-default capabilities",
        r#"containers "a", "b" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add"#,
    );
}

#[test]
fn host_namespaces_sorted() {
    passes(host_namespaces, json!({"hostNetwork": false}));
    fails(
        host_namespaces,
        json!({"hostPID": true, "hostNetwork": true, "hostIPC": true}),
        "host namespaces",
        "hostIPC, hostNetwork, hostPID",
    );
}

#[test]
fn host_path() {
    passes(
        host_path_volumes,
        json!({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "n", "hostPath": null}]}),
    );
    fails(
        host_path_volumes,
        json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
        "hostPath volumes",
        r#"volume "h""#,
    );
    fails(
        host_path_volumes,
        json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "g", "hostPath": {}}]}),
        "hostPath volumes",
        r#"volumes "h", "g""#,
    );
}

#[test]
fn host_ports_listed_as_sorted_strings() {
    passes(
        host_ports,
        json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 0}]}]}),
    );
    fails(
        host_ports,
        json!({"containers": [{"name": "a", "ports": [{"hostPort": 8080}]}]}),
        "hostPort",
        r#"container "a" uses hostPort 8080"#,
    );
    fails(
        host_ports,
        json!({"containers": [
            {"name": "a", "ports": [{"hostPort": 9090}, {"hostPort": 10000}]},
            {"name": "b", "ports": [{"hostPort": 9090}]},
        ]}),
        "hostPort",
        r#"containers "a", "b" use hostPorts 10000, 9090"#,
    );
}

#[test]
fn probe_and_lifecycle_hosts() {
    passes(
        host_probes_and_lifecycle,
        json!({"containers": [{"name": "a", "livenessProbe": {"httpGet": {"host": "", "port": 80}}}]}),
    );
    fails(
        host_probes_and_lifecycle,
        json!({"containers": [
            {"name": "b", "livenessProbe": {"httpGet": {"host": "10.0.0.1"}}},
            {"name": "a", "lifecycle": {"preStop": {"tcpSocket": {"host": "example.com"}}}},
        ]}),
        "probe or lifecycle host",
        r#"containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "example.com""#,
    );
    fails(
        host_probes_and_lifecycle,
        json!({"containers": [{"name": "a", "startupProbe": {"tcpSocket": {"host": "h"}}}]}),
        "probe or lifecycle host",
        r#"container "a" uses probe or lifecycle host "h""#,
    );
}

#[test]
fn host_process() {
    passes(
        windows_host_process,
        json!({"securityContext": {"windowsOptions": {"hostProcess": false}}}),
    );
    fails(
        windows_host_process,
        json!({
            "securityContext": {"windowsOptions": {"hostProcess": true}},
            "containers": [{"name": "a", "securityContext": {"windowsOptions": {"hostProcess": true}}}],
        }),
        "hostProcess",
        r#"pod and container "a" must not set securityContext.windowsOptions.hostProcess=true"#,
    );
}

#[test]
fn app_armor_fields_and_annotations() {
    passes(
        app_armor_profile,
        json!({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
               "containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Localhost"}}}]}),
    );
    fails(
        app_armor_profile,
        json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
        "forbidden AppArmor profile",
        r#"pod must not set AppArmor profile type to "Unconfined""#,
    );
    fails(
        app_armor_profile,
        json!({"initContainers": [{"name": "bar", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}),
        "forbidden AppArmor profile",
        r#"container "bar" must not set AppArmor profile type to "Unconfined""#,
    );
    let p = "container.apparmor.security.beta.kubernetes.io/";
    let metadata = json!({"annotations": {
        p: "bogus",
        format!("{p}a"): "",
        format!("{p}b"): "runtime/default",
        format!("{p}c"): "localhost/",
        format!("{p}e"): "unconfined",
        format!("{p}f"): "unknown",
        "other": "unconfined",
    }});
    let expected = "annotations must not set AppArmor profile type to \
        \"container.apparmor.security.beta.kubernetes.io/=\"bogus\"\", \
        \"container.apparmor.security.beta.kubernetes.io/e=\"unconfined\"\", \
        \"container.apparmor.security.beta.kubernetes.io/f=\"unknown\"\"";
    assert_eq!(
        run(app_armor_profile, metadata, json!({})),
        Some((
            "forbidden AppArmor profiles".to_string(),
            expected.to_string()
        ))
    );
}

#[test]
fn se_linux_versions_and_details() {
    let engine = json!({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}});
    passes(se_linux_options_1_31, engine.clone());
    fails(
        se_linux_options_1_0,
        engine,
        "seLinuxOptions",
        r#"pod set forbidden securityContext.seLinuxOptions: type "container_engine_t""#,
    );
    fails(
        se_linux_options_1_31,
        json!({
            "securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
            "containers": [
                {"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_t"}}},
                {"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}},
                {"name": "f", "securityContext": {"seLinuxOptions": {"user": "bar"}}},
            ],
        }),
        "seLinuxOptions",
        r#"pod and containers "e", "f" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#,
    );
    fails(
        se_linux_options_1_31,
        json!({"securityContext": {"seLinuxOptions": {"role": "bad"}}}),
        "seLinuxOptions",
        "pod set forbidden securityContext.seLinuxOptions: role may not be set",
    );
}

#[test]
fn proc_mount_and_user_namespaces() {
    let unmasked = json!({"containers": [
        {"name": "a", "securityContext": {"procMount": "Unmasked"}},
        {"name": "b", "securityContext": {"procMount": "Default"}},
    ]});
    fails(
        proc_mount_strict,
        unmasked.clone(),
        "procMount",
        r#"container "a" must not set securityContext.procMount to "Unmasked""#,
    );
    let mut userns = unmasked;
    userns["hostUsers"] = json!(false);
    passes(proc_mount_1_35_baseline, userns.clone());
    assert!(run(proc_mount_strict, json!({}), userns).is_some());
}

#[test]
fn seccomp_annotations_before_1_19() {
    let metadata = json!({"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/a": "docker/default",
        "container.seccomp.security.alpha.kubernetes.io/b": "unconfined",
    }});
    let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
    assert_eq!(
        run(seccomp_baseline_1_0, metadata, spec.clone()),
        Some((
            "seccompProfile".to_string(),
            "forbidden annotations container.seccomp.security.alpha.kubernetes.io/b=\"unconfined\", \
             seccomp.security.alpha.kubernetes.io/pod=\"unconfined\""
                .to_string()
        ))
    );
    passes(seccomp_baseline_1_0, spec);
}

#[test]
fn seccomp_fields_from_1_19() {
    passes(
        seccomp_baseline_1_19,
        json!({"containers": [{"name": "a"}]}),
    );
    fails(
        seccomp_baseline_1_19,
        json!({
            "securityContext": {"seccompProfile": {"type": "Unconfined"}},
            "containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Bogus"}}}],
        }),
        "seccompProfile",
        r#"pod and container "a" must not set securityContext.seccompProfile.type to "Bogus", "Unconfined""#,
    );
}

#[test]
fn sysctls_safe_list_grows() {
    let spec = json!({"securityContext": {"sysctls": [
        {"name": "net.ipv4.tcp_rmem", "value": "1"},
        {"name": "kernel.msgmax", "value": "1"},
        {"name": "net.ipv4.ip_local_reserved_ports", "value": "1"},
        {"name": "kernel.shm_rmid_forced", "value": "1"},
    ]}});
    let at = |minor| {
        sysctls(
            &PodView {
                metadata: &json!({}),
                spec: &spec,
            },
            minor,
        )
        .map(|r| r.forbidden_detail)
    };
    assert_eq!(
        at(0).as_deref(),
        Some("net.ipv4.tcp_rmem, kernel.msgmax, net.ipv4.ip_local_reserved_ports")
    );
    assert_eq!(at(27).as_deref(), Some("net.ipv4.tcp_rmem, kernel.msgmax"));
    assert_eq!(at(32).as_deref(), Some("kernel.msgmax"));
    assert_eq!(
        sysctls(
            &PodView {
                metadata: &json!({}),
                spec: &spec
            },
            0
        )
        .map(|r| r.forbidden_reason)
        .as_deref(),
        Some("forbidden sysctls")
    );
}

#[test]
fn malformed_input_never_panics() {
    let weird = [
        json!(null),
        json!("spec"),
        json!({"containers": "nope", "volumes": 3, "securityContext": []}),
        json!({"containers": [1, null, {"securityContext": "x", "ports": [{"hostPort": "80"}]}]}),
        json!({"securityContext": {"sysctls": [null, 1, {"name": 2}], "seLinuxOptions": 5}}),
    ];
    let checks: &[fn(&PodView) -> Option<CheckResult>] = &[
        privileged,
        capabilities_baseline,
        host_namespaces,
        host_path_volumes,
        host_ports,
        host_probes_and_lifecycle,
        windows_host_process,
        app_armor_profile,
        se_linux_options_1_31,
        proc_mount_strict,
        seccomp_baseline_1_0,
        seccomp_baseline_1_19,
    ];
    for spec in &weird {
        for check in checks {
            let _ = check(&PodView {
                metadata: spec,
                spec,
            });
        }
        let _ = sysctls(
            &PodView {
                metadata: spec,
                spec,
            },
            35,
        );
    }
}
