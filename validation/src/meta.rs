//! `metadata` validation shared by every resource, as upstream's
//! `apimachinery/pkg/api/validation/objectmeta.go`: name and generateName (by the
//! resource's name rule), namespace, labels, annotations, owner references, finalizers,
//! and what may not change on update.

use crate::util::{
    Errs, IMMUTABLE, NEGATIVE, arr, child, get_int, obj, semantic_eq, str_or_empty, validate_labels,
};
use machinery::FieldError;
use machinery::names::{self, NameValidator};
use serde_json::{Map, Value, json};

/// Upstream's `TotalAnnotationSizeLimitB`: 256 KiB over all keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// Whether the object must, must not, or may (unknown resources) carry a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Namespaced: `metadata.namespace` is required.
    Namespaced,
    /// Cluster-scoped: `metadata.namespace` is forbidden.
    Cluster,
    /// Not known here: a namespace, if given, must be a valid namespace name.
    Unknown,
}

fn meta(obj_: &Value) -> &Value {
    obj_.get("metadata").unwrap_or(&Value::Null)
}

/// `ValidateObjectMeta` on create.
pub fn validate_create(obj_: &Value, scope: Scope, name_fn: NameValidator) -> Errs {
    let m = meta(obj_);
    let mut errs = Errs::new();
    let generate_name = str_or_empty(m, "generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                json!(generate_name),
                msg,
            ));
        }
    }
    let name = str_or_empty(m, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid("metadata.name", json!(name), msg));
        }
    }
    let namespace = str_or_empty(m, "namespace");
    match scope {
        Scope::Namespaced if namespace.is_empty() => {
            errs.push(FieldError::required("metadata.namespace", ""))
        }
        Scope::Cluster if !namespace.is_empty() => {
            errs.push(FieldError::forbidden(
                "metadata.namespace",
                "not allowed on this type",
            ));
        }
        Scope::Cluster => {}
        _ if namespace.is_empty() => {}
        _ => {
            for msg in names::name_is_dns_label(namespace, false) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    json!(namespace),
                    msg,
                ));
            }
        }
    }
    if let Some(g) = get_int(m, "generation").filter(|g| *g < 0) {
        errs.push(FieldError::invalid(
            "metadata.generation",
            json!(g),
            NEGATIVE,
        ));
    }
    errs.extend(validate_common(m));
    errs.extend(validate_finalizers(m));
    errs
}

/// Labels, annotations and owner references: checked on create and update alike.
fn validate_common(m: &Value) -> Errs {
    let mut errs = validate_labels(obj(m, "labels"), "metadata.labels");
    errs.extend(validate_annotations(
        obj(m, "annotations"),
        "metadata.annotations",
    ));
    errs.extend(validate_owner_references(arr(m, "ownerReferences")));
    errs
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively), total size bounded.
pub fn validate_annotations(annotations: Option<&Map<String, Value>>, path: &str) -> Errs {
    let mut errs = Errs::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, json!(k), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn validate_owner_references(refs: &[Value]) -> Errs {
    const PATH: &str = "metadata.ownerReferences";
    let mut errs = Errs::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = str_or_empty(r, "apiVersion");
        let kind = str_or_empty(r, "kind");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() || api_version.split('/').count() > 2 {
            errs.push(FieldError::invalid(
                child(PATH, "apiVersion"),
                json!(api_version),
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                child(PATH, "kind"),
                json!(kind),
                "must not be empty",
            ));
        }
        for field in ["name", "uid"] {
            let v = str_or_empty(r, field);
            if v.is_empty() {
                errs.push(FieldError::invalid(
                    child(PATH, field),
                    json!(v),
                    "must not be empty",
                ));
            }
        }
        if api_version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                PATH,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{}", str_or_empty(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    PATH,
                    Value::Array(refs.to_vec()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

fn validate_finalizers(m: &Value) -> Errs {
    let finalizers = arr(m, "finalizers");
    let mut errs = Errs::new();
    for f in finalizers {
        let f = f.as_str().unwrap_or("");
        for msg in names::is_qualified_name(f) {
            errs.push(FieldError::invalid("metadata.finalizers", json!(f), msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f.as_str() == Some(name));
    if has(ORPHAN) && has(FOREGROUND) {
        errs.push(FieldError::invalid(
            "metadata.finalizers",
            Value::Array(finalizers.to_vec()),
            format!("finalizer {ORPHAN} and {FOREGROUND} cannot be both set"),
        ));
    }
    errs
}

/// Go's `%#v` of a `[]string`, as the new-finalizer message prints it.
fn go_string_slice(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `ValidateObjectMetaUpdate`. System fields the server fills in (uid, timestamps) are
/// only compared when the new object carries them.
pub fn validate_update(new: &Value, old: &Value) -> Errs {
    let (n, o) = (meta(new), meta(old));
    let mut errs = Errs::new();
    if o.get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        let old_f: Vec<&str> = arr(o, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr(n, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_string_slice(&extra)
                ),
            ));
        }
    }
    let (ng, og) = (
        get_int(n, "generation").unwrap_or(0),
        get_int(o, "generation").unwrap_or(0),
    );
    if ng < og {
        errs.push(FieldError::invalid(
            "metadata.generation",
            json!(ng),
            "must not be decremented",
        ));
    }
    for field in ["name", "namespace"] {
        let (nv, ov) = (str_or_empty(n, field), str_or_empty(o, field));
        if nv != ov {
            errs.push(FieldError::invalid(
                child("metadata", field),
                json!(nv),
                IMMUTABLE,
            ));
        }
    }
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let nv = n.get(field).unwrap_or(&Value::Null);
        if !nv.is_null() && !semantic_eq(nv, o.get(field).unwrap_or(&Value::Null)) {
            errs.push(FieldError::invalid(
                child("metadata", field),
                nv.clone(),
                IMMUTABLE,
            ));
        }
    }
    errs.extend(validate_common(n));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use machinery::names::{name_is_dns_label, name_is_dns_subdomain};

    fn msgs(errs: &Errs) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    #[test]
    fn name_is_required() {
        let errs = validate_create(
            &json!({"metadata": {"namespace": "default"}}),
            Scope::Namespaced,
            name_is_dns_subdomain,
        );
        assert_eq!(
            msgs(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
    }

    #[test]
    fn name_and_namespace_format() {
        let obj = json!({"metadata": {"name": "Bad_Name", "namespace": "Bad"}});
        let m = msgs(&validate_create(
            &obj,
            Scope::Namespaced,
            name_is_dns_subdomain,
        ));
        assert!(m[0].starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        assert!(
            m[1].starts_with(
                "metadata.namespace: Invalid value: \"Bad\": a lowercase RFC 1123 label"
            )
        );
        let m = msgs(&validate_create(
            &json!({"metadata": {"name": "a", "namespace": "x"}}),
            Scope::Cluster,
            name_is_dns_label,
        ));
        assert_eq!(
            m,
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let m = msgs(&validate_create(
            &json!({"metadata": {"name": "a"}}),
            Scope::Namespaced,
            name_is_dns_label,
        ));
        assert_eq!(m, vec!["metadata.namespace: Required value"]);
    }

    #[test]
    fn generate_name_is_checked_as_prefix() {
        let obj =
            json!({"metadata": {"generateName": "web-", "name": "web-abcde", "namespace": "d"}});
        assert!(validate_create(&obj, Scope::Namespaced, name_is_dns_subdomain).is_empty());
        let obj = json!({"metadata": {"generateName": "Web-", "name": "x", "namespace": "d"}});
        let m = msgs(&validate_create(
            &obj,
            Scope::Namespaced,
            name_is_dns_subdomain,
        ));
        assert!(m[0].starts_with("metadata.generateName: Invalid value: \"Web-\""));
    }

    #[test]
    fn labels_and_annotations() {
        let obj = json!({"metadata": {"name": "a", "labels": {"-bad": "ok", "k": "-v"}, "annotations": {"A/B/C": "x"}}});
        let m = msgs(&validate_create(
            &obj,
            Scope::Cluster,
            name_is_dns_subdomain,
        ));
        assert_eq!(
            m[0],
            "metadata.labels: Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(m[1].starts_with(
            "metadata.labels: Invalid value: \"-v\": a valid label must be an empty string"
        ));
        assert!(
            m[2].starts_with("metadata.annotations: Invalid value: \"A/B/C\": a valid label key")
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let obj = json!({"metadata": {"name": "a", "annotations": {"k": big}}});
        let m = msgs(&validate_create(
            &obj,
            Scope::Cluster,
            name_is_dns_subdomain,
        ));
        assert_eq!(
            m,
            vec!["metadata.annotations: Too long: must have at most 262144 bytes"]
        );
    }

    #[test]
    fn owner_references_and_finalizers() {
        let obj = json!({"metadata": {"name": "a", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "1", "controller": true},
            {"apiVersion": "", "kind": "Deployment", "name": "", "uid": "2", "controller": true},
        ], "finalizers": ["orphan", "foregroundDeletion", "bad/x/y"]}});
        let m = msgs(&validate_create(
            &obj,
            Scope::Cluster,
            name_is_dns_subdomain,
        ));
        assert_eq!(
            m[0],
            "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty"
        );
        assert_eq!(
            m[1],
            "metadata.ownerReferences.name: Invalid value: \"\": must not be empty"
        );
        assert!(m[2].ends_with("Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/r and Deployment/"));
        assert!(m[3].starts_with("metadata.finalizers: Invalid value: \"bad/x/y\""));
        assert!(m[4].ends_with("finalizer orphan and foregroundDeletion cannot be both set"));
    }

    #[test]
    fn update_rules() {
        let old = json!({"metadata": {"name": "a", "namespace": "n", "uid": "u", "generation": 2, "deletionTimestamp": "t", "finalizers": ["x"]}});
        let new = json!({"metadata": {"name": "b", "namespace": "n", "uid": "v", "generation": 1, "finalizers": ["x", "y"]}});
        let m = msgs(&validate_update(&new, &old));
        assert_eq!(
            m,
            vec![
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"y\"}",
                "metadata.generation: Invalid value: 1: must not be decremented",
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.uid: Invalid value: \"v\": field is immutable",
            ]
        );
        let same = json!({"metadata": {"name": "a"}});
        assert!(validate_update(&same, &json!({"metadata": {"name": "a", "uid": "u"}})).is_empty());
    }
}
