//! ResourceQuota admission for object counts (`pods`, `services`, `configmaps`, `secrets`,
//! `persistentvolumeclaims`, `replicationcontrollers`, `resourcequotas`,
//! `services.nodeports`, `services.loadbalancers` and `count/<resource>[.<group>]`).
//! Creates in a namespace with quotas are serialized, so concurrent creates can never
//! exceed a quota; usage is counted from the store and recorded in the quota's
//! `status.used`. Compute-resource quotas (`requests.cpu`, ...) and lowering usage when
//! objects go are not done here yet (the resource quota controller's part is #6).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use crate::storage::Store;

/// Per-namespace serialization of quota-checked creates.
#[derive(Default)]
pub struct Quotas {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Names with a legacy short form upstream also counts under.
const SHORT_NAMES: &[&str] = &[
    "pods",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "resourcequotas",
];

/// The quota resource names one new object counts against, with how much.
fn usage_of(res: &ResourceInfo, obj: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let count = if res.group.is_empty() {
        format!("count/{}", res.plural)
    } else {
        format!("count/{}.{}", res.plural, res.group)
    };
    out.push((count, 1));
    if res.group.is_empty() && SHORT_NAMES.contains(&res.plural.as_str()) {
        out.push((res.plural.clone(), 1));
    }
    if res.group.is_empty() && res.plural == "services" {
        let ty = obj
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        let ports = obj
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0) as u64;
        if matches!(ty, "NodePort" | "LoadBalancer") {
            out.push(("services.nodeports".into(), ports));
        }
        if ty == "LoadBalancer" {
            out.push(("services.loadbalancers".into(), 1));
        }
    }
    out
}

/// Whether a stored object still counts (terminal pods do not).
fn counts(obj: &Value) -> bool {
    !matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// A plain count from a quantity string ("3", "10"); other forms are not counts.
fn parse_count(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// What a checked create will record in which quota.
pub struct Admitted {
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    updates: Vec<(String, Value)>,
}

impl Quotas {
    /// Checks a create of `obj` in `ns` against every quota there. The returned value
    /// holds the namespace's lock until it is dropped (after the create).
    pub async fn admit(
        &self,
        store: &Store,
        res: &ResourceInfo,
        ns: &str,
        obj: &Value,
    ) -> Result<Admitted, ApiError> {
        let quota_prefix = format!("/registry/resourcequotas/{ns}/");
        if !res.namespaced || ns.is_empty() || store.count(&quota_prefix) == 0 {
            return Ok(Admitted::none());
        }
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(ns.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        let wanted = usage_of(res, obj);
        let (quotas, _) = store.snapshot(&quota_prefix);
        // the namespace's live objects of this resource, read once if any quota needs them
        let mut live_objects: Option<Vec<Arc<Value>>> = None;
        let mut updates = Vec::new();
        let mut exceeded: Vec<(String, String, u64, u64, u64)> = Vec::new();
        for q in quotas {
            let Some(hard) = q.pointer("/spec/hard").and_then(Value::as_object) else {
                continue;
            };
            let relevant: Vec<&(String, u64)> = wanted
                .iter()
                .filter(|(n, _)| hard.contains_key(n))
                .collect();
            if relevant.is_empty() {
                continue;
            }
            let qname = q
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let live = live_objects.get_or_insert_with(|| {
                let (existing, _) = store.snapshot(&crate::rest::prefix(res, ns));
                existing.into_iter().filter(|o| counts(o)).collect()
            });
            let mut used = q
                .pointer("/status/used")
                .cloned()
                .unwrap_or_else(|| json!({}));
            for (name, amount) in relevant {
                let Some(limit) = hard.get(name).and_then(parse_count) else {
                    continue;
                };
                let current: u64 = match name.as_str() {
                    "services.nodeports" | "services.loadbalancers" => live
                        .iter()
                        .flat_map(|o| usage_of(res, o))
                        .filter(|(n, _)| n == name)
                        .map(|(_, a)| a)
                        .sum(),
                    _ => live.len() as u64,
                };
                if current + amount > limit {
                    exceeded.push((qname.clone(), name.clone(), *amount, current, limit));
                }
                used[name.as_str()] = json!((current + amount).to_string());
            }
            let mut status = q.get("status").cloned().unwrap_or_else(|| json!({}));
            status["hard"] = Value::Object(hard.clone());
            status["used"] = used;
            updates.push((format!("{quota_prefix}{qname}"), status));
        }
        if let Some((qname, ..)) = exceeded.first() {
            let of = |f: fn(&(String, String, u64, u64, u64)) -> String| {
                exceeded.iter().map(f).collect::<Vec<_>>().join(",")
            };
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(ApiError::forbidden(
                &res.group,
                &res.plural,
                name,
                &format!(
                    "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                    of(|e| format!("{}={}", e.1, e.2)),
                    of(|e| format!("{}={}", e.1, e.3)),
                    of(|e| format!("{}={}", e.1, e.4)),
                ),
            ));
        }
        Ok(Admitted {
            _guard: Some(guard),
            updates,
        })
    }
}

impl Admitted {
    /// Nothing to record (no quota applies, or the plugin is off).
    pub fn none() -> Self {
        Admitted {
            _guard: None,
            updates: Vec::new(),
        }
    }

    /// Records the new usage in the quotas' status (after a successful create).
    pub async fn record(self, store: &Store) {
        for (key, status) in self.updates {
            for _ in 0..3 {
                let Some(current) = store.get(&key) else {
                    break;
                };
                let rv = crate::rest::rv_of(&current);
                let mut updated = (*current).clone();
                updated["status"] = status.clone();
                match store.update(&key, rv, updated).await {
                    Err(crate::storage::StorageError::Conflict { .. }) => continue,
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "recording quota usage failed");
                        break;
                    }
                    Ok(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names() {
        let r = crate::registry::Registry::with_builtins();
        let svc = r.get("", "v1", "services").expect("services");
        let u = usage_of(
            &svc,
            &json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}),
        );
        assert!(u.contains(&("services".into(), 1)));
        assert!(u.contains(&("count/services".into(), 1)));
        assert!(u.contains(&("services.nodeports".into(), 2)));
        let deploy = r.get("apps", "v1", "deployments").expect("deployments");
        assert_eq!(
            usage_of(&deploy, &json!({})),
            vec![("count/deployments.apps".to_string(), 1)]
        );
        assert!(!counts(&json!({"status": {"phase": "Succeeded"}})));
    }
}
