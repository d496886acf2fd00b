//! The scheduler cache: one `NodeInfo` per node (its node object, the pods on it and their
//! aggregated requests, ports and images), the pods the scheduler has *assumed* onto a node
//! before the binding is observed, and namespace labels. The scheduling cycle reads it in
//! place (no per-pod snapshot copy); informer events and the binder update it.
//!
//! Indexes kept beside the nodes let the plugins that select pods by namespace (pod
//! affinity, topology spread) read only the pods they can select instead of every pod in
//! the cluster: pods by namespace, pods with an affinity term, and the values each node
//! label key takes. The per-domain counters of `topology` are updated here too, on every
//! pod change and whenever a node's labels change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::owners::Owners;
use crate::podinfo::{NamespaceLabels, PodInfo};
use crate::resources::Resource;
use crate::selectors::Labels;
use crate::topology::{Counts, Memo, Selection, TermIndex};

/// Aggregated information about one node.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while pods are known on a node whose object has not been seen (or is gone).
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resource,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    /// (hostIP, protocol, port) in use.
    pub used_ports: Vec<(String, String, i32)>,
    /// Normalized image name -> size in bytes.
    pub images: HashMap<String, i64>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let mut n = NodeInfo::default();
        n.set_node(node);
        n
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(Resource::from_list)
            .unwrap_or_default();
        self.images.clear();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in img.names.iter().flatten() {
                self.images
                    .insert(normalize_image(name), img.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_requested.add(&p.non_zero_requests);
        self.used_ports.extend(p.host_ports.iter().cloned());
        self.pods.push(p);
    }

    /// Removes the pod with this key; returns whether it was here.
    pub fn remove_pod(&mut self, key_ns: &str, key_name: &str) -> bool {
        let Some(i) = self
            .pods
            .iter()
            .position(|p| p.namespace == key_ns && p.name == key_name)
        else {
            return false;
        };
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_requested.sub(&p.non_zero_requests);
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        true
    }
}

/// Image names as the kubelet reports them: a missing tag means `:latest`.
pub fn normalize_image(name: &str) -> String {
    if name.contains('@') {
        return name.to_string();
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

struct PodState {
    node: String,
    assumed: bool,
}

/// Pods by a key (their name, or `namespace/name`), each with its node entry's index.
pub type PodsAt = HashMap<String, (usize, Arc<PodInfo>)>;

/// Nodes, the pods on them, and assumed pods.
#[derive(Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<String, PodState>,
    /// How many nodes report each image (for ImageLocality's spread factor).
    pub image_nodes: HashMap<String, usize>,
    namespaces: NamespaceLabels,
    /// The (anti-)affinity terms of the placed pods, counted per domain.
    terms: TermIndex,
    /// Per-domain counts of the selections scheduling cycles asked about.
    memo: Mutex<Memo>,
    /// Pods by namespace, then name.
    by_namespace: HashMap<String, PodsAt>,
    /// Pods with any (anti-)affinity term, by `namespace/name`.
    with_affinity: PodsAt,
    /// Per node label key: each value it takes -> how many nodes (with a node object)
    /// carry it.
    label_values: HashMap<String, HashMap<String, usize>>,
    /// Count of nodes that have a node object.
    real_nodes: usize,
    /// The selectors of Services and controllers, for default topology spreading.
    pub owners: Owners,
}

impl Cache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every node entry, including placeholders without a node object.
    pub fn all(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Mutable access for the preemption dry run's cloned views.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn num_nodes(&self) -> usize {
        self.real_nodes
    }

    /// Labels of each namespace the scheduler has seen.
    pub fn namespaces(&self) -> &NamespaceLabels {
        &self.namespaces
    }

    /// Records a namespace's labels.
    pub fn set_namespace(&mut self, name: String, labels: Labels) {
        if self.namespaces.get(&name) != Some(&labels) {
            self.namespaces.insert(name, labels);
            self.memo_mut().forget_namespace_selections();
        }
    }

    /// Forgets a deleted namespace.
    pub fn remove_namespace(&mut self, name: &str) {
        if self.namespaces.remove(name).is_some() {
            self.memo_mut().forget_namespace_selections();
        }
    }

    /// The (anti-)affinity terms of the placed pods, counted per domain.
    pub fn terms(&self) -> &TermIndex {
        &self.terms
    }

    fn memo(&self) -> MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn memo_mut(&mut self) -> &mut Memo {
        self.memo.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// The memoized counts of a selection.
    pub fn memoized(&self, sel: &Selection) -> Option<Counts> {
        self.memo().get(sel)
    }

    /// Keeps the counts of a selection (computed from this cache) up to date from now on.
    pub fn memoize(&self, sel: Selection, counts: Counts) {
        self.memo().insert(sel, counts);
    }

    /// How many selections are memoized.
    pub fn memoized_len(&self) -> usize {
        self.memo().len()
    }

    /// Counts (positive delta) or uncounts a pod in the topology counters, as placed on
    /// a node with these labels.
    fn count_pod(
        terms: &mut TermIndex,
        memo: &mut Mutex<Memo>,
        namespaces: &NamespaceLabels,
        p: &PodInfo,
        node_labels: &Labels,
        delta: i64,
    ) {
        if node_labels.is_empty() {
            return;
        }
        if p.has_affinity() {
            terms.count(p, node_labels, delta);
        }
        memo.get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .count(p, node_labels, namespaces, delta);
    }

    /// Moves the node's pods in the topology counters from the domains of its old labels
    /// to those of its current ones.
    fn recount_node(&mut self, i: usize, old: &Labels) {
        let n = &self.nodes[i];
        for p in &n.pods {
            Self::count_pod(
                &mut self.terms,
                &mut self.memo,
                &self.namespaces,
                p,
                old,
                -1,
            );
            Self::count_pod(
                &mut self.terms,
                &mut self.memo,
                &self.namespaces,
                p,
                &n.labels,
                1,
            );
        }
    }

    /// The pods of one namespace, by name, with their node entry's index.
    pub fn pods_in_namespace(&self, ns: &str) -> Option<&PodsAt> {
        self.by_namespace.get(ns)
    }

    /// The pods with any (anti-)affinity term, with their node entry's index.
    pub fn pods_with_affinity(&self) -> &PodsAt {
        &self.with_affinity
    }

    /// The values the node label `key` takes over nodes with a node object, each with
    /// its number of nodes.
    pub fn label_values(&self, key: &str) -> Option<&HashMap<String, usize>> {
        self.label_values.get(key)
    }

    /// The entry at an index of `all()`.
    pub fn at(&self, i: usize) -> &NodeInfo {
        &self.nodes[i]
    }

    /// The index of a node's entry in `all()`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn count_labels(&mut self, labels: &Labels, delta: isize) {
        for (k, v) in labels {
            let vals = self.label_values.entry(k.clone()).or_default();
            let c = vals.entry(v.clone()).or_default();
            *c = c.saturating_add_signed(delta);
            if *c == 0 {
                vals.remove(v);
                if vals.is_empty() {
                    self.label_values.remove(k);
                }
            }
        }
    }

    /// The index of the node's entry, created (without a node object) if missing.
    fn entry_index(&mut self, name: &str) -> usize {
        match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.nodes.push(NodeInfo {
                    name: name.to_string(),
                    ..Default::default()
                });
                self.index.insert(name.to_string(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        }
    }

    fn count_images(&mut self, images: &HashMap<String, i64>, delta: isize) {
        for name in images.keys() {
            let c = self.image_nodes.entry(name.clone()).or_default();
            *c = c.saturating_add_signed(delta);
        }
    }

    /// Adds or updates a node object.
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let old_images = self.node(&name).map(|n| n.images.clone());
        let had = self.node(&name).is_some_and(|n| n.node.is_some());
        if let Some(imgs) = old_images {
            self.count_images(&imgs, -1);
        }
        let i = self.entry_index(&name);
        // A placeholder entry (no node object) has no labels.
        let old_labels = std::mem::take(&mut self.nodes[i].labels);
        self.nodes[i].set_node(node);
        let imgs = self.nodes[i].images.clone();
        self.count_images(&imgs, 1);
        // Node status updates come often and rarely change labels: the counters are
        // touched (and the labels copied) only when they do.
        if self.nodes[i].labels != old_labels {
            self.count_labels(&old_labels, -1);
            let labels = self.nodes[i].labels.clone();
            self.count_labels(&labels, 1);
            self.recount_node(i, &old_labels);
        }
        if !had {
            self.real_nodes += 1;
        }
    }

    /// Removes a node object; its pods stay accounted until they are deleted.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        let imgs = std::mem::take(&mut self.nodes[i].images);
        self.count_images(&imgs, -1);
        if self.nodes[i].node.take().is_some() {
            self.real_nodes -= 1;
            let labels = std::mem::take(&mut self.nodes[i].labels);
            self.count_labels(&labels, -1);
            self.recount_node(i, &labels);
        }
        if self.nodes[i].pods.is_empty() {
            self.nodes.swap_remove(i);
            self.index.remove(name);
            if i < self.nodes.len() {
                let moved = self.nodes[i].name.clone();
                self.index.insert(moved, i);
                // The pod indexes name the moved entry by its old position.
                for p in &self.nodes[i].pods {
                    if let Some(e) = self
                        .by_namespace
                        .get_mut(&p.namespace)
                        .and_then(|m| m.get_mut(&p.name))
                    {
                        e.0 = i;
                    }
                    if let Some(e) = self.with_affinity.get_mut(&p.key()) {
                        e.0 = i;
                    }
                }
            }
        }
    }

    /// Records a pod bound (or being bound) to a node. Replaces any earlier version, so an
    /// informer update confirms an assumed pod.
    pub fn add_pod(&mut self, p: Arc<PodInfo>, node: &str, assumed: bool) {
        let key = p.key();
        self.remove_pod(&p.namespace, &p.name);
        let i = self.entry_index(node);
        if p.has_affinity() {
            self.with_affinity.insert(key.clone(), (i, p.clone()));
        }
        self.by_namespace
            .entry(p.namespace.clone())
            .or_default()
            .insert(p.name.clone(), (i, p.clone()));
        let n = &self.nodes[i];
        Self::count_pod(
            &mut self.terms,
            &mut self.memo,
            &self.namespaces,
            &p,
            &n.labels,
            1,
        );
        self.nodes[i].add_pod(p);
        self.pods.insert(
            key,
            PodState {
                node: node.to_string(),
                assumed,
            },
        );
    }

    /// Forgets a pod (deleted, or an assumed pod whose binding failed).
    pub fn remove_pod(&mut self, ns: &str, name: &str) -> bool {
        let key = format!("{ns}/{name}");
        let Some(st) = self.pods.remove(&key) else {
            return false;
        };
        self.with_affinity.remove(&key);
        if let Some(m) = self.by_namespace.get_mut(ns) {
            if let Some((i, p)) = m.remove(name) {
                let labels = &self.nodes[i].labels;
                Self::count_pod(
                    &mut self.terms,
                    &mut self.memo,
                    &self.namespaces,
                    &p,
                    labels,
                    -1,
                );
            }
            if m.is_empty() {
                self.by_namespace.remove(ns);
            }
        }
        if let Some(&i) = self.index.get(&st.node) {
            let n = &mut self.nodes[i];
            n.remove_pod(ns, name);
            if n.node.is_none() && n.pods.is_empty() {
                self.remove_node(&st.node);
            }
        }
        true
    }

    /// Whether the pod is in the cache and only assumed (binding not yet observed).
    pub fn is_assumed(&self, ns: &str, name: &str) -> bool {
        self.pods
            .get(&format!("{ns}/{name}"))
            .is_some_and(|s| s.assumed)
    }

    /// (namespace, name) of every pod whose binding has been observed.
    pub fn confirmed_pods(&self) -> Vec<(String, String)> {
        self.pods
            .iter()
            .filter(|(_, s)| !s.assumed)
            .filter_map(|(k, _)| k.split_once('/'))
            .map(|(ns, n)| (ns.to_string(), n.to_string()))
            .collect()
    }

    /// The node a cached pod is on.
    pub fn pod_node(&self, ns: &str, name: &str) -> Option<&str> {
        self.pods
            .get(&format!("{ns}/{name}"))
            .map(|s| s.node.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "images": [{"names": ["busybox"], "sizeBytes": 100}]}
            }))
            .expect("node"),
        )
    }

    fn pod(name: &str, cpu: &str) -> Arc<PodInfo> {
        PodInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
            }))
            .expect("pod"),
        ))
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::new();
        c.upsert_node(node("n1"));
        c.add_pod(pod("a", "1"), "n1", true);
        assert!(c.is_assumed("default", "a"));
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(1000));
        // The informer observes the binding: replaces, does not double count.
        c.add_pod(pod("a", "1"), "n1", false);
        assert!(!c.is_assumed("default", "a"));
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(1000));
        assert!(c.remove_pod("default", "a"));
        assert_eq!(c.node("n1").map(|n| n.requested.milli_cpu), Some(0));
        assert_eq!(c.image_nodes.get("busybox:latest"), Some(&1));
    }

    #[test]
    fn pods_before_node_and_node_removal() {
        let mut c = Cache::new();
        c.add_pod(pod("a", "1"), "n2", false);
        assert_eq!(c.num_nodes(), 0);
        c.upsert_node(node("n2"));
        assert_eq!(c.num_nodes(), 1);
        assert_eq!(c.node("n2").map(|n| n.pods.len()), Some(1));
        c.remove_node("n2");
        assert_eq!(c.num_nodes(), 0);
        c.remove_pod("default", "a");
        assert!(c.node("n2").is_none());
    }
}
