//! Authorization: may this user do this? Until RBAC lands, `system:masters` may do
//! anything, other authenticated users may read discovery and health, and anonymous users
//! only the public health and version endpoints (upstream's system:public-info-viewer).

use machinery::ApiError;

use crate::authn::User;
use crate::request_info::RequestInfo;

const PUBLIC: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];
const DISCOVERY: &[&str] = &["/api", "/apis", "/openapi"];

fn is_public(path: &str) -> bool {
    PUBLIC
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

fn is_discovery(info: &RequestInfo) -> bool {
    !info.is_resource_request
        && DISCOVERY
            .iter()
            .any(|p| info.path == *p || info.path.starts_with(&format!("{p}/")))
}

/// Every authenticated user may ask who they are and what they may do (upstream's
/// system:basic-user role).
fn is_self_review(info: &RequestInfo) -> bool {
    info.is_resource_request
        && info.verb == "create"
        && matches!(
            (info.group.as_str(), info.resource.as_str()),
            ("authentication.k8s.io", "selfsubjectreviews")
                | (
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
                )
        )
}

/// Decides a request; the error is upstream's Forbidden wording.
pub fn authorize(user: &User, info: &RequestInfo) -> Result<(), ApiError> {
    if user.in_group("system:masters") || is_public(&info.path) {
        return Ok(());
    }
    if !user.is_anonymous() && (is_discovery(info) || is_self_review(info)) {
        return Ok(());
    }
    Err(forbidden(user, info))
}

/// `User "x" cannot list resource "pods" in API group "" in the namespace "y"`.
pub fn forbidden(user: &User, info: &RequestInfo) -> ApiError {
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
