//! The remaining core resources: Namespaces, Nodes, ResourceQuotas, LimitRanges, Events, Endpoints, ReplicationControllers, PodTemplates.

use super::pod::validate_pod_template;
use super::pod_defaults::default_pod_template;
use crate::util::{
    Errs, NEGATIVE, arr, child, get_int, has, index, key, nonnegative, nonnegative_quantity, obj,
    one_of, semantic_eq, set_default, set_default_str, str_or_empty, validate_labels,
    validate_qualified_name, with_mut,
};
use machinery::FieldError;
use machinery::names;
use serde_json::{Value, json};

/// Namespace defaults: the `kubernetes.io/metadata.name` label, the `kubernetes`
/// finalizer (set on create upstream) and `status.phase: Active`.
pub fn default_namespace(ns: &mut Value) {
    let name = ns
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        with_mut(ns, "/metadata", |m| {
            set_default(m, "labels", json!({}));
            if let Some(l) = m.get_mut("labels").and_then(Value::as_object_mut) {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        });
    }
    set_default(ns, "spec", json!({}));
    with_mut(ns, "/spec", |s| {
        set_default(s, "finalizers", json!(["kubernetes"]))
    });
    set_default(ns, "status", json!({}));
    with_mut(ns, "/status", |s| set_default_str(s, "phase", "Active"));
}

/// `ValidateNamespace` minus metadata: `spec.finalizers` must be standard or qualified.
pub fn validate_namespace(ns: &Value) -> Errs {
    let mut errs = Errs::new();
    for f in arr(ns.get("spec").unwrap_or(&Value::Null), "finalizers") {
        let f = f.as_str().unwrap_or("");
        let msgs = names::is_qualified_name(f);
        if !msgs.is_empty() {
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid("spec.finalizers", json!(f), m)),
            );
        } else if !f.contains('/') && f != "kubernetes" {
            errs.push(FieldError::invalid(
                "spec.finalizers",
                json!(f),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs.extend(one_of(
        ns.get("status").unwrap_or(&Value::Null),
        "phase",
        "status",
        &["Active", "Terminating"],
        false,
    ));
    errs
}

/// Node defaults: `status.allocatable` from `status.capacity`.
pub fn default_node(node: &mut Value) {
    if let Some(cap) = node.pointer("/status/capacity").cloned() {
        with_mut(node, "/status", |s| set_default(s, "allocatable", cap));
    }
}

/// `ValidateNode` minus metadata: taints and pod CIDRs.
pub fn validate_node(node: &Value) -> Errs {
    let spec = node.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    let taints = arr(spec, "taints");
    for (i, t) in taints.iter().enumerate() {
        let p = index("spec.taints", i);
        let k = str_or_empty(t, "key");
        if k.is_empty() {
            errs.push(FieldError::required(child(&p, "key"), ""));
        } else {
            errs.extend(validate_qualified_name(k, &child(&p, "key")));
        }
        let v = str_or_empty(t, "value");
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(child(&p, "value"), json!(v), msg));
        }
        errs.extend(one_of(
            t,
            "effect",
            &p,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            true,
        ));
        let dup = taints[..i].iter().any(|o| {
            str_or_empty(o, "key") == k && str_or_empty(o, "effect") == str_or_empty(t, "effect")
        });
        if dup {
            errs.push(FieldError::duplicate(
                &p,
                json!(format!("{k}:{}", str_or_empty(t, "effect"))),
            ));
        }
    }
    for (i, cidr) in arr(spec, "podCIDRs").iter().enumerate() {
        let c = cidr.as_str().unwrap_or("");
        if !is_cidr(c) {
            errs.push(FieldError::invalid(
                index("spec.podCIDRs", i),
                json!(c),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    errs
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

/// `ValidateNodeUpdate`'s checks: pod CIDRs and the provider ID are set once.
pub fn validate_node_update(new: &Value, old: &Value) -> Errs {
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let mut errs = Errs::new();
    if !arr(os, "podCIDRs").is_empty()
        && !semantic_eq(&json!(arr(ns, "podCIDRs")), &json!(arr(os, "podCIDRs")))
    {
        errs.push(FieldError::forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_pid = str_or_empty(os, "providerID");
    if !old_pid.is_empty() && str_or_empty(ns, "providerID") != old_pid {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs
}

/// Names a quota or a container may use without a domain prefix.
pub fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
        "storage",
    ];
    STANDARD.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// `ValidateResourceQuota` minus metadata.
pub fn validate_resource_quota(q: &Value) -> Errs {
    let spec = q.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    for (name, v) in obj(spec, "hard").into_iter().flatten() {
        let p = key("spec.hard", name);
        let msgs = names::is_qualified_name(name);
        if !msgs.is_empty() {
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid(&p, json!(name), m)),
            );
        } else if !name.contains('/')
            && !is_standard_resource_name(name)
            && !name.starts_with("count/")
        {
            errs.push(FieldError::invalid(
                &p,
                json!(name),
                "must be a standard resource type or fully qualified",
            ));
        }
        errs.extend(nonnegative_quantity(v, &p));
    }
    const SCOPES: &[&str] = &[
        "BestEffort",
        "CrossNamespacePodAffinity",
        "NotBestEffort",
        "NotTerminating",
        "PriorityClass",
        "Terminating",
        "VolumeAttributesClass",
    ];
    for (i, s) in arr(spec, "scopes").iter().enumerate() {
        let s = s.as_str().unwrap_or("");
        if !SCOPES.contains(&s) {
            errs.push(FieldError::not_supported(
                index("spec.scopes", i),
                json!(s),
                SCOPES,
            ));
        }
    }
    errs
}

/// `SetDefaults_LimitRangeItem`: container defaults from max, default requests from
/// defaults or min.
pub fn default_limit_range(lr: &mut Value) {
    with_mut(lr, "/spec", |spec| {
        crate::util::for_each_mut(spec, "limits", |item| {
            if str_or_empty(item, "type") != "Container" {
                return;
            }
            for (from, to) in [
                ("max", "default"),
                ("default", "defaultRequest"),
                ("min", "defaultRequest"),
            ] {
                let Some(src) = obj(item, from).cloned() else {
                    continue;
                };
                set_default(item, to, json!({}));
                if let Some(dst) = item.get_mut(to).and_then(Value::as_object_mut) {
                    for (k, v) in src {
                        dst.entry(k).or_insert(v);
                    }
                }
            }
        });
    });
}

/// `ValidateLimitRange` (types and quantities).
pub fn validate_limit_range(lr: &Value) -> Errs {
    let mut errs = Errs::new();
    for (i, item) in arr(lr.get("spec").unwrap_or(&Value::Null), "limits")
        .iter()
        .enumerate()
    {
        let p = index("spec.limits", i);
        errs.extend(one_of(
            item,
            "type",
            &p,
            &["Container", "PersistentVolumeClaim", "Pod"],
            true,
        ));
        for field in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            for (name, q) in obj(item, field).into_iter().flatten() {
                errs.extend(nonnegative_quantity(q, &key(&child(&p, field), name)));
            }
        }
    }
    errs
}

/// Core `Event` validation (`ValidateEventCreate` and its legacy checks).
pub fn validate_event(ev: &Value) -> Errs {
    let mut errs = Errs::new();
    let ns = ev
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let inv_ns = ev
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let new_style = has(ev, "eventTime");
    if !new_style {
        let ok = if inv_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == inv_ns
        };
        if !ok {
            errs.push(FieldError::invalid(
                "involvedObject.namespace",
                json!(inv_ns),
                "does not match event.namespace",
            ));
        }
    } else {
        // (stored field, the path upstream reports: its internal type's name, which is
        // also the events.k8s.io field)
        for (f, path) in [
            ("reportingComponent", "reportingController"),
            ("reportingInstance", "reportingInstance"),
            ("action", "action"),
            ("reason", "reason"),
        ] {
            if str_or_empty(ev, f).is_empty() {
                errs.push(FieldError::required(path, ""));
            }
        }
        let t = str_or_empty(ev, "type");
        if !matches!(t, "Normal" | "Warning") {
            errs.push(FieldError::invalid(
                "type",
                json!(""),
                format!("has invalid value: {t}"),
            ));
        }
    }
    if let Some(c) = get_int(ev, "count").filter(|c| *c < 0) {
        errs.push(FieldError::invalid("count", json!(c), NEGATIVE));
    }
    errs
}

/// Endpoints defaults: ports' protocol TCP.
pub fn default_endpoints(ep: &mut Value) {
    crate::util::for_each_mut(ep, "subsets", |s| {
        crate::util::for_each_mut(s, "ports", |p| set_default_str(p, "protocol", "TCP"))
    });
}

/// `ValidateEndpoints` (addresses and ports).
pub fn validate_endpoints(ep: &Value) -> Errs {
    let mut errs = Errs::new();
    for (i, s) in arr(ep, "subsets").iter().enumerate() {
        let sp = index("subsets", i);
        for field in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(s, field).iter().enumerate() {
                let ip = str_or_empty(a, "ip");
                if ip.parse::<std::net::IpAddr>().is_err() {
                    errs.push(FieldError::invalid(
                        child(&index(&child(&sp, field), j), "ip"),
                        json!(ip),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ));
                }
            }
        }
        for (j, p) in arr(s, "ports").iter().enumerate() {
            let pp = index(&child(&sp, "ports"), j);
            let port = get_int(p, "port").unwrap_or(0);
            for msg in names::is_valid_port_num(port) {
                errs.push(FieldError::invalid(child(&pp, "port"), json!(port), msg));
            }
            errs.extend(one_of(p, "protocol", &pp, &["SCTP", "TCP", "UDP"], true));
        }
    }
    errs
}

/// `SetDefaults_ReplicationController`: selector and labels from the template, replicas 1.
pub fn default_rc(rc: &mut Value) {
    let labels = rc
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = labels {
        with_mut(rc, "/spec", |s| {
            if obj(s, "selector").is_none_or(|m| m.is_empty())
                && let Some(m) = s.as_object_mut()
            {
                m.insert("selector".into(), labels.clone());
            }
        });
        let meta_labels_empty = rc
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty());
        if meta_labels_empty {
            with_mut(rc, "/metadata", |m| {
                if let Some(m) = m.as_object_mut() {
                    m.insert("labels".into(), labels);
                }
            });
        }
    }
    with_mut(rc, "/spec", |s| {
        set_default(s, "replicas", json!(1));
        with_mut(s, "/template", default_pod_template);
    });
}

/// `ValidateReplicationControllerSpec`.
pub fn validate_rc(rc: &Value) -> Errs {
    let spec = rc.get("spec").unwrap_or(&Value::Null);
    let mut errs = nonnegative(spec, "replicas", "spec");
    errs.extend(nonnegative(spec, "minReadySeconds", "spec"));
    let selector = obj(spec, "selector").filter(|s| !s.is_empty());
    if selector.is_none() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs.extend(validate_labels(selector, "spec.selector"));
    match spec.get("template").filter(|t| !t.is_null()) {
        None => errs.push(FieldError::required("spec.template", "")),
        Some(t) => {
            let labels = t.pointer("/metadata/labels").and_then(Value::as_object);
            if let Some(sel) = selector {
                let matches = sel
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
                if !matches {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        json!(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            errs.extend(validate_pod_template(t, "spec.template"));
            let rp = t
                .pointer("/spec/restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("");
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    "spec.template.spec.restartPolicy",
                    json!(rp),
                    &["Always"],
                ));
            }
            if let Some(d) = t
                .pointer("/spec/activeDeadlineSeconds")
                .filter(|d| !d.is_null())
            {
                errs.push(FieldError::invalid(
                    "spec.template.spec.activeDeadlineSeconds",
                    d.clone(),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodTemplate` minus metadata.
pub fn validate_podtemplate(pt: &Value) -> Errs {
    validate_pod_template(pt.get("template").unwrap_or(&Value::Null), "template")
}
