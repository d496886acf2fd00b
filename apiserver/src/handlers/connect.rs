//! Subresources served by the node a pod runs on (`log`, `exec`, `attach`, `portforward`,
//! `proxy`). The API server checks the request as upstream does (a container to address, a
//! node assigned) and then needs the kubelet, which comes with the kubelet issue; until a
//! node serves them, an assigned pod's request answers 503 with what is missing.

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;

use super::Query;
use crate::request_info::RequestInfo;
use crate::server::AppState;

/// Whether `sub` is a subresource the node serves.
pub fn is_connect(sub: &str) -> bool {
    matches!(sub, "log" | "exec" | "attach" | "portforward" | "proxy")
}

fn container_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a connect request and reports why it cannot be served here.
pub fn handle(state: &AppState, res: &ResourceInfo, info: &RequestInfo, query: &Query) -> ApiError {
    let obj = match state.rest.get(res, &info.namespace, &info.name) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if res.plural == "pods" {
        let name = &info.name;
        let containers = container_names(&obj);
        if matches!(info.subresource.as_str(), "log" | "exec" | "attach") {
            match query.get("container").filter(|c| !c.is_empty()) {
                Some(c) if !containers.iter().any(|n| n == c) => {
                    return ApiError::bad_request(format!(
                        "container {c} is not valid for pod {name}"
                    ));
                }
                Some(_) => {}
                None if containers.len() > 1 => {
                    return ApiError::bad_request(format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        containers.join(" ")
                    ));
                }
                None => {}
            }
        }
        let node = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if node.is_empty() {
            return ApiError::bad_request(format!("pod {name} does not have a host assigned"));
        }
        return ApiError::service_unavailable(format!(
            "the kubelet of node {node:?} cannot be reached: this API server does not connect to kubelets yet"
        ));
    }
    ApiError::service_unavailable(format!(
        "{}/{} is not served yet: this API server does not proxy to {} yet",
        res.plural, info.subresource, res.plural
    ))
}
