//! The description of one served resource, shared by everything derived from the registry
//! (discovery, OpenAPI, tables, routes).

/// The verbs a resource serves, in upstream's discovery order.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One resource at one group/version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The plural resource name used in URLs, e.g. `deployments`.
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    /// Subresources this resource serves (`status`, `scale`, `binding`, ...).
    pub subresources: Vec<String>,
    /// The storage key segment, as upstream lays out etcd (`/registry/<this>/<ns>/<name>`).
    /// Resources served at several versions share one.
    pub storage_resource: String,
    /// The version objects are stored at; other versions are converted on the way in/out.
    pub storage_version: String,
    /// The OpenAPI definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub definition: String,
    /// Field selectors beyond `metadata.name`/`metadata.namespace`, e.g. `spec.nodeName`.
    pub selectable_fields: Vec<String>,
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Whether `status` is split from the main resource: writes to the main resource keep
    /// the stored status, writes to `/status` keep the stored spec.
    pub fn has_status(&self) -> bool {
        self.has_subresource("status")
    }
}
