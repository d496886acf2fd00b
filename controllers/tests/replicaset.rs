//! The replicaset and replicationcontroller controllers against a real apiserver.

mod kcm;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod, ReplicationController};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace, live_pods, make_pods_ready, pod_spec, wait_for};

fn replicaset(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec()},
        }
    }))
    .expect("replicaset")
}

#[tokio::test]
async fn replicaset_creates_adopts_and_scales_down() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "replicaset");
    create_namespace(&client, "rs").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "rs");
    // an orphan that matches the selector, created before the ReplicaSet
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": pod_spec(),
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "rs");
    let rs = rss
        .create(&PostParams::default(), &replicaset("web", 3))
        .await
        .expect("rs");
    let uid = rs.uid().expect("uid");

    let owned = wait_for(60, "3 pods owned by the ReplicaSet", || async {
        let p = live_pods(&client, "rs", "app=web").await;
        let owned = p
            .iter()
            .filter(|p| {
                p.owner_references()
                    .iter()
                    .any(|r| r.uid == uid && r.controller == Some(true))
            })
            .count();
        (p.len() == 3 && owned == 3).then_some(p)
    })
    .await;
    assert!(
        owned.iter().any(|p| p.name_any() == "orphan"),
        "the orphan was adopted"
    );
    let created: Vec<_> = owned.iter().filter(|p| p.name_any() != "orphan").collect();
    for p in &created {
        assert!(
            p.name_any().starts_with("web-"),
            "generateName web-: {}",
            p.name_any()
        );
        assert_eq!(p.labels().get("app").map(String::as_str), Some("web"));
        let r = &p.owner_references()[0];
        assert_eq!(
            (r.kind.as_str(), r.block_owner_deletion),
            ("ReplicaSet", Some(true))
        );
    }

    make_pods_ready(&client, "rs", "app=web").await;
    let status = wait_for(60, "status counts", || async {
        let rs = rss.get("web").await.ok()?;
        let s = rs.status?;
        (s.ready_replicas == Some(3) && s.available_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(status.replicas, 3);
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert_eq!(status.observed_generation, rs.metadata.generation);

    let events: Api<Event> = Api::namespaced(client.clone(), "rs");
    let list = events.list(&ListParams::default()).await.expect("events");
    let created_events: Vec<_> = list
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate"))
        .collect();
    assert_eq!(created_events.len(), 2);
    let e = created_events[0];
    assert!(
        e.message
            .as_deref()
            .unwrap_or("")
            .starts_with("Created pod: web-")
    );
    assert_eq!(e.involved_object.kind.as_deref(), Some("ReplicaSet"));
    assert_eq!(
        e.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("replicaset-controller")
    );

    // scale down to 1
    let patch = json!({"spec": {"replicas": 1}});
    rss.patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("scale");
    wait_for(60, "scale down to 1", || async {
        let s = rss.get("web").await.ok()?.status?;
        let live = live_pods(&client, "rs", "app=web").await;
        (live.len() == 1 && s.replicas == 1).then_some(())
    })
    .await;
    let list = events.list(&ListParams::default()).await.expect("events");
    let deletes = list
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("SuccessfulDelete"))
        .count();
    assert_eq!(deletes, 2);

    // a pod whose labels stop matching is released
    let survivor = live_pods(&client, "rs", "app=web").await.remove(0);
    let relabel = json!({"metadata": {"labels": {"app": "other"}}});
    pods.patch(
        &survivor.name_any(),
        &PatchParams::default(),
        &Patch::Merge(relabel),
    )
    .await
    .expect("relabel");
    wait_for(60, "release and replacement", || async {
        let released = pods.get(&survivor.name_any()).await.ok()?;
        let replaced = live_pods(&client, "rs", "app=web").await;
        (released.owner_references().is_empty() && replaced.len() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn replication_controller_keeps_replicas() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "replicationcontroller");
    create_namespace(&client, "rc").await;
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "selector": {"app": "legacy"},
            "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": pod_spec()},
        }
    }))
    .expect("rc");
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "rc");
    rcs.create(&PostParams::default(), &rc)
        .await
        .expect("create rc");
    let pods = wait_for(60, "2 pods", || async {
        let p = live_pods(&client, "rc", "app=legacy").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    // a deleted pod is replaced
    let api: Api<Pod> = Api::namespaced(client.clone(), "rc");
    api.delete(&pods[0].name_any(), &Default::default())
        .await
        .expect("delete");
    wait_for(60, "replacement", || async {
        let p = live_pods(&client, "rc", "app=legacy").await;
        (p.len() == 2 && p.iter().all(|x| x.name_any() != pods[0].name_any())).then_some(())
    })
    .await;
    let s = wait_for(60, "rc status", || async {
        let s = rcs.get("legacy").await.ok()?.status?;
        (s.replicas == 2).then_some(s)
    })
    .await;
    assert_eq!(s.fully_labeled_replicas, Some(2));
}

#[tokio::test]
async fn quota_failure_sets_replica_failure() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "replicaset");
    create_namespace(&client, "quota").await;
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(client.clone(), "quota");
    let q =
        serde_json::from_value(json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}}))
            .expect("quota");
    quotas
        .create(&PostParams::default(), &q)
        .await
        .expect("quota");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "quota");
    rss.create(&PostParams::default(), &replicaset("capped", 3))
        .await
        .expect("rs");
    let cond = wait_for(60, "ReplicaFailure", || async {
        let s = rss.get("capped").await.ok()?.status?;
        s.conditions?
            .into_iter()
            .find(|c| c.type_ == "ReplicaFailure")
    })
    .await;
    assert_eq!(cond.status, "True");
    assert_eq!(cond.reason.as_deref(), Some("FailedCreate"));
    assert!(
        cond.message
            .as_deref()
            .unwrap_or("")
            .contains("exceeded quota"),
        "{cond:?}"
    );
    assert_eq!(live_pods(&client, "quota", "app=capped").await.len(), 1);
    let events: Api<Event> = Api::namespaced(client.clone(), "quota");
    let failed = wait_for(60, "FailedCreate event", || async {
        let l = events.list(&ListParams::default()).await.ok()?;
        l.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedCreate"))
    })
    .await;
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or("")
            .starts_with("Error creating: ")
    );
    assert_eq!(failed.type_.as_deref(), Some("Warning"));

    // lifting the quota lets the ReplicaSet finish and clears the condition
    quotas
        .delete("q", &Default::default())
        .await
        .expect("delete quota");
    wait_for(60, "condition cleared", || async {
        let s = rss.get("capped").await.ok()?.status?;
        let clear = s
            .conditions
            .unwrap_or_default()
            .iter()
            .all(|c| c.type_ != "ReplicaFailure");
        (clear && s.replicas == 3).then_some(())
    })
    .await;
}

/// Pods that became ready while no controller ran are counted by the next one, for
/// every ReplicaSet: their first syncs all wait for the pod cache at once (a store's own
/// readiness wakes only one waiter; the others used to hang for good).
#[tokio::test]
async fn a_restarted_controller_counts_pods_readied_while_it_was_down() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let mut kcm = Kcm::run(&server, "replicaset");
    create_namespace(&client, "down").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "down");
    let names = ["web", "api", "db", "cache"];
    for name in names {
        rss.create(&PostParams::default(), &replicaset(name, 1))
            .await
            .expect("rs");
    }
    wait_for(60, "status of the unready pods", || async {
        for name in names {
            let s = rss.get(name).await.ok()?.status?;
            (s.replicas == 1).then_some(())?;
        }
        Some(())
    })
    .await;
    kcm.kill();
    for name in names {
        let selector = format!("app={name}");
        assert_eq!(make_pods_ready(&client, "down", &selector).await, 1);
    }
    let _kcm = Kcm::start(
        &server,
        "kcm-restarted",
        &["--leader-elect=false", "--controllers=replicaset"],
    );
    for name in names {
        wait_for(60, "ready replicas counted", || async {
            let s = rss.get(name).await.ok()?.status?;
            (s.ready_replicas == Some(1) && s.available_replicas == Some(1)).then_some(())
        })
        .await;
    }
}
