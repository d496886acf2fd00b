//! The endpoints controller against a real apiserver: Endpoints follow the selected
//! pods' readiness, named target ports resolve per pod, publishNotReadyAddresses,
//! headless services, selector-less services left alone, deletion with the Service.

mod workloads_support;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use workloads_support::{Cluster, obj};

fn pod(name: &str, http_port: i32) -> Pod {
    obj(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox",
            "ports": [{"name": "http", "containerPort": http_port}]}]},
    }))
}

fn ips(e: &Endpoints, ready: bool) -> Vec<(String, i32)> {
    let mut out = vec![];
    for s in e.subsets.iter().flatten() {
        let addrs = if ready {
            &s.addresses
        } else {
            &s.not_ready_addresses
        };
        for a in addrs.iter().flatten() {
            for p in s.ports.iter().flatten() {
                if p.name.as_deref() == Some("http") {
                    out.push((a.ip.clone(), p.port));
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn endpoints_follow_pod_readiness() {
    let c = Cluster::start("endpoint").await;
    c.namespace("ep").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "ep");
    let services: Api<Service> = Api::namespaced(c.client.clone(), "ep");
    let endpoints: Api<Endpoints> = Api::namespaced(c.client.clone(), "ep");
    let pp = PostParams::default();
    let svc: Service = obj(json!({
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9090, "targetPort": 9090}]},
    }));
    services.create(&pp, &svc).await.expect("service");
    pods.create(&pp, &pod("a", 8080)).await.expect("pod a");
    pods.create(&pp, &pod("b", 8081)).await.expect("pod b");
    c.set_pod_running("ep", "a", "10.1.0.1", true).await;
    c.set_pod_running("ep", "b", "10.1.0.2", false).await;

    let e = c
        .wait_for("a ready, b not ready", || async {
            let e = endpoints.get_opt("web").await.ok().flatten()?;
            (ips(&e, true) == [("10.1.0.1".into(), 8080)]
                && ips(&e, false) == [("10.1.0.2".into(), 8081)])
            .then_some(e)
        })
        .await;
    let labels = e.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("tier").map(String::as_str), Some("front"));
    // upstream sets the trigger time only for changes the controller saw happen (not for
    // state it found at its first sync, which a fast start can race with); when set, it
    // is an RFC 3339 time
    let annotations = e.metadata.annotations.clone().unwrap_or_default();
    if let Some(t) = annotations.get("endpoints.kubernetes.io/last-change-trigger-time") {
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
    }
    let subset = e
        .subsets
        .iter()
        .flatten()
        .find(|s| s.addresses.is_some())
        .expect("ready subset");
    let addr = &subset.addresses.as_ref().expect("addresses")[0];
    assert_eq!(addr.node_name.as_deref(), Some("node-1"));
    let target = addr.target_ref.as_ref().expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.name.as_deref(), Some("a"));
    let mut ports: Vec<i32> = subset.ports.iter().flatten().map(|p| p.port).collect();
    ports.sort();
    assert_eq!(ports, [8080, 9090]);

    // b becomes ready, a stops being ready
    c.set_pod_running("ep", "b", "10.1.0.2", true).await;
    c.set_pod_running("ep", "a", "10.1.0.1", false).await;
    c.wait_for("readiness swapped", || async {
        let e = endpoints.get_opt("web").await.ok().flatten()?;
        (ips(&e, true) == [("10.1.0.2".into(), 8081)]
            && ips(&e, false) == [("10.1.0.1".into(), 8080)])
        .then_some(())
    })
    .await;

    // a pod that stops matching the selector leaves
    let relabel = json!({"metadata": {"labels": {"app": "other"}}});
    pods.patch(
        "b",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&relabel),
    )
    .await
    .expect("relabel b");
    c.wait_for("b gone after relabel", || async {
        let e = endpoints.get_opt("web").await.ok().flatten()?;
        (ips(&e, true).is_empty() && ips(&e, false).len() == 1).then_some(())
    })
    .await;

    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    c.wait_for("endpoints deleted with the service", || async {
        endpoints.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn publish_not_ready_headless_and_selectorless() {
    let c = Cluster::start("endpoint").await;
    c.namespace("ep2").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "ep2");
    let services: Api<Service> = Api::namespaced(c.client.clone(), "ep2");
    let endpoints: Api<Endpoints> = Api::namespaced(c.client.clone(), "ep2");
    let pp = PostParams::default();
    let publish: Service = obj(json!({
        "metadata": {"name": "pub"},
        "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": true,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }));
    let headless: Service = obj(json!({
        "metadata": {"name": "hl"},
        "spec": {"selector": {"app": "web"}, "clusterIP": "None"},
    }));
    let manual: Service = obj(json!({
        "metadata": {"name": "manual"},
        "spec": {"ports": [{"port": 80}]},
    }));
    let manual_ep: Endpoints = obj(json!({
        "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.168.9.9"}], "ports": [{"port": 80}]}],
    }));
    for s in [&publish, &headless, &manual] {
        services.create(&pp, s).await.expect("service");
    }
    endpoints
        .create(&pp, &manual_ep)
        .await
        .expect("manual endpoints");
    let mut p = pod("a", 8080);
    if let Some(spec) = p.spec.as_mut() {
        spec.hostname = Some("a".into());
        spec.subdomain = Some("hl".into());
    }
    pods.create(&pp, &p).await.expect("pod");
    c.set_pod_running("ep2", "a", "10.2.0.1", false).await;

    c.wait_for("not-ready pod published", || async {
        let e = endpoints.get_opt("pub").await.ok().flatten()?;
        (ips(&e, true) == [("10.2.0.1".into(), 8080)]).then_some(())
    })
    .await;
    let hl = c
        .wait_for("headless endpoints", || async {
            let e = endpoints.get_opt("hl").await.ok().flatten()?;
            let s = e.subsets.clone()?.into_iter().next()?;
            s.not_ready_addresses.is_some().then_some(e)
        })
        .await;
    let labels = hl.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("service.kubernetes.io/headless")
            .map(String::as_str),
        Some("")
    );
    let addr = &hl.subsets.unwrap_or_default()[0]
        .not_ready_addresses
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(
        addr.hostname.as_deref(),
        Some("a"),
        "hostname under its subdomain"
    );

    // the selector-less service's hand-made Endpoints stay as written
    let m = endpoints.get("manual").await.expect("manual endpoints");
    let ip = &m.subsets.unwrap_or_default()[0]
        .addresses
        .clone()
        .unwrap_or_default()[0]
        .ip;
    assert_eq!(ip, "192.168.9.9");
    // and the apiserver's own `kubernetes` Endpoints are not ours to touch
    let k = Api::<Endpoints>::namespaced(c.client.clone(), "default")
        .get("kubernetes")
        .await
        .expect("kubernetes endpoints");
    let annotations = k.metadata.annotations.unwrap_or_default();
    assert!(!annotations.contains_key("endpoints.kubernetes.io/last-change-trigger-time"));
}
