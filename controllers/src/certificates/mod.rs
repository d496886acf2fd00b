//! The certificates.k8s.io controllers (upstream's `pkg/controller/certificates`):
//!
//! - [`approver`] (`csrapproving`): approves kubelet client CSRs whose requester a
//!   SubjectAccessReview allows to ask for one;
//! - [`signer`] (`csrsigning`): issues certificates for approved CSRs of the built-in
//!   `kubernetes.io/*` signers from the CA files given by flags, with [`authority`]
//!   doing the X.509 work;
//! - [`cleaner`] (`csrcleaner`): deletes CSRs once upstream's retention windows pass.
//!
//! Here: what they share — CSR conditions, the parsed request ([`request`]), and the
//! loop upstream's `CertificateController` runs (informer -> queue -> handler for each
//! CSR that has no certificate yet).

pub mod approver;
pub mod authority;
pub mod cleaner;
pub mod request;
pub mod signer;

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};

use crate::workqueue::{WorkQueue, informer, key_of};

/// The built-in signer names.
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
pub const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

/// CSR condition types.
pub const APPROVED: &str = "Approved";
pub const DENIED: &str = "Denied";
pub const FAILED: &str = "Failed";

/// How many CSRs each controller works on at once (upstream starts 5 workers).
const WORKERS: usize = 5;

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

/// Whether the CSR carries an Approved and a Denied condition (upstream looks at the
/// condition types only).
pub fn approval(csr: &CertificateSigningRequest) -> (bool, bool) {
    let c = conditions(csr);
    (
        c.iter().any(|c| c.type_ == APPROVED),
        c.iter().any(|c| c.type_ == DENIED),
    )
}

/// Approved and not denied.
pub fn is_approved(csr: &CertificateSigningRequest) -> bool {
    matches!(approval(csr), (true, false))
}

/// Whether a condition of `type_` has status True.
pub fn has_true_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    conditions(csr)
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Whether a certificate has been issued.
pub fn is_issued(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// A True condition stamped now.
pub fn condition(type_: &str, reason: &str, message: &str) -> CertificateSigningRequestCondition {
    let now = Time(crate::common::now());
    CertificateSigningRequestCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Appends a condition to the CSR's status.
pub fn push_condition(csr: &mut CertificateSigningRequest, c: CertificateSigningRequestCondition) {
    csr.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(c);
}

/// Runs upstream's `CertificateController` loop: every CSR added or changed is queued,
/// and `handle` gets a fresh copy of each one that has no certificate yet. A handler
/// error re-queues the CSR with backoff.
pub async fn run_csr_controller<H, Fut>(
    client: kube::Client,
    name: &'static str,
    handle: H,
) -> anyhow::Result<()>
where
    H: Fn(CertificateSigningRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let queue = WorkQueue::new();
    let q = queue.clone();
    let store = informer(
        Api::<CertificateSigningRequest>::all(client),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(csr) | Event::InitApply(csr) = ev {
                q.add(key_of(csr));
            }
        },
    );
    store.wait_until_ready().await?;
    let handle = Arc::new(handle);
    queue
        .run(WORKERS, name, move |key| {
            let (store, handle) = (store.clone(), handle.clone());
            async move {
                let Some(csr) = store.get(&ObjectRef::new(&key)) else {
                    return Ok(());
                };
                if is_issued(&csr) {
                    return Ok(());
                }
                handle(CertificateSigningRequest::clone(&csr)).await
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csr(conditions: serde_json::Value) -> CertificateSigningRequest {
        serde_json::from_value(json!({
            "metadata": {"name": "c"},
            "spec": {"request": "", "signerName": KUBELET_SERVING},
            "status": {"conditions": conditions},
        }))
        .expect("csr")
    }

    #[test]
    fn upstream_controller_names() {
        for (full, alias) in [
            (
                "certificatesigningrequest-approving-controller",
                "csrapproving",
            ),
            ("certificatesigningrequest-signing-controller", "csrsigning"),
            ("certificatesigningrequest-cleaner-controller", "csrcleaner"),
            ("bootstrap-signer-controller", "bootstrapsigner"),
            ("token-cleaner-controller", "tokencleaner"),
        ] {
            assert_eq!(crate::canonical_name(full), alias);
            assert!(crate::controllers().iter().any(|c| c.name == alias));
        }
        let default_on = |name: &str| {
            crate::is_enabled(&["*".to_string()], name, {
                crate::controllers()
                    .iter()
                    .any(|c| c.name == name && c.enabled_by_default)
            })
        };
        assert!(default_on("csrsigning") && default_on("csrapproving") && default_on("csrcleaner"));
        assert!(!default_on("bootstrapsigner") && !default_on("tokencleaner"));
    }

    #[test]
    fn approval_looks_at_types() {
        assert!(is_approved(&csr(
            json!([{"type": "Approved", "status": "True"}])
        )));
        assert!(!is_approved(&csr(json!([
            {"type": "Approved", "status": "True"},
            {"type": "Denied", "status": "True"},
        ]))));
        assert!(!is_approved(&csr(json!([]))));
        let failed = csr(json!([{"type": "Failed", "status": "True"}]));
        assert!(has_true_condition(&failed, FAILED));
        assert!(!is_issued(&failed));
    }
}
