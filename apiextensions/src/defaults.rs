//! Structural defaulting (upstream `schema/defaulting`): `default` values fill missing
//! fields, and null values of non-nullable fields; nulls of non-nullable fields without
//! a default are dropped first, as upstream does right after pruning.

use serde_json::Value;

use crate::schema::Schema;

fn non_nullable_null(v: &Value, s: &Schema) -> bool {
    v.is_null() && !s.nullable
}

/// Applies defaults below `v`.
pub(crate) fn default(v: &mut Value, s: &Schema) {
    match v {
        Value::Object(o) => {
            for (k, p) in &s.properties {
                let Some(d) = &p.default else { continue };
                match o.get(k) {
                    Some(x) if !non_nullable_null(x, p) => {}
                    _ => {
                        o.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, x) in o.iter_mut() {
                if let Some(p) = s.child(k) {
                    if x.is_null()
                        && !p.nullable
                        && let Some(d) = &p.default
                    {
                        *x = d.clone();
                    }
                    default(x, p);
                }
            }
        }
        Value::Array(items) => {
            let Some(item) = &s.items else { return };
            for x in items.iter_mut() {
                if non_nullable_null(x, item)
                    && let Some(d) = &item.default
                {
                    *x = d.clone();
                }
                default(x, item);
            }
        }
        _ => {}
    }
}

/// Upstream `PruneNonNullableNullsWithoutDefaults`.
pub(crate) fn prune_nulls(v: &mut Value, s: &Schema) {
    match v {
        Value::Object(o) => {
            o.retain(|k, x| match s.child(k) {
                Some(p) => !(x.is_null() && !p.nullable && p.default.is_none()),
                None => true,
            });
            for (k, x) in o.iter_mut() {
                if let Some(p) = s.child(k) {
                    prune_nulls(x, p);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = &s.items {
                items.iter_mut().for_each(|x| prune_nulls(x, item));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value, mut obj: Value) -> Value {
        let s = Schema::parse(&schema, "", &mut vec![]);
        prune_nulls(&mut obj, &s);
        default(&mut obj, &s);
        obj
    }

    // Upstream defaulting/algorithm_test.go: defaults fill missing and null (non-nullable)
    // fields, apply inside defaulted values, and reach list items and map values.
    #[test]
    fn fills_missing_fields() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "auto"},
                "opt": {"type": "string", "nullable": true, "default": "x"},
                "gone": {"type": "string"},
                "items": {"type": "array", "items": {"type": "object",
                    "properties": {"p": {"type": "integer", "default": 80}}}}}}}});
        assert_eq!(
            run(schema.clone(), json!({})),
            json!({"spec": {"replicas": 1, "mode": "auto", "opt": "x"}})
        );
        assert_eq!(
            run(
                schema,
                json!({"spec": {"replicas": 3, "mode": null, "opt": null, "gone": null, "items": [{}]}})
            ),
            json!({"spec": {"replicas": 3, "mode": "auto", "opt": null, "items": [{"p": 80}]}})
        );
    }
}
