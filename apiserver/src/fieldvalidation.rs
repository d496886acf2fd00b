//! `fieldValidation`: finds fields a built-in object carries that its schema does not
//! know, so the write path can refuse them (Strict), warn about them (Warn) or drop them
//! silently (Ignore), worded as upstream's decoder.

use serde_json::{Map, Value};

/// The schema a `$ref` (or a single-`allOf` wrapper) points at.
fn resolve<'a>(defs: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r.rsplit('/').next().and_then(|name| defs.get(name)) {
                Some(target) => s = target,
                None => return s,
            }
        } else if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = only;
        } else {
            break;
        }
    }
    s
}

fn walk(
    defs: &Map<String, Value>,
    schema: &Value,
    value: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let schema = resolve(defs, schema);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(obj) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in obj {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(sub), _) => walk(defs, sub, v, &child, out),
                    (None, Some(sub)) => walk(defs, sub, v, &child, out),
                    (None, None) if props.is_some() => out.push(child),
                    // an object schema with neither: free-form (RawExtension, FieldsV1)
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(defs, item_schema, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Dotted paths of the fields of `obj` unknown to `definition` (empty when the definition
/// itself is unknown, as for custom resources without a schema).
pub fn unknown_fields(definition: &str, obj: &Value) -> Vec<String> {
    let defs = openapi::definitions();
    let Some(schema) = defs.get(definition) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(defs, schema, obj, "", &mut out);
    out
}

/// Removes the fields at `paths` (as returned by [`unknown_fields`]) from `obj`.
pub fn drop_fields(obj: &mut Value, paths: &[String]) {
    for p in paths {
        // "spec.containers[0].foo" -> ["spec", "containers", "0", "foo"]
        let parts: Vec<String> = p
            .replace('[', ".")
            .replace(']', "")
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| s.replace('~', "~0").replace('/', "~1"))
            .collect();
        let Some((last, parents)) = parts.split_last() else {
            continue;
        };
        let pointer: String = parents.iter().map(|p| format!("/{p}")).collect();
        if let Some(Value::Object(m)) = obj.pointer_mut(&pointer) {
            m.remove(last.replace("~1", "/").replace("~0", "~").as_str());
        }
    }
}

/// Dotted paths of keys that appear twice in one JSON object of `body`, in document order
/// (`spec.paused`). Bodies that are not JSON objects have none.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    struct Walk<'a> {
        path: String,
        out: &'a mut Vec<String>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let child = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                if !seen.insert(key) {
                    self.out.push(child.clone());
                }
                map.next_value_seed(Walk {
                    path: child,
                    out: &mut *self.out,
                })?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    path: format!("{}[{i}]", self.path),
                    out: &mut *self.out,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let _ = IgnoredAny;
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = Walk {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    if walked.is_err() { Vec::new() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_at_any_depth() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "bogus": 1},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "foo": 1,
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "x"}]}}}});
        let mut found = unknown_fields("io.k8s.api.apps.v1.Deployment", &d);
        found.sort();
        assert_eq!(
            found,
            vec![
                "metadata.bogus",
                "spec.foo",
                "spec.template.spec.containers[0].imagePullPolicyy"
            ]
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"any": "thing"}}, "data": {"k": "v"}});
        assert!(unknown_fields("io.k8s.api.core.v1.ConfigMap", &cm).is_empty());
        let dups = duplicate_fields(
            br#"{"spec": {"paused": true, "paused": false, "c": [{"a": 1, "a": 2}]}}"#,
        );
        assert_eq!(dups, vec!["spec.paused", "spec.c[0].a"]);
        assert!(duplicate_fields(b"not json").is_empty());
        let mut d2 = d.clone();
        drop_fields(&mut d2, &found);
        assert!(unknown_fields("io.k8s.api.apps.v1.Deployment", &d2).is_empty());
    }
}
