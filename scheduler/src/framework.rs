//! The plugin framework: statuses with upstream's codes, the per-cycle state plugins share
//! between their PreFilter/Filter and PreScore/Score steps, the `Plugin` trait, and the
//! `Snapshot` view of the cluster a cycle reads (the cache, optionally with one node
//! replaced, which preemption's dry run uses).

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::{Cache, NodeInfo, PodsAt};
use crate::podinfo::PodInfo;
use crate::selectors::Labels;
use crate::topology::{Counts, Selection, TermIndex};

/// Highest score a plugin gives a node (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Success,
    /// Filtering failed; preemption may help.
    Unschedulable,
    /// Filtering failed; preemption cannot help.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to do for this pod.
    Skip,
    Error,
}

/// The result of a plugin step, with the reasons shown to users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: vec![],
            plugin: "",
        }
    }
    pub fn skip() -> Self {
        Status {
            code: Code::Skip,
            ..Self::success()
        }
    }
    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Self::new(Code::Unschedulable, reason)
    }
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Self::new(Code::UnschedulableAndUnresolvable, reason)
    }
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
    pub fn is_rejection(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// State plugins compute once per pod (PreFilter, PreScore) and read per node.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
    /// Plugins whose PreFilter/PreScore returned Skip.
    pub skip_filter: Vec<&'static str>,
    pub skip_score: Vec<&'static str>,
    /// Indexes of the profile's filter plugins to run (set after PreFilter).
    pub active_filters: Vec<usize>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, v: T) {
        self.data.insert(key, Box::new(v));
    }
    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|b| b.downcast_ref())
    }
}

/// What a scheduling cycle sees: the cache, with optionally one node substituted.
#[derive(Clone, Copy)]
pub struct Snapshot<'a> {
    pub cache: &'a Cache,
    pub overlay: Option<&'a NodeInfo>,
}

impl<'a> Snapshot<'a> {
    pub fn new(cache: &'a Cache) -> Self {
        Snapshot {
            cache,
            overlay: None,
        }
    }

    /// Every node that has a node object.
    pub fn nodes(&self) -> impl Iterator<Item = &'a NodeInfo> + use<'a> {
        let overlay = self.overlay;
        self.cache.all().iter().filter_map(move |n| {
            let n = match overlay {
                Some(o) if o.name == n.name => o,
                _ => n,
            };
            n.node.is_some().then_some(n)
        })
    }

    pub fn num_nodes(&self) -> usize {
        self.cache.num_nodes()
    }

    pub fn ns_labels(&self, ns: &str) -> Option<&'a Labels> {
        self.cache.namespaces().get(ns)
    }

    /// Whether any pod in the cluster has an affinity term (lets InterPodAffinity skip).
    pub fn any_pod_with_affinity(&self) -> bool {
        !self.cache.pods_with_affinity().is_empty()
    }

    /// Every pod on a node with a node object, with its node.
    pub fn all_pods(&self) -> impl Iterator<Item = (&'a NodeInfo, &'a Arc<PodInfo>)> + use<'a> {
        self.nodes()
            .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
    }

    /// The pods of one namespace on nodes with a node object, with their node.
    pub fn pods_in_namespace(
        &self,
        ns: &str,
    ) -> impl Iterator<Item = (&'a NodeInfo, &'a Arc<PodInfo>)> + use<'a> {
        self.indexed(self.cache.pods_in_namespace(ns), &|p| p.namespace == ns)
    }

    /// The pods with any (anti-)affinity term on nodes with a node object, with their node.
    pub fn pods_with_affinity(
        &self,
    ) -> impl Iterator<Item = (&'a NodeInfo, &'a Arc<PodInfo>)> + use<'a> {
        self.indexed(Some(self.cache.pods_with_affinity()), &|p| p.has_affinity())
    }

    /// The per-domain counts of the pods a selection selects: memoized and kept up to
    /// date by the cache, or counted afresh when a node is replaced.
    pub fn counts(&self, sel: &Selection) -> Counts {
        if self.overlay.is_none()
            && let Some(c) = self.cache.memoized(sel)
        {
            return c;
        }
        let mut c = Counts::new(sel);
        let namespaces = self.cache.namespaces();
        let mut count = |node: &NodeInfo, p: &PodInfo| {
            if sel.selects(p, namespaces) {
                c.count(sel, &node.labels, 1);
            }
        };
        match sel.namespaces() {
            Some(list) => list
                .into_iter()
                .flat_map(|ns| self.pods_in_namespace(ns))
                .for_each(|(n, p)| count(n, p)),
            None => self.all_pods().for_each(|(n, p)| count(n, p)),
        }
        if self.overlay.is_none() {
            self.cache.memoize(sel.clone(), c.clone());
        }
        c
    }

    /// The (anti-)affinity terms of the placed pods, counted per domain.
    pub fn terms(&self) -> Cow<'a, TermIndex> {
        if self.overlay.is_none() {
            return Cow::Borrowed(self.cache.terms());
        }
        let mut terms = TermIndex::default();
        for (n, p) in self.pods_with_affinity() {
            terms.count(p, &n.labels, 1);
        }
        Cow::Owned(terms)
    }

    /// The values a node label key takes over nodes with a node object.
    pub fn label_values(&self, key: &str) -> Option<&'a HashMap<String, usize>> {
        self.cache.label_values(key)
    }

    /// Pods of a cache index, the overlay node's own pods (those `keep` accepts) standing
    /// in for the cache's pods of that node.
    fn indexed(
        &self,
        pods: Option<&'a PodsAt>,
        keep: &dyn Fn(&PodInfo) -> bool,
    ) -> impl Iterator<Item = (&'a NodeInfo, &'a Arc<PodInfo>)> + use<'a> {
        let cache = self.cache;
        let replaced = self.overlay.and_then(|o| cache.index_of(&o.name));
        let from_overlay: Vec<(&'a NodeInfo, &'a Arc<PodInfo>)> = self
            .overlay
            .filter(|o| o.node.is_some())
            .map(|o| o.pods.iter().filter(|p| keep(p)).map(|p| (o, p)).collect())
            .unwrap_or_default();
        pods.into_iter()
            .flat_map(|m| m.values())
            .filter(move |(i, _)| Some(*i) != replaced)
            .map(move |(i, p)| (cache.at(*i), p))
            .filter(|(n, _)| n.node.is_some())
            .chain(from_overlay)
    }
}

/// One scheduling plugin. Each extension point has a default that does nothing, so a
/// plugin implements only the points it takes part in.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Computes filter state once per pod. Skip disables this plugin's Filter.
    fn pre_filter(&self, _s: &mut CycleState, _pod: &PodInfo, _snap: &Snapshot) -> Status {
        Status::success()
    }

    /// Whether the pod fits the node as far as this plugin is concerned.
    fn filter(&self, _s: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    /// Computes score state once per pod over the feasible nodes. Skip disables Score.
    fn pre_score(
        &self,
        _s: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snap: &Snapshot,
    ) -> Status {
        Status::success()
    }

    /// A raw score for the node.
    fn score(&self, _s: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    /// Rescales the raw scores of all feasible nodes into 0..=100.
    fn normalize(&self, _s: &CycleState, _scores: &mut [i64]) {}
}

/// A shared plugin.
pub type PluginRef = Arc<dyn Plugin>;

/// `helper.DefaultNormalizeScore`: scale to `0..=max` by the highest score, optionally
/// reversed (fewer is better).
pub fn default_normalize(max: i64, reverse: bool, scores: &mut [i64]) {
    let highest = scores.iter().copied().max().unwrap_or(0);
    if highest == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = max * *s / highest;
        if reverse {
            *s = max - *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize() {
        let mut s = vec![0, 5, 10];
        default_normalize(100, false, &mut s);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize(100, true, &mut s);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(100, true, &mut s);
        assert_eq!(s, vec![100, 100]);
    }
}
