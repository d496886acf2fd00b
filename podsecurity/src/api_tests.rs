use serde_json::{Map, Value, json};

use super::*;

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn versions_parse_and_print() {
    assert_eq!(Version::parse("latest"), Some(Version::Latest));
    assert_eq!(Version::parse("v1.0"), Some(Version::Minor(0)));
    assert_eq!(Version::parse("v1.29"), Some(Version::Minor(29)));
    for bad in [
        "v1.01",
        "1.29",
        "v2.1",
        "v1.",
        "v1.-1",
        "v1.2a",
        "Latest",
        "",
        "v1.99999999999",
    ] {
        assert_eq!(Version::parse(bad), None, "{bad}");
    }
    assert_eq!(Version::Minor(29).as_str(), "v1.29");
    assert_eq!(Version::Minor(99).effective_minor(), MAX_POLICY_MINOR);
    assert_eq!(
        LevelVersion::new(Level::Baseline, Version::Minor(29)).to_string(),
        "baseline:v1.29"
    );
    assert_eq!(
        LevelVersion::new(Level::Restricted, Version::Latest).to_string(),
        "restricted:latest"
    );
}

#[test]
fn levels_parse_and_order() {
    assert_eq!(Level::parse("baseline"), Some(Level::Baseline));
    assert_eq!(Level::parse("Baseline"), None);
    assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
}

#[test]
fn labels_override_defaults_per_field() {
    let defaults = Policy {
        enforce: LevelVersion::new(Level::Baseline, Version::Minor(30)),
        ..Policy::default()
    };
    let p = policy_from_labels(
        &labels(json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "baseline",
            "pod-security.kubernetes.io/warn-version": "v1.29",
            "unrelated": "x",
        })),
        &defaults,
    )
    .expect("valid labels");
    assert_eq!(
        p.enforce,
        LevelVersion::new(Level::Restricted, Version::Minor(30))
    );
    assert_eq!(
        p.warn,
        LevelVersion::new(Level::Baseline, Version::Minor(29))
    );
    assert_eq!(
        p.audit,
        LevelVersion::new(Level::Privileged, Version::Latest)
    );
    assert_eq!(policy_from_labels(&Map::new(), &defaults), Ok(defaults));
}

#[test]
fn invalid_labels_report_upstream_messages() {
    let errs = policy_from_labels(
        &labels(json!({
            "pod-security.kubernetes.io/enforce": "strict",
            "pod-security.kubernetes.io/audit-version": "1.29",
        })),
        &Policy::default(),
    )
    .expect_err("invalid labels");
    assert_eq!(
        errs,
        vec![
            (
                "pod-security.kubernetes.io/enforce".to_string(),
                "must be one of privileged, baseline, restricted".to_string()
            ),
            (
                "pod-security.kubernetes.io/audit-version".to_string(),
                r#"must be "latest" or "v1.x""#.to_string()
            ),
        ]
    );
}

#[test]
fn invalid_labels_fail_closed_for_enforce_and_open_for_audit_and_warn() {
    let defaults = Policy {
        audit: LevelVersion::new(Level::Baseline, Version::Minor(20)),
        ..Policy::default()
    };
    let (p, errs) = policy_to_evaluate(
        &labels(json!({
            "pod-security.kubernetes.io/enforce": "nope",
            "pod-security.kubernetes.io/enforce-version": "v1.x",
            "pod-security.kubernetes.io/audit": "nope",
            "pod-security.kubernetes.io/warn": "nope",
        })),
        &defaults,
    );
    assert_eq!(errs.len(), 4);
    assert_eq!(
        p.enforce,
        LevelVersion::new(Level::Restricted, Version::Latest)
    );
    assert_eq!(
        p.audit,
        LevelVersion::new(Level::Privileged, Version::Minor(20))
    );
    assert_eq!(p.warn.level, Level::Privileged);
    assert_eq!(
        errs[0].to_string(),
        r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "nope": must be one of privileged, baseline, restricted"#
    );
    assert_eq!(aggregate_label_errors(&errs[..1]), errs[0].to_string());
    assert!(
        aggregate_label_errors(&errs)
            .starts_with("[metadata.labels[pod-security.kubernetes.io/enforce]")
    );
}

#[test]
fn non_string_label_values_are_ignored() {
    let p = policy_from_labels(
        &labels(json!({"pod-security.kubernetes.io/enforce": 3})),
        &Policy::default(),
    );
    assert_eq!(p, Ok(Policy::default()));
}

#[test]
fn exempt_namespaces_warn_about_the_labels_they_ignore() {
    let l = labels(json!({
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "privileged"
    }));
    let (p, _) = policy_to_evaluate(&l, &Policy::default());
    assert_eq!(
        exempt_namespace_warning("kube-system", &p, &Policy::default(), &l).as_deref(),
        Some(
            "namespace \"kube-system\" is exempt from Pod Security, and the policy (enforce=baseline:latest) will be ignored"
        )
    );
    let none = labels(json!({}));
    let (p, _) = policy_to_evaluate(&none, &Policy::default());
    assert_eq!(
        exempt_namespace_warning("kube-system", &p, &Policy::default(), &none),
        None
    );
    // labels equal to the configured defaults change nothing either
    let restricted = LevelVersion::new(Level::Restricted, Version::Latest);
    let defaults = Policy {
        enforce: restricted,
        ..Policy::default()
    };
    let l = labels(json!({"pod-security.kubernetes.io/enforce": "restricted"}));
    let (p, _) = policy_to_evaluate(&l, &defaults);
    assert!(p.equivalent(&defaults));
    assert_eq!(exempt_namespace_warning("x", &p, &defaults, &l), None);
}
