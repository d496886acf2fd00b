//! The root CA certificate publisher (upstream's `root-ca-certificate-publisher-controller`,
//! `pkg/controller/certificates/rootcacertpublisher`): every active namespace has a
//! `kube-root-ca.crt` ConfigMap whose `ca.crt` is the cluster's root CA, recreated when
//! deleted and rewritten when changed.
//!
//! The CA comes from `--root-ca-file`, or else from the kubeconfig's cluster CA, as
//! upstream falls back to the client's CA data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine;
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::Context;
use crate::common::{self, ReconcileError};

pub const CONFIGMAP: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Shared {
    client: kube::Client,
    ca: String,
}

/// Entry point of `root-ca-cert-publisher`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let ca = root_ca(&ctx.options)?;
        let client = ctx.client.clone();
        let cms: Api<ConfigMap> = Api::all(client.clone());
        let by_name = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP}"));
        Controller::new(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .watches(cms, by_name, |cm: ConfigMap| {
            cm.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .run(reconcile, error_policy, Arc::new(Shared { client, ca }))
        .for_each(|_| async {})
        .await;
        Ok(())
    })
}

/// The CA bundle to publish.
fn root_ca(o: &crate::Options) -> anyhow::Result<String> {
    if let Some(path) = &o.root_ca_file {
        return std::fs::read_to_string(path)
            .with_context(|| format!("error reading root-ca-file {}", path.display()));
    }
    let path = o
        .kubeconfig
        .as_ref()
        .context("no --root-ca-file and no --kubeconfig to take the CA from")?;
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let current = kc.current_context.clone().unwrap_or_default();
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster_name.as_ref())
        .or(kc.clusters.first())
        .and_then(|c| c.cluster.clone())
        .context("kubeconfig has no cluster")?;
    if let Some(data) = cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD.decode(data.trim())?;
        return Ok(String::from_utf8(pem)?);
    }
    if let Some(file) = cluster.certificate_authority {
        return Ok(std::fs::read_to_string(file)?);
    }
    anyhow::bail!("no --root-ca-file and the kubeconfig has no certificate authority")
}

fn error_policy(ns: Arc<Namespace>, err: &ReconcileError, _: Arc<Shared>) -> Action {
    tracing::warn!(namespace = %ns.name_any(), error = %err, "root CA publishing failed");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(ns: Arc<Namespace>, sh: Arc<Shared>) -> Result<Action, ReconcileError> {
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ConfigMap> = Api::namespaced(sh.client.clone(), &name);
    let data: BTreeMap<String, String> = [(KEY.to_string(), sh.ca.clone())].into();
    let result = match api.get_opt(CONFIGMAP).await? {
        None => {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some(CONFIGMAP.into());
            cm.metadata.annotations =
                Some([(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string())].into());
            cm.data = Some(data);
            api.create(&PostParams::default(), &cm).await.map(|_| ())
        }
        Some(mut cm) => {
            let described = cm
                .annotations()
                .get(DESCRIPTION_ANNOTATION)
                .is_some_and(|d| !d.is_empty());
            if cm.data.as_ref() == Some(&data) && described {
                return Ok(Action::await_change());
            }
            cm.data = Some(data);
            cm.annotations_mut()
                .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
            api.replace(CONFIGMAP, &PostParams::default(), &cm)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(Action::await_change()),
        // raced with another writer, or the namespace began terminating
        Err(e) if common::is_conflict(&e) => Ok(Action::requeue(Duration::from_secs(1))),
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}
