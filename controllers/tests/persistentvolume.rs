//! The PersistentVolume binder and the storage protection controllers against a real
//! apiserver: claims bind to the smallest fitting volume (or the one they name), claims
//! without a match say why, a released volume follows its reclaim policy, and a claim
//! in use by a pod is not deleted until the pod is gone.

mod kcm;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use kcm::{Kcm, create_namespace, wait_for, wait_for_event, wait_gone};

fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("object")
}

fn volume(name: &str, size: &str, extra: Value) -> PersistentVolume {
    let mut v = json!({"metadata": {"name": name}, "spec": {
        "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "hostPath": {"path": format!("/tmp/{name}")}}});
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, x) in extra {
            spec.insert(k.clone(), x.clone());
        }
    }
    obj(v)
}

fn claim(name: &str, size: &str, extra: Value) -> PersistentVolumeClaim {
    let mut v = json!({"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
        "storageClassName": ""}});
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, x) in extra {
            spec.insert(k.clone(), x.clone());
        }
    }
    obj(v)
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn volume_phase(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn bound_claim(api: &Api<PersistentVolumeClaim>, name: &str) -> PersistentVolumeClaim {
    wait_for(60, &format!("claim {name} bound"), || async {
        api.get(name)
            .await
            .ok()
            .filter(|c| claim_phase(c) == "Bound")
    })
    .await
}

/// Waits until every volume is Available (new volumes are, once the binder saw them).
async fn all_available(pvs: &Api<PersistentVolume>) {
    wait_for(60, "volumes available", || async {
        let all = pvs.list(&ListParams::default()).await.ok()?;
        all.items
            .iter()
            .all(|v| volume_phase(v) == "Available")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn claims_bind_to_the_smallest_fitting_volume() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(
        &server,
        "persistentvolume-binder,pvc-protection,pv-protection",
    );
    create_namespace(&client, "pv").await;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "pv");
    let pp = PostParams::default();
    for (name, size) in [("big", "10Gi"), ("small", "1Gi"), ("fits", "2Gi")] {
        pvs.create(&pp, &volume(name, size, json!({})))
            .await
            .expect("pv");
    }
    // new volumes become Available first
    all_available(&pvs).await;
    pvcs.create(&pp, &claim("data", "1500Mi", json!({})))
        .await
        .expect("claim");
    let c = bound_claim(&pvcs, "data").await;
    assert_eq!(
        c.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some("fits")
    );
    let status = c.status.clone().expect("status");
    assert_eq!(
        status
            .capacity
            .and_then(|c| c.get("storage").map(|q| q.0.clone())),
        Some("2Gi".to_string())
    );
    let annotations = c.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("pv.kubernetes.io/bind-completed")
            .map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        annotations
            .get("pv.kubernetes.io/bound-by-controller")
            .map(String::as_str),
        Some("yes")
    );
    let v = wait_for(60, "volume fits bound", || async {
        pvs.get("fits")
            .await
            .ok()
            .filter(|v| volume_phase(v) == "Bound")
    })
    .await;
    let r = v.spec.and_then(|s| s.claim_ref).expect("claimRef");
    assert_eq!(
        (r.namespace.as_deref(), r.name.as_deref(), r.uid),
        (Some("pv"), Some("data"), c.metadata.uid.clone())
    );
    // the protection controllers keep finalizers on both
    wait_for(60, "protection finalizers", || async {
        let c = pvcs.get("data").await.ok()?;
        let v = pvs.get("fits").await.ok()?;
        let has = |f: &Option<Vec<String>>, x: &str| f.iter().flatten().any(|y| y == x);
        (has(&c.metadata.finalizers, "kubernetes.io/pvc-protection")
            && has(&v.metadata.finalizers, "kubernetes.io/pv-protection"))
        .then_some(())
    })
    .await;

    // a claim naming a volume gets it, or is told why not
    pvcs.create(&pp, &claim("named", "1Gi", json!({"volumeName": "big"})))
        .await
        .expect("claim");
    let c = bound_claim(&pvcs, "named").await;
    assert_eq!(
        c.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some("big")
    );
    pvcs.create(&pp, &claim("greedy", "5Gi", json!({"volumeName": "small"})))
        .await
        .expect("claim");
    let e = wait_for_event(&client, "pv", "greedy", "VolumeMismatch").await;
    assert_eq!(
        e.message.as_deref(),
        Some("Cannot bind to requested volume \"small\": requested PV is too small")
    );

    // nothing fits: upstream's reasons
    pvcs.create(&pp, &claim("huge", "1Ti", json!({})))
        .await
        .expect("claim");
    let e = wait_for_event(&client, "pv", "huge", "FailedBinding").await;
    assert_eq!(
        e.message.as_deref(),
        Some("no persistent volumes available for this claim and no storage class is set")
    );
    assert_eq!(
        claim_phase(&pvcs.get("huge").await.expect("huge")),
        "Pending"
    );
    let classes: Api<StorageClass> = Api::all(client.clone());
    classes
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})),
        )
        .await
        .expect("class");
    classes
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "csi"}, "provisioner": "example.com/csi"})),
        )
        .await
        .expect("class");
    pvcs.create(
        &pp,
        &claim("later", "1Gi", json!({"storageClassName": "local"})),
    )
    .await
    .expect("claim");
    let e = wait_for_event(&client, "pv", "later", "WaitForFirstConsumer").await;
    assert_eq!(
        e.message.as_deref(),
        Some("waiting for first consumer to be created before binding")
    );
    pvcs.create(
        &pp,
        &claim("dynamic", "1Gi", json!({"storageClassName": "csi"})),
    )
    .await
    .expect("claim");
    let e = wait_for_event(&client, "pv", "dynamic", "ExternalProvisioning").await;
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Waiting for a volume to be created either by the external provisioner 'example.com/csi' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        )
    );
    let dynamic = pvcs.get("dynamic").await.expect("dynamic");
    assert_eq!(
        dynamic
            .metadata
            .annotations
            .unwrap_or_default()
            .get("volume.kubernetes.io/storage-provisioner")
            .map(String::as_str),
        Some("example.com/csi")
    );
    // a volume appearing later binds a waiting claim without waiting for a resync
    pvs.create(&pp, &volume("late", "2Ti", json!({})))
        .await
        .expect("pv");
    bound_claim(&pvcs, "huge").await;
}

#[tokio::test]
async fn released_volumes_and_claims_in_use() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(
        &server,
        "persistentvolume-binder,pvc-protection,pv-protection",
    );
    create_namespace(&client, "rel").await;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "rel");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "rel");
    let pp = PostParams::default();
    pvs.create(&pp, &volume("kept", "1Gi", json!({})))
        .await
        .expect("pv");
    pvs.create(
        &pp,
        &volume(
            "dropped",
            "5Gi",
            json!({"persistentVolumeReclaimPolicy": "Delete"}),
        ),
    )
    .await
    .expect("pv");
    all_available(&pvs).await;
    pvcs.create(&pp, &claim("a", "1Gi", json!({})))
        .await
        .expect("claim");
    pvcs.create(&pp, &claim("b", "5Gi", json!({})))
        .await
        .expect("claim");
    bound_claim(&pvcs, "a").await;
    bound_claim(&pvcs, "b").await;

    // a claim a scheduled pod uses waits for the pod
    pods.create(
        &pp,
        &obj(
            json!({"metadata": {"name": "user"}, "spec": {"nodeName": "n1",
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "a"}}]}}),
        ),
    )
    .await
    .expect("pod");
    wait_for(60, "claim a protected", || async {
        let c = pvcs.get("a").await.ok()?;
        c.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "kubernetes.io/pvc-protection")
            .then_some(())
    })
    .await;
    pvcs.delete("a", &DeleteParams::default())
        .await
        .expect("delete claim");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let held = pvcs.get("a").await.expect("still there while the pod runs");
    assert!(held.metadata.deletion_timestamp.is_some());
    pods.delete("user", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    wait_gone(&pvcs, "a", "claim a gone").await;

    // Retain keeps the volume, Released; Delete without a deleter plugin fails it
    wait_for(60, "kept released", || async {
        pvs.get("kept")
            .await
            .ok()
            .filter(|v| volume_phase(v) == "Released")
    })
    .await;
    pvcs.delete("b", &DeleteParams::default())
        .await
        .expect("delete claim");
    let failed = wait_for(60, "dropped failed", || async {
        pvs.get("dropped")
            .await
            .ok()
            .filter(|v| volume_phase(v) == "Failed")
    })
    .await;
    assert_eq!(
        failed.status.and_then(|s| s.message).as_deref(),
        Some(
            "error getting deleter volume plugin for volume \"dropped\": no deletable volume plugin matched"
        )
    );
    // a released volume that is deleted goes at once: it is no longer Bound
    pvs.delete("kept", &DeleteParams::default())
        .await
        .expect("delete pv");
    wait_gone(&pvs, "kept", "kept gone").await;
}
