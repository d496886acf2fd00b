//! The `FieldsV1` encoding of a [`Set`], as stored in `metadata.managedFields[].fieldsV1`.
//!
//! Each path element is a key: `f:<field>`, `k:<JSON object of key fields>`,
//! `v:<JSON value>` or `i:<index>`. An element that is itself a member and also has
//! members below it carries a `"."` key; a member with nothing below is `{}`. Keys appear
//! in element order, `"."` first, and JSON inside keys is compact with `<`, `>` and `&`
//! escaped, as Go's encoder writes it.

use serde_json::{Map, Value};

use super::{PathElement, Set};

/// Encodes a set as a `FieldsV1` object.
pub fn to_fields_v1(set: &Set) -> Value {
    Value::Object(encode(set, false))
}

fn encode(set: &Set, include_self: bool) -> Map<String, Value> {
    let mut out = Map::new();
    if include_self {
        out.insert(".".into(), Value::Object(Map::new()));
    }
    let mut keys: Vec<&PathElement> = set
        .members()
        .chain(set.children().map(|(pe, _)| pe))
        .collect();
    keys.sort();
    keys.dedup();
    for pe in keys {
        let member = set.is_member(pe);
        let body = match set.child(pe) {
            Some(child) if !child.is_empty() => encode(child, member),
            _ if member => Map::new(),
            _ => continue,
        };
        out.insert(element_key(pe), Value::Object(body));
    }
    out
}

/// Go's JSON encoder escapes these in strings; upstream's keys carry the escapes.
fn go_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The `FieldsV1` key of one path element.
pub fn element_key(pe: &PathElement) -> String {
    match pe {
        PathElement::Field(name) => format!("f:{name}"),
        PathElement::Key(fields) => {
            let obj: Map<String, Value> = fields.iter().cloned().collect();
            format!("k:{}", go_json(&Value::Object(obj)))
        }
        PathElement::Value(v) => format!("v:{}", go_json(v)),
        PathElement::Index(i) => format!("i:{i}"),
    }
}

/// Parses one `FieldsV1` key.
pub fn parse_element(key: &str) -> Result<PathElement, String> {
    let (kind, rest) = key
        .split_once(':')
        .ok_or_else(|| format!("unknown path element key {key:?}"))?;
    match kind {
        "f" => Ok(PathElement::Field(rest.to_string())),
        "k" => {
            let Value::Object(fields) = serde_json::from_str(rest).map_err(|e| e.to_string())?
            else {
                return Err(format!("key of path element {key:?} is not an object"));
            };
            let mut fields: Vec<(String, Value)> = fields.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        "v" => Ok(PathElement::Value(
            serde_json::from_str(rest).map_err(|e| e.to_string())?,
        )),
        "i" => rest
            .parse()
            .map(PathElement::Index)
            .map_err(|e| e.to_string()),
        _ => Err(format!("unknown path element key {key:?}")),
    }
}

/// Decodes a `FieldsV1` object into a set.
pub fn from_fields_v1(value: &Value) -> Result<Set, String> {
    let mut set = Set::new();
    decode(value, &mut Vec::new(), &mut set, 0)?;
    Ok(set)
}

fn decode(
    value: &Value,
    prefix: &mut Vec<PathElement>,
    set: &mut Set,
    depth: usize,
) -> Result<(), String> {
    if depth > 64 {
        return Err("fieldsV1 nested too deeply".into());
    }
    let Value::Object(map) = value else {
        return Err("fieldsV1 entries must be objects".into());
    };
    for (key, child) in map {
        if key == "." {
            if prefix.is_empty() {
                return Err("\".\" at the root of fieldsV1".into());
            }
            set.insert(prefix);
            continue;
        }
        let pe = parse_element(key)?;
        prefix.push(pe);
        match child {
            Value::Object(m) if m.is_empty() => set.insert(prefix),
            _ => decode(child, prefix, set, depth + 1)?,
        }
        prefix.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_upstream_encoding() {
        let fields = json!({
            "f:data": {".": {}, "f:key": {}},
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}}},
            "f:finalizers": {"v:\"a\"": {}}
        });
        let set = from_fields_v1(&fields).unwrap();
        let out = to_fields_v1(&set);
        // Keys come back sorted; compare as values.
        assert_eq!(out, fields);
        let text = serde_json::to_string(&out).unwrap();
        assert!(
            text.starts_with(r#"{"f:data":{".":{},"f:key":{}},"f:finalizers""#),
            "{text}"
        );
    }

    #[test]
    fn key_elements_are_compact_sorted_and_escaped() {
        let pe = PathElement::Key(vec![
            ("containerPort".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        assert_eq!(
            element_key(&pe),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        assert_eq!(
            element_key(&PathElement::Value(json!("a<b"))),
            r#"v:"a\u003cb""#
        );
        assert_eq!(
            parse_element(r#"k:{"protocol":"TCP","containerPort":80}"#).unwrap(),
            pe
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(from_fields_v1(&json!({"x:y": {}})).is_err());
        assert!(from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(from_fields_v1(&json!({".": {}})).is_err());
    }
}
