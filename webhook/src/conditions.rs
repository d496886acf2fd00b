//! CEL `matchConditions`: every condition must be true for the webhook to be called.
//! A false condition skips the webhook even when others failed; evaluation errors follow
//! the webhook's `failurePolicy` (Fail rejects the request, Ignore skips the webhook).
//!
//! Variables are upstream's `object`, `oldObject` (null when absent) and `request`.
//! `authorizer` is not available: an expression using it fails to evaluate.

use cel::{Context, Value as CelValue};
use serde_json::Value;

use crate::config::Hook;
use crate::request::Request;

/// The decision of a webhook's `matchConditions`.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    Call,
    Skip,
    /// Evaluation failed and `failurePolicy` is Fail: upstream's error text.
    Fail(String),
}

/// Evaluates one expression: `Ok(bool)` or upstream's per-expression error text.
fn evaluate(expression: &str, vars: &[(&str, &Value)]) -> Result<bool, String> {
    let env = apiextensions::cel_env();
    let program = env
        .compile(expression)
        .map_err(|e| format!("compilation error: {e}"))?;
    let mut ctx = Context::with_env(env);
    for (name, value) in vars {
        ctx.add_variable_from_value(*name, apiextensions::json_to_cel(value));
    }
    match program.execute(&ctx) {
        Ok(CelValue::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "expression '{expression}' resulted in error: must evaluate to bool, got {}",
            other.type_of()
        )),
        Err(e) => Err(format!("expression '{expression}' resulted in error: {e}")),
    }
}

/// Evaluates `hook.matchConditions` against `req`.
pub(crate) fn decide(hook: &Hook, req: &Request) -> Decision {
    if hook.match_conditions.is_empty() {
        return Decision::Call;
    }
    let object = req.object.clone().unwrap_or(Value::Null);
    let old_object = req.old_object.clone().unwrap_or(Value::Null);
    let request = req.cel_request();
    let vars = [
        ("object", &object),
        ("oldObject", &old_object),
        ("request", &request),
    ];
    let mut errors = Vec::new();
    for c in &hook.match_conditions {
        match evaluate(&c.expression, &vars) {
            Ok(true) => {}
            Ok(false) => return Decision::Skip,
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Decision::Call,
        _ if hook.ignore_failures => Decision::Skip,
        1 => Decision::Fail(errors.remove(0)),
        _ => Decision::Fail(format!("[{}]", errors.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MatchCondition, hooks};
    use serde_json::json;

    fn hook_with(exprs: &[&str], policy: &str) -> Hook {
        let mut h = hooks(&[json!({"metadata": {"name": "c"}, "webhooks": [
            {"name": "w", "failurePolicy": policy}
        ]})])
        .remove(0);
        h.match_conditions = exprs
            .iter()
            .map(|e| MatchCondition {
                name: "c".into(),
                expression: e.to_string(),
            })
            .collect();
        h
    }

    fn req() -> Request {
        Request {
            object: Some(
                json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"n": 3}}),
            ),
            ..Request::default()
        }
    }

    #[test]
    fn all_true_calls_any_false_skips() {
        let r = req();
        assert_eq!(
            decide(
                &hook_with(
                    &["object.spec.n > 2", "request.operation == 'CREATE'"],
                    "Fail"
                ),
                &r
            ),
            Decision::Call
        );
        assert_eq!(
            decide(
                &hook_with(
                    &[
                        "'a' in object.metadata.labels",
                        "oldObject == null && false"
                    ],
                    "Fail"
                ),
                &r
            ),
            Decision::Skip
        );
    }

    #[test]
    fn errors_follow_failure_policy() {
        let r = req();
        let Decision::Fail(msg) = decide(&hook_with(&["object.nope == 1"], "Fail"), &r) else {
            panic!("expected failure");
        };
        assert!(
            msg.starts_with("expression 'object.nope == 1' resulted in error: "),
            "{msg}"
        );
        assert_eq!(
            decide(&hook_with(&["object.nope == 1"], "Ignore"), &r),
            Decision::Skip
        );
        // a false condition wins over an error
        assert_eq!(
            decide(&hook_with(&["object.nope == 1", "false"], "Fail"), &r),
            Decision::Skip
        );
    }
}
