//! The plugin's mutating step: missing container requests and limits filled in from the
//! `type: Container` items' `defaultRequest` and `default`, and an annotation saying
//! what was set (upstream's `PodMutateLimitFunc`).

use serde_json::{Map, Value};

use super::items;
use super::resources::ResourceList;

/// The annotation naming what the plugin set.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Fills every container's and init container's missing `resources.requests` and
/// `resources.limits` entries from each LimitRange in turn, as upstream's mutating
/// step does: a LimitRange's `type: Container` items give limits from `default` and
/// requests from `defaultRequest` (a later item wins for the same resource), an entry
/// already present (even one set by an earlier LimitRange) is kept, and every
/// LimitRange that set something rewrites the annotation to
/// `LimitRanger plugin set: cpu, memory request for container c; cpu limit for init container i`.
///
/// The pod is expected to have been through API defaulting already, where a request
/// missing next to a limit is set to that limit; this is what makes a container's own
/// limit take precedence over a LimitRange's `defaultRequest`. A LimitRange that itself
/// went through [`super::default_limit_range`] has `defaultRequest` filled from
/// `default`, `max` and `min`. Values are written in canonical quantity form.
pub fn default_pod(limit_ranges: &[Value], pod: &mut Value) {
    for limit_range in limit_ranges {
        let (requests, limits) = container_defaults(limit_range);
        let mut notes = Vec::new();
        for (list, prefix) in [
            ("containers", "container"),
            ("initContainers", "init container"),
        ] {
            let entries = pod
                .get_mut("spec")
                .and_then(|s| s.get_mut(list))
                .and_then(Value::as_array_mut);
            for container in entries.into_iter().flatten() {
                notes.extend(merge_container(container, &requests, &limits, prefix));
            }
        }
        if !notes.is_empty() {
            annotate(pod, format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
    }
}

/// The default requests and limits of a LimitRange's `type: Container` items.
fn container_defaults(limit_range: &Value) -> (ResourceList, ResourceList) {
    let mut requests = ResourceList::new();
    let mut limits = ResourceList::new();
    for item in items(limit_range) {
        if item.kind == "Container" {
            requests.extend(item.default_request);
            limits.extend(item.default);
        }
    }
    (requests, limits)
}

/// Sets what `container` lacks and returns the annotation parts for it (requests first,
/// then limits, resource names sorted).
fn merge_container(
    container: &mut Value,
    requests: &ResourceList,
    limits: &ResourceList,
    prefix: &str,
) -> Vec<String> {
    let Some(container) = container.as_object_mut() else {
        return Vec::new();
    };
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(resources) = object_entry(container, "resources") else {
        return Vec::new();
    };
    let set_limits = fill(resources, "limits", limits);
    let set_requests = fill(resources, "requests", requests);
    let mut notes = Vec::new();
    if !set_requests.is_empty() {
        notes.push(format!(
            "{} request for {prefix} {name}",
            set_requests.join(", ")
        ));
    }
    if !set_limits.is_empty() {
        notes.push(format!(
            "{} limit for {prefix} {name}",
            set_limits.join(", ")
        ));
    }
    notes
}

/// Adds each of `defaults` missing from `resources.<field>`; returns the names added,
/// sorted. An absent or null list counts as empty; a list of another JSON type is left
/// alone (the object would not decode upstream).
fn fill(resources: &mut Map<String, Value>, field: &str, defaults: &ResourceList) -> Vec<String> {
    let missing: Vec<(&String, String)> = defaults
        .iter()
        .filter(|(name, _)| {
            resources
                .get(field)
                .and_then(|l| l.get(name.as_str()))
                .is_none()
        })
        .map(|(name, q)| (name, q.to_string()))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let Some(list) = object_entry(resources, field) else {
        return Vec::new();
    };
    let mut set: Vec<String> = Vec::new();
    for (name, value) in missing {
        list.insert(name.clone(), Value::String(value));
        set.push(name.clone());
    }
    set.sort();
    set
}

/// The object under `key`, created when absent or null; `None` if it is something else.
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Sets the plugin's annotation, creating `metadata.annotations` as needed.
fn annotate(pod: &mut Value, text: String) {
    let Some(pod) = pod.as_object_mut() else {
        return;
    };
    let annotations = object_entry(pod, "metadata").and_then(|m| object_entry(m, "annotations"));
    if let Some(annotations) = annotations {
        annotations.insert(ANNOTATION.to_string(), Value::String(text));
    }
}
