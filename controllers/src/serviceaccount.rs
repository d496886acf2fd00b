//! The service account controller (upstream's `pkg/controller/serviceaccount`
//! `ServiceAccountsController`): every active namespace has a `default`
//! ServiceAccount, recreated when deleted. Terminating namespaces are left alone.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::Context;
use crate::common::{self, ReconcileError};

/// The ServiceAccounts every namespace gets.
pub const MANAGED: &[&str] = &["default"];

/// Entry point of `serviceaccount`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let client = ctx.client.clone();
        let sas: Api<ServiceAccount> = Api::all(client.clone());
        let by_name = watcher::Config::default().fields("metadata.name=default");
        Controller::new(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .watches(sas, by_name, |sa: ServiceAccount| {
            sa.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .run(reconcile, error_policy, Arc::new(client))
        .for_each(|_| async {})
        .await;
        Ok(())
    })
}

fn error_policy(ns: Arc<Namespace>, err: &ReconcileError, _: Arc<kube::Client>) -> Action {
    tracing::warn!(namespace = %ns.name_any(), error = %err, "service account sync failed");
    Action::requeue(Duration::from_secs(5))
}

fn terminating(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

async fn reconcile(
    ns: Arc<Namespace>,
    client: Arc<kube::Client>,
) -> Result<Action, ReconcileError> {
    if terminating(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ServiceAccount> = Api::namespaced(client.as_ref().clone(), &name);
    for sa_name in MANAGED {
        if api.get_opt(sa_name).await?.is_some() {
            continue;
        }
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some(sa_name.to_string());
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => tracing::info!(namespace = %name, "created service account {sa_name}"),
            // already there, or the namespace started terminating meanwhile
            Err(e) if common::is_conflict(&e) => {}
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::await_change())
}
