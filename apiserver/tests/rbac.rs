//! RBAC end to end: the bootstrap policy exists and is enforced, bindings grant exactly
//! what they name, and roles cannot escalate.

use testenv as common;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

fn code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn view_in_one_namespace_only_and_no_escalation() {
    let server = common::TestServer::start_with(&["--authorization-mode=RBAC"]);
    let admin = server.client().await;
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:node",
    ] {
        roles
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("bootstrap ClusterRole {name}: {e}"));
    }
    for ns in ["a", "b"] {
        let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .expect("namespace");
    }
    let rb: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "jane-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &rb)
        .await
        .expect("bind");

    let jane = server.client_as("jane", &[]).await;
    Api::<Pod>::namespaced(jane.clone(), "a")
        .list(&ListParams::default())
        .await
        .expect("jane lists pods in a");
    let (c, msg) = code(
        Api::<Pod>::namespaced(jane.clone(), "b")
            .list(&ListParams::default())
            .await
            .expect_err("b"),
    );
    assert_eq!(c, 403);
    assert_eq!(
        msg,
        "pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"b\""
    );
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("cm");
    let (c, _) = code(
        Api::<ConfigMap>::namespaced(jane.clone(), "a")
            .create(&PostParams::default(), &cm)
            .await
            .expect_err("view cannot create"),
    );
    assert_eq!(c, 403);

    // a user allowed to write roles still cannot grant what they do not hold
    let rm: Role = serde_json::from_value(json!({
        "metadata": {"name": "role-manager"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create"]}]
    }))
    .expect("role");
    Api::<Role>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &rm)
        .await
        .expect("role");
    let rb2: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "jane-roles"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-manager"},
        "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &rb2)
        .await
        .expect("bind");
    let greedy: Role = serde_json::from_value(json!({
        "metadata": {"name": "greedy"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    }))
    .expect("role");
    let (c, msg) = code(
        Api::<Role>::namespaced(jane.clone(), "a")
            .create(&PostParams::default(), &greedy)
            .await
            .expect_err("escalation"),
    );
    assert_eq!(c, 403, "{msg}");
    assert!(
        msg.contains("is attempting to grant RBAC permissions not currently held"),
        "{msg}"
    );
    let modest: Role = serde_json::from_value(json!({
        "metadata": {"name": "modest"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    }))
    .expect("role");
    Api::<Role>::namespaced(jane, "a")
        .create(&PostParams::default(), &modest)
        .await
        .expect("a role within what jane holds");
}

async fn whoami(client: &kube::Client, impersonate: Option<&str>) -> Result<String, (u16, String)> {
    let mut req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("Content-Type", "application/json");
    if let Some(u) = impersonate {
        req = req.header("Impersonate-User", u);
    }
    let req = req
        .body(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec())
        .expect("request");
    match client.request::<serde_json::Value>(req).await {
        Ok(v) => Ok(v["status"]["userInfo"]["username"]
            .as_str()
            .unwrap_or("")
            .to_string()),
        Err(e) => Err(code(e)),
    }
}

#[tokio::test]
async fn static_tokens_and_impersonation() {
    let tokens = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(tokens.path(), "s3cret,alice,uid-1,\"dev\"\n").expect("write");
    let flag = format!("--token-auth-file={}", tokens.path().display());
    let server = common::TestServer::start_with(&["--authorization-mode=RBAC", &flag]);
    let admin = server.client().await;

    let alice = server.client_with_token("s3cret").await;
    assert_eq!(whoami(&alice, None).await, Ok("alice".to_string()));
    let wrong = server.client_with_token("wrong").await;
    assert_eq!(whoami(&wrong, None).await.map_err(|e| e.0), Err(401));

    // the admin may impersonate; alice may not
    assert_eq!(whoami(&admin, Some("bob")).await, Ok("bob".to_string()));
    let (c, msg) = whoami(&alice, Some("kubernetes-admin"))
        .await
        .expect_err("alice cannot impersonate");
    assert_eq!(c, 403);
    assert_eq!(
        msg,
        "users \"kubernetes-admin\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    // impersonating bob gives bob's (lack of) permissions
    let req = http::Request::get("/api/v1/namespaces/default/pods")
        .header("Impersonate-User", "bob")
        .body(Vec::new())
        .expect("request");
    let (c, _) = code(
        admin
            .request::<serde_json::Value>(req)
            .await
            .expect_err("bob cannot list pods"),
    );
    assert_eq!(c, 403);
}

#[tokio::test]
async fn pod_bound_service_account_tokens() {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/sa-rsa.key");
    let flags = [
        "--authorization-mode=RBAC".to_string(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
        format!("--service-account-key-file={key}"),
        format!("--service-account-signing-key-file={key}"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = common::TestServer::start_with(&flags);
    let admin = server.client().await;
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(admin.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "robot"}})).expect("sa"),
    )
    .await
    .expect("sa");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let pod = pods
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "runner"}, "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "busybox"}]}})).expect("pod"))
        .await
        .expect("pod");
    let uid = pod.metadata.uid.expect("uid");
    let req = http::Request::post("/api/v1/namespaces/default/serviceaccounts/robot/token")
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "runner", "uid": uid}}})).expect("json"))
        .expect("request");
    let tr: serde_json::Value = admin.request(req).await.expect("token request");
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    let token = tr["status"]["token"].as_str().expect("token").to_string();

    let robot = server.client_with_token(&token).await;
    assert_eq!(
        whoami(&robot, None).await,
        Ok("system:serviceaccount:default:robot".to_string())
    );
    // too short a lifetime is refused as upstream words it
    let short = http::Request::post("/api/v1/namespaces/default/serviceaccounts/robot/token")
        .header("Content-Type", "application/json")
        .body(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":10}}"#.to_vec())
        .expect("request");
    let (c, msg) = code(
        admin
            .request::<serde_json::Value>(short)
            .await
            .expect_err("too short"),
    );
    assert_eq!(c, 422);
    assert!(
        msg.contains("may not specify a duration less than 10 minutes"),
        "{msg}"
    );
    // the token dies with its pod
    pods.delete("runner", &kube::api::DeleteParams::default())
        .await
        .expect("delete pod");
    assert_eq!(whoami(&robot, None).await.map_err(|e| e.0), Err(401));
    // discovery publishes the verification key
    let jwks: serde_json::Value = admin
        .request(
            http::Request::get("/openid/v1/jwks")
                .body(Vec::new())
                .expect("req"),
        )
        .await
        .expect("jwks");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
}

#[tokio::test]
async fn token_review_uses_the_request_authenticators() {
    let tokens = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(tokens.path(), "t0k3n,carol,uid-3,\"ops\"\n").expect("write");
    let flag = format!("--token-auth-file={}", tokens.path().display());
    let server = common::TestServer::start_with(&[&flag]);
    let admin = server.client().await;
    let review = |token: &str| {
        http::Request::post("/apis/authentication.k8s.io/v1/tokenreviews")
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})).expect("json"))
            .expect("request")
    };
    let ok: serde_json::Value = admin.request(review("t0k3n")).await.expect("review");
    assert_eq!(ok["status"]["authenticated"], true);
    assert_eq!(ok["status"]["user"]["username"], "carol");
    assert_eq!(
        ok["status"]["user"]["groups"],
        json!(["ops", "system:authenticated"])
    );
    let bad: serde_json::Value = admin.request(review("nope")).await.expect("review");
    assert!(
        bad["status"]
            .get("authenticated")
            .is_none_or(|a| a == false)
    );
}

#[tokio::test]
async fn bootstrap_tokens_authenticate_while_their_secret_allows() {
    let server = common::TestServer::start_with(&[
        "--authorization-mode=RBAC",
        "--enable-bootstrap-token-auth",
        "--anonymous-auth=false",
    ]);
    let admin = server.client().await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(admin, "kube-system");
    let secret = |id: &str, expiration: &str| -> k8s_openapi::api::core::v1::Secret {
        let mut data = json!({
            "token-id": id, "token-secret": "0123456789abcdef",
            "usage-bootstrap-authentication": "true",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
        });
        if !expiration.is_empty() {
            data["expiration"] = json!(expiration);
        }
        serde_json::from_value(json!({
            "metadata": {"name": format!("bootstrap-token-{id}")},
            "type": "bootstrap.kubernetes.io/token", "stringData": data,
        }))
        .expect("secret")
    };
    let pp = PostParams::default();
    secrets
        .create(&pp, &secret("abcdef", ""))
        .await
        .expect("token");
    secrets
        .create(&pp, &secret("expird", "2020-01-01T00:00:00Z"))
        .await
        .expect("expired token");

    let joiner = server.client_with_token("abcdef.0123456789abcdef").await;
    assert_eq!(
        whoami(&joiner, None).await,
        Ok("system:bootstrap:abcdef".to_string())
    );
    for bad in [
        "abcdef.0123456789abcdee",
        "expird.0123456789abcdef",
        "nosuch.0123456789abcdef",
    ] {
        let c = server.client_with_token(bad).await;
        assert_eq!(whoami(&c, None).await.map_err(|e| e.0), Err(401), "{bad}");
    }
    // deleting the secret revokes the token
    secrets
        .delete("bootstrap-token-abcdef", &Default::default())
        .await
        .expect("delete");
    assert_eq!(whoami(&joiner, None).await.map_err(|e| e.0), Err(401));
}
