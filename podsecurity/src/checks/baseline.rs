//! The Baseline checks: each function inspects one control and returns the
//! forbidden reason and detail upstream would report, or `None` when allowed.
//!
//! Which version of a check applies, and which checks Restricted replaces, is the
//! registry's business (`checks/mod.rs`), not this module's.

use std::collections::BTreeSet;

use serde_json::Value;

use super::CheckResult;
use super::helpers::{
    PodView, containers_phrase, go_quote, is_true, join_quote, pluralize, present, sorted, str_at,
    strings,
};

const CAPABILITIES_ALLOWED_1_0: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const SELINUX_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_ADDED_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_ADDED_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_ADDED_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// `privileged`: no container may set `securityContext.privileged=true`.
pub fn privileged(pod: &PodView) -> Option<CheckResult> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| is_true(c.sc_field("privileged")))
        .map(|c| c.name())
        .collect();
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "privileged",
            format!(
                "{} must not set securityContext.privileged=true",
                containers_phrase(&bad)
            ),
        )
    })
}

/// `capabilities_baseline`: added capabilities must come from the default set.
pub fn capabilities_baseline(pod: &PodView) -> Option<CheckResult> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in pod.containers() {
        let Some(capabilities) = c.sc_field("capabilities") else {
            continue;
        };
        let mut valid = true;
        for cap in strings(capabilities.get("add")) {
            if !CAPABILITIES_ALLOWED_1_0.contains(&cap) {
                valid = false;
                caps.insert(cap.to_string());
            }
        }
        if !valid {
            bad.push(c.name());
        }
    }
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "non-default capabilities",
            format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers_phrase(&bad),
                join_quote(&sorted(&caps))
            ),
        )
    })
}

/// `hostNamespaces`: `hostNetwork`, `hostPID` and `hostIPC` must not be true.
pub fn host_namespaces(pod: &PodView) -> Option<CheckResult> {
    let set: BTreeSet<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| is_true(pod.spec.get(*k)))
        .collect();
    (!set.is_empty()).then(|| {
        let list: Vec<&str> = set.into_iter().collect();
        CheckResult::new("host namespaces", list.join(", "))
    })
}

/// `hostPathVolumes`: no `hostPath` volumes.
pub fn host_path_volumes(pod: &PodView) -> Option<CheckResult> {
    let bad: Vec<String> = pod
        .volumes()
        .filter(|v| present(v.get("hostPath")).is_some())
        .map(volume_name)
        .collect();
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "hostPath volumes",
            format!(
                "{} {}",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad)
            ),
        )
    })
}

/// A volume's name; empty when missing.
pub fn volume_name(v: &Value) -> String {
    v.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `hostPorts`: no container port may set a non-zero `hostPort`.
pub fn host_ports(pod: &PodView) -> Option<CheckResult> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in pod.containers() {
        let mut valid = true;
        for p in super::helpers::array(c.0.get("ports")) {
            match p.get("hostPort").and_then(Value::as_i64) {
                Some(0) | None => {}
                Some(n) => {
                    valid = false;
                    ports.insert(n.to_string());
                }
            }
        }
        if !valid {
            bad.push(c.name());
        }
    }
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "hostPort",
            format!(
                "{} {} {} {}",
                containers_phrase(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize("hostPort", "hostPorts", ports.len()),
                sorted(&ports).join(", ")
            ),
        )
    })
}

/// `hostProbesAndHostLifecycle` (1.34+): probes and lifecycle handlers must not set `host`.
pub fn host_probes_and_lifecycle(pod: &PodView) -> Option<CheckResult> {
    let mut bad = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in pod.containers() {
        let handlers = [
            c.0.get("livenessProbe"),
            c.0.get("readinessProbe"),
            c.0.get("startupProbe"),
            c.0.get("lifecycle").and_then(|l| l.get("postStart")),
            c.0.get("lifecycle").and_then(|l| l.get("preStop")),
        ];
        for handler in handlers.into_iter().flatten() {
            for kind in ["httpGet", "tcpSocket"] {
                if let Some(host) = str_at(handler, &[kind, "host"]).filter(|h| !h.is_empty()) {
                    bad.insert(c.name());
                    hosts.insert(host.to_string());
                }
            }
        }
    }
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "probe or lifecycle host",
            format!(
                "{} {} {} {}",
                containers_phrase(&sorted(&bad)),
                pluralize("uses", "use", bad.len()),
                pluralize(
                    "probe or lifecycle host",
                    "probe or lifecycle hosts",
                    hosts.len()
                ),
                join_quote(&sorted(&hosts))
            ),
        )
    })
}

/// `windowsHostProcess`: neither pod nor containers may set `windowsOptions.hostProcess=true`.
pub fn windows_host_process(pod: &PodView) -> Option<CheckResult> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| {
            is_true(
                c.sc_field("windowsOptions")
                    .and_then(|w| w.get("hostProcess")),
            )
        })
        .map(|c| c.name())
        .collect();
    let pod_bad = is_true(
        pod.pod_security_context()
            .and_then(|sc| sc.get("windowsOptions"))
            .and_then(|w| w.get("hostProcess")),
    );
    let setters = setters(pod_bad, &bad);
    (!setters.is_empty()).then(|| {
        CheckResult::new(
            "hostProcess",
            format!(
                "{} must not set securityContext.windowsOptions.hostProcess=true",
                setters.join(" and ")
            ),
        )
    })
}

/// `["pod", "containers \"a\""]`: who set a forbidden value, for "X and Y" messages.
pub fn setters(pod: bool, containers: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if pod {
        out.push("pod".to_string());
    }
    if !containers.is_empty() {
        out.push(containers_phrase(containers));
    }
    out
}

/// `appArmorProfile`: the profile fields may only be `RuntimeDefault` or
/// `Localhost`, and the beta annotations only `runtime/default` or `localhost/*`.
pub fn app_armor_profile(pod: &PodView) -> Option<CheckResult> {
    let allowed_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut bad_values = BTreeSet::new();
    let pod_bad = match pod
        .pod_security_context()
        .and_then(|sc| present(sc.get("appArmorProfile")))
    {
        Some(profile) => {
            let t = profile.get("type").and_then(Value::as_str).unwrap_or("");
            let bad = !allowed_type(t);
            if bad {
                bad_values.insert(t.to_string());
            }
            bad
        }
        None => false,
    };
    let mut bad_containers = Vec::new();
    for c in pod.containers() {
        if let Some(profile) = c.sc_field("appArmorProfile") {
            let t = profile.get("type").and_then(Value::as_str).unwrap_or("");
            if !allowed_type(t) {
                bad_containers.push(c.name());
                bad_values.insert(t.to_string());
            }
        }
    }
    let mut setters = setters(pod_bad, &bad_containers);
    let mut values = sorted(&bad_values);
    let mut annotations: Vec<String> = pod
        .annotations()
        .filter(|(k, v)| k.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed_annotation(v))
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    (!setters.is_empty()).then(|| {
        CheckResult::new(
            pluralize(
                "forbidden AppArmor profile",
                "forbidden AppArmor profiles",
                values.len(),
            ),
            format!(
                "{} must not set AppArmor profile type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        )
    })
}

fn allowed_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

/// `seLinuxOptions` before 1.31: type limited to the container types, no user or role.
pub fn se_linux_options_1_0(pod: &PodView) -> Option<CheckResult> {
    se_linux_options(pod, SELINUX_TYPES_1_0)
}

/// `seLinuxOptions` from 1.31: `container_engine_t` is also allowed.
pub fn se_linux_options_1_31(pod: &PodView) -> Option<CheckResult> {
    se_linux_options(pod, SELINUX_TYPES_1_31)
}

#[derive(Default)]
struct SeLinuxFindings {
    bad_types: BTreeSet<String>,
    set_user: bool,
    set_role: bool,
}

impl SeLinuxFindings {
    /// Records what is wrong with one `seLinuxOptions`; true when it is valid.
    fn check(&mut self, opts: &Value, allowed: &[&str]) -> bool {
        let field = |k: &str| opts.get(k).and_then(Value::as_str).unwrap_or("");
        let mut valid = true;
        if !allowed.contains(&field("type")) {
            valid = false;
            self.bad_types.insert(field("type").to_string());
        }
        if !field("user").is_empty() {
            valid = false;
            self.set_user = true;
        }
        if !field("role").is_empty() {
            valid = false;
            self.set_role = true;
        }
        valid
    }
}

fn se_linux_options(pod: &PodView, allowed: &[&str]) -> Option<CheckResult> {
    let mut findings = SeLinuxFindings::default();
    let pod_bad = pod
        .pod_security_context()
        .and_then(|sc| present(sc.get("seLinuxOptions")))
        .is_some_and(|opts| !findings.check(opts, allowed));
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(opts) = c.sc_field("seLinuxOptions")
            && !findings.check(opts, allowed)
        {
            bad.push(c.name());
        }
    }
    let setters = setters(pod_bad, &bad);
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !findings.bad_types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", findings.bad_types.len()),
            join_quote(&sorted(&findings.bad_types))
        ));
    }
    if findings.set_user {
        data.push("user may not be set".to_string());
    }
    if findings.set_role {
        data.push("role may not be set".to_string());
    }
    Some(CheckResult::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    ))
}

/// `procMount`: containers may only use the `Default` proc mount.
pub fn proc_mount_strict(pod: &PodView) -> Option<CheckResult> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in pod.containers() {
        if let Some(pm) = c.sc_field("procMount") {
            let t = pm.as_str().unwrap_or("");
            if t != "Default" {
                bad.push(c.name());
                types.insert(t.to_string());
            }
        }
    }
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "procMount",
            format!(
                "{} must not set securityContext.procMount to {}",
                containers_phrase(&bad),
                join_quote(&sorted(&types))
            ),
        )
    })
}

/// `procMount` from 1.35 at Baseline: anything goes for user-namespaced pods.
pub fn proc_mount_1_35_baseline(pod: &PodView) -> Option<CheckResult> {
    if pod.in_user_namespace() {
        return None;
    }
    proc_mount_strict(pod)
}

/// `seccompProfile_baseline` before 1.19: the alpha seccomp annotations.
pub fn seccomp_baseline_1_0(pod: &PodView) -> Option<CheckResult> {
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden = BTreeSet::new();
    if let Some(v) = pod.annotation(SECCOMP_POD_ANNOTATION).filter(|v| !valid(v)) {
        forbidden.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(v)));
    }
    for c in pod.containers() {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name());
        if let Some(v) = pod.annotation(&key).filter(|v| !valid(v)) {
            forbidden.insert(format!("{key}={}", go_quote(v)));
        }
    }
    (!forbidden.is_empty()).then(|| {
        CheckResult::new(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                pluralize("annotation", "annotations", forbidden.len()),
                sorted(&forbidden).join(", ")
            ),
        )
    })
}

/// Whether a seccomp profile type is one Baseline and Restricted accept.
pub fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// `seccompProfile_baseline` from 1.19: an explicit profile must not be `Unconfined`.
pub fn seccomp_baseline_1_19(pod: &PodView) -> Option<CheckResult> {
    let mut values = BTreeSet::new();
    let mut check = |profile: &Value| {
        let t = profile.get("type").and_then(Value::as_str).unwrap_or("");
        let bad = !valid_seccomp(t);
        if bad {
            values.insert(t.to_string());
        }
        bad
    };
    let pod_bad = pod
        .pod_security_context()
        .and_then(|sc| present(sc.get("seccompProfile")))
        .is_some_and(&mut check);
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| c.sc_field("seccompProfile").is_some_and(&mut check))
        .map(|c| c.name())
        .collect();
    let setters = setters(pod_bad, &bad);
    (!setters.is_empty()).then(|| seccomp_bad_value_result(&setters, &values))
}

/// The "must not set seccompProfile.type to X" result shared with Restricted.
pub fn seccomp_bad_value_result(setters: &[String], values: &BTreeSet<String>) -> CheckResult {
    CheckResult::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&sorted(values))
        ),
    )
}

/// `sysctls`: only the safe sysctls known at policy minor `minor`.
pub fn sysctls(pod: &PodView, minor: u32) -> Option<CheckResult> {
    let allowed = |name: &str| {
        SYSCTLS_1_0.contains(&name)
            || (minor >= 27 && SYSCTLS_ADDED_1_27.contains(&name))
            || (minor >= 29 && SYSCTLS_ADDED_1_29.contains(&name))
            || (minor >= 32 && SYSCTLS_ADDED_1_32.contains(&name))
    };
    let forbidden: Vec<&str> =
        super::helpers::array(pod.pod_security_context().and_then(|sc| sc.get("sysctls")))
            .filter(|s| s.is_object())
            .map(|s| s.get("name").and_then(Value::as_str).unwrap_or(""))
            .filter(|name| !allowed(name))
            .collect();
    (!forbidden.is_empty()).then(|| CheckResult::new("forbidden sysctls", forbidden.join(", ")))
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
