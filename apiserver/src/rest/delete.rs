//! Delete and deletecollection: preconditions, graceful deletion, finalizers and the
//! propagation policy recorded for the garbage collector.

use chrono::{Duration, SecondsFormat, Utc};
use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use super::write::rv_of;
use super::{ListOptions, Rest, key, storage_error};
use crate::conversion;
use crate::strategy;

/// `metav1.DeleteOptions`, merged from the body and the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
    /// Who asks (for admission webhooks); `None` for the server's own deletes.
    pub user: Option<crate::authn::User>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (JSON), keeping what the query already set.
    pub fn merge_body(&mut self, body: &Value) -> Result<(), ApiError> {
        if let Some(g) = body.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            self.grace_period_seconds =
                Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation_policy = Some(p.to_string());
        }
        if let Some(o) = body.get("orphanDependents").and_then(Value::as_bool) {
            self.orphan_dependents = Some(o);
        }
        if let Some(uid) = body.pointer("/preconditions/uid").and_then(Value::as_str) {
            self.precondition_uid = Some(uid.to_string());
        }
        if let Some(rv) = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            self.precondition_resource_version = Some(rv.to_string());
        }
        if body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"))
        {
            self.dry_run = true;
        }
        self.validate()
    }

    fn validate(&self) -> Result<(), ApiError> {
        if let Some(p) = &self.propagation_policy {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "DeleteOptions",
                    "",
                    &[machinery::FieldError::not_supported(
                        "propagationPolicy",
                        Value::String(p.clone()),
                        &["Foreground", "Background", "Orphan", "nil"],
                    )],
                ));
            }
            if self.orphan_dependents.is_some() {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "DeleteOptions",
                    "",
                    &[machinery::FieldError::invalid(
                        "propagationPolicy",
                        Value::String(p.clone()),
                        "orphanDependents and deletionPropagation cannot be both set",
                    )],
                ));
            }
        }
        if self.grace_period_seconds.is_some_and(|g| g < 0) {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                &[machinery::FieldError::invalid(
                    "gracePeriodSeconds",
                    json!(self.grace_period_seconds),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        Ok(())
    }

    /// The finalizer the GC handles for this policy, if any.
    fn gc_finalizer(&self) -> Option<&'static str> {
        match (self.propagation_policy.as_deref(), self.orphan_dependents) {
            (Some("Orphan"), _) | (None, Some(true)) => Some("orphan"),
            (Some("Foreground"), _) => Some("foregroundDeletion"),
            _ => None,
        }
    }
}

/// What a delete did.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// The object is gone; this was its last state.
    Deleted(Value),
    /// The object is marked for deletion (graceful period or finalizers pending).
    Pending(Value),
}

impl Rest {
    /// Deletes one object.
    pub async fn delete(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let k = key(res, ns, name);
        let storage_res = self.storage_info(res);
        for _ in 0..5 {
            let current = self
                .store
                .get_fresh(&k, 0)
                .await
                .map_err(|e| storage_error(res, name, e))?
                .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
            let uid = current
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Some(want) = &opts.precondition_uid
                && want != uid
            {
                return Err(ApiError::conflict(
                    &res.group,
                    &res.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                    ),
                ));
            }
            let rev = rv_of(&current);
            if let Some(want) = &opts.precondition_resource_version
                && *want != rev.to_string()
            {
                return Err(ApiError::conflict(
                    &res.group,
                    &res.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"
                    ),
                ));
            }
            let attrs = crate::webhooks::Attributes {
                res,
                sub: "",
                operation: webhook::Operation::Delete,
                namespace: ns,
                name,
                user: opts.user.as_ref(),
                dry_run: opts.dry_run,
            };
            self.admit_delete(&attrs, &current).await?;
            let mut marked = (*current).clone();
            let mut pending = false;
            let finalizers = marked
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
                .map(|a| a.len())
                .unwrap_or(0);
            if let Some(f) = opts.gc_finalizer() {
                add_finalizer(&mut marked, f);
                remove_finalizer(
                    &mut marked,
                    if f == "orphan" {
                        "foregroundDeletion"
                    } else {
                        "orphan"
                    },
                );
                pending = true;
            } else if finalizers > 0 {
                pending = true;
            }
            let grace = strategy::grace_period(&storage_res, &current, opts.grace_period_seconds);
            if grace.is_some_and(|g| g > 0) {
                pending = true;
            }
            pending |= strategy::delete_is_pending(&storage_res, &mut marked);
            if pending {
                let already = current.pointer("/metadata/deletionTimestamp").is_some();
                let meta = marked.get_mut("metadata").and_then(Value::as_object_mut);
                if let Some(meta) = meta {
                    let g = grace.unwrap_or(0);
                    let old_g = meta
                        .get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64);
                    // a shorter grace period may replace a longer one, never the reverse
                    if !already || old_g.is_some_and(|o| g < o) {
                        let at = Utc::now() + Duration::seconds(g);
                        meta.insert(
                            "deletionTimestamp".into(),
                            Value::String(at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                        );
                        meta.insert("deletionGracePeriodSeconds".into(), json!(g));
                    }
                }
                if already && marked == *current {
                    return Ok(DeleteOutcome::Pending(conversion::to_version(
                        &current, res,
                    )));
                }
                if opts.dry_run {
                    return Ok(DeleteOutcome::Pending(conversion::to_version(&marked, res)));
                }
                match self.store.update(&k, rev, marked).await {
                    Ok(v) => return Ok(DeleteOutcome::Pending(conversion::to_version(&v, res))),
                    Err(crate::storage::StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(storage_error(res, name, e)),
                }
            }
            if opts.dry_run {
                return Ok(DeleteOutcome::Deleted(conversion::to_version(
                    &current, res,
                )));
            }
            match self.store.delete(&k, Some(rev)).await {
                Ok(gone) => {
                    self.allocators.release_for(&storage_res, &gone);
                    self.unclaim_service(&storage_res, &gone).await;
                    return Ok(DeleteOutcome::Deleted(conversion::to_version(&gone, res)));
                }
                Err(crate::storage::StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(storage_error(res, name, e)),
            }
        }
        Err(ApiError::stale_update(&res.group, &res.plural, name))
    }

    /// Deletes every object matching the list options; returns the deleted (or marked) objects.
    pub async fn delete_collection(
        &self,
        res: &ResourceInfo,
        ns: &str,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let (found, _) = self.list(
            res,
            ns,
            &ListOptions {
                limit: None,
                continue_token: None,
                ..list.clone()
            },
        )?;
        let mut out = Vec::new();
        for obj in found.items {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let obj_ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(ns);
            match self.delete(res, obj_ns, name, opts).await {
                Ok(DeleteOutcome::Deleted(v) | DeleteOutcome::Pending(v)) => out.push(v),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok((out, self.store.current_revision()))
    }
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let meta = match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => return,
    };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(a) = list.as_array_mut()
        && !a.iter().any(|v| v == f)
    {
        a.push(Value::String(f.to_string()));
    }
}

fn remove_finalizer(obj: &mut Value, f: &str) {
    if let Some(a) = obj
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        a.retain(|v| v != f);
    }
}
