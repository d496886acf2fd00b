//! Whether a webhook applies to a request: `rules`, `namespaceSelector` and
//! `objectSelector`, in upstream's order and with upstream's errors. CEL `matchConditions`
//! are evaluated afterwards by `conditions`.

use std::collections::BTreeMap;

use machinery::ApiError;
use machinery::labels::{Labels, Selector};
use serde_json::Value;

use crate::Resolver;
use crate::config::{Hook, Rule};
use crate::request::{Operation, Request};

/// Requests for the admission configuration objects themselves never reach webhooks, so a
/// broken webhook cannot lock administrators out of fixing it.
pub(crate) fn is_exempt(req: &Request) -> bool {
    req.kind.group == "admissionregistration.k8s.io"
        && matches!(
            req.kind.kind.as_str(),
            "ValidatingWebhookConfiguration"
                | "MutatingWebhookConfiguration"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
                | "MutatingAdmissionPolicy"
                | "MutatingAdmissionPolicyBinding"
        )
}

fn exact_or_wildcard(items: &[String], requested: &str) -> bool {
    items.iter().any(|i| i == "*" || i == requested)
}

fn is_namespace_resource(req: &Request) -> bool {
    req.resource.group.is_empty()
        && req.resource.version == "v1"
        && req.resource.resource == "namespaces"
}

fn scope_matches(rule: &Rule, req: &Request) -> bool {
    match rule.scope.as_str() {
        "*" | "" => true,
        "Namespaced" => !is_namespace_resource(req) && !req.namespace.is_empty(),
        "Cluster" => is_namespace_resource(req) || req.namespace.is_empty(),
        _ => false,
    }
}

fn resource_matches(rule: &Rule, req: &Request) -> bool {
    rule.resources.iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        (res == "*" || res == req.resource.resource) && (sub == "*" || sub == req.sub_resource)
    })
}

/// One rule against the request, as upstream's `rules.Matcher`.
pub(crate) fn rule_matches(rule: &Rule, req: &Request) -> bool {
    scope_matches(rule, req)
        && rule
            .operations
            .iter()
            .any(|o| o == "*" || o == req.operation.as_str())
        && exact_or_wildcard(&rule.api_groups, &req.resource.group)
        && exact_or_wildcard(&rule.api_versions, &req.resource.version)
        && resource_matches(rule, req)
}

fn parse_selector(v: &Value) -> Result<Selector, ApiError> {
    Selector::from_label_selector(v).map_err(ApiError::internal)
}

fn object_labels(obj: &Value) -> Labels {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// `namespaceSelector`: cluster-scoped objects other than namespaces always match; a
/// Namespace being created or updated is judged by its own new labels. `labels_of` looks
/// up an existing namespace's labels (`None` when it does not exist).
pub(crate) fn namespace_matches(
    selector: &Value,
    req: &Request,
    labels_of: impl FnOnce(&str) -> Option<BTreeMap<String, String>>,
) -> Result<bool, ApiError> {
    let is_namespace = req.resource.resource == "namespaces";
    if req.namespace.is_empty() && !is_namespace {
        return Ok(true);
    }
    let selector = parse_selector(selector)?;
    if selector.is_empty() {
        return Ok(true);
    }
    if is_namespace
        && req.sub_resource.is_empty()
        && matches!(req.operation, Operation::Create | Operation::Update)
    {
        let labels = req.object.as_ref().map(object_labels).unwrap_or_default();
        return Ok(selector.matches(&labels));
    }
    let name = if req.namespace.is_empty() {
        &req.name
    } else {
        &req.namespace
    };
    match labels_of(name) {
        Some(labels) => {
            let labels: Labels = labels
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Ok(selector.matches(&labels))
        }
        None => Err(ApiError::not_found("", "namespaces", name)),
    }
}

/// `objectSelector`: matches when either the new or the old object carries matching labels.
pub(crate) fn object_matches(selector: &Value, req: &Request) -> Result<bool, ApiError> {
    let selector = parse_selector(selector)?;
    if selector.is_empty() {
        return Ok(true);
    }
    let matches = |o: &Option<Value>| {
        o.as_ref()
            .is_some_and(|o| selector.matches(&object_labels(o)))
    };
    Ok(matches(&req.object) || matches(&req.old_object))
}

/// Selectors and rules, without `matchConditions`. Selector errors only surface for
/// webhooks whose rules match the request, as upstream.
pub(crate) fn selects(
    hook: &Hook,
    req: &Request,
    resolver: &impl Resolver,
) -> Result<bool, ApiError> {
    let ns = namespace_matches(&hook.namespace_selector, req, |n| {
        resolver.namespace_labels(n)
    });
    if matches!(ns, Ok(false)) {
        return Ok(false);
    }
    let obj = object_matches(&hook.object_selector, req);
    if matches!(obj, Ok(false)) {
        return Ok(false);
    }
    if !hook.rules.iter().any(|r| rule_matches(r, req)) {
        return Ok(false);
    }
    ns?;
    obj?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{GroupVersionKind, GroupVersionResource};

    fn rule(ops: &[&str], resources: &[&str], scope: &str) -> Rule {
        Rule {
            operations: ops.iter().map(|s| s.to_string()).collect(),
            api_groups: vec!["*".into()],
            api_versions: vec!["*".into()],
            resources: resources.iter().map(|s| s.to_string()).collect(),
            scope: scope.into(),
        }
    }

    fn pod_req(sub: &str, ns: &str) -> Request {
        Request {
            kind: GroupVersionKind::new("", "v1", "Pod"),
            resource: GroupVersionResource::new("", "v1", "pods"),
            sub_resource: sub.into(),
            namespace: ns.into(),
            ..Request::default()
        }
    }

    #[test]
    fn resources_and_subresources() {
        let status = pod_req("status", "ns");
        let main = pod_req("", "ns");
        assert!(rule_matches(&rule(&["*"], &["pods/status"], "*"), &status));
        assert!(!rule_matches(&rule(&["*"], &["pods"], "*"), &status));
        assert!(rule_matches(&rule(&["*"], &["*/status"], "*"), &status));
        assert!(rule_matches(&rule(&["*"], &["*/*"], "*"), &status));
        assert!(rule_matches(&rule(&["*"], &["*/*"], "*"), &main));
        assert!(rule_matches(&rule(&["*"], &["*"], "*"), &main));
        assert!(!rule_matches(&rule(&["*"], &["*"], "*"), &status));
        assert!(!rule_matches(&rule(&["UPDATE"], &["pods"], "*"), &main));
        assert!(rule_matches(&rule(&["CREATE"], &["pods"], "*"), &main));
    }

    #[test]
    fn scopes() {
        let namespaced = pod_req("", "ns");
        let cluster = Request {
            resource: GroupVersionResource::new("", "v1", "nodes"),
            ..Request::default()
        };
        let namespace = Request {
            resource: GroupVersionResource::new("", "v1", "namespaces"),
            namespace: "ns".into(),
            ..Request::default()
        };
        let ns_rule = rule(&["*"], &["*"], "Namespaced");
        let cl_rule = rule(&["*"], &["*"], "Cluster");
        assert!(rule_matches(&ns_rule, &namespaced));
        assert!(!rule_matches(&ns_rule, &cluster));
        assert!(!rule_matches(&ns_rule, &namespace));
        assert!(rule_matches(&cl_rule, &cluster));
        assert!(rule_matches(&cl_rule, &namespace));
        assert!(!rule_matches(&cl_rule, &namespaced));
    }

    #[test]
    fn exemption() {
        let mut r = pod_req("", "");
        r.kind = GroupVersionKind::new(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
        );
        assert!(is_exempt(&r));
        assert!(!is_exempt(&pod_req("", "")));
    }
}
