//! Pod spec validation, as upstream's `ValidatePodSpec` and what it calls: containers,
//! policies, tolerations (container details live in `container`); plus pod templates.

use super::container::{
    validate_container_ports, validate_env, validate_env_from, validate_probe, validate_resources,
};
use super::volumes::{validate_volume_mounts, validate_volumes};
use crate::meta::validate_annotations;
use crate::util::{
    Errs, arr, child, get_int, get_str, has, index, obj, one_of, str_or_empty,
    validate_dns1123_label, validate_labels, validate_qualified_name,
};
use machinery::FieldError;
use machinery::names;
use serde_json::{Value, json};

const MAX_INT32: i64 = i32::MAX as i64;

/// `ValidatePodTemplateSpec`: template labels and annotations, then the pod spec.
pub fn validate_pod_template(template: &Value, path: &str) -> Errs {
    let m = template.get("metadata").unwrap_or(&Value::Null);
    let mut errs = validate_labels(obj(m, "labels"), &child(path, "labels"));
    errs.extend(validate_annotations(
        obj(m, "annotations"),
        &child(path, "annotations"),
    ));
    errs.extend(validate_pod_spec(
        template.get("spec").unwrap_or(&Value::Null),
        &child(path, "spec"),
    ));
    errs
}

/// `ValidatePodSpec`.
pub fn validate_pod_spec(spec: &Value, path: &str) -> Errs {
    let (mut errs, volumes) = validate_volumes(arr(spec, "volumes"), &child(path, "volumes"));
    let containers = arr(spec, "containers");
    errs.extend(validate_containers(
        containers,
        &volumes,
        &child(path, "containers"),
    ));
    errs.extend(validate_init_containers(
        arr(spec, "initContainers"),
        containers,
        &volumes,
        &child(path, "initContainers"),
    ));
    errs.extend(one_of(
        spec,
        "restartPolicy",
        path,
        &["Always", "OnFailure", "Never"],
        true,
    ));
    errs.extend(one_of(
        spec,
        "dnsPolicy",
        path,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        true,
    ));
    errs.extend(validate_labels(
        obj(spec, "nodeSelector"),
        &child(path, "nodeSelector"),
    ));
    for (i, s) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if str_or_empty(s, "name").is_empty() {
            errs.push(FieldError::required(
                child(&index(&child(path, "imagePullSecrets"), i), "name"),
                "",
            ));
        }
    }
    for (field, name_fn) in [
        (
            "serviceAccountName",
            names::name_is_dns_subdomain as names::NameValidator,
        ),
        ("nodeName", names::name_is_dns_subdomain),
        ("priorityClassName", names::name_is_dns_subdomain),
        ("runtimeClassName", names::name_is_dns_subdomain),
    ] {
        let v = str_or_empty(spec, field);
        if !v.is_empty() {
            for msg in name_fn(v, false) {
                errs.push(FieldError::invalid(child(path, field), json!(v), msg));
            }
        }
    }
    if let Some(v) = get_int(spec, "activeDeadlineSeconds").filter(|v| !(1..=MAX_INT32).contains(v))
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            json!(v),
            names::inclusive_range_error(1, MAX_INT32),
        ));
    }
    for field in ["hostname", "subdomain"] {
        let v = str_or_empty(spec, field);
        if !v.is_empty() {
            errs.extend(validate_dns1123_label(v, &child(path, field)));
        }
    }
    errs.extend(validate_tolerations(
        arr(spec, "tolerations"),
        &child(path, "tolerations"),
    ));
    errs.extend(one_of(
        spec,
        "preemptionPolicy",
        path,
        &["Never", "PreemptLowerPriority"],
        false,
    ));
    errs
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Value], path: &str) -> Errs {
    let mut errs = Errs::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let k = str_or_empty(t, "key");
        let op = str_or_empty(t, "operator");
        let effect = str_or_empty(t, "effect");
        if !k.is_empty() {
            errs.extend(validate_qualified_name(k, &child(&p, "key")));
        }
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                json!(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if has(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                json!(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = str_or_empty(t, "value");
        match op {
            "Equal" | "" => {
                for msg in names::is_valid_label_value(value) {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        json!(value),
                        msg,
                    ));
                }
            }
            "Exists" if !value.is_empty() => {
                errs.push(FieldError::invalid(
                    child(&p, "operator"),
                    t.clone(),
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
            "Exists" => {}
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                json!(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(one_of(
                t,
                "effect",
                &p,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                false,
            ));
        }
    }
    errs
}

fn validate_containers(containers: &[Value], volumes: &[String], path: &str) -> Errs {
    let mut errs = Errs::new();
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, volumes, &p));
        let name = str_or_empty(c, "name");
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(child(&p, "name"), json!(name)));
        } else {
            seen.push(name);
        }
        if has(c, "restartPolicy") {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
        errs.extend(validate_probe(c, "livenessProbe", &p, true));
        errs.extend(validate_probe(c, "readinessProbe", &p, false));
        errs.extend(validate_probe(c, "startupProbe", &p, true));
    }
    errs
}

fn validate_init_containers(
    init: &[Value],
    containers: &[Value],
    volumes: &[String],
    path: &str,
) -> Errs {
    let mut errs = Errs::new();
    let mut seen: Vec<&str> = containers.iter().map(|c| str_or_empty(c, "name")).collect();
    for (i, c) in init.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, volumes, &p));
        let name = str_or_empty(c, "name");
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(child(&p, "name"), json!(name)));
        } else {
            seen.push(name);
        }
        let restartable = get_str(c, "restartPolicy") == Some("Always");
        if let Some(rp) = get_str(c, "restartPolicy").filter(|rp| *rp != "Always") {
            errs.push(FieldError::not_supported(
                child(&p, "restartPolicy"),
                json!(rp),
                &["Always"],
            ));
        }
        if restartable {
            errs.extend(validate_probe(c, "livenessProbe", &p, true));
            errs.extend(validate_probe(c, "readinessProbe", &p, false));
            errs.extend(validate_probe(c, "startupProbe", &p, true));
        } else {
            for field in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if has(c, field) {
                    errs.push(FieldError::forbidden(
                        child(&p, field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// `validateContainerCommon`: what regular and init containers share.
fn validate_container_common(c: &Value, volumes: &[String], path: &str) -> Errs {
    let mut errs = Errs::new();
    let name = str_or_empty(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(validate_dns1123_label(name, &child(path, "name")));
    }
    if str_or_empty(c, "image").is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    errs.extend(one_of(
        c,
        "terminationMessagePolicy",
        path,
        &["File", "FallbackToLogsOnError"],
        true,
    ));
    errs.extend(validate_container_ports(
        arr(c, "ports"),
        &child(path, "ports"),
    ));
    errs.extend(validate_env(arr(c, "env"), &child(path, "env")));
    errs.extend(validate_env_from(
        arr(c, "envFrom"),
        &child(path, "envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        arr(c, "volumeMounts"),
        volumes,
        &child(path, "volumeMounts"),
    ));
    errs.extend(one_of(
        c,
        "imagePullPolicy",
        path,
        &["Always", "IfNotPresent", "Never"],
        true,
    ));
    errs.extend(validate_resources(
        c.get("resources").unwrap_or(&Value::Null),
        &child(path, "resources"),
    ));
    errs
}
