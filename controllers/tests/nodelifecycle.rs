//! The node-lifecycle and taint-eviction controllers against a real apiserver. No kubelet
//! runs: the tests create Nodes and their Leases through the API and play the kubelet's
//! part (renewing a Lease, posting Ready) or stop doing so.

mod kcm;

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace, make_pods_ready};

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Short periods so that nodes go silent within seconds.
const FLAGS: &[&str] = &[
    "--leader-elect=false",
    "--controllers=nodelifecycle,taint-eviction-controller",
    "--node-monitor-grace-period=3s",
    "--node-monitor-period=1s",
    "--node-startup-grace-period=5s",
];

/// A generous liveness bound: a hang, not slowness, is the failure.
const PATIENCE: Duration = Duration::from_secs(90);

async fn wait<T, F, Fut>(kcm: &Kcm, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}\n--- controller manager log ---\n{}",
                kcm.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Patches a node (or its status), retrying on conflicts with the controllers' writes.
async fn patch_node(client: &kube::Client, name: &str, status: bool, patch: serde_json::Value) {
    let nodes: Api<Node> = Api::all(client.clone());
    let pp = PatchParams::default();
    for _ in 0..20 {
        let result = if status {
            nodes.patch_status(name, &pp, &Patch::Merge(&patch)).await
        } else {
            nodes.patch(name, &pp, &Patch::Merge(&patch)).await
        };
        match result {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("patch node {name}: {e}"),
        }
    }
    panic!("patch node {name}: too many conflicts");
}

/// Plays the kubelet: the node reports Ready now (and whatever else is given).
async fn post_status(client: &kube::Client, name: &str, extra: &[serde_json::Value]) {
    let mut conditions = vec![
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status", "lastHeartbeatTime": now(),
        "lastTransitionTime": now()}),
    ];
    conditions.extend_from_slice(extra);
    patch_node(
        client,
        name,
        true,
        json!({"status": {"conditions": conditions}}),
    )
    .await;
}

/// Registers a Ready node and its Lease, as a kubelet does.
async fn register_node(client: &kube::Client, name: &str) {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name,
        "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}}}))
    .expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    post_status(client, name, &[]).await;
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40},
    }))
    .expect("lease");
    Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
        .create(&PostParams::default(), &lease)
        .await
        .expect("create lease");
    renew(client, name).await;
}

async fn renew(client: &kube::Client, name: &str) {
    let renew = serde_json::to_value(MicroTime(Timestamp::now())).expect("time");
    let _ = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"renewTime": renew}})),
        )
        .await;
}

/// Plays a live kubelet's Lease renewals until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(client: &kube::Client, name: &str) -> Self {
        let (client, name) = (client.clone(), name.to_string());
        Heartbeat(tokio::spawn(async move {
            loop {
                renew(&client, &name).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn bound_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    node: &str,
    tolerations: serde_json::Value,
) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "nl"}},
        "spec": {"nodeName": node, "tolerations": tolerations,
            "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod");
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

fn taints(n: &Node) -> Vec<Taint> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

fn has_taint(n: &Node, key: &str, effect: &str) -> bool {
    taints(n).iter().any(|t| t.key == key && t.effect == effect)
}

fn condition<'a>(
    n: &'a Node,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::NodeCondition> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn pod_condition<'a>(
    p: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The pod is being deleted (or gone): no kubelet confirms deletions here.
async fn evicted(pods: &Api<Pod>, name: &str) -> Option<Option<Pod>> {
    match pods.get_opt(name).await.ok()? {
        None => Some(None),
        Some(p) if p.metadata.deletion_timestamp.is_some() => Some(Some(p)),
        Some(_) => None,
    }
}

async fn is_evicting(pods: &Api<Pod>, name: &str) -> bool {
    pods.get_opt(name)
        .await
        .expect("get pod")
        .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
}

async fn has_event(
    client: &kube::Client,
    ns: &str,
    object: &str,
    reason: &str,
    message: &str,
) -> bool {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items.iter().any(|e| {
                e.involved_object.name.as_deref() == Some(object)
                    && e.reason.as_deref() == Some(reason)
                    && e.message.as_deref().is_some_and(|m| m.contains(message))
            })
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn a_silent_node_goes_unknown_and_its_pods_are_evicted_as_they_tolerate() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    create_namespace(&client, "nl").await;
    // two nodes, so that one going silent is not a cluster-wide disruption
    register_node(&client, "healthy").await;
    let _alive = Heartbeat::start(&client, "healthy");
    register_node(&client, "lost").await;
    let unreachable_for = |secs: Option<i64>| json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs}]);
    bound_pod(&client, "nl", "brief", "lost", unreachable_for(Some(2))).await;
    bound_pod(&client, "nl", "forever", "lost", unreachable_for(None)).await;
    // no toleration of its own: admission gives it 300s for unreachable nodes
    bound_pod(&client, "nl", "default", "lost", json!([])).await;
    make_pods_ready(&client, "nl", "app=nl").await;
    let kcm = Kcm::start(&server, "kcm", FLAGS);

    let nodes: Api<Node> = Api::all(client.clone());
    let lost = wait(
        &kcm,
        "the silent node's conditions to go Unknown",
        || async {
            let n = nodes.get("lost").await.ok()?;
            (condition(&n, "Ready")?.status == "Unknown").then_some(n)
        },
    )
    .await;
    let ready = condition(&lost, "Ready").expect("Ready");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    for never_posted in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = condition(&lost, never_posted).expect("condition");
        assert_eq!(c.status, "Unknown");
        assert_eq!(c.reason.as_deref(), Some("NodeStatusNeverUpdated"));
    }

    let lost = wait(&kcm, "the unreachable taints", || async {
        let n = nodes.get("lost").await.ok()?;
        (has_taint(&n, UNREACHABLE, "NoExecute") && has_taint(&n, UNREACHABLE, "NoSchedule"))
            .then_some(n)
    })
    .await;
    let tainted_at = taints(&lost)
        .iter()
        .find(|t| t.key == UNREACHABLE && t.effect == "NoExecute")
        .and_then(|t| t.time_added.clone())
        .expect("timeAdded")
        .0;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "nl");
    wait(
        &kcm,
        "pods on the silent node to be marked not Ready",
        || async {
            let p = pods.get("default").await.ok()?;
            (pod_condition(&p, "Ready")?.status == "False").then_some(())
        },
    )
    .await;
    let brief = wait(&kcm, "the pod tolerating 2s to be evicted", || {
        evicted(&pods, "brief")
    })
    .await;
    if let Some(brief) = brief {
        let deleted_at = brief
            .metadata
            .deletion_timestamp
            .clone()
            .expect("deleting")
            .0;
        // timestamps have whole seconds: allow one second either way
        assert!(
            deleted_at >= tainted_at + SignedDuration::from_secs(1),
            "evicted at {deleted_at}, before its 2s toleration of the taint added at {tainted_at} ran out"
        );
        let target = pod_condition(&brief, "DisruptionTarget").expect("DisruptionTarget");
        assert_eq!(target.status, "True");
        assert_eq!(target.reason.as_deref(), Some("DeletionByTaintManager"));
    }
    wait(&kcm, "the TaintManagerEviction event", || async {
        has_event(
            &client,
            "nl",
            "brief",
            "TaintManagerEviction",
            "Marking for deletion Pod nl/brief",
        )
        .await
        .then_some(())
    })
    .await;
    wait(&kcm, "the NodeNotReady event", || async {
        has_event(
            &client,
            "default",
            "lost",
            "NodeNotReady",
            "Node lost status is now: NodeNotReady",
        )
        .await
        .then_some(())
    })
    .await;
    assert!(!is_evicting(&pods, "forever").await, "tolerates forever");
    assert!(!is_evicting(&pods, "default").await, "tolerates for 300s");
    let healthy = nodes.get("healthy").await.expect("node");
    assert!(!has_taint(&healthy, UNREACHABLE, "NoExecute"));
    assert_eq!(
        condition(&healthy, "Ready").map(|c| c.status.as_str()),
        Some("True")
    );

    // the kubelet comes back: the taints go away
    post_status(&client, "lost", &[]).await;
    let _back = Heartbeat::start(&client, "lost");
    wait(
        &kcm,
        "the returning node to lose its unreachable taints",
        || async {
            let n = nodes.get("lost").await.ok()?;
            (!has_taint(&n, UNREACHABLE, "NoExecute") && !has_taint(&n, UNREACHABLE, "NoSchedule"))
                .then_some(())
        },
    )
    .await;
    assert!(!is_evicting(&pods, "forever").await);
}

#[tokio::test]
async fn no_execute_taints_evict_pods_that_do_not_tolerate_them() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    create_namespace(&client, "te").await;
    register_node(&client, "worker").await;
    let _alive = Heartbeat::start(&client, "worker");
    let tolerate = |secs: Option<i64>| {
        json!([{"key": "example.com/maintenance", "operator": "Equal", "value": "true",
            "effect": "NoExecute", "tolerationSeconds": secs}])
    };
    bound_pod(&client, "te", "plain", "worker", json!([])).await;
    bound_pod(&client, "te", "brief", "worker", tolerate(Some(2))).await;
    bound_pod(&client, "te", "patient", "worker", tolerate(Some(600))).await;
    bound_pod(&client, "te", "forever", "worker", tolerate(None)).await;
    let kcm = Kcm::start(&server, "kcm", FLAGS);
    let taint = json!({"spec": {"taints": [
        {"key": "example.com/maintenance", "value": "true", "effect": "NoExecute"}]}});
    patch_node(&client, "worker", false, taint).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "te");
    wait(&kcm, "the pod without a toleration to be evicted", || {
        evicted(&pods, "plain")
    })
    .await;
    wait(&kcm, "the pod tolerating 2s to be evicted", || {
        evicted(&pods, "brief")
    })
    .await;
    assert!(!is_evicting(&pods, "patient").await);

    // the taint goes away: the pending eviction is cancelled
    patch_node(&client, "worker", false, json!({"spec": {"taints": null}})).await;
    wait(
        &kcm,
        "the eviction of the patient pod to be cancelled",
        || async {
            has_event(
                &client,
                "te",
                "patient",
                "TaintManagerEviction",
                "Cancelling deletion of Pod te/patient",
            )
            .await
            .then_some(())
        },
    )
    .await;
    assert!(!is_evicting(&pods, "patient").await);
    assert!(!is_evicting(&pods, "forever").await);
}

#[tokio::test]
async fn no_schedule_taints_follow_conditions_and_unschedulable() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    register_node(&client, "worker").await;
    let _alive = Heartbeat::start(&client, "worker");
    let kcm = Kcm::start(&server, "kcm", FLAGS);
    let nodes: Api<Node> = Api::all(client.clone());

    let pressure = json!({"type": "MemoryPressure", "status": "True", "lastHeartbeatTime": now(),
        "lastTransitionTime": now()});
    post_status(&client, "worker", &[pressure]).await;
    patch_node(
        &client,
        "worker",
        false,
        json!({"spec": {"unschedulable": true}}),
    )
    .await;
    wait(&kcm, "memory-pressure and unschedulable taints", || async {
        let n = nodes.get("worker").await.ok()?;
        (has_taint(&n, "node.kubernetes.io/memory-pressure", "NoSchedule")
            && has_taint(&n, "node.kubernetes.io/unschedulable", "NoSchedule"))
        .then_some(())
    })
    .await;
    let n = nodes.get("worker").await.expect("node");
    let labels = n.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("beta.kubernetes.io/os").map(String::as_str),
        Some("linux")
    );

    post_status(&client, "worker", &[]).await;
    patch_node(
        &client,
        "worker",
        false,
        json!({"spec": {"unschedulable": false}}),
    )
    .await;
    wait(&kcm, "the taints to be removed", || async {
        let n = nodes.get("worker").await.ok()?;
        taints(&n).is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn when_every_node_is_silent_nothing_is_evicted() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    register_node(&client, "only").await;
    let kcm = Kcm::start(&server, "kcm", FLAGS);
    let nodes: Api<Node> = Api::all(client.clone());
    wait(&kcm, "the NoSchedule unreachable taint", || async {
        let n = nodes.get("only").await.ok()?;
        has_taint(&n, UNREACHABLE, "NoSchedule").then_some(())
    })
    .await;
    wait(&kcm, "master disruption mode", || async {
        kcm.log()
            .contains("entering master disruption mode")
            .then_some(())
    })
    .await;
    // a few more passes: the node stays untainted NoExecute
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = nodes.get("only").await.expect("node");
    assert!(
        !has_taint(&n, UNREACHABLE, "NoExecute"),
        "no evictions while every zone is down"
    );
}
