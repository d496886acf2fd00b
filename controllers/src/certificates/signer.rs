//! The CSR signing controller (upstream's `csrsigning`,
//! `certificatesigningrequest-signing-controller`): issues certificates for approved,
//! not failed CSRs of the built-in signers, each from the CA its flags name.
//!
//! `--cluster-signing-cert-file`/`--cluster-signing-key-file` serve all four signers
//! unless any per-signer pair (`--cluster-signing-kubelet-serving-cert-file`, ...) is
//! given, in which case only the signers with their own files run, as upstream. Without
//! any files the controller does not run. A request its signer refuses (wrong subject,
//! names or usages for that signer) gets a `Failed` condition with reason
//! `SignerValidationFailure`; an issued certificate goes to `status.certificate` through
//! the `status` subresource.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use super::authority::{Authority, Policy};
use super::{
    FAILED, KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING, LEGACY_UNKNOWN,
    condition, has_true_condition, is_approved, push_condition, request,
};
use crate::{Context, Options};

/// How far certificates are backdated (must stay below [`MIN_DURATION`]).
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Certificates shorter than this are not shortened by the backdate.
const SHORT: Duration = Duration::from_secs(8 * 3600);
/// The shortest lifetime `spec.expirationSeconds` can ask for (twice the backdate).
const MIN_DURATION: Duration = Duration::from_secs(10 * 60);

/// The CA files each signer uses, from the flags; an empty list means the controller does
/// not run.
pub fn signer_files(o: &Options) -> anyhow::Result<Vec<(&'static str, PathBuf, PathBuf)>> {
    let specific = [
        (
            KUBELET_SERVING,
            &o.cluster_signing_kubelet_serving_cert_file,
            &o.cluster_signing_kubelet_serving_key_file,
        ),
        (
            KUBE_APISERVER_CLIENT_KUBELET,
            &o.cluster_signing_kubelet_client_cert_file,
            &o.cluster_signing_kubelet_client_key_file,
        ),
        (
            KUBE_APISERVER_CLIENT,
            &o.cluster_signing_kube_apiserver_client_cert_file,
            &o.cluster_signing_kube_apiserver_client_key_file,
        ),
        (
            LEGACY_UNKNOWN,
            &o.cluster_signing_legacy_unknown_cert_file,
            &o.cluster_signing_legacy_unknown_key_file,
        ),
    ];
    let any_specific = specific.iter().any(|(_, c, k)| c.is_some() || k.is_some());
    let missing_single =
        o.cluster_signing_cert_file.is_none() || o.cluster_signing_key_file.is_none();
    if missing_single && !any_specific {
        return Ok(vec![]);
    }
    if !missing_single && any_specific {
        anyhow::bail!("cannot specify default and per controller certs at the same time");
    }
    let mut out = vec![];
    for (signer, cert, key) in specific {
        let (cert, key) = if any_specific {
            (cert.clone(), key.clone())
        } else {
            (
                o.cluster_signing_cert_file.clone(),
                o.cluster_signing_key_file.clone(),
            )
        };
        match (cert, key) {
            (None, None) => tracing::info!(
                signer,
                "Skipping CSR signer controller because specific files were specified for other signers and not this one"
            ),
            (Some(c), Some(k)) => out.push((signer, c, k)),
            _ => anyhow::bail!(
                "failed to start {signer} certificate controller: both a certificate and a key file are needed"
            ),
        }
    }
    Ok(out)
}

/// The lifetime to issue: the requested `expirationSeconds` within [10 minutes, TTL].
pub fn duration(expiration_seconds: Option<i32>, cert_ttl: Duration) -> Duration {
    let Some(secs) = expiration_seconds else {
        return cert_ttl;
    };
    let requested = Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    if requested > cert_ttl {
        cert_ttl
    } else if requested < MIN_DURATION {
        MIN_DURATION
    } else {
        requested
    }
}

struct Signer {
    client: kube::Client,
    authorities: HashMap<&'static str, Authority>,
    cert_ttl: Duration,
}

/// Entry point of `csrsigning`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let files = signer_files(&ctx.options)?;
        if files.is_empty() {
            tracing::info!("Skipping CSR signer controller because no csr cert/key was specified");
            return Ok(());
        }
        let mut authorities = HashMap::new();
        for (signer, cert, key) in files {
            let ca = Authority::load(&cert, &key)
                .with_context(|| format!("failed to start {signer} certificate controller"))?;
            tracing::info!(signer, cert = %cert.display(), not_after = %ca.not_after(), "signing with CA");
            authorities.insert(signer, ca);
        }
        let signer = Arc::new(Signer {
            client: ctx.client.clone(),
            authorities,
            cert_ttl: ctx.options.cluster_signing_duration,
        });
        super::run_csr_controller(ctx.client.clone(), "csrsigning", move |csr| {
            let signer = signer.clone();
            async move { signer.handle(csr).await }
        })
        .await
    })
}

impl Signer {
    async fn handle(&self, mut csr: CertificateSigningRequest) -> anyhow::Result<()> {
        if !is_approved(&csr) || has_true_condition(&csr, FAILED) {
            return Ok(());
        }
        let Some(authority) = self.authorities.get(csr.spec.signer_name.as_str()) else {
            return Ok(());
        };
        let name = csr.name_any();
        let req = request::parse(&csr.spec.request.0)
            .map_err(|e| anyhow::anyhow!("unable to parse csr {name:?}: {e}"))?;
        let usages = csr.spec.usages.clone().unwrap_or_default();
        let api: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        if let Err(msg) = request::validate_for_signer(&csr.spec.signer_name, &req, &usages) {
            tracing::info!(csr = %name, reason = %msg, "signer refuses the request");
            push_condition(&mut csr, condition(FAILED, "SignerValidationFailure", &msg));
            api.replace_status(&name, &PostParams::default(), &csr)
                .await
                .context("error adding failure condition for csr")?;
            return Ok(());
        }
        let policy = Policy {
            ttl: duration(csr.spec.expiration_seconds, self.cert_ttl),
            usages,
            backdate: BACKDATE,
            short: SHORT,
        };
        let pem = authority
            .sign(&req, &policy, crate::common::now())
            .map_err(|e| anyhow::anyhow!("error auto signing csr: {e}"))?;
        csr.status.get_or_insert_with(Default::default).certificate =
            Some(ByteString(pem.into_bytes()));
        api.replace_status(&name, &PostParams::default(), &csr)
            .await
            .context("error updating signature for csr")?;
        tracing::info!(csr = %name, signer = %csr.spec.signer_name, "issued certificate");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn expiration_seconds_are_clamped() {
        let ttl = Duration::from_secs(8760 * 3600);
        assert_eq!(duration(None, ttl), ttl);
        assert_eq!(duration(Some(3600), ttl), Duration::from_secs(3600));
        assert_eq!(duration(Some(60), ttl), MIN_DURATION);
        assert_eq!(duration(Some(i32::MAX), ttl), ttl);
        assert_eq!(duration(Some(-5), ttl), MIN_DURATION);
    }

    fn options(args: &[&str]) -> Options {
        Options::try_parse_from(
            std::iter::once("kube-controller-manager").chain(args.iter().copied()),
        )
        .expect("flags")
    }

    #[test]
    fn files_per_signer() {
        assert!(signer_files(&options(&[])).expect("ok").is_empty());
        let all = signer_files(&options(&[
            "--cluster-signing-cert-file=/ca.crt",
            "--cluster-signing-key-file=/ca.key",
        ]))
        .expect("ok");
        assert_eq!(all.len(), 4);
        let one = signer_files(&options(&[
            "--cluster-signing-kubelet-serving-cert-file=/s.crt",
            "--cluster-signing-kubelet-serving-key-file=/s.key",
        ]))
        .expect("ok");
        assert_eq!(
            one,
            [(
                KUBELET_SERVING,
                PathBuf::from("/s.crt"),
                PathBuf::from("/s.key")
            )]
        );
        assert!(
            signer_files(&options(&[
                "--cluster-signing-cert-file=/ca.crt",
                "--cluster-signing-key-file=/ca.key",
                "--cluster-signing-legacy-unknown-cert-file=/l.crt",
            ]))
            .is_err()
        );
    }
}
