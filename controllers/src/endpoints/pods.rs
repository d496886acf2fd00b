//! What the endpoints and endpointslice controllers share about pods and services:
//! which pods back a service, whether a pod is ready, how a named `targetPort` resolves on
//! one pod, and the `endpoints.kubernetes.io/last-change-trigger-time` tracker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::Store;

/// The annotation carrying the time of the change that caused the last update.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The label marking Endpoints/EndpointSlices of a headless service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Whether the pod's `Ready` condition is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// When the pod's `Ready` condition last changed.
pub fn ready_transition_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod's IPs, `status.podIPs` or else `status.podIP`.
pub fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return vec![];
    };
    let ips: Vec<String> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    status
        .pod_ip
        .iter()
        .filter(|ip| !ip.is_empty())
        .cloned()
        .collect()
}

/// Whether a pod belongs in a service's endpoints at all: it has an IP, is not terminal,
/// and (unless terminating pods are included) is not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if pod_ips(pod).is_empty() {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    !matches!(phase(pod), "Succeeded" | "Failed")
}

/// Whether the pod's hostname is published: it has one and its subdomain is the service.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let spec = pod.spec.as_ref();
    let hostname = spec.and_then(|s| s.hostname.as_deref()).unwrap_or("");
    let subdomain = spec.and_then(|s| s.subdomain.as_deref()).unwrap_or("");
    !hostname.is_empty()
        && subdomain == svc.metadata.name.as_deref().unwrap_or("")
        && svc.metadata.namespace == pod.metadata.namespace
}

/// Resolves a service port's `targetPort` on one pod: a number as is, a name through the
/// pod's container ports of the same protocol.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// Whether `labels` carry every key/value of `selector` (a service selector).
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pods a service selects (same namespace, selector subset of labels).
pub fn pods_for_service(pods: &Store<Pod>, svc: &Service) -> Vec<std::sync::Arc<Pod>> {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return vec![];
    };
    pods.state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace == svc.metadata.namespace
                && selector_matches(selector, p.metadata.labels.as_ref())
        })
        .collect()
}

/// The keys of the services (with selectors) that select `pod`.
pub fn services_for_pod(services: &Store<Service>, pod: &Pod) -> Vec<String> {
    services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace == pod.metadata.namespace)
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.selector.as_ref())
                .is_some_and(|sel| selector_matches(sel, pod.metadata.labels.as_ref()))
        })
        .map(|s| crate::workqueue::key_of(s.as_ref()))
        .collect()
}

/// Remembers which services each pod belonged to, so that a pod whose labels change
/// re-syncs both its old and its new services (upstream compares old and new pod).
#[derive(Default)]
pub struct PodMembership {
    by_pod: Mutex<HashMap<String, Vec<String>>>,
}

impl PodMembership {
    /// The union of the services `pod` selects now and those it was in before; with
    /// `deleted` the pod is forgotten.
    pub fn update(&self, services: &Store<Service>, pod: &Pod, deleted: bool) -> Vec<String> {
        let key = crate::workqueue::key_of(pod);
        let now = if deleted {
            vec![]
        } else {
            services_for_pod(services, pod)
        };
        let mut map = self.by_pod.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = if deleted {
            map.remove(&key).unwrap_or_default()
        } else {
            map.insert(key, now.clone()).unwrap_or_default()
        };
        all.extend(now);
        if deleted {
            all.extend(services_for_pod(services, pod));
        }
        all.sort();
        all.dedup();
        all
    }
}

#[derive(Default)]
struct ServiceState {
    service_time: Option<Timestamp>,
    pod_times: HashMap<String, Timestamp>,
}

/// Computes the `last-change-trigger-time` annotation as upstream: the service's
/// creation time on the first sync, later the earliest trigger (pod Ready transition or
/// service creation) that changed since the previous sync; none when nothing changed.
#[derive(Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<String, ServiceState>>,
}

impl TriggerTimeTracker {
    pub fn compute(&self, key: &str, svc: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let known = states.contains_key(key);
        let state = states.entry(key.to_string()).or_default();
        let mut min: Option<Timestamp> = None;
        let mut times = HashMap::new();
        for pod in pods {
            let Some(t) = ready_transition_time(pod) else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if state.pod_times.get(&name).is_none_or(|old| t > *old) {
                min = Some(min.map_or(t, |m| m.min(t)));
            }
            times.insert(name, t);
        }
        let created = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(c) = created
            && state.service_time.is_none_or(|old| c > old)
        {
            min = Some(min.map_or(c, |m| m.min(c)));
        }
        state.pod_times = times;
        state.service_time = created;
        if !known {
            return created;
        }
        min
    }

    pub fn delete(&self, key: &str) {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// Formats a trigger time as upstream (RFC 3339, UTC, fractional seconds trimmed).
pub fn format_trigger_time(t: Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    fn pod_with_port(name: &str, port: i32, protocol: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(name.into()),
                        container_port: port,
                        protocol: Some(protocol.into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn named_target_port_resolves_per_pod_and_protocol() {
        let sp = ServicePort {
            port: 80,
            target_port: Some(IntOrString::String("http".into())),
            protocol: Some("TCP".into()),
            ..Default::default()
        };
        assert_eq!(
            find_port(&pod_with_port("http", 8080, "TCP"), &sp),
            Some(8080)
        );
        assert_eq!(find_port(&pod_with_port("http", 8080, "UDP"), &sp), None);
        assert_eq!(find_port(&pod_with_port("web", 8080, "TCP"), &sp), None);
        let numeric = ServicePort {
            port: 80,
            target_port: Some(IntOrString::Int(9376)),
            ..Default::default()
        };
        assert_eq!(find_port(&Pod::default(), &numeric), Some(9376));
    }

    #[test]
    fn selector_subset() {
        let sel = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let labels = BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("x".to_string(), "y".to_string()),
        ]);
        assert!(selector_matches(&sel, Some(&labels)));
        assert!(!selector_matches(&sel, None));
        assert!(selector_matches(&BTreeMap::new(), None));
    }
}
