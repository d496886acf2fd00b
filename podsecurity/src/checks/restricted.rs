//! The Restricted checks: each function inspects one control and returns the
//! forbidden reason and detail upstream would report, or `None` when allowed.
//!
//! Version selection and the Baseline checks these replace live in the registry
//! (`checks/mod.rs`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::CheckResult;
use super::baseline::{seccomp_bad_value_result, setters, valid_seccomp, volume_name};
use super::helpers::{PodView, containers_phrase, join_quote, pluralize, present, sorted, strings};

/// Volume sources Restricted accepts.
const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Volume sources Restricted names when it rejects them, in upstream's order.
const NAMED_RESTRICTED_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// `allowPrivilegeEscalation` (1.8+): every container must set it to false.
pub fn allow_privilege_escalation_1_8(pod: &PodView) -> Option<CheckResult> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| {
            c.sc_field("allowPrivilegeEscalation")
                .and_then(Value::as_bool)
                != Some(false)
        })
        .map(|c| c.name())
        .collect();
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "allowPrivilegeEscalation != false",
            format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                containers_phrase(&bad)
            ),
        )
    })
}

/// `allowPrivilegeEscalation` (1.25+): Windows pods are exempt.
pub fn allow_privilege_escalation_1_25(pod: &PodView) -> Option<CheckResult> {
    if pod.is_windows() {
        return None;
    }
    allow_privilege_escalation_1_8(pod)
}

/// `capabilities_restricted` (1.22+): drop `ALL`, add at most `NET_BIND_SERVICE`.
pub fn capabilities_restricted_1_22(pod: &PodView) -> Option<CheckResult> {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_caps = BTreeSet::new();
    for c in pod.containers() {
        let Some(caps) = c.sc_field("capabilities") else {
            missing_drop_all.push(c.name());
            continue;
        };
        if !strings(caps.get("drop")).any(|d| d == "ALL") {
            missing_drop_all.push(c.name());
        }
        let mut added_forbidden = false;
        for cap in strings(caps.get("add")).filter(|a| *a != "NET_BIND_SERVICE") {
            added_forbidden = true;
            forbidden_caps.insert(cap.to_string());
        }
        if added_forbidden {
            adding_forbidden.push(c.name());
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&sorted(&forbidden_caps))
        ));
    }
    (!details.is_empty()).then(|| CheckResult::new("unrestricted capabilities", details.join("; ")))
}

/// `capabilities_restricted` (1.25+): Windows pods are exempt.
pub fn capabilities_restricted_1_25(pod: &PodView) -> Option<CheckResult> {
    if pod.is_windows() {
        return None;
    }
    capabilities_restricted_1_22(pod)
}

/// `restrictedVolumes`: only the inline sources that carry no host or network access.
pub fn restricted_volumes(pod: &PodView) -> Option<CheckResult> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in pod.volumes() {
        let has = |key: &str| present(v.get(key)).is_some();
        if ALLOWED_VOLUME_SOURCES.iter().any(|k| has(k)) {
            continue;
        }
        bad.push(volume_name(v));
        let named = NAMED_RESTRICTED_SOURCES.iter().find(|key| has(key));
        types.insert(named.copied().unwrap_or("unknown").to_string());
    }
    (!bad.is_empty()).then(|| {
        CheckResult::new(
            "restricted volume types",
            format!(
                "{} {} {} {} {}",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize(
                    "restricted volume type",
                    "restricted volume types",
                    types.len()
                ),
                join_quote(&sorted(&types))
            ),
        )
    })
}

/// `runAsNonRoot` before 1.35: pod or every container must set `runAsNonRoot=true`.
pub fn run_as_non_root_1_0(pod: &PodView) -> Option<CheckResult> {
    let pod_setting = pod
        .pod_security_context()
        .and_then(|sc| sc.get("runAsNonRoot"))
        .and_then(Value::as_bool);
    let pod_true = pod_setting == Some(true);
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in pod.containers() {
        match c.sc_field("runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicitly_bad.push(c.name()),
            Some(true) => {}
            None if !pod_true => implicitly_bad.push(c.name()),
            None => {}
        }
    }
    let setters = setters(pod_setting == Some(false), &explicitly_bad);
    if !setters.is_empty() {
        return Some(CheckResult::new(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        ));
    }
    (!implicitly_bad.is_empty()).then(|| {
        CheckResult::new(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicitly_bad)
            ),
        )
    })
}

/// `runAsNonRoot` from 1.35: user-namespaced pods are exempt.
pub fn run_as_non_root_1_35(pod: &PodView) -> Option<CheckResult> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_non_root_1_0(pod)
}

/// `runAsUser` (1.23+): neither pod nor containers may set `runAsUser=0`.
pub fn run_as_user_1_23(pod: &PodView) -> Option<CheckResult> {
    let is_root = |v: Option<&Value>| v.and_then(Value::as_i64) == Some(0);
    let pod_bad = is_root(
        pod.pod_security_context()
            .and_then(|sc| sc.get("runAsUser")),
    );
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| is_root(c.sc_field("runAsUser")))
        .map(|c| c.name())
        .collect();
    let setters = setters(pod_bad, &bad);
    (!setters.is_empty()).then(|| {
        CheckResult::new(
            "runAsUser=0",
            format!("{} must not set runAsUser=0", setters.join(" and ")),
        )
    })
}

/// `runAsUser` from 1.35: user-namespaced pods are exempt.
pub fn run_as_user_1_35(pod: &PodView) -> Option<CheckResult> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_user_1_23(pod)
}

/// `seccompProfile_restricted` (1.19+): pod or every container must set
/// `RuntimeDefault` or `Localhost`.
pub fn seccomp_restricted_1_19(pod: &PodView) -> Option<CheckResult> {
    let mut values = BTreeSet::new();
    let mut is_bad = |profile: &Value| {
        let t = profile.get("type").and_then(Value::as_str).unwrap_or("");
        let bad = !valid_seccomp(t);
        if bad {
            values.insert(t.to_string());
        }
        bad
    };
    let pod_profile = pod
        .pod_security_context()
        .and_then(|sc| present(sc.get("seccompProfile")));
    let pod_bad = pod_profile.is_some_and(&mut is_bad);
    let pod_set = pod_profile.is_some() && !pod_bad;
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in pod.containers() {
        match c.sc_field("seccompProfile") {
            Some(profile) if is_bad(profile) => explicitly_bad.push(c.name()),
            Some(_) => {}
            None if !pod_set => implicitly_bad.push(c.name()),
            None => {}
        }
    }
    let setters = setters(pod_bad, &explicitly_bad);
    if !setters.is_empty() {
        return Some(seccomp_bad_value_result(&setters, &values));
    }
    (!implicitly_bad.is_empty()).then(|| {
        CheckResult::new(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicitly_bad)
            ),
        )
    })
}

/// `seccompProfile_restricted` (1.25+): Windows pods are exempt.
pub fn seccomp_restricted_1_25(pod: &PodView) -> Option<CheckResult> {
    if pod.is_windows() {
        return None;
    }
    seccomp_restricted_1_19(pod)
}

#[cfg(test)]
#[path = "restricted_tests.rs"]
mod tests;
