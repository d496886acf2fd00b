//! Storage in the core group: PersistentVolumeClaims and PersistentVolumes (defaults,
//! spec rules, and the fixed-after-creation claim spec).

use crate::util::{
    Errs, arr, child, get_str, key, nonnegative_quantity, obj, one_of, parse_quantity,
    quantity_text, semantic_eq, set_default, set_default_str, str_or_empty,
    validate_label_selector, with_mut,
};
use machinery::FieldError;
use machinery::names;
use serde_json::{Value, json};

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// `SetDefaults_PersistentVolumeClaimSpec`.
pub fn default_pvc_spec(spec: &mut Value) {
    set_default(spec, "volumeMode", json!("Filesystem"));
}

/// PVC defaults: spec as above, `status.phase: Pending`.
pub fn default_pvc(pvc: &mut Value) {
    with_mut(pvc, "/spec", default_pvc_spec);
    set_default(pvc, "status", json!({}));
    with_mut(pvc, "/status", |s| set_default_str(s, "phase", "Pending"));
}

/// `ValidatePersistentVolumeClaimSpec`.
pub fn validate_pvc_spec(spec: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            child(path, "accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) {
        errs.extend(validate_label_selector(sel, &child(path, "selector")));
    }
    errs.extend(validate_access_modes(modes, &child(path, "accessModes")));
    let storage_path = key(&child(path, "resources"), "storage");
    match spec.pointer("/resources/requests/storage") {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => match parse_quantity(q) {
            Some(v) if v <= 0.0 => errs.push(FieldError::invalid(
                &storage_path,
                quantity_text(q),
                "must be greater than zero",
            )),
            _ => errs.extend(nonnegative_quantity(q, &storage_path)),
        },
    }
    if let Some(sc) = get_str(spec, "storageClassName").filter(|s| !s.is_empty()) {
        for msg in names::is_dns1123_subdomain(sc) {
            errs.push(FieldError::invalid(
                child(path, "storageClassName"),
                json!(sc),
                msg,
            ));
        }
    }
    errs.extend(one_of(
        spec,
        "volumeMode",
        path,
        &["Block", "Filesystem"],
        false,
    ));
    errs
}

fn validate_access_modes(modes: &[Value], path: &str) -> Errs {
    let mut errs = Errs::new();
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(path, json!(m), ACCESS_MODES));
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m.as_str() == Some("ReadWriteOncePod")) {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

/// PVC: the spec is fixed once created, except for growing the request and binding.
pub fn validate_pvc_update(new: &Value, old: &Value) -> Errs {
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let mut errs = Errs::new();
    let mut n = ns.clone();
    let mut o = os.clone();
    if str_or_empty(os, "volumeName").is_empty()
        && let (Some(om), Some(v)) = (o.as_object_mut(), ns.get("volumeName"))
    {
        om.insert("volumeName".into(), v.clone());
    }
    let bound = new.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    if let Some(nm) = n.as_object_mut() {
        nm.remove("volumeAttributesClassName");
        if bound && let Some(old_storage) = os.pointer("/resources/requests/storage") {
            with_mut(&mut n, "/resources/requests", |r| {
                if let Some(rm) = r.as_object_mut() {
                    rm.insert("storage".into(), old_storage.clone());
                }
            });
        }
    }
    if let Some(om) = o.as_object_mut() {
        om.remove("volumeAttributesClassName");
    }
    if !semantic_eq(&n, &o) {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    let size = |s: &Value| {
        s.pointer("/resources/requests/storage")
            .and_then(parse_quantity)
    };
    if let (Some(new_size), Some(old_size)) = (size(ns), size(os))
        && new_size < old_size
    {
        let capacity = old
            .pointer("/status/capacity/storage")
            .and_then(parse_quantity)
            .unwrap_or(0.0);
        if new_size <= capacity {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            ));
        }
    }
    errs
}

/// PV defaults: reclaim policy Retain, volume mode Filesystem, phase Pending.
pub fn default_pv(pv: &mut Value) {
    with_mut(pv, "/spec", |s| {
        set_default_str(s, "persistentVolumeReclaimPolicy", "Retain");
        set_default(s, "volumeMode", json!("Filesystem"));
    });
    set_default(pv, "status", json!({}));
    with_mut(pv, "/status", |s| set_default_str(s, "phase", "Pending"));
}

/// `ValidatePersistentVolume` (the common parts).
pub fn validate_pv(pv: &Value) -> Errs {
    let spec = pv.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required("spec.accessModes", ""));
    }
    errs.extend(validate_access_modes(modes, "spec.accessModes"));
    match obj(spec, "capacity") {
        None => errs.push(FieldError::required("spec.capacity", "")),
        Some(c) => match c.get("storage") {
            None => errs.push(FieldError::not_supported(
                "spec.capacity",
                json!(c.keys().next()),
                &["storage"],
            )),
            Some(q) => errs.extend(nonnegative_quantity(q, &key("spec.capacity", "storage"))),
        },
    }
    errs.extend(one_of(
        spec,
        "persistentVolumeReclaimPolicy",
        "spec",
        &["Delete", "Recycle", "Retain"],
        false,
    ));
    errs.extend(one_of(
        spec,
        "volumeMode",
        "spec",
        &["Block", "Filesystem"],
        false,
    ));
    errs
}
