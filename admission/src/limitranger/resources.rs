//! Reading resource lists out of JSON objects, and the pod-wide totals the `Pod` limit
//! type is checked against (upstream's `podRequests` / `podLimits` in the plugin).
//!
//! A quantity that does not parse is left out of a list, as if absent: the API server
//! rejects such an object while decoding it, before admission, so nothing here may
//! depend on it (and nothing here may panic on it).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::quantity::Quantity;

/// A `ResourceList`: resource name to quantity, in name order.
pub(crate) type ResourceList = BTreeMap<String, Quantity>;

/// Resources that a pod-level `spec.resources` may set (upstream's
/// `supportedPodLevelResources`).
const POD_LEVEL_RESOURCES: &[&str] = &["cpu", "memory"];

/// A quantity as JSON carries it: a string (`"500m"`) or a bare number (`1`).
pub(crate) fn quantity_of(value: &Value) -> Option<Quantity> {
    match value {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

/// The parseable entries of a `ResourceList` object; anything else is empty.
pub(crate) fn resource_list(value: Option<&Value>) -> ResourceList {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(name, q)| Some((name.clone(), quantity_of(q)?)))
        .collect()
}

/// `resources.<field>` of a container (`field` is `requests` or `limits`).
pub(crate) fn container_list(container: &Value, field: &str) -> ResourceList {
    resource_list(container.get("resources").and_then(|r| r.get(field)))
}

/// The entries of `spec.<list>` (`containers` or `initContainers`).
pub(crate) fn containers<'a>(pod: &'a Value, list: &str) -> &'a [Value] {
    pod.get("spec")
        .and_then(|s| s.get(list))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Adds every entry of `more` into `list` (upstream's `addResourceList`).
fn add_list(list: &mut ResourceList, more: &ResourceList) {
    for (name, q) in more {
        list.entry(name.clone())
            .and_modify(|total| total.add(q))
            .or_insert(*q);
    }
}

/// Keeps the larger of each entry (upstream's `maxResourceList`).
fn max_list(list: &mut ResourceList, other: &ResourceList) {
    for (name, q) in other {
        match list.get(name) {
            Some(current) if q <= current => {}
            _ => {
                list.insert(name.clone(), *q);
            }
        }
    }
}

/// Whether an init container is a sidecar (`restartPolicy: Always`).
fn is_sidecar(container: &Value) -> bool {
    container.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// The pod's effective requests or limits (`field`): the sum over app containers and
/// sidecars, raised to what any single init container needs while it runs next to the
/// sidecars started before it, then overridden by the pod-level `spec.resources` for
/// the resources that may be set there. Status is not read, as upstream does not.
pub(crate) fn pod_total(pod: &Value, field: &str) -> ResourceList {
    let mut total = ResourceList::new();
    for container in containers(pod, "containers") {
        add_list(&mut total, &container_list(container, field));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for container in containers(pod, "initContainers") {
        let own = container_list(container, field);
        let running = if is_sidecar(container) {
            add_list(&mut total, &own);
            add_list(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut with_sidecars = own;
            add_list(&mut with_sidecars, &sidecars);
            with_sidecars
        };
        max_list(&mut init_max, &running);
    }
    max_list(&mut total, &init_max);
    // PodLevelResources is on by default in the releases we match; when the gate is off
    // the registry drops `spec.resources`, so honouring it when present is the same.
    let pod_level = resource_list(
        pod.get("spec")
            .and_then(|s| s.get("resources"))
            .and_then(|r| r.get(field)),
    );
    for (name, q) in pod_level {
        if POD_LEVEL_RESOURCES.contains(&name.as_str()) {
            total.insert(name, q);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn printed(list: &ResourceList) -> Vec<String> {
        list.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn pod_total_sums_containers_and_takes_the_init_maximum() {
        let pod = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                {"resources": {"requests": {"cpu": "200m"}}},
            ],
            "initContainers": [
                {"resources": {"requests": {"cpu": "1", "memory": "512Mi"}}},
            ],
        }});
        assert_eq!(
            printed(&pod_total(&pod, "requests")),
            ["cpu=1", "memory=1Gi"]
        );
        assert!(pod_total(&pod, "limits").is_empty());
    }

    #[test]
    fn sidecars_add_to_the_pod_and_to_later_init_containers() {
        let pod = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                {"resources": {"requests": {"cpu": "250m"}}},
            ],
        }});
        // app 100m + sidecar 200m = 300m; the init container runs at 250m + 200m = 450m
        assert_eq!(printed(&pod_total(&pod, "requests")), ["cpu=450m"]);
    }

    #[test]
    fn pod_level_resources_override_cpu_and_memory_only() {
        let pod = json!({"spec": {
            "resources": {"limits": {"cpu": "2", "example.com/gpu": "4"}},
            "containers": [{"resources": {"limits": {"cpu": "1", "example.com/gpu": "1"}}}],
        }});
        assert_eq!(
            printed(&pod_total(&pod, "limits")),
            ["cpu=2", "example.com/gpu=1"]
        );
    }

    #[test]
    fn malformed_entries_are_left_out() {
        let list = resource_list(Some(&json!({"cpu": "lots", "memory": 5, "x": null})));
        assert_eq!(printed(&list), ["memory=5"]);
        assert!(resource_list(Some(&json!("cpu"))).is_empty());
        assert!(containers(&json!({"spec": {"containers": 3}}), "containers").is_empty());
    }
}
