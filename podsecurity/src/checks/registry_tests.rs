use serde_json::json;

use super::*;
use crate::api::Version;

fn lv(level: Level, version: Version) -> LevelVersion {
    LevelVersion::new(level, version)
}

fn nginx() -> serde_json::Value {
    json!({"containers": [{"name": "nginx", "image": "nginx"}]})
}

#[test]
fn nginx_under_restricted_latest_matches_a_real_cluster() {
    let results = check_pod(
        &lv(Level::Restricted, Version::Latest),
        &json!({}),
        &nginx(),
    );
    assert_eq!(
        aggregate(&results),
        r#"allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    assert_eq!(
        aggregate_reasons(&results),
        "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    );
}

#[test]
fn compliant_pod_passes_restricted() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "cfg", "configMap": {"name": "x"}}],
    });
    assert!(check_pod(&lv(Level::Restricted, Version::Latest), &json!({}), &spec).is_empty());
}

#[test]
fn privileged_runs_nothing_and_baseline_skips_restricted_checks() {
    let spec = json!({"hostNetwork": true, "containers": [{"name": "a", "securityContext": {"privileged": true}}]});
    assert!(check_pod(&lv(Level::Privileged, Version::Latest), &json!({}), &spec).is_empty());
    assert!(check_pod(&lv(Level::Baseline, Version::Latest), &json!({}), &nginx()).is_empty());
    let results = check_pod(&lv(Level::Baseline, Version::Latest), &json!({}), &spec);
    assert_eq!(
        aggregate(&results),
        r#"host namespaces (hostNetwork), privileged (container "a" must not set securityContext.privileged=true)"#
    );
}

#[test]
fn restricted_overrides_host_path_with_volume_types() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    });
    let restricted = check_pod(&lv(Level::Restricted, Version::Latest), &json!({}), &spec);
    assert_eq!(
        aggregate(&restricted),
        r#"restricted volume types (volume "h" uses restricted volume type "hostPath")"#
    );
    let baseline = check_pod(&lv(Level::Baseline, Version::Latest), &json!({}), &spec);
    assert_eq!(aggregate(&baseline), r#"hostPath volumes (volume "h")"#);
}

#[test]
fn capabilities_drop_all_only_from_1_22() {
    let v21 = check_pod(
        &lv(Level::Restricted, Version::Minor(21)),
        &json!({}),
        &nginx(),
    );
    assert!(
        v21.iter()
            .all(|r| r.forbidden_reason != "unrestricted capabilities")
    );
    assert_eq!(
        aggregate_reasons(&v21),
        "allowPrivilegeEscalation != false, runAsNonRoot != true, seccompProfile"
    );
    // Below 1.22 the Baseline capabilities check still runs under Restricted.
    let adds_raw = json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}}]});
    let v21 = check_pod(
        &lv(Level::Restricted, Version::Minor(21)),
        &json!({}),
        &adds_raw,
    );
    assert_eq!(v21[0].forbidden_reason, "non-default capabilities");
    let v22 = check_pod(
        &lv(Level::Restricted, Version::Minor(22)),
        &json!({}),
        &adds_raw,
    );
    assert!(
        v22.iter()
            .all(|r| r.forbidden_reason != "non-default capabilities")
    );
    assert!(
        v22.iter()
            .any(|r| r.forbidden_reason == "unrestricted capabilities")
    );
}

#[test]
fn version_specific_check_sets() {
    let ids = |l, v| check_ids(&lv(l, v));
    assert_eq!(
        ids(Level::Restricted, Version::Latest),
        vec![
            "appArmorProfile",
            "hostNamespaces",
            "hostPorts",
            "hostProbesAndHostLifecycle",
            "privileged",
            "seLinuxOptions",
            "sysctls",
            "windowsHostProcess",
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "procMount_restricted",
            "restrictedVolumes",
            "runAsNonRoot",
            "runAsUser",
            "seccompProfile_restricted",
        ]
    );
    assert_eq!(
        ids(Level::Restricted, Version::Minor(7)),
        vec![
            "appArmorProfile",
            "capabilities_baseline",
            "hostNamespaces",
            "hostPorts",
            "privileged",
            "procMount",
            "seLinuxOptions",
            "seccompProfile_baseline",
            "sysctls",
            "windowsHostProcess",
            "restrictedVolumes",
            "runAsNonRoot",
        ]
    );
    assert!(!ids(Level::Baseline, Version::Minor(33)).contains(&"hostProbesAndHostLifecycle"));
    assert!(ids(Level::Baseline, Version::Minor(34)).contains(&"hostProbesAndHostLifecycle"));
    assert_eq!(
        ids(Level::Baseline, Version::Minor(99)),
        ids(Level::Baseline, Version::Latest)
    );
    assert!(ids(Level::Privileged, Version::Latest).is_empty());
}

#[test]
fn run_as_user_from_1_23_and_user_namespace_relaxation_from_1_35() {
    let spec = json!({
        "hostUsers": false,
        "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "a", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "procMount": "Unmasked"}}],
    });
    let reasons = |v| aggregate_reasons(&check_pod(&lv(Level::Restricted, v), &json!({}), &spec));
    assert_eq!(
        reasons(Version::Minor(22)),
        "procMount, runAsNonRoot != true"
    );
    assert_eq!(
        reasons(Version::Minor(34)),
        "procMount, runAsNonRoot != true, runAsUser=0"
    );
    assert_eq!(reasons(Version::Latest), "procMount");
    let baseline = check_pod(&lv(Level::Baseline, Version::Latest), &json!({}), &spec);
    assert!(baseline.is_empty());
}

#[test]
fn seccomp_annotations_apply_below_1_19() {
    let metadata =
        json!({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}});
    let spec = json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}});
    let at = |v| aggregate(&check_pod(&lv(Level::Baseline, v), &metadata, &spec));
    assert_eq!(
        at(Version::Minor(18)),
        r#"seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")"#
    );
    assert_eq!(
        at(Version::Minor(19)),
        r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#
    );
}

#[test]
fn aggregate_formats_reasons_and_details() {
    let results = vec![
        CheckResult::new("a", "x"),
        CheckResult::new("b", ""),
        CheckResult::new("", "y"),
    ];
    assert_eq!(
        aggregate(&results),
        "a (x), b, unknown forbidden reason (y)"
    );
    assert_eq!(aggregate(&[]), "");
}

#[test]
fn registry_is_sorted_like_upstream() {
    for level in [Level::Baseline, Level::Restricted] {
        let ids: Vec<&str> = CHECKS
            .iter()
            .filter(|c| c.level == level)
            .map(|c| c.id)
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
    for c in CHECKS {
        assert!(c.versions.windows(2).all(|w| w[0].0 < w[1].0), "{}", c.id);
    }
}
