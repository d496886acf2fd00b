//! What default topology spreading spreads a pod against (`PodTopologySpread` when the pod
//! has no constraints of its own): the pods selected by the Services that select it and
//! by its controlling ReplicationController, ReplicaSet or StatefulSet. The informers keep
//! each one's selector here; [`Owners::default_selector`] merges them for one pod as
//! upstream's `DefaultSelector` does.

use std::collections::HashMap;

use crate::podinfo::PodInfo;
use crate::selectors::{Labels, Selector};

/// The kinds of object whose selectors are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Service,
    ReplicationController,
    ReplicaSet,
    StatefulSet,
}

/// One object's selector: a plain label set (Services, ReplicationControllers) or a
/// `metav1.LabelSelector` (ReplicaSets, StatefulSets).
#[derive(Clone, Debug, PartialEq)]
pub enum OwnerSelector {
    Labels(Labels),
    Selector(Selector),
}

#[derive(Default)]
pub struct Owners {
    /// Per namespace: Service name -> its selector. A Service without a selector selects
    /// nothing and is not kept.
    services: HashMap<String, HashMap<String, Labels>>,
    /// (kind, namespace, name) of a controller -> its selector.
    controllers: HashMap<(Kind, String, String), OwnerSelector>,
}

impl Owners {
    /// Records (or, with `None`, forgets) one object's selector.
    pub fn set(&mut self, kind: Kind, namespace: &str, name: &str, sel: Option<OwnerSelector>) {
        match (kind, sel) {
            (Kind::Service, Some(OwnerSelector::Labels(l))) => {
                self.services
                    .entry(namespace.to_string())
                    .or_default()
                    .insert(name.to_string(), l);
            }
            (Kind::Service, _) => {
                if let Some(m) = self.services.get_mut(namespace) {
                    m.remove(name);
                    if m.is_empty() {
                        self.services.remove(namespace);
                    }
                }
            }
            (_, Some(s)) => {
                self.controllers
                    .insert((kind, namespace.to_string(), name.to_string()), s);
            }
            (_, None) => {
                self.controllers
                    .remove(&(kind, namespace.to_string(), name.to_string()));
            }
        }
    }

    /// Replaces every object of `kind` (after a full list).
    pub fn replace(&mut self, kind: Kind, all: Vec<(String, String, OwnerSelector)>) {
        if kind == Kind::Service {
            self.services.clear();
        } else {
            self.controllers.retain(|(k, _, _), _| *k != kind);
        }
        for (ns, name, sel) in all {
            self.set(kind, &ns, &name, Some(sel));
        }
    }

    /// The selector default spreading counts pods with: the label sets of the pod's
    /// Services merged, with its controller's selector added. Empty (no requirement) when
    /// nothing selects the pod, and then upstream applies no default constraint.
    pub fn default_selector(&self, pod: &PodInfo) -> Selector {
        let mut set = Labels::new();
        for sel in self
            .services
            .get(&pod.namespace)
            .into_iter()
            .flat_map(|m| m.values())
        {
            if sel.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
                set.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let mut selector = Selector::from_labels(&set);
        let Some((kind, name)) = controller_of(pod) else {
            return selector;
        };
        let key = (kind, pod.namespace.clone(), name.to_string());
        match self.controllers.get(&key) {
            Some(OwnerSelector::Labels(l)) => {
                set.extend(l.iter().map(|(k, v)| (k.clone(), v.clone())));
                selector = Selector::from_labels(&set);
            }
            Some(OwnerSelector::Selector(s)) => selector.and(s),
            None => {}
        }
        selector
    }
}

/// The kind and name of the pod's controller, when it is one whose selector counts
/// (upstream matches the group, version and kind exactly).
fn controller_of(pod: &PodInfo) -> Option<(Kind, &str)> {
    let owner = pod
        .pod
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o| o.controller == Some(true))?;
    let kind = match (owner.api_version.as_str(), owner.kind.as_str()) {
        ("v1", "ReplicationController") => Kind::ReplicationController,
        ("apps/v1", "ReplicaSet") => Kind::ReplicaSet,
        ("apps/v1", "StatefulSet") => Kind::StatefulSet,
        _ => return None,
    };
    Some((kind, owner.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{labels, pod_json};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use serde_json::json;

    fn owned_pod(owner: serde_json::Value) -> std::sync::Arc<PodInfo> {
        pod_json(json!({"metadata": {"name": "p", "namespace": "default",
            "labels": {"app": "web", "tier": "front", "pod-template-hash": "h"},
            "ownerReferences": [owner]},
            "spec": {"containers": [{"name": "c"}]}}))
    }

    fn rs_owner(name: &str) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": "u",
               "controller": true})
    }

    #[test]
    fn services_and_the_controller_make_the_selector() {
        let mut o = Owners::default();
        o.set(
            Kind::Service,
            "default",
            "web",
            Some(OwnerSelector::Labels(labels(&[("app", "web")]))),
        );
        // selects other pods, or lives elsewhere: not merged
        o.set(
            Kind::Service,
            "default",
            "db",
            Some(OwnerSelector::Labels(labels(&[("app", "db")]))),
        );
        o.set(
            Kind::Service,
            "other",
            "x",
            Some(OwnerSelector::Labels(labels(&[("tier", "front")]))),
        );
        let rs = LabelSelector {
            match_labels: Some(labels(&[("pod-template-hash", "h")])),
            ..Default::default()
        };
        o.set(
            Kind::ReplicaSet,
            "default",
            "web-h",
            Some(OwnerSelector::Selector(Selector::new(Some(&rs)))),
        );
        let pod = owned_pod(rs_owner("web-h"));
        let sel = o.default_selector(&pod);
        assert!(sel.matches(&labels(&[("app", "web"), ("pod-template-hash", "h")])));
        assert!(
            !sel.matches(&labels(&[("app", "web")])),
            "the RS requirement"
        );
        assert!(
            !sel.matches(&labels(&[("pod-template-hash", "h")])),
            "the Service's"
        );

        // a ReplicationController's label set merges with the Services'
        o.set(
            Kind::ReplicationController,
            "default",
            "rc",
            Some(OwnerSelector::Labels(labels(&[("tier", "front")]))),
        );
        let rc = owned_pod(json!({"apiVersion": "v1", "kind": "ReplicationController",
            "name": "rc", "uid": "u", "controller": true}));
        let sel = o.default_selector(&rc);
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn nothing_selects_a_bare_pod_or_an_unknown_owner() {
        let mut o = Owners::default();
        let bare = pod_json(json!({"metadata": {"name": "p", "namespace": "default",
            "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}));
        assert!(o.default_selector(&bare).is_empty());
        // a controller not in the cache, or of another kind, or not the controller
        assert!(o.default_selector(&owned_pod(rs_owner("gone"))).is_empty());
        let job = owned_pod(json!({"apiVersion": "batch/v1", "kind": "Job", "name": "j",
            "uid": "u", "controller": true}));
        o.set(
            Kind::ReplicaSet,
            "default",
            "j",
            Some(OwnerSelector::Labels(labels(&[("app", "web")]))),
        );
        assert!(o.default_selector(&job).is_empty());
        // forgetting and replacing
        o.set(
            Kind::Service,
            "default",
            "web",
            Some(OwnerSelector::Labels(labels(&[("app", "web")]))),
        );
        assert!(!o.default_selector(&bare).is_empty());
        o.replace(Kind::Service, vec![]);
        assert!(o.default_selector(&bare).is_empty());
    }
}
