//! The CSR approving controller (upstream's `csrapproving`,
//! `certificatesigningrequest-approving-controller`): approves a kubelet's client
//! certificate request (signer `kubernetes.io/kube-apiserver-client-kubelet`, subject
//! `system:node:<name>` in `system:nodes`, client usages) when a SubjectAccessReview says
//! its requester may `create` `certificatesigningrequests/selfnodeclient` (a node renewing
//! its own certificate) or `certificatesigningrequests/nodeclient` (e.g. a bootstrap
//! token), as upstream. The `Approved` condition (reason `AutoApproved`) is written
//! through the `approval` subresource. It never denies: what it does not recognize or
//! may not approve is left for someone else.

use std::sync::Arc;

use anyhow::Context as _;
use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use super::request::{self, CertRequest};
use super::{APPROVED, KUBE_APISERVER_CLIENT_KUBELET, approval, condition, push_condition};
use crate::Context;

/// One kind of request the approver knows, and the permission that approves it.
struct Recognizer {
    recognize: fn(&CertificateSigningRequest, &CertRequest) -> bool,
    subresource: &'static str,
    message: &'static str,
}

const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        recognize: is_self_node_client_cert,
        subresource: "selfnodeclient",
        message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
    },
    Recognizer {
        recognize: is_node_client_cert,
        subresource: "nodeclient",
        message: "Auto approving kubelet client certificate after SubjectAccessReview.",
    },
];

/// A kubelet client certificate request for the kubelet client signer.
pub fn is_node_client_cert(csr: &CertificateSigningRequest, req: &CertRequest) -> bool {
    csr.spec.signer_name == KUBE_APISERVER_CLIENT_KUBELET
        && request::validate_kubelet_client(req, csr.spec.usages.as_deref().unwrap_or_default())
            .is_ok()
}

/// A node asking for its own client certificate (the requester is the subject).
pub fn is_self_node_client_cert(csr: &CertificateSigningRequest, req: &CertRequest) -> bool {
    csr.spec.username.as_deref() == Some(req.common_name.as_str()) && is_node_client_cert(csr, req)
}

/// Entry point of `csrapproving`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let client = ctx.client.clone();
        super::run_csr_controller(ctx.client.clone(), "csrapproving", move |csr| {
            let client = client.clone();
            async move { handle(&client, csr).await }
        })
        .await
    })
}

async fn handle(client: &kube::Client, mut csr: CertificateSigningRequest) -> anyhow::Result<()> {
    let (approved, denied) = approval(&csr);
    if approved || denied {
        return Ok(());
    }
    let name = csr.name_any();
    let req = request::parse(&csr.spec.request.0)
        .map_err(|e| anyhow::anyhow!("unable to parse csr {name:?}: {e}"))?;
    let mut tried = vec![];
    for r in RECOGNIZERS {
        if !(r.recognize)(&csr, &req) {
            continue;
        }
        tried.push(r.subresource);
        if !authorize(client, &csr, r.subresource).await? {
            continue;
        }
        push_condition(&mut csr, condition(APPROVED, "AutoApproved", r.message));
        update_approval(client, &name, &csr).await?;
        tracing::info!(csr = %name, permission = r.subresource, "auto-approved");
        return Ok(());
    }
    if !tried.is_empty() {
        // retried with backoff, as upstream's ignorable error: the permission may come
        anyhow::bail!(
            "recognized csr {name:?} as {tried:?} but subject access review was not approved"
        );
    }
    Ok(())
}

/// Asks the API server whether the CSR's requester may create the given subresource.
async fn authorize(
    client: &kube::Client,
    csr: &CertificateSigningRequest,
    subresource: &str,
) -> anyhow::Result<bool> {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(subresource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviewed = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .context("creating a SubjectAccessReview")?;
    Ok(reviewed.status.is_some_and(|s| s.allowed))
}

/// Writes the conditions through the `approval` subresource, as `kubectl certificate
/// approve` does.
async fn update_approval(
    client: &kube::Client,
    name: &str,
    csr: &CertificateSigningRequest,
) -> anyhow::Result<()> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    api.replace_subresource("approval", name, &PostParams::default(), csr)
        .await
        .map(|_| ())
        .context("error updating approval for csr")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificates::request::tests::csr_pem;
    use serde_json::json;

    fn csr(username: &str, signer: &str, usages: &[&str]) -> CertificateSigningRequest {
        serde_json::from_value(json!({
            "metadata": {"name": "c"},
            "spec": {"request": "", "signerName": signer, "usages": usages,
                     "username": username},
        }))
        .expect("csr")
    }

    #[test]
    fn recognizes_kubelet_client_requests() {
        let req = request::parse(csr_pem("system:node:n1", &["system:nodes"], vec![]).as_bytes())
            .expect("csr");
        let usages = ["digital signature", "client auth"];
        let own = csr("system:node:n1", KUBE_APISERVER_CLIENT_KUBELET, &usages);
        assert!(is_self_node_client_cert(&own, &req));
        assert!(is_node_client_cert(&own, &req));
        let bootstrap = csr(
            "system:bootstrap:abcdef",
            KUBE_APISERVER_CLIENT_KUBELET,
            &usages,
        );
        assert!(!is_self_node_client_cert(&bootstrap, &req));
        assert!(is_node_client_cert(&bootstrap, &req));
        let other_signer = csr("system:node:n1", super::super::KUBELET_SERVING, &usages);
        assert!(!is_node_client_cert(&other_signer, &req));
        let serving = csr(
            "system:node:n1",
            KUBE_APISERVER_CLIENT_KUBELET,
            &["server auth"],
        );
        assert!(!is_node_client_cert(&serving, &req));
    }
}
