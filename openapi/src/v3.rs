//! The OpenAPI 3.0 documents (`/openapi/v3/<path>`), one per discovery path, and their
//! index (`/openapi/v3`), whose hashes let clients cache documents until they change.

use std::collections::BTreeMap;

use machinery::resource::ResourceInfo;
use serde_json::{Map, Value, json};

use crate::KUBERNETES_VERSION;
use crate::dialect::Dialect;
use crate::document::{Schemas, group_versions, groups};
use crate::routes::{self, GroupVersion, Operation, Param, Payload, Route};

/// Every document path the registry serves, sorted.
fn document_paths(resources: &[ResourceInfo]) -> Vec<String> {
    let mut out = vec!["apis".to_string(), "version".to_string()];
    if resources.iter().any(|info| info.group.is_empty()) {
        out.push("api".into());
    }
    out.extend(
        groups(resources)
            .into_iter()
            .map(|group| format!("apis/{group}")),
    );
    for gv in group_versions(resources) {
        out.push(match gv.group {
            "" => format!("api/{}", gv.version),
            group => format!("apis/{group}/{}", gv.version),
        });
    }
    out.sort();
    out
}

/// Every document of the registry, by index path, and the index over them.
pub(crate) fn all(
    resources: &[ResourceInfo],
    extra: &Map<String, Value>,
) -> (Value, BTreeMap<String, Value>) {
    let mut paths = Map::new();
    let mut documents = BTreeMap::new();
    for path in document_paths(resources) {
        let Some(doc) = document(resources, extra, &path) else {
            continue;
        };
        paths.insert(path.clone(), index_entry(&path, &doc));
        documents.insert(path, doc);
    }
    (json!({ "paths": paths }), documents)
}

/// The index entry of one document: its URL with the hash of its content.
pub(crate) fn index_entry(path: &str, doc: &Value) -> Value {
    let hash = fnv1a_128(&serde_json::to_vec(doc).unwrap_or_default());
    json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:032X}") })
}

/// FNV-1a, 128 bits: a stable content hash (not a security boundary; it only keys caches).
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The routes of one document path, or `None` when nothing is served there.
fn routes_for(resources: &[ResourceInfo], schemas: &Schemas, path: &str) -> Option<Vec<Route>> {
    let builtin = |info: &ResourceInfo| schemas.is_builtin(info);
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["api"] => resources
            .iter()
            .any(|info| info.group.is_empty())
            .then(|| vec![routes::core_root_route()]),
        ["apis"] => Some(vec![routes::groups_root_route()]),
        ["version"] => Some(vec![routes::version_route()]),
        ["apis", group] => groups(resources)
            .contains(group)
            .then(|| vec![routes::group_route(group)]),
        ["api", version] => group_version(resources, "", version, &builtin),
        ["apis", group, version] => group_version(resources, group, version, &builtin),
        _ => None,
    }
}

fn group_version(
    resources: &[ResourceInfo],
    group: &str,
    version: &str,
    builtin: &dyn Fn(&ResourceInfo) -> bool,
) -> Option<Vec<Route>> {
    let gv = group_versions(resources)
        .into_iter()
        .find(|gv| gv.group == group && gv.version == version)?;
    Some(routes::group_version_routes(
        &GroupVersion::new(group, version),
        &gv.resources,
        builtin,
    ))
}

/// The document at `path` (`api/v1`, `apis/apps/v1`, `apis/apps`, `api`, `apis`, `version`).
pub(crate) fn document(
    resources: &[ResourceInfo],
    extra: &Map<String, Value>,
    path: &str,
) -> Option<Value> {
    let path = path.trim_matches('/');
    let schemas = Schemas::new(resources, extra);
    let routes = routes_for(resources, &schemas, path)?;
    let mut sorted: Vec<&Route> = routes.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Map<String, Value> = sorted
        .into_iter()
        .map(|route| (route.path.clone(), path_item(route)))
        .collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "components": {
            "schemas": schemas.reachable(&routes, Dialect::V3),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                },
            },
        },
        "security": [{ "BearerToken": [] }],
    }))
}

fn path_item(route: &Route) -> Value {
    let mut item = Map::new();
    for op in &route.operations {
        item.insert(op.method.to_string(), operation(op));
    }
    if !route.params.is_empty() {
        item.insert(
            "parameters".into(),
            route.params.iter().map(parameter).collect(),
        );
    }
    Value::Object(item)
}

fn content(types: &[&str], payload: &Payload) -> Value {
    let schema = match payload {
        Payload::Definition(name) => Dialect::V3.reference(name),
        Payload::Text => json!({ "type": "string" }),
    };
    let content: Map<String, Value> = types
        .iter()
        .map(|ty| ((*ty).to_string(), json!({ "schema": schema.clone() })))
        .collect();
    Value::Object(content)
}

fn operation(op: &Operation) -> Value {
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|response| {
            let mut value = json!({ "description": response.description });
            if let Some(payload) = &response.payload {
                value["content"] = content(&op.produces, payload);
            }
            (response.code.to_string(), value)
        })
        .collect();
    let mut out = json!({
        "tags": [op.tag],
        "description": op.description,
        "operationId": op.id,
        "responses": responses,
    });
    if !op.params.is_empty() {
        out["parameters"] = op.params.iter().map(parameter).collect();
    }
    if let Some(body) = &op.body {
        out["requestBody"] =
            json!({ "content": content(&op.consumes, &body.payload), "required": body.required });
    }
    if let Some(action) = op.action {
        out["x-kubernetes-action"] = action.into();
    }
    if let Some(gvk) = &op.gvk {
        out["x-kubernetes-group-version-kind"] =
            json!({ "group": gvk.group, "kind": gvk.kind, "version": gvk.version });
    }
    out
}

fn parameter(param: &Param) -> Value {
    let mut out = json!({
        "name": param.name,
        "in": param.location.as_str(),
        "description": param.description,
        "schema": { "type": param.ty, "uniqueItems": true },
    });
    if param.required {
        out["required"] = true.into();
    }
    out
}
