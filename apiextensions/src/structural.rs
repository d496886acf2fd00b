//! Whether a CRD version's schema is structural (upstream
//! `apiserver/schema/validation.go` and the v1 CRD schema rules): non-empty types where
//! upstream requires them, no `properties` with `additionalProperties`, nothing but
//! value validations under `allOf`/`anyOf`/`oneOf`/`not`, restricted root `metadata`.

use machinery::FieldError;
use serde_json::{Map, Value};

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Field,
    Item,
    /// Inside `allOf`/`anyOf`/`oneOf`/`not`.
    Junctor,
}

/// Checks the schema at `path` (`spec.versions[0].schema.openAPIV3Schema`).
pub(crate) fn check(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    node(schema, path, Level::Root, errs);
}

fn node(v: &Value, path: &str, level: Level, errs: &mut Vec<FieldError>) {
    let Some(o) = v.as_object() else { return };
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
    let b = |k: &str| o.get(k).and_then(Value::as_bool);
    let type_ = s("type");
    let preserve = b("x-kubernetes-preserve-unknown-fields") == Some(true);
    let int_or_string = b("x-kubernetes-int-or-string") == Some(true);
    let embedded = b("x-kubernetes-embedded-resource") == Some(true);
    let p = |k: &str| format!("{path}.{k}");
    if level == Level::Junctor {
        for k in [
            "type",
            "nullable",
            "default",
            "additionalProperties",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource",
            "x-kubernetes-int-or-string",
            "x-kubernetes-list-type",
            "x-kubernetes-validations",
        ] {
            if o.contains_key(k) {
                errs.push(FieldError::forbidden(
                    p(k),
                    "must be empty to be structural",
                ));
            }
        }
    } else if type_.is_empty() && !preserve && !int_or_string {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            _ => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(p("type"), detail));
    }
    if level == Level::Root && !type_.is_empty() && type_ != "object" {
        errs.push(FieldError::invalid(
            p("type"),
            Value::String(type_.into()),
            "must be object at the root",
        ));
    }
    if b("x-kubernetes-preserve-unknown-fields") == Some(false) {
        errs.push(FieldError::invalid(
            p("x-kubernetes-preserve-unknown-fields"),
            Value::Bool(false),
            "must be true or undefined",
        ));
    }
    if embedded && !type_.is_empty() && type_ != "object" {
        let d = "must be object if x-kubernetes-embedded-resource is true";
        errs.push(FieldError::invalid(
            p("type"),
            Value::String(type_.into()),
            d,
        ));
    }
    if embedded && !preserve && !o.contains_key("properties") {
        let d = "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields";
        errs.push(FieldError::required(p("properties"), d));
    }
    if int_or_string && !type_.is_empty() {
        let d = "must be empty if x-kubernetes-int-or-string is true";
        errs.push(FieldError::invalid(
            p("type"),
            Value::String(type_.into()),
            d,
        ));
    }
    if o.contains_key("properties") && o.contains_key("additionalProperties") {
        errs.push(FieldError::forbidden(
            p("additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if o.get("additionalProperties") == Some(&Value::Bool(false)) {
        errs.push(FieldError::forbidden(
            p("additionalProperties"),
            "additionalProperties cannot be set to false",
        ));
    }
    if b("uniqueItems") == Some(true) {
        let d = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic";
        errs.push(FieldError::forbidden(p("uniqueItems"), d));
    }
    for k in [
        "$ref",
        "definitions",
        "id",
        "$schema",
        "dependencies",
        "additionalItems",
        "patternProperties",
    ] {
        if o.contains_key(k) {
            errs.push(FieldError::forbidden(p(k), format!("{k} is not supported")));
        }
    }
    if type_ == "array" && !o.contains_key("items") && level != Level::Junctor {
        errs.push(FieldError::required(p("items"), "must be specified"));
    }
    list_type(o, type_, path, errs);
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        if level == Level::Root {
            root_metadata(props, path, errs);
        }
        let child = if level == Level::Junctor {
            Level::Junctor
        } else {
            Level::Field
        };
        for (k, x) in props {
            node(x, &format!("{path}.properties[{k}]"), child, errs);
        }
    }
    if let Some(a) = o.get("additionalProperties").filter(|a| a.is_object()) {
        let child = if level == Level::Junctor {
            Level::Junctor
        } else {
            Level::Field
        };
        node(a, &p("additionalProperties"), child, errs);
    }
    if let Some(i) = o.get("items").filter(|i| i.is_object()) {
        let child = if level == Level::Junctor {
            Level::Junctor
        } else {
            Level::Item
        };
        node(i, &p("items"), child, errs);
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        for (i, x) in o
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            node(x, &format!("{path}.{k}[{i}]"), Level::Junctor, errs);
        }
    }
    if let Some(n) = o.get("not") {
        node(n, &p("not"), Level::Junctor, errs);
    }
}

fn list_type(o: &Map<String, Value>, type_: &str, path: &str, errs: &mut Vec<FieldError>) {
    let Some(lt) = o.get("x-kubernetes-list-type").and_then(Value::as_str) else {
        if o.contains_key("x-kubernetes-list-map-keys") {
            let d = "must only be set if x-kubernetes-list-type is map";
            errs.push(FieldError::forbidden(
                format!("{path}.x-kubernetes-list-map-keys"),
                d,
            ));
        }
        return;
    };
    let at = format!("{path}.x-kubernetes-list-type");
    if !["atomic", "map", "set"].contains(&lt) {
        errs.push(FieldError::not_supported(
            at,
            Value::String(lt.into()),
            &["atomic", "map", "set"],
        ));
        return;
    }
    if type_ != "array" {
        errs.push(FieldError::invalid(
            at,
            Value::String(lt.into()),
            "must only be used for arrays",
        ));
        return;
    }
    let keys = o
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array);
    if lt == "map" && keys.is_none_or(|k| k.is_empty()) {
        let d = "must not be empty if x-kubernetes-list-type is map";
        errs.push(FieldError::required(
            format!("{path}.x-kubernetes-list-map-keys"),
            d,
        ));
    }
    if lt != "map" && keys.is_some() {
        let d = "must only be set if x-kubernetes-list-type is map";
        errs.push(FieldError::forbidden(
            format!("{path}.x-kubernetes-list-map-keys"),
            d,
        ));
    }
}

/// At the root, `metadata` may only restrict `name` and `generateName`.
fn root_metadata(props: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = props.get("metadata").and_then(Value::as_object) else {
        return;
    };
    let allowed_props = m
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
    let allowed_keys = m.keys().all(|k| k == "type" || k == "properties");
    if !allowed_props || !allowed_keys || m.get("type").is_some_and(|t| t != "object") {
        let d = "must not specify anything other than name and generateName, but metadata is implicitly specified";
        errs.push(FieldError::forbidden(
            format!("{path}.properties[metadata]"),
            d,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value) -> Vec<String> {
        let mut errs = vec![];
        check(
            &schema,
            "spec.versions[0].schema.openAPIV3Schema",
            &mut errs,
        );
        errs.iter().map(FieldError::message).collect()
    }

    // Messages from upstream's structural schema validation.
    #[test]
    fn types_required() {
        assert_eq!(
            run(json!({"type": "object", "properties": {"spec": {"properties": {}}}})),
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
            ]
        );
        assert_eq!(
            run(json!({"properties": {}})),
            [
                "spec.versions[0].schema.openAPIV3Schema.type: Required value: must not be empty at the root"
            ]
        );
        assert_eq!(
            run(json!({"type": "object", "properties": {"l": {"type": "array", "items": {}}}})),
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[l].items.type: Required value: must not be empty for specified array items"
            ]
        );
        assert!(
            run(
                json!({"type": "object", "properties": {"x": {"x-kubernetes-int-or-string": true},
            "y": {"x-kubernetes-preserve-unknown-fields": true}}})
            )
            .is_empty()
        );
    }

    #[test]
    fn forbidden_shapes() {
        let e = run(json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "m": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "j": {"type": "string", "anyOf": [{"type": "string"}]}}}));
        assert_eq!(
            e,
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
                "spec.versions[0].schema.openAPIV3Schema.properties[m].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
                "spec.versions[0].schema.openAPIV3Schema.properties[j].anyOf[0].type: Forbidden: must be empty to be structural",
            ]
        );
    }
}
