//! Subresources that speak another kind: `scale` (autoscaling/v1 Scale over a workload's
//! replicas), `pods/binding` (and the `bindings` resource) and `pods/eviction` (honouring
//! PodDisruptionBudgets).

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use machinery::ApiError;
use machinery::labels::Selector;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use super::resource::{decode, read_body};
use super::{Query, respond};
use crate::negotiation::{Accept, BodyType};
use crate::request_info::RequestInfo;
use crate::rest::WriteOptions;
use crate::server::AppState;

/// The selector string a Scale reports (`status.selector`).
fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    if sel.get("matchLabels").is_none() && sel.get("matchExpressions").is_none() {
        // ReplicationControllers: a plain map
        if let Some(m) = sel.as_object() {
            let mut parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            parts.sort();
            return parts.join(",");
        }
    }
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort();
    parts.join(",")
}

/// A scale path of a CRD (`.spec.replicas`) as a JSON pointer (`/spec/replicas`).
fn pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |mut p, seg| {
            p.push('/');
            p.push_str(seg);
            p
        })
}

fn scale_of(obj: &Value, custom: Option<&crate::crd::Scale>) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let pick = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    let mut m = json!({"name": pick("name"), "namespace": pick("namespace"), "uid": pick("uid"), "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp")});
    if let Some(o) = m.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let (spec_path, status_path, selector) = match custom {
        Some(c) => (
            pointer(&c.spec_replicas),
            pointer(&c.status_replicas),
            c.label_selector
                .as_deref()
                .and_then(|p| obj.pointer(&pointer(p)))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        None => (
            "/spec/replicas".to_string(),
            "/status/replicas".to_string(),
            selector_string(obj.pointer("/spec/selector")),
        ),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": obj.pointer(&spec_path).cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer(&status_path).cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

pub async fn handle(
    state: &Arc<AppState>,
    res: &Arc<ResourceInfo>,
    info: &RequestInfo,
    query: &Query,
    accept: Accept,
    req: Request,
) -> Result<Response, ApiError> {
    let rest = &state.rest;
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    let current = rest.get(res, ns, name)?;
    let custom = rest.crds.get(res).and_then(|c| c.scale.clone());
    let scale = scale_of(&current, custom.as_ref());
    let accept = Accept {
        shape: crate::negotiation::Shape::Object,
        ..accept
    };
    let new_scale = match info.verb.as_str() {
        "get" => return Ok(respond(StatusCode::OK, &scale, accept)),
        "update" => {
            let (ty, body, _) = read_body(req).await?;
            let scale_res = ResourceInfo {
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                ..(**res).clone()
            };
            decode(&body, ty, &scale_res)?.1
        }
        "patch" => {
            let (ty, body, _) = read_body(req).await?;
            let ty = ty?;
            match ty {
                BodyType::JsonPatch => patch::json_patch(&scale, &body)?,
                // a Scale has no lists, so a strategic merge is a plain merge
                BodyType::MergePatch | BodyType::StrategicMergePatch => {
                    patch::merge_patch(&scale, &body)?
                }
                BodyType::ApplyYaml => {
                    let p =
                        crate::negotiation::yaml_to_json(&body).map_err(ApiError::bad_request)?;
                    patch::merge_patch(&scale, p.to_string().as_bytes())?
                }
                _ => return Err(ApiError::unsupported_media_type("this content type")),
            }
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let replicas = new_scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[machinery::FieldError::invalid(
                "spec.replicas",
                json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut updated = current.clone();
    let spec_path = custom.as_ref().map_or_else(
        || "/spec/replicas".to_string(),
        |c| pointer(&c.spec_replicas),
    );
    match updated.pointer_mut(&spec_path) {
        Some(v) => *v = json!(replicas),
        None => set_path(&mut updated, &spec_path, json!(replicas)),
    }
    if let Some(rv) = new_scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        updated["metadata"]["resourceVersion"] = json!(rv);
    }
    let opts = WriteOptions {
        dry_run: query.dry_run_all,
        field_manager: query.get("fieldManager").unwrap_or("").to_string(),
        ..Default::default()
    };
    let written = rest.update(res, ns, name, "", updated, &opts).await?;
    Ok(respond(
        StatusCode::OK,
        &scale_of(&written.object, custom.as_ref()),
        accept,
    ))
}

/// Sets `value` at a JSON pointer, making the objects on the way.
fn set_path(obj: &mut Value, ptr: &str, value: Value) {
    let mut cur = obj;
    let segs: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == segs.len() {
            cur[*seg] = value;
            return;
        }
        cur = &mut cur[*seg];
    }
}

/// `pods/binding` and the `bindings` resource: assigns a pod to a node.
pub async fn bind(
    state: &Arc<AppState>,
    res: &Arc<ResourceInfo>,
    info: &RequestInfo,
    query: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    let (ty, body, _) = read_body(req).await?;
    let binding_res = ResourceInfo {
        kind: "Binding".into(),
        ..(**res).clone()
    };
    let (_, binding) = decode(&body, ty, &binding_res)?;
    let pod_name = if info.subresource == "binding" {
        info.name.clone()
    } else {
        binding
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &pod_name,
            &[machinery::FieldError::required("target.name", "")],
        ));
    }
    let rest = &state.rest;
    let pods = rest
        .registry
        .get("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods are not served"))?;
    let ns = info.namespace.as_str();
    let conflict = |why: String| ApiError::conflict("", "pods/binding", &pod_name, &why);
    // as upstream's assignPod: one compare-and-swap of the stored pod, outside the pod
    // update strategy (which keeps spec.nodeName immutable), retried on conflict
    let key = crate::rest::key(&pods, ns, &pod_name);
    let mut bound = false;
    for _ in 0..5 {
        let current = rest
            .store
            .get_fresh(&key, 0)
            .await
            .map_err(|e| crate::rest::storage_error(&pods, &pod_name, e))?
            .ok_or_else(|| ApiError::not_found("", "pods", &pod_name))?;
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(conflict(format!(
                "pod {pod_name} is being deleted, cannot be assigned to a host"
            )));
        }
        if let Some(n) = current
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(conflict(format!(
                "pod {pod_name} is already assigned to node {n:?}"
            )));
        }
        let mut pod = (*current).clone();
        pod["spec"]["nodeName"] = json!(node);
        let mut conds: Vec<Value> = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        conds.retain(|c| c.get("type") != Some(&json!("PodScheduled")));
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": crate::rest::now()}));
        pod["status"]["conditions"] = json!(conds);
        if query.dry_run_all {
            bound = true;
            break;
        }
        match rest
            .store
            .update(&key, crate::rest::rv_of(&current), pod)
            .await
        {
            Ok(_) => {
                bound = true;
                break;
            }
            Err(crate::storage::StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(crate::rest::storage_error(&pods, &pod_name, e)),
        }
    }
    if !bound {
        return Err(ApiError::stale_update("", "pods", &pod_name));
    }
    Ok(respond(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        Accept::JSON,
    ))
}

/// `pods/eviction`: deletes the pod unless a PodDisruptionBudget forbids it.
pub async fn evict(
    state: &Arc<AppState>,
    res: &Arc<ResourceInfo>,
    info: &RequestInfo,
    user: &crate::authn::User,
    req: Request,
) -> Result<Response, ApiError> {
    let (ty, body, _) = read_body(req).await?;
    let ev_res = ResourceInfo {
        group: "policy".into(),
        kind: "Eviction".into(),
        ..(**res).clone()
    };
    let (_, eviction) = decode(&body, ty, &ev_res)?;
    let rest = &state.rest;
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    if rest.plugins.on("NodeRestriction") {
        let pod = rest.get(res, ns, name)?;
        crate::admission::noderestriction::validate_eviction(Some(user), res, name, &pod)?;
    }
    // the budget's status is taken with a compare-and-swap; a conflict means another
    // eviction (or the disruption controller) got there first: look again
    let mut attempt = 0;
    while !take_disruption(state, res, ns, name).await? {
        attempt += 1;
        if attempt >= 10 {
            return Err(ApiError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget: too many concurrent evictions, try again.",
            ));
        }
    }
    let mut opts = crate::rest::DeleteOptions::default();
    if let Some(d) = eviction.get("deleteOptions") {
        opts.merge_body(d)?;
    }
    rest.delete(res, ns, name, &opts).await?;
    Ok(respond(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        Accept::JSON,
    ))
}

fn too_many(message: String) -> ApiError {
    let mut e = ApiError::new(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    e.details = Some(Box::new(machinery::status::Details {
        causes: vec![machinery::status::Cause {
            reason: "DisruptionBudget".into(),
            message,
            field: String::new(),
        }],
        ..Default::default()
    }));
    e
}

/// Checks the pod's PodDisruptionBudget and, when it allows a disruption, takes one as
/// upstream's eviction does: `disruptionsAllowed` goes down by one and the pod is
/// recorded in `disruptedPods`, in one compare-and-swap of the budget's status. `Ok(false)`
/// when that write lost a race and the check must be made again.
async fn take_disruption(
    state: &Arc<AppState>,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<bool, ApiError> {
    let rest = &state.rest;
    let pod = rest.get(res, ns, name)?;
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    // pods that are not running, or already going, need no budget
    if matches!(phase, Some("Succeeded" | "Failed" | "Pending"))
        || pod.pointer("/metadata/deletionTimestamp").is_some()
    {
        return Ok(true);
    }
    let Some(pdbs) = rest.registry.get("policy", "v1", "poddisruptionbudgets") else {
        return Ok(true);
    };
    let (list, _) = rest.list(&pdbs, ns, &Default::default())?;
    let matching: Vec<_> = list
        .items
        .iter()
        .filter(|pdb| {
            Selector::from_label_selector(pdb.pointer("/spec/selector").unwrap_or(&json!({})))
                .is_ok_and(|sel| !sel.is_empty() && sel.matches_object(&pod))
        })
        .collect();
    let pdb = match matching.as_slice() {
        [] => return Ok(true),
        [one] => (*one).clone(),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let get = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let pdb_name = pdb
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if get("/status/observedGeneration") < get("/metadata/generation") {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        )));
    }
    let allowed = get("/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::forbidden(
            "",
            "pods",
            name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted >= 2000 {
        return Err(ApiError::forbidden(
            "",
            "pods",
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    if !ready {
        // an unhealthy pod may go when the budget is met anyway (IfHealthyBudget) or always
        let policy = pdb
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("IfHealthyBudget");
        let healthy_enough = get("/status/currentHealthy") >= get("/status/desiredHealthy")
            && get("/status/desiredHealthy") > 0;
        if policy == "AlwaysAllow" || healthy_enough {
            return Ok(true);
        }
    }
    if allowed == 0 {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
            get("/status/desiredHealthy"),
            get("/status/currentHealthy")
        )));
    }
    let mut updated = (*pdb).clone();
    updated["status"]["disruptionsAllowed"] = json!(allowed - 1);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if !updated["status"]
        .get("disruptedPods")
        .is_some_and(Value::is_object)
    {
        updated["status"]["disruptedPods"] = json!({});
    }
    updated["status"]["disruptedPods"][name] = json!(now);
    if allowed - 1 == 0 {
        set_insufficient(&mut updated, &now);
    }
    let opts = WriteOptions {
        field_manager: "kube-apiserver".into(),
        ..Default::default()
    };
    match rest
        .update(&pdbs, ns, &pdb_name, "status", updated, &opts)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// The budget's DisruptionAllowed condition once the last allowed disruption is taken.
fn set_insufficient(pdb: &mut Value, now: &str) {
    let generation = pdb
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(0));
    let cond = json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
        "message": "", "observedGeneration": generation, "lastTransitionTime": now});
    let conds = pdb["status"]
        .get_mut("conditions")
        .and_then(Value::as_array_mut);
    match conds {
        Some(cs) => match cs.iter_mut().find(|c| c["type"] == "DisruptionAllowed") {
            Some(c) if c["status"] == "False" => {}
            Some(c) => *c = cond,
            None => cs.push(cond),
        },
        None => pdb["status"]["conditions"] = json!([cond]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_selector_strings() {
        assert_eq!(
            selector_string(Some(&json!({"matchLabels": {"b": "2", "a": "1"}}))),
            "a=1,b=2"
        );
        assert_eq!(selector_string(Some(&json!({"app": "web"}))), "app=web");
        assert_eq!(
            selector_string(Some(
                &json!({"matchExpressions": [{"key": "t", "operator": "In", "values": ["x", "y"]}]})
            )),
            "t in (x,y)"
        );
    }
}
