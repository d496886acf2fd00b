//! Authorization: may this user do this? `--authorization-mode` chains Node, RBAC,
//! AlwaysAllow and AlwaysDeny; the first to allow wins, and `system:masters` may always do
//! anything (upstream's privileged group). When none allows, the reasons the authorizers
//! gave end the Forbidden message, as upstream's union authorizer joins them. RBAC
//! decisions come from the `rbac` crate over a snapshot of the stored Roles and bindings,
//! rebuilt when one of them changes; Node decisions from [`crate::nodeauthz`].

use std::sync::{Arc, RwLock};

use machinery::ApiError;
use serde_json::Value;

use crate::authn::User;
use crate::request_info::RequestInfo;
use crate::storage::Store;

/// One authorizer of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Node,
    Rbac,
}

/// An authorization decision and upstream's reason for it (for a denial, what follows
/// the Forbidden message's colon; for an allow, the audit annotation's text).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// The RBAC objects' storage segments, whose changes invalidate the snapshot.
const RBAC_RESOURCES: &[&str] = &[
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
];

/// The authorizer chain.
pub struct Authorizer {
    modes: Vec<Mode>,
    store: Store,
    /// The snapshot and the revision of the last RBAC change it reflects.
    rbac: RwLock<Option<(u64, Arc<rbac::Snapshot>)>>,
    /// The Node authorizer, when the chain names it.
    node: Option<crate::nodeauthz::NodeAuthorizer>,
}

/// Parses `--authorization-mode` (comma-separated, upstream names).
pub fn parse_modes(flag: &str) -> Result<Vec<Mode>, String> {
    let mut modes = Vec::new();
    for m in flag.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let mode = match m {
            "AlwaysAllow" => Mode::AlwaysAllow,
            "AlwaysDeny" => Mode::AlwaysDeny,
            "RBAC" => Mode::Rbac,
            "Node" => Mode::Node,
            "Webhook" | "ABAC" => {
                return Err(format!(
                    "authorization mode {m:?} is not supported yet (supported: AlwaysAllow, AlwaysDeny, Node, RBAC)"
                ));
            }
            other => return Err(format!("authorization mode {other:?} is not a valid mode")),
        };
        if modes.contains(&mode) {
            return Err(format!(
                "authorization mode {m:?} has been specified more than once"
            ));
        }
        modes.push(mode);
    }
    if modes.is_empty() {
        return Err("at least one authorization-mode must be passed".into());
    }
    Ok(modes)
}

fn rbac_user(user: &User) -> rbac::UserInfo {
    rbac::UserInfo {
        name: user.name.clone(),
        groups: user.groups.clone(),
    }
}

/// The RBAC attributes of a request.
pub fn attributes(info: &RequestInfo) -> rbac::Attributes {
    rbac::Attributes {
        verb: info.verb.clone(),
        namespace: info.namespace.clone(),
        api_group: info.group.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        name: info.name.clone(),
        is_resource_request: info.is_resource_request,
        path: info.path.clone(),
    }
}

impl Authorizer {
    pub fn new(modes: Vec<Mode>, store: Store) -> Self {
        let node = modes
            .contains(&Mode::Node)
            .then(|| crate::nodeauthz::NodeAuthorizer::new(store.clone()));
        Authorizer {
            modes,
            store,
            rbac: RwLock::new(None),
            node,
        }
    }

    pub fn rbac_enabled(&self) -> bool {
        self.modes.contains(&Mode::Rbac)
    }

    /// The current RBAC snapshot, rebuilt if a Role or binding changed since.
    pub fn snapshot(&self) -> Arc<rbac::Snapshot> {
        let stamp = RBAC_RESOURCES
            .iter()
            .map(|r| self.store.last_change(r))
            .max()
            .unwrap_or(0);
        if let Some((s, snap)) = self.rbac.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *s == stamp
        {
            return snap.clone();
        }
        let load = |r: &str| -> Vec<Value> {
            self.store
                .snapshot(&format!("/registry/{r}/"))
                .0
                .iter()
                .map(|o| (**o).clone())
                .collect()
        };
        let snap = Arc::new(rbac::Snapshot::new(
            load("roles"),
            load("clusterroles"),
            load("rolebindings"),
            load("clusterrolebindings"),
        ));
        *self.rbac.write().unwrap_or_else(|e| e.into_inner()) = Some((stamp, snap.clone()));
        snap
    }

    /// Decides a request; the error is upstream's Forbidden wording.
    pub fn authorize(&self, user: &User, info: &RequestInfo) -> Result<(), ApiError> {
        let d = self.decide(user, info);
        if d.allowed {
            Ok(())
        } else {
            Err(forbidden(user, info, &d.reason))
        }
    }

    /// Runs the chain: the first authorizer that allows decides; otherwise the request
    /// is denied with every authorizer's reason, one per line.
    pub fn decide(&self, user: &User, info: &RequestInfo) -> Decision {
        let allow = |reason: String| Decision {
            allowed: true,
            reason,
        };
        if user.in_group("system:masters") {
            return allow(String::new());
        }
        let mut reasons = Vec::new();
        for mode in &self.modes {
            match mode {
                Mode::AlwaysAllow => return allow(String::new()),
                Mode::AlwaysDeny => reasons.push("Everything is forbidden.".to_string()),
                Mode::Node => match self.node.as_ref().and_then(|n| n.authorize(user, info)) {
                    Some(crate::nodeauthz::Decision::Allow) => return allow(String::new()),
                    Some(crate::nodeauthz::Decision::NoOpinion(r)) if !r.is_empty() => {
                        reasons.push(r)
                    }
                    _ => {}
                },
                Mode::Rbac => {
                    if let rbac::Decision::Allow(reason) =
                        rbac::authorize(&self.snapshot(), &rbac_user(user), &attributes(info))
                    {
                        return allow(reason);
                    }
                }
            }
        }
        Decision {
            allowed: false,
            reason: reasons.join("\n"),
        }
    }

    /// The rules that apply to `user` in `namespace` (SelfSubjectRulesReview).
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<Value>, Vec<Value>, bool) {
        let all = || {
            (
                vec![serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
                vec![serde_json::json!({"verbs": ["*"], "nonResourceURLs": ["*"]})],
                false,
            )
        };
        if user.in_group("system:masters") || self.modes.first() == Some(&Mode::AlwaysAllow) {
            return all();
        }
        // the Node authorizer cannot enumerate a node's permissions
        let incomplete = self.node.is_some() && crate::nodeauthz::node_identity(user).is_some();
        if self.rbac_enabled() {
            let (r, n) = rbac::rules_for(&self.snapshot(), &rbac_user(user), namespace);
            return (r, n, incomplete);
        }
        (Vec::new(), Vec::new(), true)
    }

    /// RBAC's escalation check on a write of a Role, ClusterRole or binding (`old` is the
    /// stored object on update). Writes made by the server itself carry no user.
    pub fn check_rbac_write(
        &self,
        user: Option<&User>,
        resource: &str,
        namespace: &str,
        new: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let Some(user) = user else { return Ok(()) };
        if !self.rbac_enabled() {
            return Ok(());
        }
        let snap = self.snapshot();
        let u = rbac_user(user);
        match resource {
            "roles" | "clusterroles" => {
                rbac::check_role_write(&snap, &u, resource, namespace, new, old)
            }
            "rolebindings" | "clusterrolebindings" => {
                rbac::check_binding_write(&snap, &u, resource, namespace, new, old)
            }
            _ => Ok(()),
        }
    }
}

/// `User "x" cannot list resource "pods" in API group "" in the namespace "y"`, then
/// `: <reason>` when the authorizers gave one.
pub fn forbidden(user: &User, info: &RequestInfo, reason: &str) -> ApiError {
    let mut e = forbidden_message(user, info);
    if !reason.is_empty() {
        e.message = format!("{}: {reason}", e.message);
    }
    e
}

fn forbidden_message(user: &User, info: &RequestInfo) -> ApiError {
    if !info.is_resource_request {
        return ApiError::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{}\" cannot {} path \"{}\"",
                user.name, info.verb, info.path
            ),
        );
    }
    let resource = if info.subresource.is_empty() {
        info.resource.clone()
    } else {
        format!("{}/{}", info.resource, info.subresource)
    };
    let scope = if info.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", info.namespace)
    };
    let gr = if info.group.is_empty() {
        info.resource.clone()
    } else {
        format!("{}.{}", info.resource, info.group)
    };
    let what = if info.name.is_empty() {
        gr
    } else {
        format!("{gr} \"{}\"", info.name)
    };
    let mut e = ApiError::new(
        403,
        "Forbidden",
        format!(
            "{what} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            user.name, info.verb, info.group
        ),
    );
    e.details = Some(Box::new(machinery::status::Details {
        name: info.name.clone(),
        group: info.group.clone(),
        kind: info.resource.clone(),
        ..Default::default()
    }));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_upstream() {
        assert_eq!(parse_modes("RBAC"), Ok(vec![Mode::Rbac]));
        assert_eq!(
            parse_modes("AlwaysAllow,RBAC"),
            Ok(vec![Mode::AlwaysAllow, Mode::Rbac])
        );
        assert!(parse_modes("RBAC,RBAC").is_err());
        assert_eq!(parse_modes("Node,RBAC"), Ok(vec![Mode::Node, Mode::Rbac]));
        assert!(parse_modes("Bogus").is_err());
        assert!(parse_modes("").is_err());
    }
}
