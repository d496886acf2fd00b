//! The parameter objects a binding hands to its policy (upstream's `CollectParams`): none
//! when the policy has no `paramKind` or the binding no `paramRef`, one object by
//! `paramRef.name`, or every object matching `paramRef.selector`. The error strings are
//! upstream's; the dispatcher prefixes them with `failed to configure binding: `.

use machinery::labels::Selector;
use serde_json::Value;

use super::spec::{Binding, ParamKind};
use super::{ParamScope, ParamSource};

/// Params to evaluate the policy with: each entry is one evaluation, `None` meaning
/// `params` is null. An empty list means nothing was found and the binding allows that.
pub(crate) fn collect(
    param_kind: Option<(&ParamKind, ParamScope)>,
    binding: &Binding,
    request_namespace: &str,
    source: &impl ParamSource,
) -> Result<Vec<Option<Value>>, String> {
    let (Some((kind, scope)), Some(param_ref)) = (param_kind, binding.param_ref.as_ref()) else {
        // No paramKind: any paramRef is ignored. paramKind without paramRef: the policy
        // runs with null params.
        return Ok(vec![None]);
    };
    let namespace = match scope {
        ParamScope::Namespaced if !param_ref.namespace.is_empty() => param_ref.namespace.as_str(),
        ParamScope::Namespaced if !request_namespace.is_empty() => request_namespace,
        ParamScope::Namespaced => {
            return Err(
                "cannot use namespaced paramRef in policy binding that matches \
                 cluster-scoped resources"
                    .into(),
            );
        }
        ParamScope::Cluster if !param_ref.namespace.is_empty() => {
            return Err(
                "paramRef.namespace must not be provided for a cluster-scoped `paramKind`".into(),
            );
        }
        ParamScope::Cluster => "",
    };
    let found: Vec<Value> = if !param_ref.name.is_empty() {
        if param_ref.selector.is_some() {
            return Err("paramRef.name and paramRef.selector are mutually exclusive".into());
        }
        source
            .get(&kind.api_version, &kind.kind, namespace, &param_ref.name)
            .into_iter()
            .collect()
    } else if let Some(selector) = &param_ref.selector {
        let selector = Selector::from_label_selector(selector)?;
        source
            .list(&kind.api_version, &kind.kind, namespace)
            .into_iter()
            .filter(|p| selector.matches_object(p))
            .collect()
    } else {
        return Err("one of name or selector must be provided".into());
    };
    if found.is_empty() && param_ref.deny_when_missing {
        return Err(
            "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
        );
    }
    Ok(found
        .into_iter()
        .map(|p| Some(with_type_meta(p, kind)))
        .collect())
}

/// Upstream makes sure `params.apiVersion` and `params.kind` are set, as built-in objects
/// read from a cache lack them.
fn with_type_meta(mut param: Value, kind: &ParamKind) -> Value {
    if let Some(m) = param.as_object_mut() {
        let missing = |m: &serde_json::Map<String, Value>, k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .is_none_or(|s| s.is_empty())
        };
        if missing(m, "apiVersion") && missing(m, "kind") {
            m.insert("apiVersion".into(), kind.api_version.clone().into());
            m.insert("kind".into(), kind.kind.clone().into());
        }
    }
    param
}
