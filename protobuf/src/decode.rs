//! Protobuf wire bytes -> JSON, driven by the descriptor table.
//!
//! Everything on the wire is kept, with two exceptions that make the JSON look like
//! upstream's (Go decodes into structs, then `omitempty` applies):
//! * an empty string or bytes value of an optional field is dropped — Go clients write
//!   every non-pointer string even when empty, and Go reads "" and absent alike. Fields in
//!   [`KEEP_EMPTY_STRING`] are pointers upstream where "" means something, so they stay.
//! * a zero number or `false` of an optional field is dropped likewise (Go writes every
//!   non-pointer scalar, and `omitempty` hides its zero), unless the field is a pointer
//!   upstream whose zero means something ([`KEEP_ZERO`], e.g. `replicas: 0`).
//! * an absent required repeated field (`items` of a list, `containers`) becomes `[]`.
//!
//! Unknown field numbers are skipped. Nesting is bounded by [`MAX_DEPTH`].

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::table::{self, Field, Label, MapValue, Message, Special, Ty};
use crate::timefmt;
use crate::wire::{FIXED64, LEN, Reader, VARINT};
use crate::{Error, MAGIC};

/// How deeply messages (and embedded objects) may nest.
pub(crate) const MAX_DEPTH: usize = 100;

/// Optional string fields that are `*string` upstream with a meaning for "" (a PVC with
/// `storageClassName: ""` asks for no class at all), so an empty value is kept.
const KEEP_EMPTY_STRING: &[&str] = &["storageClassName", "volumeAttributesClassName"];

/// Optional number and boolean fields that are pointers upstream where zero or `false` is
/// a real value (`spec.replicas: 0`, `suspend: false`, `runAsUser: 0`), so they stay.
/// Entries are `Message.field` for a field of one message, or a bare field name when every
/// message's field of that name is a pointer.
const KEEP_ZERO: &[&str] = &[
    // pointers in every type that has them
    "deletionGracePeriodSeconds",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
    "parallelism",
    "completions",
    "activeDeadlineSeconds",
    "backoffLimit",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "ttlSecondsAfterFinished",
    "suspend",
    "manualSelector",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "terminationGracePeriodSeconds",
    "automountServiceAccountToken",
    "shareProcessNamespace",
    "enableServiceLinks",
    "priority",
    "hostUsers",
    "setHostnameAsFQDN",
    "privileged",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "fsGroup",
    "defaultMode",
    "mode",
    "optional",
    "immutable",
    "allowVolumeExpansion",
    "allocateLoadBalancerNodePorts",
    "minReplicas",
    "partition",
    "leaseDurationSeconds",
    "leaseTransitions",
    "ready",
    "serving",
    "terminating",
    "started",
    "expirationSeconds",
    "ordinals",
    "start",
    // `replicas` is a pointer in specs, a plain omitempty integer in statuses
    "k8s.io.api.apps.v1.DeploymentSpec.replicas",
    "k8s.io.api.apps.v1.ReplicaSetSpec.replicas",
    "k8s.io.api.apps.v1.StatefulSetSpec.replicas",
    "k8s.io.api.core.v1.ReplicationControllerSpec.replicas",
    "k8s.io.api.discovery.v1.EndpointPort.port",
];

fn keeps_zero(msg: &Message, field: &Field) -> bool {
    field.required
        || field.label != Label::Optional
        || KEEP_ZERO.iter().any(|k| {
            *k == field.json
                || k.strip_suffix(field.json)
                    .and_then(|m| m.strip_suffix('.'))
                    .is_some_and(|m| m == msg.name)
        })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Decodes the message at `index` from `bytes` into its JSON form.
pub(crate) fn message(index: u16, bytes: &[u8], depth: usize) -> Result<Value, Error> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep);
    }
    let msg = table::message(index);
    if msg.special != Special::None {
        return special(msg, bytes, depth);
    }
    object(msg, bytes, depth).map(Value::Object)
}

/// Decodes an ordinary message into a JSON object, fields in tag order.
fn object(msg: &'static Message, bytes: &[u8], depth: usize) -> Result<Map<String, Value>, Error> {
    let mut slots: Vec<Option<Value>> = vec![None; msg.fields.len()];
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (tag, wire) = reader.key()?;
        let Some((i, field)) = table::field_by_tag(msg, tag) else {
            reader.skip(tag, wire)?;
            continue;
        };
        read_field(field, wire, &mut reader, &mut slots[i], depth).map_err(|e| e.at(field.json))?;
    }
    let mut out = Map::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        match slot {
            Some(Value::Object(inner)) if field.inline => out.extend(inner),
            Some(Value::String(s)) if s.is_empty() && drops_empty(field) => {}
            Some(v)
                if is_zero(&v)
                    && matches!(field.ty, Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double)
                    && !keeps_zero(msg, field) => {}
            Some(value) => {
                out.insert(field.json.to_string(), value);
            }
            None if field.required && field.label == Label::Repeated => {
                out.insert(field.json.to_string(), Value::Array(Vec::new()));
            }
            None => {}
        }
    }
    Ok(out)
}

/// Whether an empty string (or empty bytes, also a JSON string) is dropped for `field`.
fn drops_empty(field: &Field) -> bool {
    field.label == Label::Optional
        && matches!(field.ty, Ty::String | Ty::Bytes)
        && !field.required
        && !KEEP_EMPTY_STRING.contains(&field.json)
}

/// Reads one occurrence of `field` into its slot (appending for repeated and map fields).
fn read_field(
    field: &Field,
    wire: u8,
    reader: &mut Reader<'_>,
    slot: &mut Option<Value>,
    depth: usize,
) -> Result<(), Error> {
    if let Ty::Map(value_ty) = field.ty {
        expect_wire(field.tag, wire, LEN)?;
        let (key, value) = map_entry(value_ty, reader.bytes()?, depth)?;
        if let Value::Object(map) = slot.get_or_insert_with(|| Value::Object(Map::new())) {
            map.insert(key, value);
        }
        return Ok(());
    }
    if field.label == Label::Repeated {
        let Value::Array(items) = slot.get_or_insert_with(|| Value::Array(Vec::new())) else {
            return Ok(());
        };
        // proto2 repeated scalars are unpacked upstream; accept the packed form too.
        if wire == LEN && matches!(field.ty, Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double) {
            let mut packed = Reader::new(reader.bytes()?);
            while !packed.is_empty() {
                items.push(scalar(
                    field.ty,
                    field.tag,
                    scalar_wire(field.ty),
                    &mut packed,
                    depth,
                )?);
            }
            return Ok(());
        }
        items.push(scalar(field.ty, field.tag, wire, reader, depth)?);
        return Ok(());
    }
    *slot = Some(scalar(field.ty, field.tag, wire, reader, depth)?);
    Ok(())
}

/// The wire type a value of `ty` is written with.
fn scalar_wire(ty: Ty) -> u8 {
    match ty {
        Ty::Int32 | Ty::Int64 | Ty::Bool => VARINT,
        Ty::Double => FIXED64,
        Ty::String | Ty::Bytes | Ty::Message(_) | Ty::Map(_) => LEN,
    }
}

fn expect_wire(tag: u32, wire: u8, expected: u8) -> Result<(), Error> {
    if wire == expected {
        Ok(())
    } else {
        Err(Error::InvalidWireType { tag, wire })
    }
}

/// Reads one value of `ty` (not a map) as JSON.
fn scalar(
    ty: Ty,
    tag: u32,
    wire: u8,
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<Value, Error> {
    expect_wire(tag, wire, scalar_wire(ty))?;
    Ok(match ty {
        Ty::String => Value::String(utf8(reader.bytes()?)?),
        Ty::Bytes => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(reader.bytes()?))
        }
        Ty::Int32 => Value::from(reader.varint()? as i32),
        Ty::Int64 => Value::from(reader.varint()? as i64),
        Ty::Bool => Value::Bool(reader.varint()? != 0),
        Ty::Double => float(f64::from_le_bytes(reader.fixed::<8>()?))?,
        Ty::Message(index) => message(index, reader.bytes()?, depth)?,
        Ty::Map(_) => return Err(Error::InvalidWireType { tag, wire }),
    })
}

/// A float as JSON; integral values print as integers, as Go's encoder does.
fn float(value: f64) -> Result<Value, Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return Ok(Value::from(value as i64));
    }
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or(Error::NonFiniteFloat)
}

fn utf8(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::InvalidUtf8)
}

/// Decodes one map entry message {key = 1, value = 2}.
fn map_entry(value_ty: MapValue, bytes: &[u8], depth: usize) -> Result<(String, Value), Error> {
    let ty = match value_ty {
        MapValue::String => Ty::String,
        MapValue::Bytes => Ty::Bytes,
        MapValue::Message(index) => Ty::Message(index),
    };
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        match reader.key()? {
            (1, wire) => {
                expect_wire(1, wire, LEN)?;
                key = utf8(reader.bytes()?)?;
            }
            (2, wire) => {
                value = Some(scalar(ty, 2, wire, &mut reader, depth).map_err(|e| e.at("value"))?)
            }
            (tag, wire) => reader.skip(tag, wire)?,
        }
    }
    let value = match (value, ty) {
        (Some(value), _) => value,
        (None, Ty::Message(index)) => message(index, &[], depth)?,
        (None, _) => Value::String(String::new()),
    };
    Ok((key, value))
}

/// The fields of a special message, read generically: tag -> last value seen, and all
/// values of repeated tag 2 for the `Or*` types.
struct Raw<'a> {
    varints: [Option<u64>; 4],
    bytes: [Option<&'a [u8]>; 4],
    list: Vec<&'a [u8]>,
}

fn raw_fields(bytes: &[u8]) -> Result<Raw<'_>, Error> {
    let mut raw = Raw {
        varints: [None; 4],
        bytes: [None; 4],
        list: Vec::new(),
    };
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (tag, wire) = reader.key()?;
        match (tag, wire) {
            (1..=3, VARINT) => raw.varints[tag as usize] = Some(reader.varint()?),
            (1..=3, LEN) => {
                let value = reader.bytes()?;
                if tag == 2 {
                    raw.list.push(value);
                }
                raw.bytes[tag as usize] = Some(value);
            }
            (1..=3, _) => return Err(Error::InvalidWireType { tag, wire }),
            _ => reader.skip(tag, wire)?,
        }
    }
    Ok(raw)
}

/// Decodes a message whose JSON form is special (see [`Special`]).
fn special(msg: &'static Message, bytes: &[u8], depth: usize) -> Result<Value, Error> {
    let raw = raw_fields(bytes)?;
    let nested = |tag: usize| -> Option<u16> {
        msg.fields
            .iter()
            .find(|f| f.tag as usize == tag)
            .and_then(|f| match f.ty {
                Ty::Message(index) => Some(index),
                _ => None,
            })
    };
    Ok(match msg.special {
        Special::None => object(msg, bytes, depth).map(Value::Object)?,
        Special::Time | Special::MicroTime if bytes.is_empty() => Value::Null,
        Special::Time => {
            let seconds = raw.varints[1].unwrap_or(0) as i64;
            if seconds == timefmt::GO_ZERO_SECONDS {
                return Ok(Value::Null);
            }
            Value::String(timefmt::format_time(seconds).ok_or(Error::TimeOutOfRange(seconds))?)
        }
        Special::MicroTime => {
            let seconds = raw.varints[1].unwrap_or(0) as i64;
            let nanos = raw.varints[2].unwrap_or(0) as i32;
            if seconds == timefmt::GO_ZERO_SECONDS && nanos == 0 {
                return Ok(Value::Null);
            }
            let text =
                timefmt::format_micro_time(seconds, nanos).ok_or(Error::TimeOutOfRange(seconds))?;
            Value::String(text)
        }
        Special::Duration => {
            Value::String(timefmt::format_duration(raw.varints[1].unwrap_or(0) as i64))
        }
        // An empty Quantity is Go's zero quantity, which marshals as "0".
        Special::Quantity => Value::String(match raw.bytes[1] {
            Some(b) if !b.is_empty() => utf8(b)?,
            _ => "0".to_string(),
        }),
        Special::IntOrString => match raw.varints[1] {
            Some(1) => Value::String(utf8(raw.bytes[3].unwrap_or_default())?),
            _ => Value::from(raw.varints[2].unwrap_or(0) as i32),
        },
        Special::RawExtension => match raw.bytes[1] {
            Some(b) if !b.is_empty() => embedded(b, depth)?,
            _ => Value::Null,
        },
        Special::RawJson => match raw.bytes[1] {
            Some(b) if !b.is_empty() => {
                serde_json::from_slice(b).map_err(|e| Error::InvalidEmbeddedJson(e.to_string()))?
            }
            _ => Value::Null,
        },
        Special::SchemaOrArray => {
            let schema = nested(1).ok_or(Error::BadTable(msg.name))?;
            if !raw.list.is_empty() {
                let items = raw.list.iter().map(|b| message(schema, b, depth));
                Value::Array(items.collect::<Result<_, _>>()?)
            } else if let Some(b) = raw.bytes[1] {
                message(schema, b, depth)?
            } else {
                Value::Null
            }
        }
        Special::SchemaOrBool => match raw.bytes[2] {
            Some(b) => message(nested(2).ok_or(Error::BadTable(msg.name))?, b, depth)?,
            None => Value::Bool(raw.varints[1].unwrap_or(0) != 0),
        },
        Special::SchemaOrStringArray => {
            if !raw.list.is_empty() {
                Value::Array(
                    raw.list
                        .iter()
                        .map(|b| utf8(b).map(Value::String))
                        .collect::<Result<_, _>>()?,
                )
            } else if let Some(b) = raw.bytes[1] {
                message(nested(1).ok_or(Error::BadTable(msg.name))?, b, depth)?
            } else {
                Value::Null
            }
        }
        Special::StringList => {
            let mut items = Vec::new();
            let mut reader = Reader::new(bytes);
            while !reader.is_empty() {
                match reader.key()? {
                    (1, LEN) => items.push(Value::String(utf8(reader.bytes()?)?)),
                    (1, wire) => return Err(Error::InvalidWireType { tag: 1, wire }),
                    (tag, wire) => reader.skip(tag, wire)?,
                }
            }
            Value::Array(items)
        }
    })
}

/// The `raw` of a RawExtension: an enveloped protobuf object (watch events) or JSON.
fn embedded(bytes: &[u8], depth: usize) -> Result<Value, Error> {
    if bytes.starts_with(&MAGIC) {
        return crate::envelope::decode_at(bytes, depth);
    }
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidEmbeddedJson(e.to_string()))
}
