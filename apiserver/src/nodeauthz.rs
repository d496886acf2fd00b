//! The Node authorizer (`--authorization-mode=Node`): what a kubelet, authenticated as
//! `system:node:<name>` in `system:nodes`, may do, as upstream decides it.
//!
//! - Secrets, ConfigMaps, PersistentVolumeClaims, PersistentVolumes, ServiceAccount
//!   tokens, ResourceClaims, VolumeAttachments and single Pods only when the object is
//!   related to the node: a pod bound to the node references it (directly, or a PV bound
//!   to such a pod's claim does), or it names the node itself.
//! - Pods are listed and watched only with `fieldSelector=spec.nodeName=<node>`; the
//!   Node object is read only by its own name; Leases only in `kube-node-lease` under the
//!   node's name; CSINodes only under the node's name.
//! - Everything else is checked against upstream's static node rules (the `system:node`
//!   ClusterRole of the bootstrap policy). NodeRestriction admission narrows the writes.
//!
//! The relationships live in [`Graph`], an index derived from the store that catches up
//! with the store's history on each use: a kubelet may read a pod's secret as soon as the
//! pod's binding is stored, with no informer lag.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::Value;

use crate::authn::User;
use crate::request_info::RequestInfo;
use crate::storage::{EventType, Store};

/// The node a user speaks for, as upstream's node identifier: users named
/// `system:node:<name>` in group `system:nodes`. `Some("")` when the name is missing.
pub fn node_identity(user: &User) -> Option<&str> {
    let name = user.name.strip_prefix("system:node:")?;
    user.in_group("system:nodes").then_some(name)
}

/// The storage segments the graph follows.
const WATCHED: &[&str] = &[
    "pods",
    "persistentvolumes",
    "volumeattachments",
    "resourceslices",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Pod,
    Secret,
    ConfigMap,
    Pvc,
    ServiceAccount,
    ResourceClaim,
}

/// A namespaced object a pod bound to a node leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Ref {
    kind: Kind,
    namespace: String,
    name: String,
}

/// What one bound pod contributes.
#[derive(Debug, Clone, PartialEq)]
struct PodEntry {
    node: String,
    refs: Vec<Ref>,
}

/// A PersistentVolume's relationships: its bound claim and the secrets the kubelet uses.
#[derive(Debug, Clone, Default, PartialEq)]
struct PvEntry {
    claim: Option<(String, String)>,
    secrets: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    /// Whether a first full build happened.
    built: bool,
    /// The store revision the index reflects.
    rev: u64,
    pods: HashMap<(String, String), PodEntry>,
    /// node -> object -> how many of its pods lead there.
    reach: HashMap<String, HashMap<Ref, u32>>,
    pvs: HashMap<String, PvEntry>,
    /// (namespace, secret) -> the PVs that use it.
    secret_pvs: HashMap<(String, String), HashSet<String>>,
    attachments: HashMap<String, String>,
    slices: HashMap<String, String>,
}

/// The node authorizer's relationship graph.
pub struct Graph {
    store: Store,
    state: Mutex<State>,
}

/// The starting object of a relationship question.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    Ref(Kind),
    Pv,
    VolumeAttachment,
    ResourceSlice,
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn array<'a>(v: &'a Value, p: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(p).and_then(Value::as_array).into_iter().flatten()
}

/// The `(namespace, name)` of a storage key `/registry/<res>/<ns>/<name>` or
/// `/registry/<res>/<name>`.
fn key_parts(key: &str) -> (String, String) {
    let parts: Vec<&str> = key.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [_, _, ns, name] => (ns.to_string(), name.to_string()),
        [_, _, name] => (String::new(), name.to_string()),
        _ => (String::new(), String::new()),
    }
}

/// The volume sources whose `secretRef` the kubelet reads, in pods and PVs alike.
const SECRET_REF_SOURCES: &[&str] = &[
    "cephfs",
    "cinder",
    "flexVolume",
    "rbd",
    "scaleIO",
    "iscsi",
    "storageos",
];

/// Secret names a pod references (upstream's VisitPodSecretNames).
fn pod_secrets(pod: &Value, out: &mut Vec<String>) {
    for s in array(pod, "/spec/imagePullSecrets") {
        out.push(str_at(s, "/name").to_string());
    }
    for c in containers(pod) {
        for e in array(c, "/envFrom") {
            out.push(str_at(e, "/secretRef/name").to_string());
        }
        for e in array(c, "/env") {
            out.push(str_at(e, "/valueFrom/secretKeyRef/name").to_string());
        }
    }
    for v in array(pod, "/spec/volumes") {
        out.push(str_at(v, "/secret/secretName").to_string());
        out.push(str_at(v, "/azureFile/secretName").to_string());
        out.push(str_at(v, "/csi/nodePublishSecretRef/name").to_string());
        for src in SECRET_REF_SOURCES {
            out.push(str_at(v, &format!("/{src}/secretRef/name")).to_string());
        }
        for p in array(v, "/projected/sources") {
            out.push(str_at(p, "/secret/name").to_string());
        }
    }
}

/// ConfigMap names a pod references (upstream's VisitPodConfigmapNames).
fn pod_configmaps(pod: &Value, out: &mut Vec<String>) {
    for c in containers(pod) {
        for e in array(c, "/envFrom") {
            out.push(str_at(e, "/configMapRef/name").to_string());
        }
        for e in array(c, "/env") {
            out.push(str_at(e, "/valueFrom/configMapKeyRef/name").to_string());
        }
    }
    for v in array(pod, "/spec/volumes") {
        out.push(str_at(v, "/configMap/name").to_string());
        for p in array(v, "/projected/sources") {
            out.push(str_at(p, "/configMap/name").to_string());
        }
    }
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| array(pod, &format!("/spec/{k}")).collect::<Vec<_>>())
}

/// Whether the pod is a kubelet's mirror of a static pod.
pub fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
}

/// What a pod bound to a node leads to; `None` for an unbound pod.
fn pod_entry(pod: &Value) -> Option<PodEntry> {
    let node = str_at(pod, "/spec/nodeName");
    if node.is_empty() {
        return None;
    }
    let ns = str_at(pod, "/metadata/namespace");
    let name = str_at(pod, "/metadata/name");
    let r = |kind, n: &str| Ref {
        kind,
        namespace: ns.to_string(),
        name: n.to_string(),
    };
    let mut refs = vec![r(Kind::Pod, name)];
    // a node must never gain access to other objects through a pod it created itself
    if !is_mirror_pod(pod) {
        let sa = str_at(pod, "/spec/serviceAccountName");
        if !sa.is_empty() {
            refs.push(r(Kind::ServiceAccount, sa));
        }
        let mut names = Vec::new();
        pod_secrets(pod, &mut names);
        refs.extend(
            names
                .drain(..)
                .filter(|n| !n.is_empty())
                .map(|n| r(Kind::Secret, &n)),
        );
        pod_configmaps(pod, &mut names);
        refs.extend(
            names
                .drain(..)
                .filter(|n| !n.is_empty())
                .map(|n| r(Kind::ConfigMap, &n)),
        );
        for v in array(pod, "/spec/volumes") {
            let claim = str_at(v, "/persistentVolumeClaim/claimName");
            if !claim.is_empty() {
                refs.push(r(Kind::Pvc, claim));
            } else if v.get("ephemeral").is_some() {
                refs.push(r(Kind::Pvc, &format!("{name}-{}", str_at(v, "/name"))));
            }
        }
        for c in array(pod, "/spec/resourceClaims") {
            let direct = str_at(c, "/resourceClaimName");
            let claim = if direct.is_empty() {
                let entry = str_at(c, "/name");
                array(pod, "/status/resourceClaimStatuses")
                    .find(|s| str_at(s, "/name") == entry)
                    .map(|s| str_at(s, "/resourceClaimName"))
                    .unwrap_or("")
            } else {
                direct
            };
            if !claim.is_empty() {
                refs.push(r(Kind::ResourceClaim, claim));
            }
        }
        let extended = str_at(pod, "/status/extendedResourceClaimStatus/resourceClaimName");
        if !extended.is_empty() {
            refs.push(r(Kind::ResourceClaim, extended));
        }
    }
    refs.sort_by(|a, b| (a.kind as u8, &a.name).cmp(&(b.kind as u8, &b.name)));
    refs.dedup();
    Some(PodEntry {
        node: node.to_string(),
        refs,
    })
}

/// A PV's bound claim and the secrets the kubelet reads for it (upstream's
/// VisitPVSecretNames, kubelet-visible ones only): a secret without a namespace of its
/// own lives in the claim's namespace.
fn pv_entry(pv: &Value) -> PvEntry {
    let claim_ns = str_at(pv, "/spec/claimRef/namespace");
    let claim_name = str_at(pv, "/spec/claimRef/name");
    if pv.pointer("/spec/claimRef").is_none() {
        return PvEntry::default();
    }
    let mut secrets = Vec::new();
    let mut push = |ns: &str, name: &str| {
        if !name.is_empty() {
            let ns = if ns.is_empty() { claim_ns } else { ns };
            secrets.push((ns.to_string(), name.to_string()));
        }
    };
    push(
        str_at(pv, "/spec/azureFile/secretNamespace"),
        str_at(pv, "/spec/azureFile/secretName"),
    );
    for src in SECRET_REF_SOURCES {
        push(
            str_at(pv, &format!("/spec/{src}/secretRef/namespace")),
            str_at(pv, &format!("/spec/{src}/secretRef/name")),
        );
    }
    for r in [
        "nodePublishSecretRef",
        "nodeStageSecretRef",
        "nodeExpandSecretRef",
    ] {
        push(
            str_at(pv, &format!("/spec/csi/{r}/namespace")),
            str_at(pv, &format!("/spec/csi/{r}/name")),
        );
    }
    PvEntry {
        claim: Some((claim_ns.to_string(), claim_name.to_string())),
        secrets,
    }
}

impl State {
    fn set_pod(&mut self, key: (String, String), entry: Option<PodEntry>) {
        if self.pods.get(&key) == entry.as_ref() {
            return;
        }
        if let Some(old) = self.pods.remove(&key)
            && let Some(reach) = self.reach.get_mut(&old.node)
        {
            for r in old.refs {
                if let Some(n) = reach.get_mut(&r) {
                    *n -= 1;
                    if *n == 0 {
                        reach.remove(&r);
                    }
                }
            }
            if reach.is_empty() {
                self.reach.remove(&old.node);
            }
        }
        if let Some(new) = entry {
            let reach = self.reach.entry(new.node.clone()).or_default();
            for r in &new.refs {
                *reach.entry(r.clone()).or_default() += 1;
            }
            self.pods.insert(key, new);
        }
    }

    fn set_pv(&mut self, name: &str, entry: Option<PvEntry>) {
        if let Some(old) = self.pvs.remove(name) {
            for s in old.secrets {
                if let Some(set) = self.secret_pvs.get_mut(&s) {
                    set.remove(name);
                    if set.is_empty() {
                        self.secret_pvs.remove(&s);
                    }
                }
            }
        }
        if let Some(new) = entry.filter(|e| e.claim.is_some()) {
            for s in &new.secrets {
                self.secret_pvs
                    .entry(s.clone())
                    .or_default()
                    .insert(name.to_string());
            }
            self.pvs.insert(name.to_string(), new);
        }
    }

    fn apply(&mut self, key: &str, obj: Option<&Value>) {
        let (ns, name) = key_parts(key);
        let segment = key.trim_start_matches('/').split('/').nth(1).unwrap_or("");
        match segment {
            "pods" => self.set_pod((ns, name), obj.and_then(pod_entry)),
            "persistentvolumes" => self.set_pv(&name, obj.map(pv_entry)),
            "volumeattachments" | "resourceslices" => {
                let map = if segment == "volumeattachments" {
                    &mut self.attachments
                } else {
                    &mut self.slices
                };
                match obj
                    .map(|o| str_at(o, "/spec/nodeName"))
                    .filter(|n| !n.is_empty())
                {
                    Some(node) => map.insert(name, node.to_string()),
                    None => map.remove(&name),
                };
            }
            _ => {}
        }
    }

    fn apply_events(&mut self, events: &[std::sync::Arc<crate::storage::Event>]) {
        for e in events {
            let obj = (e.kind != EventType::Deleted).then_some(&*e.object);
            self.apply(&e.key, obj);
        }
    }

    fn reaches(&self, node: &str, kind: Kind, ns: &str, name: &str) -> bool {
        let r = Ref {
            kind,
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        self.reach.get(node).is_some_and(|m| m.contains_key(&r))
    }

    fn pv_reaches(&self, node: &str, pv: &str) -> bool {
        self.pvs
            .get(pv)
            .and_then(|e| e.claim.as_ref())
            .is_some_and(|(ns, claim)| self.reaches(node, Kind::Pvc, ns, claim))
    }

    fn has_path(&self, node: &str, start: Start, ns: &str, name: &str) -> bool {
        match start {
            Start::Ref(Kind::Secret) => {
                self.reaches(node, Kind::Secret, ns, name)
                    || self
                        .secret_pvs
                        .get(&(ns.to_string(), name.to_string()))
                        .is_some_and(|pvs| pvs.iter().any(|pv| self.pv_reaches(node, pv)))
            }
            Start::Ref(kind) => self.reaches(node, kind, ns, name),
            Start::Pv => self.pv_reaches(node, name),
            Start::VolumeAttachment => self.attachments.get(name).is_some_and(|n| n == node),
            Start::ResourceSlice => self.slices.get(name).is_some_and(|n| n == node),
        }
    }
}

impl Graph {
    pub fn new(store: Store) -> Self {
        Graph {
            store,
            state: Mutex::new(State::default()),
        }
    }

    /// The graph, caught up with the store.
    fn current(&self) -> std::sync::MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = WATCHED
            .iter()
            .map(|r| self.store.last_change(r))
            .max()
            .unwrap_or(0);
        if st.built && stamp <= st.rev {
            return st;
        }
        let prefixes: Vec<String> = WATCHED.iter().map(|r| format!("/registry/{r}/")).collect();
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let caught_up = st
            .built
            .then(|| self.store.changes_since(st.rev, &prefixes))
            .flatten();
        match caught_up {
            Some((events, rev)) => {
                st.apply_events(&events);
                st.rev = rev;
            }
            None => {
                let mut fresh = State {
                    built: true,
                    ..State::default()
                };
                let mut rev = u64::MAX;
                for p in &prefixes {
                    let (items, at) = self.store.snapshot(p);
                    rev = rev.min(at);
                    for o in items {
                        let key = format!(
                            "{p}{}",
                            match str_at(&o, "/metadata/namespace") {
                                "" => str_at(&o, "/metadata/name").to_string(),
                                ns => format!("{ns}/{}", str_at(&o, "/metadata/name")),
                            }
                        );
                        fresh.apply(&key, Some(&o));
                    }
                }
                // snapshots taken one after another: replaying from the oldest one's
                // revision applies whatever changed in between, in order
                fresh.rev = rev;
                if let Some((events, now)) = self.store.changes_since(rev, &prefixes) {
                    fresh.apply_events(&events);
                    fresh.rev = now;
                }
                *st = fresh;
            }
        }
        st
    }

    fn has_path(&self, node: &str, start: Start, ns: &str, name: &str) -> bool {
        self.current().has_path(node, start, ns, name)
    }
}

/// The Node authorizer's answer: allowed, or no opinion with upstream's reason (which
/// ends up in the Forbidden message when no later authorizer allows the request).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    NoOpinion(String),
}

fn no(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion(reason.into())
}

/// The Node authorizer.
pub struct NodeAuthorizer {
    graph: Graph,
    rules: Vec<rbac::rule::Rule>,
}

impl NodeAuthorizer {
    pub fn new(store: Store) -> Self {
        let rules = rbac::bootstrap_policy()
            .cluster_roles
            .iter()
            .find(|r| str_at(r, "/metadata/name") == "system:node")
            .map(rbac::rule::Rule::list_from_object)
            .unwrap_or_default();
        NodeAuthorizer {
            graph: Graph::new(store),
            rules,
        }
    }

    /// Decides a request; `None` when the user is not a node (no opinion, no reason).
    pub fn authorize(&self, user: &User, info: &RequestInfo) -> Option<Decision> {
        let node = node_identity(user)?;
        if node.is_empty() {
            return Some(no(format!("unknown node for user \"{}\"", user.name)));
        }
        if info.is_resource_request {
            let decided = match (info.group.as_str(), info.resource.as_str()) {
                ("", "secrets") => Some(self.read_namespaced(node, Kind::Secret, info)),
                ("", "configmaps") => Some(self.read_namespaced(node, Kind::ConfigMap, info)),
                ("", "persistentvolumeclaims") if info.subresource == "status" => {
                    Some(self.status_update(node, Start::Ref(Kind::Pvc), info))
                }
                ("", "persistentvolumeclaims") => Some(self.get(node, Start::Ref(Kind::Pvc), info)),
                ("", "persistentvolumes") => Some(self.get(node, Start::Pv, info)),
                ("resource.k8s.io", "resourceclaims") => {
                    Some(self.get(node, Start::Ref(Kind::ResourceClaim), info))
                }
                ("storage.k8s.io", "volumeattachments") => {
                    Some(self.get(node, Start::VolumeAttachment, info))
                }
                ("", "serviceaccounts") => Some(self.create_token(node, info)),
                ("coordination.k8s.io", "leases") => Some(lease(node, info)),
                ("storage.k8s.io", "csinodes") => Some(csinode(node, info)),
                ("resource.k8s.io", "resourceslices") => Some(self.resource_slice(node, info)),
                ("", "nodes") => node_object(node, info),
                ("", "pods") => self.pod(node, info),
                _ => None,
            };
            if let Some(d) = decided {
                return Some(d);
            }
        }
        let attrs = crate::authz::attributes(info);
        Some(if self.rules.iter().any(|r| r.allows(&attrs)) {
            Decision::Allow
        } else {
            no("")
        })
    }

    fn related(&self, node: &str, start: Start, info: &RequestInfo) -> Decision {
        if info.name.is_empty() {
            return no("No Object name found");
        }
        if self
            .graph
            .has_path(node, start, &info.namespace, &info.name)
        {
            Decision::Allow
        } else {
            no(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
    }

    fn status_update(&self, node: &str, start: Start, info: &RequestInfo) -> Decision {
        if !matches!(info.verb.as_str(), "update" | "patch") {
            return no("can only get/update/patch this type");
        }
        self.related(node, start, info)
    }

    fn get(&self, node: &str, start: Start, info: &RequestInfo) -> Decision {
        if info.verb != "get" {
            return no("can only get individual resources of this type");
        }
        if !info.subresource.is_empty() {
            return no("cannot get subresource");
        }
        self.related(node, start, info)
    }

    fn read_namespaced(&self, node: &str, kind: Kind, info: &RequestInfo) -> Decision {
        if !matches!(info.verb.as_str(), "get" | "list" | "watch") {
            return no("can only read resources of this type");
        }
        if !info.subresource.is_empty() {
            return no("cannot read subresource");
        }
        if info.namespace.is_empty() {
            return no("can only read namespaced object of this type");
        }
        self.related(node, Start::Ref(kind), info)
    }

    fn create_token(&self, node: &str, info: &RequestInfo) -> Decision {
        if info.verb != "create" || info.name.is_empty() {
            return no("can only create tokens for individual service accounts");
        }
        if info.subresource != "token" {
            return no("can only create token subresource of serviceaccount");
        }
        self.related(node, Start::Ref(Kind::ServiceAccount), info)
    }

    fn resource_slice(&self, node: &str, info: &RequestInfo) -> Decision {
        if !info.subresource.is_empty() {
            return no("cannot authorize ResourceSlice subresources");
        }
        match info.verb.as_str() {
            "create" => Decision::Allow,
            "get" | "update" | "patch" | "delete" => self.related(node, Start::ResourceSlice, info),
            "watch" | "list" | "deletecollection" => {
                if selects(info, "nodeName", node) {
                    Decision::Allow
                } else {
                    no(
                        "can only list/watch/deletecollection resourceslices with nodeName field selector",
                    )
                }
            }
            _ => no(
                "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
            ),
        }
    }

    fn pod(&self, node: &str, info: &RequestInfo) -> Option<Decision> {
        let d = match (info.subresource.as_str(), info.verb.as_str()) {
            ("", "get") => self.get(node, Start::Ref(Kind::Pod), info),
            ("", "list" | "watch") => {
                if selects(info, "spec.nodeName", node) {
                    Decision::Allow
                } else if !info.name.is_empty() {
                    self.related(node, Start::Ref(Kind::Pod), info)
                } else {
                    no("can only list/watch pods with spec.nodeName field selector")
                }
            }
            // mirror pods, their status and evictions: NodeRestriction narrows these
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
                Decision::Allow
            }
            _ => no(""),
        };
        Some(d)
    }
}

/// Whether the request's field selector pins `field` to `value`.
fn selects(info: &RequestInfo, field: &str, value: &str) -> bool {
    info.field_selector
        .requirements
        .iter()
        .any(|r| r.field == field && !r.negated && r.value == value)
}

fn lease(node: &str, info: &RequestInfo) -> Decision {
    if !matches!(
        info.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return no("can only get, create, update, patch, or delete a node lease");
    }
    if info.namespace != "kube-node-lease" {
        return no("can only access leases in the \"kube-node-lease\" system namespace");
    }
    // on create the name is in the body: NodeRestriction checks it
    if info.verb != "create" && info.name != node {
        return no("can only access node lease with the same name as the requesting node");
    }
    Decision::Allow
}

fn csinode(node: &str, info: &RequestInfo) -> Decision {
    if !matches!(
        info.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return no("can only get, create, update, patch, or delete a CSINode");
    }
    if !info.subresource.is_empty() {
        return no("cannot authorize CSINode subresources");
    }
    if info.verb != "create" && info.name != node {
        return no("can only access CSINode with the same name as the requesting node");
    }
    Decision::Allow
}

/// The Node object itself; `None` falls through to the static rules.
fn node_object(node: &str, info: &RequestInfo) -> Option<Decision> {
    let d = match (info.subresource.as_str(), info.verb.as_str()) {
        // NodeRestriction confines writes to the node's own object
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => Decision::Allow,
        ("", "get" | "list" | "watch") => {
            if info.name == node {
                Decision::Allow
            } else if info.name.is_empty() {
                no(format!(
                    "node '{node}' cannot read all nodes, only its own Node object"
                ))
            } else {
                no(format!(
                    "node '{node}' cannot read '{}', only its own Node object",
                    info.name
                ))
            }
        }
        _ => no(""),
    };
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, node: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["nodeName"] = json!(node);
        json!({"metadata": {"namespace": ns, "name": name}, "spec": spec})
    }

    fn graph_with(objects: &[(&str, Value)]) -> State {
        let mut st = State::default();
        for (key, obj) in objects {
            st.apply(key, Some(obj));
        }
        st
    }

    #[test]
    fn a_bound_pod_leads_to_what_it_references() {
        let p = pod(
            "ns",
            "web",
            "n1",
            json!({
                "serviceAccountName": "sa",
                "imagePullSecrets": [{"name": "pull"}],
                "containers": [{"name": "c", "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}
                ], "envFrom": [{"configMapRef": {"name": "from-cm"}}]}],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol-secret"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj-cm"}}, {"secret": {"name": "proj-secret"}}]}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}
                ]
            }),
        );
        let st = graph_with(&[("/registry/pods/ns/web", p)]);
        for s in ["pull", "env-secret", "vol-secret", "proj-secret"] {
            assert!(st.has_path("n1", Start::Ref(Kind::Secret), "ns", s), "{s}");
        }
        for c in ["env-cm", "from-cm", "proj-cm"] {
            assert!(
                st.has_path("n1", Start::Ref(Kind::ConfigMap), "ns", c),
                "{c}"
            );
        }
        assert!(st.has_path("n1", Start::Ref(Kind::Pvc), "ns", "claim"));
        assert!(st.has_path("n1", Start::Ref(Kind::Pvc), "ns", "web-scratch"));
        assert!(st.has_path("n1", Start::Ref(Kind::ServiceAccount), "ns", "sa"));
        assert!(st.has_path("n1", Start::Ref(Kind::Pod), "ns", "web"));
        // not another node, namespace or object
        assert!(!st.has_path("n2", Start::Ref(Kind::Secret), "ns", "pull"));
        assert!(!st.has_path("n1", Start::Ref(Kind::Secret), "other", "pull"));
        assert!(!st.has_path("n1", Start::Ref(Kind::Secret), "ns", "unrelated"));
    }

    #[test]
    fn shared_references_stay_until_the_last_pod_goes() {
        let spec = json!({"volumes": [{"name": "s", "secret": {"secretName": "shared"}}]});
        let mut st = graph_with(&[
            ("/registry/pods/ns/a", pod("ns", "a", "n1", spec.clone())),
            ("/registry/pods/ns/b", pod("ns", "b", "n1", spec)),
        ]);
        st.apply("/registry/pods/ns/a", None);
        assert!(st.has_path("n1", Start::Ref(Kind::Secret), "ns", "shared"));
        st.apply("/registry/pods/ns/b", None);
        assert!(!st.has_path("n1", Start::Ref(Kind::Secret), "ns", "shared"));
        assert!(st.reach.is_empty() && st.pods.is_empty());
    }

    #[test]
    fn mirror_pods_grant_nothing_but_themselves() {
        let mut p = pod(
            "ns",
            "static",
            "n1",
            json!({"volumes": [{"name": "s", "secret": {"secretName": "s"}}]}),
        );
        p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        let st = graph_with(&[("/registry/pods/ns/static", p)]);
        assert!(!st.has_path("n1", Start::Ref(Kind::Secret), "ns", "s"));
        assert!(st.has_path("n1", Start::Ref(Kind::Pod), "ns", "static"));
    }

    #[test]
    fn unbound_pods_lead_nowhere() {
        let p = json!({"metadata": {"namespace": "ns", "name": "p"},
            "spec": {"volumes": [{"name": "s", "secret": {"secretName": "s"}}]}});
        let st = graph_with(&[("/registry/pods/ns/p", p)]);
        assert!(st.reach.is_empty());
    }

    #[test]
    fn persistent_volumes_and_their_secrets_through_the_claim() {
        let p = pod(
            "ns",
            "db",
            "n1",
            json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}),
        );
        let pv = json!({"metadata": {"name": "pv1"}, "spec": {
            "claimRef": {"namespace": "ns", "name": "data"},
            "csi": {"driver": "d", "volumeHandle": "h",
                "nodePublishSecretRef": {"name": "publish", "namespace": "secrets"},
                "controllerPublishSecretRef": {"name": "controller", "namespace": "secrets"}},
            "rbd": {"secretRef": {"name": "ceph"}}
        }});
        let st = graph_with(&[
            ("/registry/pods/ns/db", p),
            ("/registry/persistentvolumes/pv1", pv),
        ]);
        assert!(st.has_path("n1", Start::Pv, "", "pv1"));
        assert!(st.has_path("n1", Start::Ref(Kind::Secret), "secrets", "publish"));
        assert!(st.has_path("n1", Start::Ref(Kind::Secret), "ns", "ceph"));
        assert!(!st.has_path("n1", Start::Ref(Kind::Secret), "secrets", "controller"));
        assert!(!st.has_path("n2", Start::Pv, "", "pv1"));
    }

    #[test]
    fn attachments_name_their_node() {
        let va = json!({"metadata": {"name": "va1"}, "spec": {"nodeName": "n1"}});
        let mut st = graph_with(&[("/registry/volumeattachments/va1", va)]);
        assert!(st.has_path("n1", Start::VolumeAttachment, "", "va1"));
        assert!(!st.has_path("n2", Start::VolumeAttachment, "", "va1"));
        st.apply("/registry/volumeattachments/va1", None);
        assert!(!st.has_path("n1", Start::VolumeAttachment, "", "va1"));
    }

    #[test]
    fn node_identity_needs_the_prefix_and_the_group() {
        let u = |name: &str, groups: &[&str]| User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            node_identity(&u("system:node:n1", &["system:nodes"])),
            Some("n1")
        );
        assert_eq!(
            node_identity(&u("system:node:", &["system:nodes"])),
            Some("")
        );
        assert_eq!(node_identity(&u("system:node:n1", &[])), None);
        assert_eq!(node_identity(&u("kubelet", &["system:nodes"])), None);
    }
}
