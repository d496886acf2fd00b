//! The resource registry: the one place that describes every resource the server
//! serves. Discovery, OpenAPI, routes, table printing and RBAC names are all derived
//! from it; nothing else lists resources by hand. CustomResourceDefinitions add
//! entries at run time.

mod builtin;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub use builtin::builtin_resources;
pub use machinery::resource::{ALL_VERBS, ResourceInfo};

/// A group with its served versions, preferred first.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInfo {
    pub name: String,
    pub versions: Vec<String>,
}

/// The live registry. Cheap to clone; CRDs add and remove entries at run time.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
    /// Bumped on every change, so derived documents (OpenAPI) know when to rebuild.
    generation: Arc<AtomicU64>,
}

#[derive(Default)]
struct Inner {
    /// In discovery order.
    resources: Vec<Arc<ResourceInfo>>,
    by_gvr: HashMap<(String, String, String), Arc<ResourceInfo>>,
    /// Group order and preferred-first versions for discovery.
    groups: Vec<GroupInfo>,
}

impl Registry {
    /// The registry of every built-in resource.
    pub fn with_builtins() -> Self {
        let r = Registry::default();
        for info in builtin_resources() {
            r.add(info);
        }
        r
    }

    /// How many times the registry changed; derived documents cache against it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Adds (or replaces) a resource; its group and version join discovery.
    pub fn add(&self, info: ResourceInfo) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let key = (
            info.group.clone(),
            info.version.clone(),
            info.plural.clone(),
        );
        let info = Arc::new(info);
        if let Some(pos) = inner.resources.iter().position(|r| {
            r.group == info.group && r.version == info.version && r.plural == info.plural
        }) {
            inner.resources[pos] = info.clone();
        } else {
            inner.resources.push(info.clone());
        }
        inner.by_gvr.insert(key, info.clone());
        match inner.groups.iter_mut().find(|g| g.name == info.group) {
            Some(g) => {
                if !g.versions.contains(&info.version) {
                    g.versions.push(info.version.clone());
                }
            }
            None => inner.groups.push(GroupInfo {
                name: info.group.clone(),
                versions: vec![info.version.clone()],
            }),
        }
    }

    /// Orders a group's versions as upstream prefers them (GA over beta over alpha, higher
    /// numbers first); the first is the preferred version. Used for custom resource groups.
    pub fn sort_versions(&self, group: &str) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = inner.groups.iter_mut().find(|g| g.name == group) {
            g.versions
                .sort_by(|a, b| machinery::resource::compare_versions(a, b));
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes one served version of `group`'s `plural` (a CustomResourceDefinition that
    /// stops serving it).
    pub fn remove_version(&self, group: &str, version: &str, plural: &str) {
        self.remove_where(|r| r.group == group && r.version == version && r.plural == plural);
    }

    /// Removes every resource of `group` named `plural`, at all versions (what deleting a
    /// CustomResourceDefinition does).
    #[cfg(test)]
    pub fn remove(&self, group: &str, plural: &str) {
        self.remove_where(|r| r.group == group && r.plural == plural);
    }

    fn remove_where(&self, gone: impl Fn(&ResourceInfo) -> bool) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.resources.retain(|r| !gone(r));
        inner.by_gvr.retain(|_, r| !gone(r));
        let remaining: Vec<(String, String)> = inner
            .resources
            .iter()
            .map(|r| (r.group.clone(), r.version.clone()))
            .collect();
        inner.groups.iter_mut().for_each(|g| {
            g.versions
                .retain(|v| remaining.iter().any(|(rg, rv)| rg == &g.name && rv == v))
        });
        inner.groups.retain(|g| !g.versions.is_empty());
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Every resource, in discovery order.
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .resources
            .clone()
    }

    /// Every group (the core group first, named ""), versions preferred first.
    pub fn groups(&self) -> Vec<GroupInfo> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .groups
            .clone()
    }

    pub fn group(&self, name: &str) -> Option<GroupInfo> {
        self.groups().into_iter().find(|g| g.name == name)
    }

    /// The resources served at one group/version, in discovery order.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.all()
            .into_iter()
            .filter(|r| r.group == group && r.version == version)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_unique_and_complete() {
        let r = Registry::with_builtins();
        let all = r.all();
        let mut seen = std::collections::HashSet::new();
        for info in &all {
            assert!(
                seen.insert((
                    info.group.clone(),
                    info.version.clone(),
                    info.plural.clone()
                )),
                "{info:?}"
            );
            assert!(!info.kind.is_empty() && !info.definition.is_empty());
        }
        let pods = r.get("", "v1", "pods").expect("pods");
        assert!(pods.namespaced && pods.has_status() && pods.has_subresource("binding"));
        assert_eq!(pods.short_names, vec!["po"]);
        let deploy = r.get("apps", "v1", "deployments").expect("deployments");
        assert!(deploy.has_subresource("scale"));
        assert_eq!(deploy.categories, vec!["all"]);
        assert!(
            r.get("autoscaling", "v1", "horizontalpodautoscalers")
                .is_some()
        );
        assert_eq!(
            r.group("autoscaling").map(|g| g.versions),
            Some(vec!["v2".to_string(), "v1".to_string()])
        );
        assert_eq!(r.groups()[0].name, "");
    }

    #[test]
    fn crds_can_be_added_and_removed() {
        let r = Registry::with_builtins();
        let mut info = (*r.get("", "v1", "configmaps").expect("cm")).clone();
        info.group = "example.com".into();
        info.plural = "widgets".into();
        r.add(info);
        assert!(r.group("example.com").is_some());
        r.remove("example.com", "widgets");
        assert!(r.group("example.com").is_none());
    }
}
