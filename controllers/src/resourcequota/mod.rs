//! The resource quota controller: keeps every ResourceQuota's `status.hard` equal to its
//! `spec.hard` and recomputes `status.used` for each hard resource from the objects in
//! the namespace, as upstream's `pkg/controller/resourcequota` does.
//!
//! Admission (in the API server) charges new objects as they are created; this
//! controller gives usage back when objects go (or end, like terminal pods) and tracks
//! the compute and storage resources admission does not. A quota is synced when it is
//! created or changed, when an object it tracks changes or is deleted in its namespace,
//! and every `--resource-quota-sync-period`. What each object charges lives in
//! [`usage`] and [`pods`]; quantity arithmetic and printing in `machinery::quantity`.

pub mod pods;
pub use machinery::quantity;
pub mod usage;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota,
    ResourceQuotaStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams, PartialObjectMeta, PostParams};
use kube::core::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};

use crate::Context;
use crate::common::discovery;
use crate::workqueue::{WorkQueue, informer, key_of, split_key};
use quantity::Quantity;
use usage::{Evaluator, ResourceList, ScopeRequirement};

/// How long a discovery of the server's resources (for `count/<resource>.<group>`) is
/// reused; upstream re-discovers every 30 seconds too.
const DISCOVERY_TTL: Duration = Duration::from_secs(30);

/// Object-count resources upstream's controller never tracks.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// The built-in evaluators, with the stores they read.
struct Stores {
    quotas: Store<ResourceQuota>,
    pods: Store<Pod>,
    services: Store<Service>,
    pvcs: Store<PersistentVolumeClaim>,
    configmaps: Store<PartialObjectMeta<ConfigMap>>,
    secrets: Store<PartialObjectMeta<Secret>>,
    rcs: Store<PartialObjectMeta<ReplicationController>>,
}

/// The object-count evaluators with a store (and their legacy aliases).
const STORED_COUNTS: &[&str] = &[
    "configmaps",
    "secrets",
    "replicationcontrollers",
    "resourcequotas",
];

struct Controller {
    client: kube::Client,
    stores: Stores,
    discovered: Mutex<Option<(Instant, Arc<Vec<discovery::Discovered>>)>>,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

/// Queues every quota in `ns` that tracks one of `evaluator`'s resources.
fn enqueue_namespace(queue: &WorkQueue, quotas: &Store<ResourceQuota>, ns: &str, ev: &Evaluator) {
    for q in quotas.state() {
        if q.metadata.namespace.as_deref() != Some(ns) {
            continue;
        }
        let hard: Vec<String> = hard_names(&q);
        if !ev.matching_resources(&hard).is_empty() {
            queue.add(key_of(q.as_ref()));
        }
    }
}

fn hard_names(q: &ResourceQuota) -> Vec<String> {
    q.spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .map(|h| h.keys().cloned().collect())
        .unwrap_or_default()
}

/// A watch-event handler that re-syncs the quotas of the changed object's namespace.
fn replenish<K: Resource>(
    queue: WorkQueue,
    quotas: Store<ResourceQuota>,
    ev: Evaluator,
) -> impl Fn(&Event<K>) + Send + 'static {
    move |event| {
        if let Event::Apply(obj) | Event::Delete(obj) = event
            && let Some(ns) = obj.meta().namespace.as_deref()
        {
            enqueue_namespace(&queue, &quotas, ns, &ev);
        }
    }
}

fn count(resource: &str, alias: bool) -> Evaluator {
    Evaluator::Count {
        resource: resource.into(),
        group: String::new(),
        alias: alias.then(|| resource.to_string()),
    }
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    // the quota store is needed by every other handler: a second handle is filled in by
    // the first informer
    let q = queue.clone();
    let quota_handle: Arc<Mutex<Option<Store<ResourceQuota>>>> = Arc::default();
    let qh = quota_handle.clone();
    let quotas = informer(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(rq) | Event::InitApply(rq) = ev {
                q.add(key_of(rq));
            }
            // quotas count other quotas (`resourcequotas`)
            if let Event::Apply(rq) | Event::Delete(rq) = ev {
                let store = qh.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let (Some(store), Some(ns)) = (store, rq.metadata.namespace.as_deref()) {
                    enqueue_namespace(&q, &store, ns, &count("resourcequotas", true));
                }
            }
        },
    );
    *quota_handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(quotas.clone());
    let cfg = watcher::Config::default;
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        cfg(),
        replenish(queue.clone(), quotas.clone(), Evaluator::Pods),
    );
    let services = informer(
        Api::<Service>::all(client.clone()),
        cfg(),
        replenish(queue.clone(), quotas.clone(), Evaluator::Services),
    );
    let pvcs = informer(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        cfg(),
        replenish(
            queue.clone(),
            quotas.clone(),
            Evaluator::PersistentVolumeClaims,
        ),
    );
    // object counts need metadata only
    let configmaps = informer(
        Api::<PartialObjectMeta<ConfigMap>>::all(client.clone()),
        cfg(),
        replenish(queue.clone(), quotas.clone(), count("configmaps", true)),
    );
    let secrets = informer(
        Api::<PartialObjectMeta<Secret>>::all(client.clone()),
        cfg(),
        replenish(queue.clone(), quotas.clone(), count("secrets", true)),
    );
    let rcs = informer(
        Api::<PartialObjectMeta<ReplicationController>>::all(client.clone()),
        cfg(),
        replenish(
            queue.clone(),
            quotas.clone(),
            count("replicationcontrollers", true),
        ),
    );
    quotas.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    services.wait_until_ready().await?;
    pvcs.wait_until_ready().await?;
    configmaps.wait_until_ready().await?;
    secrets.wait_until_ready().await?;
    rcs.wait_until_ready().await?;

    // the full resync: every quota, every sync period
    let period = ctx.options.resource_quota_sync_period;
    if !period.is_zero() {
        let (q, store) = (queue.clone(), quotas.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                for rq in store.state() {
                    q.add(key_of(rq.as_ref()));
                }
            }
        });
    }

    let controller = Arc::new(Controller {
        client,
        stores: Stores {
            quotas,
            pods,
            services,
            pvcs,
            configmaps,
            secrets,
            rcs,
        },
        discovered: Mutex::new(None),
    });
    queue
        .run(
            ctx.options.concurrent_resource_quota_syncs,
            "resourcequota",
            move |key| {
                let c = controller.clone();
                async move { c.sync(&key).await }
            },
        )
        .await;
    Ok(())
}

/// How many objects of one namespace a store holds.
fn count_in<K>(store: &Store<K>, ns: &str) -> usize
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .count()
}

/// Stats for an object-count evaluator over `n` objects (these match no scope).
fn count_stats(
    n: usize,
    ev: &Evaluator,
    resources: &[String],
    scopes: &[ScopeRequirement],
) -> ResourceList {
    let Evaluator::Count {
        resource,
        group,
        alias,
    } = ev
    else {
        return ResourceList::new();
    };
    usage::usage_stats(
        std::iter::repeat_n((), n),
        resources,
        scopes,
        |_, _| false,
        |_| usage::count_usage(resource, group, alias.as_deref()),
    )
}

/// Splits `count/<resource>[.<group>]`.
fn parse_count_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("count/")?;
    Some(rest.split_once('.').unwrap_or((rest, "")))
}

/// Writes quota quantities the way the API serializes them.
fn to_api(list: &ResourceList) -> BTreeMap<String, ApiQuantity> {
    list.iter()
        .map(|(k, v)| (k.clone(), ApiQuantity(v.to_string())))
        .collect()
}

/// Whether two serialized resource lists hold the same amounts (upstream's
/// `quota.Equals`).
fn same_amounts(
    a: Option<&BTreeMap<String, ApiQuantity>>,
    b: Option<&BTreeMap<String, ApiQuantity>>,
) -> bool {
    let (a, b) = (
        a.cloned().unwrap_or_default(),
        b.cloned().unwrap_or_default(),
    );
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|w| match (Quantity::parse(&v.0), Quantity::parse(&w.0)) {
                    (Some(x), Some(y)) => x == y,
                    _ => v.0 == w.0,
                })
        })
}

impl Controller {
    /// The server's listable namespaced resources, re-discovered after a while.
    async fn discovered(&self) -> anyhow::Result<Arc<Vec<discovery::Discovered>>> {
        if let Some((at, list)) = self
            .discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(list.clone());
        }
        let list = Arc::new(discovery::resources_with(&self.client, &["list"]).await?);
        *self.discovered.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// The generic object-count evaluators for `count/` names no built-in one tracks.
    async fn generic_counts(
        &self,
        hard: &[String],
        builtin: &[Evaluator],
    ) -> anyhow::Result<Vec<(Evaluator, ApiResource)>> {
        let wanted: Vec<(&str, &str)> = hard
            .iter()
            .filter(|n| {
                builtin
                    .iter()
                    .all(|e| e.matching_resources(std::slice::from_ref(*n)).is_empty())
            })
            .filter_map(|n| parse_count_name(n))
            .filter(|rg| !IGNORED.iter().any(|(g, r)| (*r, *g) == *rg))
            .collect();
        if wanted.is_empty() {
            return Ok(vec![]);
        }
        let all = self.discovered().await?;
        Ok(wanted
            .into_iter()
            .filter_map(|(resource, group)| {
                let d = all.iter().find(|d| {
                    d.namespaced && d.resource.plural == resource && d.resource.group == group
                })?;
                let ev = Evaluator::Count {
                    resource: resource.into(),
                    group: group.into(),
                    alias: None,
                };
                Some((ev, d.resource.clone()))
            })
            .collect())
    }

    /// The usage of `resources` (all tracked by `ev`) in `ns` under `scopes`.
    fn builtin_stats(
        &self,
        ev: &Evaluator,
        ns: &str,
        resources: &[String],
        scopes: &[ScopeRequirement],
    ) -> ResourceList {
        let in_ns = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.namespace.as_deref() == Some(ns)
        };
        let s = &self.stores;
        match ev {
            Evaluator::Pods => {
                let now = Timestamp::now();
                let pods = s.pods.state();
                usage::usage_stats(
                    pods.iter().filter(|p| in_ns(&p.metadata)),
                    resources,
                    scopes,
                    |r, p| pods::pod_matches_scope(r, p),
                    |p| pods::pod_usage(p, now),
                )
            }
            Evaluator::Services => {
                let svcs = s.services.state();
                usage::usage_stats(
                    svcs.iter().filter(|o| in_ns(&o.metadata)),
                    resources,
                    scopes,
                    |_, _| false,
                    |o| usage::service_usage(o),
                )
            }
            Evaluator::PersistentVolumeClaims => {
                let pvcs = s.pvcs.state();
                usage::usage_stats(
                    pvcs.iter().filter(|o| in_ns(&o.metadata)),
                    resources,
                    scopes,
                    |r, o| usage::pvc_matches_scope(r, o),
                    |o| usage::pvc_usage(o),
                )
            }
            Evaluator::Count { resource, .. } => {
                let n = match resource.as_str() {
                    "configmaps" => count_in(&s.configmaps, ns),
                    "secrets" => count_in(&s.secrets, ns),
                    "replicationcontrollers" => count_in(&s.rcs, ns),
                    _ => s
                        .quotas
                        .state()
                        .iter()
                        .filter(|q| in_ns(&q.metadata))
                        .count(),
                };
                count_stats(n, ev, resources, scopes)
            }
        }
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(rq) = self.stores.quotas.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(());
        };
        let hard = rq
            .spec
            .as_ref()
            .and_then(|s| s.hard.clone())
            .unwrap_or_default();
        let names: Vec<String> = hard.keys().cloned().collect();
        let scopes = usage::quota_scopes(&rq);

        let builtin: Vec<Evaluator> = [
            Evaluator::Pods,
            Evaluator::Services,
            Evaluator::PersistentVolumeClaims,
        ]
        .into_iter()
        .chain(STORED_COUNTS.iter().map(|r| count(r, true)))
        .collect();
        let mut errors = Vec::new();
        let generic = match self.generic_counts(&names, &builtin).await {
            Ok(g) => g,
            Err(e) => {
                errors.push(format!("discovery: {e:#}"));
                vec![]
            }
        };

        // upstream's CalculateUsage: each evaluator measures the hard names it tracks
        let mut new_usage = ResourceList::new();
        let mut measured: Vec<String> = Vec::new();
        for ev in &builtin {
            let resources = ev.matching_resources(&names);
            if resources.is_empty() {
                continue;
            }
            let stats = self.builtin_stats(ev, ns, &resources, &scopes);
            usage::add_into(&mut new_usage, &stats);
            measured.extend(resources);
        }
        for (ev, ar) in &generic {
            let resources = ev.matching_resources(&names);
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, ar);
            match api.list_metadata(&ListParams::default()).await {
                Ok(list) => {
                    let stats = count_stats(list.items.len(), ev, &resources, &scopes);
                    usage::add_into(&mut new_usage, &stats);
                    measured.extend(resources);
                }
                Err(e) => errors.push(format!("{}: {e}", ar.plural)),
            }
        }
        new_usage.retain(|k, _| measured.contains(k));

        // keep earlier observations of what nobody here measures; drop what is no
        // longer hard
        let status = rq.status.clone().unwrap_or_default();
        let mut used: BTreeMap<String, ApiQuantity> = status.used.clone().unwrap_or_default();
        used.extend(to_api(&new_usage));
        used.retain(|k, _| hard.contains_key(k));
        let canonical_hard: BTreeMap<String, ApiQuantity> = hard
            .iter()
            .map(|(k, v)| {
                let text = Quantity::parse(&v.0).map_or_else(|| v.0.clone(), |q| q.to_string());
                (k.clone(), ApiQuantity(text))
            })
            .collect();

        let dirty = status.hard.is_none()
            || status.used.is_none()
            || !same_amounts(status.hard.as_ref(), Some(&hard))
            || !same_amounts(status.used.as_ref(), Some(&used));
        if dirty {
            let mut updated = (*rq).clone();
            updated.status = Some(ResourceQuotaStatus {
                hard: Some(canonical_hard),
                used: Some(used),
            });
            let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
            match api
                .replace_status(&rq.name_any(), &PostParams::default(), &updated)
                .await
            {
                Ok(_) => tracing::debug!(quota = %key, "updated quota usage"),
                Err(e) if crate::common::is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        if !errors.is_empty() {
            anyhow::bail!("measuring usage: {}", errors.join("; "));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_names() {
        assert_eq!(
            parse_count_name("count/deployments.apps"),
            Some(("deployments", "apps"))
        );
        assert_eq!(
            parse_count_name("count/widgets.example.com"),
            Some(("widgets", "example.com"))
        );
        assert_eq!(parse_count_name("count/pods"), Some(("pods", "")));
        assert_eq!(parse_count_name("pods"), None);
    }

    #[test]
    fn amounts_compare_semantically() {
        let list = |v: &[(&str, &str)]| -> BTreeMap<String, ApiQuantity> {
            v.iter()
                .map(|(k, q)| (k.to_string(), ApiQuantity(q.to_string())))
                .collect()
        };
        assert!(same_amounts(
            Some(&list(&[("cpu", "1000m")])),
            Some(&list(&[("cpu", "1")]))
        ));
        assert!(!same_amounts(
            Some(&list(&[("cpu", "1")])),
            Some(&list(&[("cpu", "1"), ("pods", "0")]))
        ));
        assert!(same_amounts(None, Some(&list(&[]))));
    }

    #[test]
    fn object_counts_match_no_scope() {
        let ev = count("secrets", true);
        let names = vec!["secrets".to_string()];
        let all = count_stats(3, &ev, &names, &[]);
        assert_eq!(all["secrets"].to_string(), "3");
        let scoped = count_stats(
            3,
            &ev,
            &names,
            &[ScopeRequirement {
                scope: "BestEffort".into(),
                operator: "Exists".into(),
                values: vec![],
            }],
        );
        assert_eq!(scoped["secrets"].to_string(), "0");
    }
}
