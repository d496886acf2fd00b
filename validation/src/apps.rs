//! The `apps` group: Deployments, ReplicaSets, StatefulSets, DaemonSets and
//! ControllerRevisions, as upstream's `pkg/apis/apps/v1/defaults.go` and
//! `pkg/apis/apps/validation`.

use crate::core::{default_pod_template, default_pvc_spec, validate_pod_template};
use crate::meta::{Scope::Namespaced, validate_annotations};
use crate::util::{
    Errs, arr, child, get_int, get_str, has, immutable, index, int_or_percent, nonnegative,
    not_more_than_100_percent, obj, positive_int_or_percent, selector_is_empty, selector_matches,
    semantic_eq, set_default, set_default_str, validate_label_selector, validate_labels, with_mut,
};
use crate::{Strategy, no_default};
use machinery::FieldError;
use machinery::names::{name_is_dns_label, name_is_dns_subdomain};
use serde_json::{Value, json};

pub(crate) fn strategy(resource: &str) -> Option<Strategy> {
    let s = |default, validate, validate_update| Strategy {
        name: name_is_dns_subdomain,
        scope: Namespaced,
        default,
        validate,
        validate_update,
    };
    Some(match resource {
        "deployments" => s(default_deployment, validate_deployment, selector_immutable),
        "replicasets" => s(default_replicaset, validate_replicaset, selector_immutable),
        "statefulsets" => Strategy {
            name: name_is_dns_label,
            ..s(
                default_statefulset,
                validate_statefulset,
                statefulset_update,
            )
        },
        "daemonsets" => s(default_daemonset, validate_daemonset, selector_immutable),
        "controllerrevisions" => s(no_default, validate_controller_revision, revision_update),
        _ => return None,
    })
}

fn spec(o: &Value) -> &Value {
    o.get("spec").unwrap_or(&Value::Null)
}

fn default_template(spec: &mut Value) {
    with_mut(spec, "/template", default_pod_template);
}

fn default_deployment(d: &mut Value) {
    with_mut(d, "/spec", |s| {
        set_default(s, "replicas", json!(1));
        set_default(s, "strategy", json!({}));
        with_mut(s, "/strategy", |st| {
            set_default_str(st, "type", "RollingUpdate");
            if get_str(st, "type") == Some("RollingUpdate") {
                set_default(st, "rollingUpdate", json!({}));
                with_mut(st, "/rollingUpdate", |ru| {
                    set_default(ru, "maxUnavailable", json!("25%"));
                    set_default(ru, "maxSurge", json!("25%"));
                });
            }
        });
        set_default(s, "revisionHistoryLimit", json!(10));
        set_default(s, "progressDeadlineSeconds", json!(600));
        default_template(s);
    });
}

fn default_replicaset(rs: &mut Value) {
    with_mut(rs, "/spec", |s| {
        set_default(s, "replicas", json!(1));
        default_template(s);
    });
}

fn default_statefulset(ss: &mut Value) {
    with_mut(ss, "/spec", |s| {
        set_default_str(s, "podManagementPolicy", "OrderedReady");
        set_default(s, "updateStrategy", json!({}));
        with_mut(s, "/updateStrategy", |us| {
            if us
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                set_default_str(us, "type", "RollingUpdate");
                set_default(us, "rollingUpdate", json!({}));
            }
            if get_str(us, "type") == Some("RollingUpdate") {
                with_mut(us, "/rollingUpdate", |ru| {
                    set_default(ru, "partition", json!(0))
                });
            }
        });
        set_default(s, "persistentVolumeClaimRetentionPolicy", json!({}));
        with_mut(s, "/persistentVolumeClaimRetentionPolicy", |p| {
            set_default_str(p, "whenDeleted", "Retain");
            set_default_str(p, "whenScaled", "Retain");
        });
        set_default(s, "replicas", json!(1));
        set_default(s, "revisionHistoryLimit", json!(10));
        default_template(s);
        crate::util::for_each_mut(s, "volumeClaimTemplates", |pvc| {
            with_mut(pvc, "/spec", default_pvc_spec);
            set_default(pvc, "status", json!({}));
            with_mut(pvc, "/status", |st| set_default_str(st, "phase", "Pending"));
        });
    });
}

fn default_daemonset(ds: &mut Value) {
    with_mut(ds, "/spec", |s| {
        set_default(s, "updateStrategy", json!({}));
        with_mut(s, "/updateStrategy", |us| {
            set_default_str(us, "type", "RollingUpdate");
            if get_str(us, "type") == Some("RollingUpdate") {
                set_default(us, "rollingUpdate", json!({}));
                with_mut(us, "/rollingUpdate", |ru| {
                    set_default(ru, "maxUnavailable", json!(1));
                    set_default(ru, "maxSurge", json!(0));
                });
            }
        });
        set_default(s, "revisionHistoryLimit", json!(10));
        default_template(s);
    });
}

/// The selector checks Deployments, ReplicaSets and StatefulSets share: required,
/// well-formed, not empty. Returns the selector when it can be used for matching.
fn validate_selector<'a>(s: &'a Value, what: &str, errs: &mut Errs) -> Option<&'a Value> {
    match s.get("selector").filter(|v| !v.is_null()) {
        None => {
            errs.push(FieldError::required("spec.selector", ""));
            None
        }
        Some(sel) => {
            errs.extend(validate_label_selector(sel, "spec.selector"));
            if selector_is_empty(sel) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    format!("empty selector is invalid for {what}"),
                ));
            }
            Some(sel)
        }
    }
}

/// The template must carry the labels the selector selects. A missing selector selects
/// nothing, so it never matches (as upstream's `LabelSelectorAsSelector(nil)`).
fn check_template_labels(sel: Option<&Value>, template: &Value, errs: &mut Errs) {
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    let matches = match sel {
        None => false,
        Some(sel) if selector_is_empty(sel) => true,
        Some(sel) => selector_matches(sel, labels).unwrap_or(true),
    };
    if !matches {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            labels.map_or(Value::Null, |l| Value::Object(l.clone())),
            "`selector` does not match template `labels`",
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` (Deployments and ReplicaSets), also the
/// restart-policy and deadline rules DaemonSets share.
fn validate_controller_template(
    s: &Value,
    sel: Option<&Value>,
    kind: &str,
    full_pod_spec: bool,
    errs: &mut Errs,
) {
    let template = s.get("template").unwrap_or(&Value::Null);
    check_template_labels(sel, template, errs);
    if full_pod_spec {
        errs.extend(validate_pod_template(template, "spec.template"));
    } else {
        let m = template.get("metadata").unwrap_or(&Value::Null);
        errs.extend(validate_labels(obj(m, "labels"), "spec.template.labels"));
        errs.extend(validate_annotations(
            obj(m, "annotations"),
            "spec.template.annotations",
        ));
    }
    let rp = template
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
    if let Some(d) = template
        .pointer("/spec/activeDeadlineSeconds")
        .filter(|d| !d.is_null())
    {
        let msg = format!("activeDeadlineSeconds in {kind} is not Supported");
        if kind == "ReplicaSet" {
            errs.push(FieldError::invalid(
                "spec.template.spec.activeDeadlineSeconds",
                d.clone(),
                msg,
            ));
        } else {
            errs.push(FieldError::forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                msg,
            ));
        }
    }
}

fn validate_deployment(d: &Value) -> Errs {
    let s = spec(d);
    let mut errs = nonnegative(s, "replicas", "spec");
    let sel = validate_selector(s, "deployment", &mut errs);
    validate_controller_template(s, sel, "ReplicaSet", true, &mut errs);
    errs.extend(validate_deployment_strategy(
        s.get("strategy").unwrap_or(&Value::Null),
    ));
    errs.extend(nonnegative(s, "minReadySeconds", "spec"));
    errs.extend(nonnegative(s, "revisionHistoryLimit", "spec"));
    if let Some(p) = get_int(s, "progressDeadlineSeconds") {
        errs.extend(nonnegative(s, "progressDeadlineSeconds", "spec"));
        if p <= get_int(s, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                json!(p),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_deployment_strategy(st: &Value) -> Errs {
    let mut errs = Errs::new();
    let ru = st.get("rollingUpdate").filter(|r| !r.is_null());
    match get_str(st, "type").unwrap_or("") {
        "Recreate" => {
            if ru.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match ru {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let (mu, ms) = (
                    ru.get("maxUnavailable").unwrap_or(&Value::Null),
                    ru.get("maxSurge").unwrap_or(&Value::Null),
                );
                errs.extend(positive_int_or_percent(
                    mu,
                    "spec.strategy.rollingUpdate.maxUnavailable",
                ));
                errs.extend(positive_int_or_percent(
                    ms,
                    "spec.strategy.rollingUpdate.maxSurge",
                ));
                let value = |v: &Value| int_or_percent(v).map_or(0, |(n, _)| n);
                if value(mu) == 0 && value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        mu.clone(),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(
                    mu,
                    "spec.strategy.rollingUpdate.maxUnavailable",
                ));
            }
        },
        _ => errs.push(FieldError::not_supported(
            "spec.strategy",
            st.clone(),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

fn validate_replicaset(rs: &Value) -> Errs {
    let s = spec(rs);
    let mut errs = nonnegative(s, "replicas", "spec");
    errs.extend(nonnegative(s, "minReadySeconds", "spec"));
    let sel = validate_selector(s, "replicaset", &mut errs);
    validate_controller_template(s, sel, "ReplicaSet", true, &mut errs);
    errs
}

fn validate_statefulset(ss: &Value) -> Errs {
    let s = spec(ss);
    let mut errs = Errs::new();
    match get_str(s, "podManagementPolicy").unwrap_or("") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        p => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            json!(p),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = s.get("updateStrategy").unwrap_or(&Value::Null);
    let ru = us.get("rollingUpdate").filter(|r| !r.is_null());
    match get_str(us, "type").unwrap_or("") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = ru {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = ru {
                let p = "spec.updateStrategy.rollingUpdate";
                errs.extend(nonnegative(ru, "partition", p));
                if let Some(mu) = ru.get("maxUnavailable").filter(|m| !m.is_null()) {
                    let mp = child(p, "maxUnavailable");
                    errs.extend(positive_int_or_percent(mu, &mp));
                    if int_or_percent(mu).map_or(0, |(n, _)| n) == 0 {
                        errs.push(FieldError::invalid(&mp, mu.clone(), "cannot be 0"));
                    }
                    errs.extend(not_more_than_100_percent(mu, &mp));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            us.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(p) = s
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|p| !p.is_null())
    {
        for f in ["whenDeleted", "whenScaled"] {
            let v = get_str(p, f).unwrap_or("");
            if !matches!(v, "Retain" | "Delete") {
                errs.push(FieldError::not_supported(
                    child("spec.persistentVolumeClaimRetentionPolicy", f),
                    json!(v),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.extend(nonnegative(s, "replicas", "spec"));
    errs.extend(nonnegative(s, "minReadySeconds", "spec"));
    if let Some(start) = s
        .pointer("/ordinals/start")
        .and_then(Value::as_i64)
        .filter(|n| *n < 0)
    {
        errs.push(FieldError::invalid(
            "spec.ordinals.start",
            json!(start),
            crate::util::NEGATIVE,
        ));
    }
    let sel = validate_selector(s, "statefulset", &mut errs);
    validate_controller_template(s, sel, "StatefulSet", false, &mut errs);
    for (i, pvc) in arr(s, "volumeClaimTemplates").iter().enumerate() {
        let name = pvc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(
                child(&index("spec.volumeClaimTemplates", i), "metadata.name"),
                "",
            ));
        }
    }
    errs
}

fn statefulset_update(new: &Value, old: &Value) -> Errs {
    let (ns, os) = (spec(new), spec(old));
    let mut clone = ns.clone();
    if let Some(m) = clone.as_object_mut() {
        for f in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            match os.get(f) {
                Some(v) => m.insert(f.to_string(), v.clone()),
                None => m.remove(f),
            };
        }
    }
    if semantic_eq(&clone, os) {
        return Vec::new();
    }
    vec![FieldError::forbidden(
        "spec",
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    )]
}

fn validate_daemonset(ds: &Value) -> Errs {
    let s = spec(ds);
    let mut errs = Errs::new();
    let sel = s.get("selector").filter(|v| !v.is_null());
    if let Some(sel) = sel {
        errs.extend(validate_label_selector(sel, "spec.selector"));
    }
    let template = s.get("template").unwrap_or(&Value::Null);
    check_template_labels(sel, template, &mut errs);
    if sel.is_some_and(selector_is_empty) {
        errs.push(FieldError::invalid(
            "spec.selector",
            sel.cloned().unwrap_or_default(),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template(template, "spec.template"));
    let rp = template
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
    if template
        .pointer("/spec/activeDeadlineSeconds")
        .is_some_and(|d| !d.is_null())
    {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(nonnegative(s, "minReadySeconds", "spec"));
    let us = s.get("updateStrategy").unwrap_or(&Value::Null);
    match get_str(us, "type").unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => match us.get("rollingUpdate").filter(|r| !r.is_null()) {
            None => errs.push(FieldError::required(
                "spec.updateStrategy.rollingUpdate",
                "",
            )),
            Some(ru) => errs.extend(validate_rolling_update_daemonset(ru)),
        },
        _ => errs.push(FieldError::not_supported(
            "spec.updateStrategy",
            us.clone(),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    errs.extend(nonnegative(s, "revisionHistoryLimit", "spec"));
    errs
}

fn validate_rolling_update_daemonset(ru: &Value) -> Errs {
    let p = "spec.updateStrategy.rollingUpdate";
    let (mu, ms) = (
        ru.get("maxUnavailable").unwrap_or(&Value::Null),
        ru.get("maxSurge").unwrap_or(&Value::Null),
    );
    let (mup, msp) = (child(p, "maxUnavailable"), child(p, "maxSurge"));
    let mut errs = positive_int_or_percent(mu, &mup);
    errs.extend(positive_int_or_percent(ms, &msp));
    errs.extend(not_more_than_100_percent(mu, &mup));
    errs.extend(not_more_than_100_percent(ms, &msp));
    let value = |v: &Value| int_or_percent(v).map_or(0, |(n, _)| n);
    match (value(mu) != 0, value(ms) != 0) {
        (true, true) => errs.push(FieldError::invalid(
            &msp,
            ms.clone(),
            "may not be set when maxUnavailable is non-zero",
        )),
        (false, false) => errs.push(FieldError::required(&mup, "cannot be 0 when maxSurge is 0")),
        _ => {}
    }
    errs
}

/// apps/v1 selectors cannot change.
fn selector_immutable(new: &Value, old: &Value) -> Errs {
    immutable(
        spec(new).get("selector").unwrap_or(&Value::Null),
        spec(old).get("selector").unwrap_or(&Value::Null),
        "spec.selector",
    )
}

fn validate_controller_revision(cr: &Value) -> Errs {
    let mut errs = Errs::new();
    if !has(cr, "data") {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    errs.extend(nonnegative(cr, "revision", ""));
    errs
}

fn revision_update(new: &Value, old: &Value) -> Errs {
    immutable(
        new.get("data").unwrap_or(&Value::Null),
        old.get("data").unwrap_or(&Value::Null),
        "data",
    )
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
