//! Leader election between controller managers, and a controller manager restarted in
//! the middle of a rollout.

mod kcm;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace, live_pods, make_pods_ready, pod_spec, wait_for};

const ELECTION: &[&str] = &[
    "--leader-elect=true",
    "--leader-elect-lease-duration=3s",
    "--leader-elect-renew-deadline=2s",
    "--leader-elect-retry-period=200ms",
    "--controllers=replicaset",
];

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = leases.get_opt("kube-controller-manager").await.ok()??;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

fn replicaset(replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "le"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "le"}},
            "template": {"metadata": {"labels": {"app": "le"}}, "spec": pod_spec()},
        }
    }))
    .expect("rs")
}

#[tokio::test]
async fn one_leader_and_handover() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let mut a = Kcm::start(&server, "a", ELECTION);
    let first = wait_for(60, "a leader", || holder(&client)).await;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert!(
        first.starts_with(&format!("{}_", host.trim())),
        "identity {first}"
    );
    let mut b = Kcm::start(&server, "b", ELECTION);
    create_namespace(&client, "le").await;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "le");
    rss.create(&PostParams::default(), &replicaset(2))
        .await
        .expect("rs");
    wait_for(60, "pods from the leader", || async {
        (live_pods(&client, "le", "app=le").await.len() == 2).then_some(())
    })
    .await;
    assert_eq!(holder(&client).await.as_deref(), Some(first.as_str()));
    assert!(a.log().contains("successfully acquired lease"));
    assert!(
        !b.log().contains("successfully acquired lease"),
        "only one leader"
    );

    // the leader crashes: the other takes over once the lease expires
    a.kill();
    let second = wait_for(60, "handover", || async {
        holder(&client).await.filter(|h| *h != first)
    })
    .await;
    assert!(b.log().contains("successfully acquired lease"));
    let patch = json!({"spec": {"replicas": 3}});
    rss.patch("le", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("scale");
    wait_for(60, "pods from the new leader", || async {
        (live_pods(&client, "le", "app=le").await.len() == 3).then_some(())
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), "kube-system");
    let list = events.list(&ListParams::default()).await.expect("events");
    let became = format!("{second} became leader");
    assert!(
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("LeaderElection")
                && e.message.as_deref() == Some(became.as_str()))
    );

    // a graceful stop releases the lease at once
    assert_eq!(b.terminate(), Some(0));
    assert_eq!(holder(&client).await, None, "released on shutdown");
}

#[tokio::test]
async fn losing_the_lease_exits_non_zero() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let mut c = Kcm::start(&server, "c", ELECTION);
    wait_for(60, "leader", || holder(&client)).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        .to_string();
    let steal = json!({"spec": {"holderIdentity": "someone-else", "renewTime": now, "leaseDurationSeconds": 3600}});
    leases
        .patch(
            "kube-controller-manager",
            &PatchParams::default(),
            &Patch::Merge(steal),
        )
        .await
        .expect("steal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(st) = c.exited() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after losing the lease"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(status.code(), Some(1));
    assert!(c.log().contains("leaderelection lost"));
}

#[tokio::test]
async fn restart_mid_rollout_continues() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let mut kcm = Kcm::run(&server, "deployment,replicaset");
    create_namespace(&client, "mid").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "mid");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
        }
    }))
    .expect("deployment");
    api.create(&PostParams::default(), &d)
        .await
        .expect("create");
    wait_for(60, "first rollout", || async {
        make_pods_ready(&client, "mid", "app=web").await;
        let s = api.get("web").await.ok()?.status?;
        (s.available_replicas == Some(3) && s.updated_replicas == Some(3)).then_some(())
    })
    .await;
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("update");
    // the surge pod exists, nobody has made it ready: stop the controllers here
    wait_for(60, "surge pod", || async {
        (live_pods(&client, "mid", "app=web").await.len() == 4).then_some(())
    })
    .await;
    kcm.kill();
    let _kcm = Kcm::start(
        &server,
        "kcm-restarted",
        &[
            "--leader-elect=false",
            "--controllers=deployment,replicaset",
        ],
    );
    let done = wait_for(90, "rollout finished after restart", || async {
        make_pods_ready(&client, "mid", "app=web").await;
        let d = api.get("web").await.ok()?;
        let s = d.status.clone()?;
        let complete = s.updated_replicas == Some(3)
            && s.replicas == Some(3)
            && s.available_replicas == Some(3);
        (complete
            && d.annotations()
                .get("deployment.kubernetes.io/revision")
                .map(String::as_str)
                == Some("2"))
        .then_some(d)
    })
    .await;
    assert_eq!(
        done.status.and_then(|s| s.observed_generation),
        done.metadata.generation
    );
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "mid");
    let all = rss.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(all.len(), 2, "no duplicate ReplicaSet after the restart");
    assert_eq!(live_pods(&client, "mid", "app=web").await.len(), 3);
}
