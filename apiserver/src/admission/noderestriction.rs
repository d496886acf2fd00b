//! The NodeRestriction admission plugin (off unless `--enable-admission-plugins` names
//! it): a kubelet (`system:node:<name>` in `system:nodes`) may only create mirror pods
//! bound to itself that reference no other objects, update the status of, delete and
//! evict only its own pods, register, update and delete only its own Node (not its
//! taints, nor labels outside the kubelet's set), touch only its own Lease in
//! `kube-node-lease` and its own CSINode, update only the capacity and conditions of a
//! claim's status, and request service account tokens only bound to its own pods.

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;
use webhook::Operation;

use crate::authn::User;
use crate::nodeauthz::node_identity;
use crate::webhooks::Attributes;

/// Labels a kubelet may set on its Node, besides the `kubelet.kubernetes.io` and
/// `node.kubernetes.io` namespaces.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// The node the user speaks for; `Err` for a node whose name is missing.
fn node_of(user: Option<&User>) -> Option<Result<&str, String>> {
    let user = user?;
    let node = node_identity(user)?;
    Some(if node.is_empty() {
        Err(format!(
            "could not determine node from user \"{}\"",
            user.name
        ))
    } else {
        Ok(node)
    })
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Checks a create or update by a node.
pub fn validate(
    a: &Attributes<'_>,
    res: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let Some(node) = node_of(a.user) else {
        return Ok(());
    };
    let node = node.map_err(|e| forbid(res, a.name, &e))?;
    let deny = |why: String| Err(forbid(res, a.name, &why));
    match (res.group.as_str(), res.plural.as_str(), a.sub) {
        ("", "pods", "") => pod_create(node, obj).map_or(Ok(()), deny),
        ("", "pods", "status") => {
            let old = old.unwrap_or(&Value::Null);
            if str_at(old, "/spec/nodeName") != node {
                return deny(format!(
                    "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
                ));
            }
            if old.pointer("/metadata/labels") != obj.pointer("/metadata/labels") {
                return deny(format!(
                    "node \"{node}\" cannot update labels through pod status"
                ));
            }
            if old.pointer("/status/resourceClaimStatuses")
                != obj.pointer("/status/resourceClaimStatuses")
            {
                return deny(format!(
                    "node \"{node}\" cannot update resource claim statues"
                ));
            }
            Ok(())
        }
        ("", "pods", sub) if sub != "eviction" => deny(format!(
            "unexpected pod subresource \"{sub}\", only 'status' and 'eviction' are allowed"
        )),
        ("", "nodes", _) => node_write(node, a, obj, old).map_or(Ok(()), deny),
        ("", "persistentvolumeclaims", "status") => {
            pvc_status(node, obj, old.unwrap_or(&Value::Null)).map_or(Ok(()), deny)
        }
        ("", "persistentvolumeclaims", _) => deny("may only update PVC status".into()),
        ("coordination.k8s.io", "leases", _) => {
            lease(node, a.namespace, a.name).map_or(Ok(()), deny)
        }
        ("storage.k8s.io", "csinodes", _) if a.name != node => {
            deny("can only access CSINode with the same name as the requesting node".into())
        }
        _ => Ok(()),
    }
}

fn forbid(res: &ResourceInfo, name: &str, why: &str) -> ApiError {
    ApiError::forbidden(&res.group, &res.plural, name, why)
}

fn lease(node: &str, namespace: &str, name: &str) -> Option<String> {
    if namespace != "kube-node-lease" {
        return Some("can only access leases in the \"kube-node-lease\" system namespace".into());
    }
    (name != node)
        .then(|| "can only access node lease with the same name as the requesting node".into())
}

/// A node may change only a claim's `status.capacity`, `status.conditions` and the
/// expansion-recovery fields.
fn pvc_status(node: &str, new: &Value, old: &Value) -> Option<String> {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        if let Some(s) = v.get_mut("status").and_then(Value::as_object_mut) {
            for f in [
                "capacity",
                "conditions",
                "allocatedResourceStatuses",
                "allocatedResources",
            ] {
                s.remove(f);
            }
        }
        v
    };
    (strip(new) != strip(old)).then(|| {
        format!(
            "node \"{node}\" is not allowed to update fields other than status.capacity and status.conditions"
        )
    })
}

/// Checks a delete by a node: only its own pods, Node, Lease and CSINode.
pub fn validate_delete(
    a: &Attributes<'_>,
    res: &ResourceInfo,
    old: &Value,
) -> Result<(), ApiError> {
    let Some(node) = node_of(a.user) else {
        return Ok(());
    };
    let node = node.map_err(|e| forbid(res, a.name, &e))?;
    let why = match (res.group.as_str(), res.plural.as_str()) {
        ("", "pods") => (str_at(old, "/spec/nodeName") != node).then(|| {
            format!("node \"{node}\" can only delete pods with spec.nodeName set to itself")
        }),
        ("", "nodes") => (a.name != node).then(|| {
            format!(
                "node \"{node}\" is not allowed to modify node \"{}\"",
                a.name
            )
        }),
        ("", "persistentvolumeclaims") => Some("may only update PVC status".into()),
        ("coordination.k8s.io", "leases") => lease(node, a.namespace, a.name),
        ("storage.k8s.io", "csinodes") => (a.name != node)
            .then(|| "can only access CSINode with the same name as the requesting node".into()),
        _ => None,
    };
    why.map_or(Ok(()), |w| Err(forbid(res, a.name, &w)))
}

/// Checks an eviction by a node: only of pods bound to it (`pod` is the stored one).
pub fn validate_eviction(
    user: Option<&User>,
    res: &ResourceInfo,
    name: &str,
    pod: &Value,
) -> Result<(), ApiError> {
    let Some(node) = node_of(user) else {
        return Ok(());
    };
    let node = node.map_err(|e| forbid(res, name, &e))?;
    if str_at(pod, "/spec/nodeName") != node {
        return Err(forbid(
            res,
            name,
            &format!("node {node} can only evict pods with spec.nodeName set to itself"),
        ));
    }
    Ok(())
}

/// Checks a TokenRequest by a node: it must be bound to a pod (by uid) scheduled on
/// the node. `pod` looks a pod up by name in the request's namespace.
pub fn validate_token_request(
    user: Option<&User>,
    res: &ResourceInfo,
    name: &str,
    request: &Value,
    pod: impl Fn(&str) -> Result<Value, ApiError>,
) -> Result<(), ApiError> {
    let Some(node) = node_of(user) else {
        return Ok(());
    };
    let node = node.map_err(|e| forbid(res, name, &e))?;
    let deny = |why: &str| Err(forbid(res, name, why));
    let bound = request
        .pointer("/spec/boundObjectRef")
        .unwrap_or(&Value::Null);
    if bound.is_null()
        || str_at(bound, "/apiVersion") != "v1"
        || str_at(bound, "/kind") != "Pod"
        || str_at(bound, "/name").is_empty()
    {
        return deny("node requested token not bound to a pod");
    }
    let uid = str_at(bound, "/uid");
    if uid.is_empty() {
        return deny("node requested token with a pod binding without a uid");
    }
    let pod = pod(str_at(bound, "/name"))?;
    if str_at(&pod, "/metadata/uid") != uid {
        return deny(&format!(
            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
        ));
    }
    if str_at(&pod, "/spec/nodeName") != node {
        return deny("node requested token bound to a pod scheduled on a different node");
    }
    Ok(())
}

/// Why a node may not create this pod, if it may not.
fn pod_create(node: &str, pod: &Value) -> Option<String> {
    let mirror = pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some();
    if !mirror {
        return Some(format!(
            "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"
        ));
    }
    if str_at(pod, "/spec/nodeName") != node {
        return Some(format!(
            "node \"{node}\" can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match owners.as_slice() {
        [] => {
            return Some(format!(
                "node \"{node}\" can only create pods with an owner reference set to itself"
            ));
        }
        [owner] => {
            if str_at(owner, "/apiVersion") != "v1"
                || str_at(owner, "/kind") != "Node"
                || str_at(owner, "/name") != node
            {
                return Some(format!(
                    "node \"{node}\" can only create pods with an owner reference set to itself"
                ));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return Some(format!(
                    "node \"{node}\" can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return Some(format!(
                    "node \"{node}\" must not set blockOwnerDeletion on an owner reference"
                ));
            }
        }
        _ => {
            return Some(format!(
                "node \"{node}\" can only create pods with a single owner reference set to itself"
            ));
        }
    }
    references(node, pod)
}

/// Mirror pods may not reference API objects the node could then read.
fn references(node: &str, pod: &Value) -> Option<String> {
    if !str_at(pod, "/spec/serviceAccountName").is_empty() {
        return Some(format!(
            "node \"{node}\" can not create pods that reference a service account"
        ));
    }
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| {
            pod.pointer(&format!("/spec/{l}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect::<Vec<_>>();
    let env_refs = |key: &str, from: &str| {
        containers.iter().any(|c| {
            let env = c.get("env").and_then(Value::as_array);
            let env_from = c.get("envFrom").and_then(Value::as_array);
            env.is_some_and(|e| {
                e.iter()
                    .any(|e| e.pointer(&format!("/valueFrom/{key}")).is_some())
            }) || env_from.is_some_and(|e| e.iter().any(|e| e.get(from).is_some()))
        })
    };
    let projected = |key: &str| {
        volumes.iter().any(|v| {
            v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|s| s.get(key).is_some()))
        })
    };
    let volume = |key: &str| volumes.iter().any(|v| v.get(key).is_some());
    let pull_secrets = pod
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let secret_volume_kinds = [
        "secret",
        "azureFile",
        "cephfs",
        "cinder",
        "flexVolume",
        "iscsi",
        "rbd",
        "scaleIO",
        "storageos",
        "csi",
    ];
    let secrets = pull_secrets
        || secret_volume_kinds.iter().any(|k| volume(k))
        || projected("secret")
        || env_refs("secretKeyRef", "secretRef");
    if secrets {
        return Some(format!(
            "node \"{node}\" can not create pods that reference secrets"
        ));
    }
    if volume("configMap") || projected("configMap") || env_refs("configMapKeyRef", "configMapRef")
    {
        return Some(format!(
            "node \"{node}\" can not create pods that reference configmaps"
        ));
    }
    if projected("clusterTrustBundle") {
        return Some(format!(
            "node \"{node}\" can not create pods that reference clustertrustbundles"
        ));
    }
    if volume("persistentVolumeClaim") {
        return Some(format!(
            "node \"{node}\" can not create pods that reference persistentvolumeclaims"
        ));
    }
    None
}

fn labels(v: Option<&Value>) -> serde_json::Map<String, Value> {
    v.and_then(|v| v.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Label keys a kubelet may not add, change or remove.
fn forbidden_labels(new: Option<&Value>, old: Option<&Value>) -> Vec<String> {
    let (new, old) = (labels(new), labels(old));
    let mut modified: Vec<&String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(old.keys().filter(|k| !new.contains_key(*k)))
        .collect();
    modified.sort();
    modified.dedup();
    let in_namespace = |ns: &str, domain: &str| ns == domain || ns.ends_with(&format!(".{domain}"));
    modified
        .into_iter()
        .filter(|k| {
            let ns = k.split_once('/').map(|(ns, _)| ns).unwrap_or("");
            let restricted = in_namespace(ns, "node-restriction.kubernetes.io");
            let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
            let kubelet = KUBELET_LABELS.contains(&k.as_str())
                || in_namespace(ns, "kubelet.kubernetes.io")
                || in_namespace(ns, "node.kubernetes.io");
            restricted || (kubernetes && !kubelet)
        })
        .cloned()
        .collect()
}

/// Why a node may not write this Node, if it may not.
fn node_write(node: &str, a: &Attributes<'_>, obj: &Value, old: Option<&Value>) -> Option<String> {
    if a.name != node {
        return Some(format!(
            "node \"{node}\" is not allowed to modify node \"{}\"",
            a.name
        ));
    }
    match a.operation {
        Operation::Create => {
            if obj
                .pointer("/spec/configSource")
                .is_some_and(|c| !c.is_null())
            {
                return Some(format!(
                    "node \"{node}\" is not allowed to create pods with a non-nil configSource"
                ));
            }
            let bad = forbidden_labels(Some(obj), None);
            (!bad.is_empty()).then(|| {
                format!(
                    "node \"{node}\" is not allowed to set the following labels: {}",
                    bad.join(", ")
                )
            })
        }
        Operation::Update => {
            let old = old?;
            let taints = |v: &Value| {
                v.pointer("/spec/taints")
                    .cloned()
                    .filter(|t| t != &Value::Array(Vec::new()))
            };
            if taints(obj) != taints(old) {
                return Some(format!("node \"{node}\" is not allowed to modify taints"));
            }
            let bad = forbidden_labels(Some(obj), Some(old));
            (!bad.is_empty())
                .then(|| format!("is not allowed to modify labels: {}", bad.join(", ")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mirror_pods_only_bound_to_the_node() {
        let good = json!({
            "metadata": {"name": "static-web-n1", "annotations": {"kubernetes.io/config.mirror": "x"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
        });
        assert_eq!(pod_create("n1", &good), None);
        let mut plain = good.clone();
        plain["metadata"]["annotations"] = json!({});
        assert_eq!(
            pod_create("n1", &plain).as_deref(),
            Some(
                "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods"
            )
        );
        assert_eq!(
            pod_create("n2", &good).as_deref(),
            Some("node \"n2\" can only create pods with spec.nodeName set to itself")
        );
        let mut secret = good.clone();
        secret["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "x"}}]);
        assert_eq!(
            pod_create("n1", &secret).as_deref(),
            Some("node \"n1\" can not create pods that reference secrets")
        );
    }

    #[test]
    fn kubelet_labels_only() {
        let node = json!({"metadata": {"labels": {
            "kubernetes.io/hostname": "n1", "node.kubernetes.io/exclude-from-external-load-balancers": "",
            "example.com/team": "a"}}});
        assert!(forbidden_labels(Some(&node), None).is_empty());
        let bad = json!({"metadata": {"labels": {
            "node-role.kubernetes.io/control-plane": "", "node-restriction.kubernetes.io/x": "y"}}});
        assert_eq!(
            forbidden_labels(Some(&bad), None),
            vec![
                "node-restriction.kubernetes.io/x",
                "node-role.kubernetes.io/control-plane"
            ]
        );
    }
}
