//! Upstream's `LimitRanger` admission plugin (`plugin/pkg/admission/limitranger`), as
//! pure functions over the request's object and the namespace's LimitRanges.
//!
//! The plugin has a mutating half ([`default_pod`]: container defaults from
//! `type: Container` items, and the `kubernetes.io/limit-ranger` annotation) and a
//! validating half ([`validate_pod`], [`validate_pvc`] and their `_update` forms:
//! `min`, `max` and `maxLimitRequestRatio` per container, per pod, per claim). Whether it
//! runs at all is [`handles`] plus [`old_object_is_deleting`]. The LimitRange object's
//! own API defaulting and validation are the `validation` crate's.
//!
//! What this module must not do: list LimitRanges (the caller passes the namespace's,
//! from its informer or a live list, as upstream's plugin does) or build the Forbidden
//! status (the caller does, with [`forbidden_text`] for the part after `is forbidden: `).

mod constraints;
mod defaults;
pub(crate) mod resources;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub use defaults::{ANNOTATION, default_pod};

use constraints::{max_constraint, max_request_constraint, min_constraint, ratio_constraint};
use resources::{ResourceList, container_list, containers, pod_total, resource_list};

/// Whether the plugin acts on a request for `resource`/`subresource` with `operation`
/// (`CREATE`, `UPDATE`, ...), both in the mutating and the validating step, as upstream's
/// `Handles` and `SupportsAttributes` decide together: pods on create and on an update
/// of the `resize` subresource, PersistentVolumeClaims on create and update, nothing
/// else. A plain pod update is skipped since containers cannot change there.
pub fn handles(resource: &str, subresource: &str, operation: &str) -> bool {
    let create = operation.eq_ignore_ascii_case("CREATE");
    let update = operation.eq_ignore_ascii_case("UPDATE");
    if !create && !update {
        return false;
    }
    if !subresource.is_empty() {
        return resource == "pods" && subresource == "resize" && update;
    }
    match resource {
        "pods" => create,
        "persistentvolumeclaims" => true,
        _ => false,
    }
}

/// Whether the stored (old) object of an update is being deleted, in which case
/// upstream's plugin lets the request through without defaulting or checking.
pub fn old_object_is_deleting(old: &Value) -> bool {
    old.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// The text upstream's `utilerrors.NewAggregate(errs).Error()` gives for `messages`:
/// duplicates dropped, one message as is, several as `[a, b]`. A Forbidden status for
/// the request reads `<resource> "<name>" is forbidden: ` followed by this text.
pub fn forbidden_text(messages: &[String]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for message in messages {
        if !unique.contains(&message.as_str()) {
            unique.push(message);
        }
    }
    match unique.as_slice() {
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Checks a new pod (after [`default_pod`]) against every LimitRange. Upstream stops at
/// the first LimitRange with violations and reports all of that LimitRange's messages.
pub fn validate_pod(limit_ranges: &[Value], pod: &Value) -> Result<(), Vec<String>> {
    first_failure(limit_ranges, |lr| pod_violations(lr, pod, None))
}

/// Checks a pod update that [`handles`] lets through (a resize) against every
/// LimitRange: as on create, except that a resource whose request and limit are the
/// same as in the stored pod (per container by name, or pod-wide) is not checked again,
/// since a stored value stays valid when a LimitRange tightens afterwards.
pub fn validate_pod_update(
    limit_ranges: &[Value],
    pod: &Value,
    old_pod: &Value,
) -> Result<(), Vec<String>> {
    first_failure(limit_ranges, |lr| pod_violations(lr, pod, Some(old_pod)))
}

/// Checks a new PersistentVolumeClaim's `spec.resources.requests` against the
/// `type: PersistentVolumeClaim` items (claims are never defaulted).
pub fn validate_pvc(limit_ranges: &[Value], pvc: &Value) -> Result<(), Vec<String>> {
    first_failure(limit_ranges, |lr| pvc_violations(lr, pvc, None))
}

/// Checks a PersistentVolumeClaim update: as on create, except that a request equal to
/// the stored claim's is not checked again.
pub fn validate_pvc_update(
    limit_ranges: &[Value],
    pvc: &Value,
    old_pvc: &Value,
) -> Result<(), Vec<String>> {
    first_failure(limit_ranges, |lr| pvc_violations(lr, pvc, Some(old_pvc)))
}

/// Runs `check` per LimitRange and returns the first non-empty list of messages.
fn first_failure(
    limit_ranges: &[Value],
    check: impl Fn(&Value) -> Vec<String>,
) -> Result<(), Vec<String>> {
    match limit_ranges.iter().map(check).find(|m| !m.is_empty()) {
        Some(messages) => Err(messages),
        None => Ok(()),
    }
}

/// One entry of a LimitRange's `spec.limits`, with its parseable quantities.
pub(crate) struct Item {
    pub(crate) kind: String,
    pub(crate) min: ResourceList,
    pub(crate) max: ResourceList,
    pub(crate) default: ResourceList,
    pub(crate) default_request: ResourceList,
    pub(crate) ratio: ResourceList,
}

/// The items of a LimitRange, in order; a malformed quantity is left out of its list.
pub(crate) fn items(limit_range: &Value) -> Vec<Item> {
    let limits = limit_range
        .get("spec")
        .and_then(|s| s.get("limits"))
        .and_then(Value::as_array);
    limits
        .into_iter()
        .flatten()
        .map(|item| Item {
            kind: item
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            min: resource_list(item.get("min")),
            max: resource_list(item.get("max")),
            default: resource_list(item.get("default")),
            default_request: resource_list(item.get("defaultRequest")),
            ratio: resource_list(item.get("maxLimitRequestRatio")),
        })
        .collect()
}

/// A container's or a pod's requests and limits, as one constraint target.
struct Usage {
    requests: ResourceList,
    limits: ResourceList,
}

impl Usage {
    /// Whether `resource` is requested and limited exactly as in `old` (both absent or
    /// both equal, for each of request and limit).
    fn unchanged(&self, old: Option<&Usage>, resource: &str) -> bool {
        old.is_some_and(|old| {
            self.requests.get(resource) == old.requests.get(resource)
                && self.limits.get(resource) == old.limits.get(resource)
        })
    }
}

fn container_usage(container: &Value) -> Usage {
    Usage {
        requests: container_list(container, "requests"),
        limits: container_list(container, "limits"),
    }
}

/// The min, max and ratio checks of one item against one target, skipping resources
/// that `old` already held unchanged.
fn check_usage(item: &Item, usage: &Usage, old: Option<&Usage>, out: &mut Vec<String>) {
    let kind = item.kind.as_str();
    let (req, lim) = (&usage.requests, &usage.limits);
    for (resource, enforced) in &item.min {
        if !usage.unchanged(old, resource) {
            out.extend(min_constraint(kind, resource, enforced, req, lim));
        }
    }
    for (resource, enforced) in &item.max {
        if !usage.unchanged(old, resource) {
            out.extend(max_constraint(kind, resource, enforced, req, lim));
        }
    }
    for (resource, enforced) in &item.ratio {
        if !usage.unchanged(old, resource) {
            out.extend(ratio_constraint(kind, resource, enforced, req, lim));
        }
    }
}

/// Upstream's `PodValidateLimitFunc` for one LimitRange.
fn pod_violations(limit_range: &Value, pod: &Value, old_pod: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for item in items(limit_range) {
        match item.kind.as_str() {
            "Container" => {
                for list in ["containers", "initContainers"] {
                    let old_list = old_pod.map_or(&[][..], |old| containers(old, list));
                    for container in containers(pod, list) {
                        let old = container_named(old_list, container).map(container_usage);
                        check_usage(&item, &container_usage(container), old.as_ref(), &mut out);
                    }
                }
            }
            "Pod" => {
                let usage = |p: &Value| Usage {
                    requests: pod_total(p, "requests"),
                    limits: pod_total(p, "limits"),
                };
                let old = old_pod.map(usage);
                check_usage(&item, &usage(pod), old.as_ref(), &mut out);
            }
            _ => {}
        }
    }
    out
}

/// The container in `list` with the same name as `container`, if any.
fn container_named<'a>(list: &'a [Value], container: &Value) -> Option<&'a Value> {
    let name_of = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let name = name_of(container);
    list.iter().find(|c| name_of(c) == name)
}

/// Upstream's `PersistentVolumeClaimValidateLimitFunc` for one LimitRange: only requests
/// count (a claim's limits are not user input).
fn pvc_violations(limit_range: &Value, pvc: &Value, old_pvc: Option<&Value>) -> Vec<String> {
    let requests_of = |claim: &Value| resource_list(claim.pointer("/spec/resources/requests"));
    let requests = requests_of(pvc);
    let old_requests = old_pvc.map(requests_of);
    let unchanged = |resource: &str| {
        old_requests.as_ref().is_some_and(|old| {
            matches!((requests.get(resource), old.get(resource)), (Some(a), Some(b)) if a == b)
        })
    };
    let mut out = Vec::new();
    for item in items(limit_range) {
        if item.kind != "PersistentVolumeClaim" {
            continue;
        }
        let none = ResourceList::new();
        for (resource, enforced) in &item.min {
            if !unchanged(resource) {
                out.extend(min_constraint(
                    &item.kind, resource, enforced, &requests, &none,
                ));
            }
        }
        for (resource, enforced) in &item.max {
            if !unchanged(resource) {
                out.extend(max_request_constraint(
                    &item.kind, resource, enforced, &requests,
                ));
            }
        }
    }
    out
}
