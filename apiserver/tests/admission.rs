//! Built-in mutating admission through a real kube-apiserver with upstream's default
//! plugins: ServiceAccount (the account must exist; the projected token volume; pull
//! secrets), TaintNodesByCondition and DefaultStorageClass.

use testenv as common;

use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod, ServiceAccount};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::PostParams;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("object")
}

fn pod(name: &str, extra: Value) -> Pod {
    let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    obj(p)
}

#[tokio::test]
async fn default_plugins_mutate_pods_nodes_and_claims() {
    let server = common::TestServer::start_with(&["--enable-admission-plugins=ServiceAccount"]);
    let client = server.client_without_retries().await;
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(&pp, &obj(json!({"metadata": {"name": "sa"}})))
        .await
        .expect("namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "sa");

    // no default account yet: refused with upstream's message
    let err = pods
        .create(&pp, &pod("early", json!({})))
        .await
        .expect_err("no account");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403);
            assert_eq!(
                s.message,
                "pods \"early\" is forbidden: error looking up service account sa/default: serviceaccount \"default\" not found"
            );
        }
        other => panic!("{other:?}"),
    }

    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "sa");
    sas.create(&pp, &obj(json!({"metadata": {"name": "default"}})))
        .await
        .expect("default account");
    let created = pods.create(&pp, &pod("p", json!({}))).await.expect("pod");
    let spec = serde_json::to_value(created.spec).expect("spec");
    assert_eq!(spec["serviceAccountName"], "default");
    let volume = &spec["volumes"][0];
    let name = volume["name"].as_str().expect("volume name");
    assert!(name.starts_with("kube-api-access-"), "{name}");
    assert_eq!(
        volume["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]})
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );

    // an account that opts out of automounting, with pull secrets the pod inherits
    sas.create(
        &pp,
        &obj(
            json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false,
            "imagePullSecrets": [{"name": "registry"}]}),
        ),
    )
    .await
    .expect("account");
    let created = pods
        .create(&pp, &pod("q", json!({"serviceAccountName": "quiet"})))
        .await
        .expect("pod");
    let spec = serde_json::to_value(created.spec).expect("spec");
    assert!(spec.get("volumes").is_none(), "{spec}");
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "registry"}]));
    let err = pods
        .create(&pp, &pod("x", json!({"serviceAccountName": "nobody"})))
        .await
        .expect_err("unknown account");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err:?}"
    );

    // new nodes start not-ready
    let node = Api::<Node>::all(client.clone())
        .create(&pp, &obj(json!({"metadata": {"name": "n1"}})))
        .await
        .expect("node");
    assert_eq!(
        serde_json::to_value(node.spec.and_then(|s| s.taints)).expect("taints"),
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );

    // claims without a class get the default one; "" stays no class
    Api::<StorageClass>::all(client.clone())
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "standard", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "example.com/none"})),
        )
        .await
        .expect("storage class");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "sa");
    let claim = |name: &str, class: Option<&str>| {
        let mut c = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(class) = class {
            c["spec"]["storageClassName"] = json!(class);
        }
        obj::<PersistentVolumeClaim>(c)
    };
    let c = pvcs.create(&pp, &claim("a", None)).await.expect("claim");
    assert_eq!(
        c.spec.and_then(|s| s.storage_class_name).as_deref(),
        Some("standard")
    );
    let c = pvcs
        .create(&pp, &claim("b", Some("")))
        .await
        .expect("claim");
    assert_eq!(
        c.spec.and_then(|s| s.storage_class_name).as_deref(),
        Some("")
    );
}

#[tokio::test]
async fn node_restriction_keeps_kubelets_to_their_own_node() {
    let server = common::TestServer::start_with(&[
        "--enable-admission-plugins=NodeRestriction",
        "--disable-admission-plugins=ServiceAccount",
    ]);
    let admin = server.client_without_retries().await;
    let kubelet = server.client_as("system:node:n1", &["system:nodes"]).await;
    let pp = PostParams::default();
    let forbidden = |e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 403 => s.message,
        other => panic!("{other:?}"),
    };

    let nodes: Api<Node> = Api::all(kubelet.clone());
    nodes
        .create(
            &pp,
            &obj(
                json!({"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "a"}}}),
            ),
        )
        .await
        .expect("own node");
    let err = nodes
        .create(&pp, &obj(json!({"metadata": {"name": "n2"}})))
        .await
        .expect_err("other node");
    assert_eq!(
        forbidden(err),
        "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
    );
    let patch = |labels: Value| kube::api::Patch::Merge(json!({"metadata": {"labels": labels}}));
    nodes
        .patch(
            "n1",
            &Default::default(),
            &patch(json!({"topology.kubernetes.io/zone": "b"})),
        )
        .await
        .expect("kubelet label");
    let err = nodes
        .patch(
            "n1",
            &Default::default(),
            &patch(json!({"node-role.kubernetes.io/control-plane": ""})),
        )
        .await
        .expect_err("role label");
    assert_eq!(
        forbidden(err),
        "nodes \"n1\" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane"
    );

    // only mirror pods of its own
    let pods: Api<Pod> = Api::namespaced(kubelet.clone(), "default");
    let err = pods
        .create(&pp, &pod("plain", json!({"nodeName": "n1"})))
        .await
        .expect_err("plain pod");
    assert_eq!(
        forbidden(err),
        "pods \"plain\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods"
    );

    // pod status only for its own pods
    Api::<Pod>::namespaced(admin.clone(), "default")
        .create(&pp, &pod("elsewhere", json!({"nodeName": "n2"})))
        .await
        .expect("admin pod");
    let status = kube::api::Patch::Merge(json!({"status": {"phase": "Running"}}));
    let err = pods
        .patch_status("elsewhere", &Default::default(), &status)
        .await
        .expect_err("other node's pod");
    assert_eq!(
        forbidden(err),
        "pods \"elsewhere\" is forbidden: node \"n1\" can only update pod status for pods with spec.nodeName set to itself"
    );

    // its own lease only
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(kubelet.clone(), "kube-node-lease");
    leases
        .create(&pp, &obj(json!({"metadata": {"name": "n1"}})))
        .await
        .expect("own lease");
    let err = leases
        .create(&pp, &obj(json!({"metadata": {"name": "n2"}})))
        .await
        .expect_err("other lease");
    assert_eq!(
        forbidden(err),
        "leases.coordination.k8s.io \"n2\" is forbidden: can only access node lease with the same name as the requesting node"
    );
}

#[tokio::test]
async fn compute_quotas_need_requests_and_hold() {
    let server = common::TestServer::start();
    let client = server.client_without_retries().await;
    let pp = PostParams::default();
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(client.clone(), "default");
    quotas
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "compute"},
                "spec": {"hard": {"requests.cpu": "1", "limits.memory": "1Gi"}}})),
        )
        .await
        .expect("quota");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sized = |name: &str, cpu: &str| {
        obj::<Pod>(
            json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": "nginx",
            "resources": {"requests": {"cpu": cpu}, "limits": {"memory": "256Mi"}}}]}}),
        )
    };
    let message = |e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 403 => s.message,
        other => panic!("{other:?}"),
    };
    let err = pods
        .create(&pp, &pod("bare", json!({})))
        .await
        .expect_err("no requests");
    assert_eq!(
        message(err),
        "pods \"bare\" is forbidden: failed quota: compute: must specify limits.memory for: c; requests.cpu for: c"
    );
    pods.create(&pp, &sized("a", "600m")).await.expect("fits");
    let err = pods
        .create(&pp, &sized("b", "500m"))
        .await
        .expect_err("over quota");
    assert_eq!(
        message(err),
        "pods \"b\" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=600m, limited: requests.cpu=1"
    );
    pods.create(&pp, &sized("c", "400m"))
        .await
        .expect("fits exactly");
    let q = quotas.get("compute").await.expect("quota");
    let used = q.status.and_then(|s| s.used).expect("used");
    assert_eq!(used["requests.cpu"].0, "1");
    assert_eq!(used["limits.memory"].0, "512Mi");
}

/// Sends a JSON request; the status, the `Warning` headers' texts and the body.
async fn send_json(
    client: &kube::Client,
    method: http::Method,
    uri: &str,
    body: Value,
) -> (u16, Vec<String>, Value) {
    let content_type = if method == http::Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("Content-Type", content_type)
        .body(serde_json::to_vec(&body).expect("json"))
        .expect("request");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|w| {
            // `299 - "text"`
            w.trim_start_matches("299 - ")
                .trim_matches('"')
                .replace("\\\"", "\"")
        })
        .collect();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        warnings,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn pod_security_defaults_and_exemptions_from_the_admission_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("admission.yaml");
    std::fs::write(
        &config,
        "apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
    exemptions:
      namespaces: [kube-system]
      usernames: [trusted]
      runtimeClasses: [sandboxed]
",
    )
    .expect("write");
    let flag = format!("--admission-control-config-file={}", config.display());
    let server = common::TestServer::start_with(&[&flag]);
    let admin = server.client().await;
    let privileged = |name: &str, extra: Value| {
        let mut spec =
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                spec[k] = v;
            }
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    };
    let pods = |ns: &str| format!("/api/v1/namespaces/{ns}/pods");

    // a namespace without labels gets the configured default
    let (code, _, body) = send_json(
        &admin,
        http::Method::POST,
        &pods("default"),
        privileged("host", json!({})),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        json!(
            "pods \"host\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork)"
        )
    );
    // exempt runtime class, exempt user, exempt namespace
    let (code, _, body) = send_json(
        &admin,
        http::Method::POST,
        &pods("default"),
        privileged("sandboxed", json!({"runtimeClassName": "sandboxed"})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let trusted = server.client_as("trusted", &["system:masters"]).await;
    let (code, _, body) = send_json(
        &trusted,
        http::Method::POST,
        &pods("default"),
        privileged("trusted", json!({})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, _, body) = send_json(
        &admin,
        http::Method::POST,
        &pods("kube-system"),
        privileged("system", json!({})),
    )
    .await;
    assert_eq!(code, 201, "{body}");

    // labels on an exempt namespace are accepted, with a warning that they do nothing
    let (code, warnings, body) = send_json(
        &admin,
        http::Method::PATCH,
        "/api/v1/namespaces/kube-system",
        json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        warnings,
        [
            "namespace \"kube-system\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"
        ]
    );
    let (code, _, body) = send_json(
        &admin,
        http::Method::POST,
        &pods("kube-system"),
        privileged("still-allowed", json!({})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
}
