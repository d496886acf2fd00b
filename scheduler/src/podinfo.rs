//! `PodInfo`: a pod with everything the plugins read precomputed once (requests, host
//! ports, affinity terms compiled into selectors, priority), shared by `Arc` between the
//! queue, the cache and the plugins so no scheduling step re-parses a pod.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};

use crate::resources::{Resource, pod_requests};
use crate::selectors::{Labels, Selector};

/// One compiled pod (anti-)affinity term (`framework.AffinityTerm`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AffinityTerm {
    pub namespaces: Vec<String>,
    /// `None` when the term has no namespaceSelector (then only `namespaces` count).
    pub namespace_selector: Option<Selector>,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(owner: &Pod, t: &PodAffinityTerm) -> Self {
        let owner_ns = owner.metadata.namespace.clone().unwrap_or_default();
        let owner_labels = owner.metadata.labels.clone().unwrap_or_default();
        let mut namespaces = t.namespaces.clone().unwrap_or_default();
        if namespaces.is_empty() && t.namespace_selector.is_none() {
            namespaces.push(owner_ns);
        }
        let mut selector = Selector::new(t.label_selector.as_ref());
        if t.label_selector.is_some() {
            for k in t.match_label_keys.iter().flatten() {
                if let Some(v) = owner_labels.get(k) {
                    selector.and_equals(k, v);
                }
            }
            for k in t.mismatch_label_keys.iter().flatten() {
                if let Some(v) = owner_labels.get(k) {
                    selector.and_not_equals(k, v);
                }
            }
        }
        AffinityTerm {
            namespaces,
            namespace_selector: t
                .namespace_selector
                .as_ref()
                .map(|s| Selector::new(Some(s))),
            selector,
            topology_key: t.topology_key.clone(),
        }
    }

    /// Whether `pod` (in a namespace with `ns_labels`) is selected by this term.
    pub fn matches(&self, pod: &PodInfo, ns_labels: Option<&Labels>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.matches(ns_labels.unwrap_or(&Labels::new())));
        ns_ok && self.selector.matches(&pod.labels)
    }
}

/// A pod and its precomputed scheduling facts.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Labels,
    pub priority: i32,
    pub requests: Resource,
    pub non_zero_requests: Resource,
    /// (hostIP, protocol, hostPort) of containers asking for host ports.
    pub host_ports: Vec<(String, String, i32)>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<(i32, AffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i32, AffinityTerm)>,
    pub terminating: bool,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Arc<PodInfo> {
        let (requests, non_zero_requests) = pod_requests(&pod);
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        for c in spec.into_iter().flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        }) {
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                    let ip = p.host_ip.clone().unwrap_or_default();
                    let ip = if ip.is_empty() { "0.0.0.0".into() } else { ip };
                    host_ports.push((ip, p.protocol.clone().unwrap_or("TCP".into()), hp));
                }
            }
        }
        let aff = spec.and_then(|s| s.affinity.as_ref());
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        let req = |ts: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            ts.into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(&pod, t))
                .collect()
        };
        let required_affinity = req(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = req(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let pref = |ts: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            ts.into_iter()
                .flatten()
                .map(|w| (w.weight, AffinityTerm::new(&pod, &w.pod_affinity_term)))
                .collect::<Vec<_>>()
        };
        let preferred_affinity = pref(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = pref(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        Arc::new(PodInfo {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            requests,
            non_zero_requests,
            host_ports,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            pod,
        })
    }

    /// `namespace/name`, the key the queue and cache use.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    pub fn scheduler_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
    }

    pub fn nominated_node_name(&self) -> Option<&str> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// When the pod started (for preemption's tie-breaks), else its creation.
    pub fn start_time_nanos(&self) -> i64 {
        let st = self.pod.status.as_ref().and_then(|s| s.start_time.as_ref());
        let t = st.or(self.pod.metadata.creation_timestamp.as_ref());
        t.map(|t| t.0.as_nanosecond() as i64).unwrap_or(i64::MAX)
    }
}

/// Namespace labels by namespace name, for terms with a namespaceSelector.
pub type NamespaceLabels = HashMap<String, Labels>;
