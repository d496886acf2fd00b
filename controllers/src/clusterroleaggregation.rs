//! The clusterrole-aggregation controller: a ClusterRole with an `aggregationRule` gets
//! as its `rules` the union of the rules of every other ClusterRole matched by one of its
//! `clusterRoleSelectors`, as upstream's `pkg/controller/clusterroleaggregation` does:
//! selectors in order, the matched roles of each by name, duplicate rules dropped.
//!
//! Any ClusterRole change re-syncs every aggregated role; aggregated roles that select
//! other aggregated roles (`admin` -> `edit` -> `view`) converge over successive syncs.
//! The API server fills the bootstrap roles once at start; keeping them current when
//! users add or change roles (`aggregate-to-view: "true"`) is this controller's job.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::common::{matches, selector};
use crate::workqueue::{WorkQueue, informer, key_of};

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

/// Queues every ClusterRole that aggregates others.
fn enqueue_aggregated(queue: &WorkQueue, store: &Store<ClusterRole>) {
    for cr in store.state() {
        if cr.aggregation_rule.is_some() {
            queue.add(key_of(cr.as_ref()));
        }
    }
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let handle: Arc<std::sync::Mutex<Option<Store<ClusterRole>>>> = Arc::default();
    let h = handle.clone();
    let roles = informer(
        Api::<ClusterRole>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            let store = h.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match (ev, store) {
                (Event::Apply(_) | Event::Delete(_) | Event::InitDone, Some(store)) => {
                    enqueue_aggregated(&q, &store);
                }
                (Event::InitApply(cr), _) if cr.aggregation_rule.is_some() => {
                    q.add(key_of(cr));
                }
                _ => {}
            }
        },
    );
    *handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(roles.clone());
    roles.wait_until_ready().await?;
    enqueue_aggregated(&queue, &roles);
    queue
        .run(1, "clusterrole-aggregation", move |key| {
            let (client, roles) = (client.clone(), roles.clone());
            async move { sync(&client, &roles, &key).await }
        })
        .await;
    Ok(())
}

/// A rule with absent and empty lists made alike, for upstream's semantic equality.
fn normalized(rule: &PolicyRule) -> PolicyRule {
    let list = |l: &Option<Vec<String>>| l.clone().filter(|v| !v.is_empty());
    PolicyRule {
        api_groups: list(&rule.api_groups),
        non_resource_urls: list(&rule.non_resource_urls),
        resource_names: list(&rule.resource_names),
        resources: list(&rule.resources),
        verbs: rule.verbs.clone(),
    }
}

fn same_rules(a: &[PolicyRule], b: &[PolicyRule]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| normalized(x) == normalized(y))
}

/// The rules `role` aggregates from `all`: for each selector in order, the matching
/// roles (itself excluded) by name, each rule once. `None` when the role does not
/// aggregate; an error for an invalid selector.
pub fn aggregated_rules(
    role: &ClusterRole,
    all: &[Arc<ClusterRole>],
) -> Result<Option<Vec<PolicyRule>>, String> {
    let Some(rule) = role.aggregation_rule.as_ref() else {
        return Ok(None);
    };
    let own_name = role.metadata.name.as_deref().unwrap_or_default();
    let mut by_name: Vec<&Arc<ClusterRole>> = all.iter().collect();
    by_name.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in rule.cluster_role_selectors.iter().flatten() {
        let sel = selector(sel)?;
        for cr in &by_name {
            if cr.metadata.name.as_deref() == Some(own_name)
                || !matches(&sel, cr.metadata.labels.as_ref())
            {
                continue;
            }
            for r in cr.rules.iter().flatten() {
                let n = normalized(r);
                if !rules.iter().any(|have| normalized(have) == n) {
                    rules.push(r.clone());
                }
            }
        }
    }
    Ok(Some(rules))
}

async fn sync(client: &kube::Client, roles: &Store<ClusterRole>, key: &str) -> anyhow::Result<()> {
    let Some(role) = roles.get(&ObjectRef::new(key)) else {
        return Ok(());
    };
    let all = roles.state();
    let Some(rules) = aggregated_rules(&role, &all).map_err(anyhow::Error::msg)? else {
        return Ok(());
    };
    if same_rules(&rules, role.rules.as_deref().unwrap_or_default()) {
        return Ok(());
    }
    let mut updated = (*role).clone();
    updated.rules = Some(rules);
    let api: Api<ClusterRole> = Api::all(client.clone());
    match api.replace(key, &PostParams::default(), &updated).await {
        Ok(_) => {
            tracing::info!(clusterrole = %key, "updated aggregated rules");
            Ok(())
        }
        Err(e) if crate::common::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(v: serde_json::Value) -> Arc<ClusterRole> {
        Arc::new(serde_json::from_value(v).expect("clusterrole"))
    }

    #[test]
    fn aggregates_matching_roles_by_name_without_duplicates() {
        let view = role(json!({"metadata": {"name": "view"},
            "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"agg": "view"}}]}}));
        let b = role(json!({"metadata": {"name": "b", "labels": {"agg": "view"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}));
        let a = role(json!({"metadata": {"name": "a", "labels": {"agg": "view"}},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
                      {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"],
                       "resourceNames": []}]}));
        let other = role(json!({"metadata": {"name": "c"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}));
        let all = vec![view.clone(), b, a, other];
        let rules = aggregated_rules(&view, &all)
            .expect("valid")
            .expect("aggregated");
        let resources: Vec<String> = rules
            .iter()
            .flat_map(|r| r.resources.clone().unwrap_or_default())
            .collect();
        assert_eq!(resources, ["deployments", "pods"]);
        assert!(aggregated_rules(&all[1], &all).expect("valid").is_none());
    }

    #[test]
    fn empty_and_absent_lists_are_the_same_rule() {
        let a: PolicyRule =
            serde_json::from_value(json!({"verbs": ["get"], "resourceNames": []})).expect("rule");
        let b: PolicyRule = serde_json::from_value(json!({"verbs": ["get"]})).expect("rule");
        assert!(same_rules(&[a], &[b]));
    }
}
