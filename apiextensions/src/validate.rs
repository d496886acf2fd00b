//! OpenAPI value validation of a custom resource against its schema, with the messages
//! kube-openapi produces and the field errors apiextensions turns them into
//! (`spec.replicas: Invalid value: "string": spec.replicas in body must be of type
//! integer: "string"`). Also the `x-kubernetes-list-type` set/map uniqueness check.
//! CEL rules live in `cel`.

use machinery::FieldError;
use machinery::status::FieldErrorKind;
use serde_json::Value;

use crate::formats;
use crate::gofmt;
use crate::schema::Schema;

/// Errors found so far, and whether one of them keeps CEL rules from running (upstream
/// `hasBlockingErr`: type, required, enum, too long / too many).
#[derive(Default)]
pub(crate) struct Out {
    pub errs: Vec<FieldError>,
    pub blocking: bool,
}

impl Out {
    fn push(&mut self, e: FieldError, blocking: bool) {
        self.blocking |= blocking;
        self.errs.push(e);
    }
}

/// kube-openapi's child naming: `spec.replicas`, `spec.items[0]`.
fn child(name: &str, k: &str) -> String {
    if name.is_empty() {
        k.to_string()
    } else {
        format!("{name}.{k}")
    }
}

/// The JSON type kube-openapi infers for a value.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(name: &str, want: &str, got: &str) -> FieldError {
    FieldError::invalid(
        name,
        Value::String(got.into()),
        format!("{name} in body must be of type {want}: {got:?}"),
    )
}

fn type_matches(s: &Schema, v: &Value) -> bool {
    let got = json_type(v);
    match s.type_.as_str() {
        "" => true,
        "number" => got == "number" || got == "integer",
        "integer" => {
            got == "integer" || (got == "number" && v.as_f64().is_some_and(|f| f.fract() == 0.0))
        }
        t => t == got,
    }
}

/// Validates `v` (named `name`, kube-openapi style) against `s`.
pub(crate) fn validate(s: &Schema, v: &Value, name: &str, out: &mut Out) {
    if v.is_null() {
        if !s.type_.is_empty() && !s.nullable {
            out.push(type_error(name, &s.type_, "null"), true);
        }
        return;
    }
    if s.int_or_string && s.type_.is_empty() {
        if !matches!(json_type(v), "integer" | "string") {
            out.push(type_error(name, "integer,string", json_type(v)), true);
            return;
        }
    } else if !type_matches(s, v) {
        out.push(type_error(name, &s.type_, json_type(v)), true);
        return;
    }
    junctors(s, v, name, out);
    match v {
        Value::String(text) => string(s, text, v, name, out),
        Value::Number(_) => number(s, v, name, out),
        Value::Array(items) => array(s, items, v, name, out),
        Value::Object(_) => object(s, v, name, out),
        _ => {}
    }
    if let Some(allowed) = &s.enum_
        && !allowed.contains(v)
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            })
            .collect();
        let refs: Vec<&str> = supported.iter().map(String::as_str).collect();
        out.push(FieldError::not_supported(name, v.clone(), &refs), true);
    }
}

fn invalid(name: &str, v: &Value, detail: String) -> FieldError {
    FieldError::invalid(name, v.clone(), detail)
}

fn junctors(s: &Schema, v: &Value, name: &str, out: &mut Out) {
    let run = |sub: &Schema| {
        let mut o = Out::default();
        validate(sub, v, name, &mut o);
        o
    };
    let all: Vec<Out> = s.all_of.iter().map(run).collect();
    if all.iter().any(|o| !o.errs.is_empty()) {
        let none = all.iter().all(|o| !o.errs.is_empty());
        for o in all {
            out.errs.extend(o.errs);
            out.blocking |= o.blocking;
        }
        let extra = if none { ". None validated" } else { "" };
        let msg = format!("{name} must validate all the schemas (allOf){extra}");
        out.push(invalid(name, v, msg), false);
    }
    if !s.any_of.is_empty() {
        let results: Vec<Out> = s.any_of.iter().map(run).collect();
        if results.iter().all(|o| !o.errs.is_empty()) {
            let msg = format!("{name} must validate at least one schema (anyOf)");
            out.push(invalid(name, v, msg), false);
            if let Some(first) = results.into_iter().next() {
                out.errs.extend(first.errs);
            }
        }
    }
    if !s.one_of.is_empty() {
        let results: Vec<Out> = s.one_of.iter().map(run).collect();
        let valid = results.iter().filter(|o| o.errs.is_empty()).count();
        if valid != 1 {
            let extra = if valid > 1 {
                format!(". Found {valid} valid alternatives")
            } else {
                String::new()
            };
            let msg = format!("{name} must validate one and only one schema (oneOf){extra}");
            out.push(invalid(name, v, msg), false);
            if valid == 0
                && let Some(first) = results.into_iter().next()
            {
                out.errs.extend(first.errs);
            }
        }
    }
    if let Some(not) = &s.not
        && run(not).errs.is_empty()
    {
        let msg = format!("{name} must not validate the schema (not)");
        out.push(invalid(name, v, msg), false);
    }
}

fn string(s: &Schema, text: &str, v: &Value, name: &str, out: &mut Out) {
    let len = text.chars().count() as i64;
    if let Some(max) = s.max_length
        && len > max
    {
        let mut e = FieldError::too_long(name, max.max(0) as usize);
        if max == 1 {
            e.detail = e.detail.replace("bytes", "byte");
        }
        out.push(e, true);
    }
    if let Some(min) = s.min_length
        && len < min
    {
        let msg = format!("{name} in body should be at least {min} chars long");
        out.push(invalid(name, v, msg), false);
    }
    if let Some((p, re)) = &s.pattern
        && !re.is_match(text)
    {
        let msg = format!("{name} in body should match '{p}'");
        out.push(invalid(name, v, msg), false);
    }
    if !formats::is_valid(&s.format, text) {
        let msg = format!("{name} in body must be of type {}: {text:?}", s.format);
        out.push(FieldError::invalid(name, v.clone(), msg), true);
    }
}

fn number(s: &Schema, v: &Value, name: &str, out: &mut Out) {
    let Some(f) = v.as_f64() else { return };
    let is_int = v.is_i64() || v.is_u64();
    // kube-openapi compares an integer against the bound converted to an integer.
    let bound = |b: f64| {
        if is_int {
            (b as i64).to_string()
        } else {
            gofmt::float(b)
        }
    };
    if let Some(max) = s.maximum {
        let over = if s.exclusive_maximum {
            f >= max
        } else {
            f > max
        };
        if over {
            let rel = if s.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            let msg = format!("{name} in body should be {rel} {}", bound(max));
            out.push(invalid(name, v, msg), false);
        }
    }
    if let Some(min) = s.minimum {
        let under = if s.exclusive_minimum {
            f <= min
        } else {
            f < min
        };
        if under {
            let rel = if s.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let msg = format!("{name} in body should be {rel} {}", bound(min));
            out.push(invalid(name, v, msg), false);
        }
    }
    if let Some(m) = s.multiple_of {
        if m <= 0.0 {
            let msg = format!(
                "factor MultipleOf declared for {name} must be positive: {}",
                gofmt::float(m)
            );
            out.push(invalid(name, v, msg), false);
        } else {
            let q = f / m;
            if q.fract() != 0.0 {
                let msg = format!("{name} in body should be a multiple of {}", bound(m));
                out.push(invalid(name, v, msg), false);
            }
        }
    }
}

fn array(s: &Schema, items: &[Value], v: &Value, name: &str, out: &mut Out) {
    let n = items.len() as i64;
    if let Some(max) = s.max_items
        && n > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        out.push(
            FieldError {
                kind: FieldErrorKind::TooMany,
                field: name.into(),
                value: Some(Value::from(n)),
                detail: format!("must have at most {max} {unit}"),
            },
            true,
        );
    }
    if let Some(min) = s.min_items
        && n < min
    {
        let msg = format!("{name} in body should have at least {min} items");
        out.push(FieldError::invalid(name, Value::from(n), msg), false);
    }
    if s.unique_items {
        let dup = items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].contains(a));
        if dup {
            let msg = format!("{name} in body shouldn't contain duplicates");
            out.push(invalid(name, v, msg), false);
        }
    }
    if let Some(item) = &s.items {
        for (i, x) in items.iter().enumerate() {
            validate(item, x, &format!("{name}[{i}]"), out);
        }
    }
}

fn object(s: &Schema, v: &Value, name: &str, out: &mut Out) {
    let Some(o) = v.as_object() else { return };
    let n = o.len() as i64;
    if let Some(max) = s.max_properties
        && n > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        out.push(
            FieldError {
                kind: FieldErrorKind::TooMany,
                field: name.into(),
                value: Some(Value::from(n)),
                detail: format!("must have at most {max} {unit}"),
            },
            true,
        );
    }
    if let Some(min) = s.min_properties
        && n < min
    {
        let msg = format!("{name} in body should have at least {min} properties");
        out.push(FieldError::invalid(name, Value::from(n), msg), false);
    }
    for r in &s.required {
        if !o.contains_key(r) {
            out.push(FieldError::required(child(name, r), ""), true);
        }
    }
    for (k, x) in o {
        if let Some(p) = s.property(k) {
            validate(p, x, &child(name, k), out);
        } else if let Some(a) = &s.additional {
            validate(a, x, &child(name, k), out);
        }
    }
}

/// Upstream `ValidateListSetsAndMaps`: items of `x-kubernetes-list-type: set` lists must
/// be unique, and so must the keys of `map` lists. Paths are `field.Path` style.
pub(crate) fn list_sets_and_maps(s: &Schema, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if let Some(p) = s.property(k) {
                    list_sets_and_maps(p, x, &crate::cel::child_path(path, k), errs);
                } else if let Some(a) = &s.additional {
                    list_sets_and_maps(a, x, &format!("{path}[{k}]"), errs);
                }
            }
        }
        Value::Array(items) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for (i, x) in items.iter().enumerate() {
                        if items[..i].contains(x) {
                            errs.push(FieldError::duplicate(format!("{path}[{i}]"), x.clone()));
                        }
                    }
                }
                Some("map") => {
                    let keys: Vec<Value> = items.iter().map(|x| map_key(s, x)).collect();
                    for (i, k) in keys.iter().enumerate() {
                        if keys[..i].contains(k) {
                            errs.push(FieldError::duplicate(format!("{path}[{i}]"), k.clone()));
                        }
                    }
                }
                _ => {}
            }
            if let Some(item) = &s.items {
                for (i, x) in items.iter().enumerate() {
                    list_sets_and_maps(item, x, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

/// The key fields of a `map` list item, as an object (missing keys take the schema
/// default, as upstream does).
pub(crate) fn map_key(s: &Schema, item: &Value) -> Value {
    let mut key = serde_json::Map::new();
    for k in &s.list_map_keys {
        let dflt = s
            .items
            .as_ref()
            .and_then(|i| i.property(k))
            .and_then(|p| p.default.clone());
        if let Some(x) = item.get(k).cloned().or(dflt) {
            key.insert(k.clone(), x);
        }
    }
    Value::Object(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value, obj: Value) -> Vec<String> {
        let mut errs = vec![];
        let s = Schema::parse(&schema, "", &mut errs);
        let mut out = Out::default();
        validate(&s, &obj, "", &mut out);
        out.errs.iter().map(FieldError::message).collect()
    }

    fn spec(props: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
    }

    // Messages from kube-openapi's errors/schema.go as apiextensions wraps them
    // (pkg/apiserver/validation: kubeOpenAPIResultToFieldErrors).
    #[test]
    fn type_errors() {
        let e = check(
            spec(json!({"replicas": {"type": "integer"}})),
            json!({"spec": {"replicas": "x"}}),
        );
        assert_eq!(
            e,
            [
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
            ]
        );
        let e = check(
            spec(json!({"a": {"type": "string"}})),
            json!({"spec": {"a": null}}),
        );
        assert_eq!(
            e,
            [r#"spec.a: Invalid value: "null": spec.a in body must be of type string: "null""#]
        );
        let e = check(
            spec(json!({"a": {"type": "string", "nullable": true}})),
            json!({"spec": {"a": null}}),
        );
        assert!(e.is_empty());
        let e = check(
            spec(json!({"a": {"type": "integer"}})),
            json!({"spec": {"a": 2.0}}),
        );
        assert!(e.is_empty(), "a float that is an integer is an integer");
        let e = check(
            spec(json!({"a": {"type": "number"}})),
            json!({"spec": {"a": 2}}),
        );
        assert!(e.is_empty());
    }

    #[test]
    fn required_enum_and_lengths() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["foo"], "properties": {
                "foo": {"type": "string", "enum": ["a", "b"]},
                "bar": {"type": "string", "maxLength": 3, "minLength": 2, "pattern": "^[a-z]+$"}}}}});
        let e = check(schema.clone(), json!({"spec": {}}));
        assert_eq!(e, ["spec.foo: Required value"]);
        let e = check(schema.clone(), json!({"spec": {"foo": "x"}}));
        assert_eq!(
            e,
            [r#"spec.foo: Unsupported value: "x": supported values: "a", "b""#]
        );
        let e = check(schema.clone(), json!({"spec": {"foo": "a", "bar": "ABCD"}}));
        assert_eq!(
            e,
            [
                "spec.bar: Too long: must have at most 3 bytes",
                r#"spec.bar: Invalid value: "ABCD": spec.bar in body should match '^[a-z]+$'"#
            ]
        );
        let e = check(schema, json!({"spec": {"foo": "a", "bar": "a"}}));
        assert_eq!(
            e,
            [r#"spec.bar: Invalid value: "a": spec.bar in body should be at least 2 chars long"#]
        );
    }

    #[test]
    fn numbers() {
        let s =
            spec(json!({"n": {"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 2}}));
        assert_eq!(
            check(s.clone(), json!({"spec": {"n": 11}})),
            [
                "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10",
                "spec.n: Invalid value: 11: spec.n in body should be a multiple of 2"
            ]
        );
        assert_eq!(
            check(s, json!({"spec": {"n": 0}})),
            ["spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1"]
        );
        let s =
            spec(json!({"f": {"type": "number", "exclusiveMaximum": true, "maximum": 1000000}}));
        assert_eq!(
            check(s, json!({"spec": {"f": 1000000.5}})),
            ["spec.f: Invalid value: 1000000.5: spec.f in body should be less than 1e+06"]
        );
    }

    #[test]
    fn arrays_and_objects() {
        let s = spec(json!({"l": {"type": "array", "maxItems": 1, "minItems": 1,
            "items": {"type": "string"}}, "m": {"type": "object", "maxProperties": 1,
            "additionalProperties": {"type": "integer"}}}));
        assert_eq!(
            check(s.clone(), json!({"spec": {"l": ["a", 1]}})),
            [
                "spec.l: Too many: 2: must have at most 1 item",
                r#"spec.l[1]: Invalid value: "integer": spec.l[1] in body must be of type string: "integer""#
            ]
        );
        assert_eq!(
            check(s.clone(), json!({"spec": {"l": []}})),
            ["spec.l: Invalid value: 0: spec.l in body should have at least 1 items"]
        );
        assert_eq!(
            check(s, json!({"spec": {"m": {"a": 1, "b": "x"}}})),
            [
                "spec.m: Too many: 2: must have at most 1 item",
                r#"spec.m.b: Invalid value: "string": spec.m.b in body must be of type integer: "string""#
            ]
        );
    }

    #[test]
    fn int_or_string_and_formats() {
        let s = spec(json!({"p": {"x-kubernetes-int-or-string": true},
            "u": {"type": "string", "format": "uuid"}}));
        assert!(check(s.clone(), json!({"spec": {"p": 1}})).is_empty());
        assert!(check(s.clone(), json!({"spec": {"p": "50%"}})).is_empty());
        assert_eq!(check(s.clone(), json!({"spec": {"p": true}})).len(), 1);
        assert_eq!(
            check(s, json!({"spec": {"u": "nope"}})),
            [r#"spec.u: Invalid value: "nope": spec.u in body must be of type uuid: "nope""#]
        );
    }

    #[test]
    fn list_types() {
        let mut errs = vec![];
        let s = Schema::parse(
            &json!({"type": "object", "properties": {
                "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
            "",
            &mut errs,
        );
        list_sets_and_maps(
            &s,
            &json!({"s": ["a", "b", "a"], "m": [{"name": "x"}, {"name": "x", "v": 1}]}),
            "spec",
            &mut errs,
        );
        let msgs: Vec<String> = errs.iter().map(FieldError::message).collect();
        assert_eq!(
            msgs,
            [
                r#"spec.s[2]: Duplicate value: "a""#,
                r#"spec.m[1]: Duplicate value: {"name":"x"}"#
            ]
        );
    }
}
