//! Integration tests: a real kube-apiserver process driven with the `kube` client —
//! CRUD, optimistic concurrency, list selectors and pagination, watch, patch types and
//! server-side apply, and the error statuses clients rely on.

use testenv as common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::Api;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .expect("configmap")
}

fn status_code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_and_optimistic_concurrency() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms
        .create(&PostParams::default(), &cm("a", json!({"app": "x"})))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(
        status_code(
            cms.create(&PostParams::default(), &cm("a", json!({})))
                .await
                .expect_err("dup")
        ),
        409
    );

    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect("update");
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    // the stale resourceVersion conflicts, and nothing changes
    let e = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect_err("stale");
    assert_eq!(status_code(e), 409);
    assert_eq!(
        cms.get("a").await.expect("get").data.expect("data")["k"],
        "v2"
    );

    assert_eq!(status_code(cms.get("missing").await.expect_err("404")), 404);
    cms.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(status_code(cms.get("a").await.expect_err("gone")), 404);
    // the namespace must exist
    let nowhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    assert_eq!(
        status_code(
            nowhere
                .create(&PostParams::default(), &cm("a", json!({})))
                .await
                .expect_err("no ns")
        ),
        404
    );
}

#[tokio::test]
async fn bootstrap_objects_exist() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let n = nss.get(ns).await.expect(ns);
        assert_eq!(n.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    }
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let k = svcs.get("kubernetes").await.expect("kubernetes service");
    assert_eq!(
        k.spec.and_then(|s| s.cluster_ip).as_deref(),
        Some("10.0.0.1")
    );
}

#[tokio::test]
async fn list_selectors_and_pagination() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..7 {
        let tier = if i % 2 == 0 { "a" } else { "b" };
        cms.create(
            &PostParams::default(),
            &cm(&format!("c{i}"), json!({"tier": tier, "n": i.to_string()})),
        )
        .await
        .expect("create");
    }
    let even = cms
        .list(&ListParams::default().labels("tier=a"))
        .await
        .expect("list");
    assert_eq!(even.items.len(), 4);
    let set = cms
        .list(&ListParams::default().labels("tier in (a,b),n notin (0,1)"))
        .await
        .expect("list");
    assert_eq!(set.items.len(), 5);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=c3"))
        .await
        .expect("list");
    assert_eq!(by_name.items.len(), 1);

    let first = cms
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("continue token");
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    // a write between pages does not show up in the continued list
    cms.create(&PostParams::default(), &cm("c99", json!({})))
        .await
        .expect("create");
    let second = cms
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items.len(), 4);
    assert!(second.metadata.continue_.is_none());

    let bad = cms
        .list(&ListParams::default().fields("spec.nope=1"))
        .await
        .expect_err("bad field");
    assert_eq!(status_code(bad), 400);
}

#[tokio::test]
async fn watch_streams_changes_from_a_resource_version() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a = cms
        .create(&PostParams::default(), &cm("w1", json!({"app": "w"})))
        .await
        .expect("create");
    let rv = a.metadata.resource_version.clone().expect("rv");
    let mut stream = cms
        .watch(&WatchParams::default().labels("app=w").timeout(10), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.create(&PostParams::default(), &cm("w2", json!({"app": "w"})))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("other", json!({"app": "z"})))
        .await
        .expect("create");
    cms.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .expect("patch");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("event in time")
            .expect("ok")
            .expect("open");
        match ev {
            WatchEvent::Added(o) => {
                seen.push(format!("ADDED {}", o.metadata.name.unwrap_or_default()))
            }
            // leaving the selector shows as a deletion to this watcher
            WatchEvent::Deleted(o) => {
                seen.push(format!("DELETED {}", o.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Modified(o) => {
                seen.push(format!("MODIFIED {}", o.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED w2", "DELETED w1"]);
}

#[tokio::test]
async fn patch_types_and_server_side_apply() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "a", "image": "nginx:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "busybox:1"}]}}}
    }))
    .expect("deployment");
    let created = deploys
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    // strategic merge: containers merge by name
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox:2"}]}}}});
    let out = deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(p))
        .await
        .expect("smp");
    let containers = out
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.clone())
        .expect("containers");
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[1].image.as_deref(), Some("busybox:2"));
    assert_eq!(out.metadata.generation, Some(2));
    // JSON patch
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]))
            .expect("patch");
    let out = deploys
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .expect("json patch");
    assert_eq!(out.spec.and_then(|s| s.replicas), Some(3));
    // merge patch on a label
    let out = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "fe"}}})),
        )
        .await
        .expect("merge");
    assert_eq!(out.metadata.labels.expect("labels")["tier"], "fe");

    // server-side apply: creates, then re-applies idempotently
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let pp = PatchParams::apply("test-manager");
    let first = cms
        .patch("ssa", &pp, &Patch::Apply(&applied))
        .await
        .expect("apply create");
    let again = cms
        .patch("ssa", &pp, &Patch::Apply(&applied))
        .await
        .expect("apply again");
    assert_eq!(
        first.metadata.resource_version,
        again.metadata.resource_version
    );
    assert!(
        again
            .metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|m| m.manager.as_deref() == Some("test-manager"))
    );
}

#[tokio::test]
async fn errors_are_statuses() {
    let server = common::TestServer::start();
    let client = server.client().await;
    // invalid name -> 422 with causes
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let e = cms
        .create(&PostParams::default(), &cm("Bad_Name", json!({})))
        .await
        .expect_err("invalid");
    match e {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            assert!(
                s.message
                    .contains("metadata.name: Invalid value: \"Bad_Name\""),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    // too large body -> 413
    let big = "x".repeat(3 * 1024 * 1024 + 10);
    let mut c = cm("big", json!({}));
    c.data = Some([("k".to_string(), big)].into());
    assert_eq!(
        status_code(
            cms.create(&PostParams::default(), &c)
                .await
                .expect_err("too large")
        ),
        413
    );
    assert_eq!(
        status_code(cms.get("big").await.expect_err("not stored")),
        404
    );
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = common::TestServer::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut last_rv = 0u64;
    for round in 0..3 {
        for i in 0..20 {
            let c = cms
                .create(
                    &PostParams::default(),
                    &cm(
                        &format!("r{round}-{i}"),
                        json!({"round": round.to_string()}),
                    ),
                )
                .await
                .expect("create");
            last_rv = c
                .metadata
                .resource_version
                .and_then(|r| r.parse().ok())
                .expect("rv");
        }
        server.restart();
        let client = server.client().await;
        let cms_after: Api<ConfigMap> = Api::namespaced(client, "default");
        let list = cms_after
            .list(&ListParams::default())
            .await
            .expect("list after restart");
        assert_eq!(
            list.items.len(),
            20 * (round + 1),
            "every acknowledged create is still there"
        );
        let rv: u64 = list
            .metadata
            .resource_version
            .and_then(|r| r.parse().ok())
            .expect("list rv");
        assert!(
            rv >= last_rv,
            "resourceVersion went back from {last_rv} to {rv}"
        );
    }
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    // a watch resumed from before the restarts replays what happened since
    let mut stream = cms
        .watch(
            &WatchParams::default().timeout(5),
            &last_rv.saturating_sub(5).to_string(),
        )
        .await
        .expect("watch")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("in time")
        .expect("ok")
        .expect("event");
    assert!(matches!(first, WatchEvent::Added(_)), "{first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_quota_holds_under_concurrent_creates() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(client.clone(), "default");
    quotas
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "3"}}}),
            )
            .expect("quota"),
        )
        .await
        .expect("quota");
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let pods = pods.clone();
        tasks.push(tokio::spawn(async move {
            let p: k8s_openapi::api::core::v1::Pod =
                serde_json::from_value(json!({"metadata": {"name": format!("p{i}")}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).expect("pod");
            pods.create(&PostParams::default(), &p).await
        }));
    }
    let mut created = 0;
    let mut refused = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => created += 1,
            Err(kube::Error::Api(s)) => refused.push((s.code, s.message)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created, 3, "{refused:?}");
    assert_eq!(refused.len(), 17);
    let (code, msg) = &refused[0];
    assert_eq!(*code, 403);
    assert!(
        msg.contains(
            "is forbidden: exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3"
        ),
        "{msg}"
    );
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        3
    );
    let q = quotas.get("q").await.expect("quota");
    assert_eq!(
        q.status
            .and_then(|s| s.used)
            .map(|u| u["pods"].0.clone())
            .as_deref(),
        Some("3")
    );
}

#[tokio::test]
async fn pods_binding_assigns_a_node_once() {
    use k8s_openapi::api::core::v1::Pod;
    let server = common::TestServer::start();
    let pods: Api<Pod> = Api::namespaced(server.client().await, "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let binding = |node: &str| {
        json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": "p"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}
        })
    };
    let done: serde_json::Value = pods
        .create_subresource("binding", "p", &PostParams::default(), &binding("n1"))
        .await
        .expect("bind");
    assert_eq!(done["status"], "Success");
    let bound = pods.get("p").await.expect("get");
    assert_eq!(bound.spec.and_then(|s| s.node_name).as_deref(), Some("n1"));
    let scheduled = bound
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| c.status);
    assert_eq!(scheduled.as_deref(), Some("True"));
    let again = pods
        .create_subresource::<serde_json::Value, serde_json::Value>(
            "binding",
            "p",
            &PostParams::default(),
            &binding("n2"),
        )
        .await
        .expect_err("a second binding");
    match again {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("is already assigned to node \"n1\""),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Eviction honours the pod's PodDisruptionBudget and takes the disruption it uses, as
/// upstream: `disruptionsAllowed` goes down and the pod is recorded in `disruptedPods` in
/// one compare-and-swap, so two evictions cannot both spend one allowed disruption.
#[tokio::test]
async fn eviction_takes_one_allowed_disruption() {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let server = common::TestServer::start();
    let client = server.client_without_retries().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client, "default");
    for name in ["a", "b", "c"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .expect("pod");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
        let running = json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&running))
            .await
            .expect("running");
    }
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}
    }))
    .expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("create pdb");
    // what the disruption controller would report
    let status = json!({"status": {"observedGeneration": 1, "currentHealthy": 3,
        "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 1}});
    pdbs.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pdb status");
    let eviction = |name: &str| {
        json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"}})
    };
    let done: serde_json::Value = pods
        .create_subresource("eviction", "a", &PostParams::default(), &eviction("a"))
        .await
        .expect("the first eviction");
    assert_eq!(done["status"], "Success");
    let after = pdbs.get_status("web").await.expect("pdb");
    let st = after.status.expect("status");
    assert_eq!(st.disruptions_allowed, 0);
    assert!(
        st.disrupted_pods.unwrap_or_default().contains_key("a"),
        "the evicted pod is recorded"
    );
    let refused = pods
        .create_subresource::<serde_json::Value, serde_json::Value>(
            "eviction",
            "b",
            &PostParams::default(),
            &eviction("b"),
        )
        .await
        .expect_err("no disruption left");
    match refused {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 429);
            assert_eq!(
                s.message,
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        pods.get("b").await.is_ok(),
        "a refused eviction deletes nothing"
    );
}

/// Patches that do not name a resourceVersion are applied again to the newer object when
/// another write got in between (as upstream retries them), so concurrent patches all
/// land; a patch that pins an old resourceVersion gets 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unpinned_patches_all_land() {
    let server = common::TestServer::start();
    let cms: Api<ConfigMap> = Api::namespaced(server.client_without_retries().await, "default");
    let made = cms
        .create(&PostParams::default(), &cm("shared", json!({})))
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let cms = cms.clone();
        tasks.push(tokio::spawn(async move {
            let p = json!({"data": {format!("k{i}"): "v"}});
            cms.patch("shared", &PatchParams::default(), &Patch::Merge(&p))
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("an unpinned patch");
    }
    let data = cms
        .get("shared")
        .await
        .expect("get")
        .data
        .unwrap_or_default();
    for i in 0..16 {
        assert!(data.contains_key(&format!("k{i}")), "k{i} landed");
    }
    let stale = json!({"metadata": {"resourceVersion": made.metadata.resource_version},
        "data": {"late": "v"}});
    let err = cms
        .patch("shared", &PatchParams::default(), &Patch::Merge(&stale))
        .await
        .expect_err("a pinned patch of an old version");
    assert_eq!(status_code(err), 409);
}

#[tokio::test]
async fn events_api_events_are_created_and_read_in_both_versions() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    let server = common::TestServer::start();
    let client = server.client().await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": "e1"},
        "eventTime": "2026-11-22T13:11:07.151197Z",
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-host",
        "action": "Binding", "reason": "Scheduled", "type": "Normal",
        "note": "Successfully assigned default/p to n1",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "p"}
    }))
    .expect("event");
    let made = events
        .create(&PostParams::default(), &ev)
        .await
        .expect("an events.k8s.io/v1 Event is created");
    assert_eq!(
        made.reporting_controller.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(made.note.as_deref(), ev.note.as_deref());
    // the same object through core/v1
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let seen = core.get("e1").await.expect("read as core/v1");
    assert_eq!(
        seen.reporting_component.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(seen.message.as_deref(), ev.note.as_deref());
    // a new-style Event without its reporting controller is refused, naming the field
    let mut bad = ev.clone();
    bad.metadata.name = Some("e2".into());
    bad.reporting_controller = None;
    let e = events
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("reportingController is required");
    assert_eq!(status_code(e), 422);
}
