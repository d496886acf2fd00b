//! The EndpointSlice reconciler, pure: from a Service, its pods and the slices it has,
//! the slices to create, update and delete. Endpoints are grouped by address type and by
//! the ports they offer (a named targetPort may resolve differently per pod); each group
//! is packed into slices of at most [`MAX_ENDPOINTS`], reusing existing slices first so
//! that a change touches as few slices as possible. A service with no endpoints keeps
//! one empty placeholder slice, as upstream.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::endpoints::pods;

/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS: usize = 100;
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";

/// What to write.
#[derive(Default, Debug)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

/// The address types a service's endpoints are published in.
pub fn address_types(svc: &Service) -> Vec<&'static str> {
    let spec = svc.spec.as_ref();
    let families = spec.and_then(|s| s.ip_families.clone()).unwrap_or_default();
    let mut out: Vec<&'static str> = families
        .iter()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some("IPv4"),
            "IPv6" => Some("IPv6"),
            _ => None,
        })
        .collect();
    if out.is_empty() {
        match spec.and_then(|s| s.cluster_ip.as_deref()) {
            Some(ip) if !ip.is_empty() && ip != "None" => {
                out.push(if ip.contains(':') { "IPv6" } else { "IPv4" })
            }
            _ => out.extend(["IPv4", "IPv6"]),
        }
    }
    out
}

/// (address type, ports as JSON).
pub type Group = (String, String);
/// Desired endpoints by group: the group's ports and its endpoints by identity.
pub type Groups = BTreeMap<Group, (Vec<EndpointPort>, BTreeMap<String, Endpoint>)>;

/// One pod's endpoint for `svc` in `address_type`, with the ports it offers.
fn pod_endpoint(
    svc: &Service,
    pod: &Pod,
    address_type: &str,
    zone: Option<String>,
) -> Option<(Endpoint, Vec<EndpointPort>)> {
    let v6 = address_type == "IPv6";
    let ip = pods::pod_ips(pod)
        .into_iter()
        .find(|ip| ip.contains(':') == v6)?;
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let serving = pods::is_pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|sp| {
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(pods::find_port(pod, sp)?),
                protocol: sp.protocol.clone(),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    let hostname = pods::should_set_hostname(pod, svc)
        .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
        .flatten();
    let endpoint = Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions {
            ready: Some(publish || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname,
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        zone,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Some((endpoint, ports))
}

pub fn ports_key(ports: &[EndpointPort]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
    serde_json::to_string(&ports).unwrap_or_default()
}

pub fn endpoint_key(e: &Endpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_else(|| e.addresses.join(","))
}

/// The desired endpoints, grouped.
fn desired(svc: &Service, pods: &[&Pod], zone_of: &dyn Fn(&str) -> Option<String>) -> Groups {
    let mut groups = Groups::new();
    for at in address_types(svc) {
        for pod in pods {
            if !pods::should_pod_be_in_endpoints(pod, true) {
                continue;
            }
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
            let zone = node.and_then(zone_of);
            let Some((ep, mut ports)) = pod_endpoint(svc, pod, at, zone) else {
                continue;
            };
            ports.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
            let group = (at.to_string(), ports_key(&ports));
            let entry = groups
                .entry(group)
                .or_insert_with(|| (ports, BTreeMap::new()));
            entry.1.insert(endpoint_key(&ep), ep);
        }
    }
    groups
}

/// The labels every slice of `svc` carries.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let cluster_ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    if matches!(cluster_ip, None | Some("") | Some("None")) {
        labels.insert(pods::HEADLESS_LABEL.into(), String::new());
    }
    labels
}

fn new_slice(svc: &Service, address_type: &str, ports: Vec<EndpointPort>) -> EndpointSlice {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let prefix: String = name.chars().take(57).collect();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(slice_labels(svc)),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name,
                uid: svc.metadata.uid.clone().unwrap_or_default(),
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

fn sort_endpoints(eps: &mut [Endpoint]) {
    eps.sort_by(|a, b| a.addresses.cmp(&b.addresses));
}

/// Computes the plan; `zone_of` gives a node's zone label.
pub fn plan(
    svc: &Service,
    pods: &[&Pod],
    existing: Vec<EndpointSlice>,
    zone_of: &dyn Fn(&str) -> Option<String>,
) -> Plan {
    let groups = desired(svc, pods, zone_of);
    let mut by_group = group_existing(existing);
    if groups.is_empty() {
        return placeholder(svc, by_group, slice_labels(svc));
    }
    let mut out = Plan::default();
    pack(
        groups,
        &mut by_group,
        &|at, ports| new_slice(svc, at, ports),
        &mut out,
    );
    out.delete.extend(by_group.into_values().flatten());
    out
}

/// Existing slices by (address type, ports).
pub fn group_existing(existing: Vec<EndpointSlice>) -> HashMap<Group, Vec<EndpointSlice>> {
    let mut by_group: HashMap<Group, Vec<EndpointSlice>> = HashMap::new();
    for s in existing {
        let key = (
            s.address_type.clone(),
            ports_key(s.ports.as_deref().unwrap_or(&[])),
        );
        by_group.entry(key).or_default().push(s);
    }
    by_group
}

/// Makes an existing slice's labels (and, when the template has them, annotations other
/// than the trigger time) those of `template`; whether anything changed.
fn sync_meta(s: &mut EndpointSlice, template: &EndpointSlice) -> bool {
    let mut changed = false;
    if s.metadata.labels != template.metadata.labels {
        s.metadata.labels = template.metadata.labels.clone();
        changed = true;
    }
    if let Some(want) = &template.metadata.annotations {
        let mut have = s.metadata.annotations.clone().unwrap_or_default();
        have.remove(pods::LAST_CHANGE_TRIGGER_TIME);
        if &have != want {
            s.metadata.annotations = Some(want.clone());
            changed = true;
        }
    }
    changed
}

/// Packs each group's endpoints into the group's existing slices (taken out of
/// `by_group`), then into new slices made from `template`, at most [`MAX_ENDPOINTS`]
/// each.
pub fn pack(
    groups: Groups,
    by_group: &mut HashMap<Group, Vec<EndpointSlice>>,
    template: &dyn Fn(&str, Vec<EndpointPort>) -> EndpointSlice,
    out: &mut Plan,
) {
    for (group, (ports, mut want)) in groups {
        let model = template(&group.0, ports.clone());
        let mut slices = by_group.remove(&group).unwrap_or_default();
        slices.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
        let mut kept: Vec<(EndpointSlice, bool)> = vec![];
        for mut s in slices {
            let before = std::mem::take(&mut s.endpoints);
            s.endpoints = before
                .iter()
                .filter_map(|e| want.remove(&endpoint_key(e)))
                .collect();
            let changed = s.endpoints != before;
            if s.endpoints.is_empty() {
                out.delete.push(s);
            } else {
                kept.push((s, changed));
            }
        }
        let mut rest: Vec<Endpoint> = want.into_values().collect();
        for (s, changed) in kept.iter_mut() {
            while s.endpoints.len() < MAX_ENDPOINTS && !rest.is_empty() {
                s.endpoints.push(rest.remove(0));
                *changed = true;
            }
        }
        for (mut s, changed) in kept {
            let relabelled = sync_meta(&mut s, &model);
            if changed || relabelled {
                sort_endpoints(&mut s.endpoints);
                out.update.push(s);
            }
        }
        for chunk in rest.chunks(MAX_ENDPOINTS) {
            let mut s = model.clone();
            s.endpoints = chunk.to_vec();
            sort_endpoints(&mut s.endpoints);
            out.create.push(s);
        }
    }
}

/// No endpoints at all: keep (or make) one empty slice, delete the others.
fn placeholder(
    svc: &Service,
    by_group: HashMap<Group, Vec<EndpointSlice>>,
    labels: BTreeMap<String, String>,
) -> Plan {
    let mut out = Plan::default();
    let address_type = address_types(svc)[0];
    let mut all: Vec<EndpointSlice> = by_group.into_values().flatten().collect();
    let keep = all.iter().position(|s| {
        s.address_type == address_type && s.ports.as_ref().is_none_or(|p| p.is_empty())
    });
    match keep {
        Some(i) => {
            let mut s = all.remove(i);
            if !s.endpoints.is_empty() || s.metadata.labels.as_ref() != Some(&labels) {
                s.endpoints.clear();
                s.metadata.labels = Some(labels);
                out.update.push(s);
            }
        }
        None => out.create.push(new_slice(svc, address_type, vec![])),
    }
    out.delete = all;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PodCondition, PodIP, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn pod(i: usize, ready: bool) -> Pod {
        let ip = format!("10.0.{}.{}", i / 250, i % 250 + 1);
        let mut p = Pod {
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ips: Some(vec![PodIP { ip: ip.clone() }]),
                pod_ip: Some(ip),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata.name = Some(format!("p{i}"));
        p.metadata.namespace = Some("ns".into());
        p.metadata.uid = Some(format!("uid-{i}"));
        p
    }

    fn svc() -> Service {
        let mut s = Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.10".into()),
                ip_families: Some(vec!["IPv4".into()]),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::Int(8080)),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        s.metadata.name = Some("web".into());
        s.metadata.namespace = Some("ns".into());
        s.metadata.uid = Some("svc-uid".into());
        s
    }

    fn named(mut slices: Vec<EndpointSlice>) -> Vec<EndpointSlice> {
        for (i, s) in slices.iter_mut().enumerate() {
            s.metadata.name = Some(format!("web-{i}"));
        }
        slices
    }

    #[test]
    fn packs_at_most_100_per_slice_and_reuses_slices() {
        let pods: Vec<Pod> = (0..250).map(|i| pod(i, true)).collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let p = plan(&svc(), &refs, vec![], &|_| None);
        let mut sizes: Vec<usize> = p.create.iter().map(|s| s.endpoints.len()).collect();
        sizes.sort();
        assert_eq!(sizes, [50, 100, 100]);
        let s = &p.create[0];
        let labels = s.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(SERVICE_NAME_LABEL).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert_eq!(s.address_type, "IPv4");
        let owner = &s.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Service", Some(true))
        );

        // the same state again: nothing to do
        let existing = named(p.create);
        let again = plan(&svc(), &refs, existing.clone(), &|_| None);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());

        // one pod gone, one new: only touched slices are written
        let mut pods2: Vec<Pod> = pods[1..].to_vec();
        pods2.push(pod(300, false));
        let refs2: Vec<&Pod> = pods2.iter().collect();
        let p2 = plan(&svc(), &refs2, existing, &|_| None);
        assert!(p2.create.is_empty() && p2.delete.is_empty());
        assert!(!p2.update.is_empty() && p2.update.len() <= 2);
        let new_ep = p2
            .update
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .find(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some("p300"))
            .expect("new pod placed");
        let cond = new_ep.conditions.clone().unwrap_or_default();
        assert_eq!(
            (cond.ready, cond.serving, cond.terminating),
            (Some(false), Some(false), Some(false))
        );
    }

    #[test]
    fn terminating_pods_stay_as_terminating_and_not_ready() {
        let mut p = pod(1, true);
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        let out = plan(&svc(), &[&p], vec![], &|_| Some("z1".into()));
        let ep = &out.create[0].endpoints[0];
        let cond = ep.conditions.clone().unwrap_or_default();
        assert_eq!(
            (cond.ready, cond.serving, cond.terminating),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(ep.zone.as_deref(), Some("z1"));
    }

    #[test]
    fn no_endpoints_leaves_one_placeholder() {
        let p = plan(&svc(), &[], vec![], &|_| None);
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty());
        let pods: Vec<Pod> = (0..3).map(|i| pod(i, true)).collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let existing = named(plan(&svc(), &refs, vec![], &|_| None).create);
        let emptied = plan(&svc(), &[], existing, &|_| None);
        assert_eq!(emptied.create.len(), 1, "placeholder");
        assert_eq!(emptied.delete.len(), 1, "the slice of the old ports");
    }
}
