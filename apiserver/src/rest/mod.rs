//! The generic REST store: create, get, list, update, patch, delete and watch for any
//! resource in the registry, as upstream's `genericregistry.Store`. It never special-cases
//! a resource; per-resource rules come from [`crate::strategy`]. HTTP lives elsewhere.

mod claims;
mod delete;
mod list;
mod write;

use std::sync::Arc;

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;

use crate::registry::Registry;
use crate::storage::{StorageError, Store};
use crate::strategy::Allocators;

pub use claims::follow_claims;
pub use delete::{DeleteOptions, DeleteOutcome};
pub use list::{ListOptions, ResourceVersionMatch, matches as matches_list, selectable};
pub(crate) use write::rv_of;
pub use write::{FieldValidation, WriteOptions, Written, generate_name, now_rfc3339 as now};

/// The REST layer over one store and registry.
#[derive(Clone)]
pub struct Rest {
    pub store: Store,
    pub registry: Registry,
    pub allocators: Arc<Allocators>,
    /// For admission checks that depend on authorization (RBAC escalation).
    pub authorizer: Arc<crate::authz::Authorizer>,
    /// ResourceQuota admission (serializes quota-checked creates per namespace).
    pub quotas: Arc<crate::quota::Quotas>,
    /// The served custom resources (kept by [`crate::crd::controller`]).
    pub crds: Arc<crate::crd::CustomResources>,
    /// Calls admission (and conversion) webhooks.
    pub webhooks: Arc<webhook::Dispatcher>,
    /// The aggregation layer: Service-backed APIServices.
    pub aggregator: Arc<crate::aggregator::Aggregator>,
    /// The enabled built-in admission plugins.
    pub plugins: Arc<crate::admission::plugins::Plugins>,
}

/// The storage key of one object, in upstream's etcd layout.
pub fn key(res: &ResourceInfo, ns: &str, name: &str) -> String {
    if res.namespaced {
        format!("/registry/{}/{}/{}", res.storage_resource, ns, name)
    } else {
        format!("/registry/{}/{}", res.storage_resource, name)
    }
}

/// The key prefix of a list: one namespace, or all of them when `ns` is empty.
pub fn prefix(res: &ResourceInfo, ns: &str) -> String {
    if res.namespaced && !ns.is_empty() {
        format!("/registry/{}/{}/", res.storage_resource, ns)
    } else {
        format!("/registry/{}/", res.storage_resource)
    }
}

/// Maps a storage failure to the client-facing status.
pub fn storage_error(res: &ResourceInfo, name: &str, e: StorageError) -> ApiError {
    match e {
        StorageError::AlreadyExists(_) => ApiError::already_exists(&res.group, &res.plural, name),
        StorageError::NotFound(_) => ApiError::not_found(&res.group, &res.plural, name),
        StorageError::Conflict { .. } => ApiError::stale_update(&res.group, &res.plural, name),
        StorageError::Compacted { requested, .. } => ApiError::gone(format!(
            "too old resource version: {requested} ({})",
            requested + 1
        )),
        StorageError::TooLarge { requested, current } => {
            let mut e = ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            ));
            e.reason = "Timeout".into();
            e
        }
        StorageError::Backend(b) => {
            tracing::error!(error = %b, "storage backend failed");
            ApiError::internal(format!("storage is unavailable: {b}"))
        }
    }
}

/// Strips what a list item does not carry on the wire (built-in list items have no
/// apiVersion/kind) — and what it does for custom resources.
pub fn as_list_item(res: &ResourceInfo, obj: &Value, builtin: bool) -> Value {
    let mut o = crate::conversion::to_version(obj, res);
    if builtin && let Some(m) = o.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

impl Rest {
    /// Reads one object, converted to the version the client asked for.
    pub fn get(&self, res: &ResourceInfo, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.store
            .get(&key(res, ns, name))
            .map(|o| crate::conversion::to_version(&o, res))
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))
    }

    /// Reads one object at the version the client asked for, through the CRD's
    /// conversion webhook where it has one.
    pub async fn get_converted(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let stored = self
            .get_stored(res, ns, name)
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        self.shown_stored(res, &stored).await
    }

    /// The stored object, unconverted.
    pub fn get_stored(&self, res: &ResourceInfo, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.store.get(&key(res, ns, name))
    }

    /// Whether the namespace exists (for NamespaceLifecycle).
    pub fn namespace(&self, name: &str) -> Option<Arc<Value>> {
        self.store.get(&format!("/registry/namespaces/{name}"))
    }
}
