//! Rendering canonical schemas into the two dialects clients parse: Swagger 2.0 (gnostic's
//! strict v2 parser rejects unknown keywords) and OpenAPI 3.0.
//!
//! Both walks are schema-aware: they descend only into keywords that hold subschemas, so a
//! *property* named `$ref`, `type` or `const` (as JSONSchemaProps has) is never mistaken for
//! a keyword.

use serde_json::{Map, Value, json};

use crate::definitions::{INT_OR_STRING, QUANTITY, REF_PREFIX};

/// The target dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Swagger 2.0, references `#/definitions/<name>`.
    V2,
    /// OpenAPI 3.0, references `#/components/schemas/<name>`.
    V3,
}

/// Schema keywords Swagger 2.0 allows (besides `x-` extensions).
const V2_KEYWORDS: &[&str] = &[
    "$ref",
    "format",
    "title",
    "description",
    "default",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "enum",
    "additionalProperties",
    "type",
    "items",
    "allOf",
    "properties",
    "readOnly",
    "example",
];

/// Keywords OpenAPI 3.0 adds to [`V2_KEYWORDS`].
const V3_EXTRA_KEYWORDS: &[&str] = &[
    "oneOf",
    "anyOf",
    "not",
    "nullable",
    "writeOnly",
    "deprecated",
];

impl Dialect {
    /// The reference prefix of this dialect.
    pub(crate) fn ref_prefix(self) -> &'static str {
        match self {
            Dialect::V2 => "#/definitions/",
            Dialect::V3 => "#/components/schemas/",
        }
    }

    /// A reference to definition `name`.
    pub(crate) fn reference(self, name: &str) -> Value {
        json!({ "$ref": format!("{}{name}", self.ref_prefix()) })
    }

    fn allows(self, keyword: &str) -> bool {
        keyword.starts_with("x-")
            || V2_KEYWORDS.contains(&keyword)
            || (self == Dialect::V3 && V3_EXTRA_KEYWORDS.contains(&keyword))
    }
}

/// Converts definition `name`'s canonical schema into `dialect`.
pub(crate) fn definition(name: &str, schema: &Value, dialect: Dialect) -> Value {
    if dialect == Dialect::V3 {
        // Upstream publishes the two scalar wrappers as unions in v3.
        let description = schema.get("description").cloned().unwrap_or(Value::Null);
        let union = match name {
            INT_OR_STRING => Some(json!({
                "description": description,
                "format": "int-or-string",
                "oneOf": [{ "type": "integer" }, { "type": "string" }],
            })),
            QUANTITY => Some(json!({
                "description": description,
                "oneOf": [{ "type": "string" }, { "type": "number" }],
            })),
            _ => None,
        };
        if let Some(mut union) = union {
            if description.is_null() {
                union
                    .as_object_mut()
                    .map(|object| object.remove("description"));
            }
            return union;
        }
    }
    convert(schema, dialect)
}

/// Converts one canonical schema into `dialect`. Anything that is not an object schema
/// (`true`, `false`, junk) becomes the empty schema.
pub(crate) fn convert(schema: &Value, dialect: Dialect) -> Value {
    match schema {
        Value::Object(object) => Value::Object(convert_object(object, dialect)),
        _ => Value::Object(Map::new()),
    }
}

fn convert_object(schema: &Map<String, Value>, dialect: Dialect) -> Map<String, Value> {
    let mut out = Map::new();
    let mut nullable = false;
    for (key, value) in schema {
        match key.as_str() {
            "$ref" => {
                if let Value::String(target) = value {
                    let name = target
                        .strip_prefix(REF_PREFIX)
                        .or_else(|| target.strip_prefix(Dialect::V3.ref_prefix()));
                    let target = match name {
                        Some(name) => format!("{}{name}", dialect.ref_prefix()),
                        None => target.clone(),
                    };
                    out.insert(key.clone(), target.into());
                }
            }
            "type" => nullable |= convert_type(value, &mut out),
            "const" if !schema.contains_key("enum") => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "examples" if !schema.contains_key("example") => {
                if let Some(first) = value.as_array().and_then(|values| values.first()) {
                    out.insert("example".into(), first.clone());
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" => convert_exclusive(key, value, &mut out),
            "properties" => {
                if let Value::Object(properties) = value {
                    let converted = properties
                        .iter()
                        .map(|(name, sub)| (name.clone(), convert(sub, dialect)));
                    out.insert(key.clone(), Value::Object(converted.collect()));
                }
            }
            "items" => match value {
                Value::Array(tuple) => {
                    if let Some(first) = tuple.first() {
                        out.insert(key.clone(), convert(first, dialect));
                    }
                }
                _ => {
                    out.insert(key.clone(), convert(value, dialect));
                }
            },
            "additionalProperties" => {
                let converted = if value.is_boolean() {
                    value.clone()
                } else {
                    convert(value, dialect)
                };
                out.insert(key.clone(), converted);
            }
            "allOf" | "anyOf" | "oneOf" if dialect.allows(key) => {
                if let Value::Array(schemas) = value {
                    out.insert(
                        key.clone(),
                        schemas.iter().map(|sub| convert(sub, dialect)).collect(),
                    );
                }
            }
            "not" if dialect.allows(key) => {
                out.insert(key.clone(), convert(value, dialect));
            }
            "required" if value.as_array().is_some_and(|fields| !fields.is_empty()) => {
                out.insert(key.clone(), value.clone());
            }
            // An empty or malformed `required` says nothing; Swagger 2 forbids an empty one.
            "required" => {}
            other if dialect.allows(other) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    if nullable && dialect == Dialect::V3 {
        out.insert("nullable".into(), true.into());
    }
    finish(out, dialect)
}

/// Dialect-specific touches once a schema's keywords are converted.
fn finish(mut out: Map<String, Value>, dialect: Dialect) -> Map<String, Value> {
    match dialect {
        Dialect::V2 => {
            // A CRD-style int-or-string has no type of its own; v2 spells it as a format.
            if out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
                && !out.contains_key("type")
            {
                out.insert("type".into(), "string".into());
                out.insert("format".into(), "int-or-string".into());
            }
            out
        }
        Dialect::V3 => {
            // OpenAPI 3.0 ignores siblings of `$ref`; upstream wraps the reference in allOf.
            if out.len() > 1
                && let Some(target) = out.remove("$ref")
            {
                let mut wrapped = Map::new();
                wrapped.insert("allOf".into(), json!([{ "$ref": target }]));
                wrapped.extend(out);
                return wrapped;
            }
            out
        }
    }
}

/// Writes a single `type`; returns whether `null` was among the types.
fn convert_type(value: &Value, out: &mut Map<String, Value>) -> bool {
    match value {
        Value::String(ty) if ty == "null" => true,
        Value::String(_) => {
            out.insert("type".into(), value.clone());
            false
        }
        Value::Array(types) => {
            let non_null: Vec<&Value> = types
                .iter()
                .filter(|ty| ty.as_str() != Some("null"))
                .collect();
            if let [single] = non_null.as_slice() {
                out.insert("type".into(), (*single).clone());
            }
            non_null.len() != types.len()
        }
        _ => false,
    }
}

/// Draft 2019+ writes exclusive bounds as numbers; both OpenAPI dialects want booleans.
fn convert_exclusive(key: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Bool(_) => {
            out.insert(key.into(), value.clone());
        }
        Value::Number(_) => {
            let bound = if key == "exclusiveMinimum" {
                "minimum"
            } else {
                "maximum"
            };
            out.insert(bound.into(), value.clone());
            out.insert(key.into(), true.into());
        }
        _ => {}
    }
}

/// Calls `found` with the definition name of every canonical reference in `schema`.
pub(crate) fn for_each_reference(schema: &Value, found: &mut impl FnMut(&str)) {
    let Value::Object(object) = schema else {
        return;
    };
    if let Some(Value::String(target)) = object.get("$ref")
        && let Some(name) = target.strip_prefix(REF_PREFIX)
    {
        found(name);
    }
    for (key, value) in object {
        match key.as_str() {
            "properties" | "patternProperties" => {
                if let Value::Object(properties) = value {
                    properties
                        .values()
                        .for_each(|sub| for_each_reference(sub, found));
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                if let Value::Array(schemas) = value {
                    schemas
                        .iter()
                        .for_each(|sub| for_each_reference(sub, found));
                }
            }
            "items" => match value {
                Value::Array(schemas) => schemas
                    .iter()
                    .for_each(|sub| for_each_reference(sub, found)),
                _ => for_each_reference(value, found),
            },
            "additionalProperties" | "not" => for_each_reference(value, found),
            _ => {}
        }
    }
}
