//! The statefulset controller against a real apiserver, the test playing the kubelet:
//! ordered creation waiting for readiness, claims from templates, revisions, a
//! partitioned rolling update, and Parallel scaling.

mod workloads_support;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use workloads_support::{Cluster, obj};

fn set(name: &str, policy: &str, replicas: i32) -> StatefulSet {
    obj(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}]},
    }))
}

fn revision(p: &Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn ordered_creation_and_partitioned_rolling_update() {
    let c = Cluster::start("statefulset").await;
    c.namespace("sts").await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "sts");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "sts");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "sts");
    sets.create(&PostParams::default(), &set("web", "OrderedReady", 3))
        .await
        .expect("statefulset");
    for ord in 0..3 {
        let name = format!("web-{ord}");
        let pod = c
            .wait_for(&name, || async { pods.get_opt(&name).await.ok().flatten() })
            .await;
        let next = format!("web-{}", ord + 1);
        assert!(
            pods.get_opt(&next).await.expect("get").is_none(),
            "{next} must wait for {name} to be ready"
        );
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some(name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("web"));
        let claim = format!("www-web-{ord}");
        assert!(
            claims.get_opt(&claim).await.expect("claim").is_some(),
            "{claim}"
        );
        c.set_pod_running("sts", &name, &format!("10.9.0.{}", ord + 1), true)
            .await;
    }
    let s = c
        .wait_for("3 ready replicas", || async {
            let s = sets.get("web").await.ok()?;
            (s.status.as_ref()?.ready_replicas == Some(3)).then_some(s)
        })
        .await;
    let status = s.status.clone().unwrap_or_default();
    let rev1 = status.update_revision.clone().expect("updateRevision");
    assert_eq!(status.current_revision.as_deref(), Some(rev1.as_str()));
    assert_eq!((status.replicas, status.current_replicas), (3, Some(3)));
    let revs: Api<ControllerRevision> = Api::namespaced(c.client.clone(), "sts");
    let cr = revs.get(&rev1).await.expect("controller revision");
    assert_eq!(cr.revision, 1);

    // a new template with partition 2: only web-2 moves to the new revision
    let patch = json!({"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        "template": {"metadata": {"labels": {"app": "web", "v": "2"}}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("update template");
    let updated = c
        .wait_for("web-2 recreated at the new revision", || async {
            let p = pods.get_opt("web-2").await.ok().flatten()?;
            (revision(&p) != rev1 && p.metadata.deletion_timestamp.is_none()).then_some(p)
        })
        .await;
    c.set_pod_running("sts", "web-2", "10.9.0.3", true).await;
    let s = c
        .wait_for("status of the partitioned update", || async {
            let s = sets.get("web").await.ok()?;
            let st = s.status.clone()?;
            (st.updated_replicas == Some(1) && st.ready_replicas == Some(3)).then_some(st)
        })
        .await;
    assert_eq!(s.update_revision, Some(revision(&updated)));
    assert_eq!(s.current_revision.as_deref(), Some(rev1.as_str()));
    assert_eq!(s.current_replicas, Some(2));
    for name in ["web-0", "web-1"] {
        let p = pods.get(name).await.expect("pod");
        assert_eq!(
            revision(&p),
            rev1,
            "{name} below the partition keeps its revision"
        );
    }
}

#[tokio::test]
async fn parallel_creation_and_scale_down() {
    let c = Cluster::start("statefulset").await;
    c.namespace("sts").await;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "sts");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "sts");
    let mut s = set("par", "Parallel", 3);
    if let Some(spec) = s.spec.as_mut() {
        spec.ordinals = Some(obj(json!({"start": 5})));
    }
    sets.create(&PostParams::default(), &s)
        .await
        .expect("statefulset");
    // all at once, none of them ready
    c.wait_for("par-5..7", || async {
        let mut ok = true;
        for n in ["par-5", "par-6", "par-7"] {
            ok &= pods.get_opt(n).await.ok().flatten().is_some();
        }
        ok.then_some(())
    })
    .await;
    assert!(pods.get_opt("par-0").await.expect("get").is_none());
    let scale = json!({"spec": {"replicas": 1}});
    sets.patch("par", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale down");
    c.wait_for("par-6 and par-7 removed", || async {
        let mut gone = true;
        for n in ["par-6", "par-7"] {
            let p = pods.get_opt(n).await.ok()?;
            gone &= p.is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        }
        gone.then_some(())
    })
    .await;
    assert!(pods.get_opt("par-5").await.expect("get").is_some());
}
