//! The token cleaner (upstream's `tokencleaner`, `token-cleaner-controller`): deletes a
//! bootstrap token secret (`bootstrap.kubernetes.io/token` in `kube-system`) once its
//! `expiration` has passed — at once when it is unparseable — with its UID as
//! precondition; a token not yet expired is looked at again when it expires.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use super::{SECRET_TYPE, TOKEN_NAMESPACE, time_to_expiry};
use crate::Context;
use crate::common;
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

/// Entry point of `tokencleaner`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let client = ctx.client.clone();
        let queue = WorkQueue::new();
        let q = queue.clone();
        let secrets = informer(
            Api::<Secret>::namespaced(client.clone(), TOKEN_NAMESPACE),
            watcher::Config::default().fields(&format!("type={SECRET_TYPE}")),
            move |ev| {
                if let Event::Apply(s) | Event::InitApply(s) = ev {
                    q.add(key_of(s));
                }
            },
        );
        secrets.wait_until_ready().await?;
        let q = queue.clone();
        queue
            .run(1, "tokencleaner", move |key| {
                let (client, q, secrets) = (client.clone(), q.clone(), secrets.clone());
                async move { sync(&client, &q, &secrets, &key).await }
            })
            .await;
        Ok(())
    })
}

async fn sync(
    client: &kube::Client,
    queue: &WorkQueue,
    secrets: &Store<Secret>,
    key: &str,
) -> anyhow::Result<()> {
    let (ns, name) = split_key(key);
    let Some(secret) = secrets.get(&ObjectRef::new(name).within(ns)) else {
        return Ok(());
    };
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        return Ok(());
    }
    match time_to_expiry(&secret, Timestamp::now()) {
        Ok(None) => Ok(()),
        Ok(Some(left)) => {
            queue.add_after(key, left + Duration::from_millis(100));
            Ok(())
        }
        Err(()) => {
            tracing::info!(secret = %key, "deleting expired bootstrap token");
            let dp = DeleteParams {
                preconditions: secret.metadata.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let api: Api<Secret> = Api::namespaced(client.clone(), ns);
            match api.delete(name, &dp).await {
                Ok(_) => Ok(()),
                // already gone, or replaced by a new secret of the same name
                Err(e) if common::is_not_found(&e) || common::is_conflict(&e) => Ok(()),
                // retried with backoff (upstream waits for its periodic resync)
                Err(e) => Err(anyhow::anyhow!("error deleting secret: {e}")),
            }
        }
    }
}
