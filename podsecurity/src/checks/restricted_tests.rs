use serde_json::{Value, json};

use super::*;

fn run(f: fn(&PodView) -> Option<CheckResult>, spec: Value) -> Option<(String, String)> {
    f(&PodView {
        metadata: &json!({}),
        spec: &spec,
    })
    .map(|r| (r.forbidden_reason, r.forbidden_detail))
}

fn fails(f: fn(&PodView) -> Option<CheckResult>, spec: Value, reason: &str, detail: &str) {
    assert_eq!(run(f, spec), Some((reason.to_string(), detail.to_string())));
}

#[test]
fn privilege_escalation() {
    let ok = json!({"containers": [{"name": "a", "securityContext": {"allowPrivilegeEscalation": false}}]});
    assert_eq!(run(allow_privilege_escalation_1_8, ok), None);
    fails(
        allow_privilege_escalation_1_8,
        json!({"containers": [
            {"name": "a"},
            {"name": "b", "securityContext": {"allowPrivilegeEscalation": true}},
            {"name": "c", "securityContext": {"allowPrivilegeEscalation": false}},
        ]}),
        "allowPrivilegeEscalation != false",
        r#"containers "a", "b" must set securityContext.allowPrivilegeEscalation=false"#,
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(allow_privilege_escalation_1_25, windows.clone()), None);
    assert!(run(allow_privilege_escalation_1_8, windows).is_some());
}

#[test]
fn restricted_capabilities() {
    let ok = json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]});
    assert_eq!(run(capabilities_restricted_1_22, ok), None);
    fails(
        capabilities_restricted_1_22,
        json!({"containers": [{"name": "c"}]}),
        "unrestricted capabilities",
        r#"container "c" must set securityContext.capabilities.drop=["ALL"]"#,
    );
    fails(
        capabilities_restricted_1_22,
        json!({"containers": [
            {"name": "a", "securityContext": {"capabilities": {"drop": ["NET_RAW"], "add": ["SYS_ADMIN", "CHOWN"]}}},
            {"name": "b", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}},
        ]}),
        "unrestricted capabilities",
        r#"container "a" must set securityContext.capabilities.drop=["ALL"]; containers "a", "b" must not include "CHOWN", "SYS_ADMIN" in securityContext.capabilities.add"#,
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(capabilities_restricted_1_25, windows), None);
}

#[test]
fn volume_types() {
    let ok = json!({"volumes": [
        {"name": "a", "configMap": {}}, {"name": "b", "secret": {}}, {"name": "c", "emptyDir": {}},
        {"name": "d", "projected": {}}, {"name": "e", "persistentVolumeClaim": {}}, {"name": "f", "image": {}},
        {"name": "g", "csi": {}}, {"name": "h", "downwardAPI": {}}, {"name": "i", "ephemeral": {}},
    ]});
    assert_eq!(run(restricted_volumes, ok), None);
    fails(
        restricted_volumes,
        json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
        "restricted volume types",
        r#"volume "h" uses restricted volume type "hostPath""#,
    );
    fails(
        restricted_volumes,
        json!({"volumes": [
            {"name": "n", "nfs": {}}, {"name": "c", "emptyDir": {}}, {"name": "x"},
            {"name": "f", "cephfs": {}}, {"name": "g", "nfs": {}},
        ]}),
        "restricted volume types",
        r#"volumes "n", "x", "f", "g" use restricted volume types "cephfs", "nfs", "unknown""#,
    );
}

#[test]
fn run_as_non_root_variants() {
    let pod_true =
        json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a"}]});
    assert_eq!(run(run_as_non_root_1_0, pod_true), None);
    fails(
        run_as_non_root_1_0,
        json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsNonRoot": true}}]}),
        "runAsNonRoot != true",
        r#"pod or container "a" must set securityContext.runAsNonRoot=true"#,
    );
    fails(
        run_as_non_root_1_0,
        json!({
            "securityContext": {"runAsNonRoot": false},
            "containers": [{"name": "a", "securityContext": {"runAsNonRoot": false}}, {"name": "b"}],
        }),
        "runAsNonRoot != true",
        r#"pod and container "a" must not set securityContext.runAsNonRoot=false"#,
    );
    let userns = json!({"hostUsers": false, "containers": [{"name": "a"}]});
    assert_eq!(run(run_as_non_root_1_35, userns.clone()), None);
    assert!(run(run_as_non_root_1_0, userns).is_some());
}

#[test]
fn run_as_user_variants() {
    assert_eq!(
        run(
            run_as_user_1_23,
            json!({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a"}]})
        ),
        None
    );
    fails(
        run_as_user_1_23,
        json!({
            "securityContext": {"runAsUser": 0},
            "containers": [{"name": "a", "securityContext": {"runAsUser": 0}}, {"name": "b", "securityContext": {"runAsUser": 0}}],
        }),
        "runAsUser=0",
        r#"pod and containers "a", "b" must not set runAsUser=0"#,
    );
    let userns = json!({"hostUsers": false, "securityContext": {"runAsUser": 0}});
    assert_eq!(run(run_as_user_1_35, userns), None);
}

#[test]
fn seccomp_restricted_variants() {
    let pod_level = json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "a"}]});
    assert_eq!(run(seccomp_restricted_1_19, pod_level), None);
    fails(
        seccomp_restricted_1_19,
        json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"seccompProfile": {"type": "Localhost"}}}]}),
        "seccompProfile",
        r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
    );
    fails(
        seccomp_restricted_1_19,
        json!({
            "securityContext": {"seccompProfile": {"type": "Unconfined"}},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
        }),
        "seccompProfile",
        r#"pod and container "b" must not set securityContext.seccompProfile.type to "Unconfined""#,
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(seccomp_restricted_1_25, windows), None);
}
