//! Per-resource strategies: the rules that differ between resources (status/spec split,
//! generation, graceful deletion, create-on-update, allocation), as upstream keeps them in
//! `pkg/registry/<group>/<resource>/strategy.go`. Defaulting and validation of the types
//! themselves live in the `validation` crate; the generic REST path lives in `rest`.

pub mod certificates;
mod namespaces;
mod pods;
mod secrets;
pub mod services;

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

pub use services::Allocators;

fn is(res: &ResourceInfo, group: &str, plural: &str) -> bool {
    res.group == group && res.plural == plural
}

/// Whether `metadata.generation` is maintained (bumped on spec changes).
pub fn tracks_generation(res: &ResourceInfo) -> bool {
    const BUILTIN: &[(&str, &str)] = &[
        ("", "pods"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "networkpolicies"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("flowcontrol.apiserver.k8s.io", "flowschemas"),
        (
            "flowcontrol.apiserver.k8s.io",
            "prioritylevelconfigurations",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicybindings",
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        ),
    ];
    BUILTIN.iter().any(|(g, p)| is(res, g, p)) || !crate::conversion::is_builtin_group(&res.group)
}

/// Whether anything outside metadata and status changed (what bumps generation).
pub fn spec_changed(res: &ResourceInfo, old: &Value, new: &Value) -> bool {
    // everything but these fields, compared in place
    const NOT_SPEC: [&str; 4] = ["metadata", "status", "apiVersion", "kind"];
    let mut changed = match (old.as_object(), new.as_object()) {
        (Some(a), Some(b)) => {
            let spec = |m: &'_ serde_json::Map<String, Value>| {
                m.iter()
                    .filter(|(k, _)| !NOT_SPEC.contains(&k.as_str()))
                    .count()
            };
            spec(a) != spec(b)
                || a.iter()
                    .any(|(k, v)| !NOT_SPEC.contains(&k.as_str()) && b.get(k) != Some(v))
        }
        _ => old != new,
    };
    if !res.has_status() && !crate::conversion::is_builtin_group(&res.group) {
        // a custom resource without a status subresource: status is part of its spec
        changed |= old.get("status") != new.get("status");
    }
    if is(res, "", "pods") {
        // pods bump generation for spec changes and graceful deletion
        return changed
            || (old.pointer("/metadata/deletionTimestamp").is_none()
                && new.pointer("/metadata/deletionTimestamp").is_some());
    }
    changed
}

/// Resets what a client may not set on create (status of split resources, etc.).
pub fn prepare_for_create(res: &ResourceInfo, obj: &mut Value) {
    if res.has_status()
        && !is(res, "", "namespaces")
        && !is(res, "", "nodes")
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "pods") => pods::prepare_for_create(obj),
        ("", "secrets") => secrets::fold_string_data(obj),
        ("", "namespaces") => namespaces::prepare_for_create(obj),
        ("", "services") => {
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("", "persistentvolumeclaims") | ("", "persistentvolumes") => {
            obj["status"] = json!({"phase": "Pending"});
        }
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs" | "cronjobs") => {
            obj["status"] = status_for_workload(res);
        }
        ("", "replicationcontrollers") => {
            obj["status"] = json!({"replicas": 0});
        }
        ("policy", "poddisruptionbudgets") => {
            obj["status"] = json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0});
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            obj["status"] = json!({"currentMetrics": null, "desiredReplicas": 0});
        }
        ("networking.k8s.io", "ingresses") => {
            obj["status"] = json!({"loadBalancer": {}});
        }
        _ => {}
    }
}

fn status_for_workload(res: &ResourceInfo) -> Value {
    match res.plural.as_str() {
        "statefulsets" => json!({"replicas": 0, "availableReplicas": 0}),
        "replicasets" => json!({"replicas": 0}),
        "daemonsets" => {
            json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0})
        }
        _ => json!({}),
    }
}

/// Adjusts an update before validation (per-resource rules).
pub fn prepare_for_update(res: &ResourceInfo, sub: &str, old: &Value, new: &mut Value) {
    if is(res, "", "namespaces") {
        namespaces::prepare_for_update(sub, old, new);
    }
    if is(res, "", "services") && sub.is_empty() {
        services::drop_type_dependent_fields(old, new);
    }
    if is(res, "", "secrets") && sub.is_empty() {
        secrets::fold_string_data(new);
    }
    if is(res, "certificates.k8s.io", "certificatesigningrequests")
        && matches!(sub, "status" | "approval")
    {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        certificates::fill_condition_timestamps(old, new, &now);
    }
}

/// Builds the object an update of `sub` produces from the stored one and the request.
pub fn merge_subresource(
    res: &ResourceInfo,
    sub: &str,
    current: &Value,
    incoming: Value,
) -> Result<Value, ApiError> {
    match sub {
        "" => {
            let mut new = incoming;
            if res.has_status() {
                match current.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            Ok(new)
        }
        "status" => {
            let mut new = current.clone();
            match incoming.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            // status writers may still change labels and annotations of some kinds; upstream
            // keeps metadata except managedFields, which the field manager records
            if let Some(mf) = incoming.pointer("/metadata/managedFields") {
                new["metadata"]["managedFields"] = mf.clone();
            }
            Ok(new)
        }
        "approval" if is(res, "certificates.k8s.io", "certificatesigningrequests") => {
            Ok(certificates::merge_approval(current, &incoming))
        }
        "finalize" if is(res, "", "namespaces") => {
            let mut new = current.clone();
            new["spec"]["finalizers"] = incoming
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or_else(|| json!([]));
            Ok(new)
        }
        other => Err(ApiError::not_found(
            &res.group,
            &format!("{}/{other}", res.plural),
            "",
        )),
    }
}

/// Whether PUT of a missing object creates it (upstream's AllowCreateOnUpdate).
pub fn allow_create_on_update(res: &ResourceInfo) -> bool {
    matches!(
        (res.group.as_str(), res.plural.as_str()),
        ("", "endpoints")
            | ("", "events")
            | ("events.k8s.io", "events")
            | ("coordination.k8s.io", "leases")
    )
}

/// Whether an update without `resourceVersion` is accepted (upstream's
/// AllowUnconditionalUpdate): true for every built-in resource, false for custom ones.
pub fn allow_unconditional_update(res: &ResourceInfo) -> bool {
    crate::conversion::is_builtin_group(&res.group)
}

/// Whether a marked object may go once `metadata.finalizers` is empty; namespaces also
/// wait for `spec.finalizers`.
pub fn finalizers_complete(res: &ResourceInfo, obj: &Value) -> bool {
    if is(res, "", "namespaces") {
        return namespaces::spec_finalizers_empty(obj);
    }
    true
}

/// The grace period a delete gets (pods only; `None` means immediate).
pub fn grace_period(res: &ResourceInfo, current: &Value, requested: Option<i64>) -> Option<i64> {
    if is(res, "", "pods") {
        return pods::grace_period(current, requested);
    }
    None
}

/// Lets a resource keep an object on delete (namespaces terminate first). May change the
/// object it marks.
pub fn delete_is_pending(res: &ResourceInfo, marked: &mut Value) -> bool {
    if is(res, "", "namespaces") {
        return namespaces::mark_terminating(marked);
    }
    if is(res, "apiextensions.k8s.io", "customresourcedefinitions") {
        return mark_crd_terminating(marked);
    }
    false
}

/// A deleted CRD stays until its objects are gone: upstream adds the cleanup finalizer
/// and a `Terminating` condition.
fn mark_crd_terminating(crd: &mut Value) -> bool {
    let finalizer = json!(crate::crd::CLEANUP_FINALIZER);
    let meta = &mut crd["metadata"];
    match meta.get_mut("finalizers").and_then(Value::as_array_mut) {
        Some(f) => {
            if !f.contains(&finalizer) {
                f.push(finalizer);
            }
        }
        None => meta["finalizers"] = json!([finalizer]),
    }
    if !crd["status"].is_object() {
        crd["status"] = json!({});
    }
    let conditions = &mut crd["status"]["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    if let Some(list) = conditions.as_array_mut()
        && !list.iter().any(|c| c["type"] == "Terminating")
    {
        list.push(json!({
            "type": "Terminating", "status": "True",
            "lastTransitionTime": crate::rest::now(),
            "reason": "InstanceDeletionPending",
            "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        }));
    }
    true
}
