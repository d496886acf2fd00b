//! Field selectors (`?fieldSelector=spec.nodeName=n1,status.phase!=Running`): parsing,
//! and matching against the field set a resource exposes.

use serde_json::Value;

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A conjunction of field terms; empty matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses the selector; values may escape `\,`, `\=` and `\\` as upstream allows.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for term in split_unescaped(input, ',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, value, negated) = if let Some((f, v)) = split_op(term, "!=") {
                (f, v, true)
            } else if let Some((f, v)) = split_op(term, "==") {
                (f, v, false)
            } else if let Some((f, v)) = split_op(term, "=") {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{term}'"
                ));
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                value: unescape(value.trim()),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// The single value required for `field`, when the selector pins it (e.g. a kubelet's
    /// `spec.nodeName=n1`), for indexed lookups.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.negated)
            .map(|r| r.value.as_str())
    }

    /// Matches given a lookup of the object's selectable fields; unknown fields were
    /// rejected earlier by [`FieldSelector::check_fields`].
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = lookup(&r.field).unwrap_or_default();
            (v == r.value) != r.negated
        })
    }

    /// Rejects fields the resource does not support, with upstream's message
    /// (`field label not supported: spec.foo`).
    pub fn check_fields(&self, supported: impl Fn(&str) -> bool) -> Result<(), String> {
        match self.requirements.iter().find(|r| !supported(&r.field)) {
            Some(r) => Err(format!("field label not supported: {}", r.field)),
            None => Ok(()),
        }
    }
}

fn split_op<'a>(term: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i + op.len() <= bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if term.get(i..i + op.len()) == Some(op) {
            return Some((&term[..i], &term[i + op.len()..]));
        }
        i += 1;
    }
    None
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads a dotted field path (`spec.nodeName`) out of an object as the string a field
/// selector compares against (booleans and numbers as their text).
pub fn field_value(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        // e.g. status.podIPs: upstream matches the first IP
        Value::Array(a) => a
            .first()
            .and_then(|f| f.get("ip").or(Some(f)))
            .and_then(Value::as_str)
            .map(String::from),
        Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_matches() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Running").expect("parse");
        assert_eq!(s.requirements.len(), 2);
        let pod = json!({"spec":{"nodeName":"n1"},"status":{"phase":"Pending"}});
        assert!(s.matches(|f| field_value(&pod, f)));
        let pod2 = json!({"spec":{"nodeName":"n1"},"status":{"phase":"Running"}});
        assert!(!s.matches(|f| field_value(&pod2, f)));
        assert_eq!(s.required_value("spec.nodeName"), Some("n1"));
    }

    #[test]
    fn escapes_and_errors() {
        let s = FieldSelector::parse(r"metadata.name=a\,b").expect("parse");
        assert_eq!(s.requirements[0].value, "a,b");
        assert!(FieldSelector::parse("nonsense").is_err());
        // empty value selects objects where the field is empty or absent
        let s = FieldSelector::parse("spec.nodeName=").expect("parse");
        assert!(s.matches(|f| field_value(&json!({"spec":{}}), f)));
    }
}
