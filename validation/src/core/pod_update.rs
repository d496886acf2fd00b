//! What a Pod update may change, as upstream's `ValidatePodUpdate`: container images,
//! `activeDeadlineSeconds` (only shortened), added tolerations, removed scheduling gates,
//! and a negative grace period raised to 1. Everything else in `spec` is fixed.

use crate::util::{Errs, arr, child, get_int, index, semantic_eq, str_or_empty};
use machinery::FieldError;
use machinery::names;
use serde_json::{Map, Value, json};

const UPDATABLE: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// `ValidatePodUpdate` minus the metadata and full-spec checks the caller runs.
pub fn validate_pod_update(new: &Value, old: &Value) -> Errs {
    let empty = Value::Object(Map::new());
    let ns = new.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let os = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let mut errs = Errs::new();
    for list in ["containers", "initContainers"] {
        let (n, o) = (arr(ns, list), arr(os, list));
        let p = child("spec", list);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = str_or_empty(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(child(&index(&p, i), "image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    child(&index(&p, i), "image"),
                    json!(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let deadline_path = "spec.activeDeadlineSeconds";
    match (
        get_int(ns, "activeDeadlineSeconds"),
        get_int(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                deadline_path,
                json!(n),
                names::inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                deadline_path,
                json!(n),
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => {
            errs.push(FieldError::invalid(
                deadline_path,
                Value::Null,
                "must not update from a positive integer to nil value",
            ));
        }
        _ => {}
    }
    errs.extend(only_added_tolerations(
        arr(ns, "tolerations"),
        arr(os, "tolerations"),
    ));
    errs.extend(only_deleted_gates(
        arr(ns, "schedulingGates"),
        arr(os, "schedulingGates"),
    ));
    if semantic_eq(ns, os) {
        return errs;
    }
    let munged = munge(ns, os);
    if !semantic_eq(&munged, os) {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE.join(","),
                diff(os, &munged)
            ),
        ));
    }
    errs
}

/// The new spec with every field a Pod update may change set back to the old value.
fn munge(ns: &Value, os: &Value) -> Value {
    let mut m = ns.clone();
    for list in ["containers", "initContainers"] {
        if let Some(items) = m.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in items.iter_mut().enumerate() {
                let old_image = os
                    .get(list)
                    .and_then(|l| l.get(i))
                    .and_then(|c| c.get("image"))
                    .cloned();
                if let (Some(obj), Some(img)) = (c.as_object_mut(), old_image) {
                    obj.insert("image".into(), img);
                }
            }
        }
    }
    if let Some(obj) = m.as_object_mut() {
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match os.get(field) {
                Some(v) => obj.insert(field.into(), v.clone()),
                None => obj.remove(field),
            };
        }
        let old_grace = get_int(os, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && get_int(ns, "terminationGracePeriodSeconds") == Some(1)
        {
            obj.insert("terminationGracePeriodSeconds".into(), json!(old_grace));
        }
    }
    m
}

/// A short rendering of what differs, in the spirit of upstream's `cmp.Diff`.
fn diff(old: &Value, new: &Value) -> String {
    let mut lines = vec!["  core.PodSpec{".to_string()];
    let keys: Vec<&String> = match (old.as_object(), new.as_object()) {
        (Some(o), Some(n)) => {
            let mut k: Vec<&String> = o
                .keys()
                .chain(n.keys().filter(|k| !o.contains_key(*k)))
                .collect();
            k.dedup();
            k
        }
        _ => Vec::new(),
    };
    for k in keys {
        let (o, n) = (
            old.get(k).unwrap_or(&Value::Null),
            new.get(k).unwrap_or(&Value::Null),
        );
        if !semantic_eq(o, n) {
            lines.push(format!("- \t{k}: {o},"));
            lines.push(format!("+ \t{k}: {n},"));
        }
    }
    lines.push("  }".into());
    lines.join("\n")
}

fn only_added_tolerations(new: &[Value], old: &[Value]) -> Errs {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    let mut errs = Errs::new();
    for o in old {
        let found = new.iter().any(|n| {
            semantic_eq(&strip(n), &strip(o))
                && match (
                    get_int(o, "tolerationSeconds"),
                    get_int(n, "tolerationSeconds"),
                ) {
                    (None, None) => true,
                    (Some(os), Some(ns)) => ns <= os || os <= 0,
                    _ => false,
                }
        });
        if !found {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    errs
}

fn only_deleted_gates(new: &[Value], old: &[Value]) -> Errs {
    let old_names: Vec<&str> = old.iter().map(|g| str_or_empty(g, "name")).collect();
    new.iter()
        .map(|g| str_or_empty(g, "name"))
        .filter(|n| !old_names.contains(n))
        .map(|n| {
            FieldError::forbidden(
                "spec.schedulingGates",
                format!("only deletion is allowed, but found new scheduling gate '{n}'"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(image: &str, extra: Value) -> Value {
        let mut spec =
            json!({"containers": [{"name": "a", "image": image}], "restartPolicy": "Always"});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        json!({"spec": spec})
    }

    #[test]
    fn image_changes_are_allowed() {
        assert!(
            validate_pod_update(&pod("nginx:2", json!({})), &pod("nginx:1", json!({}))).is_empty()
        );
    }

    #[test]
    fn other_changes_are_forbidden() {
        let errs = validate_pod_update(
            &pod("x", json!({"nodeName": "n2"})),
            &pod("x", json!({"nodeName": "n1"})),
        );
        assert_eq!(errs.len(), 1);
        let m = errs[0].message();
        assert!(m.starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{m}");
        assert!(m.contains("nodeName"));
    }

    #[test]
    fn containers_cannot_be_added() {
        let mut new = pod("x", json!({}));
        if let Some(c) = new
            .pointer_mut("/spec/containers")
            .and_then(Value::as_array_mut)
        {
            c.push(json!({"name": "b", "image": "y"}));
        }
        let errs = validate_pod_update(&new, &pod("x", json!({})));
        assert_eq!(
            errs[0].message(),
            "spec.containers: Forbidden: pod updates may not add or remove containers"
        );
    }

    #[test]
    fn deadlines_and_tolerations() {
        let errs = validate_pod_update(
            &pod("x", json!({"activeDeadlineSeconds": 20})),
            &pod("x", json!({"activeDeadlineSeconds": 10})),
        );
        assert_eq!(
            errs[0].message(),
            "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"
        );
        let t = json!({"tolerations": [{"key": "a", "operator": "Exists"}]});
        let t2 = json!({"tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]});
        assert!(validate_pod_update(&pod("x", t2.clone()), &pod("x", t.clone())).is_empty());
        let errs = validate_pod_update(&pod("x", t), &pod("x", t2));
        assert_eq!(
            errs[0].message(),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );
        let errs = validate_pod_update(
            &pod("x", json!({"schedulingGates": [{"name": "g"}]})),
            &pod("x", json!({})),
        );
        assert_eq!(
            errs[0].message(),
            "spec.schedulingGates: Forbidden: only deletion is allowed, but found new scheduling gate 'g'"
        );
    }
}
