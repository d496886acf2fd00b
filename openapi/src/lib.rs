//! OpenAPI v2 and v3 documents derived from the resource registry and k8s-openapi's schemas.
//!
//! What this crate owns:
//! - the schema *definitions* of every kind k8s-openapi knows, generated through schemars and
//!   fixed up to upstream's shapes ([`definitions`]);
//! - the *paths* (operations) of every served resource, verb and subresource, derived from
//!   [`ResourceInfo`] entries — never from a second list of resources;
//! - rendering both into Swagger 2.0 ([`v2`], and its protobuf form [`v2_protobuf`], the only
//!   one client-go's `OpenAPISchema()` parses) and OpenAPI 3.0 ([`v3_index`],
//!   [`v3_group_version`]) in the dialects kubectl's parsers accept.
//!
//! It does no I/O and keeps no per-registry cache: the server computes documents once per
//! registry change and caches them. Only the registry-independent [`definitions`] are cached
//! here.
//!
//! Extension points:
//! - patch metadata (`x-kubernetes-patch-strategy`, `list-type`, ...) comes from an
//!   [`ExtensionSource`] installed with [`set_extension_source`];
//! - custom resources pass their schemas through the `*_with` variants
//!   ([`v2_with`], [`v3_index_with`], [`v3_group_version_with`]); served resources whose
//!   definition is known nowhere get a permissive object schema.

#![warn(missing_docs)]

mod catalog;
mod definitions;
mod dialect;
mod document;
mod routes;
mod v2;
mod v2proto;
mod v3;

use std::collections::BTreeMap;

use machinery::resource::ResourceInfo;
use serde_json::{Map, Value};

pub use v2proto::{V2_PROTOBUF_MEDIA_TYPE, v2_protobuf};

pub use definitions::{
    ExtensionSource, ExtensionSourceAlreadySet, INT_OR_STRING, QUANTITY, definitions,
    set_extension_source,
};

/// The Kubernetes version the documents announce in `info.version`.
pub const KUBERNETES_VERSION: &str = "v1.35.0";

/// The Swagger 2.0 document served at `/openapi/v2`.
pub fn v2(resources: &[ResourceInfo]) -> Value {
    v2::document(resources, &Map::new())
}

/// [`v2`] with extra definitions (e.g. from CustomResourceDefinitions), keyed by definition
/// name, in the canonical form described at [`definitions`]. They take precedence over
/// built-in definitions of the same name.
pub fn v2_with(resources: &[ResourceInfo], extra_definitions: &Map<String, Value>) -> Value {
    v2::document(resources, extra_definitions)
}

/// The `/openapi/v3` index: every document path (`api`, `api/v1`, `apis`, `apis/apps`,
/// `apis/apps/v1`, `version`) with its `serverRelativeURL`, whose `hash` changes whenever
/// the document does.
pub fn v3_index(resources: &[ResourceInfo]) -> Value {
    v3::all(resources, &Map::new()).0
}

/// [`v3_index`] with extra definitions, as for [`v2_with`].
pub fn v3_index_with(resources: &[ResourceInfo], extra_definitions: &Map<String, Value>) -> Value {
    v3::all(resources, extra_definitions).0
}

/// Every OpenAPI v3 document at once, for a server that caches them all per registry
/// change: generating the index renders each document anyway (to hash it).
#[derive(Debug, Clone, PartialEq)]
pub struct V3Documents {
    /// The `/openapi/v3` index, as [`v3_index`] returns it.
    pub index: Value,
    /// Each document by index path (`api/v1`, `apis/apps/v1`, ...), as
    /// [`v3_group_version`] returns it.
    pub documents: BTreeMap<String, Value>,
}

impl V3Documents {
    /// Serves `doc` at `path` (an aggregated API server's own document for its
    /// group/version), keeping the index hash in step.
    pub fn replace(&mut self, path: &str, doc: Value) {
        if let Some(paths) = self.index.get_mut("paths").and_then(Value::as_object_mut) {
            paths.insert(path.to_string(), v3::index_entry(path, &doc));
        }
        self.documents.insert(path.to_string(), doc);
    }
}

/// Merges an aggregated API server's Swagger 2.0 document into ours, as upstream's
/// aggregator does: its paths under `prefix` (`/apis/<group>/<version>`) replace what we
/// generated there, its definitions are added where we have none of that name.
pub fn v2_merge(spec: &mut Value, other: &Value, prefix: &str) {
    if let (Some(paths), Some(theirs)) = (
        spec.get_mut("paths").and_then(Value::as_object_mut),
        other.get("paths").and_then(Value::as_object),
    ) {
        paths.retain(|p, _| !p.starts_with(prefix));
        for (p, v) in theirs.iter().filter(|(p, _)| p.starts_with(prefix)) {
            paths.insert(p.clone(), v.clone());
        }
    }
    if let Some(theirs) = other.get("definitions").and_then(Value::as_object) {
        let defs = spec.as_object_mut().map(|s| {
            s.entry("definitions")
                .or_insert_with(|| Value::Object(Map::new()))
        });
        if let Some(defs) = defs.and_then(Value::as_object_mut) {
            for (name, def) in theirs {
                defs.entry(name.clone()).or_insert_with(|| def.clone());
            }
        }
    }
}

/// [`v3_index`] and every document it lists, computed together; `extra_definitions` as for
/// [`v2_with`].
pub fn v3_documents(
    resources: &[ResourceInfo],
    extra_definitions: &Map<String, Value>,
) -> V3Documents {
    let (index, documents) = v3::all(resources, extra_definitions);
    V3Documents { index, documents }
}

/// The OpenAPI 3.0 document for one index path (`api/v1`, `apis/apps/v1`, `apis/apps`,
/// `api`, `apis`, `version`; a leading `/` is ignored), or `None` when nothing is served
/// there.
pub fn v3_group_version(resources: &[ResourceInfo], path: &str) -> Option<Value> {
    v3::document(resources, &Map::new(), path)
}

/// [`v3_group_version`] with extra definitions, as for [`v2_with`].
pub fn v3_group_version_with(
    resources: &[ResourceInfo],
    extra_definitions: &Map<String, Value>,
    path: &str,
) -> Option<Value> {
    v3::document(resources, extra_definitions, path)
}

#[cfg(test)]
mod tests;
