//! The ownership graph (upstream's `GraphBuilder`): every object of every watched
//! resource, by uid, with its ownerReferences and a reverse index from owner uid to
//! dependents. Watch events update it and yield the [`Task`]s the collector must run.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// Work for the collector, keyed by object uid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// Delete this dependent if none of its owners remains (or remove dangling refs).
    AttemptToDelete(String),
    /// This owner is being deleted in the foreground: delete dependents, then drop the
    /// `foregroundDeletion` finalizer once no blocking dependent remains.
    Foreground(String),
    /// This owner is being deleted with `orphan`: strip ownerReferences to it from its
    /// dependents, then drop the finalizer.
    Orphan(String),
}

/// One object in the graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// Index of its resource in the collector's resource list.
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

/// The graph; callers keep it behind a mutex.
#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
    /// uids seen per resource during a relist, to notice deletions missed while
    /// disconnected.
    relisting: HashMap<usize, HashSet<String>>,
}

fn node_of(resource: usize, meta: &ObjectMeta) -> Option<(String, Node)> {
    let uid = meta.uid.clone()?;
    Some((
        uid,
        Node {
            resource,
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        },
    ))
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// Uids of the objects that reference `owner`.
    pub fn dependents_of(&self, owner: &str) -> Vec<String> {
        self.dependents
            .get(owner)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// An object was added or changed.
    pub fn upsert(&mut self, resource: usize, meta: &ObjectMeta) -> Vec<Task> {
        let Some((uid, node)) = node_of(resource, meta) else {
            return vec![];
        };
        if let Some(seen) = self.relisting.get_mut(&resource) {
            seen.insert(uid.clone());
        }
        let old = self.nodes.insert(uid.clone(), node.clone());
        let old_owners: Vec<String> = old
            .as_ref()
            .map(|o| o.owners.iter().map(|r| r.uid.clone()).collect())
            .unwrap_or_default();
        for o in &old_owners {
            if let Some(set) = self.dependents.get_mut(o) {
                set.remove(&uid);
            }
        }
        for r in &node.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        let mut tasks = Vec::new();
        let owners_changed = old
            .as_ref()
            .map(|o| o.owners != node.owners)
            .unwrap_or(true);
        if owners_changed && node.owners.iter().any(|r| !self.owner_is_live(r)) {
            tasks.push(Task::AttemptToDelete(uid.clone()));
        }
        if node.deleting && node.has_finalizer(FOREGROUND) {
            tasks.push(Task::Foreground(uid.clone()));
            // the owner entering foreground deletion makes its dependents collectable
            tasks.extend(
                self.dependents_of(&uid)
                    .into_iter()
                    .map(Task::AttemptToDelete),
            );
        }
        if node.deleting && node.has_finalizer(ORPHAN) {
            tasks.push(Task::Orphan(uid));
        }
        tasks
    }

    fn owner_is_live(&self, r: &OwnerReference) -> bool {
        self.nodes
            .get(&r.uid)
            .is_some_and(|o| !(o.deleting && o.has_finalizer(FOREGROUND)))
    }

    /// An object was deleted.
    pub fn remove(&mut self, uid: &str) -> Vec<Task> {
        let Some(node) = self.nodes.remove(uid) else {
            return vec![];
        };
        let mut tasks = Vec::new();
        for r in &node.owners {
            if let Some(set) = self.dependents.get_mut(&r.uid) {
                set.remove(uid);
            }
            if self
                .nodes
                .get(&r.uid)
                .is_some_and(|o| o.deleting && o.has_finalizer(FOREGROUND))
            {
                tasks.push(Task::Foreground(r.uid.clone()));
            }
        }
        tasks.extend(
            self.dependents_of(uid)
                .into_iter()
                .map(Task::AttemptToDelete),
        );
        if self.dependents.get(uid).is_some_and(|s| s.is_empty()) {
            self.dependents.remove(uid);
        }
        tasks
    }

    /// A relist of `resource` starts.
    pub fn relist_start(&mut self, resource: usize) {
        self.relisting.insert(resource, HashSet::new());
    }

    /// A relist of `resource` ended: objects of that resource not seen were deleted.
    pub fn relist_done(&mut self, resource: usize) -> Vec<Task> {
        let Some(seen) = self.relisting.remove(&resource) else {
            return vec![];
        };
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(uid, n)| n.resource == resource && !seen.contains(*uid))
            .map(|(uid, _)| uid.clone())
            .collect();
        gone.iter().flat_map(|uid| self.remove(uid)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: &str, owners: &[&str]) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            name: Some(uid.into()),
            owner_references: Some(
                owners
                    .iter()
                    .map(|o| OwnerReference {
                        uid: o.to_string(),
                        name: o.to_string(),
                        kind: "ReplicaSet".into(),
                        api_version: "apps/v1".into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn dependents_of_deleted_owner_are_collected() {
        let mut g = Graph::default();
        assert!(g.upsert(0, &meta("owner", &[])).is_empty());
        assert!(g.upsert(1, &meta("pod", &["owner"])).is_empty());
        assert_eq!(g.remove("owner"), vec![Task::AttemptToDelete("pod".into())]);
        // a dependent whose owner was never seen is checked at once
        assert_eq!(
            g.upsert(1, &meta("pod2", &["ghost"])),
            vec![Task::AttemptToDelete("pod2".into())]
        );
    }

    #[test]
    fn foreground_owner_waits_for_dependents() {
        let mut g = Graph::default();
        g.upsert(1, &meta("pod", &["owner"]));
        let mut owner = meta("owner", &[]);
        owner.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        owner.finalizers = Some(vec![FOREGROUND.into()]);
        let tasks = g.upsert(0, &owner);
        assert!(tasks.contains(&Task::Foreground("owner".into())));
        assert!(tasks.contains(&Task::AttemptToDelete("pod".into())));
        assert_eq!(g.remove("pod"), vec![Task::Foreground("owner".into())]);
        g.relist_start(0);
        assert!(g.relist_done(0).is_empty());
        assert!(g.get("owner").is_none());
    }
}
