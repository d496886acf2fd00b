//! The namespace controller (upstream's `pkg/controller/namespace`): finishes the
//! deletion of terminating namespaces.
//!
//! For a namespace with a deletionTimestamp that still has the `kubernetes` finalizer in
//! `spec.finalizers`, it deletes every namespaced resource discovery lists
//! (deletecollection with background propagation, else one by one), lists what remains,
//! reports the deletion [`conditions`] in the namespace's status, and once nothing is
//! left removes `kubernetes` through the `finalize` subresource, after which the API
//! server removes the namespace. While content remains it retries after upstream's
//! estimate (half the longest pod grace period or finalizer wait, plus one second).

pub mod conditions;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;

use crate::Context;
use crate::common::discovery::{self, Discovered};
use crate::common::{self, ReconcileError};
use conditions::Findings;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";
/// Upstream's wait for objects held by finalizers.
const FINALIZER_ESTIMATE_SECONDS: i64 = 5;

/// Entry point of `namespace`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let n = ctx.options.concurrent_namespace_syncs.max(1) as u16;
        let api: Api<Namespace> = Api::all(ctx.client.clone());
        Controller::new(api, watcher::Config::default())
            .with_config(controller::Config::default().concurrency(n))
            .run(reconcile, error_policy, Arc::new(ctx.client.clone()))
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "namespace sync failed");
                }
            })
            .await;
        Ok(())
    })
}

fn error_policy(ns: Arc<Namespace>, err: &ReconcileError, _: Arc<kube::Client>) -> Action {
    tracing::warn!(namespace = %ns.name_any(), error = %err, "namespace deletion failed, retrying");
    Action::requeue(Duration::from_secs(5))
}

fn spec_finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

async fn reconcile(
    ns: Arc<Namespace>,
    client: Arc<kube::Client>,
) -> Result<Action, ReconcileError> {
    if ns.metadata.deletion_timestamp.is_none()
        || !spec_finalizers(&ns).iter().any(|f| f == FINALIZER)
    {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<Namespace> = Api::all(client.as_ref().clone());
    // the cache may be behind: act on the latest view
    let Some(latest) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    if latest.metadata.deletion_timestamp.is_none()
        || !spec_finalizers(&latest).iter().any(|f| f == FINALIZER)
    {
        return Ok(Action::await_change());
    }
    let (estimate, findings) = delete_all_content(&client, &name).await;
    let latest = update_conditions(&api, latest, &findings).await?;
    if !findings.content_errors.is_empty() || !findings.discovery_errors.is_empty() {
        return Err(anyhow::anyhow!(
            "{}",
            [findings.discovery_errors, findings.content_errors]
                .concat()
                .join("; ")
        )
        .into());
    }
    if estimate > 0 || !findings.remaining.is_empty() {
        let secs = (estimate / 2 + 1).max(1) as u64;
        tracing::debug!(namespace = %name, secs, "content remains, checking again later");
        return Ok(Action::requeue(Duration::from_secs(secs)));
    }
    finalize(&api, latest).await?;
    tracing::info!(namespace = %name, "namespace content removed, finalized");
    Ok(Action::await_change())
}

async fn update_conditions(
    api: &Api<Namespace>,
    mut ns: Namespace,
    findings: &Findings,
) -> anyhow::Result<Namespace> {
    let status = ns.status.get_or_insert_with(Default::default);
    let current = status.conditions.clone().unwrap_or_default();
    let updated = conditions::update(&current, findings);
    if updated == current && status.phase.as_deref() == Some("Terminating") {
        return Ok(ns);
    }
    status.conditions = Some(updated);
    status.phase = Some("Terminating".into());
    Ok(api
        .replace_status(&ns.name_any(), &PostParams::default(), &ns)
        .await?)
}

/// Removes our finalizer through `namespaces/{name}/finalize`.
async fn finalize(api: &Api<Namespace>, mut ns: Namespace) -> anyhow::Result<()> {
    let spec = ns.spec.get_or_insert_with(Default::default);
    let rest: Vec<String> = spec_finalizers_of(spec)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    spec.finalizers = Some(rest);
    match api
        .replace_subresource("finalize", &ns.name_any(), &PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if common::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn spec_finalizers_of(spec: &k8s_openapi::api::core::v1::NamespaceSpec) -> Vec<String> {
    spec.finalizers.clone().unwrap_or_default()
}

/// Deletes everything in `ns`; returns the estimate of seconds until the rest is gone
/// and what this pass found.
async fn delete_all_content(client: &kube::Client, ns: &str) -> (i64, Findings) {
    let mut findings = Findings::default();
    let resources = match discovery::resources_with(client, &["delete"]).await {
        Ok(r) => r,
        Err(e) => {
            findings.discovery_errors.push(e.to_string());
            return (0, findings);
        }
    };
    let mut estimate = 0;
    for d in resources.iter().filter(|d| d.namespaced) {
        match delete_resource_content(client, ns, d, &mut findings).await {
            Ok(e) => estimate = estimate.max(e),
            Err(e) => findings.content_errors.push(e),
        }
    }
    (estimate, findings)
}

fn group_resource(d: &Discovered) -> String {
    if d.resource.group.is_empty() {
        d.resource.plural.clone()
    } else {
        format!("{}.{}", d.resource.plural, d.resource.group)
    }
}

/// Deletes one resource's objects in `ns` and counts what remains.
async fn delete_resource_content(
    client: &kube::Client,
    ns: &str,
    d: &Discovered,
    findings: &mut Findings,
) -> Result<i64, String> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &d.resource);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    let gr = group_resource(d);
    if d.supports("deletecollection") {
        api.delete_collection(&dp, &ListParams::default())
            .await
            .map_err(|e| format!("failed to delete {gr}: {}", common::error_message(&e)))?;
    } else if d.supports("list") {
        let items = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        for item in items {
            match api.delete(&item.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if common::is_not_found(&e) => {}
                Err(e) => {
                    return Err(format!(
                        "failed to delete {gr}: {}",
                        common::error_message(&e)
                    ));
                }
            }
        }
    }
    if !d.supports("list") {
        return Ok(0);
    }
    let left = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    if left.items.is_empty() {
        return Ok(0);
    }
    findings.remaining.insert(gr.clone(), left.items.len());
    let mut estimate = 0;
    let mut any_finalizer = false;
    for item in &left.items {
        for f in item.metadata.finalizers.iter().flatten() {
            any_finalizer = true;
            *findings.finalizers.entry(f.clone()).or_default() += 1;
        }
        if item.metadata.deletion_timestamp.is_some() {
            // graceful deletion in progress (pods): wait about as long as it takes
            estimate = estimate.max(item.metadata.deletion_grace_period_seconds.unwrap_or(0));
        }
    }
    if any_finalizer {
        estimate = estimate.max(FINALIZER_ESTIMATE_SECONDS);
    }
    if estimate == 0 {
        return Err(format!(
            "unexpected items still remain in namespace: {ns} for gvr: {}",
            gvr(d)
        ));
    }
    Ok(estimate)
}

fn gvr(d: &Discovered) -> String {
    format!(
        "{}/{}, Resource={}",
        d.resource.group, d.resource.version, d.resource.plural
    )
}
