//! The clusterrole-aggregation controller against a real apiserver: a ClusterRole
//! labelled `aggregate-to-view` shows up in view (and through it in edit and admin),
//! goes away again when deleted, and user-defined aggregated roles follow their sources.

mod kcm;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, wait_for};

fn has_resource(rules: Option<&Vec<PolicyRule>>, resource: &str) -> bool {
    rules
        .into_iter()
        .flatten()
        .any(|r| r.resources.iter().flatten().any(|x| x == resource))
}

async fn role_has(api: &Api<ClusterRole>, name: &str, resource: &str) -> Option<bool> {
    let cr = api.get(name).await.ok()?;
    Some(has_resource(cr.rules.as_ref(), resource))
}

#[tokio::test]
async fn bootstrap_roles_pick_up_new_rules() {
    // RBAC mode: the API server creates the bootstrap roles (view, edit, admin)
    let server = testenv::TestServer::start_with(&["--authorization-mode=RBAC"]);
    let client = server.client().await;
    let kcm = Kcm::run(&server, "clusterrole-aggregation");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let widget: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "widget-viewer",
                     "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"],
                   "verbs": ["get", "list", "watch"]}],
    }))
    .expect("clusterrole");
    roles
        .create(&PostParams::default(), &widget)
        .await
        .expect("create");
    for name in ["view", "edit", "admin"] {
        let found = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while role_has(&roles, name, "widgets").await != Some(true) {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "widgets never showed up in {name}\n--- kcm log ---\n{}",
            kcm.log()
        );
    }
    // the bootstrap rules are still there
    assert_eq!(role_has(&roles, "view", "pods").await, Some(true));

    roles
        .delete("widget-viewer", &DeleteParams::default())
        .await
        .expect("delete");
    for name in ["view", "edit", "admin"] {
        wait_for(60, &format!("widgets gone from {name}"), || async {
            (!role_has(&roles, name, "widgets").await?).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn user_aggregated_roles_follow_their_sources() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "clusterrole-aggregation");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let pp = PostParams::default();
    let parent: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "team-a"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"team": "a"}}]},
    }))
    .expect("parent");
    roles.create(&pp, &parent).await.expect("parent");
    for (name, resource) in [("team-a-2", "configmaps"), ("team-a-1", "secrets")] {
        let child: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"team": "a"}},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": ["get"]},
                      {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        }))
        .expect("child");
        roles.create(&pp, &child).await.expect("child");
    }
    // sources by name (team-a-1 first), duplicates once
    let rules = wait_for(60, "team-a aggregated", || async {
        let cr = roles.get("team-a").await.ok()?;
        let rules = cr.rules.unwrap_or_default();
        (rules.len() == 3).then_some(rules)
    })
    .await;
    let resources: Vec<String> = rules
        .iter()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    assert_eq!(resources, ["secrets", "pods", "configmaps"]);

    // a changed source changes the aggregate
    roles
        .patch(
            "team-a-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": [
                {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]})),
        )
        .await
        .expect("patch child");
    wait_for(60, "team-a follows team-a-2", || async {
        let cr = roles.get("team-a").await.ok()?;
        let rules = cr.rules.as_ref();
        (has_resource(rules, "services") && !has_resource(rules, "configmaps")).then_some(())
    })
    .await;
}
