//! The storage-object-in-use protection controllers (upstream's `pvc-protection` and
//! `pv-protection`): every claim carries the `kubernetes.io/pvc-protection` finalizer and
//! every volume `kubernetes.io/pv-protection`, so deleting one that is still in use
//! waits. A deleted claim loses its finalizer once no scheduled, unfinished pod uses it
//! (a kubelet refuses to start a pod whose claim is being deleted); a deleted volume
//! once it is no longer Bound.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};

use crate::Context;
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Entry point of `pvc-protection`.
pub fn run_pvc(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start_pvc(ctx))
}

/// Entry point of `pv-protection`.
pub fn run_pv(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start_pv(ctx))
}

/// The claims a pod uses: its `persistentVolumeClaim` volumes and the claims of its
/// generic ephemeral volumes (`<pod>-<volume>`).
pub fn claims_of(pod: &Pod) -> Vec<String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral.as_ref().map(|_| format!("{name}-{}", v.name))
            }
        })
        .collect()
}

/// A scheduled pod that has not finished holds its claims.
fn holds_claims(pod: &Pod) -> bool {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    scheduled
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

fn has_finalizer<K: Resource>(obj: &K, f: &str) -> bool {
    obj.meta().finalizers.iter().flatten().any(|x| x == f)
}

/// Adds or removes a finalizer with an update of the object as read, so a concurrent
/// change conflicts and retries (the protection controllers' roles may update, not
/// patch).
async fn set_finalizer<K>(api: &Api<K>, obj: &K, f: &str, present: bool) -> anyhow::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let mut updated = obj.clone();
    let list = updated.meta_mut().finalizers.get_or_insert_with(Vec::new);
    list.retain(|x| x != f);
    if present {
        list.push(f.to_string());
    }
    match api
        .replace(&obj.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::common::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn start_pvc(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let claims = informer(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(c) | Event::InitApply(c) = ev {
                q.add(key_of(c));
            }
        },
    );
    let q = queue.clone();
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            // a pod going away (or finishing) may free the claims it held
            if let Event::Apply(p) | Event::Delete(p) = ev {
                let ns = p.namespace().unwrap_or_default();
                for c in claims_of(p) {
                    q.add(format!("{ns}/{c}"));
                }
            }
        },
    );
    claims.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    let (c, p) = (claims.clone(), pods.clone());
    queue
        .run(1, "pvc-protection", move |key| {
            let (client, claims, pods) = (client.clone(), c.clone(), p.clone());
            async move { sync_pvc(&client, &claims, &pods, &key).await }
        })
        .await;
    Ok(())
}

async fn sync_pvc(
    client: &kube::Client,
    claims: &Store<PersistentVolumeClaim>,
    pods: &Store<Pod>,
    key: &str,
) -> anyhow::Result<()> {
    let (ns, name) = split_key(key);
    let Some(claim) = claims.get(&ObjectRef::new(name).within(ns)) else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let deleting = claim.metadata.deletion_timestamp.is_some();
    let protected = has_finalizer(claim.as_ref(), PVC_FINALIZER);
    if !deleting {
        if !protected {
            set_finalizer(&api, claim.as_ref(), PVC_FINALIZER, true).await?;
        }
        return Ok(());
    }
    if !protected {
        return Ok(());
    }
    let uses = |p: &Pod| {
        p.metadata.namespace.as_deref() == Some(ns)
            && holds_claims(p)
            && claims_of(p).iter().any(|c| c == name)
    };
    if pods.state().iter().any(|p| uses(p)) {
        return Ok(());
    }
    // the cache may lag a pod just created: ask the server before letting go
    let live: Api<Pod> = Api::namespaced(client.clone(), ns);
    if live
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .any(uses)
    {
        return Ok(());
    }
    tracing::info!(claim = %key, "claim is no longer used by any pod, removing its finalizer");
    set_finalizer(&api, claim.as_ref(), PVC_FINALIZER, false).await
}

async fn start_pv(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let volumes = informer(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(v) | Event::InitApply(v) = ev {
                q.add(key_of(v));
            }
        },
    );
    volumes.wait_until_ready().await?;
    let v = volumes.clone();
    queue
        .run(1, "pv-protection", move |key| {
            let (client, volumes) = (client.clone(), v.clone());
            async move { sync_pv(&client, &volumes, &key).await }
        })
        .await;
    Ok(())
}

async fn sync_pv(
    client: &kube::Client,
    volumes: &Store<PersistentVolume>,
    name: &str,
) -> anyhow::Result<()> {
    let Some(pv) = volumes.get(&ObjectRef::new(name)) else {
        return Ok(());
    };
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let protected = has_finalizer(pv.as_ref(), PV_FINALIZER);
    if pv.metadata.deletion_timestamp.is_none() {
        if !protected {
            set_finalizer(&api, pv.as_ref(), PV_FINALIZER, true).await?;
        }
        return Ok(());
    }
    let bound = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if protected && !bound {
        tracing::info!(volume = %name, "volume is no longer bound, removing its finalizer");
        set_finalizer(&api, pv.as_ref(), PV_FINALIZER, false).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_a_pod_holds() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
        "nodeName": "n1",
        "containers": [{"name": "c", "image": "i"}],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "db"}},
            {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            {"name": "cfg", "configMap": {"name": "x"}}
        ]}}))
        .expect("pod");
        assert_eq!(claims_of(&pod), ["db", "web-scratch"]);
        let mut done = pod.clone();
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(holds_claims(&pod) && !holds_claims(&done));
        let mut pending = pod.clone();
        if let Some(s) = pending.spec.as_mut() {
            s.node_name = None;
        }
        assert!(!holds_claims(&pending));
    }
}
