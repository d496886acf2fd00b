//! List merging for strategic merge patch: lists of objects merged by a merge key, lists
//! of scalars merged as sets, `$patch` items, parallel deletion lists, and upstream's
//! rules for the order of the merged items.
//!
//! Upstream's order: items named in the patch keep the patch's order; items only the
//! server has keep theirs; the two runs are interleaved by where the patch items stood in
//! the server's list, and patch items the server did not have come first.

use machinery::status::ApiError;
use serde_json::{Map, Value};

use super::{
    DELETE_FROM_PRIMITIVE_LIST, DIRECTIVE, RETAIN_KEYS, SET_ELEMENT_ORDER, fail, merge_map,
};
use crate::errors::{self, go_format};
use crate::schema::Shape;

/// The JSON kind shared by all items of the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Scalar,
}

fn element_kind(lists: &[&[Value]]) -> Result<Option<Kind>, ApiError> {
    let mut seen: Option<&Value> = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        if item.is_array() {
            return Err(fail::list_of_lists());
        }
        match seen {
            None => seen = Some(item),
            Some(prev) if std::mem::discriminant(prev) != std::mem::discriminant(item) => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(errors::untyped(format!(
                    "list element types are not identical: {}",
                    go_format(&Value::Array(all))
                )));
            }
            Some(_) => {}
        }
    }
    Ok(seen.map(|v| {
        if v.is_object() {
            Kind::Object
        } else {
            Kind::Scalar
        }
    }))
}

/// Merges `patch` into `original`, a list with merge strategy whose items have
/// `item_shape`. `delete_list` marks a `$deleteFromPrimitiveList` parallel list.
pub(super) fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    item_shape: &Shape,
    merge_key: Option<&str>,
    delete_list: bool,
) -> Result<Vec<Value>, ApiError> {
    let Some(kind) = element_kind(&[&original, &patch])? else {
        return Ok(original);
    };
    if kind == Kind::Scalar {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (from_patch, server_only): (Vec<Value>, Vec<Value>) =
            merged.into_iter().partition(|v| patch.contains(v));
        return normalize_order(from_patch, server_only, &patch, &original, None);
    }
    let Some(key) = merge_key else {
        let kind = if matches!(item_shape, Shape::Struct(_)) {
            "struct"
        } else {
            "interface"
        };
        return Err(errors::untyped(format!(
            "cannot merge lists without merge key for type {kind}"
        )));
    };
    let (server, patch) = apply_special_items(original, patch, key, item_shape)?;
    let merged = merge_items(server.clone(), &patch, key, item_shape)?;
    let (from_patch, server_only) = partition_by_key(merged, &patch, key)?;
    normalize_order(from_patch, server_only, &patch, &server, Some(key))
}

/// Handles the patch items carrying `$patch`: `delete` removes the server's items with
/// the same key, `replace` makes the patch's other items the whole list. Returns the
/// server's list after that and the patch's ordinary items.
fn apply_special_items(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    item_shape: &Shape,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut ordinary = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(map) = &item else {
            ordinary.push(item);
            continue;
        };
        let Some(directive) = map.get(DIRECTIVE) else {
            ordinary.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(wanted) = map.get(key) else {
                    return Err(fail::no_merge_key(map, key));
                };
                check_all_maps(&original)?;
                original.retain(|o| o.get(key) != Some(wanted));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(errors::untyped(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => return Err(fail::bad_patch_type(directive, map)),
        }
    }
    if replace {
        let cleaned = ordinary
            .into_iter()
            .map(|item| match item {
                Value::Object(m) => merge_map(Map::new(), m, item_shape).map(Value::Object),
                other => Ok(other),
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((cleaned, Vec::new()));
    }
    Ok((original, ordinary))
}

fn check_all_maps(list: &[Value]) -> Result<(), ApiError> {
    match list.iter().position(|v| !v.is_object()) {
        Some(i) => Err(errors::untyped(format!("value for key {i} is not a map."))),
        None => Ok(()),
    }
}

/// Merges each patch item into the server's item with the same key, or appends it.
fn merge_items(
    mut server: Vec<Value>,
    patch: &[Value],
    key: &str,
    item_shape: &Shape,
) -> Result<Vec<Value>, ApiError> {
    for item in patch {
        let Value::Object(map) = item else { continue };
        let Some(wanted) = map.get(key) else {
            return Err(fail::no_merge_key(map, key));
        };
        check_all_maps(&server)?;
        match server.iter_mut().find(|o| o.get(key) == Some(wanted)) {
            Some(Value::Object(existing)) => {
                let merged = merge_map(std::mem::take(existing), map.clone(), item_shape)?;
                *existing = merged;
            }
            _ => server.push(merge_map(Map::new(), map.clone(), item_shape)?.into()),
        }
    }
    Ok(server)
}

/// Splits `merged` into the items whose key appears in `by` and the others.
fn partition_by_key(
    merged: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    check_all_maps(by)?;
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for item in merged {
        let Value::Object(map) = &item else {
            absent.push(item);
            continue;
        };
        let Some(value) = map.get(key) else {
            return Err(fail::no_merge_key(map, key));
        };
        if by.iter().any(|b| b.get(key) == Some(value)) {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// Where `item` stands in `list`, matching objects by `key` and scalars by value.
fn index_of(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    match key {
        Some(k) => {
            let wanted = item.get(k)?;
            list.iter().position(|v| v.get(k) == Some(wanted))
        }
        None => list.iter().position(|v| v == item),
    }
}

fn sort_by_order(items: &mut [Value], order: &[Value], key: Option<&str>) {
    items.sort_by_key(|item| index_of(order, item, key).unwrap_or(usize::MAX));
}

/// Orders patch items by `patch_order` and server-only items by `server_order`, then
/// interleaves them (upstream's `normalizeElementOrder`).
fn normalize_order(
    mut from_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    if let Some(k) = key {
        for list in [&from_patch[..], &server_only[..], patch_order, server_order] {
            for item in list {
                match item {
                    Value::Object(m) if m.contains_key(k) => {}
                    Value::Object(m) => return Err(fail::no_merge_key(m, k)),
                    other => return Err(fail::bad_arg_type("map[string]interface {}", other)),
                }
            }
        }
        // Deletion items sort last, as upstream keeps them apart from the ordering.
        let (keep, deletes): (Vec<Value>, Vec<Value>) = from_patch
            .into_iter()
            .partition(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"));
        from_patch = keep;
        sort_by_order(&mut from_patch, patch_order, key);
        from_patch.extend(deletes);
    } else {
        sort_by_order(&mut from_patch, patch_order, key);
    }
    sort_by_order(&mut server_only, server_order, key);
    Ok(interleave(server_only, from_patch, server_order, key))
}

/// Upstream's `mergeSortedSlice`: takes a server-only item first only when both items are
/// in the server's list and the server-only one stood earlier.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, key),
                    index_of(server_order, r, key),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Checks that the patch's list names its items in the order `$setElementOrder` gives
/// (upstream's `validatePatchWithSetOrderList`).
pub(super) fn validate_against_order(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<(), ApiError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let ordinary: Vec<&Value> = match key {
        Some(_) => {
            if let Some(bad) = patch.iter().find(|v| !v.is_object()) {
                return Err(fail::bad_arg_type("map[string]interface {}", bad));
            }
            patch
                .iter()
                .filter(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"))
                .collect()
        }
        None => patch.iter().collect(),
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < ordinary.len() && oi < order.len() {
        if ordinary[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if key_equal(ordinary[pi], &order[oi], key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < ordinary.len() && oi >= order.len() {
        return Err(errors::untyped(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_format(&Value::Array(patch.to_vec())),
            go_format(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn key_equal(left: &Value, right: &Value, key: Option<&str>) -> Result<bool, ApiError> {
    let Some(k) = key else {
        return Ok(left == right);
    };
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        let bad = if left.is_object() { right } else { left };
        return Err(fail::bad_arg_type("map[string]interface {}", bad));
    };
    match (l.get(k), r.get(k)) {
        (Some(a), Some(b)) => Ok(a == b),
        (None, _) => Err(fail::no_merge_key(l, k)),
        (_, None) => Err(fail::no_merge_key(r, k)),
    }
}

/// Orders a merged list by a `$setElementOrder` list: the items it names in its order,
/// the others in their place on the server.
pub(super) fn order_by(
    merged: Vec<Value>,
    order: &[Value],
    original: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    if merged.is_empty() {
        return Ok(merged);
    }
    let (named, server_only) = match key {
        Some(k) if merged.iter().all(Value::is_object) => partition_by_key(merged, order, k)?,
        _ => merged.into_iter().partition(|v| order.contains(v)),
    };
    let key = key.filter(|_| named.iter().chain(server_only.iter()).all(Value::is_object));
    normalize_order(named, server_only, order, original, key)
}

/// Removes strategic-merge directives (and null members) from a value the patch sets
/// wholesale, such as a list without merge strategy.
pub(super) fn strip_directives(value: Value, shape: &Shape) -> Result<Value, ApiError> {
    Ok(match value {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let directive = k == DIRECTIVE
                    || k == RETAIN_KEYS
                    || k.starts_with(SET_ELEMENT_ORDER)
                    || k.starts_with(DELETE_FROM_PRIMITIVE_LIST);
                if directive || v.is_null() {
                    continue;
                }
                let child = shape.member(&k).0;
                out.insert(k, strip_directives(v, child)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| strip_directives(v, shape.item()))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}
