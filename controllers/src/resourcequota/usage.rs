//! What each object charges against a quota (upstream's quota evaluators in
//! `pkg/quota/v1/evaluator/core` and the generic object-count evaluator): which quota
//! resource names an evaluator tracks, whether an object matches a quota scope, and the
//! usage of one object. Pure functions over typed objects; listing them is the
//! controller's part. Pods, the one kind with compute resources, are in [`super::pods`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ResourceQuota, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::quantity::Quantity;

/// Quota resource name -> amount.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Adds `more` into `total`, key by key (upstream's `quota.Add`).
pub fn add_into(total: &mut ResourceList, more: &ResourceList) {
    for (name, q) in more {
        total.entry(name.clone()).or_default().add(q);
    }
}

/// Reads a serialized resource list; unparsable quantities are dropped.
pub fn parse_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> ResourceList {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| Quantity::parse(&v.0).map(|q| (k.clone(), q)))
        .collect()
}

/// One scope a quota restricts itself to: `spec.scopes` entries (operator `Exists`) and
/// `spec.scopeSelector.matchExpressions`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScopeRequirement {
    pub scope: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// Every scope requirement of a quota; an object must match all of them to be counted.
pub fn quota_scopes(rq: &ResourceQuota) -> Vec<ScopeRequirement> {
    let Some(spec) = rq.spec.as_ref() else {
        return vec![];
    };
    let plain = spec.scopes.iter().flatten().map(|s| ScopeRequirement {
        scope: s.clone(),
        operator: "Exists".into(),
        values: vec![],
    });
    let selected = spec
        .scope_selector
        .iter()
        .flat_map(|s| s.match_expressions.iter().flatten())
        .map(|e| ScopeRequirement {
            scope: e.scope_name.clone(),
            operator: e.operator.clone(),
            values: e.values.clone().unwrap_or_default(),
        });
    plain.chain(selected).collect()
}

/// Evaluates a scope selector requirement against one value (`None`: the object has
/// none), as upstream turns it into a label selector on the scope's name.
pub(super) fn selector_matches(req: &ScopeRequirement, value: Option<&str>) -> bool {
    match req.operator.as_str() {
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "In" => value.is_some_and(|v| req.values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !req.values.iter().any(|x| x == v)),
        _ => false,
    }
}

/// The kinds of objects quota counts, each with upstream's evaluator behaviour.
#[derive(Clone, Debug, PartialEq)]
pub enum Evaluator {
    Pods,
    Services,
    PersistentVolumeClaims,
    /// Object count only: `count/<resource>[.<group>]`, plus the legacy alias (`secrets`).
    Count {
        resource: String,
        group: String,
        alias: Option<String>,
    },
}

const POD_RESOURCES: &[&str] = &[
    "count/pods",
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
];

const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.loadbalancers",
    "services.nodeports",
];

const PVC_RESOURCES: &[&str] = &["persistentvolumeclaims", "requests.storage"];
const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// Whether a resource name is one of Kubernetes' own (`cpu`, `kubernetes.io/...`).
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// An extended resource a container can request (`example.com/gpu`).
pub(super) fn is_extended(name: &str) -> bool {
    !is_native(name) && !name.starts_with("requests.")
}

impl Evaluator {
    /// The object-count name of this evaluator's resource.
    pub fn count_name(resource: &str, group: &str) -> String {
        if group.is_empty() {
            format!("count/{resource}")
        } else {
            format!("count/{resource}.{group}")
        }
    }

    /// The names in `input` this evaluator tracks.
    pub fn matching_resources(&self, input: &[String]) -> Vec<String> {
        input
            .iter()
            .filter(|name| self.tracks(name))
            .cloned()
            .collect()
    }

    fn tracks(&self, name: &str) -> bool {
        match self {
            Self::Pods => {
                POD_RESOURCES.contains(&name)
                    || name.starts_with("hugepages-")
                    || name.starts_with("requests.hugepages-")
                    || (!is_native(name) && name.starts_with("requests."))
            }
            Self::Services => SERVICE_RESOURCES.contains(&name),
            Self::PersistentVolumeClaims => {
                name == "count/persistentvolumeclaims"
                    || PVC_RESOURCES.contains(&name)
                    || PVC_RESOURCES
                        .iter()
                        .any(|r| name.ends_with(&format!("{STORAGE_CLASS_SUFFIX}{r}")))
            }
            Self::Count {
                resource,
                group,
                alias,
            } => name == Self::count_name(resource, group) || alias.as_deref() == Some(name),
        }
    }
}

/// Sums the usage of the `items` that match every scope requirement, starting from zero
/// for each of `resources` (upstream's `CalculateUsageStats`).
pub fn usage_stats<T>(
    items: impl IntoIterator<Item = T>,
    resources: &[String],
    scopes: &[ScopeRequirement],
    matches_scope: impl Fn(&ScopeRequirement, &T) -> bool,
    usage: impl Fn(&T) -> ResourceList,
) -> ResourceList {
    let mut used: ResourceList = resources
        .iter()
        .map(|r| (r.clone(), Quantity::zero()))
        .collect();
    for item in items {
        if scopes.iter().all(|s| matches_scope(s, &item)) {
            add_into(&mut used, &usage(&item));
        }
    }
    used
}

/// Object-count usage: one of the resource, and of its alias.
pub fn count_usage(resource: &str, group: &str, alias: Option<&str>) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(Evaluator::count_name(resource, group), Quantity::count(1));
    if let Some(a) = alias {
        out.insert(a.to_string(), Quantity::count(1));
    }
    out
}

// ---- services ----

/// What a Service charges: one service; its node ports (NodePort and LoadBalancer
/// types, only explicit ones when LoadBalancer node ports are not allocated); one load
/// balancer.
pub fn service_usage(svc: &Service) -> ResourceList {
    let spec = svc.spec.clone().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or_default();
    let mut out = ResourceList::new();
    out.insert("count/services".into(), Quantity::count(1));
    out.insert("services".into(), Quantity::count(1));
    let (node_ports, lbs) = match spec.type_.as_deref() {
        Some("NodePort") => (ports.len(), 0),
        Some("LoadBalancer") if spec.allocate_load_balancer_node_ports == Some(false) => (
            ports
                .iter()
                .filter(|p| p.node_port.is_some_and(|n| n != 0))
                .count(),
            1,
        ),
        Some("LoadBalancer") => (ports.len(), 1),
        _ => (0, 0),
    };
    out.insert(
        "services.nodeports".into(),
        Quantity::count(node_ports as i64),
    );
    out.insert("services.loadbalancers".into(), Quantity::count(lbs));
    out
}

// ---- persistent volume claims ----

fn storage_class(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .map(String::as_str)
        .or_else(|| pvc.spec.as_ref()?.storage_class_name.as_deref())
        .filter(|c| !c.is_empty())
}

/// The storage a claim charges: its request in whole bytes, or what was allocated when
/// that is more (an expansion in progress).
fn storage_usage(pvc: &PersistentVolumeClaim) -> Option<Quantity> {
    let requested = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))?
        .round_up_to_units();
    let allocated = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0));
    Some(match allocated {
        Some(a) if a > requested => a.round_up_to_units(),
        _ => requested,
    })
}

/// What a claim charges: the claim, its storage, and both again per storage class.
pub fn pvc_usage(pvc: &PersistentVolumeClaim) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("persistentvolumeclaims".into(), Quantity::count(1));
    out.insert("count/persistentvolumeclaims".into(), Quantity::count(1));
    let class = storage_class(pvc);
    if let Some(c) = class {
        out.insert(
            format!("{c}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Quantity::count(1),
        );
    }
    if let Some(storage) = storage_usage(pvc) {
        out.insert("requests.storage".into(), storage);
        if let Some(c) = class {
            out.insert(
                format!("{c}{STORAGE_CLASS_SUFFIX}requests.storage"),
                storage,
            );
        }
    }
    out
}

/// Whether a claim is in a quota scope: only `VolumeAttributesClass` applies to claims.
pub fn pvc_matches_scope(req: &ScopeRequirement, pvc: &PersistentVolumeClaim) -> bool {
    if req.scope != "VolumeAttributesClass" {
        return false;
    }
    let mut classes: Vec<&str> = [
        pvc.spec
            .as_ref()
            .and_then(|s| s.volume_attributes_class_name.as_deref()),
        pvc.status
            .as_ref()
            .and_then(|s| s.current_volume_attributes_class_name.as_deref()),
        pvc.status
            .as_ref()
            .and_then(|s| s.modify_volume_status.as_ref())
            .map(|m| {
                m.target_volume_attributes_class_name
                    .as_deref()
                    .unwrap_or("")
            }),
    ]
    .into_iter()
    .flatten()
    .filter(|c| !c.is_empty())
    .collect();
    classes.dedup();
    if classes.is_empty() {
        return selector_matches(req, None);
    }
    classes.iter().any(|c| selector_matches(req, Some(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn show(list: &ResourceList) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }

    #[test]
    fn services_charge_node_ports_and_load_balancers() {
        let svc: Service = serde_json::from_value(json!({"spec": {"type": "LoadBalancer",
            "ports": [{"port": 80}, {"port": 443}]}}))
        .expect("svc");
        let used = show(&service_usage(&svc));
        assert_eq!(used["services.nodeports"], "2");
        assert_eq!(used["services.loadbalancers"], "1");
        let plain: Service =
            serde_json::from_value(json!({"spec": {"ports": [{"port": 80}]}})).expect("svc");
        assert_eq!(show(&service_usage(&plain))["services.nodeports"], "0");
    }

    #[test]
    fn claims_charge_storage_per_class() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"spec": {
            "storageClassName": "gold", "resources": {"requests": {"storage": "1.5Gi"}}}}))
        .expect("pvc");
        let used = show(&pvc_usage(&pvc));
        assert_eq!(used["requests.storage"], "1536Mi");
        assert_eq!(
            used["gold.storageclass.storage.k8s.io/requests.storage"],
            "1536Mi"
        );
        assert_eq!(
            used["gold.storageclass.storage.k8s.io/persistentvolumeclaims"],
            "1"
        );
        assert!(
            Evaluator::PersistentVolumeClaims
                .tracks("gold.storageclass.storage.k8s.io/requests.storage")
        );
    }

    #[test]
    fn evaluators_match_their_resources() {
        let names: Vec<String> = [
            "pods",
            "requests.nvidia.com/gpu",
            "services",
            "secrets",
            "count/secrets",
            "requests.hugepages-1Gi",
            "count/deployments.apps",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            Evaluator::Pods.matching_resources(&names),
            ["pods", "requests.nvidia.com/gpu", "requests.hugepages-1Gi"]
        );
        let secrets = Evaluator::Count {
            resource: "secrets".into(),
            group: String::new(),
            alias: Some("secrets".into()),
        };
        assert_eq!(
            secrets.matching_resources(&names),
            ["secrets", "count/secrets"]
        );
        let deployments = Evaluator::Count {
            resource: "deployments".into(),
            group: "apps".into(),
            alias: None,
        };
        assert_eq!(
            deployments.matching_resources(&names),
            ["count/deployments.apps"]
        );
    }
}
