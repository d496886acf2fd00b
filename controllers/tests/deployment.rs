//! The deployment controller (with the replicaset controller making pods) against a real
//! apiserver; the test plays the kubelet by marking pods ready.

mod kcm;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace, live_pods, make_pods_ready, pod_spec, wait_for};

const REVISION: &str = "deployment.kubernetes.io/revision";

fn deployment(name: &str, replicas: i32, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec()},
        }
    }))
    .expect("deployment")
}

/// A real kubectl, if this machine has one.
fn kubectl() -> Option<&'static str> {
    [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../_output/bin/kubectl"),
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.annotations().get(key).cloned()
}

async fn replica_sets(client: &kube::Client, ns: &str, app: &str) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app={app}"));
    api.list(&lp).await.map(|l| l.items).unwrap_or_default()
}

/// Plays the kubelet until the deployment reports a complete rollout of `revision`.
async fn wait_rolled_out(
    client: &kube::Client,
    ns: &str,
    name: &str,
    revision: &str,
) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    wait_for(90, &format!("rollout of revision {revision}"), || async {
        make_pods_ready(client, ns, &format!("app={name}")).await;
        let d = api.get(name).await.ok()?;
        let s = d.status.clone()?;
        let want = d.spec.as_ref()?.replicas?;
        let progressing = s.conditions.iter().flatten().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        });
        let done = d.annotations().get(REVISION).map(String::as_str) == Some(revision)
            && s.updated_replicas == Some(want)
            && s.replicas == Some(want)
            && s.available_replicas == Some(want)
            && progressing;
        done.then_some(d)
    })
    .await
}

/// The first rollout: one ReplicaSet named after its template hash, upstream's
/// annotations, conditions and messages, pods labelled with the hash. Returns the
/// ReplicaSet and its hash.
async fn check_first_revision(client: &kube::Client, d: &Deployment) -> (ReplicaSet, String) {
    let rss = replica_sets(client, "d", "web").await;
    assert_eq!(rss.len(), 1);
    let first = rss[0].clone();
    let hash = first
        .labels()
        .get("pod-template-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(first.name_any(), format!("web-{hash}"));
    assert_eq!(annotation(&first, REVISION).as_deref(), Some("1"));
    assert_eq!(
        annotation(&first, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(&first, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("4")
    );
    assert_eq!(first.owner_references()[0].kind, "Deployment");
    let conds = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let available = conds
        .iter()
        .find(|c| c.type_ == "Available")
        .expect("Available");
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        available.message.as_deref(),
        Some("Deployment has minimum availability.")
    );
    let progressing = conds
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("Progressing");
    let msg = format!("ReplicaSet \"web-{hash}\" has successfully progressed.");
    assert_eq!(progressing.message.as_deref(), Some(msg.as_str()));
    for p in live_pods(client, "d", "app=web").await {
        assert_eq!(p.labels().get("pod-template-hash"), Some(&hash));
    }

    (first, hash)
}

/// Messages of the deployment's ScalingReplicaSet events.
async fn scaling_events(client: &kube::Client, ns: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = events.list(&ListParams::default()).await.expect("events");
    list.items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ScalingReplicaSet"))
        .filter_map(|e| e.message.clone())
        .collect()
}

#[tokio::test]
async fn rolling_update_and_rollback() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "deployment,replicaset");
    create_namespace(&client, "d").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "d");
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    api.create(&PostParams::default(), &deployment("web", 3, strategy))
        .await
        .expect("create");

    let d = wait_rolled_out(&client, "d", "web", "1").await;
    let (first, hash) = check_first_revision(&client, &d).await;

    // a template change rolls out a second ReplicaSet
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("update");
    // `kubectl rollout status` follows the rollout through the status fields
    let rollout_status = kubectl().map(|bin| {
        std::process::Command::new(bin)
            .arg(format!(
                "--kubeconfig={}",
                server.kubeconfig_path().display()
            ))
            .args([
                "rollout",
                "status",
                "deployment/web",
                "-n",
                "d",
                "--timeout=90s",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start kubectl")
    });
    wait_rolled_out(&client, "d", "web", "2").await;
    if let Some(out) = rollout_status {
        let out = out.wait_with_output().expect("kubectl output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kubectl rollout status: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("deployment \"web\" successfully rolled out"),
            "{stdout}"
        );
    }
    let rss = replica_sets(&client, "d", "web").await;
    assert_eq!(rss.len(), 2);
    let old = rss
        .iter()
        .find(|rs| rs.uid() == first.uid())
        .expect("old rs kept");
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(0));
    let second = rss
        .iter()
        .find(|rs| rs.uid() != first.uid())
        .expect("new rs")
        .clone();
    assert_eq!(annotation(&second, REVISION).as_deref(), Some("2"));
    assert_eq!(live_pods(&client, "d", "app=web").await.len(), 3);

    // rolling back to the first template brings the first ReplicaSet back as revision 3
    let patch = json!({"spec": {"template": {"metadata": {"annotations": null}}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("rollback");
    wait_rolled_out(&client, "d", "web", "3").await;
    let back = wait_for(60, "revisionHistoryLimit cleanup", || async {
        let rss = replica_sets(&client, "d", "web").await;
        (rss.len() == 2).then_some(rss)
    })
    .await;
    let revived = back
        .iter()
        .find(|rs| rs.uid() == first.uid())
        .expect("first rs revived");
    assert_eq!(annotation(revived, REVISION).as_deref(), Some("3"));
    assert_eq!(
        annotation(revived, "deployment.kubernetes.io/revision-history").as_deref(),
        Some("1")
    );
    assert_eq!(revived.spec.as_ref().and_then(|s| s.replicas), Some(3));

    let scaling = scaling_events(&client, "d").await;
    let first_up = format!("Scaled up replica set web-{hash} from 0 to 3");
    assert!(scaling.contains(&first_up), "{scaling:?}");
    let second_up = format!("Scaled up replica set {} from 0 to 1", second.name_any());
    assert!(scaling.contains(&second_up), "{scaling:?}");
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with(&format!("Scaled down replica set web-{hash} from 3 to 2"))),
        "{scaling:?}"
    );
}

#[tokio::test]
async fn recreate_scaling_pause_and_deadline() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "deployment,replicaset");
    create_namespace(&client, "r").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "r");
    api.create(
        &PostParams::default(),
        &deployment("db", 2, json!({"type": "Recreate"})),
    )
    .await
    .expect("create");
    wait_rolled_out(&client, "r", "db", "1").await;

    // scaling a complete deployment resizes its one ReplicaSet
    let scale = json!({"spec": {"replicas": 4}});
    api.patch("db", &PatchParams::default(), &Patch::Merge(scale))
        .await
        .expect("scale");
    wait_rolled_out(&client, "r", "db", "1").await;
    assert_eq!(live_pods(&client, "r", "app=db").await.len(), 4);

    // Recreate: all old pods go before any new one is made
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}});
    api.patch("db", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("update");
    wait_rolled_out(&client, "r", "db", "2").await;
    let rss = replica_sets(&client, "r", "db").await;
    let sizes: Vec<i32> = rss
        .iter()
        .filter_map(|rs| rs.spec.as_ref()?.replicas)
        .collect();
    assert!(sizes.contains(&0) && sizes.contains(&4), "{sizes:?}");

    // paused: template changes wait; the Progressing condition says so
    let pause =
        json!({"spec": {"paused": true, "template": {"metadata": {"annotations": {"v": "3"}}}}});
    api.patch("db", &PatchParams::default(), &Patch::Merge(pause))
        .await
        .expect("pause");
    let d = wait_for(60, "DeploymentPaused", || async {
        let d = api.get("db").await.ok()?;
        let c = d
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Progressing")?
            .clone();
        (c.reason.as_deref() == Some("DeploymentPaused")).then_some((d, c))
    })
    .await;
    assert_eq!(d.1.status, "Unknown");
    assert_eq!(d.1.message.as_deref(), Some("Deployment is paused"));
    let v3 = |rs: &ReplicaSet| {
        let t = rs.spec.as_ref().and_then(|s| s.template.as_ref());
        t.and_then(|t| t.metadata.as_ref()?.annotations.as_ref()?.get("v").cloned())
            == Some("3".into())
    };
    let rss = replica_sets(&client, "r", "db").await;
    assert!(!rss.iter().any(v3), "no rollout while paused");

    // resumed with a short deadline and pods that never become ready: deadline exceeded
    let resume = json!({"spec": {"paused": false, "progressDeadlineSeconds": 2}});
    api.patch("db", &PatchParams::default(), &Patch::Merge(resume))
        .await
        .expect("resume");
    let c = wait_for(60, "ProgressDeadlineExceeded", || async {
        let d = api.get("db").await.ok()?;
        let c = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (c.reason.as_deref() == Some("ProgressDeadlineExceeded")).then_some(c)
    })
    .await;
    assert_eq!(c.status, "False");
    assert!(
        c.message
            .as_deref()
            .unwrap_or("")
            .ends_with("has timed out progressing.")
    );
}
