//! The PodSecurity admission plugin: the namespace's `pod-security.kubernetes.io/*`
//! labels pick the Pod Security Standards level enforced on its pods (a Forbidden answer)
//! and warned about or audited for its pods and workload templates; invalid labels are
//! refused on the namespace itself, and raising a namespace's enforce level warns about
//! the pods already there. The checks are the `podsecurity` crate's; this module finds
//! the namespace and the pods and shapes the answers.
//!
//! Namespaces without labels get the defaults of `--admission-control-config-file`
//! (upstream's `privileged:latest` without one); its exempt namespaces, users and
//! runtime classes skip the checks, and labelling an exempt namespace warns that the
//! labels will be ignored.

use machinery::resource::ResourceInfo;
use machinery::{ApiError, FieldError};
use podsecurity::{LabelError, Policy};
use serde_json::{Map, Value, json};

use super::config::PodSecurityConfig;
use crate::rest::Rest;
use crate::webhooks::Attributes;
use webhook::Operation;

fn labels(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn policy_of(cfg: &PodSecurityConfig, ns: &Value) -> (Policy, Vec<LabelError>) {
    podsecurity::policy_to_evaluate(&labels(ns), &cfg.defaults)
}

/// Checks a write; returns the warnings for the client.
pub fn validate(
    rest: &Rest,
    a: &Attributes<'_>,
    res: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    let cfg = &rest.plugins.config.pod_security;
    if res.group.is_empty() && res.plural == "namespaces" && a.sub.is_empty() {
        return namespace(rest, cfg, a, obj, old);
    }
    if res.group.is_empty() && res.plural == "pods" {
        if podsecurity::pod_subresource_ignored(a.sub) {
            return Ok(Vec::new());
        }
    } else if !a.sub.is_empty() || !podsecurity::has_pod_spec(&res.group, &res.plural) {
        return Ok(Vec::new());
    }
    if cfg.exempt_namespace(a.namespace) || a.user.is_some_and(|u| cfg.exempt_user(&u.name)) {
        return Ok(Vec::new());
    }
    if res.plural == "pods"
        && let Some(old) = old
        && !podsecurity::is_significant_pod_update(old, obj)
    {
        return Ok(Vec::new());
    }
    let Some((metadata, spec)) = podsecurity::pod_spec_of(&res.group, &res.plural, obj) else {
        return Ok(Vec::new());
    };
    if cfg.exempt_runtime_class(
        spec.get("runtimeClassName")
            .and_then(Value::as_str)
            .unwrap_or(""),
    ) {
        return Ok(Vec::new());
    }
    let Some(ns) = rest.namespace(a.namespace) else {
        return Ok(Vec::new());
    };
    let (policy, errors) = policy_of(cfg, &ns);
    let is_pod = res.plural == "pods";
    let eval = podsecurity::evaluate(&policy, &errors, &metadata, &spec, is_pod);
    if let Some(why) = eval.denied {
        return Err(ApiError::forbidden(&res.group, &res.plural, a.name, &why));
    }
    Ok(eval.warnings)
}

/// Namespace labels: invalid ones are refused; a stricter enforce level warns about the
/// pods it would refuse.
fn namespace(
    rest: &Rest,
    cfg: &PodSecurityConfig,
    a: &Attributes<'_>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    let (policy, errors) = policy_of(cfg, obj);
    let old_policy = old.map(|o| policy_of(cfg, o));
    let reject = match &old_policy {
        Some((_, old_errors)) => podsecurity::label_errors_reject_update(&errors, old_errors),
        None => !errors.is_empty(),
    };
    if reject {
        let causes: Vec<FieldError> = errors
            .iter()
            .map(|e| FieldError::invalid(e.field_path(), json!(e.value), &e.message))
            .collect();
        return Err(ApiError::invalid("", "Namespace", a.name, &causes));
    }
    if cfg.exempt_namespace(a.name) {
        return Ok(podsecurity::exempt_namespace_warning(
            a.name,
            &policy,
            &cfg.defaults,
            &labels(obj),
        )
        .into_iter()
        .collect());
    }
    let Some((old_policy, _)) = old_policy else {
        return Ok(Vec::new());
    };
    if a.operation != Operation::Update
        || !podsecurity::namespace_update_needs_pod_check(&old_policy, &policy)
    {
        return Ok(Vec::new());
    }
    let Some(pods) = rest.registry.get("", "v1", "pods") else {
        return Ok(Vec::new());
    };
    let (items, _) = rest.store.snapshot(&crate::rest::prefix(&pods, a.name));
    let items: Vec<Value> = items.iter().map(|p| (**p).clone()).collect();
    let opts = podsecurity::NamespaceCheckOptions {
        exempt_runtime_classes: cfg.exempt_runtime_classes.clone(),
        ..podsecurity::NamespaceCheckOptions::upstream()
    };
    Ok(podsecurity::namespace_warnings_with(
        a.name,
        &policy.enforce,
        &items,
        &opts,
    ))
}
