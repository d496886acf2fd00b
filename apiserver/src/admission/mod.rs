//! Built-in admission, in upstream's plugin order, each plugin on unless
//! `--disable-admission-plugins` names it ([`plugins`]). Mutating, on create: LimitRanger
//! (container resource defaults), ServiceAccount (the account, its token volume),
//! TaintNodesByCondition (new nodes start not-ready), Priority (`spec.priority` from the
//! PriorityClass), DefaultTolerationSeconds (tolerate not-ready/unreachable nodes for
//! 300s), DefaultStorageClass, StorageObjectInUseProtection (claims and volumes get
//! their protection finalizers). Validating, on every write: LimitRanger (bounds),
//! NodeRestriction (when enabled; also on deletes, evictions and TokenRequests) and
//! PodSecurity. NamespaceLifecycle and ResourceQuota live beside the generic write path
//! (`rest/write.rs`, `quota.rs`).

pub mod config;
mod defaultstorageclass;
mod limitranger;
pub mod noderestriction;
pub mod plugins;
mod podsecurity;
mod serviceaccount;
mod storageprotection;
mod taintnodes;

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use crate::rest::Rest;
use crate::webhooks::Attributes;

/// Priorities of the built-in system classes.
const SYSTEM_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Applies the mutating plugins to a new object.
pub async fn admit_create(
    rest: &Rest,
    res: &ResourceInfo,
    ns: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !res.group.is_empty() {
        return Ok(());
    }
    let on = |name: &str| rest.plugins.on(name);
    match res.plural.as_str() {
        "pods" => {
            if on("LimitRanger") {
                limitranger::default(rest, res, ns, obj);
            }
            if on("ServiceAccount") {
                serviceaccount::admit(rest, ns, obj).await?;
            }
            if on("Priority") {
                priority(rest, obj)?;
            }
            if on("DefaultTolerationSeconds") {
                default_tolerations(obj);
            }
        }
        "nodes" if on("TaintNodesByCondition") => taintnodes::admit(obj),
        "persistentvolumeclaims" | "persistentvolumes" => {
            if res.plural == "persistentvolumeclaims" && on("DefaultStorageClass") {
                defaultstorageclass::admit(rest, obj);
            }
            if on("StorageObjectInUseProtection") {
                storageprotection::admit(&res.plural, obj);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The validating built-in plugins, after the mutating webhooks and before the validating
/// ones (`res` is the storage version's entry); returns the warnings for the client.
pub fn validate(
    rest: &Rest,
    a: &Attributes<'_>,
    res: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    if rest.plugins.on("LimitRanger") {
        limitranger::validate(rest, res, a.sub, a.namespace, a.name, obj, old)?;
    }
    if rest.plugins.on("NodeRestriction") {
        noderestriction::validate(a, res, obj, old)?;
    }
    if !rest.plugins.on("PodSecurity") {
        return Ok(Vec::new());
    }
    podsecurity::validate(rest, a, res, obj, old)
}

fn priority(rest: &Rest, pod: &mut Value) -> Result<(), ApiError> {
    let class = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (value, policy) = if class.is_empty() {
        // a globalDefault PriorityClass, if any, else 0
        let default = rest
            .registry
            .get("scheduling.k8s.io", "v1", "priorityclasses")
            .and_then(|pc| {
                let (items, _) = rest.store.snapshot(&crate::rest::prefix(&pc, ""));
                items
                    .into_iter()
                    .find(|c| c.get("globalDefault") == Some(&json!(true)))
            });
        match default {
            Some(c) => {
                pod["spec"]["priorityClassName"] =
                    c.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
                (
                    c.get("value").and_then(Value::as_i64).unwrap_or(0),
                    c.get("preemptionPolicy").cloned(),
                )
            }
            None => (0, None),
        }
    } else if let Some((_, v)) = SYSTEM_CLASSES.iter().find(|(n, _)| *n == class) {
        (*v, None)
    } else {
        let found = rest
            .registry
            .get("scheduling.k8s.io", "v1", "priorityclasses")
            .and_then(|pc| rest.get_stored(&pc, "", &class));
        match found {
            Some(c) => (
                c.get("value").and_then(Value::as_i64).unwrap_or(0),
                c.get("preemptionPolicy").cloned(),
            ),
            None => {
                return Err(ApiError::forbidden(
                    "",
                    "pods",
                    pod.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    &format!("no PriorityClass with name {class} was found"),
                ));
            }
        }
    };
    pod["spec"]["priority"] = json!(value);
    let policy = policy.unwrap_or_else(|| json!("PreemptLowerPriority"));
    if pod.pointer("/spec/preemptionPolicy").is_none() {
        pod["spec"]["preemptionPolicy"] = policy;
    }
    Ok(())
}

fn default_tolerations(pod: &mut Value) {
    let mut tolerations: Vec<Value> = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let covered = tolerations.iter().any(|t| {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let tkey = t.get("key").and_then(Value::as_str).unwrap_or("");
            let exists_all = tkey.is_empty() && t.get("operator") == Some(&json!("Exists"));
            (tkey == key || exists_all) && (effect.is_empty() || effect == "NoExecute")
        });
        if !covered {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}));
        }
    }
    pod["spec"]["tolerations"] = json!(tolerations);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_are_added_once() {
        let mut pod = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]}});
        default_tolerations(&mut pod);
        let t = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 10);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
    }
}
