//! The protobuf form of the Swagger 2.0 document: gnostic's `openapi.v2.Document`, which
//! client-go's `OpenAPISchema()` (kubectl's v2 fallback for apply, validation and
//! `explain --output=plaintext-openapiv2`) requests with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and parses as nothing
//! else.
//!
//! A small hand-written encoder: it walks the JSON document [`crate::v2`] produces and writes
//! the fields gnostic's messages define for it. Values gnostic carries as `Any` (vendor
//! extensions, `default`, `example`, `enum` entries) travel as their JSON text in the `yaml`
//! field, which is what gnostic's consumers parse.

use serde_json::{Map, Value};

/// The media type clients ask for.
pub const V2_PROTOBUF_MEDIA_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// A protobuf message being written.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// A string field; proto3 omits empty ones.
    fn string(&mut self, field: u32, value: &str) {
        if !value.is_empty() {
            self.bytes(field, value.as_bytes());
        }
    }

    fn string_at(&mut self, field: u32, object: &Map<String, Value>, key: &str) {
        if let Some(Value::String(value)) = object.get(key) {
            self.string(field, value);
        }
    }

    fn strings_at(&mut self, field: u32, object: &Map<String, Value>, key: &str) {
        for value in object
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(value) = value.as_str() {
                self.bytes(field, value.as_bytes());
            }
        }
    }

    /// A bool field; `force` writes `false` too (inside a oneof, presence matters).
    fn bool(&mut self, field: u32, value: bool, force: bool) {
        if value || force {
            self.key(field, 0);
            self.varint(u64::from(value));
        }
    }

    fn bool_at(&mut self, field: u32, object: &Map<String, Value>, key: &str) {
        if let Some(Value::Bool(value)) = object.get(key) {
            self.bool(field, *value, false);
        }
    }

    fn double_at(&mut self, field: u32, object: &Map<String, Value>, key: &str) {
        if let Some(value) = object.get(key).and_then(Value::as_f64) {
            self.key(field, 1);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn int64_at(&mut self, field: u32, object: &Map<String, Value>, key: &str) {
        if let Some(value) = object.get(key).and_then(Value::as_i64) {
            self.key(field, 0);
            self.varint(value as u64);
        }
    }

    fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        build(&mut inner);
        self.bytes(field, &inner.0);
    }

    /// gnostic `Any`: the value's JSON text in the `yaml` field.
    fn any(&mut self, field: u32, value: &Value) {
        self.message(field, |any| any.string(2, &value.to_string()));
    }

    /// `NamedAny` entries for every `x-` key of `object`.
    fn vendor_extensions(&mut self, field: u32, object: &Map<String, Value>) {
        for (key, value) in object.iter().filter(|(key, _)| key.starts_with("x-")) {
            self.message(field, |named| {
                named.string(1, key);
                named.any(2, value);
            });
        }
    }
}

/// Encodes a Swagger 2.0 document (as [`crate::v2`] returns it) as gnostic's protobuf
/// `openapi.v2.Document`.
pub fn v2_protobuf(document: &Value) -> Vec<u8> {
    let mut out = Writer::default();
    let Some(doc) = document.as_object() else {
        return out.0;
    };
    out.string_at(1, doc, "swagger");
    if let Some(Value::Object(info)) = doc.get("info") {
        out.message(2, |w| {
            w.string_at(1, info, "title");
            w.string_at(2, info, "version");
            w.string_at(3, info, "description");
            w.vendor_extensions(7, info);
        });
    }
    if let Some(Value::Object(paths)) = doc.get("paths") {
        out.message(8, |w| {
            for (path, item) in paths {
                w.message(2, |named| {
                    named.string(1, path);
                    named.message(2, |w| path_item(w, item));
                });
            }
        });
    }
    if let Some(Value::Object(definitions)) = doc.get("definitions") {
        out.message(9, |w| named_schemas(w, 1, definitions));
    }
    for requirement in doc
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(12, |w| security_requirement(w, requirement));
    }
    if let Some(Value::Object(definitions)) = doc.get("securityDefinitions") {
        out.message(13, |w| security_definitions(w, definitions));
    }
    out.vendor_extensions(16, doc);
    out.0
}

fn security_requirement(w: &mut Writer, requirement: &Value) {
    for (name, scopes) in requirement.as_object().into_iter().flatten() {
        w.message(1, |named| {
            named.string(1, name);
            named.message(2, |array| {
                for scope in scopes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    array.bytes(1, scope.as_bytes());
                }
            });
        });
    }
}

fn security_definitions(w: &mut Writer, definitions: &Map<String, Value>) {
    for (name, definition) in definitions {
        let Some(definition) = definition.as_object() else {
            continue;
        };
        // Only API keys are published (bearer tokens); other kinds are skipped.
        if definition.get("type").and_then(Value::as_str) != Some("apiKey") {
            continue;
        }
        w.message(1, |named| {
            named.string(1, name);
            named.message(2, |item| {
                item.message(2, |key| {
                    key.string_at(1, definition, "type");
                    key.string_at(2, definition, "name");
                    key.string_at(3, definition, "in");
                    key.string_at(4, definition, "description");
                    key.vendor_extensions(5, definition);
                });
            });
        });
    }
}

fn path_item(w: &mut Writer, item: &Value) {
    let Some(item) = item.as_object() else { return };
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(Value::Object(op)) = item.get(method) {
            w.message(field, |w| operation(w, op));
        }
    }
    for param in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(9, |w| parameters_item(w, param));
    }
    w.vendor_extensions(10, item);
}

fn operation(w: &mut Writer, op: &Map<String, Value>) {
    w.strings_at(1, op, "tags");
    w.string_at(2, op, "summary");
    w.string_at(3, op, "description");
    w.string_at(5, op, "operationId");
    w.strings_at(6, op, "produces");
    w.strings_at(7, op, "consumes");
    for param in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(8, |w| parameters_item(w, param));
    }
    if let Some(Value::Object(responses)) = op.get("responses") {
        w.message(9, |w| {
            for (code, response) in responses {
                let Some(response) = response.as_object() else {
                    continue;
                };
                w.message(1, |named| {
                    named.string(1, code);
                    named.message(2, |value| {
                        value.message(1, |r| {
                            r.string_at(1, response, "description");
                            if let Some(schema) = response.get("schema") {
                                r.message(2, |item| item.message(1, |s| write_schema(s, schema)));
                            }
                            r.vendor_extensions(5, response);
                        });
                    });
                });
            }
        });
    }
    w.strings_at(10, op, "schemes");
    w.bool_at(11, op, "deprecated");
    w.vendor_extensions(13, op);
}

/// `ParametersItem` -> `Parameter` -> body or (query | path | header) sub-schema.
fn parameters_item(w: &mut Writer, param: &Value) {
    let Some(param) = param.as_object() else {
        return;
    };
    let location = param.get("in").and_then(Value::as_str).unwrap_or_default();
    w.message(1, |parameter| match location {
        "body" => parameter.message(1, |body| {
            body.string_at(1, param, "description");
            body.string_at(2, param, "name");
            body.string_at(3, param, "in");
            body.bool_at(4, param, "required");
            if let Some(schema) = param.get("schema") {
                body.message(5, |s| write_schema(s, schema));
            }
            body.vendor_extensions(6, param);
        }),
        // Query and form sub-schemas share a layout with `allowEmptyValue` at 5; path and
        // header ones lack it and shift the rest down by one.
        _ => parameter.message(2, |non_body| {
            let (variant, shift) = match location {
                "header" => (1, 0),
                "formData" => (2, 1),
                "path" => (4, 0),
                _ => (3, 1),
            };
            non_body.message(variant, |sub| {
                sub.bool_at(1, param, "required");
                sub.string_at(2, param, "in");
                sub.string_at(3, param, "description");
                sub.string_at(4, param, "name");
                if shift == 1 {
                    sub.bool_at(5, param, "allowEmptyValue");
                }
                sub.string_at(5 + shift, param, "type");
                sub.string_at(6 + shift, param, "format");
                sub.bool_at(19 + shift, param, "uniqueItems");
                sub.vendor_extensions(22 + shift, param);
            });
        }),
    });
}

fn named_schemas(w: &mut Writer, field: u32, schemas: &Map<String, Value>) {
    for (name, schema) in schemas {
        w.message(field, |named| {
            named.string(1, name);
            named.message(2, |s| write_schema(s, schema));
        });
    }
}

/// gnostic's `Schema` message.
fn write_schema(w: &mut Writer, schema: &Value) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    w.string_at(1, schema, "$ref");
    w.string_at(2, schema, "format");
    w.string_at(3, schema, "title");
    w.string_at(4, schema, "description");
    if let Some(default) = schema.get("default") {
        w.any(5, default);
    }
    w.double_at(6, schema, "multipleOf");
    w.double_at(7, schema, "maximum");
    w.bool_at(8, schema, "exclusiveMaximum");
    w.double_at(9, schema, "minimum");
    w.bool_at(10, schema, "exclusiveMinimum");
    w.int64_at(11, schema, "maxLength");
    w.int64_at(12, schema, "minLength");
    w.string_at(13, schema, "pattern");
    w.int64_at(14, schema, "maxItems");
    w.int64_at(15, schema, "minItems");
    w.bool_at(16, schema, "uniqueItems");
    w.int64_at(17, schema, "maxProperties");
    w.int64_at(18, schema, "minProperties");
    w.strings_at(19, schema, "required");
    for value in schema
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.any(20, value);
    }
    match schema.get("additionalProperties") {
        Some(Value::Bool(allowed)) => w.message(21, |item| item.bool(2, *allowed, true)),
        Some(sub @ Value::Object(_)) => {
            w.message(21, |item| item.message(1, |s| write_schema(s, sub)))
        }
        _ => {}
    }
    match schema.get("type") {
        Some(Value::String(ty)) => w.message(22, |item| item.bytes(1, ty.as_bytes())),
        Some(Value::Array(_)) => w.message(22, |item| item.strings_at(1, schema, "type")),
        _ => {}
    }
    if let Some(items) = schema.get("items") {
        w.message(23, |item| match items {
            Value::Array(list) => list
                .iter()
                .for_each(|sub| item.message(1, |s| write_schema(s, sub))),
            _ => item.message(1, |s| write_schema(s, items)),
        });
    }
    for sub in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, |s| write_schema(s, sub));
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        w.message(25, |p| named_schemas(p, 1, properties));
    }
    w.string_at(26, schema, "discriminator");
    w.bool_at(27, schema, "readOnly");
    if let Some(example) = schema.get("example") {
        w.any(30, example);
    }
    w.vendor_extensions(31, schema);
}
