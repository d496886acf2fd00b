//! ResourceQuota admission for object counts (`pods`, `services`, `configmaps`, `secrets`,
//! `persistentvolumeclaims`, `replicationcontrollers`, `resourcequotas`,
//! `services.nodeports`, `services.loadbalancers` and `count/<resource>[.<group>]`) and
//! pods' compute resources (`requests.cpu`, `limits.memory`, ..., from the `admission`
//! crate's pod evaluator; pods must state what a quota tracks). Creates in a namespace
//! with quotas are serialized, so concurrent creates can never exceed a quota; usage is
//! counted from the store and recorded in the quota's `status.used`. Quota scopes and
//! lowering usage when objects go are the resource quota controller's part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use machinery::ApiError;
use machinery::quantity::Quantity;
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
fn usage_of(res: &ResourceInfo, obj: &Value) -> Vec<(String, Quantity)> {
    let mut out = Vec::new();
    let count = if res.group.is_empty() {
        format!("count/{}", res.plural)
    } else {
        format!("count/{}.{}", res.plural, res.group)
    };
    out.push((count, Quantity::count(1)));
    if res.group.is_empty() && SHORT_NAMES.contains(&res.plural.as_str()) {
        out.push((res.plural.clone(), Quantity::count(1)));
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
            .unwrap_or(0) as i64;
        if matches!(ty, "NodePort" | "LoadBalancer") {
            out.push(("services.nodeports".into(), Quantity::count(ports)));
        }
        if ty == "LoadBalancer" {
            out.push(("services.loadbalancers".into(), Quantity::count(1)));
        }
    }
    if res.group.is_empty() && res.plural == "pods" {
        out.extend(::admission::quota::pod_compute_usage(obj));
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

/// A quota's limit: a quantity as JSON carries it.
fn parse_limit(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s.trim()),
        Value::Number(n) => Quantity::parse(&n.to_string()),
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
        // the namespace's live objects of this resource with their usage, read and
        // evaluated once if any quota needs them
        type Live = Vec<(Arc<Value>, Vec<(String, Quantity)>)>;
        let mut live_objects: Option<Live> = None;
        let is_pod = res.group.is_empty() && res.plural == "pods";
        let mut updates = Vec::new();
        let mut exceeded: Vec<(String, String, Quantity, Quantity, Quantity)> = Vec::new();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        for q in quotas {
            let Some(hard) = q.pointer("/spec/hard").and_then(Value::as_object) else {
                continue;
            };
            let qname = q
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            // scoped quotas hold only the pods in their scopes
            let in_scope = |o: &Value| {
                if is_pod {
                    ::admission::quota::pod_in_quota_scopes(&q, o)
                } else {
                    !::admission::quota::has_scopes(&q)
                }
            };
            if !in_scope(obj) {
                continue;
            }
            if is_pod {
                let tracked: Vec<&str> = hard.keys().map(String::as_str).collect();
                if let Some(why) = ::admission::quota::missing_compute(obj, &tracked) {
                    return Err(ApiError::forbidden(
                        &res.group,
                        &res.plural,
                        name,
                        &format!("failed quota: {qname}: {why}"),
                    ));
                }
            }
            let relevant: Vec<&(String, Quantity)> = wanted
                .iter()
                .filter(|(n, _)| hard.contains_key(n))
                .collect();
            if relevant.is_empty() {
                continue;
            }
            let live = live_objects.get_or_insert_with(|| {
                let (existing, _) = store.snapshot(&crate::rest::prefix(res, ns));
                existing
                    .into_iter()
                    .filter(|o| counts(o))
                    .map(|o| {
                        let usage = usage_of(res, &o);
                        (o, usage)
                    })
                    .collect()
            });
            // what the live objects in this quota's scopes already use
            let mut in_use: HashMap<String, Quantity> = HashMap::new();
            for (_, usage) in live.iter().filter(|(o, _)| in_scope(o)) {
                for (n, a) in usage {
                    if hard.contains_key(n) {
                        in_use
                            .entry(n.clone())
                            .or_insert_with(Quantity::zero)
                            .add(a);
                    }
                }
            }
            let mut used = q
                .pointer("/status/used")
                .cloned()
                .unwrap_or_else(|| json!({}));
            for (resource, amount) in relevant {
                let Some(limit) = hard.get(resource).and_then(parse_limit) else {
                    continue;
                };
                let current = in_use.get(resource).copied().unwrap_or_else(Quantity::zero);
                let mut after = current;
                after.add(amount);
                if after > limit {
                    exceeded.push((qname.clone(), resource.clone(), *amount, current, limit));
                }
                used[resource.as_str()] = json!(after.to_string());
            }
            let mut status = q.get("status").cloned().unwrap_or_else(|| json!({}));
            status["hard"] = Value::Object(hard.clone());
            status["used"] = used;
            updates.push((format!("{quota_prefix}{qname}"), status));
        }
        if let Some((qname, ..)) = exceeded.first() {
            let qname = qname.clone();
            exceeded.retain(|e| e.0 == qname);
            exceeded.sort_by(|a, b| a.1.cmp(&b.1));
            let of = |f: fn(&(String, String, Quantity, Quantity, Quantity)) -> String| {
                exceeded.iter().map(f).collect::<Vec<_>>().join(",")
            };
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
        let one = Quantity::count(1);
        assert!(u.contains(&("services".into(), one)));
        assert!(u.contains(&("count/services".into(), one)));
        assert!(u.contains(&("services.nodeports".into(), Quantity::count(2))));
        let deploy = r.get("apps", "v1", "deployments").expect("deployments");
        assert_eq!(
            usage_of(&deploy, &json!({})),
            vec![("count/deployments.apps".to_string(), Quantity::count(1))]
        );
        assert!(!counts(&json!({"status": {"phase": "Succeeded"}})));
    }
}
