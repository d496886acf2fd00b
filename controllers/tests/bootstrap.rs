//! The bootstrap signer and token cleaner against a real API server: a signing token's
//! detached JWS appears in `kube-public/cluster-info` and goes with the token, and
//! expired token secrets are deleted (a token expiring later, when it expires).

mod kcm;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams};
use kube_controller_manager::bootstrap::detached_signature;
use serde_json::json;

use kcm::{Kcm, wait_for};

const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    server: https://10.0.0.1:6443\n";

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A bootstrap token secret; `expiration` is an offset from now in seconds.
async fn create_token(client: &kube::Client, id: &str, secret: &str, expires_in: Option<i64>) {
    let mut data = json!({
        "token-id": id,
        "token-secret": secret,
        "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
    });
    if let Some(secs) = expires_in {
        let at = Timestamp::now() + SignedDuration::from_secs(secs);
        data["expiration"] = json!(rfc3339(at));
    }
    use base64::Engine;
    let b64 = |v: &serde_json::Value| {
        json!(base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default()))
    };
    let data: serde_json::Map<String, serde_json::Value> = data
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), b64(v)))
        .collect();
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "data": data,
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &s)
        .await
        .expect("create token secret");
}

async fn cluster_info_key(client: &kube::Client, key: &str) -> Option<String> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    cms.get("cluster-info").await.ok()?.data?.get(key).cloned()
}

#[tokio::test]
async fn cluster_info_is_signed_for_each_signing_token() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        "data": {"kubeconfig": KUBECONFIG},
    }))
    .expect("cm");
    Api::<ConfigMap>::namespaced(client.clone(), "kube-public")
        .create(&PostParams::default(), &cm)
        .await
        .expect("cluster-info");
    let kcm = Kcm::run(&server, "bootstrapsigner,tokencleaner");
    create_token(&client, "abc123", "0123456789abcdef", Some(3600)).await;

    let expected = detached_signature(KUBECONFIG, "abc123", "0123456789abcdef").expect("jws");
    let got = wait_for(60, "the token's signature in cluster-info", || {
        cluster_info_key(&client, "jws-kubeconfig-abc123")
    })
    .await;
    assert_eq!(got, expected, "{}", kcm.log());
    assert!(got.starts_with("eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiYzEyMyJ9.."));

    // a token that expires soon: signed now, unsigned and deleted once expired
    create_token(&client, "exp456", "fedcba9876543210", Some(4)).await;
    wait_for(60, "the short-lived token's signature", || {
        cluster_info_key(&client, "jws-kubeconfig-exp456")
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    wait_for(60, "the expired token deleted and unsigned", || async {
        let gone = secrets
            .get_opt("bootstrap-token-exp456")
            .await
            .ok()?
            .is_none();
        let unsigned = cluster_info_key(&client, "jws-kubeconfig-exp456")
            .await
            .is_none();
        (gone && unsigned).then_some(())
    })
    .await;

    // deleting a token removes its signature
    secrets
        .delete("bootstrap-token-abc123", &DeleteParams::default())
        .await
        .expect("delete token");
    wait_for(60, "the deleted token's signature removed", || async {
        cluster_info_key(&client, "jws-kubeconfig-abc123")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        cluster_info_key(&client, "kubeconfig").await.as_deref(),
        Some(KUBECONFIG)
    );
}

#[tokio::test]
async fn expired_token_secrets_are_deleted() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "tokencleaner");
    create_token(&client, "old111", "0123456789abcdef", Some(-60)).await;
    create_token(&client, "new222", "0123456789abcdef", Some(3600)).await;
    create_token(&client, "nev333", "0123456789abcdef", None).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    wait_for(60, "the expired token secret deleted", || async {
        secrets
            .get_opt("bootstrap-token-old111")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    for name in ["bootstrap-token-new222", "bootstrap-token-nev333"] {
        assert!(
            secrets.get_opt(name).await.expect("get").is_some(),
            "{name} kept"
        );
    }
}
