//! `ValidatingAdmissionPolicy` admission (`admissionregistration.k8s.io/v1`
//! `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding`), as upstream's
//! `ValidatingAdmissionPolicy` plugin decides it: which policy and binding pairs match a
//! request, which parameter objects each binding supplies, what the CEL validations say,
//! and how `validationActions` (`Deny`, `Warn`, `Audit`) and `failurePolicy` turn that into
//! a refusal, warnings and audit annotations.
//!
//! Pure logic: it must not read storage or do I/O. Policies and bindings arrive as JSON
//! objects; parameter objects and namespaces come through a [`ParamSource`].
//!
//! Layout: `spec` (the objects, defaulted), `matching` (`matchConstraints` and
//! `matchResources`), `params` (`paramRef` resolution), `eval` (CEL), and this file (the
//! dispatcher and its error and annotation formats).

mod eval;
mod matching;
mod params;
mod spec;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_params;

use std::collections::BTreeMap;

use machinery::ApiError;
use machinery::status::Cause;
use serde_json::{Value, json};

use crate::request::Request;
use crate::{Outcome, Rejected};
use eval::{Annotation, Evaluator, Inputs};
use spec::{Binding, Policy};

/// Whether a `paramKind` names namespaced or cluster-scoped objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamScope {
    Namespaced,
    Cluster,
}

/// What policy evaluation needs from the API server's state: parameter objects and
/// namespaces, read from its caches.
pub trait ParamSource {
    /// The scope of the resource a policy's `paramKind` (`apiVersion`, `kind`) refers to;
    /// `None` when no such resource is served, which upstream reports as a configuration
    /// error of the policy.
    fn param_scope(&self, api_version: &str, kind: &str) -> Option<ParamScope>;

    /// One parameter object by name; `namespace` is empty for cluster-scoped kinds.
    fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value>;

    /// Every parameter object of a kind in `namespace` (empty: cluster-scoped kinds); the
    /// binding's `paramRef.selector` is applied by the caller.
    fn list(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<Value>;

    /// A Namespace object, for `namespaceSelector` (its labels) and the CEL
    /// `namespaceObject` variable; `None` when it does not exist.
    fn namespace(&self, name: &str) -> Option<Value>;
}

/// Requests for the admission policy objects themselves, and for the virtual review
/// resources, never reach policies (upstream's `admissionResources` and the API server's
/// excluded admission resources). Webhook configurations are not exempt from policies.
pub(crate) fn is_exempt(req: &Request) -> bool {
    let r = req.resource.resource.as_str();
    match req.resource.group.as_str() {
        "admissionregistration.k8s.io" => matches!(
            r,
            "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        ),
        "authentication.k8s.io" => matches!(r, "tokenreviews" | "selfsubjectreviews"),
        "authorization.k8s.io" => matches!(
            r,
            "subjectaccessreviews"
                | "localsubjectaccessreviews"
                | "selfsubjectaccessreviews"
                | "selfsubjectrulesreviews"
        ),
        _ => false,
    }
}

/// A decision to refuse the request; the first one recorded is returned.
struct Denial {
    policy: String,
    binding: Option<String>,
    message: String,
    reason: Option<String>,
}

/// Upstream caps each published policy audit annotation value at 10 KiB.
const MAX_AUDIT_ANNOTATION_BYTES: usize = 10 * 1024;

/// The audit annotation key for `Audit` validation failures.
pub const VALIDATION_FAILURE_ANNOTATION: &str =
    "validation.policy.admission.k8s.io/validation_failure";

/// Evaluates the `ValidatingAdmissionPolicy` objects in `policies` through their
/// `ValidatingAdmissionPolicyBinding`s in `bindings` against `req`.
///
/// Policies are taken in name order and each policy's bindings in name order; a binding
/// whose policy does not exist is ignored. `Ok` carries the warnings (`Warn`) and audit
/// annotations (`Audit`, `auditAnnotations`) to return; `Err` is the first refusal
/// (`Deny`, or a failure under `failurePolicy: Fail`) with what was gathered before it.
pub fn validate_policies(
    policies: &[Value],
    bindings: &[Value],
    req: &Request,
    params: &impl ParamSource,
) -> Result<Outcome, Rejected> {
    let mut run = Run {
        req,
        params,
        outcome: Outcome::default(),
        denials: Vec::new(),
    };
    if is_exempt(req) {
        return Ok(run.outcome);
    }
    let mut by_policy: BTreeMap<String, Vec<Binding>> = BTreeMap::new();
    for b in bindings.iter().map(spec::binding) {
        by_policy.entry(b.policy_name.clone()).or_default().push(b);
    }
    let mut policies: Vec<Policy> = policies.iter().map(spec::policy).collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    for policy in &policies {
        let Some(bindings) = by_policy.get_mut(&policy.name) else {
            continue;
        };
        bindings.sort_by(|a, b| a.name.cmp(&b.name));
        run.policy(policy, bindings).map_err(|error| Rejected {
            error,
            outcome: run.outcome.clone(),
        })?;
    }
    match run.denials.first() {
        None => Ok(run.outcome),
        Some(d) => Err(Rejected {
            error: denial_error(req, d),
            outcome: run.outcome,
        }),
    }
}

/// The state of one admission attempt across policies.
struct Run<'a, P: ParamSource> {
    req: &'a Request,
    params: &'a P,
    outcome: Outcome,
    denials: Vec<Denial>,
}

impl<P: ParamSource> Run<'_, P> {
    /// Records a configuration error under the policy's `failurePolicy`.
    fn config_error(&mut self, policy: &Policy, binding: Option<&Binding>, err: String) {
        if policy.ignore_failures {
            tracing::debug!(policy = %policy.name, error = %err, "ignoring policy configuration error");
            return;
        }
        let what = if binding.is_some() {
            "binding"
        } else {
            "policy"
        };
        self.denials.push(Denial {
            policy: policy.name.clone(),
            binding: binding.map(|b| b.name.clone()),
            message: format!("failed to configure {what}: {err}"),
            reason: None,
        });
    }

    /// One policy with its bindings. `Err` is an error that ends admission at once (a
    /// missing namespace), as upstream returns it directly.
    fn policy(&mut self, policy: &Policy, bindings: &[Binding]) -> Result<(), ApiError> {
        let Some(constraints) = &policy.match_constraints else {
            let err = "policy contained no match constraints, a required field";
            self.config_error(policy, None, err.into());
            return Ok(());
        };
        match matching::matches(constraints, self.req, self.params) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                self.config_error(policy, None, e.message);
                return Ok(());
            }
        }
        let param_kind = match &policy.param_kind {
            None => None,
            Some(kind) => match self.params.param_scope(&kind.api_version, &kind.kind) {
                Some(scope) => Some((kind, scope)),
                None => {
                    let err = format!(
                        "failed to find resource referenced by paramKind: '{}'",
                        kind.gvk_string()
                    );
                    self.config_error(policy, None, err);
                    return Ok(());
                }
            },
        };
        let mut annotations = AnnotationCollector::default();
        for binding in bindings {
            if let Some(m) = &binding.match_resources {
                match matching::matches(m, self.req, self.params) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        self.config_error(policy, Some(binding), e.message);
                        continue;
                    }
                }
            }
            let params =
                match params::collect(param_kind, binding, &self.req.namespace, self.params) {
                    Ok(p) => p,
                    Err(e) => {
                        self.config_error(policy, Some(binding), e);
                        continue;
                    }
                };
            let namespace_object = self.namespace_object()?;
            for param in params {
                let inputs = Inputs {
                    object: self.req.object.clone().unwrap_or(Value::Null),
                    old_object: self.req.old_object.clone().unwrap_or(Value::Null),
                    request: self.req.cel_request(),
                    params: param.unwrap_or(Value::Null),
                    namespace_object: namespace_object.clone(),
                };
                let evaluator = Evaluator::new(&inputs, policy);
                let result = eval::evaluate(policy, &evaluator);
                self.enforce(policy, binding, result, &mut annotations);
            }
        }
        for (key, value) in annotations.finish() {
            self.outcome
                .annotate(format!("{}/{key}", policy.name), value);
        }
        Ok(())
    }

    /// The `namespaceObject` variable: null for cluster-scoped requests and for Namespace
    /// objects themselves (whose request namespace is their own name).
    fn namespace_object(&self) -> Result<Value, ApiError> {
        let k = &self.req.kind;
        let is_namespace = k.group.is_empty() && k.version == "v1" && k.kind == "Namespace";
        if self.req.namespace.is_empty() || is_namespace {
            return Ok(Value::Null);
        }
        let ns = self
            .params
            .namespace(&self.req.namespace)
            .ok_or_else(|| ApiError::not_found("", "namespaces", &self.req.namespace))?;
        Ok(namespace_object(&ns))
    }

    /// Applies the binding's `validationActions` to failed validations, and collects the
    /// policy's audit annotations.
    fn enforce(
        &mut self,
        policy: &Policy,
        binding: &Binding,
        result: eval::Evaluation,
        annotations: &mut AnnotationCollector,
    ) {
        for failed in result.failures {
            for action in &binding.validation_actions {
                match action.as_str() {
                    "Deny" => self.denials.push(Denial {
                        policy: policy.name.clone(),
                        binding: Some(binding.name.clone()),
                        message: failed.message.clone(),
                        reason: failed.reason.clone(),
                    }),
                    "Warn" => self.outcome.warn(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                        policy.name, binding.name, failed.message
                    )),
                    "Audit" => self.outcome.annotate(
                        VALIDATION_FAILURE_ANNOTATION.into(),
                        validation_failure_value(binding, &failed),
                    ),
                    _ => {}
                }
            }
        }
        for a in result.annotations {
            match a {
                Annotation::Publish { key, value } => annotations.add(key, value),
                Annotation::Error(message) => self.denials.push(Denial {
                    policy: policy.name.clone(),
                    binding: Some(binding.name.clone()),
                    message,
                    reason: None,
                }),
            }
        }
    }
}

/// The fields of a Namespace upstream exposes to CEL as `namespaceObject`.
fn namespace_object(ns: &Value) -> Value {
    const META: [&str; 12] = [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "finalizers",
    ];
    let mut metadata = serde_json::Map::new();
    if let Some(m) = ns.get("metadata").and_then(Value::as_object) {
        for k in META {
            if let Some(v) = m.get(k) {
                metadata.insert(k.into(), v.clone());
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("metadata".into(), Value::Object(metadata));
    for k in ["spec", "status"] {
        out.insert(k.into(), ns.get(k).cloned().unwrap_or_else(|| json!({})));
    }
    Value::Object(out)
}

/// A policy's `auditAnnotations` values across its bindings: distinct values of one key
/// are joined with `, `.
#[derive(Default)]
struct AnnotationCollector {
    entries: Vec<(String, Vec<String>)>,
}

impl AnnotationCollector {
    fn add(&mut self, key: String, mut value: String) {
        if value.len() > MAX_AUDIT_ANNOTATION_BYTES {
            let mut end = MAX_AUDIT_ANNOTATION_BYTES;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) if values.contains(&value) => {}
            Some((_, values)) => values.push(value),
            None => self.entries.push((key, vec![value])),
        }
    }

    fn finish(self) -> impl Iterator<Item = (String, String)> {
        self.entries.into_iter().map(|(k, v)| (k, v.join(", ")))
    }
}

/// The value of the `validation_failure` audit annotation, as Go's `encoding/json` writes
/// it (field order, HTML-safe escaping).
fn validation_failure_value(binding: &Binding, failed: &eval::Failed) -> String {
    let value = json!([{
        "message": failed.message,
        "policy": binding.policy_name,
        "binding": binding.name,
        "expressionIndex": failed.index,
        "validationActions": binding.validation_actions,
    }]);
    go_json(&value)
}

/// Serializes as Go's `json.Marshal` does: `<`, `>`, `&`, U+2028 and U+2029 escaped. Those
/// characters can only occur inside JSON strings, so escaping the output text is exact.
fn go_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The name upstream's `admission.NewForbidden` reports: the request's name, else the
/// object's `name` or `generateName`, else `Unknown`.
fn resource_name(req: &Request) -> String {
    if !req.name.is_empty() {
        return req.name.clone();
    }
    let meta = |k: &str| {
        req.object
            .as_ref()
            .and_then(|o| o.pointer(&format!("/metadata/{k}")))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    meta("name")
        .or_else(|| meta("generateName"))
        .unwrap_or_else(|| "Unknown".into())
}

/// The HTTP code of a validation `reason`.
fn reason_code(reason: &str) -> u16 {
    match reason {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

/// Upstream's refusal: a Forbidden-shaped status (`<resource> "<name>" is forbidden:
/// ValidatingAdmissionPolicy ...`) whose reason and code are the validation's (`Invalid`,
/// 422, by default), with the message repeated as a cause.
fn denial_error(req: &Request, d: &Denial) -> ApiError {
    let message = match &d.binding {
        Some(b) => format!(
            "ValidatingAdmissionPolicy '{}' with binding '{b}' denied request: {}",
            d.policy, d.message
        ),
        None => format!(
            "ValidatingAdmissionPolicy '{}' denied request: {}",
            d.policy, d.message
        ),
    };
    let mut e = ApiError::forbidden(
        &req.resource.group,
        &req.resource.resource,
        &resource_name(req),
        &message,
    );
    let reason = d.reason.as_deref().unwrap_or("Invalid");
    e.reason = reason.to_string();
    e.code = reason_code(reason);
    if let Some(details) = e.details.as_mut() {
        details.causes.push(Cause {
            reason: String::new(),
            message,
            field: String::new(),
        });
    }
    e
}
