//! The daemonset controller against a real apiserver with Node objects made through
//! the API: one pod per eligible node, tainted nodes skipped, pods pinned by node
//! affinity, nodes joining, a nodeSelector change removing misscheduled pods.

mod workloads_support;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use workloads_support::{Cluster, obj};

async fn node(c: &Cluster, name: &str, labels: serde_json::Value, taints: serde_json::Value) {
    let n: Node =
        obj(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}));
    Api::<Node>::all(c.client.clone())
        .create(&PostParams::default(), &n)
        .await
        .expect("node");
}

fn pinned_node(p: &Pod) -> Option<String> {
    let terms = p
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .clone();
    let f = terms.first()?.match_fields.clone()?;
    let r = f.first()?;
    (r.key == "metadata.name" && r.operator == "In").then(|| r.values.clone()?.first().cloned())?
}

async fn pinned(pods: &Api<Pod>) -> Vec<String> {
    let l = pods.list(&ListParams::default().labels("app=agent")).await;
    let mut out: Vec<String> = l
        .map(|l| l.items)
        .unwrap_or_default()
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(pinned_node)
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn one_pod_per_eligible_node() {
    let c = Cluster::start("daemonset").await;
    c.namespace("ds").await;
    node(&c, "n1", json!({"disk": "ssd"}), json!([])).await;
    node(
        &c,
        "n2",
        json!({}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )
    .await;
    node(
        &c,
        "n3",
        json!({}),
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
    )
    .await;
    let sets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "ds");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "ds");
    let ds: DaemonSet = obj(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }));
    sets.create(&PostParams::default(), &ds)
        .await
        .expect("daemonset");
    c.wait_for(
        "pods on n1 and n3 (not the NoSchedule-tainted n2)",
        || async { (pinned(&pods).await == ["n1", "n3"]).then_some(()) },
    )
    .await;
    let list = pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .expect("pods");
    let p = &list.items[0];
    let spec = p.spec.clone().unwrap_or_default();
    assert!(spec.node_name.is_none(), "pinned by affinity, not nodeName");
    let tolerations = spec.tolerations.unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unreachable"))
    );
    let labels = p.metadata.labels.clone().unwrap_or_default();
    assert!(labels.contains_key("controller-revision-hash"));
    let st = c
        .wait_for("status", || async {
            let s = sets.get("agent").await.ok()?.status?;
            (s.desired_number_scheduled == 2 && s.current_number_scheduled == 2).then_some(s)
        })
        .await;
    assert_eq!(st.number_misscheduled, 0);

    // a new node gets a pod
    node(&c, "n4", json!({"disk": "ssd"}), json!([])).await;
    c.wait_for("pod on n4", || async {
        (pinned(&pods).await == ["n1", "n3", "n4"]).then_some(())
    })
    .await;

    // a nodeSelector narrows the set: pods on other nodes go
    let patch = json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("nodeSelector");
    c.wait_for("pods only on ssd nodes", || async {
        (pinned(&pods).await == ["n1", "n4"]).then_some(())
    })
    .await;
}
