//! Server-side apply (`application/apply-patch+yaml`) and the `managedFields` bookkeeping
//! of every other write, after structured-merge-diff's `Updater` and the API server's
//! field manager.
//!
//! Apply merges the applied configuration into the live object by the types' list and
//! map semantics, gives the applier ownership of exactly the fields its configuration
//! sets, removes fields it set last time and sets no more (when nobody else owns them),
//! and refuses with a 409 to change fields other managers own unless forced, in which
//! case ownership moves. Ordinary writes record an `Update` entry for what they changed.
//!
//! Simplifications, next to upstream:
//! - one schema serves every version of a kind (no conversion between versions);
//! - the per-resource "reset fields" (status on the main resource, spec on `/status`) are
//!   whatever the caller passes in [`Request::reset_fields`];
//! - an object created by an update is compared against a zero object that has only the
//!   value-typed structs upstream's Go types always serialize (`metadata`, `spec`,
//!   `status`, `template`, `jobTemplate`, `strategy`, `updateStrategy`) and its required
//!   fields as null;
//! - the first apply to an object without `managedFields` hands every existing field to
//!   an `Update` manager `before-first-apply`, so that apply conflicts with values set
//!   before managed fields were tracked;
//! - the `kubectl` manager takes over fields its last client-side apply set without a
//!   conflict, as upstream does ([`last_applied`]);
//! - at most [`MAX_UPDATE_MANAGERS`] `Update` entries are kept, the oldest merged into
//!   `ancient-changes`.

pub mod last_applied;
pub mod managed;
mod typed;
mod walk;

use machinery::status::ApiError;
use serde_json::{Map, Value};

use crate::errors;
use crate::fieldpath::{PathElement, Set};
use crate::schema::{self, Shape};
use managed::{APPLY, Manager, UPDATE};
use typed::Pos;

/// The most `Update` entries kept in `managedFields`.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager that owns what an object had before its first apply.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Longest field manager name upstream accepts.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The fields no manager owns: identity and server-set metadata.
fn stripped() -> Set {
    let mut set = Set::new();
    let f = |s: &str| PathElement::Field(s.to_string());
    set.insert(&[f("apiVersion")]);
    set.insert(&[f("kind")]);
    set.insert(&[f("metadata")]);
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[f("metadata"), f(field)]);
    }
    set
}

/// The field manager of a request: the `fieldManager` parameter, else the User-Agent up
/// to its first `/` (printable characters only, at most 128 bytes), as upstream derives it.
pub fn manager_name(field_manager: Option<&str>, user_agent: &str) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

fn shape_for(definition: Option<&str>) -> Shape {
    definition
        .and_then(schema::patch_meta)
        .unwrap_or(Shape::Untyped)
}

fn without_managed_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    out
}

fn api_version_of(object: &Value) -> String {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The zero object an update creating an object is compared against: value-typed
/// structs as empty objects, other required fields as null (Go writes them either way).
fn zero_object(shape: &Shape, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(def) = shape.definition().filter(|_| depth < 8) {
        for (name, field) in def.fields() {
            if walk::VALUE_STRUCTS.contains(&name) && matches!(field.shape, Shape::Struct(_)) {
                out.insert(name.to_string(), zero_object(&field.shape, depth + 1));
            } else if def.is_required(name) {
                out.insert(name.to_string(), Value::Null);
            }
        }
    }
    Value::Object(out)
}

/// Who writes, through which version and subresource, when, and which fields the
/// resource's strategy resets (and so no manager owns) on this endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The field manager (see [`manager_name`]).
    pub manager: &'a str,
    /// The API version of the request (`apps/v1`).
    pub api_version: &'a str,
    /// The subresource written (`status`), or empty for the main resource.
    pub subresource: &'a str,
    /// The OpenAPI definition of the kind; `None` treats objects as schema-less.
    pub definition: Option<&'a str>,
    /// The time to stamp on the writer's entry (RFC 3339).
    pub now: &'a str,
    /// Field paths (by field name from the root) the strategy resets on this endpoint,
    /// such as `["status"]` on the main resource.
    pub reset_fields: &'a [&'a [&'a str]],
}

impl Request<'_> {
    fn ignored(&self) -> Set {
        let mut set = Set::new();
        for path in self.reset_fields {
            let path: Vec<PathElement> = path
                .iter()
                .map(|f| PathElement::Field(f.to_string()))
                .collect();
            set.insert(&path);
        }
        set
    }

    fn entry(&self, operation: &str, api_version: &str, set: Set) -> Manager {
        Manager {
            name: self.manager.to_string(),
            operation: operation.into(),
            api_version: api_version.to_string(),
            subresource: self.subresource.to_string(),
            time: Some(self.now.to_string()),
            set,
        }
    }
}

/// Records an ordinary write (create, update, any patch but apply) by `manager` through
/// `api_version` of the main resource in `new.metadata.managedFields`; see
/// [`update_managed_fields_with`].
pub fn update_managed_fields(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    definition: Option<&str>,
    now: &str,
) {
    let request = Request {
        manager,
        api_version,
        subresource: "",
        definition,
        now,
        reset_fields: &[],
    };
    update_managed_fields_with(old, new, &request);
}

/// Records an ordinary write in `new.metadata.managedFields`.
///
/// Managed fields the request carries are kept when they decode (never on a
/// subresource), else the old object's are used, so clients unaware of them cannot drop
/// them. Fields the write changed move to the writer's `Update` entry, stamped with the
/// request's time; fields it removed leave every manager.
pub fn update_managed_fields_with(old: Option<&Value>, new: &mut Value, request: &Request<'_>) {
    let mut managers = match managed::decode(new) {
        Ok(m) if !m.is_empty() && request.subresource.is_empty() => m,
        _ => old
            .and_then(|o| managed::decode(o).ok())
            .unwrap_or_default(),
    };
    let shape = shape_for(request.definition);
    let pos = Pos::root(&shape);
    let before = match old {
        Some(o) => without_managed_fields(o),
        None => zero_object(&shape, 0),
    };
    let after = without_managed_fields(new);
    let cmp = walk::compare(Some(&before), Some(&after), pos);
    let changed = cmp
        .changed()
        .difference(&stripped())
        .recursive_difference(&request.ignored());
    for m in &mut managers {
        m.set = m.set.difference(&changed).difference(&cmp.removed);
    }
    if !changed.is_empty() {
        let me = request.entry(UPDATE, request.api_version, changed);
        match managers.iter_mut().find(|m| m.same_identity(&me)) {
            Some(existing) => {
                existing.set = existing.set.union(&me.set);
                existing.time = me.time;
            }
            None => managers.push(me),
        }
    }
    managers.retain(|m| !m.set.is_empty());
    cap_update_managers(&mut managers, request.now);
    *new = after;
    managed::store(new, &managers);
}

/// Merges the oldest `Update` entries into one `ancient-changes` entry until at most
/// [`MAX_UPDATE_MANAGERS`] remain.
fn cap_update_managers(managers: &mut Vec<Manager>, now: &str) {
    let count = managers.iter().filter(|m| m.operation == UPDATE).count();
    if count <= MAX_UPDATE_MANAGERS {
        return;
    }
    let mut updates: Vec<Manager> = Vec::new();
    managers.retain(|m| {
        if m.operation == UPDATE {
            updates.push(m.clone());
            false
        } else {
            true
        }
    });
    updates.sort_by(|a, b| {
        a.time
            .as_deref()
            .unwrap_or("")
            .cmp(b.time.as_deref().unwrap_or(""))
    });
    let excess = updates.len() - MAX_UPDATE_MANAGERS + 1;
    let mut ancient = Manager {
        name: "ancient-changes".into(),
        operation: UPDATE.into(),
        api_version: String::new(),
        subresource: String::new(),
        time: Some(now.to_string()),
        set: Set::new(),
    };
    for old in updates.drain(..excess) {
        ancient.set = ancient.set.union(&old.set);
        ancient.api_version = old.api_version;
    }
    managers.extend(updates);
    managers.push(ancient);
}

/// Keeps the members of `to_remove` that nothing in `owned` lies below, so that removing
/// a list item or map key never takes fields someone else owns with it.
fn unowned(to_remove: &Set, owned: &Set) -> Set {
    let mut out = Set::new();
    for path in to_remove.paths() {
        let mut below = Some(owned);
        for pe in &path {
            below = below.and_then(|s| s.child(pe));
        }
        if below.is_none_or(Set::is_empty) {
            out.insert(&path);
        }
    }
    out
}

/// Applies the configuration `applied` as `manager` to the main resource (server-side
/// apply); see [`apply_with`].
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    definition: Option<&str>,
    now: &str,
) -> Result<Value, ApiError> {
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let request = Request {
        manager,
        api_version,
        subresource: "",
        definition,
        now,
        reset_fields: &[],
    };
    apply_with(live, applied, force, &request)
}

/// Applies the configuration `applied` (server-side apply).
///
/// `live` is the stored object (`None` to create one). The applier's entry records the
/// configuration's `apiVersion`. Returns the new object with its `managedFields`, or a
/// 409 listing the fields other managers own, unless `force`.
pub fn apply_with(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    request: &Request<'_>,
) -> Result<Value, ApiError> {
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration is not an object",
        ));
    }
    if applied
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let shape = shape_for(request.definition);
    let pos = Pos::root(&shape);
    let ignored = request.ignored();
    let live_obj = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut managers = match live {
        Some(l) => managed::decode(l)
            .map_err(|e| errors::untyped(format!("failed to decode managed fields: {e}")))?,
        None => Vec::new(),
    };
    if live.is_some() && managers.is_empty() {
        let set = walk::to_field_set(&live_obj, pos).difference(&stripped());
        if !set.is_empty() {
            managers.push(Manager {
                name: BEFORE_FIRST_APPLY.into(),
                operation: UPDATE.into(),
                api_version: api_version_of(&live_obj),
                subresource: String::new(),
                time: Some(request.now.to_string()),
                set,
            });
        }
    }
    let applied_obj = without_managed_fields(applied);
    let applied_set = walk::to_field_set(&applied_obj, pos)
        .difference(&stripped())
        .recursive_difference(&ignored);
    let me = request.entry(APPLY, &api_version_of(&applied_obj), applied_set);
    let previous = managers
        .iter()
        .position(|m| m.same_identity(&me))
        .map(|i| managers.remove(i));

    let mut new_obj = walk::merge(Some(&live_obj), Some(&applied_obj), pos, 0).unwrap_or_default();
    if let Some(last) = &previous {
        let owned = managers
            .iter()
            .fold(me.set.clone(), |acc, m| acc.union(&m.set));
        let to_remove = unowned(&last.set.difference(&owned), &owned);
        walk::remove(&mut new_obj, &to_remove, pos, 0);
    }

    let cmp = walk::compare(Some(&live_obj), Some(&new_obj), pos);
    let changed = cmp.changed().recursive_difference(&ignored);
    let conflicts: Vec<(&Manager, Vec<PathElement>)> = managers
        .iter()
        .flat_map(|m| {
            m.set
                .intersection(&changed)
                .paths()
                .into_iter()
                .map(move |p| (m, p))
        })
        .collect();
    if !force && !conflicts.is_empty() {
        let paths: Vec<Vec<PathElement>> = conflicts.iter().map(|(_, p)| p.clone()).collect();
        if !last_applied::conflicts_allowed(request.manager, &live_obj, pos, &paths) {
            return Err(managed::conflict_error(&conflicts));
        }
    }
    for m in &mut managers {
        m.set = m.set.difference(&changed).difference(&cmp.removed);
    }
    let unchanged = new_obj == live_obj;
    let time = match (&previous, unchanged) {
        (Some(p), true) => p.time.clone(),
        _ => me.time.clone(),
    };
    managers.push(Manager { time, ..me });
    managers.retain(|m| !m.set.is_empty());
    last_applied::sync_annotation(request.manager, &mut new_obj, &applied_obj);
    managed::store(&mut new_obj, &managers);
    Ok(new_obj)
}

#[cfg(test)]
mod tests;
