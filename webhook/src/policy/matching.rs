//! Whether a policy's `matchConstraints` or a binding's `matchResources` select a request,
//! in upstream's order: namespace selector, object selector, excluded rules, rules; selector
//! errors only surface once the rules match.
//!
//! `matchPolicy` is read as `Exact`, as for webhooks: equivalent resources in other group
//! versions are not matched because this crate cannot convert objects between versions.

use machinery::ApiError;

use super::ParamSource;
use super::spec::{MatchResources, NamedRule};
use crate::matching::{namespace_matches, object_matches, rule_matches};
use crate::request::Request;

/// Rules that match the request's resource and operation, narrowed by `resourceNames`.
fn any_rule_matches(rules: &[NamedRule], req: &Request) -> bool {
    rules.iter().any(|r| {
        rule_matches(&r.rule, req)
            && (r.resource_names.is_empty() || r.resource_names.contains(&req.name))
    })
}

/// Upstream's `matching.Matcher.Matches` for one `MatchResources`. An empty
/// `resourceRules` list matches every resource.
pub(crate) fn matches(
    m: &MatchResources,
    req: &Request,
    source: &impl ParamSource,
) -> Result<bool, ApiError> {
    let ns = namespace_matches(&m.namespace_selector, req, |n| {
        source.namespace(n).map(|ns| labels_of(&ns))
    });
    if matches!(ns, Ok(false)) {
        return Ok(false);
    }
    let obj = object_matches(&m.object_selector, req);
    if matches!(obj, Ok(false)) {
        return Ok(false);
    }
    if any_rule_matches(&m.exclude_resource_rules, req) {
        return Ok(false);
    }
    if !m.resource_rules.is_empty() && !any_rule_matches(&m.resource_rules, req) {
        return Ok(false);
    }
    ns?;
    obj?;
    Ok(true)
}

/// The string labels of an object's `metadata.labels`.
pub(crate) fn labels_of(obj: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
