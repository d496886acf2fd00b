//! The bootstrap policy against upstream's facts, aggregation of its roles, and
//! start-up reconciliation.

use std::collections::HashSet;

use rbac::{
    Attributes, Snapshot, UserInfo, aggregate, authorize, bootstrap_policy, needs_recreate,
    reconcile,
};
use serde_json::{Value, json};

fn name(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn find<'a>(list: &'a [Value], n: &str) -> &'a Value {
    list.iter()
        .find(|v| name(v) == n)
        .unwrap_or_else(|| panic!("{n} missing"))
}

fn snapshot() -> Snapshot {
    let p = bootstrap_policy();
    Snapshot::new(
        p.roles.into_iter().map(|(_, v)| v).collect(),
        p.cluster_roles,
        p.role_bindings.into_iter().map(|(_, v)| v).collect(),
        p.cluster_role_bindings,
    )
}

fn can(
    s: &Snapshot,
    user: &str,
    groups: &[&str],
    verb: &str,
    ns: &str,
    group: &str,
    resource: &str,
) -> bool {
    let u = UserInfo {
        name: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let a = Attributes {
        verb: verb.into(),
        namespace: ns.into(),
        api_group: group.into(),
        resource: resource.into(),
        name: "x".into(),
        is_resource_request: true,
        ..Attributes::default()
    };
    authorize(s, &u, &a).is_allowed()
}

#[test]
fn counts_match_upstream_testdata() {
    let p = bootstrap_policy();
    let controllers = |list: &[Value]| {
        list.iter()
            .filter(|v| name(v).starts_with("system:controller:"))
            .count()
    };
    // cluster-roles.yaml: 31, controller-roles.yaml: 38.
    assert_eq!(p.cluster_roles.len() - controllers(&p.cluster_roles), 31);
    assert_eq!(controllers(&p.cluster_roles), 38);
    // cluster-role-bindings.yaml: 12, controller-role-bindings.yaml: 38.
    assert_eq!(
        p.cluster_role_bindings.len() - controllers(&p.cluster_role_bindings),
        12
    );
    assert_eq!(controllers(&p.cluster_role_bindings), 38);
    // namespace-roles.yaml and namespace-role-bindings.yaml: 7 each.
    assert_eq!(p.roles.len(), 7);
    assert_eq!(p.role_bindings.len(), 7);
    let names: HashSet<&str> = p.cluster_roles.iter().map(name).collect();
    assert_eq!(names.len(), p.cluster_roles.len(), "names are unique");
}

#[test]
fn objects_are_complete() {
    let p = bootstrap_policy();
    let all = p
        .cluster_roles
        .iter()
        .chain(&p.cluster_role_bindings)
        .chain(p.roles.iter().map(|(_, v)| v))
        .chain(p.role_bindings.iter().map(|(_, v)| v));
    for v in all {
        assert_eq!(v["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(
            v.pointer("/metadata/labels/kubernetes.io~1bootstrapping"),
            Some(&json!("rbac-defaults")),
            "{v}"
        );
        assert_eq!(
            v.pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate"),
            Some(&json!("true"))
        );
        if v["kind"] == "ClusterRole" || v["kind"] == "Role" {
            let aggregated = v.get("aggregationRule").is_some();
            assert_eq!(
                v["rules"].as_array().map(Vec::is_empty),
                Some(aggregated),
                "{}",
                name(v)
            );
        }
    }
    for (ns, v) in p.roles.iter().chain(&p.role_bindings) {
        assert_eq!(
            v.pointer("/metadata/namespace").and_then(Value::as_str),
            Some(ns.as_str())
        );
    }
    let admin = find(&p.cluster_roles, "cluster-admin");
    assert_eq!(
        admin["rules"],
        json!([
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["*"], "nonResourceURLs": ["*"]},
        ])
    );
    let edit = find(&p.cluster_roles, "edit");
    assert_eq!(
        edit["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}}]})
    );
    assert_eq!(
        edit.pointer("/metadata/labels/rbac.authorization.k8s.io~1aggregate-to-admin"),
        Some(&json!("true"))
    );
    let approver = find(
        &p.cluster_roles,
        "system:certificates.k8s.io:kubelet-serving-approver",
    );
    assert_eq!(
        approver["rules"],
        json!([{"verbs": ["approve"], "apiGroups": ["certificates.k8s.io"],
        "resources": ["signers"], "resourceNames": ["kubernetes.io/kubelet-serving"]}])
    );
    let gc = find(
        &p.cluster_role_bindings,
        "system:controller:generic-garbage-collector",
    );
    assert_eq!(
        gc["subjects"],
        json!([{"kind": "ServiceAccount", "name": "generic-garbage-collector", "namespace": "kube-system"}])
    );
    assert!(
        find(&p.cluster_role_bindings, "system:node")
            .get("subjects")
            .is_none()
    );
}

#[test]
fn every_role_ref_resolves() {
    let p = bootstrap_policy();
    let cluster: HashSet<&str> = p.cluster_roles.iter().map(name).collect();
    for b in &p.cluster_role_bindings {
        assert_eq!(b["roleRef"]["kind"], "ClusterRole");
        assert!(
            cluster.contains(b["roleRef"]["name"].as_str().unwrap_or("")),
            "{}",
            name(b)
        );
    }
    for (ns, b) in &p.role_bindings {
        let target = b["roleRef"]["name"].as_str().unwrap_or("");
        let found = match b["roleRef"]["kind"].as_str() {
            Some("Role") => p
                .roles
                .iter()
                .any(|(rns, r)| rns == ns && name(r) == target),
            Some("ClusterRole") => cluster.contains(target),
            _ => false,
        };
        assert!(found, "{ns}/{}", name(b));
    }
}

#[test]
fn default_permissions() {
    let s = snapshot();
    assert!(can(
        &s,
        "root",
        &["system:masters"],
        "delete",
        "",
        "",
        "nodes"
    ));
    assert!(can(
        &s,
        "root",
        &["system:masters"],
        "escalate",
        "",
        "rbac.authorization.k8s.io",
        "clusterroles"
    ));
    assert!(can(
        &s,
        "anyone",
        &["system:authenticated"],
        "create",
        "",
        "authorization.k8s.io",
        "selfsubjectrulesreviews"
    ));
    assert!(!can(
        &s,
        "anyone",
        &["system:authenticated"],
        "get",
        "default",
        "",
        "pods"
    ));
    assert!(can(
        &s,
        "system:kube-scheduler",
        &[],
        "create",
        "default",
        "",
        "bindings"
    ));
    assert!(can(
        &s,
        "system:kube-scheduler",
        &[],
        "update",
        "kube-system",
        "coordination.k8s.io",
        "leases"
    ));
    assert!(can(
        &s,
        "system:serviceaccount:kube-system:namespace-controller",
        &[],
        "deletecollection",
        "x",
        "apps",
        "deployments"
    ));
    assert!(!can(
        &s,
        "system:serviceaccount:kube-system:namespace-controller",
        &[],
        "create",
        "x",
        "apps",
        "deployments"
    ));
    assert!(can(
        &s,
        "system:serviceaccount:kube-system:bootstrap-signer",
        &[],
        "list",
        "kube-public",
        "",
        "configmaps"
    ));
    assert!(!can(
        &s,
        "system:serviceaccount:kube-system:bootstrap-signer",
        &[],
        "list",
        "default",
        "",
        "configmaps"
    ));
}

#[test]
fn aggregation_builds_view_edit_admin() {
    let p = bootstrap_policy();
    let agg: Vec<(String, Vec<Value>)> = aggregate(&p.cluster_roles);
    let names: Vec<&str> = agg.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["admin", "edit", "view"]);
    let rules = |n: &str| {
        agg.iter()
            .find(|(x, _)| x == n)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    let view_src = find(&p.cluster_roles, "system:aggregate-to-view")["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rules("view"), view_src);
    let edit = rules("edit");
    let edit_src = find(&p.cluster_roles, "system:aggregate-to-edit")["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        &edit[..edit_src.len()],
        &edit_src[..],
        "selected roles in name order"
    );
    assert!(rules("admin").len() > edit.len());
    let has_secrets = |rs: &[Value]| {
        rs.iter().any(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("secrets")))
        })
    };
    assert!(!has_secrets(&rules("view")), "view must not read secrets");
    assert!(has_secrets(&edit));

    let s = snapshot();
    let bind = |role: &str| {
        let p = bootstrap_policy();
        let mut crbs = p.cluster_role_bindings;
        crbs.push(
            json!({"metadata": {"name": "t"}, "roleRef": {"kind": "ClusterRole", "name": role},
                         "subjects": [{"kind": "User", "name": "t"}]}),
        );
        Snapshot::new(vec![], p.cluster_roles, vec![], crbs)
    };
    assert!(!can(&s, "t", &[], "get", "ns", "", "pods"));
    let view = bind("view");
    assert!(can(&view, "t", &[], "get", "ns", "", "pods"));
    assert!(!can(&view, "t", &[], "get", "ns", "", "secrets"));
    let admin = bind("admin");
    assert!(can(
        &admin,
        "t",
        &[],
        "create",
        "ns",
        "rbac.authorization.k8s.io",
        "rolebindings"
    ));
    assert!(can(&admin, "t", &[], "delete", "ns", "apps", "deployments"));
    assert!(can(&admin, "t", &[], "get", "ns", "", "secrets"));
}

#[test]
fn aggregation_dedups_and_follows_selectors() {
    let rule = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
    let roles = vec![
        json!({"metadata": {"name": "z"}, "aggregationRule": {"clusterRoleSelectors": [
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}]}}),
        json!({"metadata": {"name": "b", "labels": {"tier": "b"}}, "rules": [rule, {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]}),
        json!({"metadata": {"name": "a", "labels": {"tier": "a"}}, "rules": [rule]}),
        json!({"metadata": {"name": "c", "labels": {"tier": "c"}}, "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}),
    ];
    let out = aggregate(&roles);
    assert_eq!(
        out,
        vec![(
            "z".to_string(),
            vec![
                rule.clone(),
                json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]})
            ]
        )]
    );
}

#[test]
fn reconcile_creates_unions_and_respects_opt_out() {
    let p = bootstrap_policy();
    let wanted = find(&p.cluster_roles, "system:kube-dns").clone();
    assert_eq!(reconcile(None, &wanted), Some(wanted.clone()));
    assert_eq!(reconcile(Some(&wanted), &wanted), None);

    let mut stale = wanted.clone();
    stale["rules"] = json!([{"verbs": ["list"], "apiGroups": [""], "resources": ["endpoints", "services"]},
                            {"verbs": ["get"], "apiGroups": ["x"], "resources": ["mine"]}]);
    stale["metadata"]["labels"] = json!({"custom": "1"});
    stale["metadata"]["resourceVersion"] = json!("5");
    let updated = reconcile(Some(&stale), &wanted).expect("update needed");
    assert_eq!(
        updated["rules"],
        json!([
            {"verbs": ["list"], "apiGroups": [""], "resources": ["endpoints", "services"]},
            {"verbs": ["get"], "apiGroups": ["x"], "resources": ["mine"]},
            {"verbs": ["watch"], "apiGroups": [""], "resources": ["endpoints"]},
            {"verbs": ["watch"], "apiGroups": [""], "resources": ["services"]},
        ])
    );
    assert_eq!(
        updated["metadata"]["labels"],
        json!({"custom": "1", "kubernetes.io/bootstrapping": "rbac-defaults"})
    );
    assert_eq!(updated["metadata"]["resourceVersion"], "5");

    let mut protected = stale.clone();
    protected["metadata"]["annotations"] =
        json!({"rbac.authorization.kubernetes.io/autoupdate": "false"});
    assert_eq!(reconcile(Some(&protected), &wanted), None);

    let binding = find(&p.cluster_role_bindings, "system:public-info-viewer").clone();
    let mut partial = binding.clone();
    partial["subjects"] = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"},
                                 {"kind": "User", "name": "extra"}]);
    let updated = reconcile(Some(&partial), &binding).expect("subjects missing");
    assert_eq!(updated["subjects"].as_array().map(Vec::len), Some(3));
    assert!(!needs_recreate(&partial, &updated));
    let mut moved = binding.clone();
    moved["roleRef"]["name"] = json!("other");
    let replaced = reconcile(Some(&moved), &binding).expect("recreate");
    assert!(needs_recreate(&moved, &replaced));

    let admin = find(&p.cluster_roles, "admin").clone();
    let mut aggregated = admin.clone();
    aggregated["rules"] = json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]);
    assert_eq!(
        reconcile(Some(&aggregated), &admin),
        None,
        "aggregated rules are the controller's"
    );
    let mut lost = admin.clone();
    lost.as_object_mut().map(|m| m.remove("aggregationRule"));
    assert_eq!(
        reconcile(Some(&lost), &admin).map(|v| v["aggregationRule"].clone()),
        Some(admin["aggregationRule"].clone())
    );
}
