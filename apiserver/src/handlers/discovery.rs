//! Discovery (`/api`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`, aggregated discovery v2) and
//! OpenAPI documents, all derived from the registry.

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use super::{raw_response, respond};
use crate::negotiation::Accept;
use crate::registry::GroupInfo;
use crate::request_info::RequestInfo;
use crate::server::AppState;

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// The kind, group/version and verbs a subresource answers with.
fn subresource_meta(
    res: &ResourceInfo,
    sub: &str,
) -> (&'static str, &'static str, String, &'static [&'static str]) {
    const RW: &[&str] = &["get", "patch", "update"];
    const CREATE: &[&str] = &["create"];
    const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];
    const CONNECT: &[&str] = &["create", "get"];
    match sub {
        "status" | "ephemeralcontainers" | "resize" | "approval" => ("", "", res.kind.clone(), RW),
        "scale" => ("autoscaling", "v1", "Scale".into(), RW),
        "binding" => ("", "v1", "Binding".into(), CREATE),
        "eviction" => ("policy", "v1", "Eviction".into(), CREATE),
        "finalize" => ("", "", res.kind.clone(), &["update"]),
        "token" => ("authentication.k8s.io", "v1", "TokenRequest".into(), CREATE),
        "log" => ("", "", "Pod".into(), &["get"]),
        "exec" => ("", "", "PodExecOptions".into(), CONNECT),
        "attach" => ("", "", "PodAttachOptions".into(), CONNECT),
        "portforward" => ("", "", "PodPortForwardOptions".into(), CONNECT),
        "proxy" => ("", "", format!("{}ProxyOptions", res.kind), PROXY),
        _ => ("", "", res.kind.clone(), RW),
    }
}

fn group_version(g: &str, v: &str) -> String {
    if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    }
}

fn api_group(g: &GroupInfo) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(&g.name, v), "version": v}))
        .collect();
    json!({
        "name": g.name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `APIResourceList` for one group/version.
fn resource_list(state: &AppState, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in state.rest.registry.resources_in(group, version) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for sub in &r.subresources {
            let (g, v, kind, verbs) = subresource_meta(&r, sub);
            let mut e = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if !v.is_empty() {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group, version), "resources": resources})
}

/// One group of aggregated discovery (`APIGroupDiscovery`).
fn group_discovery(state: &AppState, g: &GroupInfo) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = state
                .rest
                .registry
                .resources_in(&g.name, v)
                .iter()
                .map(|r| {
                    let subs: Vec<Value> = r
                        .subresources
                        .iter()
                        .map(|s| {
                            let (sg, sv, kind, verbs) = subresource_meta(r, s);
                            json!({"subresource": s, "responseKind": {"group": sg, "version": sv, "kind": kind}, "verbs": verbs})
                        })
                        .collect();
                    let mut e = json!({
                        "resource": r.plural,
                        "responseKind": {"group": "", "version": "", "kind": r.kind},
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular,
                        "verbs": r.verbs,
                    });
                    if !r.short_names.is_empty() {
                        e["shortNames"] = json!(r.short_names);
                    }
                    if !r.categories.is_empty() {
                        e["categories"] = json!(r.categories);
                    }
                    if !subs.is_empty() {
                        e["subresources"] = json!(subs);
                    }
                    e
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": g.name, "creationTimestamp": null}, "versions": versions})
}

/// Which aggregated form the client asked for, if any.
fn wants_aggregated(accept: Option<&str>) -> Option<&'static str> {
    let a = accept?;
    for part in a.split(',') {
        let p: String = part.chars().filter(|c| !c.is_whitespace()).collect();
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some(AGGREGATED_V2BETA1);
            }
            if p.contains("v=v2") {
                return Some(AGGREGATED_V2);
            }
        }
    }
    None
}

fn aggregated(state: &AppState, core: bool, content_type: &'static str) -> Response {
    let items: Vec<Value> = state
        .rest
        .registry
        .groups()
        .iter()
        .filter(|g| g.name.is_empty() == core)
        .map(|g| group_discovery(state, g))
        .collect();
    let av = if content_type == AGGREGATED_V2 {
        "apidiscovery.k8s.io/v2"
    } else {
        "apidiscovery.k8s.io/v2beta1"
    };
    let body =
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": av, "metadata": {}, "items": items});
    let mut resp = raw_response(
        StatusCode::OK,
        content_type,
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    resp.headers_mut()
        .insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
    resp
}

pub fn handle(state: &Arc<AppState>, info: &RequestInfo, accept: Option<&str>) -> Response {
    let not_found = || {
        raw_response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"404 page not found\n".to_vec(),
        )
    };
    let path = info.path.trim_end_matches('/');
    if path == "/api" {
        if let Some(ct) = wants_aggregated(accept) {
            return aggregated(state, true, ct);
        }
        let addr = format!(
            "{}:{}",
            state.config.advertise_address, state.config.secure_port
        );
        return respond(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]}),
            Accept::JSON,
        );
    }
    if path == "/apis" {
        if let Some(ct) = wants_aggregated(accept) {
            return aggregated(state, false, ct);
        }
        let groups: Vec<Value> = state
            .rest
            .registry
            .groups()
            .iter()
            .filter(|g| !g.name.is_empty())
            .map(api_group)
            .collect();
        return respond(
            StatusCode::OK,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            Accept::JSON,
        );
    }
    if info.api_prefix == "api" && info.version == "v1" && path == "/api/v1" {
        return respond(
            StatusCode::OK,
            &resource_list(state, "", "v1"),
            Accept::JSON,
        );
    }
    if info.api_prefix == "apis" && !info.group.is_empty() {
        let Some(g) = state.rest.registry.group(&info.group) else {
            return not_found();
        };
        if info.version.is_empty() {
            let mut body = api_group(&g);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            return respond(StatusCode::OK, &body, Accept::JSON);
        }
        if g.versions.contains(&info.version) {
            return respond(
                StatusCode::OK,
                &resource_list(state, &info.group, &info.version),
                Accept::JSON,
            );
        }
    }
    not_found()
}

pub fn openapi_v2(state: &Arc<AppState>, accept: Option<&str>) -> Response {
    let wants_protobuf = accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.trim().starts_with(openapi::V2_PROTOBUF_MEDIA_TYPE))
    });
    // upstream answers with a dotted media type: Go's mime parser rejects the `@` form
    let ct = if wants_protobuf {
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    } else {
        "application/json"
    };
    raw_response(
        StatusCode::OK,
        ct,
        state.openapi_v2(wants_protobuf).to_vec(),
    )
}

pub fn openapi_v3(state: &Arc<AppState>, path: &str) -> Response {
    let rel = path
        .trim_start_matches("/openapi/v3")
        .trim_start_matches('/');
    let body = if rel.is_empty() {
        Some(state.openapi_v3_index())
    } else {
        state.openapi_v3(rel)
    };
    match body {
        Some(b) => raw_response(StatusCode::OK, "application/json", b.to_vec()),
        None => raw_response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"404 page not found\n".to_vec(),
        ),
    }
}
