//! Rule matching, binding lookup and SelfSubjectRulesReview rules, through the public
//! API only.

use rbac::{Attributes, Decision, Snapshot, UserInfo, authorize, rules_for};
use serde_json::{Value, json};

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn res(verb: &str, ns: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        namespace: ns.into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        name: name.into(),
        is_resource_request: true,
        path: String::new(),
    }
}

fn url(verb: &str, path: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        path: path.into(),
        ..Attributes::default()
    }
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name}, "rules": rules})
}

fn crb(name: &str, role: &str, subjects: Value) -> Value {
    json!({"kind": "ClusterRoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": subjects})
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    json!({"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
           "subjects": subjects})
}

/// One user "u" bound cluster-wide to a role with `rules`.
fn single(rules: Value) -> Snapshot {
    Snapshot::new(
        vec![],
        vec![cluster_role("r", rules)],
        vec![],
        vec![crb("b", "r", json!([{"kind": "User", "name": "u"}]))],
    )
}

fn allowed(s: &Snapshot, a: &Attributes) -> bool {
    authorize(s, &user("u", &[]), a).is_allowed()
}

#[test]
fn verbs_groups_resources_and_wildcards() {
    let s =
        single(json!([{"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]}]));
    assert!(allowed(
        &s,
        &res("get", "ns", "apps", "deployments", "", "x")
    ));
    assert!(!allowed(
        &s,
        &res("list", "ns", "apps", "deployments", "", "")
    ));
    assert!(!allowed(&s, &res("get", "ns", "", "deployments", "", "x")));
    assert!(!allowed(
        &s,
        &res("get", "ns", "apps", "replicasets", "", "x")
    ));
    assert!(!allowed(
        &s,
        &res("get", "ns", "apps", "deployments", "scale", "x")
    ));

    let s = single(json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]));
    assert!(allowed(
        &s,
        &res(
            "escalate",
            "",
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            "x"
        )
    ));
    assert!(allowed(&s, &res("get", "ns", "", "pods", "log", "p")));
    assert!(
        !allowed(&s, &url("get", "/healthz")),
        "resource rules never match URLs"
    );
}

#[test]
fn subresources() {
    let s = single(json!([
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
        {"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]},
    ]));
    assert!(allowed(&s, &res("get", "ns", "", "pods", "log", "p")));
    assert!(!allowed(&s, &res("get", "ns", "", "pods", "", "p")));
    assert!(!allowed(&s, &res("get", "ns", "", "pods", "exec", "p")));
    assert!(allowed(
        &s,
        &res("update", "ns", "apps", "deployments", "scale", "d")
    ));
    assert!(allowed(
        &s,
        &res("update", "ns", "", "replicationcontrollers", "scale", "d")
    ));
    assert!(!allowed(
        &s,
        &res("update", "ns", "apps", "deployments", "", "d")
    ));
    assert!(!allowed(
        &s,
        &res("update", "ns", "apps", "deployments", "status", "d")
    ));
}

#[test]
fn resource_names_apply_only_to_named_requests() {
    let s = single(
        json!([{"verbs": ["get", "list", "create"], "apiGroups": [""],
                           "resources": ["configmaps"], "resourceNames": ["cfg"]}]),
    );
    assert!(allowed(&s, &res("get", "ns", "", "configmaps", "", "cfg")));
    assert!(!allowed(
        &s,
        &res("get", "ns", "", "configmaps", "", "other")
    ));
    assert!(!allowed(&s, &res("list", "ns", "", "configmaps", "", "")));
    assert!(!allowed(&s, &res("create", "ns", "", "configmaps", "", "")));
}

#[test]
fn non_resource_urls() {
    let s = single(json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}]));
    assert!(allowed(&s, &url("get", "/healthz")));
    assert!(!allowed(&s, &url("get", "/healthz/etcd")));
    assert!(allowed(&s, &url("get", "/apis/apps/v1")));
    assert!(allowed(&s, &url("get", "/apis/")));
    assert!(!allowed(&s, &url("get", "/apis")));
    assert!(!allowed(&s, &url("post", "/healthz")));
    assert!(!allowed(&s, &res("get", "", "", "healthz", "", "")));
    let all = single(json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]));
    assert!(allowed(&all, &url("delete", "/anything/at/all")));
}

#[test]
fn bindings_by_user_group_and_service_account() {
    let s = Snapshot::new(
        vec![],
        vec![cluster_role(
            "reader",
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
        )],
        vec![],
        vec![
            crb(
                "by-user",
                "reader",
                json!([{"kind": "User", "name": "alice"}]),
            ),
            crb(
                "by-group",
                "reader",
                json!([{"kind": "Group", "name": "devs"}]),
            ),
            crb(
                "by-sa",
                "reader",
                json!([{"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}]),
            ),
            crb(
                "sa-without-ns",
                "reader",
                json!([{"kind": "ServiceAccount", "name": "ghost"}]),
            ),
        ],
    );
    let get = res("get", "default", "", "pods", "", "p");
    let d = authorize(&s, &user("alice", &[]), &get);
    assert_eq!(
        d,
        Decision::Allow(
            r#"RBAC: allowed by ClusterRoleBinding "by-user" of ClusterRole "reader" to User "alice""#.into()
        )
    );
    let d = authorize(&s, &user("bob", &["devs"]), &get);
    assert_eq!(
        d,
        Decision::Allow(
            r#"RBAC: allowed by ClusterRoleBinding "by-group" of ClusterRole "reader" to Group "devs""#.into()
        )
    );
    let d = authorize(&s, &user("system:serviceaccount:ci:bot", &[]), &get);
    assert_eq!(
        d,
        Decision::Allow(
            r#"RBAC: allowed by ClusterRoleBinding "by-sa" of ClusterRole "reader" to ServiceAccount "bot/ci""#.into()
        )
    );
    assert_eq!(
        authorize(&s, &user("system:serviceaccount:other:bot", &[]), &get),
        Decision::NoOpinion
    );
    assert_eq!(
        authorize(&s, &user("system:serviceaccount::ghost", &[]), &get),
        Decision::NoOpinion
    );
    assert_eq!(
        authorize(&s, &user("carol", &["alice"]), &get),
        Decision::NoOpinion,
        "groups are not users"
    );
    assert_eq!(
        authorize(&s, &user("devs", &[]), &get),
        Decision::NoOpinion,
        "users are not groups"
    );
}

#[test]
fn role_bindings_scope_cluster_roles_to_their_namespace() {
    let s = Snapshot::new(
        vec![
            json!({"kind": "Role", "metadata": {"name": "cm", "namespace": "team"},
                    "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]}),
        ],
        vec![cluster_role(
            "pod-reader",
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
        )],
        vec![
            rb(
                "team",
                "read-pods",
                "ClusterRole",
                "pod-reader",
                json!([{"kind": "User", "name": "u"}]),
            ),
            rb(
                "team",
                "read-cm",
                "Role",
                "cm",
                json!([{"kind": "ServiceAccount", "name": "app"}]),
            ),
            rb(
                "other",
                "wrong-ns-role",
                "Role",
                "cm",
                json!([{"kind": "User", "name": "u"}]),
            ),
        ],
        vec![],
    );
    let d = authorize(
        &s,
        &user("u", &[]),
        &res("get", "team", "", "pods", "", "p"),
    );
    assert_eq!(
        d,
        Decision::Allow(
            r#"RBAC: allowed by RoleBinding "read-pods/team" of ClusterRole "pod-reader" to User "u""#.into()
        )
    );
    assert!(
        !authorize(
            &s,
            &user("u", &[]),
            &res("get", "other", "", "pods", "", "p")
        )
        .is_allowed()
    );
    assert!(!authorize(&s, &user("u", &[]), &res("get", "", "", "pods", "", "p")).is_allowed());
    assert!(!authorize(&s, &user("u", &[]), &res("list", "", "", "pods", "", "")).is_allowed());
    // A Role is looked up in the binding's namespace; "other" has no role "cm".
    assert!(
        !authorize(
            &s,
            &user("u", &[]),
            &res("get", "other", "", "configmaps", "", "c")
        )
        .is_allowed()
    );
    // A ServiceAccount subject without a namespace means the binding's namespace.
    let d = authorize(
        &s,
        &user("system:serviceaccount:team:app", &[]),
        &res("get", "team", "", "configmaps", "", "c"),
    );
    assert_eq!(
        d,
        Decision::Allow(
            r#"RBAC: allowed by RoleBinding "read-cm/team" of Role "cm" to ServiceAccount "app/team""#.into()
        )
    );
}

#[test]
fn malformed_objects_grant_nothing_and_never_panic() {
    let s = Snapshot::new(
        vec![json!("not an object"), json!({"metadata": 7})],
        vec![
            json!(null),
            json!({"metadata": {"name": "r"}, "rules": "nope"}),
            json!({"metadata": {"name": "r2"}, "rules": [{"verbs": [1, "get"], "apiGroups": null, "resources": ["pods"]}]}),
            json!({"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, 5]}}),
        ],
        vec![
            json!({"metadata": {"name": "x"}}),
            json!({"metadata": {"namespace": "ns"}, "subjects": 3}),
        ],
        vec![
            json!([]),
            crb(
                "b",
                "r2",
                json!([{"kind": "User"}, {"kind": "User", "name": "u"}, 4]),
            ),
            crb(
                "missing-role",
                "nope",
                json!([{"kind": "User", "name": "u"}]),
            ),
        ],
    );
    assert!(
        !allowed(&s, &res("get", "", "", "pods", "", "p")),
        "apiGroups null matches no group"
    );
    assert_eq!(rules_for(&s, &user("u", &[]), "ns").0.len(), 1);
}

#[test]
fn rules_for_lists_resource_and_non_resource_rules() {
    let s = Snapshot::new(
        vec![],
        vec![
            cluster_role(
                "mixed",
                json!([
                    {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
                    {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
                ]),
            ),
            cluster_role(
                "ns-only",
                json!([{"verbs": ["list"], "apiGroups": ["apps"], "resources": ["deployments"]}]),
            ),
        ],
        vec![rb(
            "team",
            "b",
            "ClusterRole",
            "ns-only",
            json!([{"kind": "Group", "name": "g"}]),
        )],
        vec![crb("c", "mixed", json!([{"kind": "User", "name": "u"}]))],
    );
    let (res_rules, urls) = rules_for(&s, &user("u", &["g"]), "team");
    assert_eq!(
        res_rules,
        vec![
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}),
            json!({"verbs": ["list"], "apiGroups": ["apps"], "resources": ["deployments"]}),
        ]
    );
    assert_eq!(
        urls,
        vec![json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]})]
    );
    let (res_rules, _) = rules_for(&s, &user("u", &["g"]), "elsewhere");
    assert_eq!(res_rules.len(), 1);
}

#[test]
fn aggregated_cluster_roles_are_evaluated_by_aggregated_rules() {
    let s = Snapshot::new(
        vec![],
        vec![
            json!({"metadata": {"name": "agg"}, "rules": [],
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}),
            json!({"metadata": {"name": "piece", "labels": {"x": "y"}},
                   "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]}),
        ],
        vec![],
        vec![crb("b", "agg", json!([{"kind": "User", "name": "u"}]))],
    );
    assert!(allowed(&s, &res("get", "ns", "", "secrets", "", "s")));
}

/// Not timed: shows that a request looks only at the bindings naming its subject, so
/// the cost stays flat as bindings grow.
#[test]
fn lookups_use_the_subject_index_not_a_scan() {
    let mut roles = Vec::new();
    let mut crbs = Vec::new();
    let mut rbs = Vec::new();
    for i in 0..1000 {
        roles.push(cluster_role(
            &format!("role-{i}"),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": [format!("r{i}")]}]),
        ));
        crbs.push(crb(
            &format!("crb-{i}"),
            &format!("role-{i}"),
            json!([{"kind": "User", "name": format!("user-{i}")}]),
        ));
        rbs.push(rb(
            &format!("ns-{}", i % 10),
            &format!("rb-{i}"),
            "ClusterRole",
            &format!("role-{i}"),
            json!([{"kind": "Group", "name": format!("group-{i}")}]),
        ));
    }
    let s = Snapshot::new(vec![], roles, rbs, crbs);
    let u = user("user-500", &["group-7", "system:authenticated"]);
    assert_eq!(s.bindings_considered(&u, "ns-7"), 2);
    assert_eq!(s.bindings_considered(&u, "ns-3"), 1);
    assert_eq!(s.bindings_considered(&user("nobody", &[]), "ns-1"), 0);
    assert!(authorize(&s, &u, &res("get", "ns-7", "", "r7", "", "x")).is_allowed());
    assert!(authorize(&s, &u, &res("get", "", "", "r500", "", "x")).is_allowed());
    assert!(!authorize(&s, &u, &res("get", "ns-3", "", "r7", "", "x")).is_allowed());
    let start = std::time::Instant::now();
    for _ in 0..10_000 {
        std::hint::black_box(authorize(&s, &u, &res("get", "ns-7", "", "r1", "", "x")));
    }
    eprintln!(
        "10k denied authorizations over 2,000 bindings: {:?}",
        start.elapsed()
    );
}
