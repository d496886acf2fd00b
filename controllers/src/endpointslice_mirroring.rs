//! The endpointslice-mirroring controller: for Services *without* a selector, mirrors
//! the hand-made core/v1 Endpoints of the same name into EndpointSlices (managed by
//! `endpointslicemirroring-controller.k8s.io`, owned by the Endpoints), so consumers of
//! slices see them too. Endpoints labelled `endpointslice.kubernetes.io/skip-mirror:
//! "true"` (as the apiserver's own `default/kubernetes`) and leader-election records are
//! not mirrored; mirrored slices go away when the Service gains a selector or the
//! Service or Endpoints go away.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::endpoints::pods::LAST_CHANGE_TRIGGER_TIME;
use crate::endpointslice::reconcile::{
    self, Groups, MANAGED_BY_LABEL, Plan, SERVICE_NAME_LABEL, endpoint_key, ports_key,
};
use crate::endpointslice::{SliceTracker, write_plan};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Upstream's `--mirroring-max-endpoints-per-subset`.
const MAX_PER_SUBSET: usize = 1000;

struct Controller {
    client: kube::Client,
    services: Store<Service>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
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
    let enqueue = move |ev: &Event<Service>| match ev {
        Event::Apply(s) | Event::InitApply(s) | Event::Delete(s) => q.add(key_of(s)),
        _ => {}
    };
    let services = informer(
        Api::all(client.clone()),
        watcher::Config::default(),
        enqueue,
    );
    let q = queue.clone();
    let endpoints = informer(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
        move |ev| match ev {
            Event::Apply(e) | Event::InitApply(e) | Event::Delete(e) => q.add(key_of(e)),
            _ => {}
        },
    );
    let q = queue.clone();
    let slices = informer(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={CONTROLLER_NAME}")),
        move |ev| {
            if let Event::Apply(s) | Event::Delete(s) = ev
                && let Some(n) = s
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
            {
                let ns = s.metadata.namespace.clone().unwrap_or_default();
                q.add(format!("{ns}/{n}"));
            }
        },
    );
    services.wait_until_ready().await?;
    endpoints.wait_until_ready().await?;
    slices.wait_until_ready().await?;
    let c = Arc::new(Controller {
        client,
        services,
        endpoints,
        slices,
        tracker: SliceTracker::default(),
    });
    let workers = ctx.options.concurrent_service_endpoint_syncs;
    queue
        .run(workers, "endpointslice-mirroring", move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let existing: Vec<EndpointSlice> = self
            .slices
            .state()
            .into_iter()
            .filter(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(SERVICE_NAME_LABEL))
                        == Some(&name.to_string())
            })
            .map(|s| s.as_ref().clone())
            .collect();
        if !self.tracker.caught_up(key, &existing) {
            anyhow::bail!("EndpointSlice informer cache is out of date for {key}");
        }
        let svc = self.services.get(&ObjectRef::new(name).within(ns));
        let eps = self.endpoints.get(&ObjectRef::new(name).within(ns));
        let mirror = match (&svc, &eps) {
            (Some(s), Some(e)) => should_mirror(s, e).then_some(e),
            _ => None,
        };
        let plan = match mirror {
            None => Plan {
                delete: existing,
                ..Default::default()
            },
            Some(e) => plan(e, existing),
        };
        write_plan(&self.client, ns, key, plan, &self.tracker, &|_| {}).await
    }
}

fn should_mirror(svc: &Service, eps: &Endpoints) -> bool {
    let selector = svc.spec.as_ref().and_then(|s| s.selector.as_ref());
    let skip = eps
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR))
        .is_some_and(|v| v == "true");
    let leader = eps
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    selector.is_none() && !skip && !leader
}

fn to_endpoint(a: &EndpointAddress, ready: bool) -> Option<(Endpoint, &'static str)> {
    let ip: std::net::IpAddr = a.ip.parse().ok()?;
    let address_type = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let endpoint = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..Default::default()
        }),
        target_ref: a.target_ref.clone(),
        node_name: a.node_name.clone(),
        hostname: a.hostname.clone().filter(|h| !h.is_empty()),
        ..Default::default()
    };
    Some((endpoint, address_type))
}

/// The mirrored slices for `eps`, packed into `existing` where possible.
fn plan(eps: &Endpoints, existing: Vec<EndpointSlice>) -> Plan {
    let mut groups = Groups::new();
    for subset in eps.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (a, r) in ready.chain(not_ready).take(MAX_PER_SUBSET) {
            let Some((ep, at)) = to_endpoint(a, r) else {
                continue;
            };
            let group = (at.to_string(), ports_key(&ports));
            let entry = groups
                .entry(group)
                .or_insert_with(|| (ports.clone(), BTreeMap::new()));
            entry.1.insert(endpoint_key(&ep), ep);
        }
    }
    let mut by_group = reconcile::group_existing(existing);
    let mut out = Plan::default();
    reconcile::pack(
        groups,
        &mut by_group,
        &|at, ports| new_slice(eps, at, ports),
        &mut out,
    );
    out.delete.extend(by_group.into_values().flatten());
    out
}

fn new_slice(eps: &Endpoints, address_type: &str, ports: Vec<EndpointPort>) -> EndpointSlice {
    let name = eps.metadata.name.clone().unwrap_or_default();
    let mut labels = eps.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let mut annotations = eps.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_CHANGE_TRIGGER_TIME);
    annotations.remove(LAST_APPLIED);
    let prefix: String = name.chars().take(57).collect();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            namespace: eps.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Endpoints".into(),
                name,
                uid: eps.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type.to_string(),
        endpoints: vec![],
        ports: Some(ports),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EndpointPort as CorePort, EndpointSubset};

    fn eps() -> Endpoints {
        let mut e = Endpoints {
            subsets: Some(vec![EndpointSubset {
                addresses: Some(vec![EndpointAddress {
                    ip: "192.168.1.1".into(),
                    ..Default::default()
                }]),
                not_ready_addresses: Some(vec![EndpointAddress {
                    ip: "fd00::1".into(),
                    ..Default::default()
                }]),
                ports: Some(vec![CorePort {
                    name: Some("http".into()),
                    port: 80,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
            }]),
            ..Default::default()
        };
        e.metadata.name = Some("ext".into());
        e.metadata.namespace = Some("ns".into());
        e.metadata.annotations = Some(BTreeMap::from([(
            LAST_APPLIED.to_string(),
            "{}".to_string(),
        )]));
        e
    }

    #[test]
    fn mirrors_by_address_family_with_readiness() {
        let p = plan(&eps(), vec![]);
        assert_eq!(p.create.len(), 2);
        let v4 = p
            .create
            .iter()
            .find(|s| s.address_type == "IPv4")
            .expect("v4");
        let v6 = p
            .create
            .iter()
            .find(|s| s.address_type == "IPv6")
            .expect("v6");
        let ready = |s: &EndpointSlice| s.endpoints[0].conditions.clone().and_then(|c| c.ready);
        assert_eq!(ready(v4), Some(true));
        assert_eq!(ready(v6), Some(false));
        let labels = v4.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert!(
            !v4.metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .contains_key(LAST_APPLIED)
        );
    }

    #[test]
    fn skip_mirror_and_selectors() {
        let mut svc = Service::default();
        let mut e = eps();
        assert!(should_mirror(&svc, &e));
        e.metadata.labels = Some(BTreeMap::from([(
            SKIP_MIRROR.to_string(),
            "true".to_string(),
        )]));
        assert!(!should_mirror(&svc, &e));
        svc.spec = Some(k8s_openapi::api::core::v1::ServiceSpec {
            selector: Some(BTreeMap::new()),
            ..Default::default()
        });
        assert!(!should_mirror(&svc, &eps()));
    }
}
