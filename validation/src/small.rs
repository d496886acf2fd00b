//! Groups with one or two simple resources: PriorityClasses (`scheduling.k8s.io`),
//! Leases (`coordination.k8s.io`), Events (`events.k8s.io`), StorageClasses
//! (`storage.k8s.io`), HorizontalPodAutoscalers (`autoscaling`), EndpointSlices
//! (`discovery.k8s.io`) and RuntimeClasses (`node.k8s.io`).

use crate::meta::Scope::{Cluster, Namespaced};
use crate::util::{
    Errs, arr, child, get_bool, get_int, get_str, has, immutable, index, one_of, set_default,
    set_default_str, str_or_empty, validate_dns1123_label, validate_qualified_name, with_mut,
};
use crate::{Strategy, no_default, no_update_checks};
use machinery::FieldError;
use machinery::names::{self, name_is_dns_subdomain};
use serde_json::{Value, json};

/// Upstream's `HighestUserDefinablePriority`.
const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
const SYSTEM_PRIORITY_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

pub(crate) fn strategy(group: &str, version: &str, resource: &str) -> Option<Strategy> {
    let s = |default, validate, validate_update| Strategy {
        name: name_is_dns_subdomain,
        scope: Namespaced,
        default,
        validate,
        validate_update,
    };
    Some(match (group, resource) {
        ("scheduling.k8s.io", "priorityclasses") => Strategy {
            scope: Cluster,
            ..s(
                default_priority_class,
                validate_priority_class,
                priority_class_update,
            )
        },
        ("coordination.k8s.io", "leases") => s(no_default, validate_lease, no_update_checks),
        ("events.k8s.io", "events") => s(no_default, validate_event, no_update_checks),
        ("storage.k8s.io", "storageclasses") => Strategy {
            scope: Cluster,
            ..s(
                default_storage_class,
                validate_storage_class,
                storage_class_update,
            )
        },
        ("autoscaling", "horizontalpodautoscalers") if version == "v1" => {
            s(default_hpa_v1, validate_hpa, no_update_checks)
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            s(default_hpa, validate_hpa, no_update_checks)
        }
        ("discovery.k8s.io", "endpointslices") => s(
            default_endpoint_slice,
            validate_endpoint_slice,
            address_type_immutable,
        ),
        ("node.k8s.io", "runtimeclasses") => Strategy {
            scope: Cluster,
            ..s(no_default, validate_runtime_class, handler_immutable)
        },
        _ => return None,
    })
}

fn default_priority_class(pc: &mut Value) {
    set_default_str(pc, "preemptionPolicy", "PreemptLowerPriority");
}

/// `ValidatePriorityClass`.
fn validate_priority_class(pc: &Value) -> Errs {
    let mut errs = Errs::new();
    let name = pc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = get_int(pc, "value").unwrap_or(0);
    let global = get_bool(pc, "globalDefault").unwrap_or(false);
    if name.starts_with("system-") {
        let problem = match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((n, v)) if *v != value => Some(format!("value of {n} PriorityClass must be {v}")),
            Some((n, _)) if global => {
                Some(format!("globalDefault of {n} PriorityClass must be false"))
            }
            Some(_) => None,
        };
        if let Some(p) = problem {
            errs.push(FieldError::forbidden(
                "metadata.name",
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {p}"),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
        ));
    }
    errs.extend(one_of(
        pc,
        "preemptionPolicy",
        "",
        &["Never", "PreemptLowerPriority"],
        false,
    ));
    errs
}

fn priority_class_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    if get_int(new, "value") != get_int(old, "value") {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    let pp = |o: &Value| o.get("preemptionPolicy").cloned().unwrap_or(Value::Null);
    errs.extend(immutable(&pp(new), &pp(old), "preemptionPolicy"));
    errs
}

/// `ValidateLeaseSpec`.
fn validate_lease(lease: &Value) -> Errs {
    let spec = lease.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    if let Some(d) = get_int(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            json!(d),
            "must be greater than 0",
        ));
    }
    if let Some(t) = get_int(spec, "leaseTransitions").filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            json!(t),
            "must be greater than or equal to 0",
        ));
    }
    errs.extend(one_of(
        spec,
        "strategy",
        "spec",
        &["OldestEmulationVersion"],
        false,
    ));
    if !str_or_empty(spec, "preferredHolder").is_empty()
        && str_or_empty(spec, "strategy").is_empty()
    {
        errs.push(FieldError::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// `events.k8s.io/v1` Events: the fields new-style events must carry. The API server
/// validates the object in its storage form, a core/v1 Event (`apiVersion: v1`), where
/// two fields have their core names; errors name the events.k8s.io fields either way.
fn validate_event(ev: &Value) -> Errs {
    let stored = ev.get("apiVersion").and_then(Value::as_str) == Some("v1");
    let field = |f: &str| -> String {
        let name = match f {
            "reportingController" if stored => "reportingComponent",
            "note" if stored => "message",
            _ => f,
        };
        str_or_empty(ev, name).to_string()
    };
    let mut errs = Errs::new();
    if !has(ev, "eventTime") {
        errs.push(FieldError::required("eventTime", ""));
    }
    for f in [
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if field(f).is_empty() {
            errs.push(FieldError::required(f, ""));
        }
    }
    let controller = field("reportingController");
    if !controller.is_empty() {
        errs.extend(validate_qualified_name(&controller, "reportingController"));
    }
    for (f, max) in [
        ("reportingInstance", 128),
        ("action", 128),
        ("reason", 128),
        ("note", 1024),
    ] {
        if field(f).len() > max {
            errs.push(FieldError::too_long(f, max));
        }
    }
    let t = field("type");
    if !matches!(t.as_str(), "Normal" | "Warning") {
        errs.push(FieldError::invalid(
            "type",
            json!(""),
            format!("has invalid value: {t}"),
        ));
    }
    errs
}

fn default_storage_class(sc: &mut Value) {
    set_default_str(sc, "reclaimPolicy", "Delete");
    set_default_str(sc, "volumeBindingMode", "Immediate");
}

fn validate_storage_class(sc: &Value) -> Errs {
    let mut errs = Errs::new();
    let provisioner = str_or_empty(sc, "provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        errs.extend(validate_qualified_name(
            &provisioner.to_lowercase(),
            "provisioner",
        ));
    }
    errs.extend(one_of(
        sc,
        "reclaimPolicy",
        "",
        &["Delete", "Retain"],
        false,
    ));
    errs.extend(one_of(
        sc,
        "volumeBindingMode",
        "",
        &["Immediate", "WaitForFirstConsumer"],
        true,
    ));
    errs
}

fn storage_class_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let field = |o: &Value, k: &str| o.get(k).cloned().unwrap_or(Value::Null);
    for k in ["parameters", "provisioner", "reclaimPolicy"] {
        if !crate::util::semantic_eq(&field(new, k), &field(old, k)) {
            errs.push(FieldError::forbidden(
                k,
                format!("updates to {k} are forbidden."),
            ));
        }
    }
    errs.extend(immutable(
        &field(new, "volumeBindingMode"),
        &field(old, "volumeBindingMode"),
        "volumeBindingMode",
    ));
    errs
}

fn default_hpa_v1(hpa: &mut Value) {
    with_mut(hpa, "/spec", |s| set_default(s, "minReplicas", json!(1)));
}

/// `SetDefaults_HorizontalPodAutoscaler` (autoscaling/v2), behaviour rules included.
fn default_hpa(hpa: &mut Value) {
    with_mut(hpa, "/spec", |s| {
        set_default(s, "minReplicas", json!(1));
        if arr(s, "metrics").is_empty()
            && let Some(m) = s.as_object_mut()
        {
            m.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
            );
        }
        with_mut(s, "/behavior", |b| {
            set_default(b, "scaleUp", json!({}));
            set_default(b, "scaleDown", json!({}));
            with_mut(b, "/scaleUp", |r| {
                set_default(r, "stabilizationWindowSeconds", json!(0));
                set_default_str(r, "selectPolicy", "Max");
                set_default(
                    r,
                    "policies",
                    json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]),
                );
            });
            with_mut(b, "/scaleDown", |r| {
                set_default_str(r, "selectPolicy", "Max");
                set_default(
                    r,
                    "policies",
                    json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
                );
            });
        });
    });
}

/// `ValidateHorizontalPodAutoscalerSpec` (target reference and replica bounds).
fn validate_hpa(hpa: &Value) -> Errs {
    let spec = hpa.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    let target = spec.get("scaleTargetRef").unwrap_or(&Value::Null);
    let kind = str_or_empty(target, "kind");
    if kind.is_empty() {
        errs.push(FieldError::required("spec.scaleTargetRef.kind", ""));
    } else {
        for msg in names::is_path_segment_name(kind) {
            errs.push(FieldError::invalid(
                "spec.scaleTargetRef.kind",
                json!(kind),
                msg,
            ));
        }
    }
    let name = str_or_empty(target, "name");
    if name.is_empty() {
        errs.push(FieldError::required("spec.scaleTargetRef.name", ""));
    } else {
        for msg in names::is_path_segment_name(name) {
            errs.push(FieldError::invalid(
                "spec.scaleTargetRef.name",
                json!(name),
                msg,
            ));
        }
    }
    let min = get_int(spec, "minReplicas");
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            json!(m),
            "must be greater than or equal to 1",
        ));
    }
    let max = get_int(spec, "maxReplicas").unwrap_or(0);
    if max < 1 {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            json!(max),
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| m > max && max >= 1) {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            json!(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    if let Some(pct) = get_int(spec, "targetCPUUtilizationPercentage").filter(|p| *p < 1) {
        errs.push(FieldError::invalid(
            "spec.targetCPUUtilizationPercentage",
            json!(pct),
            "must be greater than 0",
        ));
    }
    errs
}

/// `SetDefaults_EndpointPort`: name `""`, protocol TCP.
fn default_endpoint_slice(es: &mut Value) {
    crate::util::for_each_mut(es, "ports", |p| {
        set_default(p, "name", json!(""));
        set_default_str(p, "protocol", "TCP");
    });
}

fn validate_endpoint_slice(es: &Value) -> Errs {
    let mut errs = Errs::new();
    let address_type = str_or_empty(es, "addressType");
    errs.extend(one_of(
        es,
        "addressType",
        "",
        &["IPv4", "IPv6", "FQDN"],
        true,
    ));
    for (i, ep) in arr(es, "endpoints").iter().enumerate() {
        let p = index("endpoints", i);
        let addrs = arr(ep, "addresses");
        if addrs.is_empty() || addrs.len() > 100 {
            errs.push(FieldError::invalid(
                child(&p, "addresses"),
                json!(addrs.len()),
                "must contain at least 1 and no more than 100 addresses",
            ));
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let ap = index(&child(&p, "addresses"), j);
            let ok = match address_type {
                "IPv4" => a.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => a.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => names::is_dns1123_subdomain(a).is_empty(),
            };
            if !ok {
                errs.push(FieldError::invalid(
                    ap,
                    json!(a),
                    format!("must be a valid {address_type} address"),
                ));
            }
        }
    }
    for (i, port) in arr(es, "ports").iter().enumerate() {
        let p = index("ports", i);
        if let Some(name) = get_str(port, "name").filter(|n| !n.is_empty()) {
            errs.extend(validate_dns1123_label(name, &child(&p, "name")));
        }
        errs.extend(one_of(port, "protocol", &p, &["SCTP", "TCP", "UDP"], false));
        if let Some(n) = get_int(port, "port") {
            for msg in names::is_in_range(n, 0, 65535) {
                errs.push(FieldError::invalid(child(&p, "port"), json!(n), msg));
            }
        }
    }
    errs
}

fn address_type_immutable(new: &Value, old: &Value) -> Errs {
    let f = |o: &Value| o.get("addressType").cloned().unwrap_or(Value::Null);
    immutable(&f(new), &f(old), "addressType")
}

fn validate_runtime_class(rc: &Value) -> Errs {
    let handler = str_or_empty(rc, "handler");
    if handler.is_empty() {
        return vec![FieldError::required("handler", "")];
    }
    validate_dns1123_label(handler, "handler")
}

fn handler_immutable(new: &Value, old: &Value) -> Errs {
    let f = |o: &Value| o.get("handler").cloned().unwrap_or(Value::Null);
    immutable(&f(new), &f(old), "handler")
}

#[cfg(test)]
#[path = "small_tests.rs"]
mod tests;
