//! The operations the server serves, derived from registry entries: a dialect-neutral model
//! ([`Route`], [`Operation`]) that the v2 and v3 renderers turn into `paths`.
//!
//! Naming follows upstream's installer: operation ids are `<verb><Group><Version><Scope>
//! <Kind><Subresource>` (`listAppsV1NamespacedDeployment`), tags `<group>_<version>`.

pub(crate) mod params;
mod resource;
mod subresource;

use machinery::resource::ResourceInfo;

use crate::definitions::{
    API_GROUP, API_GROUP_LIST, API_RESOURCE_LIST, API_VERSIONS, VERSION_INFO,
};
pub(crate) use params::Param;

/// A path and the operations served on it.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub path: String,
    /// Parameters shared by every operation of the path.
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

/// One HTTP method on a path.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// Lower-case HTTP method, as OpenAPI keys operations.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    /// `x-kubernetes-action`: get, list, watch, watchlist, put, patch, post, delete,
    /// deletecollection or connect; `None` for discovery operations.
    pub action: Option<&'static str>,
    /// `x-kubernetes-group-version-kind` of the operation.
    pub gvk: Option<Gvk>,
    pub tag: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    pub consumes: Vec<&'static str>,
    pub produces: Vec<&'static str>,
}

/// A group/version/kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// What a request or response body carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    /// An object described by a definition.
    Definition(String),
    /// Plain text (logs, streams).
    Text,
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub payload: Payload,
    pub required: bool,
}

/// One response of an operation.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub code: u16,
    pub description: &'static str,
    pub payload: Option<Payload>,
}

impl Response {
    pub(crate) fn new(code: u16, payload: Option<Payload>) -> Self {
        let description = match code {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            401 => "Unauthorized",
            _ => "",
        };
        Response {
            code,
            description,
            payload,
        }
    }
}

/// The group/version all routes of one document share.
#[derive(Debug, Clone)]
pub(crate) struct GroupVersion {
    /// `/api/v1` or `/apis/<group>/<version>`.
    pub prefix: String,
    /// Operation id infix: `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
    pub id: String,
    /// Tag: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
    pub tag: String,
}

impl GroupVersion {
    pub(crate) fn new(group: &str, version: &str) -> Self {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        GroupVersion {
            prefix,
            id: format!("{}{}", group_id(group), operation_id_part(version, true)),
            tag: format!("{}_{version}", group_tag(group)),
        }
    }
}

/// Upstream's `ToValidOperationID`: drops characters that cannot appear in an identifier,
/// capitalizing the letter after each dropped one (and the first, if asked).
pub(crate) fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

fn trimmed_group(group: &str) -> &str {
    group.strip_suffix(".k8s.io").unwrap_or(group)
}

/// `Core`, `Apps`, `RbacAuthorization`, `FlowcontrolApiserver`.
pub(crate) fn group_id(group: &str) -> String {
    if group.is_empty() {
        "Core".into()
    } else {
        operation_id_part(trimmed_group(group), true)
    }
}

/// `core`, `apps`, `rbacAuthorization`.
pub(crate) fn group_tag(group: &str) -> String {
    if group.is_empty() {
        "core".into()
    } else {
        operation_id_part(trimmed_group(group), false)
    }
}

/// Every route of one group/version: its discovery route and each resource's routes.
/// `builtin` tells whether a resource is a built-in kind (served as protobuf and with
/// strategic merge patch) rather than a custom resource.
pub(crate) fn group_version_routes(
    gv: &GroupVersion,
    resources: &[&ResourceInfo],
    builtin: &dyn Fn(&ResourceInfo) -> bool,
) -> Vec<Route> {
    let mut routes = vec![discovery(
        format!("{}/", gv.prefix),
        format!("get{}APIResources", gv.id),
        "get available resources",
        &gv.tag,
        API_RESOURCE_LIST,
    )];
    for info in resources {
        routes.extend(resource::routes(gv, info, builtin(info)));
    }
    routes
}

/// `/api/`: the core group's versions.
pub(crate) fn core_root_route() -> Route {
    discovery(
        "/api/".into(),
        "getCoreAPIVersions".into(),
        "get available API versions",
        "core",
        API_VERSIONS,
    )
}

/// `/apis/`: every group.
pub(crate) fn groups_root_route() -> Route {
    discovery(
        "/apis/".into(),
        "getAPIVersions".into(),
        "get available API versions",
        "apis",
        API_GROUP_LIST,
    )
}

/// `/apis/<group>/`: one group.
pub(crate) fn group_route(group: &str) -> Route {
    discovery(
        format!("/apis/{group}/"),
        format!("get{}APIGroup", group_id(group)),
        "get information of a group",
        &group_tag(group),
        API_GROUP,
    )
}

/// `/version/`: the server's version.
pub(crate) fn version_route() -> Route {
    discovery(
        "/version/".into(),
        "getCodeVersion".into(),
        "get the version information for this server",
        "version",
        VERSION_INFO,
    )
}

fn discovery(path: String, id: String, description: &str, tag: &str, definition: &str) -> Route {
    Route {
        path,
        params: Vec::new(),
        operations: vec![Operation {
            method: "get",
            id,
            description: description.to_string(),
            action: None,
            gvk: None,
            tag: tag.to_string(),
            params: Vec::new(),
            body: None,
            responses: vec![
                Response::new(200, Some(Payload::Definition(definition.into()))),
                Response::new(401, None),
            ],
            consumes: vec![
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
            ],
            produces: vec![
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
            ],
        }],
    }
}
