//! Strategic merge patch (`application/strategic-merge-patch+json`): a JSON merge patch
//! whose lists merge item by item where the built-in types say so (by a merge key, or as
//! sets of scalars), steered by the directives `$patch` (`replace`, `merge`, `delete`),
//! `$retainKeys`, `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
//!
//! Follows upstream's `StrategicMergeMapPatch` as the server runs it (parallel lists are
//! merged, nulls that match nothing are dropped), including where it places new list
//! items. Unlike upstream, values the patch adds where nothing was are cleaned of
//! directives here, because objects are stored as JSON rather than decoded into structs
//! that would drop them.

mod list;

use machinery::status::ApiError;
use serde_json::{Map, Value};

use crate::errors::{self, go_format, go_type_name};
use crate::schema::{self, Extensions, Shape};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Applies a strategic merge patch to `doc`, an object of the named OpenAPI definition
/// (`io.k8s.api.apps.v1.Deployment`).
///
/// Unknown definitions (custom resources) are refused with upstream's 415
/// ([`crate::strategic_merge_patch_unsupported`]).
pub fn strategic_merge_patch(
    doc: &Value,
    patch: &[u8],
    definition: &str,
) -> Result<Value, ApiError> {
    let Some(shape) = schema::patch_meta(definition) else {
        return Err(errors::strategic_merge_patch_unsupported());
    };
    strategic_merge_patch_with(doc, patch, &shape)
}

/// Applies a strategic merge patch to `doc` using the given root shape (see
/// [`schema::patch_meta`]).
pub fn strategic_merge_patch_with(
    doc: &Value,
    patch: &[u8],
    shape: &Shape,
) -> Result<Value, ApiError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let patch = match patch {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                errors::json_kind_word(&other)
            )));
        }
    };
    let original = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch, shape).map(Value::Object)
}

/// Errors of the strategic-merge library, each mapped to the status upstream's patch
/// handler gives it.
pub(crate) mod fail {
    use super::*;

    pub fn primitive_list_format() -> ApiError {
        ApiError::bad_request("invalid patch format of primitive list")
    }
    pub fn retain_keys_format() -> ApiError {
        ApiError::bad_request("invalid patch format of retainKeys")
    }
    pub fn set_element_order_format() -> ApiError {
        ApiError::bad_request("invalid patch format of setElementOrder list")
    }
    pub fn list_of_lists() -> ApiError {
        errors::unprocessable()
    }
    pub fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> ApiError {
        errors::untyped(format!(
            "Unknown patch type: {} in map: {}",
            go_format(directive),
            go_format(&Value::Object(map.clone()))
        ))
    }
    pub fn no_merge_key(map: &Map<String, Value>, key: &str) -> ApiError {
        errors::untyped(format!(
            "map: {} does not contain declared merge key: {key}",
            go_format(&Value::Object(map.clone()))
        ))
    }
    pub fn bad_arg_type(expected: &str, actual: &Value) -> ApiError {
        errors::untyped(format!(
            "expected a {expected}, but received a {}",
            go_type_name(actual)
        ))
    }
}

/// Merges `patch` into `original`, an object of `shape`.
pub(crate) fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    shape: &Shape,
) -> Result<Map<String, Value>, ApiError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(DIRECTIVE);
                merge_map(Map::new(), patch, shape)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(fail::bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_set_element_order(&mut original, &mut patch, shape)?;

    for (key, patch_value) in patch {
        let (key, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => match rest.strip_prefix('/') {
                Some(field) => (field.to_string(), true),
                None => return Err(fail::primitive_list_format()),
            },
            None => (key, false),
        };
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let (child, ext) = shape.member(&key);
        let current = original.get_mut(&key);
        let merged = match (current, patch_value) {
            (None, _) if delete_list => continue,
            (Some(Value::Object(orig)), Value::Object(p)) => if ext.has_strategy("replace") {
                merge_map(Map::new(), p, child)?
            } else {
                merge_map(std::mem::take(orig), p, child)?
            }
            .into(),
            (Some(Value::Array(orig)), Value::Array(p)) => {
                if ext.has_strategy("merge") {
                    let merge_key = ext.merge_key.as_deref();
                    list::merge_list(
                        std::mem::take(orig),
                        p,
                        child.item(),
                        merge_key,
                        delete_list,
                    )?
                    .into()
                } else if delete_list {
                    continue;
                } else {
                    list::strip_directives(Value::Array(p), child)?
                }
            }
            (_, patch_value) => fresh(patch_value, child, ext)?,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A patch value placed where the original has nothing (or a value of another type): it
/// is merged into an empty value, which applies its directives and drops its nulls.
fn fresh(value: Value, shape: &Shape, ext: &Extensions) -> Result<Value, ApiError> {
    match value {
        Value::Object(m) => Ok(merge_map(Map::new(), m, shape)?.into()),
        Value::Array(items) if ext.has_strategy("merge") => Ok(list::merge_list(
            Vec::new(),
            items,
            shape.item(),
            ext.merge_key.as_deref(),
            false,
        )?
        .into()),
        other => list::strip_directives(other, shape),
    }
}

/// `$retainKeys`: drops the original's keys that are not listed, after checking that the
/// patch sets only listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(fail::retain_keys_format());
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        let directive =
            k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER);
        if !v.is_null() && !directive && !listed(k) {
            return Err(fail::retain_keys_format());
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// The list under `key` of `map`, if there is one; anything else there is an error.
fn list_at(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(fail::bad_arg_type("[]interface {}", other)),
    }
}

/// `$setElementOrder/<field>`: merges the field's list now and orders the result as the
/// directive lists it, leaving items only the server has in their relative place.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    shape: &Shape,
) -> Result<(), ApiError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(fail::bad_arg_type("[]interface {}", &order));
        };
        let field = key
            .strip_prefix(SET_ELEMENT_ORDER)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(fail::set_element_order_format)?
            .to_string();
        let orig = list_at(original, &field)?;
        let from_patch = list_at(patch, &field)?;
        let (child, ext) = shape.member(&field);
        let merging = ext.has_strategy("merge");
        let merge_key = ext.merge_key.as_deref().filter(|_| merging);
        list::validate_against_order(from_patch.as_deref().unwrap_or_default(), &order, merge_key)?;
        let merged = match (orig.clone(), from_patch) {
            (None, None) => continue,
            (Some(o), None) => o,
            (o, Some(p)) if merging => {
                list::merge_list(o.unwrap_or_default(), p, child.item(), merge_key, false)?
            }
            (_, Some(p)) => match list::strip_directives(Value::Array(p), child)? {
                Value::Array(p) => p,
                _ => Vec::new(),
            },
        };
        let ordered = list::order_by(
            merged,
            &order,
            orig.as_deref().unwrap_or_default(),
            merge_key,
        )?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
