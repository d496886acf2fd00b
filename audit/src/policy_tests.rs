use super::*;

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
omitManagedFields: true
rules:
  # Pod bodies in full, but not their subresources.
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["pods"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["pods/log", "pods/status"]
  # Leader-election noise.
  - level: None
    resources:
      - group: ""
        resources: ["configmaps"]
        resourceNames: ["controller-leader"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
      - group: ""
        resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs: ["/api*", "/version"]
  - level: Request
    omitManagedFields: false
    resources:
      - group: ""
        resources: ["configmaps"]
    namespaces: ["kube-system"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps"]
  - level: Request
    resources:
      - group: ""
      - group: "apps"
  - level: Metadata
    omitStages: ["ResponseStarted"]
"#;

fn resource(verb: &str, ns: &str, group: &str, res: &str, sub: &str, name: &str) -> Attributes {
    Attributes {
        user: "alice".into(),
        groups: vec!["system:authenticated".into()],
        verb: verb.into(),
        namespace: ns.into(),
        api_group: group.into(),
        api_version: "v1".into(),
        resource: res.into(),
        subresource: sub.into(),
        name: name.into(),
        resource_request: true,
        ..Attributes::default()
    }
}

fn non_resource(user: &str, groups: &[&str], verb: &str, path: &str) -> Attributes {
    Attributes {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        verb: verb.into(),
        path: path.into(),
        ..Attributes::default()
    }
}

fn rule(level: Level) -> PolicyRule {
    PolicyRule {
        level,
        ..PolicyRule::default()
    }
}

fn policy(rules: Vec<PolicyRule>) -> Policy {
    Policy {
        rules,
        ..Policy::default()
    }
}

fn level(p: &Policy, a: &Attributes) -> Level {
    p.evaluate(a).level
}

#[test]
fn parses_a_realistic_policy() {
    let p = Policy::parse(POLICY).expect("valid policy");
    assert_eq!(p.rules.len(), 9);
    assert_eq!(p.omit_stages, vec![Stage::RequestReceived]);
    assert!(p.omit_managed_fields);
    assert_eq!(p.rules[0].level, Level::RequestResponse);
    assert_eq!(
        p.rules[2].resources[0].resource_names,
        vec!["controller-leader"]
    );
    assert_eq!(p.rules[4].non_resource_urls, vec!["/api*", "/version"]);
    // Policy-level stages are merged into every rule.
    assert_eq!(p.rules[0].omit_stages, vec![Stage::RequestReceived]);
    assert_eq!(
        p.rules[8].omit_stages,
        vec![Stage::RequestReceived, Stage::ResponseStarted]
    );
}

#[test]
fn evaluates_the_realistic_policy_first_match_wins() {
    let p = Policy::parse(POLICY).expect("valid policy");
    let cases = [
        (
            resource("get", "default", "", "pods", "", "web"),
            Level::RequestResponse,
        ),
        (
            resource("get", "default", "", "pods", "log", "web"),
            Level::Metadata,
        ),
        (
            resource("create", "default", "", "pods", "exec", "web"),
            Level::Request,
        ),
        (
            resource(
                "update",
                "kube-system",
                "",
                "configmaps",
                "",
                "controller-leader",
            ),
            Level::None,
        ),
        (
            resource("update", "kube-system", "", "configmaps", "", "other"),
            Level::Request,
        ),
        (
            resource("update", "default", "", "configmaps", "", "other"),
            Level::Metadata,
        ),
        (
            resource("list", "default", "", "secrets", "", ""),
            Level::Metadata,
        ),
        (resource("watch", "", "", "nodes", "", ""), Level::Request),
        (
            resource("patch", "default", "apps", "deployments", "", "d"),
            Level::Request,
        ),
        (
            resource("get", "", "rbac.authorization.k8s.io", "roles", "", ""),
            Level::Metadata,
        ),
        (
            non_resource("bob", &["system:authenticated"], "get", "/apis/apps"),
            Level::None,
        ),
        (
            non_resource("bob", &["system:authenticated"], "get", "/version"),
            Level::None,
        ),
        (
            non_resource("bob", &["system:authenticated"], "get", "/healthz"),
            Level::Metadata,
        ),
        (
            non_resource(
                "system:anonymous",
                &["system:unauthenticated"],
                "get",
                "/api",
            ),
            Level::Metadata,
        ),
    ];
    for (attrs, want) in cases {
        assert_eq!(level(&p, &attrs), want, "{attrs:?}");
    }
    let mut proxy = resource("watch", "default", "", "endpoints", "", "");
    proxy.user = "system:kube-proxy".into();
    assert_eq!(level(&p, &proxy), Level::None);
    proxy.verb = "list".into();
    assert_eq!(level(&p, &proxy), Level::Request);
}

#[test]
fn evaluation_carries_stages_and_managed_fields() {
    let p = Policy::parse(POLICY).expect("valid policy");
    let pods = p.evaluate(&resource("get", "default", "", "pods", "", "web"));
    assert_eq!(pods.omit_stages, vec![Stage::RequestReceived]);
    assert!(pods.omit_managed_fields);
    assert!(pods.omits(Stage::RequestReceived) && !pods.omits(Stage::ResponseComplete));
    // Rule-level omitManagedFields overrides the policy default.
    let cm = p.evaluate(&resource(
        "update",
        "kube-system",
        "",
        "configmaps",
        "",
        "x",
    ));
    assert_eq!(cm.level, Level::Request);
    assert!(!cm.omit_managed_fields);
    // No match: level None with the policy's own stages and default.
    let none = policy(vec![PolicyRule {
        users: vec!["nobody".into()],
        ..rule(Level::Metadata)
    }]);
    let cfg = none.evaluate(&resource("get", "", "", "nodes", "", ""));
    assert_eq!(cfg, RequestAuditConfig::at_level(Level::None));
}

#[test]
fn users_groups_and_verbs() {
    let p = policy(vec![
        PolicyRule {
            users: vec!["alice".into()],
            verbs: vec!["delete".into()],
            ..rule(Level::RequestResponse)
        },
        PolicyRule {
            user_groups: vec!["admins".into(), "ops".into()],
            ..rule(Level::Request)
        },
        rule(Level::Metadata),
    ]);
    let mut a = resource("delete", "ns", "", "pods", "", "p");
    assert_eq!(level(&p, &a), Level::RequestResponse);
    a.verb = "get".into();
    assert_eq!(level(&p, &a), Level::Metadata);
    a.groups.push("ops".into());
    assert_eq!(level(&p, &a), Level::Request);
    a.user = "bob".into();
    a.verb = "delete".into();
    assert_eq!(level(&p, &a), Level::Request);
    // Verbs of non-resource requests are lowercased HTTP methods.
    let n = non_resource("x", &[], "post", "/logs");
    assert_eq!(level(&p, &n), Level::Metadata);
}

#[test]
fn resource_forms_and_names() {
    let sel = |group: &str, resources: &[&str], names: &[&str]| PolicyRule {
        resources: vec![GroupResources {
            group: group.into(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
        }],
        ..rule(Level::Request)
    };
    let matches = |r: PolicyRule, a: &Attributes| r.matches(a);
    let pod = resource("get", "ns", "", "pods", "", "web");
    let pod_log = resource("get", "ns", "", "pods", "log", "web");
    let deploy_status = resource("update", "ns", "apps", "deployments", "status", "d");

    assert!(matches(sel("", &["pods"], &[]), &pod));
    assert!(!matches(sel("", &["pods"], &[]), &pod_log));
    assert!(matches(sel("", &["pods/log"], &[]), &pod_log));
    assert!(!matches(sel("", &["pods/log"], &[]), &pod));
    assert!(matches(sel("", &["pods/*"], &[]), &pod_log));
    assert!(matches(sel("", &["pods/*"], &[]), &pod));
    assert!(matches(sel("apps", &["*/status"], &[]), &deploy_status));
    assert!(!matches(
        sel("apps", &["*/status"], &[]),
        &resource("get", "ns", "apps", "deployments", "", "d")
    ));
    assert!(
        !matches(sel("", &["*/status"], &[]), &deploy_status),
        "group must match"
    );
    assert!(matches(sel("apps", &["*"], &[]), &deploy_status));
    assert!(matches(sel("apps", &[], &[]), &deploy_status));
    assert!(matches(sel("", &["pods"], &["web"]), &pod));
    assert!(!matches(sel("", &["pods"], &["db"]), &pod));
    assert!(matches(sel("", &["pods/log"], &["web"]), &pod_log));
    // A resource rule never matches a non-resource request.
    assert!(!matches(
        sel("", &["*"], &[]),
        &non_resource("a", &[], "get", "/pods")
    ));
}

#[test]
fn namespaces_including_cluster_scope() {
    let ns = |names: &[&str]| PolicyRule {
        namespaces: names.iter().map(|s| s.to_string()).collect(),
        ..rule(Level::Metadata)
    };
    assert!(ns(&["kube-system"]).matches(&resource("get", "kube-system", "", "pods", "", "")));
    assert!(!ns(&["kube-system"]).matches(&resource("get", "default", "", "pods", "", "")));
    assert!(!ns(&["kube-system"]).matches(&resource("get", "", "", "nodes", "", "")));
    assert!(ns(&[""]).matches(&resource("get", "", "", "nodes", "", "")));
    assert!(!ns(&[""]).matches(&non_resource("a", &[], "get", "/healthz")));
}

#[test]
fn non_resource_urls() {
    let urls = |specs: &[&str]| PolicyRule {
        non_resource_urls: specs.iter().map(|s| s.to_string()).collect(),
        ..rule(Level::Metadata)
    };
    let at = |p: &str| non_resource("a", &[], "get", p);
    assert!(urls(&["/healthz"]).matches(&at("/healthz")));
    assert!(!urls(&["/healthz"]).matches(&at("/healthz/etcd")));
    assert!(urls(&["/healthz*"]).matches(&at("/healthz/etcd")));
    assert!(urls(&["/healthz*"]).matches(&at("/healthz")));
    assert!(urls(&["/metrics", "/logs/*"]).matches(&at("/logs/kube.log")));
    assert!(!urls(&["/logs/*"]).matches(&at("/logs")));
    assert!(urls(&["*"]).matches(&at("/anything")));
    assert!(!urls(&["*"]).matches(&resource("get", "", "", "nodes", "", "")));
}

fn parse_err(text: &str) -> String {
    match Policy::parse(text) {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e.to_string(),
    }
}

const HEADER: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

#[test]
fn rejects_invalid_policies() {
    let cases = [
        (
            "rules:\n- level: Verbose\n",
            r#"rules[0].level: Unsupported value: "Verbose": supported values: "None", "Metadata", "Request", "RequestResponse""#,
        ),
        ("rules:\n- users: [a]\n", "rules[0].level: Required value"),
        (
            "rules:\n- level: None\n  resources: [{group: \"\"}]\n  nonResourceURLs: [\"/x\"]\n",
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            "rules:\n- level: None\n  namespaces: [a]\n  nonResourceURLs: [\"/x\"]\n",
            "rules[0].nonResourceURLs: Invalid value",
        ),
        (
            "rules:\n- level: None\n  nonResourceURLs: [\"healthz\"]\n",
            "rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules must begin with a '/' character",
        ),
        (
            "rules:\n- level: None\n  nonResourceURLs: [\"/a*/b\"]\n",
            "non-resource URL wildcards '*' must be the final character of the rule",
        ),
        (
            "rules:\n- level: None\n  resources: [{resourceNames: [x]}]\n",
            "using resourceNames requires at least one resource",
        ),
        (
            "rules:\n- level: None\n  resources: [{group: apps/v1}]\n",
            "rules[0].resources.group: Invalid value: \"apps/v1\"",
        ),
        (
            "rules:\n- level: None\n  omitStages: [Done]\n",
            "rules[0].omitStages[0]: Invalid value: \"Done\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic",
        ),
        (
            "omitStages: [Never]\nrules:\n- level: None\n",
            "omitStages[0]: Invalid value: \"Never\"",
        ),
        ("rules: []\n", "loaded illegal policy with 0 rules"),
        ("", "loaded illegal policy with 0 rules"),
    ];
    for (body, want) in cases {
        let err = parse_err(&format!("{HEADER}{body}"));
        assert!(err.contains(want), "{body:?}: got {err:?}, want {want:?}");
    }
    let two = parse_err(&format!("{HEADER}rules:\n- level: X\n- level: Y\n"));
    assert!(
        two.starts_with('[') && two.contains("rules[1].level"),
        "{two}"
    );
}

#[test]
fn checks_api_version_and_kind() {
    let rules = "rules:\n- level: Metadata\n";
    assert!(parse_err(&format!("kind: Policy\n{rules}")).contains("apiVersion"));
    assert!(parse_err(&format!("apiVersion: audit.k8s.io/v1\n{rules}")).contains("Kind"));
    assert!(
        parse_err(&format!(
            "apiVersion: audit.k8s.io/v2\nkind: Policy\n{rules}"
        ))
        .contains("unknown group version")
    );
    assert!(parse_err(&format!("apiVersion: v1\nkind: Policy\n{rules}")).contains("no kind"));
    assert!(
        parse_err(&format!(
            "apiVersion: audit.k8s.io/v1\nkind: Event\n{rules}"
        ))
        .contains("no kind \"Event\"")
    );
    assert!(parse_err("rules: [").starts_with("failed decoding"));
    assert!(parse_err(&format!("{HEADER}rules:\n- level: [1]\n")).starts_with("failed decoding"));
    let beta = Policy::parse(&format!(
        "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n{rules}"
    ));
    assert_eq!(
        beta.expect("v1beta1 accepted").rules[0].level,
        Level::Metadata
    );
}

#[test]
fn empty_yaml_values_count_as_missing() {
    let p = Policy::parse(&format!(
        "{HEADER}omitStages:\nrules:\n- level: Metadata\n  users:\n  resources:\n  - group:\n    resources:\n"
    ))
    .expect("nulls tolerated");
    assert_eq!(p.rules[0].resources, vec![GroupResources::default()]);
    assert!(p.rules[0].users.is_empty() && p.omit_stages.is_empty());
}

#[test]
fn parses_json_and_loads_files() {
    let json = r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata","nonResourceURLs":["/healthz*"]}]}"#;
    let p = Policy::parse(json).expect("JSON policy");
    assert_eq!(p.rules[0].non_resource_urls, vec!["/healthz*"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("policy.yaml");
    std::fs::write(&good, POLICY).expect("write");
    assert_eq!(Policy::load(&good).expect("load").rules.len(), 9);

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, format!("{HEADER}rules: []\n")).expect("write");
    let err = Policy::load(&bad).expect_err("zero rules").to_string();
    assert!(
        err.contains("0 rules") && err.contains("from file") && err.contains("bad.yaml"),
        "{err}"
    );
    let missing = Policy::load(&dir.path().join("nope.yaml"))
        .expect_err("missing")
        .to_string();
    assert!(missing.starts_with("failed to read file path"), "{missing}");
}
