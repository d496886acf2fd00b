//! RBAC end to end: the bootstrap policy exists and is enforced, bindings grant exactly
//! what they name, and roles cannot escalate.

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

fn code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn view_in_one_namespace_only_and_no_escalation() {
    let server = common::TestServer::start_with(&["--authorization-mode=RBAC"]);
    let admin = server.client().await;
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:node",
    ] {
        roles
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("bootstrap ClusterRole {name}: {e}"));
    }
    for ns in ["a", "b"] {
        let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .expect("namespace");
    }
    let rb: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "jane-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &rb)
        .await
        .expect("bind");

    let jane = server.client_as("jane", &[]).await;
    Api::<Pod>::namespaced(jane.clone(), "a")
        .list(&ListParams::default())
        .await
        .expect("jane lists pods in a");
    let (c, msg) = code(
        Api::<Pod>::namespaced(jane.clone(), "b")
            .list(&ListParams::default())
            .await
            .expect_err("b"),
    );
    assert_eq!(c, 403);
    assert_eq!(
        msg,
        "pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"b\""
    );
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("cm");
    let (c, _) = code(
        Api::<ConfigMap>::namespaced(jane.clone(), "a")
            .create(&PostParams::default(), &cm)
            .await
            .expect_err("view cannot create"),
    );
    assert_eq!(c, 403);

    // a user allowed to write roles still cannot grant what they do not hold
    let rm: Role = serde_json::from_value(json!({
        "metadata": {"name": "role-manager"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create"]}]
    }))
    .expect("role");
    Api::<Role>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &rm)
        .await
        .expect("role");
    let rb2: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "jane-roles"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-manager"},
        "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &rb2)
        .await
        .expect("bind");
    let greedy: Role = serde_json::from_value(json!({
        "metadata": {"name": "greedy"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    }))
    .expect("role");
    let (c, msg) = code(
        Api::<Role>::namespaced(jane.clone(), "a")
            .create(&PostParams::default(), &greedy)
            .await
            .expect_err("escalation"),
    );
    assert_eq!(c, 403, "{msg}");
    assert!(
        msg.contains("is attempting to grant RBAC permissions not currently held"),
        "{msg}"
    );
    let modest: Role = serde_json::from_value(json!({
        "metadata": {"name": "modest"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    }))
    .expect("role");
    Api::<Role>::namespaced(jane, "a")
        .create(&PostParams::default(), &modest)
        .await
        .expect("a role within what jane holds");
}
