//! The Swagger 2.0 document (`/openapi/v2`): every route of every group/version, and the
//! definitions they reach.

use machinery::resource::ResourceInfo;
use serde_json::{Map, Value, json};

use crate::KUBERNETES_VERSION;
use crate::dialect::Dialect;
use crate::document::{Schemas, group_versions, groups};
use crate::routes::{self, GroupVersion, Operation, Param, Payload, Route};

/// Builds the whole v2 document.
pub(crate) fn document(resources: &[ResourceInfo], extra: &Map<String, Value>) -> Value {
    let schemas = Schemas::new(resources, extra);
    let builtin = |info: &ResourceInfo| schemas.is_builtin(info);
    let mut all = vec![
        routes::core_root_route(),
        routes::groups_root_route(),
        routes::version_route(),
    ];
    all.extend(groups(resources).into_iter().map(routes::group_route));
    for gv in group_versions(resources) {
        all.extend(routes::group_version_routes(
            &GroupVersion::new(gv.group, gv.version),
            &gv.resources,
            &builtin,
        ));
    }
    let mut sorted: Vec<&Route> = all.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Map<String, Value> = sorted
        .into_iter()
        .map(|route| (route.path.clone(), path_item(route)))
        .collect();
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "definitions": schemas.reachable(&all, Dialect::V2),
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            },
        },
        "security": [{ "BearerToken": [] }],
    })
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

fn operation(op: &Operation) -> Value {
    let mut params: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        params.push(json!({ "name": "body", "in": "body", "required": body.required, "schema": schema(&body.payload) }));
    }
    params.extend(op.params.iter().map(parameter));
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|response| {
            let mut value = json!({ "description": response.description });
            if let Some(payload) = &response.payload {
                value["schema"] = schema(payload);
            }
            (response.code.to_string(), value)
        })
        .collect();
    let mut out = json!({
        "description": op.description,
        "consumes": op.consumes,
        "produces": op.produces,
        "schemes": ["https"],
        "tags": [op.tag],
        "operationId": op.id,
        "responses": responses,
    });
    if !params.is_empty() {
        out["parameters"] = Value::Array(params);
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
        "uniqueItems": true,
        "type": param.ty,
        "description": param.description,
        "name": param.name,
        "in": param.location.as_str(),
    });
    if param.required {
        out["required"] = true.into();
    }
    out
}

fn schema(payload: &Payload) -> Value {
    match payload {
        Payload::Definition(name) => Dialect::V2.reference(name),
        Payload::Text => json!({ "type": "string" }),
    }
}
