//! `x-kubernetes-validations`: compiling CEL rules and evaluating them against a custom
//! resource (`self`) and, for transition rules, its previous version (`oldSelf`), with
//! upstream's error wording (`spec: Invalid value: "object": <message>`).
//!
//! Uses the cel-rust interpreter with its strings and lists extensions plus the
//! Kubernetes list functions (`isSorted`, `sum`, `min`, `max`). cel-rust does not type
//! check, so rules only fail to compile on syntax errors; type errors surface when the
//! rule runs. No cost budget is enforced.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::extractors::This;
use cel::objects::{Key, Map as CelMap};
use cel::{Context, Env, ExecutionError, Program, Value as Cel};
use machinery::FieldError;
use serde_json::Value;

use crate::schema::Schema;
use crate::validate::map_key;

/// One compiled `x-kubernetes-validations` entry.
#[derive(Clone)]
pub(crate) struct Rule {
    pub rule: String,
    program: Arc<Program>,
    message: String,
    message_expression: Option<Arc<Program>>,
    reason: Option<String>,
    field_path: Option<String>,
    optional_old_self: bool,
    uses_old_self: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("rule", &self.rule).finish()
    }
}

const REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// The environment every rule compiles and runs in (built once); admission webhooks'
/// `matchConditions` and admission policies share it.
pub fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Both extensions only fail when registered twice.
        let _ = env.add_extension(cel::extensions::strings);
        let _ = env.add_extension(cel::extensions::lists);
        let _ = env.add_extension(cel::extensions::math);
        Arc::new(env)
    })
    .clone()
}

impl Rule {
    /// Compiles one rule object; problems are reported under `path`
    /// (`...x-kubernetes-validations[0]`) as upstream's CRD validation does.
    pub fn compile(v: &Value, path: &str, errs: &mut Vec<FieldError>) -> Option<Rule> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        let rule = s("rule").unwrap_or_default();
        let message = s("message").unwrap_or_default();
        let before = errs.len();
        if rule.trim().is_empty() {
            errs.push(FieldError::required(
                format!("{path}.rule"),
                "rule is not specified",
            ));
        }
        if !message.is_empty() && message.trim().is_empty() {
            let e = "message must be non-empty if specified";
            errs.push(FieldError::invalid(
                format!("{path}.message"),
                Value::String(message.clone()),
                e,
            ));
        } else if message.contains('\n') {
            let e = "message must not contain line breaks";
            errs.push(FieldError::invalid(
                format!("{path}.message"),
                Value::String(message.clone()),
                e,
            ));
        } else if message.is_empty() && rule.contains('\n') {
            let e = "message must be specified if rule contains line breaks";
            errs.push(FieldError::required(format!("{path}.message"), e));
        }
        let reason = s("reason");
        if let Some(r) = &reason
            && !REASONS.contains(&r.as_str())
        {
            let p = format!("{path}.reason");
            errs.push(FieldError::not_supported(
                p,
                Value::String(r.clone()),
                &REASONS,
            ));
        }
        let field_path = s("fieldPath");
        if let Some(fp) = &field_path
            && let Err(e) = parse_field_path(fp)
        {
            let p = format!("{path}.fieldPath");
            errs.push(FieldError::invalid(p, Value::String(fp.clone()), e));
        }
        if errs.len() > before {
            return None;
        }
        let program = match env().compile(&rule) {
            Ok(p) => p,
            Err(e) => {
                let detail = format!("compilation failed: {e}");
                errs.push(FieldError::invalid(
                    format!("{path}.rule"),
                    v.clone(),
                    detail,
                ));
                return None;
            }
        };
        let message_expression = match s("messageExpression") {
            Some(m) if m.trim().is_empty() => {
                let e = "messageExpression must be non-empty if specified";
                errs.push(FieldError::invalid(
                    format!("{path}.messageExpression"),
                    Value::String(m),
                    e,
                ));
                return None;
            }
            Some(m) => match env().compile(&m) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    let detail = format!("messageExpression compilation failed: {e}");
                    let p = format!("{path}.messageExpression");
                    errs.push(FieldError::invalid(p, v.clone(), detail));
                    return None;
                }
            },
            None => None,
        };
        let uses_old_self = program.references().has_variable("oldSelf");
        let optional_old_self = v.get("optionalOldSelf").and_then(Value::as_bool) == Some(true);
        if optional_old_self && !uses_old_self {
            let p = format!("{path}.optionalOldSelf");
            errs.push(FieldError::forbidden(
                p,
                "may not be set if oldSelf is not used in rule",
            ));
            return None;
        }
        Some(Rule {
            rule,
            program: Arc::new(program),
            message: message.trim().to_string(),
            message_expression,
            reason,
            field_path: field_path.map(|f| normalize_field_path(&f)),
            optional_old_self,
            uses_old_self,
        })
    }

    /// `failed rule: <rule>`, or the rule's message.
    fn default_message(&self) -> String {
        if self.message.is_empty() {
            format!("failed rule: {}", self.rule.trim())
        } else {
            self.message.clone()
        }
    }

    fn error_string(&self) -> &str {
        if self.message.is_empty() {
            self.rule.trim()
        } else {
            &self.message
        }
    }
}

/// A rule's `fieldPath` must be a simple path: `.a.b`, `.a['b.c']`.
fn parse_field_path(fp: &str) -> Result<(), String> {
    if !fp.starts_with('.') && !fp.starts_with('[') {
        return Err("fieldPath must be a valid path: expected [ or . at position 0".into());
    }
    Ok(())
}

/// `.spec.foo` -> `spec.foo` (how upstream appends it to the node's path).
fn normalize_field_path(fp: &str) -> String {
    fp.trim_start_matches('.').to_string()
}

/// `field.Path.Child` on a path that may be the root (empty).
pub(crate) fn child_path(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// How upstream prints the root path (`(*field.Path)(nil).String()`).
fn shown(path: &str) -> String {
    if path.is_empty() {
        "<nil>".into()
    } else {
        path.to_string()
    }
}

/// Converts decoded JSON to a CEL value (integers are `int`, as Kubernetes' CEL sees
/// them).
pub fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => n
                .as_u64()
                .map(Cel::UInt)
                .unwrap_or(Cel::Float(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let map: HashMap<Key, Cel> = o
                .iter()
                .map(|(k, x)| (Key::String(Arc::new(k.clone())), to_cel(x)))
                .collect();
            Cel::Map(CelMap { map: Arc::new(map) })
        }
    }
}

fn list_of(this: &Cel) -> Result<&[Cel], ExecutionError> {
    match this {
        Cel::List(l) => Ok(l),
        other => Err(ExecutionError::unsupported_target_type(other.clone())),
    }
}

fn is_sorted(This(this): This<Cel>) -> Result<bool, ExecutionError> {
    let l = list_of(&this)?;
    Ok(l.windows(2)
        .all(|w| w[0].partial_cmp(&w[1]).is_some_and(|o| o.is_le())))
}

fn sum(This(this): This<Cel>) -> Result<Cel, ExecutionError> {
    let l = list_of(&this)?;
    let mut int: i64 = 0;
    let mut float: f64 = 0.0;
    let mut is_float = false;
    for x in l {
        match x {
            Cel::Int(i) => int = int.checked_add(*i).ok_or_else(|| overflow("sum"))?,
            Cel::UInt(u) => int = int.checked_add(*u as i64).ok_or_else(|| overflow("sum"))?,
            Cel::Float(f) => {
                is_float = true;
                float += f
            }
            other => return Err(ExecutionError::unsupported_target_type(other.clone())),
        }
    }
    Ok(if is_float {
        Cel::Float(float + int as f64)
    } else {
        Cel::Int(int)
    })
}

fn overflow(f: &str) -> ExecutionError {
    ExecutionError::function_error(f, "integer overflow")
}

fn extreme(this: &Cel, f: &str, want: std::cmp::Ordering) -> Result<Cel, ExecutionError> {
    let l = list_of(this)?;
    let mut best: Option<&Cel> = None;
    for x in l {
        if best.is_none_or(|b| x.partial_cmp(b) == Some(want)) {
            best = Some(x);
        }
    }
    best.cloned()
        .ok_or_else(|| ExecutionError::function_error(f, "list is empty"))
}

fn list_min(This(this): This<Cel>) -> Result<Cel, ExecutionError> {
    extreme(&this, "min", std::cmp::Ordering::Less)
}

fn list_max(This(this): This<Cel>) -> Result<Cel, ExecutionError> {
    extreme(&this, "max", std::cmp::Ordering::Greater)
}

/// A context with the Kubernetes functions and `self` (and `oldSelf`) bound.
fn context(v: &Value, old: Option<&Value>, optional_old: bool) -> Context<'static, 'static> {
    let mut ctx = Context::with_env(env());
    // These names are not declared by the environment, so adding them cannot fail.
    let _ = ctx.add_function("isSorted", is_sorted);
    let _ = ctx.add_function("sum", sum);
    let _ = ctx.add_function("min", list_min);
    let _ = ctx.add_function("max", list_max);
    ctx.add_variable_from_value("self", to_cel(v));
    if optional_old {
        use cel::common::types::CelOptional as Optional;
        let inner = old.map(|o| {
            let b: Box<dyn cel::common::value::Val> =
                to_cel(o).try_into().expect("plain values convert");
            b
        });
        ctx.add_variable_as_val("oldSelf", Box::new(Optional::from(inner)));
    } else if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(o));
    }
    ctx
}

/// Evaluates every rule of the schema tree against `v` (and `old`, the correlated old
/// value, on update). `path` is in `field.Path` form; the root is `""`.
pub(crate) fn validate(
    s: &Schema,
    v: &Value,
    old: Option<&Value>,
    is_update: bool,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if v.is_null() {
        return;
    }
    for rule in &s.rules {
        // Ratcheting: a value left unchanged by an update keeps passing its rules.
        if is_update && !rule.uses_old_self && old == Some(v) {
            continue;
        }
        if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
            continue;
        }
        evaluate(rule, s, v, old, path, errs);
    }
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let old_x = old.and_then(|o| o.get(k));
                if let Some(p) = s.property(k) {
                    validate(p, x, old_x, is_update, &child_path(path, k), errs);
                } else if let Some(a) = &s.additional {
                    validate(a, x, old_x, is_update, &format!("{path}[{k}]"), errs);
                }
            }
        }
        Value::Array(items) => {
            let Some(item) = &s.items else { return };
            let old_items = old.and_then(Value::as_array);
            for (i, x) in items.iter().enumerate() {
                // Only items of map lists correlate with old items (by their keys).
                let old_x = match (s.list_type.as_deref(), old_items) {
                    (Some("map"), Some(olds)) => {
                        let key = map_key(s, x);
                        olds.iter().find(|o| map_key(s, o) == key)
                    }
                    _ => None,
                };
                validate(item, x, old_x, is_update, &format!("{path}[{i}]"), errs);
            }
        }
        _ => {}
    }
}

fn evaluate(
    rule: &Rule,
    s: &Schema,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let ctx = context(v, old, rule.optional_old_self);
    let type_ = Value::String(s.type_name().to_string());
    match rule.program.execute(&ctx) {
        Ok(Cel::Bool(true)) => {}
        Ok(Cel::Bool(false)) => {
            let at = match &rule.field_path {
                Some(fp) => child_path(path, fp),
                None => path.to_string(),
            };
            let detail = rule
                .message_expression
                .as_ref()
                .and_then(|m| match m.execute(&ctx) {
                    Ok(Cel::String(s)) if !s.trim().is_empty() && !s.contains('\n') => {
                        Some(s.trim().to_string())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| rule.default_message());
            errs.push(error_for_reason(
                rule.reason.as_deref(),
                shown(&at),
                type_,
                detail,
            ));
        }
        Ok(_) => {
            let detail = format!("rule did not evaluate to a bool: {}", rule.error_string());
            errs.push(FieldError::invalid(shown(path), type_, detail));
        }
        Err(e) => {
            let msg = e.to_string();
            let detail = if msg.to_lowercase().contains("no such overload")
                || matches!(e, ExecutionError::UnexpectedType { .. })
            {
                format!(
                    "'{msg}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                    rule.error_string()
                )
            } else {
                format!("{msg} evaluating rule: {}", rule.error_string())
            };
            errs.push(FieldError::invalid(shown(path), type_, detail));
        }
    }
}

/// Upstream `fieldErrorForReason`.
fn error_for_reason(
    reason: Option<&str>,
    path: String,
    type_: Value,
    detail: String,
) -> FieldError {
    match reason {
        Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
        Some("FieldValueRequired") => FieldError::required(path, detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(path, type_),
        _ => FieldError::invalid(path, type_, detail),
    }
}

#[cfg(test)]
#[path = "cel_tests.rs"]
mod tests;
