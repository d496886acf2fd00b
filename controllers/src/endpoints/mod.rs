//! The endpoints controller: keeps one core/v1 `Endpoints` per Service with a selector,
//! listing the selected pods' IPs (ready pods in `addresses`, others in
//! `notReadyAddresses` unless `publishNotReadyAddresses`) with each service port resolved
//! on each pod. Services without a selector (like `default/kubernetes`, which the API
//! server maintains) and ExternalName services are left alone; Endpoints whose Service is
//! gone are deleted.

pub mod pods;
mod subsets;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::common::events::{EventRecorder, WARNING};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};
use pods::{HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME, PodMembership, TriggerTimeTracker};

/// Upstream caps an Endpoints object at this many addresses.
const MAX_CAPACITY: usize = 1000;
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Endpoints carrying this annotation are leader-election locks, never deleted here.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

struct Controller {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    triggers: TriggerTimeTracker,
    recorder: EventRecorder,
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
    let q = queue.clone();
    let endpoints = informer(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Delete(e) = ev {
                q.add(key_of(e));
            }
        },
    );
    services.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    endpoints.wait_until_ready().await?;
    check_leftover_endpoints(&endpoints, &queue);
    let c = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), "endpoint-controller"),
        client,
        services,
        pods,
        endpoints,
        triggers: TriggerTimeTracker::default(),
    });
    let workers = ctx.options.concurrent_endpoint_syncs;
    queue
        .run(workers, "endpoints", move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// Queues every existing Endpoints once so those without a Service get deleted.
fn check_leftover_endpoints(endpoints: &Store<Endpoints>, queue: &WorkQueue) {
    for e in endpoints.state() {
        let leader = e
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
        if !leader {
            queue.add(key_of(e.as_ref()));
        }
    }
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(&ObjectRef::new(name).within(ns)) else {
            if self
                .endpoints
                .get(&ObjectRef::new(name).within(ns))
                .is_some()
            {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.triggers.delete(key);
            return Ok(());
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") || spec.selector.is_none() {
            return Ok(());
        }
        let pods = pods::pods_for_service(&self.pods, &svc);
        let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let trigger = self.triggers.compute(key, &svc, &pod_refs);
        let subsets = subsets::build(&svc, &pod_refs);
        let current = self.endpoints.get(&ObjectRef::new(name).within(ns));
        let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
        if let Some(cur) = &current
            && up_to_date(cur, &subsets, &svc_labels)
        {
            return Ok(());
        }
        let mut new = current.as_deref().cloned().unwrap_or_else(|| Endpoints {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            ..Default::default()
        });
        let (subsets, truncated) = subsets::truncate(subsets, MAX_CAPACITY);
        new.subsets = (!subsets.is_empty()).then_some(subsets);
        let annotations = new.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match trigger {
            Some(t) => annotations.insert(
                LAST_CHANGE_TRIGGER_TIME.into(),
                pods::format_trigger_time(t),
            ),
            None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
        };
        if truncated {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        let mut labels = svc_labels;
        if is_headless(&spec) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        new.metadata.labels = Some(labels);
        self.write(&api, ns, name, new, current.is_none()).await
    }

    async fn write(
        &self,
        api: &Api<Endpoints>,
        ns: &str,
        name: &str,
        new: Endpoints,
        create: bool,
    ) -> anyhow::Result<()> {
        let pp = PostParams::default();
        let result = if create {
            api.create(&pp, &new).await.map(|_| ())
        } else {
            api.replace(name, &pp, &new).await.map(|_| ())
        };
        let Err(e) = result else {
            return Ok(());
        };
        if create && namespace_terminating(&e) {
            return Ok(());
        }
        let (reason, msg) = if create {
            (
                "FailedToCreateEndpoint",
                format!("Failed to create endpoint for service {ns}/{name}: {e}"),
            )
        } else {
            (
                "FailedToUpdateEndpoint",
                format!("Failed to update endpoint {ns}/{name}: {e}"),
            )
        };
        if !matches!(&e, kube::Error::Api(s) if s.code == 409) {
            self.recorder.record(&new, WARNING, reason, &msg).await;
        }
        Err(e.into())
    }
}

fn is_headless(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> bool {
    matches!(spec.cluster_ip.as_deref(), None | Some("") | Some("None"))
}

fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"))
}

/// Whether the stored Endpoints already say what we would write (labels compared
/// without the headless marker, which services never carry).
fn up_to_date(
    cur: &Endpoints,
    subsets: &[k8s_openapi::api::core::v1::EndpointSubset],
    svc_labels: &BTreeMap<String, String>,
) -> bool {
    let mut labels = cur.metadata.labels.clone().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    let cur_subsets = cur.subsets.clone().unwrap_or_default();
    let count: usize = subsets
        .iter()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    let annotated = cur
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(OVER_CAPACITY));
    subsets::equal_ignoring_resource_version(&cur_subsets, subsets)
        && &labels == svc_labels
        && annotated == (count > MAX_CAPACITY)
}
