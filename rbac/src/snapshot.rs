//! An immutable, indexed view of the RBAC objects, and the two questions asked of it on
//! every request: may this user do this ([`authorize`]), and what may it do here
//! ([`rules_for`]).
//!
//! Bindings are indexed by subject (user name, group name, and service-account user
//! name `system:serviceaccount:<ns>:<name>`), per namespace for RoleBindings; role
//! references are resolved once when the snapshot is built. A request therefore looks
//! at the bindings that name its user or one of its groups, and nothing else.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::rule::{Rule, go_quote};
use crate::{Attributes, Decision, UserInfo, aggregate};

/// The resolved rules of one role, shared by every binding that references it.
type Rules = Arc<[Rule]>;

/// One subject of a binding, as stored.
#[derive(Debug, Clone)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

/// One RoleBinding or ClusterRoleBinding with its role reference resolved.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    /// Empty for ClusterRoleBindings.
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
    /// `None` when the referenced role does not exist (the binding grants nothing).
    rules: Option<Rules>,
}

impl Binding {
    /// Upstream's `clusterRoleBindingDescriber` / `roleBindingDescriber`.
    fn describe(&self, subject: &Subject) -> String {
        let subject_text = if subject.kind == "ServiceAccount" {
            let ns = if subject.namespace.is_empty() {
                &self.namespace
            } else {
                &subject.namespace
            };
            format!(
                "{} {}",
                subject.kind,
                go_quote(&format!("{}/{ns}", subject.name))
            )
        } else {
            format!("{} {}", subject.kind, go_quote(&subject.name))
        };
        let (kind, name) = if self.namespace.is_empty() {
            ("ClusterRoleBinding", self.name.clone())
        } else {
            ("RoleBinding", format!("{}/{}", self.name, self.namespace))
        };
        format!(
            "{kind} {} of {} {} to {subject_text}",
            go_quote(&name),
            self.role_kind,
            go_quote(&self.role_name)
        )
    }
}

/// Bindings of one scope (the cluster, or one namespace) with their subject indexes.
/// Index entries are `(binding index, subject index)`.
#[derive(Debug, Default)]
struct BindingSet {
    bindings: Vec<Binding>,
    by_user: HashMap<String, Vec<(u32, u32)>>,
    by_group: HashMap<String, Vec<(u32, u32)>>,
}

impl BindingSet {
    fn add(&mut self, binding: Binding) {
        let b = self.bindings.len() as u32;
        for (i, s) in binding.subjects.iter().enumerate() {
            let entry = (b, i as u32);
            match s.kind.as_str() {
                "User" => self.by_user.entry(s.name.clone()).or_default().push(entry),
                "Group" => self.by_group.entry(s.name.clone()).or_default().push(entry),
                "ServiceAccount" => {
                    // A subject without a namespace means the binding's own namespace,
                    // and matches nothing in a ClusterRoleBinding.
                    let ns = if s.namespace.is_empty() {
                        &binding.namespace
                    } else {
                        &s.namespace
                    };
                    if !ns.is_empty() && !s.name.is_empty() {
                        let user = format!("system:serviceaccount:{ns}:{}", s.name);
                        self.by_user.entry(user).or_default().push(entry);
                    }
                }
                _ => {}
            }
        }
        self.bindings.push(binding);
    }

    /// The bindings that apply to `user`, in stored order, each with the first of its
    /// subjects that names the user (as upstream's `appliesTo` reports it).
    fn applicable(&self, user: &UserInfo) -> Vec<(u32, u32)> {
        let mut hits: Vec<(u32, u32)> = Vec::new();
        if let Some(v) = self.by_user.get(&user.name) {
            hits.extend_from_slice(v);
        }
        for g in &user.groups {
            if let Some(v) = self.by_group.get(g) {
                hits.extend_from_slice(v);
            }
        }
        hits.sort_unstable();
        hits.dedup_by_key(|(b, _)| *b);
        hits
    }
}

/// A snapshot of the RBAC objects (JSON as stored: `rbac.authorization.k8s.io/v1` Role,
/// ClusterRole, RoleBinding, ClusterRoleBinding), indexed for authorization.
///
/// Build a new one whenever an RBAC object changes; building is linear in the number
/// of objects, and lookups never scan bindings that do not name the user.
#[derive(Debug, Default)]
pub struct Snapshot {
    cluster_roles: HashMap<String, Rules>,
    roles: HashMap<(String, String), Rules>,
    cluster: BindingSet,
    namespaced: HashMap<String, BindingSet>,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn subjects_of(binding: &Value) -> Vec<Subject> {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .map(|subjects| {
            subjects
                .iter()
                .map(|s| Subject {
                    kind: str_at(s, "/kind").to_string(),
                    name: str_at(s, "/name").to_string(),
                    namespace: str_at(s, "/namespace").to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Snapshot {
    /// Indexes the given objects. ClusterRoles with an `aggregationRule` are evaluated by
    /// their aggregated rules (see [`aggregate`]), whatever their stored `rules` say.
    /// Objects missing names or with mistyped fields are tolerated (they grant nothing).
    pub fn new(
        roles: Vec<Value>,
        cluster_roles: Vec<Value>,
        role_bindings: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
    ) -> Self {
        let mut snap = Snapshot::default();
        for cr in &cluster_roles {
            let name = str_at(cr, "/metadata/name").to_string();
            snap.cluster_roles
                .insert(name, Rule::list_from_object(cr).into());
        }
        for (name, rules) in aggregate(&cluster_roles) {
            let rules: Vec<Rule> = rules.iter().map(Rule::from_json).collect();
            snap.cluster_roles.insert(name, rules.into());
        }
        for r in &roles {
            let key = (
                str_at(r, "/metadata/namespace").to_string(),
                str_at(r, "/metadata/name").to_string(),
            );
            snap.roles.insert(key, Rule::list_from_object(r).into());
        }
        for crb in &cluster_role_bindings {
            let binding = snap.resolve(crb, "");
            snap.cluster.add(binding);
        }
        for rb in &role_bindings {
            let ns = str_at(rb, "/metadata/namespace");
            if ns.is_empty() {
                continue;
            }
            let binding = snap.resolve(rb, ns);
            snap.namespaced
                .entry(ns.to_string())
                .or_default()
                .add(binding);
        }
        snap
    }

    fn resolve(&self, binding: &Value, namespace: &str) -> Binding {
        let role_kind = str_at(binding, "/roleRef/kind").to_string();
        let role_name = str_at(binding, "/roleRef/name").to_string();
        let rules = self.role_rules(namespace, &role_kind, &role_name);
        Binding {
            name: str_at(binding, "/metadata/name").to_string(),
            namespace: namespace.to_string(),
            role_kind,
            role_name,
            subjects: subjects_of(binding),
            rules,
        }
    }

    /// The rules a role reference grants in `namespace` (upstream's
    /// `GetRoleReferenceRules`): a `Role` is looked up in that namespace, a
    /// `ClusterRole` cluster-wide. `None` when it does not exist.
    pub fn role_rules(&self, namespace: &str, kind: &str, name: &str) -> Option<Arc<[Rule]>> {
        match kind {
            "ClusterRole" => self.cluster_roles.get(name).cloned(),
            "Role" => self
                .roles
                .get(&(namespace.to_string(), name.to_string()))
                .cloned(),
            _ => None,
        }
    }

    /// The bindings to consult for `user` in `namespace`: the applicable
    /// ClusterRoleBindings, then (for a non-empty namespace) the applicable RoleBindings
    /// of that namespace — upstream's `VisitRulesFor` order.
    fn visit<F>(&self, user: &UserInfo, namespace: &str, mut f: F)
    where
        F: FnMut(&Binding, &Subject) -> bool,
    {
        let namespaced = if namespace.is_empty() {
            None
        } else {
            self.namespaced.get(namespace)
        };
        let sets = [Some(&self.cluster), namespaced];
        for set in sets.into_iter().flatten() {
            for (b, s) in set.applicable(user) {
                let binding = &set.bindings[b as usize];
                if !f(binding, &binding.subjects[s as usize]) {
                    return;
                }
            }
        }
    }

    /// How many bindings a request by `user` in `namespace` looks at: the diagnostic
    /// that shows lookups go through the subject index rather than over all bindings.
    pub fn bindings_considered(&self, user: &UserInfo, namespace: &str) -> usize {
        let mut n = 0;
        self.visit(user, namespace, |_, _| {
            n += 1;
            true
        });
        n
    }

    /// Every rule that applies to `user` in `namespace`, in upstream's order (upstream's
    /// `RulesFor`). The escalation checks compare against these.
    pub fn rules_for_user(&self, user: &UserInfo, namespace: &str) -> Vec<Rule> {
        let mut out = Vec::new();
        self.visit(user, namespace, |binding, _| {
            if let Some(rules) = &binding.rules {
                out.extend(rules.iter().cloned());
            }
            true
        });
        out
    }
}

/// Upstream's RBAC authorizer: allowed when a rule of a role bound to the user (by
/// name, group, or service account) allows the request; RoleBindings count only for
/// requests in their own namespace.
pub fn authorize(snapshot: &Snapshot, user: &UserInfo, attrs: &Attributes) -> Decision {
    let mut reason = None;
    snapshot.visit(user, &attrs.namespace, |binding, subject| {
        let allowed = binding
            .rules
            .as_ref()
            .is_some_and(|rules| rules.iter().any(|r| r.allows(attrs)));
        if allowed {
            reason = Some(format!("RBAC: allowed by {}", binding.describe(subject)));
        }
        !allowed
    });
    match reason {
        Some(r) => Decision::Allow(r),
        None => Decision::NoOpinion,
    }
}

/// The rules that apply to `user` in `namespace`, as a SelfSubjectRulesReview's
/// `status.resourceRules` and `status.nonResourceRules` (upstream's
/// `RBACAuthorizer.RulesFor`): a rule with resources becomes a resource rule, one with
/// non-resource URLs a non-resource rule, in binding order and without de-duplication.
pub fn rules_for(
    snapshot: &Snapshot,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<Value>, Vec<Value>) {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in snapshot.rules_for_user(user, namespace) {
        if !r.resources.is_empty() {
            resource_rules.push(
                Rule {
                    non_resource_urls: Vec::new(),
                    ..r.clone()
                }
                .to_json(),
            );
        }
        if !r.non_resource_urls.is_empty() {
            non_resource_rules.push(json!({
                "verbs": r.verbs,
                "nonResourceURLs": r.non_resource_urls,
            }));
        }
    }
    (resource_rules, non_resource_rules)
}
