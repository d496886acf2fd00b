//! The garbage collector with the deployment and replicaset controllers: background,
//! orphan and foreground deletion, and dependents of owners that never existed.

mod kcm;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace, live_pods, pod_spec, wait_for, wait_gone};

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec()},
        }
    }))
    .expect("deployment")
}

async fn rs_count(client: &kube::Client, ns: &str, app: &str) -> usize {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app={app}"));
    api.list(&lp)
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

/// Creates a deployment and waits until its ReplicaSet has made both pods.
async fn running(client: &kube::Client, ns: &str, name: &str) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &deployment(name))
        .await
        .expect("create");
    let selector = format!("app={name}");
    wait_for(60, "pods of the deployment", || async {
        (live_pods(client, ns, &selector).await.len() == 2).then_some(())
    })
    .await;
}

async fn all_pods(client: &kube::Client, ns: &str, selector: &str) -> usize {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

#[tokio::test]
async fn background_orphan_and_foreground_deletion() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "deployment,replicaset,garbagecollector");
    create_namespace(&client, "gc").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "gc");

    // background (the default): the ReplicaSet and its pods follow the deployment
    running(&client, "gc", "bg").await;
    api.delete("bg", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(60, "background collection", || async {
        (rs_count(&client, "gc", "bg").await == 0 && all_pods(&client, "gc", "app=bg").await == 0)
            .then_some(())
    })
    .await;

    // orphan: the ReplicaSet stays, without its ownerReference, and keeps its pods
    running(&client, "gc", "keep").await;
    api.delete("keep", &DeleteParams::orphan())
        .await
        .expect("delete orphan");
    wait_gone(&api, "keep", "deployment gone").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "gc");
    let lp = ListParams::default().labels("app=keep");
    let kept = rss.list(&lp).await.expect("list").items;
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0].owner_references().is_empty(),
        "ownerReference removed"
    );
    assert_eq!(live_pods(&client, "gc", "app=keep").await.len(), 2);

    // foreground: the deployment waits, finalizer on, until its dependents are gone
    running(&client, "gc", "fg").await;
    api.delete("fg", &DeleteParams::foreground())
        .await
        .expect("delete foreground");
    wait_for(60, "foreground collection", || async {
        let gone = api.get_opt("fg").await.ok()?.is_none();
        (gone
            && rs_count(&client, "gc", "fg").await == 0
            && all_pods(&client, "gc", "app=fg").await == 0)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn dependents_of_missing_owners_are_collected() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "garbagecollector");
    create_namespace(&client, "dangling").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "dangling");
    let owner: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "owner"}})).expect("cm");
    let owner = cms
        .create(&PostParams::default(), &owner)
        .await
        .expect("owner");
    let dependent = |name: &str, uid: &str, owner_name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": owner_name, "uid": uid}
        ]}}))
        .expect("cm")
    };
    let uid = owner.uid().expect("uid");
    for cm in [
        dependent("owned", &uid, "owner"),
        dependent("wrong-uid", "00000000-0000-0000-0000-000000000000", "owner"),
        dependent("no-owner", "11111111-1111-1111-1111-111111111111", "ghost"),
    ] {
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("dependent");
    }
    wait_for(60, "dangling dependents deleted", || async {
        let a = cms.get_opt("wrong-uid").await.ok()?.is_none();
        let b = cms.get_opt("no-owner").await.ok()?.is_none();
        (a && b).then_some(())
    })
    .await;
    assert!(
        cms.get_opt("owned").await.expect("get").is_some(),
        "a dependent with a live owner stays"
    );
    cms.delete("owner", &DeleteParams::default())
        .await
        .expect("delete owner");
    wait_gone(&cms, "owned", "dependent of deleted owner").await;
}
