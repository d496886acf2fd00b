//! Field management: `metadata.managedFields` bookkeeping for every write, and
//! server-side apply, on top of the `patch` crate. This module only maps a request (its
//! resource, subresource and manager) onto the `patch` crate's vocabulary.

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;

use crate::conversion::is_builtin_group;
use crate::rest::WriteOptions;

/// Fields a write to `sub` does not own: the main resource resets status where status is
/// split, and `/status` resets everything but status.
fn reset_fields(res: &ResourceInfo, sub: &str) -> &'static [&'static [&'static str]] {
    match sub {
        "" if res.has_status() => &[&["status"]],
        "status" => &[
            &["spec"],
            &["metadata", "labels"],
            &["metadata", "annotations"],
        ],
        _ => &[],
    }
}

fn request<'a>(
    res: &'a ResourceInfo,
    sub: &'a str,
    manager: &'a str,
    api_version: &'a str,
    now: &'a str,
) -> patch::apply::Request<'a> {
    patch::apply::Request {
        manager,
        api_version,
        subresource: sub,
        definition: is_builtin_group(&res.group).then_some(res.definition.as_str()),
        now,
        reset_fields: reset_fields(res, sub),
    }
}

/// Records an `Update` by `manager` on `new` (`old` is the stored object, if any).
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    res: &ResourceInfo,
    sub: &str,
) {
    if manager.is_empty() {
        return;
    }
    let now = crate::rest::now();
    let api_version = res.api_version();
    patch::apply::update_managed_fields_with(
        old,
        new,
        &request(res, sub, manager, &api_version, &now),
    );
}

/// Server-side apply of `applied` onto `live` (None when creating).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    res: &ResourceInfo,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let now = crate::rest::now();
    let api_version = res.api_version();
    patch::apply::apply_with(
        live,
        applied,
        opts.force,
        &request(res, "", &opts.field_manager, &api_version, &now),
    )
}
