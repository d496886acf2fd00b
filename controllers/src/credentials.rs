//! `--use-service-account-credentials`: each controller acts as its own service account
//! in `kube-system` (`replicaset-controller`, `generic-garbage-collector`, ...), which
//! upstream's bootstrap RBAC policy binds to that controller's `system:controller:*`
//! role. As upstream, the controller's actions carry that identity, while reads the role
//! does not cover (upstream's shared informers list and watch as the controller manager
//! itself, which may list and watch everything) fall back to the manager's credentials:
//! a GET refused with 403 as the service account is sent again as the manager. Tokens come
//! from the TokenRequest API, are kept in a file the client re-reads, and are renewed
//! well before they expire.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

const NAMESPACE: &str = "kube-system";
const TOKEN_SECONDS: i64 = 3600;
const RENEW_EVERY: Duration = Duration::from_secs(20 * 60);

/// The service account upstream gives each controller (see its bootstrap policy).
pub fn service_account_name(controller: &str) -> String {
    match controller {
        "garbagecollector" => "generic-garbage-collector".into(),
        "endpoint" | "endpoints" => "endpoint-controller".into(),
        "serviceaccount" => "service-account-controller".into(),
        "replicationcontroller" => "replication-controller".into(),
        "daemonset" => "daemon-set-controller".into(),
        "podgc" | "pod-garbage-collector" => "pod-garbage-collector".into(),
        "root-ca-cert-publisher" => "root-ca-cert-publisher".into(),
        "nodelifecycle" | "node-lifecycle" | "taint-eviction-controller" | "taint-eviction" => {
            "node-controller".into()
        }
        "csrapproving" | "csrsigning" | "csrcleaner" => "certificate-controller".into(),
        "bootstrapsigner" => "bootstrap-signer".into(),
        "tokencleaner" => "token-cleaner".into(),
        "persistentvolume-binder" => "persistent-volume-binder".into(),
        "horizontalpodautoscaling" => "horizontal-pod-autoscaler".into(),
        other => format!("{}-controller", other.trim_end_matches("-controller")),
    }
}

/// Hands out one client per controller, each with its service account's token.
pub struct ServiceAccountClients {
    root: kube::Client,
    base: kube::Config,
    dir: PathBuf,
}

impl ServiceAccountClients {
    /// `root` (the controller manager's own identity) creates the service accounts and
    /// requests their tokens; `base` gives the server and its CA.
    pub fn new(root: kube::Client, base: kube::Config) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("kube-controller-manager-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ServiceAccountClients { root, base, dir })
    }

    /// A client acting as `controller`'s service account, its token kept fresh.
    pub async fn client_for(&self, controller: &str) -> anyhow::Result<kube::Client> {
        let sa = service_account_name(controller);
        let accounts: Api<ServiceAccount> = Api::namespaced(self.root.clone(), NAMESPACE);
        if accounts.get_opt(&sa).await?.is_none() {
            let obj: ServiceAccount = serde_json::from_value(serde_json::json!({
                "metadata": {"name": sa, "namespace": NAMESPACE}
            }))?;
            match accounts.create(&PostParams::default(), &obj).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("creating service account {NAMESPACE}/{sa}"));
                }
            }
        }
        let file = self.dir.join(format!("{sa}.token"));
        write_token(&accounts, &sa, &file).await?;
        tokio::spawn(renew(accounts, sa.clone(), file.clone()));
        let mut config = self.base.clone();
        config.auth_info = kube::config::AuthInfo {
            token_file: Some(file.display().to_string()),
            ..Default::default()
        };
        let acting = kube::Client::try_from(config.clone())
            .with_context(|| format!("building the client of {sa}"))?;
        let reading = self.root.clone();
        let route = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let (acting, reading) = (acting.clone(), reading.clone());
            async move {
                if req.method() != http::Method::GET {
                    return acting.send(req).await;
                }
                let again = copy_get(&req);
                let reply = acting.send(req).await?;
                match again {
                    Some(again) if reply.status() == http::StatusCode::FORBIDDEN => {
                        reading.send(again).await
                    }
                    _ => Ok(reply),
                }
            }
        });
        Ok(kube::Client::new(route, config.default_namespace))
    }
}

/// A copy of a bodiless GET, to send again under other credentials.
fn copy_get(req: &http::Request<kube::client::Body>) -> Option<http::Request<kube::client::Body>> {
    let mut b = http::Request::builder()
        .method(http::Method::GET)
        .uri(req.uri().clone())
        .version(req.version());
    for (k, v) in req.headers() {
        b = b.header(k, v);
    }
    b.body(kube::client::Body::empty()).ok()
}

async fn write_token(accounts: &Api<ServiceAccount>, sa: &str, file: &Path) -> anyhow::Result<()> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(TOKEN_SECONDS),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .with_context(|| format!("requesting a token for {NAMESPACE}/{sa}"))?
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .with_context(|| format!("the token request for {NAMESPACE}/{sa} returned no token"))?;
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, token.as_bytes())?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

async fn renew(accounts: Api<ServiceAccount>, sa: String, file: PathBuf) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let mut wait = Duration::from_secs(1);
        while let Err(e) = write_token(&accounts, &sa, &file).await {
            tracing::warn!(service_account = %sa, error = %format!("{e:#}"), "renewing the token failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_act_as_upstreams_service_accounts() {
        for (controller, sa) in [
            ("replicaset", "replicaset-controller"),
            ("deployment", "deployment-controller"),
            ("garbagecollector", "generic-garbage-collector"),
            ("endpoint", "endpoint-controller"),
            (
                "endpointslicemirroring",
                "endpointslicemirroring-controller",
            ),
            ("daemonset", "daemon-set-controller"),
            ("podgc", "pod-garbage-collector"),
            ("serviceaccount", "service-account-controller"),
            ("replicationcontroller", "replication-controller"),
            ("ttl-after-finished", "ttl-after-finished-controller"),
            ("root-ca-cert-publisher", "root-ca-cert-publisher"),
            ("taint-eviction-controller", "node-controller"),
            ("csrsigning", "certificate-controller"),
            ("bootstrapsigner", "bootstrap-signer"),
            ("tokencleaner", "token-cleaner"),
            ("persistentvolume-binder", "persistent-volume-binder"),
            ("pvc-protection", "pvc-protection-controller"),
            ("horizontalpodautoscaling", "horizontal-pod-autoscaler"),
            ("resourcequota", "resourcequota-controller"),
            (
                "clusterrole-aggregation",
                "clusterrole-aggregation-controller",
            ),
            ("disruption", "disruption-controller"),
        ] {
            assert_eq!(service_account_name(controller), sa);
        }
    }
}
