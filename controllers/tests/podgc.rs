//! The pod garbage collector against a real apiserver: terminated pods over the
//! threshold and pods bound to a node that does not exist are deleted.

mod workloads_support;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use workloads_support::{Cluster, obj};

#[tokio::test]
async fn terminated_and_orphaned_pods_are_collected() {
    let c = Cluster::start_with("podgc", &["--terminated-pod-gc-threshold=1"]).await;
    c.namespace("gc").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "gc");
    let pp = PostParams::default();
    for name in ["done-1", "done-2"] {
        let p: Pod = obj(json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}));
        pods.create(&pp, &p).await.expect("pod");
        c.set_pod_finished("gc", name, "Succeeded", 0).await;
    }
    let orphan: Pod = obj(json!({"metadata": {"name": "orphan"},
        "spec": {"nodeName": "gone-node", "containers": [{"name": "c", "image": "busybox"}]}}));
    pods.create(&pp, &orphan).await.expect("orphan");
    c.wait_for("oldest terminated pod and the orphan deleted", || async {
        let first = pods.get_opt("done-1").await.ok()?;
        let orphan = pods.get_opt("orphan").await.ok()?;
        (first.is_none() && orphan.is_none()).then_some(())
    })
    .await;
    assert!(
        pods.get_opt("done-2").await.expect("get").is_some(),
        "within the threshold"
    );
}
