//! The HorizontalPodAutoscaler controller against a real apiserver: without a metrics
//! API it says so and leaves the target alone; with one (a test server registered as
//! `v1beta1.metrics.k8s.io`) it scales a Deployment's scale subresource up from its
//! pods' CPU usage, limited per step as upstream, with upstream's event and conditions;
//! `kubectl autoscale` (1.32 creates autoscaling/v1 HPAs, 1.35 v2) gets the same.

mod kcm;

use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use testenv::webhook_server::{TestRequest, pki, request_handler, serve_requests};

use kcm::{Kcm, create_namespace, wait_for, wait_for_event};

fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("object")
}

fn condition(h: &HorizontalPodAutoscaler, type_: &str) -> Option<(String, String, String)> {
    h.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn deployment_with_pods(client: &kube::Client, ns: &str) {
    let labels = json!({"app": "web"});
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                    {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}}}})),
        )
        .await
        .expect("deployment");
    // the pods the deployment would run, Running and Ready for over the CPU
    // initialization period (no deployment controller runs here)
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let started = "2020-01-01T00:00:00Z";
    for name in ["web-a", "web-b"] {
        pods.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name, "labels": labels}, "spec": {"nodeName": "n1",
                "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}})),
        )
        .await
        .expect("pod");
        let status = json!({"status": {"phase": "Running", "startTime": started,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}]}});
        pods.patch_status(name, &Default::default(), &kube::api::Patch::Merge(&status))
            .await
            .expect("status");
    }
}

fn hpa() -> HorizontalPodAutoscaler {
    obj(json!({"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 10,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}]}}))
}

#[tokio::test]
async fn without_a_metrics_api_the_target_is_left_alone() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "horizontalpodautoscaling");
    create_namespace(&client, "hpa").await;
    deployment_with_pods(&client, "hpa").await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "hpa");
    hpas.create(&PostParams::default(), &hpa())
        .await
        .expect("hpa");
    let h = wait_for(60, "ScalingActive condition", || async {
        hpas.get("web")
            .await
            .ok()
            .filter(|h| condition(h, "ScalingActive").is_some())
    })
    .await;
    let (status, reason, message) = condition(&h, "ScalingActive").expect("condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "FailedGetResourceMetric")
    );
    assert!(
        message.starts_with(
            "the HPA was unable to compute the replica count: failed to get cpu utilization"
        ),
        "{message}"
    );
    assert_eq!(
        condition(&h, "AbleToScale").map(|c| c.1),
        Some("SucceededGetScale".to_string())
    );
    wait_for_event(&client, "hpa", "web", "FailedGetResourceMetric").await;
    let d = Api::<Deployment>::namespaced(client.clone(), "hpa")
        .get("web")
        .await
        .expect("deployment");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(2));
}

#[tokio::test]
async fn two_hpas_on_the_same_pods_are_ambiguous_until_one_goes() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "horizontalpodautoscaling");
    create_namespace(&client, "twins").await;
    deployment_with_pods(&client, "twins").await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "twins");
    let mut twin = hpa();
    twin.metadata.name = Some("twin".into());
    for h in [hpa(), twin] {
        hpas.create(&PostParams::default(), &h).await.expect("hpa");
    }
    let message =
        "pods by selector app=web are controlled by multiple HPAs: [twins/twin twins/web]";
    // the first HPA synced may not have seen the other yet: the resync catches it
    for name in ["web", "twin"] {
        let h = wait_for(60, "AmbiguousSelector", || async {
            hpas.get(name).await.ok().filter(|h| {
                condition(h, "ScalingActive").is_some_and(|c| c.1 == "AmbiguousSelector")
            })
        })
        .await;
        assert_eq!(
            condition(&h, "ScalingActive"),
            Some(("False".into(), "AmbiguousSelector".into(), message.into()))
        );
    }
    let e = wait_for_event(&client, "twins", "web", "AmbiguousSelector").await;
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.message.as_deref(), Some(message));

    hpas.delete("twin", &Default::default())
        .await
        .expect("delete twin");
    wait_for(60, "web unambiguous again", || async {
        hpas.get("web").await.ok().filter(|h| {
            condition(h, "ScalingActive").is_some_and(|c| c.1 == "FailedGetResourceMetric")
        })
    })
    .await;
}

/// The metrics API (served as `hook.test.svc`, the name the test certificate carries):
/// discovery and the pods' usage (each pod at 150% of its request).
fn metrics_api(req: &TestRequest) -> (u16, Value) {
    let pod = |name: &str| {
        json!({"metadata": {"name": name, "namespace": "hpa", "labels": {"app": "web"}},
            "timestamp": "2030-01-01T00:00:00Z", "window": "30s",
            "containers": [{"name": "c", "usage": {"cpu": "150m", "memory": "10Mi"}}]})
    };
    match req.path.split('?').next().unwrap_or("") {
        "/apis/metrics.k8s.io/v1beta1" => (
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
                "resources": [{"name": "pods", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}]}),
        ),
        "/apis/metrics.k8s.io/v1beta1/namespaces/hpa/pods" => (
            200,
            json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                "items": [pod("web-a"), pod("web-b")]}),
        ),
        _ => (
            404,
            json!({"kind": "Status", "status": "Failure", "code": 404}),
        ),
    }
}

#[tokio::test]
async fn scales_up_from_pod_cpu_usage() {
    let identity = rcgen::generate_simple_self_signed(vec!["front-proxy-client".to_string()])
        .expect("proxy client cert");
    let dir = std::env::temp_dir().join(format!("hpa-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("proxy.crt"), dir.join("proxy.key"));
    std::fs::write(&cert, identity.cert.pem()).expect("write cert");
    std::fs::write(&key, identity.signing_key.serialize_pem()).expect("write key");
    let server = testenv::TestServer::start_with(&[
        &format!("--proxy-client-cert-file={}", cert.display()),
        &format!("--proxy-client-key-file={}", key.display()),
    ]);
    let client = server.client().await;
    create_namespace(&client, "hpa").await;
    create_namespace(&client, "test").await;

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let pki = pki();
    let addr = serve_requests(
        &pki,
        request_handler(move |req: TestRequest| {
            let record = record.clone();
            async move {
                record.lock().expect("lock").push(req.path.clone());
                metrics_api(&req)
            }
        }),
    )
    .await;
    Api::<Service>::namespaced(client.clone(), "test")
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "hook"},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": addr.port()}]}})),
        )
        .await
        .expect("service");
    Api::<EndpointSlice>::namespaced(client.clone(), "test")
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "hook-1", "labels": {"kubernetes.io/service-name": "hook"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}]})),
        )
        .await
        .expect("endpointslice");
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
    ));
    Api::<DynamicObject>::all_with(client.clone(), &ar)
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": "v1beta1.metrics.k8s.io"},
                "spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                    "service": {"namespace": "test", "name": "hook", "port": 443},
                    "caBundle": pki.ca_bundle, "groupPriorityMinimum": 100, "versionPriority": 100}})),
        )
        .await
        .expect("apiservice");

    deployment_with_pods(&client, "hpa").await;
    let kcm = Kcm::run(&server, "horizontalpodautoscaling");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "hpa");
    hpas.create(&PostParams::default(), &hpa())
        .await
        .expect("hpa");
    // 150% of request against a 50% target: 2 pods -> ceil(2 * 3) = 6, limited without
    // a behavior to max(2 * 2, 4) = 4 in one step, as upstream
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "hpa");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let d = deployments.get("web").await.expect("deployment");
        if d.spec.as_ref().and_then(|s| s.replicas) == Some(4) {
            break;
        }
        if std::time::Instant::now() > deadline {
            let h = hpas.get("web").await.expect("hpa");
            let api = Api::<DynamicObject>::all_with(client.clone(), &ar)
                .get("v1beta1.metrics.k8s.io")
                .await
                .expect("apiservice");
            panic!(
                "deployment not scaled to 4; hpa status {:?}\nmetrics server saw {:?}\napiservice {}\n--- kcm log ---\n{}",
                h.status,
                seen.lock().expect("lock"),
                api.data["status"],
                kcm.log()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let h = wait_for(60, "hpa status", || async {
        hpas.get("web")
            .await
            .ok()
            .filter(|h| h.status.as_ref().is_some_and(|s| s.desired_replicas == 4))
    })
    .await;
    let status = h.status.clone().expect("status");
    assert_eq!(status.current_replicas, Some(2));
    let current = status.current_metrics.unwrap_or_default();
    assert_eq!(
        current
            .first()
            .and_then(|m| m.resource.as_ref())
            .and_then(|r| r.current.average_utilization),
        Some(150)
    );
    assert_eq!(
        condition(&h, "AbleToScale"),
        Some((
            "True".into(),
            "SucceededRescale".into(),
            "the HPA controller was able to update the target scale to 4".into()
        ))
    );
    assert_eq!(
        condition(&h, "ScalingActive").map(|c| (c.0, c.1)),
        Some(("True".into(), "ValidMetricFound".into()))
    );
    assert_eq!(
        condition(&h, "ScalingLimited").map(|c| (c.0, c.1)),
        Some(("True".into(), "ScaleUpLimit".into()))
    );
    let rescale = wait_for_event(&client, "hpa", "web", "SuccessfulRescale").await;
    assert_eq!(
        rescale.message.as_deref(),
        Some("New size: 4; reason: cpu resource utilization (percentage of request) above target")
    );
    assert!(
        seen.lock().expect("lock").iter().any(|p| p.starts_with(
            "/apis/metrics.k8s.io/v1beta1/namespaces/hpa/pods?labelSelector=app%3Dweb"
        )),
        "the controller read the metrics API"
    );
}

/// The real kubectl binaries this machine has (1.35 from hack/install-deps.sh, 1.32).
fn kubectls() -> Vec<&'static str> {
    [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../_output/bin/kubectl"),
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect()
}

fn kubectl(bin: &str, kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bin)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .expect("run kubectl");
    if !out.status.success() {
        eprintln!("{bin} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[tokio::test]
async fn kubectl_autoscale_reports_the_missing_metrics_api() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "horizontalpodautoscaling");
    create_namespace(&client, "cli").await;
    let kc = server.kubeconfig_path();
    for (i, bin) in kubectls().into_iter().enumerate() {
        let name = format!("web{i}");
        let (ok, out) = kubectl(
            bin,
            &kc,
            &[
                "-n",
                "cli",
                "create",
                "deployment",
                &name,
                "--image=busybox",
            ],
        );
        assert!(ok, "{bin}: {out}");
        let (ok, out) = kubectl(
            bin,
            &kc,
            &[
                "-n",
                "cli",
                "autoscale",
                "deployment",
                &name,
                "--cpu-percent=50",
                "--min=1",
                "--max=3",
            ],
        );
        assert!(ok, "{bin}: {out}");
        assert_eq!(
            out,
            format!("horizontalpodautoscaler.autoscaling/{name} autoscaled"),
            "{bin}"
        );
        let reason = "jsonpath={.status.conditions[?(@.type==\"ScalingActive\")].reason}";
        wait_for(60, &format!("{bin}: ScalingActive"), || {
            let (ok, out) = kubectl(bin, &kc, &["-n", "cli", "get", "hpa", &name, "-o", reason]);
            async move { (ok && out == "FailedGetResourceMetric").then_some(()) }
        })
        .await;
    }
}
