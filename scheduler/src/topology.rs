//! Pod counts per topology domain, kept up to date as pods come and go, so that pod
//! affinity and topology spread cost a scheduling cycle the number of distinct terms
//! rather than the number of pods in the cluster.
//!
//! Two kinds of counters live in the cache:
//! - `TermIndex`: for every distinct (anti-)affinity term of the pods already placed,
//!   how many of its pods sit in each domain of the term's topology key. A cycle asks
//!   each term once whether it selects the incoming pod (symmetry, preferred terms of
//!   existing pods).
//! - `Memo`: for a `Selection` an incoming pod asks about (its own terms, a spread
//!   constraint), the pods selected per domain. Computed by one scan on first use, then
//!   updated on every pod change; the least recently used of `MEMO_CAPACITY` is dropped.
//!
//! The same `count` step serves the scan and the updates, so both give the same numbers;
//! the preemption dry run, whose snapshot replaces a node, always scans.

use std::collections::HashMap;
use std::sync::Arc;

use crate::podinfo::{AffinityTerm, NamespaceLabels, PodInfo};
use crate::selectors::{Labels, Selector};

/// Pods per value of one topology key. Values whose count drops to zero are removed, so
/// the number of entries is the number of domains with a selected pod.
pub type DomainCounts = HashMap<String, i64>;

/// How many selections the memo keeps.
pub const MEMO_CAPACITY: usize = 64;

/// Which pods a counter counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selection {
    /// Pods every one of the terms selects, counted under each term's topology key (an
    /// incoming pod's required affinity; one anti-affinity or preferred term alone).
    Terms(Vec<AffinityTerm>),
    /// Pods of one namespace, not terminating, that a selector matches, counted under one
    /// key (a topology spread constraint).
    Spread {
        namespace: String,
        selector: Selector,
        key: String,
    },
}

impl Selection {
    pub fn selects(&self, p: &PodInfo, namespaces: &NamespaceLabels) -> bool {
        match self {
            Selection::Terms(terms) => {
                let ns = namespaces.get(&p.namespace);
                !terms.is_empty() && terms.iter().all(|t| t.matches(p, ns))
            }
            Selection::Spread {
                namespace,
                selector,
                ..
            } => !p.terminating && p.namespace == *namespace && selector.matches(&p.labels),
        }
    }

    /// The topology keys a selected pod is counted under, once per term.
    fn keys(&self) -> Vec<&str> {
        match self {
            Selection::Terms(terms) => terms.iter().map(|t| t.topology_key.as_str()).collect(),
            Selection::Spread { key, .. } => vec![key.as_str()],
        }
    }

    /// The namespaces a selected pod can be in; `None` when a term selects namespaces
    /// by label.
    pub fn namespaces(&self) -> Option<Vec<&str>> {
        match self {
            Selection::Terms(terms) => {
                if terms.iter().any(|t| t.namespace_selector.is_some()) {
                    return None;
                }
                let mut all: Vec<&str> = terms
                    .iter()
                    .flat_map(|t| t.namespaces.iter().map(String::as_str))
                    .collect();
                all.sort_unstable();
                all.dedup();
                Some(all)
            }
            Selection::Spread { namespace, .. } => Some(vec![namespace.as_str()]),
        }
    }

    fn reads_namespace_labels(&self) -> bool {
        self.namespaces().is_none()
    }
}

/// Adds `delta` to the count of `node_labels[key]`; nothing when the node lacks the key.
fn bump(m: &mut Arc<DomainCounts>, key: &str, node_labels: &Labels, delta: i64) {
    let Some(v) = node_labels.get(key) else {
        return;
    };
    let m = Arc::make_mut(m);
    match m.get_mut(v.as_str()) {
        Some(c) => {
            *c += delta;
            if *c == 0 {
                m.remove(v.as_str());
            }
        }
        None if delta != 0 => {
            m.insert(v.clone(), delta);
        }
        None => {}
    }
}

/// The counts of one selection: one map per distinct topology key.
#[derive(Clone, Debug, Default)]
pub struct Counts(pub Vec<(String, Arc<DomainCounts>)>);

impl Counts {
    pub fn new(sel: &Selection) -> Self {
        let mut keys = sel.keys();
        keys.sort_unstable();
        keys.dedup();
        Counts(
            keys.into_iter()
                .map(|k| (k.to_string(), Arc::default()))
                .collect(),
        )
    }

    /// Counts a pod the selection selects, on a node with these labels.
    pub fn count(&mut self, sel: &Selection, node_labels: &Labels, delta: i64) {
        for key in sel.keys() {
            if let Some((_, m)) = self.0.iter_mut().find(|(k, _)| k == key) {
                bump(m, key, node_labels, delta);
            }
        }
    }

    /// The count of the node's domain under `key` (0 when the node lacks the key).
    pub fn get(&self, key: &str, node_labels: &Labels) -> i64 {
        let Some(v) = node_labels.get(key) else {
            return 0;
        };
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, m)| m.get(v.as_str()))
            .copied()
            .unwrap_or(0)
    }

    /// The counts under one key.
    pub fn domains(&self, key: &str) -> Option<&DomainCounts> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, m)| &**m)
    }

    /// Whether any pod was counted.
    pub fn any(&self) -> bool {
        self.0.iter().any(|(_, m)| !m.is_empty())
    }
}

/// What an existing pod's term does to incoming pods it selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TermKind {
    RequiredAffinity,
    RequiredAntiAffinity,
    Preferred(i32),
    PreferredAnti(i32),
}

/// Every distinct term of the placed pods, with how many pods carry it and how many of
/// those sit in each domain of its topology key.
#[derive(Clone, Debug, Default)]
pub struct TermIndex(pub HashMap<(TermKind, AffinityTerm), (usize, Arc<DomainCounts>)>);

impl TermIndex {
    /// Counts (or, with a negative delta, uncounts) a pod's terms on a node.
    pub fn count(&mut self, p: &PodInfo, node_labels: &Labels, delta: i64) {
        let terms = p
            .required_affinity
            .iter()
            .map(|t| (TermKind::RequiredAffinity, t))
            .chain(
                p.required_anti_affinity
                    .iter()
                    .map(|t| (TermKind::RequiredAntiAffinity, t)),
            )
            .chain(
                p.preferred_affinity
                    .iter()
                    .map(|(w, t)| (TermKind::Preferred(*w), t)),
            )
            .chain(
                p.preferred_anti_affinity
                    .iter()
                    .map(|(w, t)| (TermKind::PreferredAnti(*w), t)),
            );
        for (kind, t) in terms {
            let key = (kind, t.clone());
            let e = self.0.entry(key).or_default();
            e.0 = e.0.saturating_add_signed(delta as isize);
            bump(&mut e.1, &t.topology_key, node_labels, delta);
            if e.0 == 0 {
                self.0.remove(&(kind, t.clone()));
            }
        }
    }
}

/// Counts of the selections incoming pods asked about, kept up to date.
#[derive(Default)]
pub struct Memo {
    entries: HashMap<Selection, (Counts, u64)>,
    tick: u64,
}

impl Memo {
    /// The memoized counts of a selection, marked as just used.
    pub fn get(&mut self, sel: &Selection) -> Option<Counts> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(sel).map(|(c, used)| {
            *used = tick;
            c.clone()
        })
    }

    /// Keeps the counts of a selection, dropping the least recently used one when full.
    pub fn insert(&mut self, sel: Selection, counts: Counts) {
        if self.entries.len() >= MEMO_CAPACITY
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(s, _)| s.clone())
        {
            self.entries.remove(&oldest);
        }
        self.tick += 1;
        self.entries.insert(sel, (counts, self.tick));
    }

    /// Counts a pod added to (positive delta) or removed from a node with these labels.
    pub fn count(
        &mut self,
        p: &PodInfo,
        node_labels: &Labels,
        namespaces: &NamespaceLabels,
        delta: i64,
    ) {
        for (sel, (counts, _)) in self.entries.iter_mut() {
            if sel.selects(p, namespaces) {
                counts.count(sel, node_labels, delta);
            }
        }
    }

    /// Forgets the selections that depend on namespace labels (they changed).
    pub fn forget_namespace_selections(&mut self) {
        self.entries.retain(|s, _| !s.reads_namespace_labels());
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::framework::Snapshot;
    use crate::plugins::testutil::pod_json;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn node(name: &str, zone: usize) -> Arc<k8s_openapi::api::core::v1::Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "zone": format!("z{zone}")}}}))
            .expect("node"),
        )
    }

    /// A pod of app `a<app>` in namespace `ns<ns>`, anti-affine to its app per host,
    /// preferring its app's zone, sometimes terminating.
    fn pod(i: usize, rng: &mut SmallRng) -> Arc<PodInfo> {
        let app = format!("a{}", rng.random_range(0..3));
        let ns = format!("ns{}", rng.random_range(0..2));
        let mut v = json!({"metadata": {"name": format!("p{i}"), "namespace": ns,
            "labels": {"app": app}},
            "spec": {"containers": [{"name": "c"}], "affinity": {
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname",
                     "labelSelector": {"matchLabels": {"app": app}}}]},
                "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 5, "podAffinityTerm": {"topologyKey": "zone",
                     "namespaceSelector": {"matchLabels": {"team": "x"}},
                     "labelSelector": {"matchLabels": {"app": app}}}}]}}}});
        if rng.random_bool(0.2) {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        pod_json(v)
    }

    type Flat = BTreeMap<(String, String), i64>;

    fn flat(c: &Counts) -> Flat {
        c.0.iter()
            .flat_map(|(k, m)| m.iter().map(move |(v, n)| ((k.clone(), v.clone()), *n)))
            .collect()
    }

    fn flat_terms(t: &TermIndex) -> BTreeMap<String, (usize, Flat)> {
        t.0.iter()
            .map(|((kind, term), (pods, m))| {
                let counts = m
                    .iter()
                    .map(|(v, n)| (("".into(), v.clone()), *n))
                    .collect();
                (format!("{kind:?} {term:?}"), (*pods, counts))
            })
            .collect()
    }

    /// The counters kept up to date equal a fresh count (a snapshot replacing a node by
    /// itself always counts afresh).
    fn check(cache: &Cache, selections: &[Selection]) {
        let Some(any) = cache.all().iter().find(|n| n.node.is_some()) else {
            return;
        };
        let kept = Snapshot::new(cache);
        let fresh = Snapshot {
            cache,
            overlay: Some(any),
        };
        for sel in selections {
            assert_eq!(flat(&kept.counts(sel)), flat(&fresh.counts(sel)), "{sel:?}");
        }
        let kept_terms = flat_terms(&kept.terms());
        // The fresh index leaves out pods on nodes without a node object; so does the
        // kept one, whose entries for them count no domain.
        let fresh_terms = flat_terms(&fresh.terms());
        for (k, (_, counts)) in &fresh_terms {
            assert_eq!(kept_terms.get(k).map(|e| &e.1), Some(counts), "{k}");
        }
        for (k, (_, counts)) in &kept_terms {
            if !counts.is_empty() {
                assert_eq!(fresh_terms.get(k).map(|e| &e.1), Some(counts), "{k}");
            }
        }
    }

    #[test]
    fn kept_counts_equal_a_fresh_count() {
        let mut rng = SmallRng::seed_from_u64(11);
        let mut cache = Cache::new();
        for n in 0..6 {
            cache.upsert_node(node(&format!("n{n}"), n % 3));
        }
        cache.set_namespace("ns0".into(), [("team".into(), "x".into())].into());
        cache.set_namespace("ns1".into(), Labels::new());
        let probe = pod(0, &mut rng);
        let mut selections: Vec<Selection> = probe
            .required_anti_affinity
            .iter()
            .chain(probe.preferred_affinity.iter().map(|(_, t)| t))
            .map(|t| Selection::Terms(vec![t.clone()]))
            .collect();
        for app in 0..3 {
            for ns in 0..2 {
                selections.push(Selection::Spread {
                    namespace: format!("ns{ns}"),
                    selector: Selector::new(Some(
                        &serde_json::from_value(json!({"matchLabels": {"app": format!("a{app}")}}))
                            .expect("selector"),
                    )),
                    key: "zone".into(),
                });
            }
        }
        // Memoize every selection before the changes, so the updates are what is checked.
        check(&cache, &selections);
        assert_eq!(cache.memoized_len(), selections.len());
        let mut placed: Vec<String> = Vec::new();
        for i in 0..400 {
            match rng.random_range(0..10) {
                0..=5 => {
                    let p = pod(i, &mut rng);
                    let n = format!("n{}", rng.random_range(0..7));
                    placed.push(p.name.clone());
                    let ns = p.namespace.clone();
                    cache.remove_pod(if ns == "ns0" { "ns1" } else { "ns0" }, &p.name);
                    cache.add_pod(p, &n, rng.random_bool(0.5));
                }
                6 | 7 if !placed.is_empty() => {
                    let name = placed.swap_remove(rng.random_range(0..placed.len()));
                    for ns in ["ns0", "ns1"] {
                        cache.remove_pod(ns, &name);
                    }
                }
                8 => {
                    // A node changes zone, or goes away and comes back.
                    let n = rng.random_range(0..7);
                    if rng.random_bool(0.3) {
                        cache.remove_node(&format!("n{n}"));
                    } else {
                        cache.upsert_node(node(&format!("n{n}"), rng.random_range(0..3)));
                    }
                }
                _ => {
                    let team = if rng.random_bool(0.5) { "x" } else { "y" };
                    let ns = format!("ns{}", rng.random_range(0..2));
                    cache.set_namespace(ns, [("team".into(), team.into())].into());
                }
            }
            check(&cache, &selections);
        }
    }
}
