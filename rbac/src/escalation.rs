//! Escalation prevention: the checks upstream's RBAC registry (`policybased` storage of
//! roles, clusterroles, rolebindings and clusterrolebindings) runs on create and update,
//! so that nobody grants a permission they do not hold.
//!
//! The server calls [`check_role_write`] before storing a Role or ClusterRole and
//! [`check_binding_write`] before storing a RoleBinding or ClusterRoleBinding; both
//! return upstream's 403 `Forbidden` status. The building blocks
//! ([`confirm_no_escalation`], [`may_bind`]) are public for other callers.
//!
//! A check passes when any of these holds, as upstream:
//! - the user is in `system:masters`;
//! - roles: the user may `escalate` that role (RBAC verb on `roles`/`clusterroles`);
//! - bindings: the user may `bind` the referenced role (RBAC verb on
//!   `roles`/`clusterroles`, checked in the binding's namespace);
//! - the update changes only `ownerReferences`/`finalizers` (garbage collection);
//! - the user already holds every rule being granted, in the object's namespace.
//!
//! Only RBAC is consulted for `escalate` and `bind`; a server with other authorizers
//! (Node, webhook) that should count here must check them itself first.

use machinery::status::ApiError;
use serde_json::{Value, json};

use crate::rule::{Rule, compact, covers, go_quote, go_quote_list};
use crate::{Attributes, RBAC_GROUP, SYSTEM_MASTERS, Snapshot, UserInfo, authorize};

/// The rules a user does not hold, found by [`confirm_no_escalation`]. Its `Display`
/// is upstream's error text:
/// `user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:`
/// followed by one line per missing rule, e.g. `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotHeld {
    /// The full message, as upstream formats it.
    pub message: String,
    /// The missing rules, compacted as upstream prints them (sorted, de-duplicated).
    pub missing: Vec<String>,
}

impl NotHeld {
    /// Upstream's `NewForbidden(groupResource, name, err)` around this error, e.g.
    /// `clusterroles.rbac.authorization.k8s.io "x" is forbidden: user "bob" ...`.
    /// `resource` is the plural (`roles`, `clusterroles`, `rolebindings`, ...).
    pub fn forbidden(&self, resource: &str, name: &str) -> ApiError {
        ApiError::forbidden(RBAC_GROUP, resource, name, &self.message)
    }
}

/// Upstream's `ConfirmNoEscalation`: `Ok` when the rules `user` holds in `namespace`
/// (ClusterRoleBindings, plus that namespace's RoleBindings) cover every
/// `requested_rules` entry (PolicyRule JSON), else the missing rules.
pub fn confirm_no_escalation(
    snapshot: &Snapshot,
    user: &UserInfo,
    namespace: &str,
    requested_rules: &[Value],
) -> Result<(), NotHeld> {
    let requested: Vec<Rule> = requested_rules.iter().map(Rule::from_json).collect();
    confirm_rules(snapshot, user, namespace, &requested)
}

fn confirm_rules(
    snapshot: &Snapshot,
    user: &UserInfo,
    namespace: &str,
    requested: &[Rule],
) -> Result<(), NotHeld> {
    let owned = snapshot.rules_for_user(user, namespace);
    let (covered, missing) = covers(&owned, requested);
    if covered {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(&missing).iter().map(Rule::compact_string).collect();
    lines.sort();
    lines.dedup();
    let message = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        go_quote_list(&user.groups),
        lines.join("\n")
    );
    Err(NotHeld {
        message,
        missing: lines,
    })
}

fn is_master(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == SYSTEM_MASTERS)
}

fn rbac_verb_allowed(
    snapshot: &Snapshot,
    user: &UserInfo,
    verb: &str,
    api_group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    let attrs = Attributes {
        verb: verb.into(),
        namespace: namespace.into(),
        api_group: api_group.into(),
        resource: resource.into(),
        name: name.into(),
        is_resource_request: true,
        ..Attributes::default()
    };
    authorize(snapshot, user, &attrs).is_allowed()
}

/// True when `new` differs from `old` only in `metadata.ownerReferences`,
/// `metadata.finalizers` or `metadata.managedFields` (upstream's
/// `IsOnlyMutatingGCFields`; managedFields are ours to ignore, the server sets them).
fn only_gc_fields_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("ownerReferences");
            meta.remove("finalizers");
            meta.remove("managedFields");
        }
        v
    };
    strip(new) == strip(old)
}

fn has_aggregation_rule(obj: &Value) -> bool {
    obj.pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
}

/// The check before creating (`old` = `None`) or updating a Role (`resource` =
/// `"roles"`, `namespace` its namespace) or ClusterRole (`"clusterroles"`, `""`).
///
/// Besides the rules themselves, a ClusterRole with an `aggregationRule` (before or
/// after the update) needs full authority (`*` on everything), as upstream: an
/// aggregation can gather any permission.
pub fn check_role_write(
    snapshot: &Snapshot,
    user: &UserInfo,
    resource: &str,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    // Upstream asks about the request, whose name is empty on create (a POST to the
    // collection), so `escalate` limited by resourceNames only helps updates.
    let request_name = if old.is_some() { name } else { "" };
    if is_master(user)
        || rbac_verb_allowed(
            snapshot,
            user,
            "escalate",
            RBAC_GROUP,
            resource,
            namespace,
            request_name,
        )
    {
        return Ok(());
    }
    if old.is_some_and(|old| only_gc_fields_changed(new, old)) {
        return Ok(());
    }
    let rules = Rule::list_from_object(new);
    confirm_rules(snapshot, user, namespace, &rules).map_err(|e| e.forbidden(resource, name))?;
    if resource == "clusterroles"
        && (has_aggregation_rule(new) || old.is_some_and(has_aggregation_rule))
    {
        let full = [
            Rule::from_json(&json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})),
            Rule::from_json(&json!({"verbs": ["*"], "nonResourceURLs": ["*"]})),
        ];
        if confirm_rules(snapshot, user, namespace, &full).is_err() {
            return Err(ApiError::forbidden(
                RBAC_GROUP,
                resource,
                name,
                "must have cluster-admin privileges to use the aggregationRule",
            ));
        }
    }
    Ok(())
}

/// Whether `user` may create a binding in `namespace` (`""` for a
/// ClusterRoleBinding) to `role_ref` (`{"apiGroup", "kind", "name"}`): it may `bind`
/// the role, or it already holds all of the role's rules in that namespace.
///
/// `Err` carries upstream's reason: the [`NotHeld`] text, or
/// `clusterroles.rbac.authorization.k8s.io "x" not found` when the role is missing.
/// Members of `system:masters` are not special-cased here; see [`check_binding_write`].
pub fn may_bind(
    snapshot: &Snapshot,
    user: &UserInfo,
    namespace: &str,
    role_ref: &Value,
) -> Result<(), String> {
    let kind = role_ref.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let group = role_ref
        .get("apiGroup")
        .and_then(Value::as_str)
        .unwrap_or("");
    let resource = match kind {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        _ => {
            return Err(format!(
                "unsupported role reference kind: {}",
                go_quote(kind)
            ));
        }
    };
    if rbac_verb_allowed(snapshot, user, "bind", group, resource, namespace, name) {
        return Ok(());
    }
    let Some(rules) = snapshot.role_rules(namespace, kind, name) else {
        // Upstream resolves role references through the registry, so a missing role
        // reads as the store's NotFound.
        return Err(format!(
            "{resource}.{RBAC_GROUP} {} not found",
            go_quote(name)
        ));
    };
    confirm_rules(snapshot, user, namespace, &rules).map_err(|e| e.message)
}

/// The check before creating (`old` = `None`) or updating a RoleBinding (`resource` =
/// `"rolebindings"`, `namespace` its namespace) or ClusterRoleBinding
/// (`"clusterrolebindings"`, `""`), returning upstream's 403 on refusal.
pub fn check_binding_write(
    snapshot: &Snapshot,
    user: &UserInfo,
    resource: &str,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if is_master(user) || old.is_some_and(|old| only_gc_fields_changed(new, old)) {
        return Ok(());
    }
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let role_ref = new.get("roleRef").cloned().unwrap_or(Value::Null);
    may_bind(snapshot, user, namespace, &role_ref)
        .map_err(|why| ApiError::forbidden(RBAC_GROUP, resource, name, &why))
}
