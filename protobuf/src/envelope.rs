//! The `k8s\0` envelope around every protobuf object, and watch-stream frames.
//!
//! An object is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` message:
//! `typeMeta = 1 {apiVersion = 1, kind = 2}`, `raw = 2` (the object's own message),
//! `contentEncoding = 3`, `contentType = 4`. Upstream writes all four fields, the last two
//! empty, in that order.
//!
//! A watch stream (`;stream=watch`) is a sequence of frames: a 4-byte big-endian length,
//! then a bare `meta.v1.WatchEvent` message — no magic and no `Unknown` (upstream's raw
//! stream serializer) — whose `object.raw` holds the enveloped object.

use serde_json::{Map, Value};

use crate::wire::{LEN, Reader, put_bytes};
use crate::{Error, MAGIC, MEDIA_TYPE, decode, table};

/// Field numbers of `meta.v1.WatchEvent` and `runtime.RawExtension`.
const WATCH_TYPE: u32 = 1;
const WATCH_OBJECT: u32 = 2;
const RAW: u32 = 1;

/// Decodes an enveloped object, nested `depth` levels deep.
pub(crate) fn decode_at(bytes: &[u8], depth: usize) -> Result<Value, Error> {
    let body = match bytes.strip_prefix(&MAGIC) {
        Some([]) => return Err(Error::Truncated("envelope (empty body)")),
        Some(body) => body,
        None => return Err(Error::BadMagic),
    };
    let unknown = Unknown::parse(body)?;
    if !unknown.content_encoding.is_empty() {
        return Err(Error::UnsupportedEncoding(unknown.content_encoding));
    }
    if unknown.kind.is_empty() {
        return Err(Error::MissingTypeMeta("kind"));
    }
    if unknown.api_version.is_empty() {
        return Err(Error::MissingTypeMeta("apiVersion"));
    }
    let fields = match unknown.content_type.as_str() {
        "" | MEDIA_TYPE => {
            let index =
                table::kind_message(&unknown.api_version, &unknown.kind).ok_or_else(|| {
                    Error::UnsupportedKind {
                        api_version: unknown.api_version.clone(),
                        kind: unknown.kind.clone(),
                    }
                })?;
            match decode::message(index, unknown.raw, depth)? {
                Value::Object(fields) => fields,
                _ => return Err(Error::BadTable("kind with a non-object message")),
            }
        }
        "application/json" => match serde_json::from_slice(unknown.raw) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err(Error::InvalidEmbeddedJson("not an object".to_string())),
            Err(e) => return Err(Error::InvalidEmbeddedJson(e.to_string())),
        },
        other => return Err(Error::UnsupportedEncoding(other.to_string())),
    };
    // Upstream's JSON puts kind and apiVersion first.
    let mut out = Map::new();
    out.insert("kind".to_string(), Value::String(unknown.kind));
    out.insert("apiVersion".to_string(), Value::String(unknown.api_version));
    for (key, value) in fields {
        if key != "kind" && key != "apiVersion" {
            out.insert(key, value);
        }
    }
    Ok(Value::Object(out))
}

/// The decoded `runtime.Unknown`.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

impl<'a> Unknown<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut out = Unknown {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
            content_encoding: String::new(),
            content_type: String::new(),
        };
        let mut reader = Reader::new(bytes);
        while !reader.is_empty() {
            match reader.key()? {
                (1, LEN) => {
                    let mut meta = Reader::new(reader.bytes()?);
                    while !meta.is_empty() {
                        match meta.key()? {
                            (1, LEN) => out.api_version = string(meta.bytes()?)?,
                            (2, LEN) => out.kind = string(meta.bytes()?)?,
                            (tag @ (1 | 2), wire) => {
                                return Err(Error::InvalidWireType { tag, wire });
                            }
                            (tag, wire) => meta.skip(tag, wire)?,
                        }
                    }
                }
                (2, LEN) => out.raw = reader.bytes()?,
                (3, LEN) => out.content_encoding = string(reader.bytes()?)?,
                (4, LEN) => out.content_type = string(reader.bytes()?)?,
                (tag @ 1..=4, wire) => return Err(Error::InvalidWireType { tag, wire }),
                (tag, wire) => reader.skip(tag, wire)?,
            }
        }
        Ok(out)
    }
}

fn string(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::InvalidUtf8)
}

/// Encodes a JSON object carrying apiVersion and kind into the envelope.
pub(crate) fn encode(obj: &Value) -> Result<Vec<u8>, Error> {
    let type_field = |name: &'static str| match obj.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        _ => Err(Error::MissingTypeMeta(name)),
    };
    if !obj.is_object() {
        return Err(Error::InvalidJson {
            path: String::new(),
            message: "expected an object".to_string(),
        });
    }
    let api_version = type_field("apiVersion")?;
    let kind = type_field("kind")?;
    let index = table::kind_message(api_version, kind).ok_or_else(|| Error::UnsupportedKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let mut raw = Vec::new();
    crate::encode::message(index, obj, &mut raw, 0)?;

    let mut type_meta = Vec::with_capacity(api_version.len() + kind.len() + 4);
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(&MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// Encodes one watch frame: length prefix + WatchEvent{type, object{raw: envelope}}.
pub(crate) fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, Error> {
    let inner = encode(object)?;
    let mut raw_extension = Vec::with_capacity(inner.len() + 6);
    put_bytes(&mut raw_extension, RAW, &inner);
    let mut event = Vec::with_capacity(raw_extension.len() + event_type.len() + 12);
    put_bytes(&mut event, WATCH_TYPE, event_type.as_bytes());
    put_bytes(&mut event, WATCH_OBJECT, &raw_extension);
    let len = u32::try_from(event.len()).map_err(|_| Error::FrameTooLarge(event.len()))?;
    let mut frame = Vec::with_capacity(event.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&event);
    Ok(frame)
}

/// Splits the first complete frame off `buf`: `Some((frame, rest))`, or `None` while the
/// frame is still incomplete. The returned frame includes its length prefix.
pub(crate) fn split_watch_frame(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let prefix: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(prefix)).ok()?;
    let end = len.checked_add(4)?;
    (buf.len() >= end).then(|| buf.split_at(end))
}

/// Decodes one complete frame (with its length prefix) into (type, object).
pub(crate) fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), Error> {
    let (frame, rest) = split_watch_frame(frame).ok_or(Error::Truncated("watch frame"))?;
    if !rest.is_empty() {
        return Err(Error::TrailingBytes(rest.len()));
    }
    let mut event = &frame[4..];
    // Accept an enveloped WatchEvent too, as a lenient reader.
    if let Some(body) = event.strip_prefix(&MAGIC) {
        event = Unknown::parse(body)?.raw;
    }
    let mut event_type = String::new();
    let mut object = Value::Null;
    let mut reader = Reader::new(event);
    while !reader.is_empty() {
        match reader.key()? {
            (WATCH_TYPE, LEN) => event_type = string(reader.bytes()?)?,
            (WATCH_OBJECT, LEN) => {
                let mut ext = Reader::new(reader.bytes()?);
                while !ext.is_empty() {
                    match ext.key()? {
                        (RAW, LEN) => object = raw_object(ext.bytes()?)?,
                        (RAW, wire) => return Err(Error::InvalidWireType { tag: RAW, wire }),
                        (tag, wire) => ext.skip(tag, wire)?,
                    }
                }
            }
            (tag @ (WATCH_TYPE | WATCH_OBJECT), wire) => {
                return Err(Error::InvalidWireType { tag, wire });
            }
            (tag, wire) => reader.skip(tag, wire)?,
        }
    }
    Ok((event_type, object))
}

fn raw_object(raw: &[u8]) -> Result<Value, Error> {
    if raw.starts_with(&MAGIC) {
        decode_at(raw, 0)
    } else {
        serde_json::from_slice(raw).map_err(|e| Error::InvalidEmbeddedJson(e.to_string()))
    }
}
