//! Small shared pieces: tolerant JSON accessors (any field may be missing or of the wrong
//! type), field-path building, and the checks several API groups share (labels, label
//! selectors, int-or-percent, quantities, immutability).

use machinery::FieldError;
use machinery::labels::Selector;
use machinery::names;
use serde_json::{Map, Value, json};

/// The error list every validator returns.
pub type Errs = Vec<FieldError>;

/// `field is immutable`, upstream's `FieldImmutableErrorMsg`.
pub const IMMUTABLE: &str = "field is immutable";
/// `must be greater than or equal to 0`, upstream's `IsNegativeErrorMsg`.
pub const NEGATIVE: &str = "must be greater than or equal to 0";

/// `base.name` (or `name` at the root), as upstream's `Path.Child`.
pub fn child(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

/// `base[i]`, as upstream's `Path.Index`.
pub fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `base[key]`, as upstream's `Path.Key`.
pub fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

/// A string field, or `None` when missing or not a string.
pub fn get_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// A string field, empty when missing (Go's zero value).
pub fn str_or_empty<'a>(v: &'a Value, k: &str) -> &'a str {
    get_str(v, k).unwrap_or("")
}

/// An integer field (also accepting integral floats).
pub fn get_int(v: &Value, k: &str) -> Option<i64> {
    let f = v.get(k)?;
    f.as_i64()
        .or_else(|| f.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
}

/// A boolean field.
pub fn get_bool(v: &Value, k: &str) -> Option<bool> {
    v.get(k).and_then(Value::as_bool)
}

/// An array field, empty when missing or not an array.
pub fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An object field, if present and an object.
pub fn obj<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    v.get(k).and_then(Value::as_object)
}

/// Whether a field is present and not null.
pub fn has(v: &Value, k: &str) -> bool {
    v.get(k).is_some_and(|x| !x.is_null())
}

/// Sets `k` to `value` unless it is already present and non-null (`if x == nil { x = d }`).
pub fn set_default(v: &mut Value, k: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let missing = m.get(k).is_none_or(Value::is_null);
        if missing {
            m.insert(k.to_string(), value);
        }
    }
}

/// Sets `k` to `value` when missing, null or the empty string (Go's `if x == "" { x = d }`).
pub fn set_default_str(v: &mut Value, k: &str, value: &str) {
    if let Some(m) = v.as_object_mut() {
        let missing = m
            .get(k)
            .is_none_or(|x| x.is_null() || x.as_str() == Some(""));
        if missing {
            m.insert(k.to_string(), Value::String(value.to_string()));
        }
    }
}

/// Runs `f` on every element of the array field `k`.
pub fn for_each_mut(v: &mut Value, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(k).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

/// Runs `f` on the object at the JSON pointer, if it is an object.
pub fn with_mut(v: &mut Value, pointer: &str, f: impl FnOnce(&mut Value)) {
    if let Some(x) = v.pointer_mut(pointer).filter(|x| x.is_object()) {
        f(x);
    }
}

/// `metav1validation.ValidateLabels`: every key a qualified name, every value a label value.
pub fn validate_labels(labels: Option<&Map<String, Value>>, path: &str) -> Errs {
    let mut errs = Errs::new();
    for (k, v) in labels.into_iter().flatten() {
        for msg in names::is_qualified_name(k) {
            errs.push(FieldError::invalid(path, json!(k), msg));
        }
        let value = v.as_str().unwrap_or("");
        for msg in names::is_valid_label_value(value) {
            errs.push(FieldError::invalid(path, json!(value), msg));
        }
    }
    errs
}

/// `ValidateLabelName`-style check of one qualified name.
pub fn validate_qualified_name(value: &str, path: &str) -> Errs {
    names::is_qualified_name(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, json!(value), m))
        .collect()
}

/// `ValidateDNS1123Label`.
pub fn validate_dns1123_label(value: &str, path: &str) -> Errs {
    names::is_dns1123_label(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, json!(value), m))
        .collect()
}

/// `ValidateDNS1123Subdomain`.
pub fn validate_dns1123_subdomain(value: &str, path: &str) -> Errs {
    names::is_dns1123_subdomain(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, json!(value), m))
        .collect()
}

/// `ValidateNonnegativeField` for an optional integer field of `v`.
pub fn nonnegative(v: &Value, k: &str, path: &str) -> Errs {
    match get_int(v, k) {
        Some(n) if n < 0 => vec![FieldError::invalid(child(path, k), json!(n), NEGATIVE)],
        _ => Vec::new(),
    }
}

/// `ValidateImmutableField`: the new value must deep-equal the old one.
pub fn immutable(new: &Value, old: &Value, path: &str) -> Errs {
    if semantic_eq(new, old) {
        Vec::new()
    } else {
        vec![FieldError::invalid(path, new.clone(), IMMUTABLE)]
    }
}

/// Upstream compares typed values, so a missing field, `null`, and an empty list or map
/// are the same. This treats them so when comparing JSON.
pub fn semantic_eq(a: &Value, b: &Value) -> bool {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().chain(y.keys());
            keys.into_iter().all(|k| {
                semantic_eq(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(p, q))
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ if empty(a) && empty(b) => true,
        _ => a == b,
    }
}

/// `metav1validation.ValidateLabelSelector`.
pub fn validate_label_selector(sel: &Value, path: &str) -> Errs {
    let mut errs = validate_labels(obj(sel, "matchLabels"), &child(path, "matchLabels"));
    let exprs_path = child(path, "matchExpressions");
    for (i, req) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = index(&exprs_path, i);
        let values = arr(req, "values");
        match str_or_empty(req, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(
                child(&p, "operator"),
                json!(op),
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_qualified_name(
            str_or_empty(req, "key"),
            &child(&p, "key"),
        ));
        for (j, value) in values.iter().enumerate() {
            let value = value.as_str().unwrap_or("");
            for msg in names::is_valid_label_value(value) {
                errs.push(FieldError::invalid(
                    index(&child(&p, "values"), j),
                    json!(value),
                    msg,
                ));
            }
        }
    }
    errs
}

/// Whether a `metav1.LabelSelector` matches the labels; `None` when the selector cannot
/// be compiled.
pub fn selector_matches(sel: &Value, labels: Option<&Map<String, Value>>) -> Option<bool> {
    let s = Selector::from_label_selector(sel).ok()?;
    let empty = Map::new();
    Some(s.matches(labels.unwrap_or(&empty)))
}

/// Whether a `metav1.LabelSelector` has no requirements at all.
pub fn selector_is_empty(sel: &Value) -> bool {
    obj(sel, "matchLabels").is_none_or(Map::is_empty) && arr(sel, "matchExpressions").is_empty()
}

/// The value of an int-or-string, and whether it was a percentage.
pub fn int_or_percent(v: &Value) -> Option<(i64, bool)> {
    match v {
        Value::Number(n) => n.as_i64().map(|n| (n, false)),
        Value::String(s) => s
            .strip_suffix('%')
            .and_then(|d| d.parse().ok())
            .map(|n| (n, true)),
        _ => None,
    }
}

/// apps' `ValidatePositiveIntOrPercent`.
pub fn positive_int_or_percent(v: &Value, path: &str) -> Errs {
    match v {
        Value::String(s) => names::is_valid_percent(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, v.clone(), m))
            .collect(),
        Value::Number(n) if n.as_i64().is_some_and(|n| n < 0) => {
            vec![FieldError::invalid(path, v.clone(), NEGATIVE)]
        }
        Value::Number(_) | Value::Null => Vec::new(),
        _ => vec![FieldError::invalid(
            path,
            v.clone(),
            "must be an integer or percentage (e.g '5%')",
        )],
    }
}

/// apps' `IsNotMoreThan100Percent`.
pub fn not_more_than_100_percent(v: &Value, path: &str) -> Errs {
    match int_or_percent(v) {
        Some((n, true)) if n > 100 => vec![FieldError::invalid(
            path,
            v.clone(),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

/// A `resource.Quantity` as a number, `None` when it does not parse.
pub fn parse_quantity(v: &Value) -> Option<f64> {
    let s = match v {
        Value::String(s) => s.trim(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num == "+" || num == "-" || num.matches('.').count() > 1 {
        return None;
    }
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e => {
            let exp = e.strip_prefix(['e', 'E'])?;
            10f64.powi(exp.parse().ok()?)
        }
    };
    Some(base * mult)
}

/// The message upstream's decoder gives for a malformed quantity.
pub const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The quantity as text, for messages.
pub fn quantity_text(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    }
}

/// `ValidateNonnegativeQuantity` (plus the parse check a typed decoder would do).
pub fn nonnegative_quantity(v: &Value, path: &str) -> Errs {
    match parse_quantity(v) {
        None => vec![FieldError::invalid(path, quantity_text(v), QUANTITY_SYNTAX)],
        Some(q) if q < 0.0 => vec![FieldError::invalid(path, quantity_text(v), NEGATIVE)],
        Some(_) => Vec::new(),
    }
}

/// Checks an enum-like string field: Required when empty, NotSupported when unknown.
pub fn one_of(v: &Value, k: &str, path: &str, supported: &[&str], required: bool) -> Errs {
    let p = child(path, k);
    match get_str(v, k) {
        None | Some("") if required => vec![FieldError::required(p, "")],
        None | Some("") => Vec::new(),
        Some(s) if supported.contains(&s) => Vec::new(),
        Some(s) => vec![FieldError::not_supported(p, json!(s), supported)],
    }
}

/// `ValidatePortNumOrName`: an int-or-string port.
pub fn port_or_name(port: &Value, path: &str) -> Errs {
    let num = |n: i64| -> Errs {
        names::is_valid_port_num(n)
            .into_iter()
            .map(|m| FieldError::invalid(path, json!(n), m))
            .collect()
    };
    match port {
        Value::String(s) => names::is_valid_port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, json!(s), m))
            .collect(),
        Value::Number(n) => num(n.as_i64().unwrap_or(0)),
        _ => num(0),
    }
}

/// Stands in for upstream's `field.NotFound` (`Not found: "x"`), which the shared error
/// vocabulary does not have yet.
pub fn not_found(path: impl Into<String>, value: Value) -> FieldError {
    FieldError::invalid(path, value, "not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity(&json!("500m")), Some(0.5));
        assert_eq!(parse_quantity(&json!("1Gi")), Some(1073741824.0));
        assert_eq!(parse_quantity(&json!("1e3")), Some(1000.0));
        assert_eq!(parse_quantity(&json!(2)), Some(2.0));
        assert_eq!(parse_quantity(&json!("abc")), None);
        assert_eq!(parse_quantity(&json!("1Xi")), None);
        assert_eq!(
            nonnegative_quantity(&json!("-1"), "p")[0].message(),
            "p: Invalid value: \"-1\": must be greater than or equal to 0"
        );
    }

    #[test]
    fn semantic_equality_ignores_empty() {
        assert!(semantic_eq(&json!({"a": null, "b": []}), &json!({})));
        assert!(semantic_eq(&json!({"a": 1}), &json!({"a": 1.0})));
        assert!(!semantic_eq(&json!({"a": 1}), &json!({"a": 2})));
    }

    #[test]
    fn label_selector_rules() {
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Bogus"}]});
        let msgs: Vec<String> = validate_label_selector(&sel, "spec.selector")
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            msgs,
            vec![
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].operator: Invalid value: \"Bogus\": not a valid selector operator",
            ]
        );
        assert_eq!(
            selector_matches(
                &json!({"matchLabels": {"a": "b"}}),
                json!({"a": "b"}).as_object()
            ),
            Some(true)
        );
    }

    #[test]
    fn int_or_percent_checks() {
        assert!(positive_int_or_percent(&json!("25%"), "p").is_empty());
        assert_eq!(positive_int_or_percent(&json!(-1), "p")[0].detail, NEGATIVE);
        assert_eq!(
            not_more_than_100_percent(&json!("101%"), "p")[0].message(),
            "p: Invalid value: \"101%\": must not be greater than 100%"
        );
    }

    #[test]
    fn enums() {
        assert_eq!(
            one_of(&json!({"x": "B"}), "x", "spec", &["A"], true)[0].message(),
            "spec.x: Unsupported value: \"B\": supported values: \"A\""
        );
        assert_eq!(
            one_of(&json!({}), "x", "spec", &["A"], true)[0].message(),
            "spec.x: Required value"
        );
    }
}
