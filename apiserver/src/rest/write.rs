//! Create, update and patch: the write path every resource shares. Decoded request
//! objects come in; defaulted, validated objects with system fields set go to storage.

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use machinery::resource::ResourceInfo;
use machinery::{ApiError, FieldError};
use serde_json::{Map, Value, json};

use super::{Rest, key, storage_error};
use crate::conversion;
use crate::negotiation::BodyType;
use crate::strategy;
use crate::webhooks::Attributes;
use webhook::Operation;

/// `fieldValidation`: what to do with unknown or duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options shared by create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// `force` of server-side apply.
    pub force: bool,
    /// Keys the request body repeated in one object (see `fieldvalidation::duplicate_fields`).
    pub duplicate_fields: Vec<String>,
    /// Who asks; `None` for the server's own writes (bootstrap objects).
    pub user: Option<crate::authn::User>,
}

/// The result of a write: the object as stored (or as it would be, for dry runs).
#[derive(Debug)]
pub struct Written {
    pub object: Arc<Value>,
    pub created: bool,
    pub warnings: Vec<String>,
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Checks `apiVersion`/`kind` against the endpoint, filling them in when absent.
fn check_type_meta(res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let want_av = res.api_version();
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !av.is_empty() && av != want_av {
        // another served version of the same resource is accepted and converted
        let (g, v) = av.rsplit_once('/').unwrap_or(("", &av));
        let same_group = g == res.group && kind == res.kind;
        if !same_group || v.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    if !kind.is_empty() && kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            res.kind
        )));
    }
    if av.is_empty() {
        obj["apiVersion"] = Value::String(want_av);
    }
    if kind.is_empty() {
        obj["kind"] = Value::String(res.kind.clone());
    }
    Ok(())
}

/// Reconciles `metadata.namespace` with the request path.
fn check_namespace(res: &ResourceInfo, ns: &str, obj: &mut Value) -> Result<(), ApiError> {
    let meta = meta_mut(obj);
    let in_obj = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if res.namespaced {
        if !in_obj.is_empty() && in_obj != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta.insert("namespace".into(), Value::String(ns.to_string()));
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Upstream's generateName suffix: 5 characters from a vowel-free alphabet.
pub fn generate_name(base: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let base = if base.len() > 58 { &base[..58] } else { base };
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// Applies `fieldValidation` to a request object: unknown fields fail the request
/// (Strict), become warnings (Warn) or are dropped silently (Ignore).
fn check_unknown_fields(
    rest: &Rest,
    res: &ResourceInfo,
    obj: &mut Value,
    opts: &WriteOptions,
) -> Result<Vec<String>, ApiError> {
    let unknown = if crate::conversion::is_builtin_group(&res.group) {
        crate::fieldvalidation::unknown_fields(&res.definition, obj)
    } else {
        // custom resources: the schema prunes what it does not declare, then defaults
        let pruned = rest.crds.prune(res, obj);
        rest.crds.default(res, obj);
        pruned
    };
    let texts: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .chain(
            opts.duplicate_fields
                .iter()
                .map(|f| format!("duplicate field {f:?}")),
        )
        .collect();
    if texts.is_empty() {
        return Ok(texts);
    }
    match opts.field_validation {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: strict decoding error: {}",
            texts.join(", "),
            kind = res.kind,
            v = res.version,
        ))),
        FieldValidation::Warn => {
            crate::fieldvalidation::drop_fields(obj, &unknown);
            Ok(texts)
        }
        FieldValidation::Ignore => {
            crate::fieldvalidation::drop_fields(obj, &unknown);
            Ok(Vec::new())
        }
    }
}

/// Drops empty metadata maps and lists, as Go's `omitempty` does when it writes the object.
fn prune_empty_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
            "managedFields",
        ] {
            let empty = match meta.get(f) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(f);
            }
        }
    }
}

/// Fields only the server sets on create.
fn set_create_system_fields(res: &ResourceInfo, obj: &mut Value) {
    prune_empty_metadata(obj);
    let meta = meta_mut(obj);
    meta.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if strategy::tracks_generation(res) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
}

/// Carries over what clients may not change on update, and bumps `generation` when the
/// spec changed.
fn carry_update_system_fields(res: &ResourceInfo, old: &Value, new: &mut Value) {
    prune_empty_metadata(new);
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = meta_mut(new);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old_meta.get(f) {
            Some(v) => meta.insert(f.into(), v.clone()),
            None => meta.remove(f),
        };
    }
    meta.remove("selfLink");
    if strategy::tracks_generation(res) {
        let old_gen = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let changed = strategy::spec_changed(res, old, new);
        let meta = meta_mut(new);
        meta.insert(
            "generation".into(),
            json!(if changed { old_gen + 1 } else { old_gen }),
        );
    } else {
        meta.remove("generation");
    }
}

fn invalid(res: &ResourceInfo, obj: &Value, errors: &[FieldError]) -> ApiError {
    ApiError::invalid(&res.group, &res.kind, meta_str(obj, "name"), errors)
}

/// NamespaceLifecycle admission for writes into a namespace.
fn admit_namespace(
    rest: &Rest,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    creating: bool,
) -> Result<(), ApiError> {
    if !res.namespaced || !rest.plugins.on("NamespaceLifecycle") {
        return Ok(());
    }
    let Some(nsobj) = rest.namespace(ns) else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    let terminating = nsobj.pointer("/metadata/deletionTimestamp").is_some()
        || nsobj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if creating && terminating {
        return Err(ApiError::forbidden(
            &res.group,
            &res.plural,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        ));
    }
    Ok(())
}

impl Rest {
    /// Creates an object (POST).
    pub async fn create(
        &self,
        res: &ResourceInfo,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type_meta(res, &mut obj)?;
        self.crds.check_create(res)?;
        let field_warnings = check_unknown_fields(self, res, &mut obj, opts)?;
        check_namespace(res, ns, &mut obj)?;
        let name = meta_str(&obj, "name").to_string();
        let generate = meta_str(&obj, "generateName").to_string();
        if name.is_empty() {
            if generate.is_empty() {
                return Err(invalid(
                    res,
                    &obj,
                    &[FieldError::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
            meta_mut(&mut obj).insert("name".into(), Value::String(generate_name(&generate)));
        }
        let mut obj = self.to_storage_version(res, obj).await?;
        let storage_res = self.storage_info(res);
        set_create_system_fields(res, &mut obj);
        strategy::prepare_for_create(&storage_res, &mut obj);
        if storage_res.group == "certificates.k8s.io"
            && storage_res.plural == "certificatesigningrequests"
        {
            strategy::certificates::set_requester(&mut obj, opts.user.as_ref());
        }
        validation::default(
            &storage_res.group,
            &storage_res.version,
            &storage_res.plural,
            &mut obj,
        );
        let mut warnings = field_warnings;
        admit_namespace(self, res, ns, meta_str(&obj, "name"), true)?;
        crate::admission::admit_create(self, &storage_res, ns, &mut obj).await?;
        let name = meta_str(&obj, "name").to_string();
        let attrs = Attributes {
            res,
            sub: "",
            operation: Operation::Create,
            namespace: ns,
            name: &name,
            user: opts.user.as_ref(),
            dry_run: opts.dry_run,
        };
        warnings.extend(
            self.mutate_stored(&attrs, &storage_res, &mut obj, None)
                .await?,
        );
        crate::fieldmanager::record_update(None, &mut obj, &opts.field_manager, res, "");
        let mut errors = validation::validate_create(
            &storage_res.group,
            &storage_res.version,
            &storage_res.plural,
            &obj,
        );
        errors.extend(self.crds.validate(&storage_res, &obj, None));
        if !errors.is_empty() {
            return Err(invalid(res, &obj, &errors));
        }
        if res.group == "rbac.authorization.k8s.io" {
            self.authorizer
                .check_rbac_write(opts.user.as_ref(), &res.plural, ns, &obj, None)?;
        }
        warnings.extend(crate::admission::validate(
            self,
            &attrs,
            &storage_res,
            &obj,
            None,
        )?);
        warnings.extend(self.validate_stored(&attrs, &obj, None).await?);
        let name = meta_str(&obj, "name").to_string();
        let k = key(res, ns, &name);
        if self.store.get(&k).is_some() {
            return Err(ApiError::already_exists(&res.group, &res.plural, &name));
        }
        let admitted = if self.plugins.on("ResourceQuota") {
            self.quotas
                .admit(&self.store, &storage_res, ns, &obj)
                .await?
        } else {
            crate::quota::Admitted::none()
        };
        let release = self
            .admit_service_create(&storage_res, &mut obj, opts.dry_run)
            .await?;
        if opts.dry_run {
            return Ok(Written {
                object: Arc::new(self.shown(res, &obj).await?),
                created: true,
                warnings,
            });
        }
        let claimed = (self.store.is_shared()
            && crate::strategy::services::is_services(&storage_res))
        .then(|| obj.clone());
        match self.store.create(&k, obj).await {
            Ok(stored) => {
                admitted.record(&self.store).await;
                Ok(Written {
                    object: self.shown_stored(res, &stored).await?,
                    created: true,
                    warnings,
                })
            }
            Err(e) => {
                release.run(&self.allocators);
                if let Some(svc) = claimed {
                    self.unclaim_service(&storage_res, &svc).await;
                }
                Err(storage_error(res, &name, e))
            }
        }
    }

    /// The registry entry objects of this resource are stored as.
    pub fn storage_info(&self, res: &ResourceInfo) -> Arc<ResourceInfo> {
        if res.version == res.storage_version {
            return Arc::new(res.clone());
        }
        self.registry
            .get(&res.group, &res.storage_version, &res.plural)
            .unwrap_or_else(|| Arc::new(res.clone()))
    }

    /// Replaces an object (PUT), or one of its subresources (`status`, `finalize`).
    pub async fn update(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        sub: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type_meta(res, &mut obj)?;
        check_namespace(res, ns, &mut obj)?;
        let body_name = meta_str(&obj, "name").to_string();
        if body_name.is_empty() {
            meta_mut(&mut obj).insert("name".into(), Value::String(name.to_string()));
        } else if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let k = key(res, ns, name);
        let min_rev = meta_str(&obj, "resourceVersion")
            .parse::<u64>()
            .unwrap_or(0);
        let current = self
            .store
            .get_fresh(&k, min_rev)
            .await
            .map_err(|e| storage_error(res, name, e))?;
        let Some(current) = current else {
            if sub.is_empty() && strategy::allow_create_on_update(res) {
                return self.create(res, ns, obj, opts).await;
            }
            return Err(ApiError::not_found(&res.group, &res.plural, name));
        };
        let current_rv = rv_of(&current);
        let requested_rv = meta_str(&obj, "resourceVersion").to_string();
        let expected = if requested_rv.is_empty() {
            if !strategy::allow_unconditional_update(res) {
                // upstream names the resource where the kind usually goes here
                return Err(ApiError::invalid(
                    &res.group,
                    &res.plural,
                    name,
                    &[FieldError::invalid(
                        "metadata.resourceVersion",
                        json!(0),
                        "must be specified for an update",
                    )],
                ));
            }
            current_rv
        } else {
            match requested_rv.parse::<u64>() {
                Ok(rv) if rv == current_rv => rv,
                Ok(_) => return Err(ApiError::stale_update(&res.group, &res.plural, name)),
                Err(_) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid resource version: {requested_rv}"
                    )));
                }
            }
        };
        self.replace(res, ns, name, sub, &current, expected, obj, opts)
            .await
    }

    /// The shared tail of update and patch: `obj` replaces `current` (at revision `expected`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn replace(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        sub: &str,
        current: &Value,
        expected: u64,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let storage_res = self.storage_info(res);
        let mut obj = obj;
        let warnings = check_unknown_fields(self, res, &mut obj, opts)?;
        let obj = self.to_storage_version(res, obj).await?;
        let mut new = strategy::merge_subresource(&storage_res, sub, current, obj)?;
        carry_update_system_fields(&storage_res, current, &mut new);
        strategy::prepare_for_update(&storage_res, sub, current, &mut new);
        validation::default(
            &storage_res.group,
            &storage_res.version,
            &storage_res.plural,
            &mut new,
        );
        crate::fieldmanager::record_update(Some(current), &mut new, &opts.field_manager, res, sub);
        admit_namespace(self, res, ns, name, false)?;
        let mut warnings = warnings;
        let attrs = Attributes {
            res,
            sub,
            operation: Operation::Update,
            namespace: ns,
            name,
            user: opts.user.as_ref(),
            dry_run: opts.dry_run,
        };
        warnings.extend(
            self.mutate_stored(&attrs, &storage_res, &mut new, Some(current))
                .await?,
        );
        let mut errors = validation::validate_update(
            &storage_res.group,
            &storage_res.version,
            &storage_res.plural,
            &new,
            current,
        );
        errors.extend(self.crds.validate(&storage_res, &new, Some(current)));
        if !errors.is_empty() {
            return Err(invalid(res, &new, &errors));
        }
        if res.group == "rbac.authorization.k8s.io" {
            self.authorizer.check_rbac_write(
                opts.user.as_ref(),
                &res.plural,
                ns,
                &new,
                Some(current),
            )?;
        }
        warnings.extend(crate::admission::validate(
            self,
            &attrs,
            &storage_res,
            &new,
            Some(current),
        )?);
        warnings.extend(self.validate_stored(&attrs, &new, Some(current)).await?);
        let alloc = self
            .admit_service_update(&storage_res, current, &mut new, opts.dry_run)
            .await?;
        if opts.dry_run {
            let mut shown = new.clone();
            crate::storage::set_resource_version(&mut shown, expected);
            return Ok(Written {
                object: Arc::new(self.shown(res, &shown).await?),
                created: false,
                warnings: warnings.clone(),
            });
        }
        let k = key(res, ns, name);
        // an object marked for deletion goes once its last finalizer is gone
        if new.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers_empty(&new)
            && strategy::finalizers_complete(&storage_res, &new)
        {
            self.finish_service_update(alloc, false).await;
            let gone = self
                .store
                .delete(&k, Some(expected))
                .await
                .map_err(|e| storage_error(res, name, e))?;
            self.allocators.release_for(&storage_res, &gone);
            self.unclaim_service(&storage_res, &gone).await;
            return Ok(Written {
                object: self.shown_stored(res, &gone).await?,
                created: false,
                warnings: warnings.clone(),
            });
        }
        let stored = self.store.update(&k, expected, new).await;
        self.finish_service_update(alloc, stored.is_ok()).await;
        let stored = stored.map_err(|e| storage_error(res, name, e))?;
        Ok(Written {
            object: self.shown_stored(res, &stored).await?,
            created: false,
            warnings: warnings.clone(),
        })
    }

    /// Applies a patch (PATCH) to an object or subresource. Server-side apply creates the
    /// object when it does not exist.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        sub: &str,
        ty: BodyType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let k = key(res, ns, name);
        // a patch is retried against the latest object when a concurrent write wins,
        // unless the patch itself pins a resourceVersion (upstream's GuaranteedUpdate
        // retries without a limit; each lost round means another writer made progress)
        for _attempt in 0..PATCH_ATTEMPTS {
            let current = self
                .store
                .get_fresh(&k, 0)
                .await
                .map_err(|e| storage_error(res, name, e))?;
            let Some(current) = current else {
                if ty == BodyType::ApplyYaml && sub.is_empty() {
                    let applied = crate::negotiation::decode_object(
                        body,
                        ty,
                        Some((&res.kind, &res.version)),
                    )?;
                    let obj = crate::fieldmanager::apply(None, &applied, res, opts)?;
                    return self
                        .create(
                            res,
                            ns,
                            obj,
                            &WriteOptions {
                                field_manager: String::new(),
                                ..opts.clone()
                            },
                        )
                        .await;
                }
                return Err(ApiError::not_found(&res.group, &res.plural, name));
            };
            let expected = rv_of(&current);
            let live = self.shown(res, &current).await?;
            let patched = crate::patching::apply_patch(res, &live, ty, body, opts)?;
            // the patch pins a resourceVersion only if it sets one itself (the patched
            // object always carries the live one): then a conflict is the client's, else
            // the patch is applied again to the newer object
            let pinned = patched
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|_| patch_sets_resource_version(res, &live, ty, body, opts));
            let mut patched = patched;
            if let Some(rv) = &pinned
                && rv.parse::<u64>().ok() != Some(expected)
            {
                return Err(ApiError::stale_update(&res.group, &res.plural, name));
            }
            crate::storage::set_resource_version(&mut patched, expected);
            if meta_str(&patched, "name") != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta_str(&patched, "name")
                )));
            }
            let record_opts = if ty == BodyType::ApplyYaml {
                WriteOptions {
                    field_manager: String::new(),
                    ..opts.clone()
                }
            } else {
                opts.clone()
            };
            match self
                .replace(
                    res,
                    ns,
                    name,
                    sub,
                    &current,
                    expected,
                    patched,
                    &record_opts,
                )
                .await
            {
                Err(e)
                    if e.reason == "Conflict"
                        && pinned.is_none()
                        && e.code == 409
                        && !e.message.contains("conflict with") =>
                {
                    continue;
                }
                other => return other,
            }
        }
        Err(ApiError::stale_update(&res.group, &res.plural, name))
    }
}

impl Rest {
    /// A request object (at `res`'s version) at the storage version, through the CRD's
    /// conversion webhook where it has one.
    async fn to_storage_version(&self, res: &ResourceInfo, obj: Value) -> Result<Value, ApiError> {
        let obj = if conversion::webhook_converted(res) {
            let storage = format!("{}/{}", res.group, res.storage_version);
            let mut out = self.convert_to(res, vec![obj], &storage).await?;
            out.pop()
                .ok_or_else(|| ApiError::internal("the conversion webhook returned no object"))?
        } else {
            obj
        };
        Ok(conversion::to_storage(obj, res))
    }

    /// Mutating admission webhooks on an object held at the storage version: they see it
    /// at the version the client wrote; what they change is defaulted (and, for custom
    /// resources, pruned) again, as upstream decodes a patched object.
    async fn mutate_stored(
        &self,
        a: &Attributes<'_>,
        storage_res: &ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        if !self.has_webhooks(true) {
            return Ok(Vec::new());
        }
        let mut shown = self.shown(a.res, obj).await?;
        let before = shown.clone();
        let old_shown = match old {
            Some(o) => Some(self.shown(a.res, o).await?),
            None => None,
        };
        let warnings = self.mutate(a, &mut shown, old_shown.as_ref()).await?;
        if shown != before {
            self.crds.prune(a.res, &mut shown);
            self.crds.default(a.res, &mut shown);
            let mut changed = self.to_storage_version(a.res, shown).await?;
            validation::default(
                &storage_res.group,
                &storage_res.version,
                &storage_res.plural,
                &mut changed,
            );
            *obj = changed;
        }
        Ok(warnings)
    }

    /// Validating admission webhooks on an object held at the storage version.
    async fn validate_stored(
        &self,
        a: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        if !self.has_webhooks(false) {
            return Ok(Vec::new());
        }
        let shown = self.shown(a.res, obj).await?;
        let old_shown = match old {
            Some(o) => Some(self.shown(a.res, o).await?),
            None => None,
        };
        self.validate(a, Some(&shown), old_shown.as_ref()).await
    }
}

/// How many times a patch is applied again after losing to a concurrent write.
const PATCH_ATTEMPTS: usize = 100;

/// Whether applying the patch sets `metadata.resourceVersion` (as a precondition): it
/// does if the patched object has one when the live object had none.
fn patch_sets_resource_version(
    res: &ResourceInfo,
    live: &Value,
    ty: BodyType,
    body: &[u8],
    opts: &WriteOptions,
) -> bool {
    if !body.windows(15).any(|w| w == b"resourceVersion") {
        return false;
    }
    let mut bare = live.clone();
    if let Some(m) = bare.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    crate::patching::apply_patch(res, &bare, ty, body, opts).map_or(true, |p| {
        p.pointer("/metadata/resourceVersion")
            .is_some_and(|v| !v.is_null() && v != "")
    })
}

fn finalizers_empty(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty())
}

/// The revision stamped on a stored object.
pub(crate) fn rv_of(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
