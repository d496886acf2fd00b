//! The CSR cleaner (upstream's `csrcleaner`, `certificatesigningrequest-cleaner-controller`):
//! once an hour it deletes the CSRs that are done with, as upstream — issued ones an hour
//! after approval, denied or failed ones an hour after that condition, pending ones (no
//! condition at all) a day after creation, and any whose issued certificate has expired.
//! Without the guard rails, automatic requests and approvals would pile CSRs up forever.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::watcher;

use super::{APPROVED, DENIED, FAILED, is_issued};
use crate::Context;
use crate::workqueue::informer;

const POLLING_INTERVAL: Duration = Duration::from_secs(3600);
const APPROVED_EXPIRATION: Duration = Duration::from_secs(3600);
const DENIED_EXPIRATION: Duration = Duration::from_secs(3600);
const PENDING_EXPIRATION: Duration = Duration::from_secs(24 * 3600);

/// Entry point of `csrcleaner`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
        let store = informer(api.clone(), watcher::Config::default(), |_| {});
        store.wait_until_ready().await?;
        loop {
            for csr in store.state() {
                let Some(why) = reason_to_delete(&csr, Timestamp::now()) else {
                    continue;
                };
                tracing::info!(csr = %csr.name_any(), why, "cleaning CSR");
                match api.delete(&csr.name_any(), &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(csr = %csr.name_any(), error = %e, "unable to delete CSR")
                    }
                }
            }
            tokio::time::sleep(POLLING_INTERVAL).await;
        }
    })
}

/// Whether `t` is set and more than `d` before `now`.
fn older_than(t: Option<&Time>, d: Duration, now: Timestamp) -> bool {
    t.is_some_and(|t| {
        now.duration_since(t.0)
            .try_into()
            .is_ok_and(|age: Duration| age > d)
    })
}

/// Why the CSR should go now, or None to keep it.
pub fn reason_to_delete(csr: &CertificateSigningRequest, now: Timestamp) -> Option<&'static str> {
    let conditions = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let issued = is_issued(csr);
    let past = |type_: &str, d: Duration| {
        conditions
            .iter()
            .any(|c| c.type_ == type_ && older_than(c.last_update_time.as_ref(), d, now))
    };
    if issued && past(APPROVED, APPROVED_EXPIRATION) {
        return Some("approved and issued more than an hour ago");
    }
    if past(DENIED, DENIED_EXPIRATION) {
        return Some("denied more than an hour ago");
    }
    if past(FAILED, DENIED_EXPIRATION) {
        return Some("failed more than an hour ago");
    }
    if conditions.is_empty()
        && older_than(
            csr.metadata.creation_timestamp.as_ref(),
            PENDING_EXPIRATION,
            now,
        )
    {
        return Some("pending for more than a day");
    }
    if issued && conditions.iter().any(|c| c.type_ == APPROVED) && certificate_expired(csr, now) {
        return Some("its certificate has expired");
    }
    None
}

/// Whether the issued certificate's NotAfter has passed (an unreadable one has not).
fn certificate_expired(csr: &CertificateSigningRequest, now: Timestamp) -> bool {
    let Some(cert) = csr.status.as_ref().and_then(|s| s.certificate.as_ref()) else {
        return false;
    };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&cert.0) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    now.as_second() > cert.validity().not_after.timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csr(
        created: &str,
        conditions: serde_json::Value,
        cert: Option<&str>,
    ) -> CertificateSigningRequest {
        let mut status = json!({"conditions": conditions});
        if let Some(c) = cert {
            use base64::Engine;
            status["certificate"] =
                json!(base64::engine::general_purpose::STANDARD.encode(c.as_bytes()));
        }
        serde_json::from_value(json!({
            "metadata": {"name": "c", "creationTimestamp": created},
            "spec": {"request": "", "signerName": "kubernetes.io/legacy-unknown"},
            "status": status,
        }))
        .expect("csr")
    }

    fn cond(type_: &str, at: &str) -> serde_json::Value {
        json!({"type": type_, "status": "True", "lastUpdateTime": at})
    }

    fn now() -> Timestamp {
        "2030-01-02T12:00:00Z".parse().expect("time")
    }

    /// A certificate (PEM) valid until `not_after`.
    fn cert_until(not_after: (i32, u8, u8)) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(vec!["x".to_string()]).expect("params");
        p.not_before = rcgen::date_time_ymd(2029, 1, 1);
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        p.self_signed(&key).expect("cert").pem()
    }

    #[test]
    fn retention_windows() {
        let valid = cert_until((2031, 1, 1));
        let created = "2030-01-02T11:00:00Z";
        // approved and issued: an hour after the approval
        let recent = csr(
            created,
            json!([cond("Approved", "2030-01-02T11:30:00Z")]),
            Some(&valid),
        );
        assert_eq!(reason_to_delete(&recent, now()), None);
        let old = csr(
            created,
            json!([cond("Approved", "2030-01-02T10:30:00Z")]),
            Some(&valid),
        );
        assert!(reason_to_delete(&old, now()).is_some());
        // approved but not issued stays
        let unissued = csr(
            created,
            json!([cond("Approved", "2030-01-01T00:00:00Z")]),
            None,
        );
        assert_eq!(reason_to_delete(&unissued, now()), None);
        // denied and failed: an hour
        let denied = csr(
            created,
            json!([cond("Denied", "2030-01-02T10:59:00Z")]),
            None,
        );
        assert!(reason_to_delete(&denied, now()).is_some());
        let failed = csr(
            created,
            json!([cond("Failed", "2030-01-02T11:01:00Z")]),
            None,
        );
        assert_eq!(reason_to_delete(&failed, now()), None);
        let failed = csr(
            created,
            json!([cond("Failed", "2030-01-02T10:00:00Z")]),
            None,
        );
        assert!(reason_to_delete(&failed, now()).is_some());
        // a condition without a time never ages
        let untimed = csr(created, json!([{"type": "Denied", "status": "True"}]), None);
        assert_eq!(reason_to_delete(&untimed, now()), None);
        // pending: a day after creation
        let pending = csr("2030-01-01T13:00:00Z", json!([]), None);
        assert_eq!(reason_to_delete(&pending, now()), None);
        let pending = csr("2030-01-01T11:00:00Z", json!([]), None);
        assert!(reason_to_delete(&pending, now()).is_some());
        // issued and expired, however recent the approval
        let expired = cert_until((2030, 1, 1));
        let gone = csr(
            created,
            json!([cond("Approved", "2030-01-02T11:59:00Z")]),
            Some(&expired),
        );
        assert_eq!(
            reason_to_delete(&gone, now()),
            Some("its certificate has expired")
        );
    }
}
