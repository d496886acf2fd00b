//! Upstream's default RBAC policy (kube-apiserver v1.35's `bootstrappolicy`): the
//! ClusterRoles, ClusterRoleBindings, Roles and RoleBindings the API server creates and
//! keeps up to date at start-up.
//!
//! The policy is data, in `policy.txt` (its header explains the format), written from
//! upstream's testdata (`cluster-roles.yaml`, `controller-roles.yaml`, ...); this module
//! only turns it into the JSON objects the API stores. Aggregated roles (`admin`,
//! `edit`, `view`) are created with empty `rules`: their rules come from [`crate::aggregate`].

use serde_json::{Map, Value, json};

/// The label every bootstrap object carries (value `rbac-defaults`).
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
/// The annotation that lets an object opt out of reconciliation (value `"false"`).
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

const POLICY: &str = include_str!("policy.txt");
const API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// The bootstrap policy as full `rbac.authorization.k8s.io/v1` objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BootstrapPolicy {
    /// ClusterRoles, including the `system:controller:*` roles.
    pub cluster_roles: Vec<Value>,
    /// ClusterRoleBindings, including the `system:controller:*` bindings.
    pub cluster_role_bindings: Vec<Value>,
    /// `(namespace, Role)`.
    pub roles: Vec<(String, Value)>,
    /// `(namespace, RoleBinding)`.
    pub role_bindings: Vec<(String, Value)>,
}

/// Upstream's bootstrap policy (v1.35 defaults, default feature gates).
pub fn bootstrap_policy() -> BootstrapPolicy {
    let mut policy = BootstrapPolicy::default();
    let mut current: Option<Target> = None;
    for line in POLICY.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') {
            if let Some(t) = current.as_mut() {
                body_line(t.object_mut(), trimmed);
            }
            continue;
        }
        if let Some(t) = current.take() {
            t.finish(&mut policy);
        }
        current = header_line(trimmed);
    }
    if let Some(t) = current.take() {
        t.finish(&mut policy);
    }
    policy
}

/// The object being read, and where it goes.
enum Target {
    ClusterRole(Value),
    /// A controller role: the ClusterRole and its ClusterRoleBinding.
    Controller(Value, Value),
    ClusterRoleBinding(Value),
    Role(String, Value),
    RoleBinding(String, Value),
}

impl Target {
    fn object_mut(&mut self) -> &mut Value {
        match self {
            Target::ClusterRole(v)
            | Target::Controller(v, _)
            | Target::ClusterRoleBinding(v)
            | Target::Role(_, v)
            | Target::RoleBinding(_, v) => v,
        }
    }

    fn finish(self, policy: &mut BootstrapPolicy) {
        match self {
            Target::ClusterRole(v) => policy.cluster_roles.push(v),
            Target::Controller(role, binding) => {
                policy.cluster_roles.push(role);
                policy.cluster_role_bindings.push(binding);
            }
            Target::ClusterRoleBinding(v) => policy.cluster_role_bindings.push(v),
            Target::Role(ns, v) => policy.roles.push((ns, v)),
            Target::RoleBinding(ns, v) => policy.role_bindings.push((ns, v)),
        }
    }
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    meta.insert(
        "labels".into(),
        json!({ BOOTSTRAPPING_LABEL: "rbac-defaults" }),
    );
    meta.insert(
        "annotations".into(),
        json!({ AUTOUPDATE_ANNOTATION: "true" }),
    );
    Value::Object(meta)
}

fn role(kind: &str, name: &str, namespace: Option<&str>) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata(name, namespace),
        "rules": [],
    })
}

fn binding(kind: &str, name: &str, namespace: Option<&str>, role_kind: &str, role: &str) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata(name, namespace),
        "roleRef": { "apiGroup": crate::RBAC_GROUP, "kind": role_kind, "name": role },
    })
}

fn header_line(line: &str) -> Option<Target> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["clusterrole", name] => Some(Target::ClusterRole(role("ClusterRole", name, None))),
        ["controller", short] => {
            let name = format!("system:controller:{short}");
            let mut b = binding("ClusterRoleBinding", &name, None, "ClusterRole", &name);
            b["subjects"] =
                json!([{ "kind": "ServiceAccount", "name": short, "namespace": "kube-system" }]);
            Some(Target::Controller(role("ClusterRole", &name, None), b))
        }
        ["clusterrolebinding", name, role_name] => Some(Target::ClusterRoleBinding(binding(
            "ClusterRoleBinding",
            name,
            None,
            "ClusterRole",
            role_name,
        ))),
        ["role", ns, name] => Some(Target::Role(ns.to_string(), role("Role", name, Some(ns)))),
        ["rolebinding", ns, name, kind, role_name] => Some(Target::RoleBinding(
            ns.to_string(),
            binding("RoleBinding", name, Some(ns), kind, role_name),
        )),
        _ => None,
    }
}

/// A comma-separated list; `""` stands for the empty string (the core group).
fn list(s: &str) -> Vec<String> {
    s.trim()
        .split(',')
        .map(|item| match item.trim() {
            "\"\"" => String::new(),
            other => other.to_string(),
        })
        .collect()
}

fn push(obj: &mut Value, field: &str, item: Value) {
    if let Some(map) = obj.as_object_mut() {
        let slot = map.entry(field.to_string()).or_insert_with(|| json!([]));
        if let Some(a) = slot.as_array_mut() {
            a.push(item);
        }
    }
}

fn body_line(obj: &mut Value, line: &str) {
    let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
    let parts: Vec<&str> = rest.split('|').collect();
    match (keyword, parts.as_slice()) {
        ("rule", [groups, resources, verbs, names @ ..]) => {
            let mut rule = Map::new();
            rule.insert("verbs".into(), json!(list(verbs)));
            rule.insert("apiGroups".into(), json!(list(groups)));
            rule.insert("resources".into(), json!(list(resources)));
            if let [names] = names {
                rule.insert("resourceNames".into(), json!(list(names)));
            }
            push(obj, "rules", Value::Object(rule));
        }
        ("urls", [urls, verbs]) => {
            push(
                obj,
                "rules",
                json!({ "verbs": list(verbs), "nonResourceURLs": list(urls) }),
            );
        }
        ("label", [kv]) => {
            let labels = obj
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut);
            if let (Some((k, v)), Some(labels)) = (kv.trim().split_once('='), labels) {
                labels.insert(k.into(), json!(v));
            }
        }
        ("aggregate", [kv]) => {
            if let (Some((k, v)), Some(map)) = (kv.trim().split_once('='), obj.as_object_mut()) {
                let selector = json!({ "matchLabels": { k: v } });
                let rule = map
                    .entry("aggregationRule")
                    .or_insert_with(|| json!({ "clusterRoleSelectors": [] }));
                push(rule, "clusterRoleSelectors", selector);
            }
        }
        ("user" | "group", [subject]) => {
            let kind = if keyword == "user" { "User" } else { "Group" };
            push(
                obj,
                "subjects",
                json!({ "apiGroup": crate::RBAC_GROUP, "kind": kind, "name": subject.trim() }),
            );
        }
        ("sa", [subject]) => {
            if let Some((ns, name)) = subject.trim().split_once('/') {
                push(
                    obj,
                    "subjects",
                    json!({ "kind": "ServiceAccount", "name": name, "namespace": ns }),
                );
            }
        }
        _ => {}
    }
}
