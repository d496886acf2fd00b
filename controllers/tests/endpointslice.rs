//! The endpointslice controller against a real apiserver: slices labelled and owned as
//! upstream, conditions following readiness, at most 100 endpoints per slice, and the
//! selector-less `default/kubernetes` service left to the apiserver.

mod workloads_support;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use workloads_support::{Cluster, obj};

fn pod(name: &str) -> Pod {
    obj(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox",
            "ports": [{"name": "http", "containerPort": 8080}]}]},
    }))
}

async fn slices_of(api: &Api<EndpointSlice>, svc: &str) -> Vec<EndpointSlice> {
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    api.list(&lp).await.map(|l| l.items).unwrap_or_default()
}

/// (pod name, ready, serving, terminating) over all slices.
fn conditions(slices: &[EndpointSlice]) -> Vec<(String, bool, bool, bool)> {
    let mut out: Vec<_> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            let name = e.target_ref.as_ref().and_then(|r| r.name.clone());
            (
                name.unwrap_or_default(),
                c.ready.unwrap_or(false),
                c.serving.unwrap_or(false),
                c.terminating.unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn slices_follow_pods() {
    let c = Cluster::start("endpointslice").await;
    c.namespace("es").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "es");
    let services: Api<Service> = Api::namespaced(c.client.clone(), "es");
    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "es");
    let pp = PostParams::default();
    let svc: Service = obj(json!({
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }));
    let svc = services.create(&pp, &svc).await.expect("service");

    // no pods yet: one empty placeholder slice
    let placeholder = c
        .wait_for("placeholder slice", || async {
            let s = slices_of(&slices, "web").await;
            (s.len() == 1 && s[0].endpoints.is_empty()).then_some(s)
        })
        .await;
    let labels = placeholder[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    assert_eq!(labels.get("tier").map(String::as_str), Some("front"));
    let owner = &placeholder[0]
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(owner.kind, "Service");
    assert_eq!(Some(owner.uid.clone()), svc.metadata.uid);
    assert_eq!(placeholder[0].address_type, "IPv4");

    for n in ["a", "b"] {
        pods.create(&pp, &pod(n)).await.expect("pod");
    }
    c.set_pod_running("es", "a", "10.3.0.1", true).await;
    c.set_pod_running("es", "b", "10.3.0.2", false).await;
    let got = c
        .wait_for("a ready, b not", || async {
            let s = slices_of(&slices, "web").await;
            (conditions(&s)
                == [
                    ("a".into(), true, true, false),
                    ("b".into(), false, false, false),
                ])
            .then_some(s)
        })
        .await;
    let port = got
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .next()
        .expect("port");
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), Some(8080))
    );
    let ep = got
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .next()
        .expect("endpoint");
    assert_eq!(ep.node_name.as_deref(), Some("node-1"));

    c.set_pod_running("es", "b", "10.3.0.2", true).await;
    c.wait_for("b ready", || async {
        let s = slices_of(&slices, "web").await;
        (conditions(&s)
            == [
                ("a".into(), true, true, false),
                ("b".into(), true, true, false),
            ])
        .then_some(())
    })
    .await;

    // past 100 endpoints a second slice appears
    for i in 0..100 {
        pods.create(&pp, &pod(&format!("m{i}"))).await.expect("pod");
        c.set_pod_running("es", &format!("m{i}"), &format!("10.4.0.{}", i + 1), true)
            .await;
    }
    let many = c
        .wait_for("102 endpoints", || async {
            let s = slices_of(&slices, "web").await;
            (conditions(&s).len() == 102).then_some(s)
        })
        .await;
    assert!(many.len() >= 2);
    assert!(many.iter().all(|s| s.endpoints.len() <= 100));

    // the apiserver's own kubernetes service is not ours
    let default: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "default");
    for s in slices_of(&default, "kubernetes").await {
        let labels = s.metadata.labels.unwrap_or_default();
        assert_ne!(
            labels
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("endpointslice-controller.k8s.io")
        );
    }
}

#[tokio::test]
async fn selectorless_endpoints_are_mirrored() {
    let c = Cluster::start("endpointslicemirroring").await;
    c.namespace("mir").await;
    let services: Api<Service> = Api::namespaced(c.client.clone(), "mir");
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> =
        Api::namespaced(c.client.clone(), "mir");
    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "mir");
    let pp = PostParams::default();
    let svc: Service = obj(json!({
        "metadata": {"name": "ext"},
        "spec": {"ports": [{"name": "db", "port": 5432}]},
    }));
    services.create(&pp, &svc).await.expect("service");
    let eps = obj(json!({
        "metadata": {"name": "ext", "labels": {"team": "data"}},
        "subsets": [{"addresses": [{"ip": "192.168.5.1"}],
                     "notReadyAddresses": [{"ip": "192.168.5.2"}],
                     "ports": [{"name": "db", "port": 5432}]}],
    }));
    let eps = endpoints.create(&pp, &eps).await.expect("endpoints");
    let got = c
        .wait_for("mirrored slice", || async {
            let s = slices_of(&slices, "ext").await;
            (s.len() == 1 && s[0].endpoints.len() == 2).then_some(s)
        })
        .await;
    let s = &got[0];
    let labels = s.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslicemirroring-controller.k8s.io")
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("data"));
    let owner = &s.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), Some(owner.uid.clone())),
        ("Endpoints", eps.metadata.uid)
    );
    let mut ready: Vec<(String, bool)> = s
        .endpoints
        .iter()
        .map(|e| {
            let r = e.conditions.clone().and_then(|c| c.ready).unwrap_or(false);
            (e.addresses[0].clone(), r)
        })
        .collect();
    ready.sort();
    assert_eq!(
        ready,
        [("192.168.5.1".into(), true), ("192.168.5.2".into(), false)]
    );

    // a selector on the service ends the mirroring
    let patch = json!({"spec": {"selector": {"app": "db"}}});
    services
        .patch(
            "ext",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("add selector");
    c.wait_for("mirrored slice removed", || async {
        slices_of(&slices, "ext").await.is_empty().then_some(())
    })
    .await;

    // the apiserver's kubernetes Endpoints carry skip-mirror: never mirrored
    let default: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "default");
    for s in slices_of(&default, "kubernetes").await {
        let labels = s.metadata.labels.unwrap_or_default();
        assert_ne!(
            labels
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("endpointslicemirroring-controller.k8s.io")
        );
    }
}
