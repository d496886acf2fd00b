//! Evaluating one policy for one (binding, param) pair, as upstream's validator does:
//! `matchConditions`, then `validations` (with `message`/`messageExpression` and
//! `reason`), then `auditAnnotations`, with `failurePolicy` applied to evaluation errors.
//!
//! CEL sees `object`, `oldObject`, `request`, `params`, `namespaceObject` (null when
//! absent) and `variables`. Upstream evaluates `variables` lazily; here they are evaluated
//! once, in order, before any other expression, and a variable that fails is left out of
//! the map. An expression referring to it then reports the variable's own error, as
//! upstream's lazy evaluation does, and one that does not refer to it is unaffected.
//! `authorizer` is not available: an expression using it fails to evaluate.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map as CelMap};
use cel::{Context, Value as Cel};
use serde_json::Value;

use super::spec::Policy;

/// Upstream's `celconfig.MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// The JSON values of the CEL variables other than `variables`.
pub(crate) struct Inputs {
    pub object: Value,
    pub old_object: Value,
    pub request: Value,
    pub params: Value,
    pub namespace_object: Value,
}

/// Why an expression produced no value.
enum Failure {
    Compile(String),
    Evaluate(String),
}

/// A CEL context with the policy's inputs and variables bound.
pub(crate) struct Evaluator {
    ctx: Context<'static, 'static>,
    /// Variables that failed, with upstream's `composited variable ...` error text.
    failed: Vec<(String, String)>,
}

/// Whether `expression` reads `variables.<name>` (or `variables["<name>"]`).
fn references(expression: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let dotted = format!("variables.{name}");
    let dotted_hit = expression.match_indices(&dotted).any(|(i, _)| {
        let before = expression[..i].chars().next_back();
        let after = expression[i + dotted.len()..].chars().next();
        !before.is_some_and(|c| is_ident(c) || c == '.') && !after.is_some_and(is_ident)
    });
    dotted_hit
        || expression.contains(&format!("variables[\"{name}\"]"))
        || expression.contains(&format!("variables['{name}']"))
}

fn cel_map(entries: &HashMap<Key, Cel>) -> Cel {
    Cel::Map(CelMap {
        map: Arc::new(entries.clone()),
    })
}

/// The cel-go name of a value's type, as upstream prints it.
pub(crate) fn type_name(v: &Cel) -> String {
    match v {
        Cel::Float(_) => "double".into(),
        Cel::Null => "null_type".into(),
        other => other.type_of().to_string(),
    }
}

impl Evaluator {
    /// Binds `inputs` and evaluates `policy.variables` in order.
    pub fn new(inputs: &Inputs, policy: &Policy) -> Self {
        let mut ctx = Context::with_env(apiextensions::cel_env());
        for (name, value) in [
            ("object", &inputs.object),
            ("oldObject", &inputs.old_object),
            ("request", &inputs.request),
            ("params", &inputs.params),
            ("namespaceObject", &inputs.namespace_object),
        ] {
            ctx.add_variable_from_value(name, apiextensions::json_to_cel(value));
        }
        let mut values = HashMap::new();
        ctx.add_variable_from_value("variables", cel_map(&values));
        let mut ev = Evaluator {
            ctx,
            failed: Vec::new(),
        };
        for v in &policy.variables {
            match ev.run(&v.expression) {
                Ok(value) => {
                    values.insert(Key::String(Arc::new(v.name.clone())), value);
                    ev.ctx
                        .add_variable_from_value("variables", cel_map(&values));
                }
                Err(Failure::Compile(e)) => ev.failed.push((
                    v.name.clone(),
                    format!("composited variable \"{}\" fails to compile: {e}", v.name),
                )),
                Err(Failure::Evaluate(e)) => ev.failed.push((
                    v.name.clone(),
                    format!("composited variable \"{}\" fails to evaluate: {e}", v.name),
                )),
            }
        }
        ev
    }

    fn run(&self, expression: &str) -> Result<Cel, Failure> {
        let program = apiextensions::cel_env()
            .compile(expression)
            .map_err(|e| Failure::Compile(e.to_string()))?;
        program.execute(&self.ctx).map_err(|e| {
            let cause = self
                .failed
                .iter()
                .find(|(name, _)| references(expression, name))
                .map(|(_, why)| why.clone());
            Failure::Evaluate(cause.unwrap_or_else(|| e.to_string()))
        })
    }

    /// Evaluates one expression; the error is upstream's per-expression text.
    pub fn evaluate(&self, expression: &str) -> Result<Cel, String> {
        self.run(expression).map_err(|f| match f {
            Failure::Compile(e) => format!("compilation error: {e}"),
            Failure::Evaluate(e) => format!("expression '{expression}' resulted in error: {e}"),
        })
    }

    /// Evaluates an expression that must produce a bool.
    fn evaluate_bool(&self, expression: &str) -> Result<bool, String> {
        match self.evaluate(expression)? {
            Cel::Bool(b) => Ok(b),
            other => Err(format!(
                "expression '{expression}' resulted in error: must evaluate to bool, got {}",
                type_name(&other)
            )),
        }
    }
}

/// A failed validation (or an evaluation error under `failurePolicy: Fail`), to be enforced
/// per the binding's `validationActions`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failed {
    /// Index in `validations` (0 for `matchConditions` errors), for the audit annotation.
    pub index: usize,
    pub message: String,
    /// The status reason; `None` is `Invalid`.
    pub reason: Option<String>,
}

/// The outcome of one `auditAnnotations[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Annotation {
    Publish {
        key: String,
        value: String,
    },
    /// An evaluation error under `failurePolicy: Fail`: the request is denied whatever the
    /// binding's actions.
    Error(String),
}

/// What evaluating a policy for one binding and param produced.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Evaluation {
    pub failures: Vec<Failed>,
    pub annotations: Vec<Annotation>,
}

/// `matchConditions`: `Ok(false)` when one is false (even if others failed), otherwise the
/// errors, aggregated as upstream prints them.
fn conditions_match(policy: &Policy, ev: &Evaluator) -> Result<bool, String> {
    let mut errors = Vec::new();
    for c in &policy.match_conditions {
        match ev.evaluate_bool(&c.expression) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(true),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// The message of a failed validation: `messageExpression` if it yields a usable string,
/// else `message`, else `failed expression: <expression>`.
fn failure_message(v: &super::spec::Validation, ev: &Evaluator) -> String {
    let mut message = String::new();
    if !v.message_expression.is_empty() {
        match ev.evaluate(&v.message_expression) {
            Ok(Cel::String(s)) => {
                let s = s.trim();
                if s.len() <= MAX_MESSAGE_BYTES && !s.contains('\n') {
                    message = s.to_string();
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "error while evaluating messageExpression"),
        }
    }
    if message.is_empty() {
        message = v.message.trim().to_string();
    }
    if message.is_empty() {
        message = format!("failed expression: {}", v.expression.trim());
    }
    message
}

fn annotation(policy: &Policy, key: &str, expression: &str, ev: &Evaluator) -> Option<Annotation> {
    match ev.evaluate(expression) {
        Ok(Cel::String(s)) => {
            let value = s.trim();
            (!value.is_empty()).then(|| Annotation::Publish {
                key: key.to_string(),
                value: value.to_string(),
            })
        }
        Ok(Cel::Null) => None,
        Ok(other) => Some(Annotation::Error(format!(
            "valueExpression '{expression}' resulted in unsupported return type: {}. \
             Return type must be either string or null.",
            type_name(&other)
        ))),
        Err(_) if policy.ignore_failures => None,
        Err(e) => Some(Annotation::Error(e)),
    }
}

/// Evaluates `policy` with the bound inputs.
pub(crate) fn evaluate(policy: &Policy, ev: &Evaluator) -> Evaluation {
    let mut out = Evaluation::default();
    match conditions_match(policy, ev) {
        Ok(true) => {}
        Ok(false) => return out,
        Err(_) if policy.ignore_failures => return out,
        Err(message) => {
            out.failures.push(Failed {
                index: 0,
                message,
                reason: None,
            });
            return out;
        }
    }
    for (index, v) in policy.validations.iter().enumerate() {
        match ev.evaluate_bool(&v.expression) {
            Ok(true) => {}
            Ok(false) => out.failures.push(Failed {
                index,
                message: failure_message(v, ev),
                reason: v.reason.clone(),
            }),
            Err(_) if policy.ignore_failures => {}
            Err(message) => out.failures.push(Failed {
                index,
                message,
                reason: None,
            }),
        }
    }
    out.annotations = policy
        .audit_annotations
        .iter()
        .filter_map(|a| annotation(policy, &a.key, &a.value_expression, ev))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_references() {
        assert!(references("variables.foo > 1", "foo"));
        assert!(references("variables['foo'] > 1", "foo"));
        assert!(!references("variables.foobar > 1", "foo"));
        assert!(!references("object.variables.foo > 1", "foo"));
        assert!(!references("variables.bar", "foo"));
    }
}
