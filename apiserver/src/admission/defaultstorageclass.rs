//! The DefaultStorageClass admission plugin: a new PersistentVolumeClaim that names no
//! class (the field unset; `""` means "no class" and is kept) gets the default
//! StorageClass, the most recently created one when several are marked default.

use serde_json::Value;

use crate::rest::Rest;

const DEFAULT_ANNOTATIONS: &[&str] = &[
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

fn is_default(class: &Value) -> bool {
    let annotations = class.pointer("/metadata/annotations");
    DEFAULT_ANNOTATIONS
        .iter()
        .any(|a| annotations.and_then(|m| m.get(*a)).and_then(Value::as_str) == Some("true"))
}

/// The default class among `classes`: the newest, then by name, as upstream picks.
pub fn default_class(classes: &[Value]) -> Option<String> {
    classes
        .iter()
        .filter(|c| is_default(c))
        .max_by(|a, b| {
            let key = |c: &Value| {
                (
                    c.pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    c.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            };
            let (ta, na) = key(a);
            let (tb, nb) = key(b);
            // newest first; between equals the name that sorts first wins
            ta.cmp(&tb).then(nb.cmp(&na))
        })
        .and_then(|c| c.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
}

/// Sets the default class on a new claim that names none.
pub fn admit(rest: &Rest, pvc: &mut Value) {
    if pvc
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
    {
        return;
    }
    let Some(res) = rest.registry.get("storage.k8s.io", "v1", "storageclasses") else {
        return;
    };
    let (items, _) = rest.store.snapshot(&crate::rest::prefix(&res, ""));
    let items: Vec<Value> = items.iter().map(|c| (**c).clone()).collect();
    if let Some(name) = default_class(&items)
        && let Some(spec) = pvc.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("storageClassName".into(), Value::String(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn newest_default_wins() {
        let class = |name: &str, ts: &str, default: bool| {
            json!({"metadata": {"name": name, "creationTimestamp": ts,
                "annotations": {"storageclass.kubernetes.io/is-default-class": default.to_string()}}})
        };
        let classes = [
            class("old", "2026-01-01T00:00:00Z", true),
            class("new", "2026-02-01T00:00:00Z", true),
            class("newest-but-not-default", "2026-03-01T00:00:00Z", false),
        ];
        assert_eq!(default_class(&classes), Some("new".into()));
        assert_eq!(default_class(&classes[2..]), None);
    }
}
