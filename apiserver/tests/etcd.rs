//! Two API servers on one real etcd: a write on one is read and watched on the other at
//! the same resourceVersion, and Service IPs and node ports stay unique across them.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use testenv as common;

fn servers(etcd: &common::Etcd) -> (common::TestServer, common::TestServer) {
    let flag = format!("--etcd-servers={}", etcd.endpoint);
    (
        common::TestServer::start_with(&[&flag]),
        common::TestServer::start_with(&[&flag]),
    )
}

fn svc(name: &str, ty: &str, ip: Option<&str>) -> Service {
    let mut spec =
        serde_json::json!({"type": ty, "ports": [{"port": 80}], "selector": {"app": name}});
    if let Some(ip) = ip {
        spec["clusterIP"] = serde_json::json!(ip);
    }
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": spec}))
        .expect("service")
}

/// Servers started at the same moment on one etcd write the same bootstrap objects
/// (namespaces, RBAC policy, the authentication ConfigMap) at once; each reconciles
/// again after a conflict instead of exiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_started_together_all_come_up() {
    let etcd = common::Etcd::start();
    let flag = format!("--etcd-servers={}", etcd.endpoint);
    let servers: Vec<common::TestServer> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..3)
            .map(|_| s.spawn(|| common::TestServer::start_with(&[&flag])))
            .collect();
        starting
            .into_iter()
            .map(|t| t.join().expect("server start"))
            .collect()
    });
    for s in &servers {
        let cms: Api<ConfigMap> = Api::namespaced(s.client().await, "kube-system");
        let cm = cms
            .get("extension-apiserver-authentication")
            .await
            .expect("authentication configmap");
        assert!(cm.data.is_some_and(|d| d.contains_key("client-ca-file")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_server_is_read_and_watched_on_the_other() {
    let etcd = common::Etcd::start();
    let (a, b) = servers(&etcd);
    let on_a: Api<ConfigMap> = Api::namespaced(a.client().await, "default");
    let on_b: Api<ConfigMap> = Api::namespaced(b.client().await, "default");
    let list = on_b.list(&Default::default()).await.expect("list on b");
    let from = list.metadata.resource_version.expect("rv");
    let mut watch = on_b
        .watch(&WatchParams::default().timeout(30), &from)
        .await
        .expect("watch on b")
        .boxed();
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "shared"}, "data": {"k": "v"}
    }))
    .expect("cm");
    let made = on_a
        .create(&PostParams::default(), &cm)
        .await
        .expect("create on a");
    // a consistent read on b sees it at once, at the same resourceVersion
    let read = on_b.get("shared").await.expect("get on b");
    assert_eq!(
        read.metadata.resource_version,
        made.metadata.resource_version
    );
    loop {
        match watch.try_next().await.expect("watch event") {
            Some(WatchEvent::Added(o)) if o.metadata.name.as_deref() == Some("shared") => {
                assert_eq!(o.metadata.resource_version, made.metadata.resource_version);
                break;
            }
            Some(_) => continue,
            None => panic!("b's watch ended without a's write"),
        }
    }
    // b updating from what it read wins; a's stale copy then conflicts
    let mut newer = read.clone();
    newer.data = Some([("k".to_string(), "v2".to_string())].into());
    on_b.replace("shared", &PostParams::default(), &newer)
        .await
        .expect("update on b");
    let stale = on_a.replace("shared", &PostParams::default(), &made).await;
    assert!(matches!(stale, Err(kube::Error::Api(e)) if e.code == 409));
    assert_eq!(
        on_a.get("shared")
            .await
            .expect("get on a")
            .data
            .and_then(|d| d.get("k").cloned()),
        Some("v2".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_ips_and_node_ports_stay_unique_across_servers() {
    let etcd = common::Etcd::start();
    let (a, b) = servers(&etcd);
    let apis: Vec<Api<Service>> = vec![
        Api::namespaced(a.client().await, "default"),
        Api::namespaced(b.client().await, "default"),
    ];
    // both servers allocate at the same time from pools that start alike
    let mut tasks = Vec::new();
    for i in 0..40 {
        let api = apis[i % 2].clone();
        let ty = if i % 4 < 2 { "ClusterIP" } else { "NodePort" };
        tasks.push(tokio::spawn(async move {
            api.create(&PostParams::default(), &svc(&format!("s{i}"), ty, None))
                .await
        }));
    }
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for t in tasks {
        let s = t.await.expect("task").expect("create service");
        let spec = s.spec.expect("spec");
        let ip = spec.cluster_ip.expect("clusterIP");
        assert!(ips.insert(ip.clone()), "{ip} was handed out twice");
        for p in spec.ports.unwrap_or_default() {
            if let Some(np) = p.node_port {
                assert!(ports.insert(np), "node port {np} was handed out twice");
            }
        }
    }
    assert_eq!(ports.len(), 20);
    // asking for an IP another server holds fails as upstream words it
    let taken = apis[0]
        .get("s1")
        .await
        .expect("s1")
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("ip");
    let err = apis[0]
        .create(
            &PostParams::default(),
            &svc("again", "ClusterIP", Some(&taken)),
        )
        .await
        .expect_err("a taken IP");
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 422 && e.message.contains("provided IP is already allocated")),
        "{err:?}"
    );
    // once deleted on one server, the other can hand the IP out again
    apis[1]
        .delete("s1", &DeleteParams::default())
        .await
        .expect("delete on b");
    apis[0]
        .create(
            &PostParams::default(),
            &svc("again", "ClusterIP", Some(&taken)),
        )
        .await
        .expect("the freed IP");
}

/// Node ports a Service *update* allocates (a type change to NodePort) are claimed too:
/// concurrent updates on both servers never share a port, and a port an update gives
/// back (NodePort -> ClusterIP) can be taken on the other server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_allocated_by_updates_stay_unique_across_servers() {
    let etcd = common::Etcd::start();
    let (a, b) = servers(&etcd);
    let apis: Vec<Api<Service>> = vec![
        Api::namespaced(a.client().await, "default"),
        Api::namespaced(b.client().await, "default"),
    ];
    for i in 0..24 {
        apis[i % 2]
            .create(
                &PostParams::default(),
                &svc(&format!("u{i}"), "ClusterIP", None),
            )
            .await
            .expect("create service");
    }
    let mut tasks = Vec::new();
    for i in 0..24 {
        let api = apis[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let patch = serde_json::json!({"spec": {"type": "NodePort"}});
            api.patch(
                &format!("u{i}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        }));
    }
    let mut ports = HashSet::new();
    for t in tasks {
        let s = t.await.expect("task").expect("update to NodePort");
        for p in s.spec.and_then(|s| s.ports).unwrap_or_default() {
            let np = p.node_port.expect("a node port after the type change");
            assert!(ports.insert(np), "node port {np} was handed out twice");
        }
    }
    assert_eq!(ports.len(), 24);
    // the port an update gives back is free again on the other server
    let port = apis[0]
        .get("u0")
        .await
        .expect("u0")
        .spec
        .and_then(|s| s.ports)
        .and_then(|p| p.first().and_then(|p| p.node_port))
        .expect("u0's node port");
    let mut wanted = svc("wants-port", "NodePort", None);
    if let Some(p) = wanted.spec.as_mut().and_then(|s| s.ports.as_mut()) {
        p[0].node_port = Some(port);
    }
    let err = apis[1]
        .create(&PostParams::default(), &wanted)
        .await
        .expect_err("a port the other server holds");
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 422 && e.message.contains("provided port is already allocated")),
        "{err:?}"
    );
    let back = serde_json::json!({"spec": {"type": "ClusterIP"}});
    apis[0]
        .patch("u0", &PatchParams::default(), &Patch::Merge(&back))
        .await
        .expect("back to ClusterIP");
    // the other server frees it when it sees the claim go (its claims watch)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match apis[1].create(&PostParams::default(), &wanted).await {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("the given-back port {port} stayed taken: {e:?}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// A streaming list (`sendInitialEvents`) on one server right after a write on the other
/// sees the write and ends with the initial-events-end bookmark at or after it: the
/// consistent read from the watch cache that etcd 3.4 (no RequestWatchProgress) makes
/// hard, and upstream fails there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_are_consistent_across_servers() {
    let etcd = common::Etcd::start();
    let (a, b) = servers(&etcd);
    let on_a: Api<ConfigMap> = Api::namespaced(a.client().await, "default");
    let on_b: Api<ConfigMap> = Api::namespaced(b.client().await, "default");
    for i in 0..5 {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("s{i}")}, "data": {"k": "v"}
        }))
        .expect("cm");
        let made = on_a
            .create(&PostParams::default(), &cm)
            .await
            .expect("create on a");
        let made_rv: u64 = made
            .metadata
            .resource_version
            .as_deref()
            .and_then(|r| r.parse().ok())
            .expect("rv");
        let mut stream = on_b
            .watch(
                &WatchParams {
                    send_initial_events: true,
                    bookmarks: true,
                    timeout: Some(10),
                    ..Default::default()
                },
                "",
            )
            .await
            .expect("streaming list on b")
            .boxed();
        let mut names = HashSet::new();
        loop {
            match stream.try_next().await.expect("event") {
                Some(WatchEvent::Added(o)) => {
                    names.insert(o.metadata.name.unwrap_or_default());
                }
                Some(WatchEvent::Bookmark(bm)) => {
                    assert_eq!(
                        bm.metadata
                            .annotations
                            .get("k8s.io/initial-events-end")
                            .map(String::as_str),
                        Some("true")
                    );
                    let rv: u64 = bm.metadata.resource_version.parse().expect("bookmark rv");
                    assert!(
                        rv >= made_rv,
                        "the initial state at {rv} is older than a's write at {made_rv}"
                    );
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            names.contains(&format!("s{i}")),
            "b's initial state misses a's write"
        );
    }
}
