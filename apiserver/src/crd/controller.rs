//! The CRD controller inside the API server (upstream's naming, establishing and finalizer
//! controllers in one loop): it watches CustomResourceDefinitions and
//! - accepts names that clash with nothing else in the group (`NamesAccepted`), then marks
//!   the CRD `Established` and serves its versions (registry, [`super::CustomResources`]);
//! - records the storage version in `status.storedVersions`;
//! - once a CRD is deleted, deletes all of its objects, then lets the CRD go (the
//!   `customresourcecleanup.apiextensions.k8s.io` finalizer).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use machinery::resource::ResourceInfo;
use serde_json::{Map, Value, json};

use super::{CLEANUP_FINALIZER, Scale, Served, resource_info, version_definitions};
use crate::rest::{DeleteOptions, Rest, key, now, prefix};

const GROUP: &str = "apiextensions.k8s.io";
const RESOURCE: &str = "customresourcedefinitions";

/// How often CRDs being deleted are looked at again (their objects may wait on finalizers).
const RESYNC: Duration = Duration::from_secs(2);

/// Serves the stored CRDs, then keeps doing so in the background for as long as the
/// server runs.
pub async fn start(rest: Rest) {
    let Some(crd_res) = rest.registry.get(GROUP, "v1", RESOURCE) else {
        return;
    };
    let (items, rev) = rest.store.snapshot(&prefix(&crd_res, ""));
    let pending = sync(&rest, &crd_res, &items).await;
    tokio::spawn(run(rest, crd_res, rev, pending));
}

async fn run(rest: Rest, crd_res: Arc<ResourceInfo>, mut rev: u64, mut pending: bool) {
    let pfx = prefix(&crd_res, "");
    loop {
        if rev == 0 {
            let (items, now) = rest.store.snapshot(&pfx);
            pending = sync(&rest, &crd_res, &items).await;
            rev = now;
        }
        let Ok(mut watch) = rest.store.watch(&pfx, rev) else {
            tokio::time::sleep(RESYNC).await;
            rev = 0;
            continue;
        };
        loop {
            let wait = if pending {
                RESYNC
            } else {
                Duration::from_secs(60)
            };
            match tokio::time::timeout(wait, watch.next()).await {
                Ok(Err(_)) => break,
                Ok(Ok(_)) | Err(_) => {
                    let (items, _) = rest.store.snapshot(&pfx);
                    pending = sync(&rest, &crd_res, &items).await;
                }
            }
        }
        tracing::debug!("the CRD watch ended; listing again");
        rev = 0;
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The strings of the array at `ptr` (non-strings and a missing array give nothing).
pub(crate) fn strings(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The names a CRD asks for, as (resource names, kind names).
fn requested_names(crd: &Value) -> (Vec<String>, Vec<String>) {
    let mut resources = vec![
        s(crd, "/spec/names/plural").to_string(),
        s(crd, "/spec/names/singular").to_string(),
    ];
    resources.extend(strings(crd, "/spec/names/shortNames"));
    resources.retain(|r| !r.is_empty());
    let mut kinds = vec![
        s(crd, "/spec/names/kind").to_string(),
        s(crd, "/spec/names/listKind").to_string(),
    ];
    kinds.retain(|k| !k.is_empty());
    (resources, kinds)
}

/// Names taken in one group: by built-in resources and by CRDs accepted before.
#[derive(Default)]
struct Taken {
    resources: HashSet<String>,
    kinds: HashSet<String>,
}

fn set_condition(conditions: &mut Vec<Value>, ty: &str, status: &str, reason: &str, message: &str) {
    let now = now();
    match conditions.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conditions.push(json!({
            "type": ty, "status": status, "lastTransitionTime": now,
            "reason": reason, "message": message,
        })),
    }
}

/// Brings registry, served state and CRD status in line with `items`. Returns whether a
/// deletion is still in progress (so the caller looks again soon).
async fn sync(rest: &Rest, crd_res: &ResourceInfo, items: &[Arc<Value>]) -> bool {
    let mut crds: Vec<&Arc<Value>> = items.iter().collect();
    crds.sort_by(|a, b| {
        s(a, "/metadata/creationTimestamp")
            .cmp(s(b, "/metadata/creationTimestamp"))
            .then(s(a, "/metadata/name").cmp(s(b, "/metadata/name")))
    });
    let mut taken: HashMap<String, Taken> = HashMap::new();
    for r in rest.registry.all() {
        if crate::conversion::is_builtin_group(&r.group) {
            let t = taken.entry(r.group.clone()).or_default();
            t.resources.insert(r.plural.clone());
            t.resources.insert(r.singular.clone());
            t.resources.extend(r.short_names.iter().cloned());
            t.kinds.insert(r.kind.clone());
            t.kinds.insert(format!("{}List", r.kind));
        }
    }
    let mut served: HashMap<(String, String, String), Arc<Served>> = HashMap::new();
    let mut definitions = Map::new();
    let mut infos: Vec<ResourceInfo> = Vec::new();
    let mut pending = false;
    for crd in crds {
        let group = s(crd, "/spec/group").to_string();
        let (resources, kinds) = requested_names(crd);
        let t = taken.entry(group.clone()).or_default();
        let clash_resource = resources.iter().find(|r| t.resources.contains(*r)).cloned();
        let clash_kind = kinds.iter().find(|k| t.kinds.contains(*k)).cloned();
        let accepted = clash_resource.is_none() && clash_kind.is_none();
        if accepted {
            t.resources.extend(resources);
            t.kinds.extend(kinds);
        }
        let terminating = crd.pointer("/metadata/deletionTimestamp").is_some();
        let mut status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
        let mut conditions: Vec<Value> =
            status["conditions"].as_array().cloned().unwrap_or_default();
        match (&clash_resource, &clash_kind) {
            (Some(r), _) => set_condition(
                &mut conditions,
                "NamesAccepted",
                "False",
                "ResourceNameConflict",
                &format!("{r:?} is already in use"),
            ),
            (None, Some(k)) => set_condition(
                &mut conditions,
                "NamesAccepted",
                "False",
                "KindConflict",
                &format!("{k:?} is already in use"),
            ),
            (None, None) => {
                set_condition(
                    &mut conditions,
                    "NamesAccepted",
                    "True",
                    "NoConflicts",
                    "no conflicts found",
                );
                status["acceptedNames"] = crd
                    .pointer("/spec/names")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                if !conditions
                    .iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
                {
                    set_condition(
                        &mut conditions,
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                    );
                }
            }
        }
        if !accepted && !conditions.iter().any(|c| c["type"] == "Established") {
            set_condition(
                &mut conditions,
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
            );
        }
        let versions: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(storage) = versions.iter().find(|v| v["storage"] == json!(true)) {
            let mut stored = strings(crd, "/status/storedVersions");
            let name = s(storage, "/name").to_string();
            if !stored.contains(&name) {
                stored.push(name);
            }
            status["storedVersions"] = json!(stored);
        }
        let established = conditions
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if established {
            for v in versions.iter().filter(|v| v["served"] == json!(true)) {
                let info = resource_info(crd, v);
                let schema = v.pointer("/schema/openAPIV3Schema").map(|schema| {
                    apiextensions::Structural::new(schema).map_err(|errs| {
                        tracing::warn!(crd = %s(crd, "/metadata/name"), errors = ?errs, "the schema does not compile; objects are not validated");
                    })
                });
                let scale = v.pointer("/subresources/scale").map(|sc| Scale {
                    spec_replicas: s(sc, "/specReplicasPath").to_string(),
                    status_replicas: s(sc, "/statusReplicasPath").to_string(),
                    label_selector: sc
                        .get("labelSelectorPath")
                        .and_then(Value::as_str)
                        .map(String::from),
                });
                for (name, def) in version_definitions(&info, v) {
                    definitions.insert(name, def);
                }
                served.insert(
                    (
                        info.group.clone(),
                        info.version.clone(),
                        info.plural.clone(),
                    ),
                    Arc::new(Served {
                        schema: schema.and_then(Result::ok),
                        columns: apiextensions::columns_for_version(crd, &info.version),
                        scale,
                        terminating,
                        conversion: crd
                            .pointer("/spec/conversion")
                            .filter(|c| c["strategy"] == "Webhook")
                            .cloned(),
                    }),
                );
                infos.push(info);
            }
        }
        if terminating {
            pending |= !cleanup(rest, crd, &versions, &mut conditions).await;
        }
        status["conditions"] = json!(conditions);
        if crd.get("status") != Some(&status) {
            let mut updated = (**crd).clone();
            updated["status"] = status;
            write(rest, crd_res, crd, updated).await;
        }
    }
    crate::conversion::set_webhook_converted(
        served
            .iter()
            .filter(|(_, s)| s.conversion.is_some())
            .map(|((g, _, p), _)| (g.clone(), p.clone()))
            .collect(),
    );
    let previous = rest.crds.served_keys();
    rest.crds.replace(served, definitions);
    apply_registry(rest, &previous, infos);
    pending
}

/// Adds what is newly served and removes what the CRDs no longer serve (`previous` is
/// what they served before); the registry (and with it the OpenAPI documents) changes
/// only when something did.
fn apply_registry(
    rest: &Rest,
    previous: &HashSet<(String, String, String)>,
    infos: Vec<ResourceInfo>,
) {
    let wanted: HashSet<(String, String, String)> = infos
        .iter()
        .map(|i| (i.group.clone(), i.version.clone(), i.plural.clone()))
        .collect();
    for (g, v, p) in previous.difference(&wanted) {
        rest.registry.remove_version(g, v, p);
    }
    let mut groups = HashSet::new();
    for info in infos {
        let same = rest
            .registry
            .get(&info.group, &info.version, &info.plural)
            .is_some_and(|r| *r == info);
        if !same {
            groups.insert(info.group.clone());
            rest.registry.add(info);
        }
    }
    for g in groups {
        rest.registry.sort_versions(&g);
    }
}

/// Stores a CRD the controller changed; a conflict means a newer CRD is on its way.
async fn write(rest: &Rest, crd_res: &ResourceInfo, old: &Value, new: Value) {
    let name = s(old, "/metadata/name");
    let k = key(crd_res, "", name);
    let rv = crate::rest::rv_of(old);
    if let Err(e) = rest.store.update(&k, rv, new).await {
        tracing::debug!(crd = %name, error = %e, "updating the CRD failed; it is looked at again");
    }
}

/// Deletes every object of a deleted CRD; once none is left, the finalizer goes and with
/// it the CRD. Returns whether the CRD is done.
async fn cleanup(
    rest: &Rest,
    crd: &Value,
    versions: &[Value],
    conditions: &mut Vec<Value>,
) -> bool {
    let name = s(crd, "/metadata/name");
    let finalizers = strings(crd, "/metadata/finalizers");
    if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        return true;
    }
    let Some(version) = versions.iter().find(|v| v["storage"] == json!(true)) else {
        return true;
    };
    let info = resource_info(crd, version);
    let pfx = prefix(&info, "");
    let (objects, _) = rest.store.snapshot(&pfx);
    if !objects.is_empty() {
        set_condition(
            conditions,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        );
        let opts = DeleteOptions::default();
        for o in &objects {
            let ns = s(o, "/metadata/namespace");
            let n = s(o, "/metadata/name");
            if let Err(e) = rest.delete(&info, ns, n, &opts).await
                && e.code != 404
            {
                tracing::warn!(crd = %name, object = %n, error = %e.message, "deleting a custom resource failed");
            }
        }
        if rest.store.count(&pfx) > 0 {
            return false;
        }
    }
    set_condition(
        conditions,
        "Terminating",
        "True",
        "InstanceDeletionCompleted",
        "removed all instances",
    );
    // the finalizer goes; with it the last one, the CRD is deleted
    let Some(crd_res) = rest.registry.get(GROUP, "v1", RESOURCE) else {
        return true;
    };
    let k = key(&crd_res, "", name);
    let rest_finalizers: Vec<String> = finalizers
        .into_iter()
        .filter(|f| f != CLEANUP_FINALIZER)
        .collect();
    let rv = crate::rest::rv_of(crd);
    let result = if rest_finalizers.is_empty() {
        rest.store.delete(&k, Some(rv)).await.map(|_| ())
    } else {
        let mut updated = crd.clone();
        updated["metadata"]["finalizers"] = json!(rest_finalizers);
        updated["status"]["conditions"] = json!(conditions);
        rest.store.update(&k, rv, updated).await.map(|_| ())
    };
    if let Err(e) = result {
        tracing::debug!(crd = %name, error = %e, "letting the CRD go failed; it is looked at again");
        return false;
    }
    true
}
