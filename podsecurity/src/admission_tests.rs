use serde_json::{Value, json};

use super::*;
use crate::api::{Version, policy_to_evaluate};

fn restricted_latest() -> LevelVersion {
    LevelVersion::new(Level::Restricted, Version::Latest)
}

fn nginx_pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}})
}

fn privileged_pod(name: &str, owner_uid: Option<&str>) -> Value {
    let mut pod = json!({
        "metadata": {"name": name},
        "spec": {"hostNetwork": true, "containers": [{"name": "c"}]},
    });
    if let Some(uid) = owner_uid {
        pod["metadata"]["ownerReferences"] =
            json!([{"uid": uid, "controller": true, "kind": "ReplicaSet", "name": "rs"}]);
    }
    pod
}

#[test]
fn messages_use_upstream_wording() {
    let results = vec![CheckResult::new(
        "hostPort",
        r#"container "a" uses hostPort 80"#,
    )];
    let lv = LevelVersion::new(Level::Baseline, Version::Minor(29));
    assert_eq!(
        enforce_message(&lv, &results),
        r#"violates PodSecurity "baseline:v1.29": hostPort (container "a" uses hostPort 80)"#
    );
    assert_eq!(
        warning_message(&lv, &results),
        r#"would violate PodSecurity "baseline:v1.29": hostPort (container "a" uses hostPort 80)"#
    );
}

#[test]
fn evaluate_denies_without_warnings_and_annotates() {
    let policy = Policy {
        enforce: restricted_latest(),
        audit: restricted_latest(),
        warn: restricted_latest(),
    };
    let pod = nginx_pod("web");
    let e = evaluate(&policy, &[], &pod["metadata"], &pod["spec"], true);
    let denied = e.denied.expect("denied");
    assert!(denied.starts_with(
        r#"violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#
    ));
    assert!(e.warnings.is_empty());
    assert_eq!(
        e.audit_annotations[0],
        (
            ENFORCE_POLICY_ANNOTATION.to_string(),
            "restricted:latest".to_string()
        )
    );
    assert_eq!(e.audit_annotations[1].0, AUDIT_VIOLATIONS_ANNOTATION);
    assert!(
        e.audit_annotations[1]
            .1
            .starts_with(r#"would violate PodSecurity "restricted:latest": "#)
    );
}

#[test]
fn evaluate_workloads_only_warn_and_audit() {
    let policy = Policy {
        enforce: restricted_latest(),
        warn: restricted_latest(),
        ..Policy::default()
    };
    let pod = nginx_pod("web");
    let e = evaluate(&policy, &[], &pod["metadata"], &pod["spec"], false);
    assert_eq!(e.denied, None);
    assert_eq!(e.warnings.len(), 1);
    assert!(e.warnings[0].starts_with(r#"would violate PodSecurity "restricted:latest": "#));
    assert!(e.audit_annotations.is_empty());
}

#[test]
fn evaluate_privileged_namespace_is_skipped_but_label_errors_are_reported() {
    let pod = nginx_pod("web");
    let e = evaluate(
        &Policy::default(),
        &[],
        &pod["metadata"],
        &pod["spec"],
        true,
    );
    assert_eq!(e, Evaluation::default());
    let labels = json!({"pod-security.kubernetes.io/enforce": "bogus"});
    let (policy, errs) =
        policy_to_evaluate(labels.as_object().expect("object"), &Policy::default());
    let e = evaluate(&policy, &errs, &pod["metadata"], &pod["spec"], true);
    assert!(
        e.denied.is_some(),
        "invalid enforce label fails closed to restricted"
    );
    assert_eq!(
        e.audit_annotations[0],
        (
            ERROR_ANNOTATION.to_string(),
            r#"Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "bogus": must be one of privileged, baseline, restricted"#.to_string()
        )
    );
}

#[test]
fn workload_templates_are_extracted() {
    let template =
        json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}});
    let deploy = json!({"spec": {"template": template}});
    for (group, resource) in [
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("", "replicationcontrollers"),
    ] {
        let (m, s) = pod_spec_of(group, resource, &deploy).expect(resource);
        assert_eq!(
            (m, s),
            (template["metadata"].clone(), template["spec"].clone()),
            "{resource}"
        );
    }
    let cron = json!({"spec": {"jobTemplate": {"spec": {"template": template}}}});
    assert_eq!(
        pod_spec_of("batch", "cronjobs", &cron).map(|(_, s)| s),
        Some(template["spec"].clone())
    );
    let pt = json!({"template": template});
    assert_eq!(
        pod_spec_of("", "podtemplates", &pt).map(|(_, s)| s),
        Some(template["spec"].clone())
    );
    let pod = json!({"metadata": {"name": "p"}, "spec": {"hostPID": true}});
    assert_eq!(
        pod_spec_of("", "pods", &pod),
        Some((pod["metadata"].clone(), pod["spec"].clone()))
    );
    assert_eq!(
        pod_spec_of("", "replicationcontrollers", &json!({"spec": {}})),
        None
    );
    assert_eq!(
        pod_spec_of("apps", "deployments", &json!({})),
        Some((json!({}), json!({})))
    );
    assert_eq!(pod_spec_of("", "configmaps", &deploy), None);
    assert_eq!(pod_spec_of("extensions", "deployments", &deploy), None);
}

#[test]
fn significant_pod_updates() {
    let old = json!({
        "metadata": {"labels": {"a": "1"}, "annotations": {"x": "1"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
        "status": {"phase": "Pending"},
    });
    let mut relabeled = old.clone();
    relabeled["metadata"]["labels"]["a"] = json!("2");
    relabeled["metadata"]["annotations"]["x"] = json!("2");
    relabeled["status"]["phase"] = json!("Running");
    relabeled["spec"]["activeDeadlineSeconds"] = json!(30);
    assert!(!is_significant_pod_update(&old, &relabeled));

    let mut image = old.clone();
    image["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert!(is_significant_pod_update(&old, &image));

    let mut seccomp = old.clone();
    seccomp["metadata"]["annotations"]["container.seccomp.security.alpha.kubernetes.io/c"] =
        json!("unconfined");
    assert!(is_significant_pod_update(&old, &seccomp));

    let mut ephemeral = old.clone();
    ephemeral["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
    assert!(is_significant_pod_update(&old, &ephemeral));
    assert!(!is_significant_pod_update(&ephemeral, &ephemeral.clone()));
    assert!(!is_significant_pod_update(&json!(null), &json!("x")));
}

#[test]
fn namespace_update_decisions() {
    let at = |level, version| Policy {
        enforce: LevelVersion::new(level, version),
        ..Policy::default()
    };
    let base = at(Level::Baseline, Version::Latest);
    assert!(namespace_update_needs_pod_check(
        &base,
        &at(Level::Restricted, Version::Latest)
    ));
    assert!(!namespace_update_needs_pod_check(&base, &base));
    assert!(!namespace_update_needs_pod_check(
        &base,
        &at(Level::Privileged, Version::Latest)
    ));
    assert!(!namespace_update_needs_pod_check(
        &at(Level::Restricted, Version::Latest),
        &base
    ));
    assert!(namespace_update_needs_pod_check(
        &base,
        &at(Level::Baseline, Version::Minor(30))
    ));
    let err = LabelError {
        key: "k".into(),
        value: "v".into(),
        message: "m".into(),
    };
    assert!(label_errors_reject_update(std::slice::from_ref(&err), &[]));
    assert!(!label_errors_reject_update(
        std::slice::from_ref(&err),
        std::slice::from_ref(&err)
    ));
    assert!(!label_errors_reject_update(&[], std::slice::from_ref(&err)));
}

#[test]
fn namespace_warnings_group_identical_pods() {
    let pods = vec![
        nginx_pod("web-b"),
        nginx_pod("web-a"),
        nginx_pod("web-c"),
        privileged_pod("host", None),
        privileged_pod("zz-one", Some("u1")),
        privileged_pod("aa-two", Some("u1")),
        json!({"metadata": {"name": "ok"}, "spec": {}}),
    ];
    let warnings = namespace_warnings(
        "demo",
        &LevelVersion::new(Level::Baseline, Version::Latest),
        &pods,
    );
    assert_eq!(
        warnings,
        vec![
            r#"existing pods in namespace "demo" violate the new PodSecurity enforce level "baseline:latest""#,
            "aa-two (and 2 other pods): host namespaces",
        ]
    );
    let warnings = namespace_warnings("demo", &restricted_latest(), &pods[..2]);
    assert_eq!(
        warnings,
        vec![
            r#"existing pods in namespace "demo" violate the new PodSecurity enforce level "restricted:latest""#.to_string(),
            "web-a (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile".to_string(),
        ]
    );
}

#[test]
fn namespace_warnings_respect_limits_and_priorities() {
    let pods = vec![
        privileged_pod("rs-1", Some("u1")),
        privileged_pod("rs-2", Some("u1")),
        nginx_pod("solo"),
        json!({"metadata": {"name": "gvisor"}, "spec": {"runtimeClassName": "gvisor", "hostPID": true}}),
    ];
    let opts = NamespaceCheckOptions {
        max_pods: 2,
        deadline: None,
        exempt_runtime_classes: vec!["gvisor".to_string()],
    };
    let warnings = namespace_warnings_with("ns", &restricted_latest(), &pods, &opts);
    assert_eq!(
        warnings[0],
        "new PodSecurity enforce level only checked against the first 2 of 3 existing pods"
    );
    assert_eq!(
        warnings[1],
        r#"existing pods in namespace "ns" violate the new PodSecurity enforce level "restricted:latest""#
    );
    assert_eq!(
        warnings.len(),
        4,
        "rs-1 and solo are checked before the rs-2 duplicate: {warnings:?}"
    );
    assert!(warnings[2].starts_with("rs-1: "));
    assert!(warnings[3].starts_with("solo: "));
    let clean = namespace_warnings("ns", &restricted_latest(), &[]);
    assert!(clean.is_empty());
}

#[test]
fn pod_subresources() {
    assert!(pod_subresource_ignored("status"));
    assert!(pod_subresource_ignored("exec"));
    assert!(!pod_subresource_ignored("ephemeralcontainers"));
    assert!(!pod_subresource_ignored(""));
}
