//! Conversion between served versions and the storage version: autoscaling v1 <-> v2
//! HorizontalPodAutoscalers, and events.k8s.io/v1 <-> core/v1 Events (which share storage).
//! Anything else served at its storage version passes through with its apiVersion set.

use std::collections::HashSet;
use std::sync::RwLock;

use machinery::resource::ResourceInfo;
use serde_json::{Map, Value, json};

/// Custom resources (group, plural) whose CRD converts through a webhook: the
/// synchronous functions here leave their objects at the version they are in, and the
/// callers convert them with `Rest::convert` (it needs I/O). Kept by the CRD controller.
static WEBHOOK_CONVERTED: RwLock<Option<HashSet<(String, String)>>> = RwLock::new(None);

/// Replaces the set of webhook-converted custom resources.
pub fn set_webhook_converted(set: HashSet<(String, String)>) {
    *WEBHOOK_CONVERTED.write().unwrap_or_else(|e| e.into_inner()) = Some(set);
}

/// Whether objects of `res` convert between versions through a webhook.
pub fn webhook_converted(res: &ResourceInfo) -> bool {
    WEBHOOK_CONVERTED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&(res.group.clone(), res.plural.clone())))
}

/// Whether a group is built in (its types have protobuf forms and typed list items).
pub fn is_builtin_group(group: &str) -> bool {
    group.is_empty()
        || matches!(group, "apps" | "batch" | "autoscaling" | "policy")
        || BUILTIN_K8S_IO.contains(&group)
}

const BUILTIN_K8S_IO: &[&str] = &[
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
];

fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

/// The object as the served version `res` shows it.
pub fn to_version(obj: &Value, res: &ResourceInfo) -> Value {
    to_version_cow(obj, res).into_owned()
}

/// [`to_version`], borrowing `obj` when it already is at `res`'s version with its kind:
/// the common case of an object shown as it is stored, which then copies nothing.
pub fn to_version_cow<'a>(obj: &'a Value, res: &ResourceInfo) -> std::borrow::Cow<'a, Value> {
    use std::borrow::Cow;
    let want = res.api_version();
    if api_version(obj) == want
        && obj
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty())
    {
        return Cow::Borrowed(obj);
    }
    Cow::Owned(to_version_owned(obj, res, want))
}

fn to_version_owned(obj: &Value, res: &ResourceInfo, want: String) -> Value {
    let have = api_version(obj);
    if have == want || have.is_empty() {
        let mut o = obj.clone();
        o["apiVersion"] = Value::String(want);
        if o.get("kind").is_none_or(Value::is_null) {
            o["kind"] = Value::String(res.kind.clone());
        }
        return o;
    }
    if !is_builtin_group(&res.group) && webhook_converted(res) {
        return obj.clone();
    }
    let mut out = match (have, want.as_str()) {
        ("autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(obj),
        ("autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(obj),
        ("v1", "events.k8s.io/v1") => core_event_to_events(obj),
        ("events.k8s.io/v1", "v1") => events_to_core_event(obj),
        _ => obj.clone(),
    };
    out["apiVersion"] = Value::String(want);
    out["kind"] = Value::String(res.kind.clone());
    out
}

/// Writes `obj` as an item of a JSON list of `res` (what [`crate::rest::as_list_item`]
/// gives, serialized) straight from the stored object when no conversion is needed:
/// a LIST from the watch cache then copies no object.
pub fn write_list_item(
    out: &mut Vec<u8>,
    obj: &Value,
    res: &ResourceInfo,
    builtin: bool,
) -> serde_json::Result<()> {
    use serde::ser::{SerializeMap, Serializer as _};
    let want = res.api_version();
    let have = api_version(obj);
    let Some(map) = obj.as_object().filter(|_| have == want || have.is_empty()) else {
        return serde_json::to_writer(out, &crate::rest::as_list_item(res, obj, builtin));
    };
    let mut ser = serde_json::Serializer::new(out);
    let mut m = ser.serialize_map(None)?;
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" if builtin => {}
            "apiVersion" => m.serialize_entry(k, &want)?,
            _ => m.serialize_entry(k, v)?,
        }
    }
    if !builtin && !map.contains_key("apiVersion") {
        m.serialize_entry("apiVersion", &want)?;
    }
    m.end()
}

/// The object as stored (at the storage version of `res`'s resource).
pub fn to_storage(obj: Value, res: &ResourceInfo) -> Value {
    let storage_av = if res.group == "events.k8s.io" {
        "v1".to_string()
    } else if res.group.is_empty() {
        res.storage_version.clone()
    } else {
        format!("{}/{}", res.group, res.storage_version)
    };
    let have = api_version(&obj).to_string();
    if have == storage_av || (!is_builtin_group(&res.group) && webhook_converted(res)) {
        return obj;
    }
    let kind = obj.get("kind").cloned();
    let mut out = match (have.as_str(), storage_av.as_str()) {
        ("autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(&obj),
        ("events.k8s.io/v1", "v1") => events_to_core_event(&obj),
        _ => obj,
    };
    out["apiVersion"] = Value::String(storage_av);
    if let Some(k) = kind.filter(|k| !k.is_null()) {
        out["kind"] = k;
    }
    out
}

fn copy(from: &Value, from_path: &str, to: &mut Map<String, Value>, to_key: &str) {
    if let Some(v) = from.pointer(from_path).filter(|v| !v.is_null()) {
        to.insert(to_key.to_string(), v.clone());
    }
}

fn hpa_v2_to_v1(obj: &Value) -> Value {
    let mut spec = Map::new();
    for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        copy(obj, &format!("/spec/{k}"), &mut spec, k);
    }
    if let Some(metrics) = obj.pointer("/spec/metrics").and_then(Value::as_array) {
        for m in metrics {
            if m.pointer("/resource/name") == Some(&json!("cpu"))
                && let Some(u) = m.pointer("/resource/target/averageUtilization")
            {
                spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
            }
        }
    }
    let mut status = Map::new();
    for k in [
        "observedGeneration",
        "lastScaleTime",
        "currentReplicas",
        "desiredReplicas",
    ] {
        copy(obj, &format!("/status/{k}"), &mut status, k);
    }
    if let Some(metrics) = obj
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
    {
        for m in metrics {
            if m.pointer("/resource/name") == Some(&json!("cpu"))
                && let Some(u) = m.pointer("/resource/current/averageUtilization")
            {
                status.insert("currentCPUUtilizationPercentage".into(), u.clone());
            }
        }
    }
    status.entry("desiredReplicas").or_insert(json!(0));
    json!({"metadata": obj.get("metadata").cloned().unwrap_or(json!({})), "spec": spec, "status": status})
}

fn hpa_v1_to_v2(obj: &Value) -> Value {
    let mut spec = Map::new();
    for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        copy(obj, &format!("/spec/{k}"), &mut spec, k);
    }
    if let Some(t) = obj.pointer("/spec/targetCPUUtilizationPercentage") {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}]),
        );
    }
    let mut status = Map::new();
    for k in [
        "observedGeneration",
        "lastScaleTime",
        "currentReplicas",
        "desiredReplicas",
    ] {
        copy(obj, &format!("/status/{k}"), &mut status, k);
    }
    if let Some(c) = obj.pointer("/status/currentCPUUtilizationPercentage") {
        status.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]),
        );
    }
    let mut out =
        json!({"metadata": obj.get("metadata").cloned().unwrap_or(json!({})), "spec": spec});
    if obj.get("status").is_some() {
        out["status"] = Value::Object(status);
    }
    out
}

/// (core field, events.k8s.io field) pairs that map one to one.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("reason", "reason"),
    ("type", "type"),
    ("related", "related"),
    ("series", "series"),
];

fn core_event_to_events(obj: &Value) -> Value {
    let mut out = Map::new();
    out.insert(
        "metadata".into(),
        obj.get("metadata").cloned().unwrap_or(json!({})),
    );
    for (core, ev) in EVENT_FIELDS {
        copy(obj, &format!("/{core}"), &mut out, ev);
    }
    if !out.contains_key("reportingController") {
        copy(obj, "/source/component", &mut out, "reportingController");
    }
    if !out.contains_key("reportingInstance") {
        copy(obj, "/source/host", &mut out, "reportingInstance");
    }
    Value::Object(out)
}

fn events_to_core_event(obj: &Value) -> Value {
    let mut out = Map::new();
    out.insert(
        "metadata".into(),
        obj.get("metadata").cloned().unwrap_or(json!({})),
    );
    for (core, ev) in EVENT_FIELDS {
        copy(obj, &format!("/{ev}"), &mut out, core);
    }
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn an_object_at_the_served_version_is_shown_without_a_copy() {
        use std::borrow::Cow;
        let r = Registry::with_builtins();
        let cm = r.get("", "v1", "configmaps").expect("configmaps");
        let stored = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        assert!(matches!(to_version_cow(&stored, &cm), Cow::Borrowed(_)));
        // without its kind, or at no version, it is completed
        for partial in [
            json!({"apiVersion": "v1", "metadata": {"name": "a"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}}),
        ] {
            let shown = to_version_cow(&partial, &cm);
            assert!(matches!(shown, Cow::Owned(_)));
            assert_eq!(*shown, stored);
        }
    }

    #[test]
    fn list_items_are_written_as_converted_items_serialize() {
        let r = Registry::with_builtins();
        let cm = r.get("", "v1", "configmaps").expect("configmaps");
        let hpa = r
            .get("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1");
        let mut custom = (*cm).clone();
        custom.group = "example.com".into();
        let objs = [
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}),
            json!({"metadata":{"name":"no-version"},"kind":"ConfigMap"}),
            json!({"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"h"},
                "spec":{"scaleTargetRef":{"kind":"Deployment","name":"web"},"maxReplicas":3}}),
        ];
        for res in [&*cm, &*hpa, &custom] {
            for builtin in [true, false] {
                for o in &objs {
                    let mut out = Vec::new();
                    write_list_item(&mut out, o, res, builtin).expect("write");
                    let got: Value = serde_json::from_slice(&out).expect("valid JSON");
                    assert_eq!(got, crate::rest::as_list_item(res, o, builtin));
                }
            }
        }
    }

    #[test]
    fn hpa_round_trips_between_versions() {
        let r = Registry::with_builtins();
        let v1 = r
            .get("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1");
        let obj = json!({"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"h"},
            "spec":{"scaleTargetRef":{"kind":"Deployment","name":"web","apiVersion":"apps/v1"},"minReplicas":1,"maxReplicas":5,"targetCPUUtilizationPercentage":80}});
        let stored = to_storage(obj.clone(), &v1);
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(stored["kind"], "HorizontalPodAutoscaler");
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        let back = to_version(&stored, &v1);
        assert_eq!(back["spec"], obj["spec"]);
        let v2 = r
            .get("autoscaling", "v2", "horizontalpodautoscalers")
            .expect("v2");
        assert_eq!(to_version(&stored, &v2)["kind"], "HorizontalPodAutoscaler");
    }

    #[test]
    fn events_share_storage() {
        let r = Registry::with_builtins();
        let ev = r.get("events.k8s.io", "v1", "events").expect("events");
        let core = json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{"kind":"Pod","name":"p"},"message":"hi","reason":"Started","type":"Normal"});
        let shown = to_version(&core, &ev);
        assert_eq!(shown["regarding"]["name"], "p");
        assert_eq!(shown["note"], "hi");
        assert_eq!(to_storage(shown, &ev)["message"], "hi");
    }
}
