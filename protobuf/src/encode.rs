//! JSON -> protobuf wire bytes, driven by the descriptor table.
//!
//! Fields are written in tag order and map entries sorted by key, as upstream's generated
//! marshallers do. A field is written when the JSON has it (proto2 presence: `0`, `false`
//! and `""` are written; an absent key is not); `null` means absent, except for the types
//! upstream writes as an empty message (Time, MicroTime, RawExtension, FieldsV1, JSON).
//! JSON keys without a protobuf field are dropped, as upstream's conversion would.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::Error;
use crate::decode::MAX_DEPTH;
use crate::table::{self, Field, Label, MapValue, Message, Special, Ty};
use crate::timefmt;
use crate::wire::{FIXED64, put_bytes, put_int, put_key, put_varint};

/// Encodes `value` as the message at `index`, appending the message body to `out`.
pub(crate) fn message(
    index: u16,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Error> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep);
    }
    let msg = table::message(index);
    if msg.special != Special::None {
        return special(msg, value, out, depth);
    }
    match value {
        Value::Object(obj) => object(msg, obj, out, depth),
        Value::Null => Ok(()),
        other => Err(mismatch("an object", other)),
    }
}

fn object(
    msg: &Message,
    obj: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Error> {
    for field in msg.fields {
        if field.inline {
            let Ty::Message(index) = field.ty else {
                return Err(Error::BadTable(msg.name));
            };
            let mut body = Vec::new();
            object(table::message(index), obj, &mut body, depth + 1)
                .map_err(|e| e.at(field.json))?;
            put_bytes(out, field.tag, &body);
            continue;
        }
        let Some(value) = obj.get(field.json) else {
            continue;
        };
        write_field(field, value, out, depth).map_err(|e| e.at(field.json))?;
    }
    Ok(())
}

fn write_field(field: &Field, value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
    if let Ty::Map(value_ty) = field.ty {
        return match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, key.as_bytes());
                    map_value(value_ty, &map[key], &mut entry, depth).map_err(|e| e.at(key))?;
                    put_bytes(out, field.tag, &entry);
                }
                Ok(())
            }
            Value::Null => Ok(()),
            other => Err(mismatch("an object", other)),
        };
    }
    match (field.label, value) {
        (Label::Repeated, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                single(field.ty, field.tag, item, out, depth).map_err(|e| e.at(&i.to_string()))?;
            }
            Ok(())
        }
        (Label::Repeated, Value::Null) => Ok(()),
        (Label::Repeated, other) => Err(mismatch("an array", other)),
        (Label::Optional, value) => single(field.ty, field.tag, value, out, depth),
    }
}

fn map_value(ty: MapValue, value: &Value, entry: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
    match (ty, value) {
        (MapValue::String, Value::String(s)) => put_bytes(entry, 2, s.as_bytes()),
        (MapValue::Bytes, Value::String(s)) => put_bytes(entry, 2, &base64_decode(s)?),
        (MapValue::String | MapValue::Bytes, Value::Null) => put_bytes(entry, 2, &[]),
        (MapValue::Message(index), value) => {
            let mut body = Vec::new();
            message(index, value, &mut body, depth)?;
            put_bytes(entry, 2, &body);
        }
        (_, other) => return Err(mismatch("a string", other)),
    }
    Ok(())
}

/// Writes one value (one element of a repeated field) with its key.
fn single(ty: Ty, tag: u32, value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
    match (ty, value) {
        (Ty::Message(index), value) => {
            if value.is_null() && !writes_null(index) {
                return Ok(());
            }
            let mut body = Vec::new();
            message(index, value, &mut body, depth)?;
            put_bytes(out, tag, &body);
        }
        (_, Value::Null) => {}
        (Ty::String, Value::String(s)) => put_bytes(out, tag, s.as_bytes()),
        (Ty::Bytes, Value::String(s)) => put_bytes(out, tag, &base64_decode(s)?),
        (Ty::Int32, value) => {
            let n = integer(value)?;
            let n = i32::try_from(n).map_err(|_| Error::InvalidJson {
                path: String::new(),
                message: format!("{n} does not fit in int32"),
            })?;
            put_int(out, tag, i64::from(n));
        }
        (Ty::Int64, value) => put_int(out, tag, integer(value)?),
        (Ty::Bool, Value::Bool(b)) => {
            put_key(out, tag, crate::wire::VARINT);
            put_varint(out, u64::from(*b));
        }
        (Ty::Double, Value::Number(n)) => {
            put_key(out, tag, FIXED64);
            out.extend_from_slice(&n.as_f64().unwrap_or_default().to_le_bytes());
        }
        (Ty::String | Ty::Bytes, other) => return Err(mismatch("a string", other)),
        (Ty::Bool, other) => return Err(mismatch("a boolean", other)),
        (Ty::Double, other) => return Err(mismatch("a number", other)),
        (Ty::Map(_), _) => return Err(Error::BadTable("map value in single()")),
    }
    Ok(())
}

/// Whether upstream writes JSON `null` of this message as a present, empty message.
fn writes_null(index: u16) -> bool {
    matches!(
        table::message(index).special,
        Special::Time | Special::MicroTime | Special::RawExtension | Special::RawJson
    )
}

fn integer(value: &Value) -> Result<i64, Error> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| Error::InvalidJson {
                path: String::new(),
                message: format!("{n} is not a 64-bit integer"),
            }),
        other => Err(mismatch("an integer", other)),
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::InvalidJson {
            path: String::new(),
            message: format!("invalid base64: {e}"),
        })
}

fn mismatch(expected: &str, got: &Value) -> Error {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Error::InvalidJson {
        path: String::new(),
        message: format!("expected {expected}, got {got}"),
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidJson {
        path: String::new(),
        message,
    }
}

/// Encodes a message whose JSON form is special (see [`Special`]).
fn special(msg: &Message, value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
    let nested = |tag: u32| -> Result<u16, Error> {
        match table::field_by_tag(msg, tag).map(|(_, f)| f.ty) {
            Some(Ty::Message(index)) => Ok(index),
            _ => Err(Error::BadTable(msg.name)),
        }
    };
    match (msg.special, value) {
        (_, Value::Null) => {}
        (Special::Time | Special::MicroTime, Value::String(s)) => {
            let (seconds, nanos) = timefmt::parse_time(s)
                .ok_or_else(|| invalid(format!("invalid RFC 3339 time {s:?}")))?;
            put_int(out, 1, seconds);
            // Upstream's Time keeps seconds only; MicroTime keeps microseconds.
            let nanos = if msg.special == Special::Time {
                0
            } else {
                nanos - nanos % 1000
            };
            put_int(out, 2, i64::from(nanos));
        }
        (Special::Duration, Value::String(s)) => {
            let nanos = timefmt::parse_duration(s)
                .ok_or_else(|| invalid(format!("invalid duration {s:?}")))?;
            put_int(out, 1, nanos);
        }
        (Special::Quantity, Value::String(s)) => put_bytes(out, 1, s.as_bytes()),
        (Special::Quantity, Value::Number(n)) => put_bytes(out, 1, n.to_string().as_bytes()),
        (Special::IntOrString, Value::Number(_)) => {
            let n = integer(value)?;
            let n = i32::try_from(n).map_err(|_| invalid(format!("{n} does not fit in int32")))?;
            put_int(out, 1, 0);
            put_int(out, 2, i64::from(n));
            put_bytes(out, 3, b"");
        }
        (Special::IntOrString, Value::String(s)) => {
            put_int(out, 1, 1);
            put_int(out, 2, 0);
            put_bytes(out, 3, s.as_bytes());
        }
        (Special::RawExtension | Special::RawJson, value) => {
            let raw = serde_json::to_vec(value).map_err(|e| invalid(e.to_string()))?;
            put_bytes(out, 1, &raw);
        }
        (Special::SchemaOrArray, Value::Array(items)) => {
            let schema = nested(1)?;
            for (i, item) in items.iter().enumerate() {
                let mut body = Vec::new();
                message(schema, item, &mut body, depth).map_err(|e| e.at(&i.to_string()))?;
                put_bytes(out, 2, &body);
            }
        }
        (Special::SchemaOrArray | Special::SchemaOrStringArray, Value::Object(_)) => {
            let mut body = Vec::new();
            message(nested(1)?, value, &mut body, depth)?;
            put_bytes(out, 1, &body);
        }
        (Special::SchemaOrBool, Value::Bool(b)) => put_int(out, 1, i64::from(*b)),
        (Special::SchemaOrBool, Value::Object(_)) => {
            put_int(out, 1, 1);
            let mut body = Vec::new();
            message(nested(2)?, value, &mut body, depth)?;
            put_bytes(out, 2, &body);
        }
        (Special::SchemaOrStringArray | Special::StringList, Value::Array(items)) => {
            let tag = if msg.special == Special::StringList {
                1
            } else {
                2
            };
            for item in items {
                match item {
                    Value::String(s) => put_bytes(out, tag, s.as_bytes()),
                    other => return Err(mismatch("a string", other)),
                }
            }
        }
        (Special::None, Value::Object(obj)) => object(msg, obj, out, depth)?,
        (_, other) => return Err(mismatch(expected(msg.special), other)),
    }
    Ok(())
}

/// What JSON a special message accepts, for error messages.
fn expected(special: Special) -> &'static str {
    match special {
        Special::Time | Special::MicroTime => "an RFC 3339 time string",
        Special::Duration => "a duration string",
        Special::Quantity => "a quantity string",
        Special::IntOrString => "an integer or a string",
        Special::SchemaOrArray => "a schema object or an array of schemas",
        Special::SchemaOrBool => "a schema object or a boolean",
        Special::SchemaOrStringArray => "a schema object or an array of strings",
        Special::StringList => "an array of strings",
        Special::None | Special::RawExtension | Special::RawJson => "an object",
    }
}
