//! Bad credentials over the wire: expired, wrongly signed, wrong-audience and malformed
//! tokens, a certificate from another CA and garbage Authorization headers each get
//! upstream's 401 Unauthorized, and none of the tokens appears in the server's log.

use testenv as common;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn start() -> common::TestServer {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/sa-rsa.key");
    let flags = [
        "--authorization-mode=RBAC".to_string(),
        format!("--service-account-issuer={ISSUER}"),
        format!("--api-audiences={ISSUER}"),
        format!("--service-account-key-file={key}"),
        format!("--service-account-signing-key-file={key}"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    common::TestServer::start_with(&flags)
}

/// The answer to a namespaced list, as (status code, Status reason).
async fn attempt(client: &kube::Client) -> (u16, String) {
    let req = http::Request::get("/api/v1/namespaces/default/pods")
        .body(Vec::new())
        .expect("request");
    match client.request::<Value>(req).await {
        Ok(_) => (200, String::new()),
        Err(kube::Error::Api(s)) => (s.code, s.reason),
        Err(e) => panic!("not an API answer: {e:?}"),
    }
}

/// A token signed with the service account key, with these claims.
fn signed(claims: &Value) -> String {
    let key = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/sa-rsa.key"
    ))
    .expect("key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&key).expect("rsa key"),
    )
    .expect("sign")
}

async fn token_request(admin: &kube::Client, audiences: &[&str]) -> String {
    let req = http::Request::post("/api/v1/namespaces/default/serviceaccounts/robot/token")
        .header("Content-Type", "application/json")
        .body(
            serde_json::to_vec(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": audiences}}),
            )
            .expect("json"),
        )
        .expect("request");
    let tr: Value = admin.request(req).await.expect("token request");
    tr["status"]["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_and_never_logged() {
    let server = start();
    let admin = server.client().await;
    Api::<ServiceAccount>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "robot"}})).expect("sa"),
        )
        .await
        .expect("service account");
    let good = token_request(&admin, &[ISSUER]).await;
    // a good token authenticates (and is then forbidden by RBAC: 403, not 401)
    let (code, reason) = attempt(&server.client_with_token(&good).await).await;
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));

    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, aud: &str| {
        json!({"iss": ISSUER, "sub": "system:serviceaccount:default:robot", "aud": [aud],
            "iat": now - 7200, "nbf": now - 7200, "exp": exp,
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "robot", "uid": "x"}}})
    };
    let expired = signed(&claims(now - 3600, ISSUER));
    let wrong_audience = token_request(&admin, &["https://elsewhere.example"]).await;
    let mut wrong_signature = good.clone();
    let last = wrong_signature.pop().expect("char");
    wrong_signature.push(if last == 'A' { 'B' } else { 'A' });
    let bad_tokens = [
        ("expired", expired.as_str()),
        ("wrong audience", wrong_audience.as_str()),
        ("wrong signature", wrong_signature.as_str()),
        ("malformed", "not-a.jwt"),
        ("unknown static token", "0123456789abcdef"),
    ];
    for (what, token) in bad_tokens {
        let (code, reason) = attempt(&server.client_with_token(token).await).await;
        assert_eq!((code, reason.as_str()), (401, "Unauthorized"), "{what}");
    }

    // a certificate from another CA, alone or with garbage Authorization headers
    let (_, other_ca_key) = common::new_ca();
    let (cert, key) = common::client_cert(&other_ca_key, "mallory", &["system:masters"]);
    for headers in [
        vec![],
        vec![("Authorization", "Basic bWFsbG9yeTpwdw==")],
        vec![("Authorization", "Bearer")],
        vec![("Authorization", "Bearer a b c")],
        vec![("Authorization", "garbage")],
    ] {
        let client = server.client_with_cert(&cert, &key, &headers).await;
        let (code, reason) = attempt(&client).await;
        assert_eq!(
            (code, reason.as_str()),
            (401, "Unauthorized"),
            "another CA's cert with {headers:?}"
        );
    }

    let log = server.log();
    for (what, token) in bad_tokens
        .iter()
        .take(3)
        .chain([("good", good.as_str())].iter())
    {
        assert!(!log.contains(token), "the {what} token appears in the log");
    }
}
