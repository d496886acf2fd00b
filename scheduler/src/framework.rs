//! The plugin framework: statuses with upstream's codes, the per-cycle state plugins share
//! between their PreFilter/Filter and PreScore/Score steps, the `Plugin` trait, and the
//! `Snapshot` view of the cluster a cycle reads (the cache, optionally with one node
//! replaced, which preemption's dry run uses).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::{Cache, NodeInfo};
use crate::podinfo::PodInfo;
use crate::selectors::Labels;

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
    pub fn nodes(&self) -> impl Iterator<Item = &'a NodeInfo> + 'a {
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
        self.cache.namespaces.get(ns)
    }

    /// Whether any pod in the cluster has an affinity term (lets InterPodAffinity skip).
    pub fn any_pod_with_affinity(&self) -> bool {
        self.cache.pods_with_affinity > 0
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
