//! `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding` objects read from
//! JSON into the flat form the dispatcher uses, with the v1 API's defaults applied
//! (`failurePolicy: Fail`, empty selectors, rule `scope: "*"`).

use serde_json::Value;

use crate::config::{self, Rule};

/// `spec.paramKind`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParamKind {
    pub api_version: String,
    pub kind: String,
}

impl ParamKind {
    /// Go's `schema.GroupVersionKind` string form (`group/version, Kind=kind`), which
    /// upstream prints in configuration errors.
    pub fn gvk_string(&self) -> String {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", self.api_version.as_str()));
        format!("{group}/{version}, Kind={}", self.kind)
    }
}

/// One `NamedRuleWithOperations`.
#[derive(Debug, Clone)]
pub(crate) struct NamedRule {
    pub rule: Rule,
    /// Empty matches every name.
    pub resource_names: Vec<String>,
}

/// `MatchResources`: a policy's `matchConstraints` or a binding's `matchResources`.
#[derive(Debug, Clone)]
pub(crate) struct MatchResources {
    pub namespace_selector: Value,
    pub object_selector: Value,
    pub resource_rules: Vec<NamedRule>,
    pub exclude_resource_rules: Vec<NamedRule>,
}

/// A named CEL expression: a `matchConditions[]` or `variables[]` entry.
#[derive(Debug, Clone)]
pub(crate) struct NamedExpression {
    pub name: String,
    pub expression: String,
}

/// One `validations[]` entry.
#[derive(Debug, Clone)]
pub(crate) struct Validation {
    pub expression: String,
    pub message: String,
    pub message_expression: String,
    /// `Forbidden`, `Invalid`, `Unauthorized` or `RequestEntityTooLarge`; `None` means
    /// `Invalid`.
    pub reason: Option<String>,
}

/// One `auditAnnotations[]` entry.
#[derive(Debug, Clone)]
pub(crate) struct AuditAnnotation {
    pub key: String,
    pub value_expression: String,
}

/// A `ValidatingAdmissionPolicy`.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub name: String,
    pub param_kind: Option<ParamKind>,
    /// Required by the API; `None` is reported as a configuration error.
    pub match_constraints: Option<MatchResources>,
    pub match_conditions: Vec<NamedExpression>,
    pub variables: Vec<NamedExpression>,
    pub validations: Vec<Validation>,
    pub audit_annotations: Vec<AuditAnnotation>,
    /// `failurePolicy: Ignore`; the default is `Fail`.
    pub ignore_failures: bool,
}

/// A binding's `spec.paramRef`.
#[derive(Debug, Clone)]
pub(crate) struct ParamRef {
    pub name: String,
    pub namespace: String,
    pub selector: Option<Value>,
    /// `parameterNotFoundAction: Deny`. Anything else (including unset, which the API
    /// rejects) allows, as upstream's parameter collection does.
    pub deny_when_missing: bool,
}

/// A `ValidatingAdmissionPolicyBinding`.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub name: String,
    pub policy_name: String,
    pub param_ref: Option<ParamRef>,
    pub match_resources: Option<MatchResources>,
    /// `Deny`, `Warn` and `Audit`, as listed (upstream keeps the listed order in the
    /// audit annotation).
    pub validation_actions: Vec<String>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn list(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

fn named_rules(v: Option<&Value>) -> Vec<NamedRule> {
    list(v)
        .map(|r| NamedRule {
            rule: config::rule(r),
            resource_names: config::strings(r.get("resourceNames")),
        })
        .collect()
}

fn match_resources(v: &Value) -> MatchResources {
    // Absent selectors are defaulted to `{}` (match everything).
    let selector = |k: &str| {
        v.get(k)
            .filter(|s| !s.is_null())
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()))
    };
    MatchResources {
        namespace_selector: selector("namespaceSelector"),
        object_selector: selector("objectSelector"),
        resource_rules: named_rules(v.get("resourceRules")),
        exclude_resource_rules: named_rules(v.get("excludeResourceRules")),
    }
}

fn named_expressions(v: Option<&Value>) -> Vec<NamedExpression> {
    list(v)
        .map(|c| NamedExpression {
            name: str_at(c, "name").into(),
            expression: str_at(c, "expression").into(),
        })
        .collect()
}

/// Reads a `ValidatingAdmissionPolicy` object.
pub(crate) fn policy(obj: &Value) -> Policy {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    Policy {
        name: name_of(obj),
        param_kind: spec
            .get("paramKind")
            .filter(|p| p.is_object())
            .map(|p| ParamKind {
                api_version: str_at(p, "apiVersion").into(),
                kind: str_at(p, "kind").into(),
            }),
        match_constraints: spec
            .get("matchConstraints")
            .filter(|m| m.is_object())
            .map(match_resources),
        match_conditions: named_expressions(spec.get("matchConditions")),
        variables: named_expressions(spec.get("variables")),
        validations: list(spec.get("validations"))
            .map(|v| Validation {
                expression: str_at(v, "expression").into(),
                message: str_at(v, "message").into(),
                message_expression: str_at(v, "messageExpression").into(),
                reason: v.get("reason").and_then(Value::as_str).map(String::from),
            })
            .collect(),
        audit_annotations: list(spec.get("auditAnnotations"))
            .map(|a| AuditAnnotation {
                key: str_at(a, "key").into(),
                value_expression: str_at(a, "valueExpression").into(),
            })
            .collect(),
        ignore_failures: str_at(spec, "failurePolicy") == "Ignore",
    }
}

/// Reads a `ValidatingAdmissionPolicyBinding` object.
pub(crate) fn binding(obj: &Value) -> Binding {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    Binding {
        name: name_of(obj),
        policy_name: str_at(spec, "policyName").into(),
        param_ref: spec
            .get("paramRef")
            .filter(|p| p.is_object())
            .map(|p| ParamRef {
                name: str_at(p, "name").into(),
                namespace: str_at(p, "namespace").into(),
                selector: p.get("selector").filter(|s| !s.is_null()).cloned(),
                deny_when_missing: str_at(p, "parameterNotFoundAction") == "Deny",
            }),
        match_resources: spec
            .get("matchResources")
            .filter(|m| m.is_object())
            .map(match_resources),
        validation_actions: config::strings(spec.get("validationActions")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_gvk_string() {
        let p = policy(&json!({
            "metadata": {"name": "p"},
            "spec": {
                "paramKind": {"apiVersion": "example.com/v1", "kind": "Limits"},
                "matchConstraints": {"resourceRules": [{"operations": ["CREATE"],
                    "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}]},
                "validations": [{"expression": "true"}]
            }
        }));
        assert!(!p.ignore_failures);
        let m = p.match_constraints.unwrap();
        assert_eq!(m.namespace_selector, json!({}));
        assert_eq!(m.resource_rules[0].rule.scope, "*");
        assert_eq!(
            p.param_kind.unwrap().gvk_string(),
            "example.com/v1, Kind=Limits"
        );
        let core = ParamKind {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
        };
        assert_eq!(core.gvk_string(), "/v1, Kind=ConfigMap");
    }
}
