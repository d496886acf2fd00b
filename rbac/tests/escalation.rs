//! Escalation prevention on Role/ClusterRole and binding writes, with upstream's text.

use rbac::{
    Snapshot, UserInfo, bootstrap_policy, check_binding_write, check_role_write,
    confirm_no_escalation, may_bind,
};
use serde_json::{Value, json};

fn bob() -> UserInfo {
    UserInfo {
        name: "bob".into(),
        groups: vec!["system:authenticated".into()],
    }
}

/// The bootstrap policy plus `extra` ClusterRoles, Roles and bindings for bob.
fn snapshot(
    extra_cluster_roles: Vec<Value>,
    roles: Vec<Value>,
    rbs: Vec<Value>,
    crbs: Vec<Value>,
) -> Snapshot {
    let p = bootstrap_policy();
    let mut cluster_roles = p.cluster_roles;
    cluster_roles.extend(extra_cluster_roles);
    let mut all_crbs = p.cluster_role_bindings;
    all_crbs.extend(crbs);
    Snapshot::new(roles, cluster_roles, rbs, all_crbs)
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
}

fn bob_crb(role: &str) -> Value {
    json!({"metadata": {"name": format!("bob-{role}")}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": [{"kind": "User", "name": "bob"}]})
}

fn bob_rb(ns: &str, kind: &str, role: &str) -> Value {
    json!({"metadata": {"name": format!("bob-{role}"), "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
           "subjects": [{"kind": "User", "name": "bob"}]})
}

#[test]
fn creating_a_role_with_unheld_rules_is_forbidden_with_upstream_text() {
    let s = snapshot(vec![], vec![], vec![], vec![]);
    let x = cluster_role(
        "x",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    );
    let err = check_role_write(&s, &bob(), "clusterroles", "", &x, None).unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(err.reason, "Forbidden");
    assert_eq!(
        err.message,
        "clusterroles.rbac.authorization.k8s.io \"x\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"
    );
    let status = err.to_status();
    assert_eq!(status["details"]["kind"], "clusterroles");
    assert_eq!(status["details"]["group"], "rbac.authorization.k8s.io");
}

#[test]
fn missing_rules_are_compacted_and_sorted() {
    let s = snapshot(vec![], vec![], vec![], vec![]);
    let u = UserInfo {
        name: "bob".into(),
        groups: vec!["system:authenticated".into(), "dev\"s".into()],
    };
    let err = confirm_no_escalation(&s, &u, "", &[
        json!({"apiGroups": ["apps", ""], "resources": ["deployments"], "verbs": ["get", "list"]}),
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"], "verbs": ["get"]}),
        json!({"nonResourceURLs": ["/metrics", "/healthz"], "verbs": ["get"]}),
    ]).unwrap_err();
    assert_eq!(
        err.message,
        concat!(
            "user \"bob\" (groups=[\"system:authenticated\" \"dev\\\"s\"]) is attempting to grant RBAC permissions not currently held:\n",
            "{APIGroups:[\"\"], Resources:[\"configmaps\"], ResourceNames:[\"a\"], Verbs:[\"get\"]}\n",
            "{APIGroups:[\"\"], Resources:[\"configmaps\"], ResourceNames:[\"b\"], Verbs:[\"get\"]}\n",
            "{APIGroups:[\"\"], Resources:[\"deployments\"], Verbs:[\"get\" \"list\"]}\n",
            "{APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"get\" \"list\"]}\n",
            "{NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}",
        )
    );
}

#[test]
fn held_rules_may_be_granted() {
    let s = snapshot(
        vec![cluster_role(
            "pods-star",
            json!([{"apiGroups": ["", "apps"], "resources": ["pods", "*/scale"], "verbs": ["*"]},
                                              {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"], "verbs": ["get"]}]),
        )],
        vec![],
        vec![],
        vec![bob_crb("pods-star")],
    );
    let ok = |rules: Value| {
        confirm_no_escalation(
            &s,
            &bob(),
            "",
            rules.as_array().map(Vec::as_slice).unwrap_or_default(),
        )
    };
    assert!(
        ok(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"]}])).is_ok()
    );
    assert!(ok(json!([{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update"]}])).is_ok());
    assert!(ok(json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}])).is_ok());
    assert!(
        ok(json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])).is_err(),
        "names do not cover all"
    );
    assert!(
        ok(json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]))
            .is_err()
    );
    assert!(
        ok(json!([{"nonResourceURLs": ["/version"], "verbs": ["get"]}])).is_ok(),
        "system:public-info-viewer"
    );
    assert!(
        ok(json!([{"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}])).is_ok(),
        "system:discovery"
    );
    assert!(ok(json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])).is_err());
}

#[test]
fn namespaced_grants_count_only_in_their_namespace() {
    let s = snapshot(
        vec![],
        vec![],
        vec![bob_rb("team", "ClusterRole", "edit")],
        vec![],
    );
    let role = json!({"metadata": {"name": "r", "namespace": "team"},
                      "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}]});
    assert!(check_role_write(&s, &bob(), "roles", "team", &role, None).is_ok());
    let err = check_role_write(&s, &bob(), "roles", "other", &role, None).unwrap_err();
    assert!(
        err.message
            .starts_with("roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"bob\""),
        "{}",
        err.message
    );
}

#[test]
fn masters_escalate_and_gc_updates_bypass_the_check() {
    let s = snapshot(
        vec![cluster_role(
            "escalator",
            json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]}]),
        )],
        vec![],
        vec![],
        vec![],
    );
    let x = cluster_role(
        "x",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    );
    let root = UserInfo {
        name: "root".into(),
        groups: vec!["system:masters".into()],
    };
    assert!(check_role_write(&s, &root, "clusterroles", "", &x, None).is_ok());
    assert!(check_role_write(&s, &bob(), "clusterroles", "", &x, None).is_err());
    let mut gc = x.clone();
    gc["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
    assert!(check_role_write(&s, &bob(), "clusterroles", "", &gc, Some(&x)).is_ok());
    let s = snapshot(
        vec![cluster_role(
            "escalator",
            json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]}]),
        )],
        vec![],
        vec![],
        vec![bob_crb("escalator")],
    );
    assert!(check_role_write(&s, &bob(), "clusterroles", "", &x, None).is_ok());
}

#[test]
fn aggregation_rules_need_full_authority() {
    let s = snapshot(vec![], vec![], vec![], vec![bob_crb("view")]);
    let agg = json!({"metadata": {"name": "agg"}, "rules": [],
                     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}});
    let err = check_role_write(&s, &bob(), "clusterroles", "", &agg, None).unwrap_err();
    assert_eq!(
        err.message,
        "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
    );
    let s = snapshot(vec![], vec![], vec![], vec![bob_crb("cluster-admin")]);
    assert!(check_role_write(&s, &bob(), "clusterroles", "", &agg, None).is_ok());
}

#[test]
fn binding_needs_the_rules_or_the_bind_verb() {
    let binder = cluster_role(
        "binder",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                                                "verbs": ["bind"], "resourceNames": ["admin"]}]),
    );
    let s = snapshot(
        vec![binder],
        vec![],
        vec![
            bob_rb("team", "ClusterRole", "binder"),
            bob_rb("team", "ClusterRole", "view"),
        ],
        vec![],
    );
    let to = |role: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role});
    assert!(
        may_bind(&s, &bob(), "team", &to("admin")).is_ok(),
        "bind verb on that role"
    );
    assert!(
        may_bind(&s, &bob(), "team", &to("view")).is_ok(),
        "holds all of view's rules"
    );
    assert!(may_bind(&s, &bob(), "other", &to("admin")).is_err());
    assert!(may_bind(&s, &bob(), "team", &to("edit")).is_err());
    assert_eq!(
        may_bind(&s, &bob(), "team", &to("nope")).unwrap_err(),
        "clusterroles.rbac.authorization.k8s.io \"nope\" not found"
    );
    let role_ref =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"});
    assert_eq!(
        may_bind(&s, &bob(), "team", &role_ref).unwrap_err(),
        "roles.rbac.authorization.k8s.io \"missing\" not found"
    );

    let rb = json!({"metadata": {"name": "give-edit", "namespace": "team"}, "roleRef": to("edit"),
                    "subjects": [{"kind": "User", "name": "eve"}]});
    let err = check_binding_write(&s, &bob(), "rolebindings", "team", &rb, None).unwrap_err();
    assert_eq!(err.code, 403);
    assert!(err.message.starts_with("rolebindings.rbac.authorization.k8s.io \"give-edit\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:["), "{}", err.message);
    let root = UserInfo {
        name: "root".into(),
        groups: vec!["system:masters".into()],
    };
    assert!(check_binding_write(&s, &root, "rolebindings", "team", &rb, None).is_ok());
    let crb = json!({"metadata": {"name": "cluster-view"}, "roleRef": to("view"), "subjects": []});
    assert!(
        check_binding_write(&s, &bob(), "clusterrolebindings", "", &crb, None).is_err(),
        "view held only in team"
    );
}
