//! The resource quota controller against a real apiserver: status.hard follows
//! spec.hard, status.used counts objects and compute requests in upstream's canonical
//! quantities, and usage goes back down when objects are deleted or pods finish.

mod kcm;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace};

fn used(rq: &ResourceQuota) -> BTreeMap<String, String> {
    rq.status
        .as_ref()
        .and_then(|s| s.used.as_ref())
        .map(|u| u.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        .unwrap_or_default()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits until the quota's status.used is exactly `want`.
async fn wait_used(api: &Api<ResourceQuota>, name: &str, want: &[(&str, &str)], kcm: &Kcm) {
    let want = expect(want);
    let mut last = BTreeMap::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            if let Ok(rq) = api.get(name).await {
                last = used(&rq);
                if last == want {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "quota {name}: wanted used {want:?}, last saw {last:?}\n--- kcm log ---\n{}",
        kcm.log()
    );
}

fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": memory},
                          "limits": {"cpu": cpu, "memory": memory}}}]},
    }))
    .expect("pod")
}

#[tokio::test]
async fn usage_is_recomputed_and_given_back() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let kcm = Kcm::run(&server, "resourcequota");
    create_namespace(&client, "quota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "quota");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "quota");
    let pp = PostParams::default();

    let rq: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "compute"},
        "spec": {"hard": {"pods": "5", "requests.cpu": "2", "requests.memory": "2Gi",
                          "limits.cpu": "4", "configmaps": "10", "count/pods": "10",
                          "count/deployments.apps": "3"}},
    }))
    .expect("quota");
    quotas.create(&pp, &rq).await.expect("create quota");
    let zero = [
        ("pods", "0"),
        ("requests.cpu", "0"),
        ("requests.memory", "0"),
        ("limits.cpu", "0"),
        ("configmaps", "0"),
        ("count/pods", "0"),
        ("count/deployments.apps", "0"),
    ];
    wait_used(&quotas, "compute", &zero, &kcm).await;
    let rq = quotas.get("compute").await.expect("get quota");
    let hard = rq.status.and_then(|s| s.hard).expect("status.hard");
    assert_eq!(
        hard.get("requests.memory").map(|q| q.0.as_str()),
        Some("2Gi")
    );

    pods.create(&pp, &pod("a", "1", "512Mi"))
        .await
        .expect("pod a");
    pods.create(&pp, &pod("b", "500m", "512Mi"))
        .await
        .expect("pod b");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cm"}, "data": {"k": "v"}}))
            .expect("configmap");
    Api::<ConfigMap>::namespaced(client.clone(), "quota")
        .create(&pp, &cm)
        .await
        .expect("configmap");
    wait_used(
        &quotas,
        "compute",
        &[
            ("pods", "2"),
            ("requests.cpu", "1500m"),
            ("requests.memory", "1Gi"),
            ("limits.cpu", "1500m"),
            ("configmaps", "1"),
            ("count/pods", "2"),
            ("count/deployments.apps", "0"),
        ],
        &kcm,
    )
    .await;

    // a deleted pod gives its usage back
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete a");
    wait_used(
        &quotas,
        "compute",
        &[
            ("pods", "1"),
            ("requests.cpu", "500m"),
            ("requests.memory", "512Mi"),
            ("limits.cpu", "500m"),
            ("configmaps", "1"),
            ("count/pods", "1"),
            ("count/deployments.apps", "0"),
        ],
        &kcm,
    )
    .await;

    // a finished pod still exists (count/pods) but no longer charges compute
    pods.patch_status(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .expect("finish b");
    wait_used(
        &quotas,
        "compute",
        &[
            ("pods", "0"),
            ("requests.cpu", "0"),
            ("requests.memory", "0"),
            ("limits.cpu", "0"),
            ("configmaps", "1"),
            ("count/pods", "1"),
            ("count/deployments.apps", "0"),
        ],
        &kcm,
    )
    .await;

    // a new hard limit is tracked as soon as the spec changes; a dropped one goes
    quotas
        .patch(
            "compute",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"hard": {"secrets": "4", "requests.cpu": null,
                "requests.memory": null, "limits.cpu": null, "configmaps": null,
                "count/pods": null, "count/deployments.apps": null}}}),
            ),
        )
        .await
        .expect("change quota");
    wait_used(&quotas, "compute", &[("pods", "0"), ("secrets", "0")], &kcm).await;
}

#[tokio::test]
async fn scopes_select_the_pods_counted() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let kcm = Kcm::run(&server, "resourcequota");
    create_namespace(&client, "scoped").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "scoped");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "scoped");
    let pp = PostParams::default();
    for (name, scope) in [("besteffort", "BestEffort"), ("burstable", "NotBestEffort")] {
        let rq: ResourceQuota = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"hard": {"pods": "10"}, "scopes": [scope]},
        }))
        .expect("quota");
        quotas.create(&pp, &rq).await.expect("create quota");
    }
    let high: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "high"},
        "spec": {"hard": {"pods": "10", "requests.cpu": "10"}, "scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}},
    }))
    .expect("quota");
    quotas.create(&pp, &high).await.expect("create quota");

    let plain: Pod = serde_json::from_value(json!({"metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    .expect("pod");
    pods.create(&pp, &plain).await.expect("plain pod");
    pods.create(&pp, &pod("sized", "250m", "64Mi"))
        .await
        .expect("sized pod");
    wait_used(&quotas, "besteffort", &[("pods", "1")], &kcm).await;
    wait_used(&quotas, "burstable", &[("pods", "1")], &kcm).await;
    wait_used(
        &quotas,
        "high",
        &[("pods", "0"), ("requests.cpu", "0")],
        &kcm,
    )
    .await;
}
