//! The shape of the descriptor table (`descriptors.rs`, generated) and lookups into it.
//!
//! A [`Message`] lists its fields in tag order with their JSON names; [`Ty::Message`] and
//! [`MapValue::Message`] refer to other messages by index into [`MESSAGES`]. This module
//! owns no wire logic: `decode` and `encode` interpret the table.

use crate::descriptors::META_KINDS;
pub(crate) use crate::descriptors::{KINDS, MESSAGES};

/// One protobuf message of the Kubernetes API.
#[derive(Debug)]
pub(crate) struct Message {
    /// Upstream full name, e.g. `k8s.io.api.core.v1.Pod`.
    pub name: &'static str,
    /// Whether the JSON form differs from a plain object of the fields.
    pub special: Special,
    /// Fields sorted by tag.
    pub fields: &'static [Field],
}

/// One field of a [`Message`].
#[derive(Debug)]
pub(crate) struct Field {
    /// The JSON name (`volumeID`), or for an inlined field the name of the Go field.
    pub json: &'static str,
    /// The protobuf field number.
    pub tag: u32,
    /// The wire type and value type.
    pub ty: Ty,
    /// Singular or repeated.
    pub label: Label,
    /// Required in the OpenAPI schema (no `omitempty` upstream): decoding keeps an empty
    /// string and turns an absent repeated field into `[]`.
    pub required: bool,
    /// Go embeds the message with `json:",inline"`: its JSON fields live in the parent.
    pub inline: bool,
}

/// The value type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// UTF-8 string, length-delimited.
    String,
    /// varint, sign-extended to 64 bits when negative.
    Int32,
    /// varint.
    Int64,
    /// varint 0/1.
    Bool,
    /// Length-delimited bytes; base64 in JSON.
    Bytes,
    /// fixed64 IEEE 754.
    Double,
    /// A nested message (index into [`MESSAGES`]).
    Message(u16),
    /// `map<string, V>`: repeated entry messages {key = 1, value = 2}.
    Map(MapValue),
}

/// The value type of a `map<string, V>` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapValue {
    /// `map<string, string>`.
    String,
    /// `map<string, bytes>` (base64 strings in JSON).
    Bytes,
    /// `map<string, Message>`.
    Message(u16),
}

/// Singular or repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// proto2 `optional`: written only when present in JSON.
    Optional,
    /// proto2 `repeated` (never packed upstream; both forms are accepted when decoding).
    Repeated,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// An ordinary message.
    None,
    /// `meta.v1.Time` {seconds = 1, nanos = 2}: RFC 3339 string, seconds precision, or `null`.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 string with six fractional digits, or `null`.
    MicroTime,
    /// `meta.v1.Duration` {duration = 1 (ns)}: Go duration string (`1h2m3s`).
    Duration,
    /// `resource.Quantity` {string = 1}: the string.
    Quantity,
    /// `intstr.IntOrString` {type = 1, intVal = 2, strVal = 3}: number or string.
    IntOrString,
    /// `runtime.RawExtension` {raw = 1}: the embedded object (JSON, or an enveloped
    /// protobuf object as in watch events).
    RawExtension,
    /// `meta.v1.FieldsV1` and apiextensions `JSON` {raw = 1}: raw JSON bytes.
    RawJson,
    /// apiextensions `JSONSchemaPropsOrArray` {schema = 1, jSONSchemas = 2}.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool` {allows = 1, schema = 2}.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray` {schema = 1, property = 2}.
    SchemaOrStringArray,
    /// `meta.v1.Verbs` and the `ExtraValue` types {items = 1}: a JSON array of strings.
    StringList,
}

/// The message at `index`. Indices come from the generated table itself, so they are in
/// range; a stale table is caught by the tests.
pub(crate) fn message(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// The field of `msg` with number `tag`.
pub(crate) fn field_by_tag(msg: &Message, tag: u32) -> Option<(usize, &'static Field)> {
    let i = msg.fields.binary_search_by_key(&tag, |f| f.tag).ok()?;
    Some((i, &msg.fields[i]))
}

/// The message for an (apiVersion, kind) pair, if it has one.
///
/// meta.k8s.io kinds (`Status`, `WatchEvent`, `DeleteOptions`, ...) are accepted under
/// `v1`, `meta.k8s.io/*` and every built-in group version, as upstream registers them in
/// each group version it serves.
pub(crate) fn kind_message(api_version: &str, kind: &str) -> Option<u16> {
    if let Ok(i) = KINDS.binary_search_by(|(av, k, _)| (*av, *k).cmp(&(api_version, kind))) {
        return Some(KINDS[i].2);
    }
    let meta = META_KINDS.binary_search_by(|(k, _)| (*k).cmp(kind)).ok()?;
    let built_in = api_version == "v1" || api_version.starts_with("meta.k8s.io/") || {
        let first = KINDS.partition_point(|(av, _, _)| *av < api_version);
        KINDS
            .get(first)
            .is_some_and(|(av, _, _)| *av == api_version)
    };
    built_in.then_some(META_KINDS[meta].1)
}
