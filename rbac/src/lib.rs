//! RBAC authorization as pure logic over JSON objects: the upstream
//! `rbac.authorization.k8s.io/v1` semantics of kube-apiserver's RBAC authorizer, with no
//! I/O and no knowledge of storage or HTTP.
//!
//! - [`Snapshot`] indexes Roles, ClusterRoles, RoleBindings and ClusterRoleBindings by
//!   subject once, so [`authorize`] looks up only the bindings naming the user, its
//!   groups or its service account (never a scan of all bindings).
//! - [`rules_for`] lists what a user may do in a namespace (SelfSubjectRulesReview,
//!   `kubectl auth can-i --list`).
//! - [`aggregate`] computes aggregated ClusterRoles as upstream's
//!   clusterrole-aggregation controller does; a [`Snapshot`] evaluates aggregated roles
//!   by their aggregated rules.
//! - [`escalation`] holds the write-time checks of the RBAC registry: a user may only
//!   grant permissions it already holds, unless it has `escalate` / `bind`.
//! - [`bootstrap_policy`] is upstream's default policy (v1.35), and [`reconcile`] its
//!   auto-update at start-up.
//!
//! The server owns the wiring: it builds a new `Snapshot` whenever an RBAC object
//! changes (from its watch cache), and calls these functions from its authorization
//! filter and from the RBAC resources' create/update paths.

mod aggregate;
mod bootstrap;
pub mod escalation;
mod reconcile;
pub mod rule;
mod snapshot;

pub use aggregate::aggregate;
pub use bootstrap::{
    AUTOUPDATE_ANNOTATION, BOOTSTRAPPING_LABEL, BootstrapPolicy, bootstrap_policy,
};
pub use escalation::{
    NotHeld, check_binding_write, check_role_write, confirm_no_escalation, may_bind,
};
pub use reconcile::{needs_recreate, reconcile};
pub use snapshot::{Snapshot, authorize, rules_for};

/// The authenticated user making a request (upstream's `user.Info`, the parts RBAC uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name, e.g. `alice` or `system:serviceaccount:default:builder`.
    pub name: String,
    /// The groups, e.g. `system:authenticated`, `system:masters`.
    pub groups: Vec<String>,
}

/// What a request asks to do (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or a special verb (`bind`, `escalate`, `impersonate`, ...);
    /// for non-resource requests the lower-cased HTTP method verb (`get`, `post`, ...).
    pub verb: String,
    /// The namespace; empty for cluster-scoped requests and for all-namespace lists.
    pub namespace: String,
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The resource (plural), e.g. `pods`.
    pub resource: String,
    /// The subresource, e.g. `log`, `status`; empty when none.
    pub subresource: String,
    /// The object name; empty for list, watch-all, create (without name) and
    /// deletecollection.
    pub name: String,
    /// True for `/api` and `/apis` resource requests; false for non-resource URLs.
    pub is_resource_request: bool,
    /// The request path, matched against `nonResourceURLs` when not a resource request.
    pub path: String,
}

/// The RBAC authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with upstream's reason, e.g.
    /// `RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"`.
    Allow(String),
    /// No rule allows it; the next authorizer (or a 403) decides.
    NoOpinion,
}

impl Decision {
    /// True when allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// The group whose members may do anything and bypass escalation checks
/// (upstream's `user.SystemPrivilegedGroup`).
pub const SYSTEM_MASTERS: &str = "system:masters";

/// The API group of the RBAC resources.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
