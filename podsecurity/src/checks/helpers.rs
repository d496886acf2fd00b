//! Tolerant JSON accessors and message helpers shared by the checks.
//!
//! Pods arrive as raw JSON; anything of the wrong shape reads as absent here, the
//! way a nil pointer reads in upstream's typed structs. Nothing in this module
//! panics on input.

use std::collections::BTreeSet;

use serde_json::Value;

/// The parts of a pod (or pod template) that the checks read.
#[derive(Clone, Copy)]
pub struct PodView<'a> {
    /// `metadata` (labels, annotations).
    pub metadata: &'a Value,
    /// `spec`.
    pub spec: &'a Value,
}

impl<'a> PodView<'a> {
    /// `spec.securityContext`, when it is an object.
    pub fn pod_security_context(&self) -> Option<&'a Value> {
        obj(self.spec.get("securityContext"))
    }

    /// A string annotation, or `None` when absent or not a string.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.metadata.get("annotations")?.get(key)?.as_str()
    }

    /// Every string annotation.
    pub fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.metadata
            .get("annotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// Init containers, then containers, then ephemeral containers, as upstream visits them.
    pub fn containers(&self) -> impl Iterator<Item = Container<'a>> {
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(|key| array(self.spec.get(key)))
            .filter(|c| c.is_object())
            .map(Container)
    }

    /// `spec.volumes` entries that are objects.
    pub fn volumes(&self) -> impl Iterator<Item = &'a Value> {
        array(self.spec.get("volumes")).filter(|v| v.is_object())
    }

    /// Whether the pod explicitly runs in a user namespace (`spec.hostUsers: false`).
    pub fn in_user_namespace(&self) -> bool {
        self.spec.get("hostUsers").and_then(Value::as_bool) == Some(false)
    }

    /// Whether `spec.os.name` is `windows`.
    pub fn is_windows(&self) -> bool {
        str_at(self.spec, &["os", "name"]) == Some("windows")
    }
}

/// One container (of any kind) in a pod spec.
#[derive(Clone, Copy)]
pub struct Container<'a>(pub &'a Value);

impl<'a> Container<'a> {
    /// The container name; empty when missing, as Go's zero value.
    pub fn name(&self) -> String {
        self.0
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// `securityContext`, when it is an object.
    pub fn security_context(&self) -> Option<&'a Value> {
        obj(self.0.get("securityContext"))
    }

    /// A field of the security context, when non-null.
    pub fn sc_field(&self, key: &str) -> Option<&'a Value> {
        present(self.security_context()?.get(key))
    }
}

/// The value when present and non-null.
pub fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// The value when it is an object.
pub fn obj(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| v.is_object())
}

/// The elements of an array value; nothing for any other shape.
pub fn array(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

/// The string elements of an array value.
pub fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    array(v).filter_map(Value::as_str)
}

/// A string at a nested path, when every step exists.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// A boolean field that is JSON `true`.
pub fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

/// `"a", "b"`: each item in double quotes, comma separated.
pub fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

/// The singular form for exactly one, the plural otherwise.
pub fn pluralize<'s>(singular: &'s str, plural: &'s str, count: usize) -> &'s str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
pub fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// A sorted set as a vector, as Go's `sets.String.List()` returns it.
pub fn sorted(set: &BTreeSet<String>) -> Vec<String> {
    set.iter().cloned().collect()
}

/// Quotes a string the way Go's `%q` does for the characters that matter in
/// messages: backslash, double quote and control characters are escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
