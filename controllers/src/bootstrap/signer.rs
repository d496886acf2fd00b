//! The bootstrap signer (upstream's `bootstrapsigner`, `bootstrap-signer-controller`):
//! keeps one `jws-kubeconfig-<token-id>` key in `kube-public/cluster-info` for each
//! bootstrap token that may sign (valid, unexpired, `usage-bootstrap-signing: "true"`),
//! holding the detached JWS of the ConfigMap's `kubeconfig`, and removes the signatures
//! of tokens that are gone. Every change to the ConfigMap or to a token secret re-signs;
//! the one ConfigMap is the only key of its queue, so changes collapse into one write.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::{
    CLUSTER_INFO, CLUSTER_INFO_NAMESPACE, JWS_KEY_PREFIX, KUBECONFIG_KEY, SECRET_TYPE,
    TOKEN_NAMESPACE, detached_signature, time_to_expiry, token_for_signing,
};
use crate::Context;
use crate::common;
use crate::workqueue::{WorkQueue, informer};

const KEY: &str = "kube-public/cluster-info";

/// Entry point of `bootstrapsigner`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let client = ctx.client.clone();
        let queue = WorkQueue::new();
        let q = queue.clone();
        let config_maps = informer(
            Api::<ConfigMap>::namespaced(client.clone(), CLUSTER_INFO_NAMESPACE),
            watcher::Config::default().fields(&format!("metadata.name={CLUSTER_INFO}")),
            move |_| q.add(KEY),
        );
        let q = queue.clone();
        let secrets = informer(
            Api::<Secret>::namespaced(client.clone(), TOKEN_NAMESPACE),
            watcher::Config::default().fields(&format!("type={SECRET_TYPE}")),
            move |_| q.add(KEY),
        );
        config_maps.wait_until_ready().await?;
        secrets.wait_until_ready().await?;
        let q = queue.clone();
        queue
            .run(1, "bootstrapsigner", move |_| {
                let (client, q) = (client.clone(), q.clone());
                let (config_maps, secrets) = (config_maps.clone(), secrets.clone());
                async move { sign_config_map(&client, &q, &config_maps, &secrets).await }
            })
            .await;
        Ok(())
    })
}

/// The ConfigMap's data with fresh signatures, or None when nothing changes.
pub fn resign(
    data: &std::collections::BTreeMap<String, String>,
    tokens: &[(String, String)],
) -> Option<std::collections::BTreeMap<String, String>> {
    let content = data.get(KUBECONFIG_KEY)?;
    let mut new = data.clone();
    new.retain(|k, _| !k.starts_with(JWS_KEY_PREFIX));
    for (id, secret) in tokens {
        match detached_signature(content, id, secret) {
            Ok(sig) => {
                new.insert(format!("{JWS_KEY_PREFIX}{id}"), sig);
            }
            Err(e) => tracing::warn!(token = %id, error = %e, "cannot sign cluster-info"),
        }
    }
    (new != *data).then_some(new)
}

async fn sign_config_map(
    client: &kube::Client,
    queue: &WorkQueue,
    config_maps: &Store<ConfigMap>,
    secrets: &Store<Secret>,
) -> anyhow::Result<()> {
    let Some(cm) = config_maps.get(&ObjectRef::new(CLUSTER_INFO).within(CLUSTER_INFO_NAMESPACE))
    else {
        return Ok(());
    };
    let now = Timestamp::now();
    let mut tokens: Vec<(String, String)> = vec![];
    let mut next_expiry: Option<Duration> = None;
    for s in secrets.state() {
        let Some((id, secret)) = token_for_signing(&s, now) else {
            continue;
        };
        if tokens.iter().any(|(t, _)| *t == id) {
            tracing::info!(token = %id, "duplicate bootstrap tokens; ignoring one");
            continue;
        }
        if let Ok(Some(left)) = time_to_expiry(&s, now) {
            next_expiry = Some(next_expiry.map_or(left, |n| n.min(left)));
        }
        tokens.push((id, secret));
    }
    // a token's signature goes when it expires, even before the token cleaner runs
    if let Some(left) = next_expiry {
        queue.add_after(KEY, left + Duration::from_millis(100));
    }
    let Some(data) = cm.data.as_ref() else {
        tracing::debug!("no {KUBECONFIG_KEY} key in {KEY}");
        return Ok(());
    };
    let Some(new) = resign(data, &tokens) else {
        return Ok(());
    };
    let mut updated = ConfigMap::clone(&cm);
    updated.data = Some(new);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), CLUSTER_INFO_NAMESPACE);
    match api
        .replace(CLUSTER_INFO, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {
            tracing::info!(tokens = tokens.len(), "signed {KEY}");
            Ok(())
        }
        // the watch brings the newer ConfigMap (or its deletion) and another sync
        Err(e) if common::is_conflict(&e) || common::is_not_found(&e) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("error updating {KEY}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn resigns_only_on_change() {
        let data: BTreeMap<String, String> = [
            (KUBECONFIG_KEY.to_string(), "kc".to_string()),
            ("jws-kubeconfig-old000".to_string(), "stale".to_string()),
        ]
        .into();
        let tokens = vec![("abc123".to_string(), "secret".to_string())];
        let new = resign(&data, &tokens).expect("changed");
        assert!(!new.contains_key("jws-kubeconfig-old000"));
        assert_eq!(
            new.get("jws-kubeconfig-abc123"),
            detached_signature("kc", "abc123", "secret").ok().as_ref()
        );
        assert_eq!(resign(&new, &tokens), None);
        let cleared = resign(&new, &[]).expect("changed");
        assert_eq!(cleared.len(), 1);
        assert_eq!(resign(&BTreeMap::new(), &tokens), None);
    }
}
