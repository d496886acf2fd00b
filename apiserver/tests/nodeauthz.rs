//! The Node authorizer with NodeRestriction, as a kubelet meets them: it reads only what
//! its own pods use, lists only its own pods, sees only its own Node and Lease, deletes,
//! evicts and requests tokens only for its own pods, and the answers follow the pods as
//! they come and go.

use testenv as common;

use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolume, Pod, Secret, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("object")
}

fn forbidden(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => s.message,
        other => panic!("expected 403, got {other:?}"),
    }
}

fn start() -> common::TestServer {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/sa-rsa.key");
    let flags = [
        "--authorization-mode=Node,RBAC".to_string(),
        "--enable-admission-plugins=NodeRestriction".to_string(),
        "--disable-admission-plugins=ServiceAccount".to_string(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
        format!("--service-account-key-file={key}"),
        format!("--service-account-signing-key-file={key}"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    common::TestServer::start_with(&flags)
}

async fn token_request(
    client: &kube::Client,
    sa: &str,
    bound: Option<Value>,
) -> Result<Value, kube::Error> {
    let mut spec = json!({"audiences": ["https://kubernetes.default.svc.cluster.local"]});
    if let Some(b) = bound {
        spec["boundObjectRef"] = b;
    }
    let req = http::Request::post(format!(
        "/api/v1/namespaces/default/serviceaccounts/{sa}/token"
    ))
    .header("Content-Type", "application/json")
    .body(
        serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}))
            .expect("json"),
    )
    .expect("request");
    client.request(req).await
}

#[tokio::test]
async fn kubelets_reach_only_what_their_pods_use() {
    let server = start();
    let admin = server.client().await;
    let kubelet = server.client_as("system:node:n1", &["system:nodes"]).await;
    let pp = PostParams::default();

    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "default");
    for name in ["mine", "theirs", "unused", "csi", "later"] {
        secrets
            .create(&pp, &obj(json!({"metadata": {"name": name}})))
            .await
            .expect("secret");
    }
    Api::<ConfigMap>::namespaced(admin.clone(), "default")
        .create(&pp, &obj(json!({"metadata": {"name": "settings"}})))
        .await
        .expect("configmap");
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(admin.clone(), "default")
        .create(&pp, &obj(json!({"metadata": {"name": "app"}})))
        .await
        .expect("sa");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let mine = pods
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "mine"}, "spec": {
                "nodeName": "n1",
                "serviceAccountName": "app",
                "containers": [{"name": "c", "image": "busybox",
                    "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "k"}}}]}],
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "settings"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
                ]
            }})),
        )
        .await
        .expect("pod on n1");
    let theirs = pods
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "theirs"}, "spec": {
                "nodeName": "n2",
                "serviceAccountName": "app",
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "s", "secret": {"secretName": "theirs"}}]
            }})),
        )
        .await
        .expect("pod on n2");
    Api::<PersistentVolume>::all(admin.clone())
        .create(
            &pp,
            &obj(json!({"metadata": {"name": "pv1"}, "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "claimRef": {"namespace": "default", "name": "data"},
                "csi": {"driver": "example.com/d", "volumeHandle": "h",
                    "nodePublishSecretRef": {"name": "csi", "namespace": "default"}}
            }})),
        )
        .await
        .expect("pv");

    // what its pods use, and nothing else
    let node_secrets: Api<Secret> = Api::namespaced(kubelet.clone(), "default");
    node_secrets.get("mine").await.expect("its pod's secret");
    node_secrets
        .get("csi")
        .await
        .expect("its pod's volume's secret");
    Api::<ConfigMap>::namespaced(kubelet.clone(), "default")
        .get("settings")
        .await
        .expect("its pod's configmap");
    Api::<PersistentVolume>::all(kubelet.clone())
        .get("pv1")
        .await
        .expect("its pod's volume");
    assert_eq!(
        forbidden(
            node_secrets
                .get("theirs")
                .await
                .expect_err("another node's secret")
        ),
        "secrets \"theirs\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"
    );
    assert_eq!(
        forbidden(
            node_secrets
                .list(&ListParams::default())
                .await
                .expect_err("all secrets")
        ),
        "secrets is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": No Object name found"
    );
    // a list pinned to one related name is a read of that object
    let one = node_secrets
        .list(&ListParams::default().fields("metadata.name=mine"))
        .await
        .expect("list of its secret");
    assert_eq!(one.items.len(), 1);

    // its own pods by field selector, not everyone's
    let node_pods: Api<Pod> = Api::all(kubelet.clone());
    let listed = node_pods
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .expect("own pods");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        forbidden(
            node_pods
                .list(&ListParams::default())
                .await
                .expect_err("all pods")
        ),
        "pods is forbidden: User \"system:node:n1\" cannot list resource \"pods\" in API group \"\" at the cluster scope: can only list/watch pods with spec.nodeName field selector"
    );
    let ns_pods: Api<Pod> = Api::namespaced(kubelet.clone(), "default");
    ns_pods.get("mine").await.expect("own pod");
    ns_pods.get("theirs").await.expect_err("other node's pod");

    // its own Node only; static rules for the rest
    let nodes: Api<Node> = Api::all(kubelet.clone());
    assert_eq!(
        forbidden(nodes.get("n2").await.expect_err("other node")),
        "nodes \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'n1' cannot read 'n2', only its own Node object"
    );
    Api::<Service>::all(kubelet.clone())
        .list(&ListParams::default())
        .await
        .expect("services by the static node rules");

    // leases: its own, in kube-node-lease
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(kubelet.clone(), "kube-node-lease");
    leases
        .create(&pp, &obj(json!({"metadata": {"name": "n1"}})))
        .await
        .expect("own lease");
    leases.get("n1").await.expect("own lease");
    assert_eq!(
        forbidden(leases.get("n2").await.expect_err("other lease")),
        "leases.coordination.k8s.io \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": can only access node lease with the same name as the requesting node"
    );

    // NodeRestriction: deletes, evictions and tokens for its own pods only
    assert_eq!(
        forbidden(
            ns_pods
                .delete("theirs", &DeleteParams::default())
                .await
                .expect_err("delete other node's pod")
        ),
        "pods \"theirs\" is forbidden: node \"n1\" can only delete pods with spec.nodeName set to itself"
    );
    let evict = ns_pods
        .evict("theirs", &Default::default())
        .await
        .expect_err("evict other node's pod");
    assert_eq!(
        forbidden(evict),
        "pods \"theirs\" is forbidden: node n1 can only evict pods with spec.nodeName set to itself"
    );
    let bound = |p: &Pod| json!({"apiVersion": "v1", "kind": "Pod", "name": p.metadata.name, "uid": p.metadata.uid});
    token_request(&kubelet, "app", Some(bound(&mine)))
        .await
        .expect("token for its own pod");
    assert_eq!(
        forbidden(
            token_request(&kubelet, "app", None)
                .await
                .expect_err("unbound token")
        ),
        "serviceaccounts \"app\" is forbidden: node requested token not bound to a pod"
    );
    assert_eq!(
        forbidden(
            token_request(&kubelet, "app", Some(bound(&theirs)))
                .await
                .expect_err("token for another node's pod")
        ),
        "serviceaccounts \"app\" is forbidden: node requested token bound to a pod scheduled on a different node"
    );

    // the relationships follow the pods at once: a new pod grants, a deleted one revokes
    pods.create(
        &pp,
        &obj(json!({"metadata": {"name": "later"}, "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "s", "secret": {"secretName": "later"}}]
        }})),
    )
    .await
    .expect("new pod");
    node_secrets.get("later").await.expect("new pod's secret");
    pods.delete("mine", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    let gone = node_secrets
        .get("mine")
        .await
        .expect_err("deleted pod's secret");
    assert!(forbidden(gone).ends_with("no relationship found between node 'n1' and this object"));

    // SubjectAccessReview tells the same, with the reason
    let sar = http::Request::post("/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .header("Content-Type", "application/json")
        .body(
            serde_json::to_vec(&json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": "system:node:n1", "groups": ["system:nodes"],
                    "resourceAttributes": {"namespace": "default", "verb": "get", "resource": "secrets", "name": "theirs"}}}))
            .expect("json"),
        )
        .expect("request");
    let review: Value = admin.request(sar).await.expect("sar");
    assert_eq!(review["status"]["allowed"], json!(false));
    assert_eq!(
        review["status"]["reason"],
        json!("no relationship found between node 'n1' and this object")
    );
}

#[tokio::test]
async fn node_mode_leaves_other_users_to_rbac() {
    let server = start();
    let admin = server.client().await;
    // a member of system:nodes without a node name gets nothing from the Node authorizer
    let odd = server.client_as("kubelet", &["system:nodes"]).await;
    let err = Api::<Secret>::namespaced(odd, "default")
        .list(&ListParams::default())
        .await
        .expect_err("not a node identity");
    assert_eq!(
        forbidden(err),
        "secrets is forbidden: User \"kubelet\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    // RBAC still decides for everyone else
    Api::<Secret>::namespaced(admin, "default")
        .list(&ListParams::default())
        .await
        .expect("admin");
}
