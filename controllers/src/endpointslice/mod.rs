//! The endpointslice controller: keeps the discovery.k8s.io/v1 EndpointSlices of every
//! Service with a selector (labelled `kubernetes.io/service-name` and managed by
//! `endpointslice-controller.k8s.io`, owned by the Service) in step with its pods. The
//! pure part, what to write, is [`reconcile`]; this module watches, tracks what it wrote
//! until its cache has seen it (so it never acts on a stale cache and duplicates a
//! slice), and writes.

pub mod reconcile;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::endpoints::pods::{self, LAST_CHANGE_TRIGGER_TIME, PodMembership, TriggerTimeTracker};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};
use reconcile::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};

/// Per service, the slices written and the resourceVersion written (None: deleted),
/// until the informer has caught up.
#[derive(Default)]
pub(crate) struct SliceTracker {
    written: Mutex<HashMap<String, HashMap<String, Option<u64>>>>,
}

impl SliceTracker {
    pub(crate) fn record(&self, svc: &str, slice: &str, rv: Option<&str>) {
        let rv = rv.map(|r| r.parse::<u64>().unwrap_or(u64::MAX));
        let mut w = self.written.lock().unwrap_or_else(|p| p.into_inner());
        w.entry(svc.to_string())
            .or_default()
            .insert(slice.to_string(), rv);
    }

    /// Whether the cache shows everything written for `svc`; forgets what it shows.
    pub(crate) fn caught_up(&self, svc: &str, cached: &[EndpointSlice]) -> bool {
        let mut w = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let Some(expect) = w.get_mut(svc) else {
            return true;
        };
        expect.retain(|name, rv| {
            let seen = cached
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            let seen_rv = seen.and_then(|s| s.metadata.resource_version.as_deref());
            let seen_rv = seen_rv.map(|r| r.parse::<u64>().unwrap_or(0));
            match (rv, seen_rv) {
                (None, None) => false,
                (Some(want), Some(have)) => have < *want,
                _ => true,
            }
        });
        let done = expect.is_empty();
        if done {
            w.remove(svc);
        }
        done
    }
}

struct Controller {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
    triggers: TriggerTimeTracker,
    tracker: SliceTracker,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let services = informer(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        move |ev| match ev {
            Event::Apply(s) | Event::InitApply(s) | Event::Delete(s) => q.add(key_of(s)),
            _ => {}
        },
    );
    let membership = Arc::new(PodMembership::default());
    let (q, svc) = (queue.clone(), services.clone());
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            let keys = match ev {
                Event::Apply(p) | Event::InitApply(p) => membership.update(&svc, p, false),
                Event::Delete(p) => membership.update(&svc, p, true),
                _ => vec![],
            };
            keys.into_iter().for_each(|k| q.add(k));
        },
    );
    let nodes = informer(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        |_| {},
    );
    let q = queue.clone();
    let selector = format!("{MANAGED_BY_LABEL}={CONTROLLER_NAME}");
    let slices = informer(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(&selector),
        move |ev| match ev {
            Event::Apply(s) | Event::Delete(s) => {
                if let Some(svc) = s
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                {
                    let ns = s.metadata.namespace.clone().unwrap_or_default();
                    q.add(format!("{ns}/{svc}"));
                }
            }
            _ => {}
        },
    );
    services.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    slices.wait_until_ready().await?;
    let c = Arc::new(Controller {
        client,
        services,
        pods,
        nodes,
        slices,
        triggers: TriggerTimeTracker::default(),
        tracker: SliceTracker::default(),
    });
    queue
        .run(
            ctx.options.concurrent_service_endpoint_syncs,
            "endpointslice",
            move |key| {
                let c = c.clone();
                async move { c.sync(&key).await }
            },
        )
        .await;
    Ok(())
}

impl Controller {
    fn zone_of(&self, node: &str) -> Option<String> {
        let n = self.nodes.get(&ObjectRef::new(node))?;
        n.metadata
            .labels
            .as_ref()?
            .get("topology.kubernetes.io/zone")
            .cloned()
    }

    fn slices_of(&self, ns: &str, name: &str) -> Vec<EndpointSlice> {
        self.slices
            .state()
            .into_iter()
            .filter(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(SERVICE_NAME_LABEL))
                        .is_some_and(|n| n == name)
            })
            .map(|s| s.as_ref().clone())
            .collect()
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(svc) = self.services.get(&ObjectRef::new(name).within(ns)) else {
            // the slices are owned by the Service: the garbage collector removes them
            self.triggers.delete(key);
            return Ok(());
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") || spec.selector.is_none() {
            return Ok(());
        }
        if svc.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let existing = self.slices_of(ns, name);
        if !self.tracker.caught_up(key, &existing) {
            anyhow::bail!("EndpointSlice informer cache is out of date for service {key}");
        }
        let selected = pods::pods_for_service(&self.pods, &svc);
        let pod_refs: Vec<&Pod> = selected.iter().map(|p| p.as_ref()).collect();
        let trigger = self.triggers.compute(key, &svc, &pod_refs);
        let plan = reconcile::plan(&svc, &pod_refs, existing, &|n| self.zone_of(n));
        let annotate = |s: &mut EndpointSlice| {
            let a = s.metadata.annotations.get_or_insert_with(BTreeMap::new);
            match trigger {
                Some(t) => a.insert(
                    LAST_CHANGE_TRIGGER_TIME.into(),
                    pods::format_trigger_time(t),
                ),
                None => a.remove(LAST_CHANGE_TRIGGER_TIME),
            };
        };
        write_plan(&self.client, ns, key, plan, &self.tracker, &annotate).await
    }
}

/// Writes a plan's creates, updates and deletes, recording each in `tracker` under `key`.
pub(crate) async fn write_plan(
    client: &kube::Client,
    ns: &str,
    key: &str,
    plan: reconcile::Plan,
    tracker: &SliceTracker,
    annotate: &(dyn Fn(&mut EndpointSlice) + Sync),
) -> anyhow::Result<()> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let pp = PostParams::default();
    let record = |made: &EndpointSlice| {
        if let Some(n) = made.metadata.name.as_deref() {
            let rv = made.metadata.resource_version.as_deref().unwrap_or("0");
            tracker.record(key, n, Some(rv));
        }
    };
    for mut s in plan.create {
        annotate(&mut s);
        match api.create(&pp, &s).await {
            Ok(made) => record(&made),
            Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("being terminated") => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    for mut s in plan.update {
        annotate(&mut s);
        let slice_name = s.metadata.name.clone().unwrap_or_default();
        record(&api.replace(&slice_name, &pp, &s).await?);
    }
    for s in plan.delete {
        let slice_name = s.metadata.name.clone().unwrap_or_default();
        match api.delete(&slice_name, &DeleteParams::default()).await {
            Ok(_) => tracker.record(key, &slice_name, None),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
