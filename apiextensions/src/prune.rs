//! Structural pruning: dropping the fields a schema does not specify (upstream
//! `schema/pruning`), reporting each dropped path as `unknown field "<path>"` needs it.

use serde_json::Value;

use crate::schema::Schema;

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prunes `v` against `s`; `embedded` is true at the resource root and for
/// `x-kubernetes-embedded-resource` nodes, whose type and object meta are kept.
pub(crate) fn prune(
    v: &mut Value,
    s: Option<&Schema>,
    embedded: bool,
    path: &str,
    dropped: &mut Vec<String>,
) {
    if let Some(s) = s
        && s.preserve_unknown
    {
        skip_prune(v, s, embedded || s.embedded, path, dropped);
        return;
    }
    match v {
        Value::Object(o) => {
            let Some(s) = s else {
                dropped.extend(o.keys().map(|k| child(path, k)));
                o.clear();
                return;
            };
            let embedded = embedded || s.embedded;
            let mut unknown = vec![];
            for (k, x) in o.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = s.property(k) {
                    prune(x, Some(p), false, &child(path, k), dropped);
                } else if let Some(a) = &s.additional {
                    prune(x, Some(a), false, &child(path, k), dropped);
                } else {
                    unknown.push(k.clone());
                }
            }
            for k in unknown {
                o.remove(&k);
                dropped.push(child(path, &k));
            }
        }
        Value::Array(items) => {
            let item = s.and_then(|s| s.items.as_deref());
            for (i, x) in items.iter_mut().enumerate() {
                prune(x, item, false, &format!("{path}[{i}]"), dropped);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, specified ones
/// are still pruned by their own schemas.
fn skip_prune(v: &mut Value, s: &Schema, embedded: bool, path: &str, dropped: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = s.child(k) {
                    prune(x, Some(p), false, &child(path, k), dropped);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = &s.items {
                for (i, x) in items.iter_mut().enumerate() {
                    skip_prune(x, item, item.embedded, &format!("{path}[{i}]"), dropped);
                }
            }
        }
        _ => {}
    }
}

fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value, mut obj: Value) -> (Value, Vec<String>) {
        let s = Schema::parse(&schema, "", &mut vec![]);
        let mut dropped = vec![];
        prune(&mut obj, Some(&s), true, "", &mut dropped);
        dropped.sort();
        (obj, dropped)
    }

    // Upstream pruning/algorithm_test.go: unknown fields go, the root's apiVersion, kind
    // and metadata stay, preserve-unknown-fields keeps everything below it.
    #[test]
    fn prunes_unknown_fields() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "string"}, "l": {"type": "array",
                "items": {"type": "object", "properties": {"x": {"type": "string"}}}}}}}});
        let (obj, dropped) = run(
            schema,
            json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n", "x": 1},
                   "spec": {"a": "1", "b": 2, "l": [{"x": "1", "y": 2}]}, "extra": true}),
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n", "x": 1},
                   "spec": {"a": "1", "l": [{"x": "1"}]}})
        );
        assert_eq!(dropped, ["extra", "spec.b", "spec.l[0].y"]);
    }

    #[test]
    fn preserves_and_embeds() {
        let schema = json!({"type": "object", "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                     "properties": {"typed": {"type": "object", "properties": {}}}},
            "res": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object"}}},
            "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"k": {"type": "string"}}}}}});
        let (obj, dropped) = run(
            schema,
            json!({"free": {"any": 1, "typed": {"gone": 1}},
                   "res": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "status": {}},
                   "m": {"a": {"k": "v", "z": 1}}}),
        );
        assert_eq!(
            obj,
            json!({"free": {"any": 1, "typed": {}},
                   "res": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                   "m": {"a": {"k": "v"}}})
        );
        assert_eq!(dropped, ["free.typed.gone", "m.a.z", "res.status"]);
    }
}
