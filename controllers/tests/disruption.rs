//! The disruption controller against a real apiserver: PodDisruptionBudget status from
//! ready pods, percentages resolved against a ReplicaSet's scale, pending disruptions
//! that expire, and `SyncFailed` when a pod's controller cannot be found.

mod kcm;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace, make_pods_ready, pod_spec, wait_for};

/// `(currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed)`.
type Numbers = (i32, i32, i32, i32);

fn numbers(pdb: &PodDisruptionBudget) -> Option<Numbers> {
    let s = pdb.status.as_ref()?;
    Some((
        s.current_healthy,
        s.desired_healthy,
        s.expected_pods,
        s.disruptions_allowed,
    ))
}

/// The DisruptionAllowed condition's status and reason.
fn condition(pdb: &PodDisruptionBudget) -> Option<(String, String)> {
    pdb.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn wait_numbers(
    api: &Api<PodDisruptionBudget>,
    name: &str,
    want: Numbers,
    reason: &str,
    kcm: &Kcm,
) -> PodDisruptionBudget {
    let mut last = None;
    let found = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            if let Ok(pdb) = api.get(name).await {
                let got = (numbers(&pdb), condition(&pdb).map(|c| c.1));
                if got == (Some(want), Some(reason.to_string())) {
                    return pdb;
                }
                last = Some(got);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    match found {
        Ok(pdb) => pdb,
        Err(_) => panic!(
            "budget {name}: wanted {want:?} {reason}, last saw {last:?}\n--- kcm log ---\n{}",
            kcm.log()
        ),
    }
}

fn seconds(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn pdb(name: &str, spec: serde_json::Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pdb")
}

async fn create_pods(api: &Api<Pod>, names: &[&str], labels: serde_json::Value) {
    for name in names {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": pod_spec(),
        }))
        .expect("pod");
        api.create(&PostParams::default(), &p).await.expect("pod");
    }
}

#[tokio::test]
async fn min_available_follows_ready_pods() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let kcm = Kcm::run(&server, "disruption");
    create_namespace(&client, "pdb").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "pdb");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "pdb");
    create_pods(&pods, &["a", "b", "c"], json!({"app": "web"})).await;
    assert_eq!(make_pods_ready(&client, "pdb", "app=web").await, 3);
    pdbs.create(
        &PostParams::default(),
        &pdb(
            "web",
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
        ),
    )
    .await
    .expect("pdb");
    let synced = wait_numbers(&pdbs, "web", (3, 2, 3, 1), "SufficientPods", &kcm).await;
    let status = synced.status.expect("status");
    assert_eq!(status.observed_generation, synced.metadata.generation);
    assert_eq!(
        condition(&pdbs.get("web").await.expect("get"))
            .map(|c| c.0)
            .as_deref(),
        Some("True")
    );

    // one pod stops being ready: no more disruptions allowed
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    pods.patch_status(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "lastTransitionTime": now}]}})),
    )
    .await
    .expect("unready");
    let pdb = wait_numbers(&pdbs, "web", (2, 2, 3, 0), "InsufficientPods", &kcm).await;
    assert_eq!(condition(&pdb).map(|c| c.0).as_deref(), Some("False"));

    // a pod the eviction API just disrupted does not count; an old entry is dropped
    make_pods_ready(&client, "pdb", "app=web").await;
    wait_numbers(&pdbs, "web", (3, 2, 3, 1), "SufficientPods", &kcm).await;
    let now = k8s_openapi::jiff::Timestamp::now();
    let old = now - k8s_openapi::jiff::SignedDuration::from_secs(600);
    pdbs.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"disruptedPods": {
            "a": seconds(now), "b": seconds(old)}}})),
    )
    .await
    .expect("mark disrupted");
    let pdb = wait_numbers(&pdbs, "web", (2, 2, 3, 0), "InsufficientPods", &kcm).await;
    let disrupted: BTreeMap<String, _> = pdb
        .status
        .and_then(|s| s.disrupted_pods)
        .unwrap_or_default();
    assert_eq!(disrupted.keys().collect::<Vec<_>>(), ["a"]);
}

#[tokio::test]
async fn percentages_use_the_controller_scale() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let kcm = Kcm::run(&server, "disruption,replicaset");
    create_namespace(&client, "scale").await;
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}},
    }))
    .expect("rs");
    Api::<ReplicaSet>::namespaced(client.clone(), "scale")
        .create(&PostParams::default(), &rs)
        .await
        .expect("rs");
    wait_for(60, "4 pods", || async {
        (kcm::live_pods(&client, "scale", "app=web").await.len() == 4).then_some(())
    })
    .await;
    make_pods_ready(&client, "scale", "app=web").await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "scale");
    let pp = PostParams::default();
    let sel = json!({"matchLabels": {"app": "web"}});
    pdbs.create(
        &pp,
        &pdb("max", json!({"maxUnavailable": "25%", "selector": sel})),
    )
    .await
    .expect("pdb");
    pdbs.create(
        &pp,
        &pdb("min", json!({"minAvailable": "90%", "selector": sel})),
    )
    .await
    .expect("pdb");
    wait_numbers(&pdbs, "max", (4, 3, 4, 1), "SufficientPods", &kcm).await;
    wait_numbers(&pdbs, "min", (4, 4, 4, 0), "InsufficientPods", &kcm).await;
}

#[tokio::test]
async fn missing_controller_fails_safe() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let kcm = Kcm::run(&server, "disruption");
    create_namespace(&client, "ghost").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ghost");
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "ghost"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
                "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]},
        "spec": pod_spec(),
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &p).await.expect("pod");
    make_pods_ready(&client, "ghost", "app=ghost").await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "ghost");
    pdbs.create(
        &PostParams::default(),
        &pdb(
            "ghost",
            json!({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "ghost"}}}),
        ),
    )
    .await
    .expect("pdb");
    let pdb = wait_for(60, "SyncFailed", || async {
        let pdb = pdbs.get("ghost").await.ok()?;
        (condition(&pdb)?.1 == "SyncFailed").then_some(pdb)
    })
    .await;
    let status = pdb.status.expect("status");
    assert_eq!(status.disruptions_allowed, 0);
    let cond = status
        .conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
        .expect("condition");
    assert_eq!(cond.status, "False");
    assert!(
        cond.message.contains("found no controllers for pod"),
        "{}\n{}",
        cond.message,
        kcm.log()
    );
}
