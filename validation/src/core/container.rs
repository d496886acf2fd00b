//! Container-level checks: ports, env and envFrom, resource requirements, probes and
//! their handlers, as upstream's `validateContainerCommon` helpers.

use super::volumes::validate_object_ref_name;
use crate::util::{
    Errs, NEGATIVE, arr, child, get_int, has, index, key, nonnegative_quantity, obj, one_of,
    parse_quantity, quantity_text, str_or_empty, validate_qualified_name,
};
use machinery::FieldError;
use machinery::names;
use serde_json::{Value, json};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

pub(super) fn validate_container_ports(ports: &[Value], path: &str) -> Errs {
    let mut errs = Errs::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = str_or_empty(port, "name");
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| FieldError::invalid(child(&p, "name"), json!(name), m)),
                );
            } else if seen.contains(&name) {
                errs.push(FieldError::duplicate(child(&p, "name"), json!(name)));
            } else {
                seen.push(name);
            }
        }
        match get_int(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(child(&p, "containerPort"), "")),
            n => errs.extend(port_num(n, &child(&p, "containerPort"))),
        }
        match get_int(port, "hostPort").unwrap_or(0) {
            0 => {}
            n => errs.extend(port_num(n, &child(&p, "hostPort"))),
        }
        errs.extend(one_of(port, "protocol", &p, PROTOCOLS, true));
    }
    errs
}

fn port_num(n: i64, path: &str) -> Errs {
    names::is_valid_port_num(n)
        .into_iter()
        .map(|m| FieldError::invalid(path, json!(n), m))
        .collect()
}

pub(super) fn validate_env(vars: &[Value], path: &str) -> Errs {
    let mut errs = Errs::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = index(path, i);
        let name = str_or_empty(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        for msg in names::is_relaxed_env_var_name(name) {
            errs.push(FieldError::invalid(child(&p, "name"), json!(name), msg));
        }
        let Some(from) = ev.get("valueFrom").filter(|v| !v.is_null()) else {
            continue;
        };
        let fp = child(&p, "valueFrom");
        let sources = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
            "fileKeyRef",
        ];
        let count = sources.iter().filter(|s| has(from, s)).count();
        if count == 0 {
            errs.push(FieldError::invalid(
                &fp,
                json!(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        }
        if !str_or_empty(ev, "value").is_empty() && count != 0 {
            errs.push(FieldError::invalid(
                &fp,
                json!(""),
                "may not be specified when `value` is not empty",
            ));
        }
        if count > 1 {
            errs.push(FieldError::invalid(
                &fp,
                json!(""),
                "may not have more than one field specified at a time",
            ));
        }
        for r in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(s) = from.get(r).filter(|v| !v.is_null()) {
                errs.extend(validate_key_ref(s, &child(&fp, r)));
            }
        }
        if let Some(f) = from.get("fieldRef").filter(|v| !v.is_null()) {
            let rp = child(&fp, "fieldRef");
            if str_or_empty(f, "apiVersion").is_empty() {
                errs.push(FieldError::required(child(&rp, "apiVersion"), ""));
            }
            if str_or_empty(f, "fieldPath").is_empty() {
                errs.push(FieldError::required(child(&rp, "fieldPath"), ""));
            }
        }
        if let Some(f) = from.get("resourceFieldRef").filter(|v| !v.is_null())
            && str_or_empty(f, "resource").is_empty()
        {
            errs.push(FieldError::required(
                child(&child(&fp, "resourceFieldRef"), "resource"),
                "",
            ));
        }
    }
    errs
}

fn validate_key_ref(s: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let k = str_or_empty(s, "key");
    if k.is_empty() {
        errs.push(FieldError::required(child(path, "key"), ""));
    } else {
        errs.extend(
            names::is_config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(child(path, "key"), json!(k), m)),
        );
    }
    let name = str_or_empty(s, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(validate_object_ref_name(name, &child(path, "name")));
    }
    errs
}

pub(super) fn validate_env_from(sources: &[Value], path: &str) -> Errs {
    let mut errs = Errs::new();
    for (i, ev) in sources.iter().enumerate() {
        let p = index(path, i);
        let prefix = str_or_empty(ev, "prefix");
        if !prefix.is_empty() {
            for msg in names::is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(child(&p, "prefix"), json!(prefix), msg));
            }
        }
        let mut count = 0;
        for r in ["configMapRef", "secretRef"] {
            if let Some(s) = ev.get(r).filter(|v| !v.is_null()) {
                count += 1;
                let name = str_or_empty(s, "name");
                if name.is_empty() {
                    errs.push(FieldError::required(child(&child(&p, r), "name"), ""));
                } else {
                    errs.extend(validate_object_ref_name(
                        name,
                        &child(&child(&p, r), "name"),
                    ));
                }
            }
        }
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                json!(""),
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                json!(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.starts_with("kubernetes.io/") || name.contains(".kubernetes.io/")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

/// `ValidateResourceName` + `validateContainerResourceName`.
fn validate_container_resource_name(name: &str, path: &str) -> Errs {
    let mut errs = validate_qualified_name(name, path);
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        let standard_container = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !standard_container && !super::cluster::is_standard_resource_name(name) {
            errs.push(FieldError::invalid(
                path,
                json!(name),
                "must be a standard resource type or fully qualified",
            ));
        }
        if !standard_container {
            errs.push(FieldError::invalid(
                path,
                json!(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && name.starts_with("requests.") {
        errs.push(FieldError::invalid(
            path,
            json!(name),
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// `ValidateContainerResourceRequirements`.
pub fn validate_resources(res: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let limits = obj(res, "limits");
    for (name, q) in limits.into_iter().flatten() {
        let p = key(&lim_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        errs.extend(quantity_value(name, q, &p));
    }
    for (name, q) in obj(res, "requests").into_iter().flatten() {
        let p = key(&req_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        errs.extend(quantity_value(name, q, &p));
        match limits.and_then(|l| l.get(name)) {
            Some(limit) => {
                let (rq, lq) = (parse_quantity(q), parse_quantity(limit));
                let Some((rq, lq)) = rq.zip(lq) else { continue };
                let text = |v: &Value| {
                    quantity_text(v)
                        .as_str()
                        .map(String::from)
                        .unwrap_or_default()
                };
                if rq != lq && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        quantity_text(q),
                        format!("must be equal to {name} limit of {}", text(limit)),
                    ));
                } else if rq > lq {
                    errs.push(FieldError::invalid(
                        &req_path,
                        quantity_text(q),
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            text(limit)
                        ),
                    ));
                }
            }
            None if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
    errs
}

/// `ValidateResourceQuantityValue`.
fn quantity_value(name: &str, q: &Value, path: &str) -> Errs {
    let mut errs = nonnegative_quantity(q, path);
    if errs.is_empty()
        && !is_native_resource(name)
        && parse_quantity(q).is_some_and(|v| v.fract() != 0.0)
    {
        errs.push(FieldError::invalid(
            path,
            quantity_text(q),
            "must be an integer",
        ));
    }
    errs
}

pub(super) fn validate_probe(
    c: &Value,
    field: &str,
    path: &str,
    success_must_be_one: bool,
) -> Errs {
    let Some(probe) = c.get(field).filter(|p| !p.is_null()) else {
        return Vec::new();
    };
    let p = child(path, field);
    let mut errs = validate_handler(probe, &p, &["exec", "httpGet", "tcpSocket", "grpc"]);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(v) = get_int(probe, f).filter(|v| *v < 0) {
            errs.push(FieldError::invalid(child(&p, f), json!(v), NEGATIVE));
        }
    }
    if success_must_be_one && let Some(v) = get_int(probe, "successThreshold").filter(|v| *v != 1) {
        errs.push(FieldError::invalid(
            child(&p, "successThreshold"),
            json!(v),
            "must be 1",
        ));
    }
    if let Some(v) = get_int(probe, "terminationGracePeriodSeconds").filter(|v| *v <= 0) {
        errs.push(FieldError::invalid(
            child(&p, "terminationGracePeriodSeconds"),
            json!(v),
            "must be greater than 0",
        ));
    }
    errs
}

/// Probe and lifecycle handlers: exactly one action, each well-formed.
fn validate_handler(h: &Value, path: &str, kinds: &[&str]) -> Errs {
    let mut errs = Errs::new();
    let mut count = 0;
    for kind in kinds {
        let Some(a) = h.get(*kind).filter(|v| !v.is_null()) else {
            continue;
        };
        count += 1;
        let p = child(path, kind);
        if count > 1 {
            errs.push(FieldError::forbidden(
                p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        match *kind {
            "exec" if arr(a, "command").is_empty() => {
                errs.push(FieldError::required(child(&p, "command"), ""))
            }
            "httpGet" => {
                errs.extend(crate::util::port_or_name(
                    a.get("port").unwrap_or(&Value::Null),
                    &child(&p, "port"),
                ));
                errs.extend(one_of(a, "scheme", &p, &["HTTP", "HTTPS"], false));
            }
            "tcpSocket" => errs.extend(crate::util::port_or_name(
                a.get("port").unwrap_or(&Value::Null),
                &child(&p, "port"),
            )),
            "grpc" => errs.extend(port_num(
                get_int(a, "port").unwrap_or(0),
                &child(&p, "port"),
            )),
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}
