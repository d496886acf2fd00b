//! Request info: turns a method and path into what is being asked (verb, group, version,
//! namespace, resource, subresource, name), as upstream's RequestInfoFactory does. Every
//! later stage (authorization, admission, handlers) reads this, never the raw path.

use http::Method;
use machinery::fields::FieldSelector;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestInfo {
    /// True for `/api/...` and `/apis/...` paths naming a resource.
    pub is_resource_request: bool,
    pub path: String,
    /// get, list, watch, create, update, patch, delete, deletecollection; for non-resource
    /// requests the lowercased HTTP method.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path segments after the subresource (e.g. proxy paths).
    pub rest: Vec<String>,
    /// The request's `fieldSelector` (empty when absent or unparseable), which the Node
    /// authorizer reads: a kubelet may list only the pods with `spec.nodeName=<itself>`.
    pub field_selector: FieldSelector,
}

/// Parses a request. `watch` is the `watch` query parameter (`?watch=true`),
/// `field_selector` the `fieldSelector` one.
pub fn parse(
    method: &Method,
    path: &str,
    watch_param: bool,
    field_selector: Option<&str>,
) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.as_str().to_lowercase(),
        field_selector: field_selector
            .and_then(|s| FieldSelector::parse(s).ok())
            .unwrap_or_default(),
        ..Default::default()
    };
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut parts: &[&str] = &parts;
    let Some((&prefix, rest)) = parts.split_first() else {
        return info;
    };
    if prefix != "api" && prefix != "apis" {
        return info;
    }
    info.api_prefix = prefix.to_string();
    parts = rest;
    if prefix == "apis" {
        let Some((&g, rest)) = parts.split_first() else {
            return info;
        };
        info.group = g.to_string();
        parts = rest;
    }
    let Some((&v, rest)) = parts.split_first() else {
        return info;
    };
    info.version = v.to_string();
    parts = rest;
    if parts.is_empty() {
        return info;
    }
    info.is_resource_request = true;
    let mut verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .to_string();
    // legacy watch paths: /api/v1/watch/namespaces/ns/pods
    if parts.first() == Some(&"watch") {
        verb = "watch".into();
        parts = &parts[1..];
    }
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        info.namespace = parts[1].to_string();
        // /namespaces/{name} and /namespaces/{name}/status address the namespace itself
        if parts.len() > 2 && !matches!(parts[2], "finalize" | "status") {
            parts = &parts[2..];
        }
    }
    info.resource = parts.first().map(|s| s.to_string()).unwrap_or_default();
    if let Some(name) = parts.get(1) {
        info.name = name.to_string();
    }
    if let Some(sub) = parts.get(2) {
        info.subresource = sub.to_string();
    }
    info.rest = parts.iter().skip(3).map(|s| s.to_string()).collect();
    if info.resource == "namespaces" {
        // the namespace object itself is cluster-scoped
        info.namespace.clear();
    }
    if info.name.is_empty() && verb == "get" {
        verb = if watch_param {
            "watch".into()
        } else {
            "list".into()
        };
        // a list or watch pinned to one name (`fieldSelector=metadata.name=x`) names it,
        // so RBAC's resourceNames and the Node authorizer see it, as upstream
        if let Some(name) = info.field_selector.required_value("metadata.name")
            && machinery::names::is_path_segment_name(name).is_empty()
        {
            info.name = name.to_string();
        }
    } else if watch_param && verb == "get" {
        verb = "watch".into();
    }
    if info.name.is_empty() && verb == "delete" {
        verb = "deletecollection".into();
    }
    info.verb = verb;
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_path(method: &Method, path: &str, watch: bool) -> RequestInfo {
        parse(method, path, watch, None)
    }

    #[test]
    fn list_pinned_to_one_name_names_it() {
        let i = parse(
            &Method::GET,
            "/api/v1/namespaces/ns1/secrets",
            true,
            Some("metadata.name=s1"),
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "s1"));
        let i = parse(
            &Method::GET,
            "/api/v1/pods",
            false,
            Some("spec.nodeName=n1"),
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("list", ""));
        assert_eq!(i.field_selector.required_value("spec.nodeName"), Some("n1"));
        let i = parse(
            &Method::GET,
            "/api/v1/secrets",
            false,
            Some("metadata.name=a/b"),
        );
        assert_eq!(i.name, "");
    }

    #[test]
    fn namespaced_resources() {
        let i = parse_path(&Method::GET, "/api/v1/namespaces/ns1/pods/p1/status", false);
        assert_eq!(
            (i.verb.as_str(), i.namespace.as_str(), i.resource.as_str()),
            ("get", "ns1", "pods")
        );
        assert_eq!((i.name.as_str(), i.subresource.as_str()), ("p1", "status"));
        let i = parse_path(
            &Method::GET,
            "/apis/apps/v1/namespaces/ns1/deployments",
            true,
        );
        assert_eq!((i.verb.as_str(), i.group.as_str()), ("watch", "apps"));
        let i = parse_path(&Method::DELETE, "/api/v1/namespaces/ns1/configmaps", false);
        assert_eq!(i.verb, "deletecollection");
        let i = parse_path(&Method::GET, "/api/v1/watch/namespaces/ns1/pods/p1", false);
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "p1"));
    }

    #[test]
    fn namespaces_themselves() {
        let i = parse_path(&Method::GET, "/api/v1/namespaces/ns1", false);
        assert_eq!(
            (
                i.verb.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.namespace.as_str()
            ),
            ("get", "namespaces", "ns1", "")
        );
        let i = parse_path(&Method::PUT, "/api/v1/namespaces/ns1/finalize", false);
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.subresource.as_str()),
            ("namespaces", "ns1", "finalize")
        );
        let i = parse_path(&Method::GET, "/api/v1/namespaces", false);
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str()),
            ("list", "namespaces")
        );
        let i = parse_path(&Method::GET, "/api/v1/nodes", false);
        assert_eq!(i.verb, "list");
    }

    #[test]
    fn non_resource() {
        assert!(!parse_path(&Method::GET, "/healthz", false).is_resource_request);
        assert!(!parse_path(&Method::GET, "/apis/apps/v1", false).is_resource_request);
        assert!(!parse_path(&Method::GET, "/api", false).is_resource_request);
    }
}
