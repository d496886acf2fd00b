//! The CSR approving and signing controllers against a real API server: an approved
//! request is issued a certificate by the CA of `--cluster-signing-cert-file`, a request
//! its signer refuses is marked Failed, and a kubelet client request from someone allowed
//! to ask for node client certificates is approved automatically (and only then).

mod kcm;

use std::path::Path;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, PostParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::json;

use kcm::{Kcm, wait_for};

/// Writes a signing CA (distinct from the API server's) to `dir`; returns its PEM.
fn write_signing_ca(dir: &Path) -> String {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name
        .push(DnType::CommonName, "cluster-signing-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).expect("ca");
    std::fs::write(dir.join("signing-ca.crt"), cert.pem()).expect("write");
    std::fs::write(dir.join("signing-ca.key"), key.serialize_pem()).expect("write");
    cert.pem()
}

/// Starts a controller manager running `controllers` that signs with the CA in `dir`.
fn start_kcm(server: &testenv::TestServer, controllers: &str) -> Kcm {
    let dir = server.dir.path();
    let cert = format!(
        "--cluster-signing-cert-file={}",
        dir.join("signing-ca.crt").display()
    );
    let key = format!(
        "--cluster-signing-key-file={}",
        dir.join("signing-ca.key").display()
    );
    let controllers = format!("--controllers={controllers}");
    Kcm::start(
        server,
        "kcm",
        &["--leader-elect=false", &controllers, &cert, &key],
    )
}

/// A PEM certificate request for `cn` in `orgs`.
fn csr_pem(cn: &str, orgs: &[&str]) -> String {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    p.serialize_request(&key).expect("csr").pem().expect("pem")
}

fn csr_object(name: &str, pem: &str, signer: &str, usages: &[&str]) -> serde_json::Value {
    use base64::Engine;
    json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": signer,
            "usages": usages,
        },
    })
}

async fn create_csr(client: &kube::Client, obj: serde_json::Value) {
    let csr: CertificateSigningRequest = serde_json::from_value(obj).expect("csr");
    let api = Api::<CertificateSigningRequest>::all(client.clone());
    // a binding made just before may take a moment to reach the authorizer
    wait_for(30, "the CSR to be created", || async {
        match api.create(&PostParams::default(), &csr).await {
            Ok(_) => Some(()),
            Err(kube::Error::Api(s)) if s.code == 403 => None,
            Err(e) => panic!("create csr: {e}"),
        }
    })
    .await;
}

/// Approves as `kubectl certificate approve` does: an Approved condition through the
/// `approval` subresource.
async fn approve(client: &kube::Client, name: &str) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut csr = serde_json::to_value(api.get(name).await.expect("get csr")).expect("json");
    csr["status"]["conditions"] = json!([{
        "type": "Approved", "status": "True", "reason": "KubectlApprove",
        "message": "This CSR was approved by kubectl certificate approve.",
        "lastUpdateTime": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }]);
    let pp = PostParams::default();
    api.replace_subresource("approval", name, &pp, &csr)
        .await
        .expect("approve through the approval subresource");
}

async fn issued_certificate(client: &kube::Client, name: &str) -> String {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    wait_for(60, "the certificate to be issued", || async {
        let csr = api.get(name).await.ok()?;
        let cert = csr.status?.certificate?;
        String::from_utf8(cert.0).ok()
    })
    .await
}

fn condition(csr: &CertificateSigningRequest, type_: &str) -> Option<(String, String)> {
    let c = csr
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

#[tokio::test]
async fn approved_request_is_signed_by_the_cluster_signing_ca() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let ca_pem = write_signing_ca(server.dir.path());
    let kcm = start_kcm(&server, "csrsigning");
    let mut obj = csr_object(
        "alice",
        &csr_pem("alice", &["devs"]),
        "kubernetes.io/kube-apiserver-client",
        &["digital signature", "client auth"],
    );
    obj["spec"]["expirationSeconds"] = json!(3600);
    create_csr(&client, obj).await;
    approve(&client, "alice").await;
    let before = k8s_openapi::jiff::Timestamp::now().as_second();
    let pem = issued_certificate(&client, "alice").await;

    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    let cert = block.parse_x509().expect("certificate");
    let (_, ca_block) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).expect("ca pem");
    let ca = ca_block.parse_x509().expect("ca");
    assert!(
        cert.verify_signature(Some(ca.public_key())).is_ok(),
        "chains to the signing CA\n{}",
        kcm.log()
    );
    assert_eq!(cert.issuer(), ca.subject());
    assert_eq!(cert.subject().to_string(), "O=devs, CN=alice");
    let eku = cert
        .extended_key_usage()
        .expect("eku")
        .expect("eku present");
    assert!(eku.value.client_auth && !eku.value.server_auth);
    assert!(
        !cert
            .basic_constraints()
            .expect("bc")
            .expect("bc present")
            .value
            .ca
    );
    // backdated five minutes; a short certificate keeps its whole requested hour
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    assert!(
        (before - 300 - 60..=before - 300 + 60).contains(&not_before),
        "not before {not_before}, signed around {before}"
    );
    assert_eq!(not_after - not_before, 3600 + 300);
}

#[tokio::test]
async fn signer_marks_a_request_it_refuses_failed() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    write_signing_ca(server.dir.path());
    let _kcm = start_kcm(&server, "csrsigning");
    create_csr(
        &client,
        csr_object(
            "serving-for-client-signer",
            &csr_pem("bob", &[]),
            "kubernetes.io/kube-apiserver-client",
            &["server auth"],
        ),
    )
    .await;
    approve(&client, "serving-for-client-signer").await;
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let (reason, message) = wait_for(60, "the Failed condition", || async {
        condition(&api.get("serving-for-client-signer").await.ok()?, "Failed")
    })
    .await;
    assert_eq!(reason, "SignerValidationFailure");
    assert_eq!(message, "invalid usage for client certificate: server auth");
    let csr = api.get("serving-for-client-signer").await.expect("get");
    assert!(csr.status.and_then(|s| s.certificate).is_none());
}

/// Lets `subject` (a `User` or `Group`) do what the cluster role `role` allows.
async fn bind(client: &kube::Client, name: &str, role: &str, kind: &str, subject: &str) {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let b: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
    }))
    .expect("binding");
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &b)
        .await
        .expect("create binding");
}

/// A kubelet client request, created by `user` in `groups` (who is also named as the
/// requester: the API server records the creator there).
fn kubelet_client_csr(name: &str, node: &str, user: &str, groups: &[&str]) -> serde_json::Value {
    let mut obj = csr_object(
        name,
        &csr_pem(&format!("system:node:{node}"), &["system:nodes"]),
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
    );
    obj["spec"]["username"] = json!(user);
    obj["spec"]["groups"] = json!(groups);
    obj
}

#[tokio::test]
async fn kubelet_client_request_is_auto_approved_when_allowed() {
    let server = testenv::TestServer::start_with(&["--authorization-mode=RBAC"]);
    let admin = server.client().await;
    write_signing_ca(server.dir.path());
    bind(
        &admin,
        "bootstrappers-create-csrs",
        "system:node-bootstrapper",
        "Group",
        "system:bootstrappers",
    )
    .await;
    bind(
        &admin,
        "bootstrappers-nodeclient",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "Group",
        "system:bootstrappers",
    )
    .await;
    bind(
        &admin,
        "mallory-create-csrs",
        "system:node-bootstrapper",
        "User",
        "mallory",
    )
    .await;
    let kcm = start_kcm(&server, "csrapproving,csrsigning");

    // one group: testenv client certificates carry a single organization
    let groups = ["system:bootstrappers"];
    let bootstrap = server.client_as("system:bootstrap:abcdef", &groups).await;
    create_csr(
        &bootstrap,
        kubelet_client_csr("node-n1", "n1", "system:bootstrap:abcdef", &groups),
    )
    .await;
    let mallory = server.client_as("mallory", &["system:authenticated"]).await;
    create_csr(
        &mallory,
        kubelet_client_csr("node-n2", "n2", "mallory", &["system:authenticated"]),
    )
    .await;

    let api: Api<CertificateSigningRequest> = Api::all(admin.clone());
    let (reason, message) = wait_for(60, "the kubelet client CSR to be approved", || async {
        condition(&api.get("node-n1").await.ok()?, "Approved")
    })
    .await;
    assert_eq!(reason, "AutoApproved");
    assert_eq!(
        message,
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );
    let pem = issued_certificate(&admin, "node-n1").await;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    let cert = block.parse_x509().expect("certificate");
    assert_eq!(
        cert.subject().to_string(),
        "O=system:nodes, CN=system:node:n1"
    );

    // mallory may create CSRs but not node client ones: recognized, never approved
    wait_for(
        60,
        "the approver to be refused for mallory's CSR",
        || async {
            kcm.log()
                .contains("subject access review was not approved")
                .then_some(())
        },
    )
    .await;
    let n2 = api.get("node-n2").await.expect("get");
    assert_eq!(condition(&n2, "Approved"), None, "{}", kcm.log());
}
