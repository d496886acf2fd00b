//! Building the `subsets` of an Endpoints object from a service and its pods, packed as
//! upstream's `RepackSubsets`: addresses offering the same set of ports share a subset,
//! ready and not-ready addresses kept apart, everything sorted so that equal inputs give
//! equal objects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service,
};

use super::pods;

/// The address of `pod` for `svc`: the pod IP of the service's (first) IP family.
pub fn pod_address(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let ips = pods::pod_ips(pod);
    let spec = svc.spec.as_ref();
    let v6 = match spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        Some(f) => f == "IPv6",
        None => match spec.and_then(|s| s.cluster_ip.as_deref()) {
            Some(ip) if !ip.is_empty() && ip != "None" => ip.contains(':'),
            _ => ips.first().is_some_and(|ip| ip.contains(':')),
        },
    };
    let ip = ips.into_iter().find(|ip| ip.contains(':') == v6)?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    let hostname = pods::should_set_hostname(pod, svc)
        .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
        .flatten();
    Some(EndpointAddress {
        ip,
        hostname,
        node_name: node,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

type PortKey = Vec<(String, i32, String, String)>;
type AddrKey = (String, String, String);

fn port_key(p: &EndpointPort) -> (String, i32, String, String) {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

fn addr_key(a: &EndpointAddress) -> AddrKey {
    let uid = a
        .target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_default();
    (a.ip.clone(), uid, a.hostname.clone().unwrap_or_default())
}

/// The subsets for `svc` over `pods` (already the pods its selector selects).
pub fn build(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_ports = spec.ports.clone().unwrap_or_default();
    // (address, ready) -> ports it offers
    let mut offers: BTreeMap<(bool, AddrKey), (EndpointAddress, Vec<EndpointPort>)> =
        BTreeMap::new();
    for pod in pods {
        if !pods::should_pod_be_in_endpoints(pod, publish) {
            continue;
        }
        let Some(addr) = pod_address(svc, pod) else {
            continue;
        };
        let ready = publish || pods::is_pod_ready(pod);
        let entry = offers
            .entry((ready, addr_key(&addr)))
            .or_insert_with(|| (addr, vec![]));
        if svc_ports.is_empty() {
            continue; // headless without ports: the address alone
        }
        for sp in &svc_ports {
            let Some(port) = pods::find_port(pod, sp) else {
                continue;
            };
            entry.1.push(EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: sp.protocol.clone(),
                app_protocol: sp.app_protocol.clone(),
            });
        }
    }
    let headless_no_ports = svc_ports.is_empty() && spec.cluster_ip.as_deref() == Some("None");
    let mut by_ports: BTreeMap<PortKey, (Vec<EndpointPort>, EndpointSubset)> = BTreeMap::new();
    for ((ready, _), (addr, mut ports)) in offers {
        if ports.is_empty() && !headless_no_ports {
            continue; // no port resolved on this pod
        }
        ports.sort_by_key(port_key);
        ports.dedup_by_key(|p| port_key(p));
        let key: PortKey = ports.iter().map(port_key).collect();
        let (_, subset) = by_ports
            .entry(key)
            .or_insert_with(|| (ports, EndpointSubset::default()));
        let list = if ready {
            subset.addresses.get_or_insert_with(Vec::new)
        } else {
            subset.not_ready_addresses.get_or_insert_with(Vec::new)
        };
        list.push(addr);
    }
    by_ports
        .into_values()
        .map(|(ports, mut subset)| {
            subset.ports = (!ports.is_empty()).then_some(ports);
            subset
        })
        .collect()
}

/// Caps the subsets at `max` addresses (ready ones kept first, spread over subsets in
/// proportion), returning whether anything was cut.
pub fn truncate(mut subsets: Vec<EndpointSubset>, max: usize) -> (Vec<EndpointSubset>, bool) {
    let total: usize = subsets
        .iter()
        .map(|s| len(&s.addresses) + len(&s.not_ready_addresses))
        .sum();
    if total <= max {
        return (subsets, false);
    }
    let mut budget = max;
    for s in subsets.iter_mut() {
        let keep = len(&s.addresses).min(budget);
        if let Some(a) = s.addresses.as_mut() {
            a.truncate(keep);
        }
        budget -= keep;
    }
    for s in subsets.iter_mut() {
        let keep = len(&s.not_ready_addresses).min(budget);
        if let Some(a) = s.not_ready_addresses.as_mut() {
            a.truncate(keep);
        }
        budget -= keep;
    }
    subsets.retain(|s| len(&s.addresses) + len(&s.not_ready_addresses) > 0);
    for s in subsets.iter_mut() {
        if s.addresses.as_ref().is_some_and(Vec::is_empty) {
            s.addresses = None;
        }
        if s.not_ready_addresses.as_ref().is_some_and(Vec::is_empty) {
            s.not_ready_addresses = None;
        }
    }
    (subsets, true)
}

fn len(v: &Option<Vec<EndpointAddress>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// Compares subsets ignoring the pods' resourceVersions in `targetRef`.
pub fn equal_ignoring_resource_version(a: &[EndpointSubset], b: &[EndpointSubset]) -> bool {
    let strip = |ss: &[EndpointSubset]| -> Vec<EndpointSubset> {
        let mut ss = ss.to_vec();
        for s in &mut ss {
            for a in s
                .addresses
                .iter_mut()
                .chain(s.not_ready_addresses.iter_mut())
                .flatten()
            {
                if let Some(r) = a.target_ref.as_mut() {
                    r.resource_version = None;
                }
            }
        }
        ss
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PodCondition, PodIP, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        let mut p = Pod {
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                pod_ips: Some(vec![PodIP { ip: ip.into() }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p
    }

    fn svc(publish: bool) -> Service {
        let mut s = Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.0.0.1".into()),
                publish_not_ready_addresses: Some(publish),
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
        s
    }

    #[test]
    fn ready_and_not_ready_share_a_subset_by_ports() {
        let (a, b, c) = (
            pod("a", "10.1.0.2", true),
            pod("b", "10.1.0.1", false),
            pod("c", "10.1.0.3", true),
        );
        let subsets = build(&svc(false), &[&a, &b, &c]);
        assert_eq!(subsets.len(), 1);
        let ips = |v: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            v.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        assert_eq!(ips(&subsets[0].addresses), ["10.1.0.2", "10.1.0.3"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.1.0.1"]);
        let ports = subsets[0].ports.clone().unwrap_or_default();
        assert_eq!(ports[0].port, 8080);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        let published = build(&svc(true), &[&a, &b]);
        assert_eq!(ips(&published[0].addresses).len(), 2);
        assert!(published[0].not_ready_addresses.is_none());
    }

    #[test]
    fn terminal_and_ipless_pods_are_left_out() {
        let mut done = pod("d", "10.1.0.4", false);
        if let Some(s) = done.status.as_mut() {
            s.phase = Some("Succeeded".into());
        }
        let mut noip = pod("e", "", false);
        if let Some(s) = noip.status.as_mut() {
            s.pod_ips = None;
        }
        assert!(build(&svc(false), &[&done, &noip]).is_empty());
    }

    #[test]
    fn truncation_keeps_ready_first() {
        let pods: Vec<Pod> = (0..5)
            .map(|i| pod(&format!("p{i}"), &format!("10.1.0.{i}"), i % 2 == 0))
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let (subsets, cut) = truncate(build(&svc(false), &refs), 3);
        assert!(cut);
        assert_eq!(len(&subsets[0].addresses), 3);
        assert!(subsets[0].not_ready_addresses.is_none());
    }
}
