//! The structured walks server-side apply is made of: the set of fields a value sets, the
//! comparison of two values, the merge of an applied configuration into a live object, and
//! the removal of a set of fields from a value.

use serde_json::{Map, Value};

use super::typed::{ItemIdentity, Node, Pos, index_items};
use crate::fieldpath::{Path, PathElement, Set};

const MAX_DEPTH: usize = 100;

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The fields `value` sets: every leaf, every list item, every map key, and every member
/// that is empty or null.
pub(crate) fn to_field_set(value: &Value, pos: Pos<'_>) -> Set {
    let mut set = Set::new();
    field_set(value, pos, &mut Vec::new(), &mut set);
    set
}

fn field_set(value: &Value, pos: Pos<'_>, path: &mut Path, set: &mut Set) {
    if path.len() > MAX_DEPTH {
        return;
    }
    match (pos.node(Some(value)), value) {
        (Node::Object, Value::Object(map)) => {
            for (key, child) in map {
                path.push(PathElement::Field(key.clone()));
                field_set(child, pos.member(key), path, set);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || !pos.declares(key) {
                    set.insert(path);
                }
                path.pop();
            }
        }
        (Node::Items(identity), Value::Array(items)) => {
            for (pe, item) in index_items(&identity, items) {
                path.push(pe);
                field_set(item, pos.item(), path, set);
                set.insert(path);
                path.pop();
            }
        }
        (Node::Object | Node::Items(_), _) => {}
        (Node::Leaf, _) => set.insert(path),
    }
}

fn find_item<'v>(side: &[(PathElement, &'v Value)], pe: &PathElement) -> Option<&'v Value> {
    side.iter().find(|(x, _)| x == pe).map(|(_, v)| *v)
}

/// What changed between two values: paths added, modified and removed.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    /// Paths added or modified.
    pub fn changed(&self) -> Set {
        self.added.union(&self.modified)
    }
}

/// Compares `lhs` (before) with `rhs` (after).
pub(crate) fn compare(lhs: Option<&Value>, rhs: Option<&Value>, pos: Pos<'_>) -> Comparison {
    let mut c = Comparison::default();
    compare_at(lhs, rhs, pos, &mut Vec::new(), &mut c);
    c
}

fn compare_leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &Path, c: &mut Comparison) {
    match (lhs, rhs) {
        (None, None) => {}
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(l), Some(r)) if l != r => c.modified.insert(path),
        _ => {}
    }
}

/// Struct fields upstream's Go types hold by value, so that they are always present
/// (possibly empty) in stored objects and never appear or vanish as a whole.
pub(crate) const VALUE_STRUCTS: [&str; 7] = [
    "metadata",
    "spec",
    "status",
    "template",
    "jobTemplate",
    "strategy",
    "updateStrategy",
];

fn is_value_struct(path: &Path, pos: Pos<'_>) -> bool {
    matches!(pos.shape, crate::schema::Shape::Struct(_))
        && matches!(path.last(), Some(PathElement::Field(f)) if VALUE_STRUCTS.contains(&f.as_str()))
}

/// The members of an object value; absent and null have none, other values are not objects.
fn as_object(v: Option<&Value>) -> Result<Option<&Map<String, Value>>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(()),
    }
}

/// The items of a list value; absent and null have none, other values are not lists.
fn as_array(v: Option<&Value>) -> Result<&[Value], ()> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(()),
    }
}

fn compare_at(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    pos: Pos<'_>,
    path: &mut Path,
    c: &mut Comparison,
) {
    if path.len() > MAX_DEPTH {
        return;
    }
    let node = pos.node(rhs.or(lhs));
    let both_empty = is_empty_container(lhs) && is_empty_container(rhs);
    let walked = match node {
        Node::Leaf => false,
        _ if both_empty => false,
        Node::Object => match (as_object(lhs), as_object(rhs)) {
            (Err(()), _) | (_, Err(())) => false,
            (Ok(l), Ok(r)) => {
                let mut keys: Vec<&String> = l.iter().flat_map(|m| m.keys()).collect();
                keys.extend(
                    r.iter()
                        .flat_map(|m| m.keys())
                        .filter(|k| !l.is_some_and(|m| m.contains_key(*k))),
                );
                for key in keys {
                    path.push(PathElement::Field(key.clone()));
                    compare_at(
                        l.and_then(|m| m.get(key)),
                        r.and_then(|m| m.get(key)),
                        pos.member(key),
                        path,
                        c,
                    );
                    path.pop();
                }
                true
            }
        },
        Node::Items(identity) => match (as_array(lhs), as_array(rhs)) {
            (Err(()), _) | (_, Err(())) => false,
            (Ok(l), Ok(r)) => {
                let l = index_items(&identity, l);
                let r = index_items(&identity, r);
                let mut pes: Vec<&PathElement> = l.iter().map(|(pe, _)| pe).collect();
                pes.extend(
                    r.iter()
                        .map(|(pe, _)| pe)
                        .filter(|pe| !l.iter().any(|(x, _)| x == *pe)),
                );
                for pe in pes {
                    let (li, ri) = (find_item(&l, pe), find_item(&r, pe));
                    path.push(pe.clone());
                    compare_at(li, ri, pos.item(), path, c);
                    path.pop();
                }
                true
            }
        },
    };
    if walked && !is_value_struct(path, pos) {
        // Containers that appear or vanish as a whole are themselves added or removed.
        match (lhs, rhs) {
            (None, Some(_)) => c.added.insert(path),
            (Some(_), None) => c.removed.insert(path),
            _ => {}
        }
    } else if !walked {
        compare_leaf(lhs, rhs, path, c);
    }
}

/// Merges the applied configuration `rhs` into the live value `lhs`: the configuration's
/// values win, granular objects and lists merge member by member, and null members drop.
pub(crate) fn merge(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    pos: Pos<'_>,
    depth: usize,
) -> Option<Value> {
    let fallback = || rhs.or(lhs).cloned();
    if depth > MAX_DEPTH || (is_empty_container(lhs) && is_empty_container(rhs)) {
        return fallback();
    }
    match pos.node(rhs.or(lhs)) {
        Node::Leaf => fallback(),
        Node::Object => {
            let (Some(l), Some(r)) = (
                lhs.and_then(Value::as_object),
                rhs.and_then(Value::as_object),
            ) else {
                return fallback().map(|v| drop_nulls(v, pos, depth));
            };
            let mut out = Map::new();
            for (key, lv) in l {
                if let Some(v) = merge(Some(lv), r.get(key), pos.member(key), depth + 1) {
                    out.insert(key.clone(), v);
                }
            }
            for (key, rv) in r {
                if l.contains_key(key) || rv.is_null() {
                    continue;
                }
                if let Some(v) = merge(None, Some(rv), pos.member(key), depth + 1) {
                    out.insert(key.clone(), v);
                }
            }
            out.retain(|_, v| !v.is_null());
            Some(Value::Object(out))
        }
        Node::Items(identity) => {
            let (Some(l), Some(r)) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array))
            else {
                return fallback();
            };
            Some(Value::Array(merge_items(&identity, l, r, pos, depth)))
        }
    }
}

fn drop_nulls(v: Value, pos: Pos<'_>, depth: usize) -> Value {
    match v {
        Value::Object(m) if depth < MAX_DEPTH => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let child = pos.member(&k);
                    (k, drop_nulls(v, child, depth + 1))
                })
                .collect(),
        ),
        other => other,
    }
}

/// Upstream's list merge order: items only the live list has stay where they were, the
/// configuration's items come in its order, and shared items are merged in place.
fn merge_items(
    identity: &ItemIdentity<'_>,
    lhs: &[Value],
    rhs: &[Value],
    pos: Pos<'_>,
    depth: usize,
) -> Vec<Value> {
    let l = index_items(identity, lhs);
    let r = index_items(identity, rhs);
    let in_r = |pe: &PathElement| find_item(&r, pe);
    let in_l = |pe: &PathElement| find_item(&l, pe);
    let shared: Vec<&PathElement> = r
        .iter()
        .map(|(pe, _)| pe)
        .filter(|pe| in_l(pe).is_some())
        .collect();
    let mut next_shared = shared.iter().copied();
    let mut want = next_shared.next();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let mut push = |lv: Option<&Value>, rv: Option<&Value>| {
        if let Some(v) = merge(lv, rv, pos.item(), depth + 1) {
            out.push(v);
        }
    };
    let (mut li, mut ri) = (0, 0);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            let pe = &l[li].0;
            if *pe == r[ri].0 {
                push(Some(l[li].1), Some(r[ri].1));
                li += 1;
                ri += 1;
                want = next_shared.next();
                continue;
            }
            if in_r(pe).is_some() && want.is_some_and(|w| w != pe) {
                li += 1;
                continue;
            }
        }
        if li < l.len() && in_r(&l[li].0).is_none() {
            push(Some(l[li].1), None);
            li += 1;
            continue;
        }
        if ri < r.len() {
            let pe = &r[ri].0;
            push(in_l(pe), Some(r[ri].1));
            ri += 1;
            if want == Some(pe) {
                want = next_shared.next();
            }
        } else {
            // Only shared items are left on the live side; they were merged already.
            li += 1;
        }
    }
    out
}

/// Removes the members of `set` (whole subtrees) from `value`. Objects and lists that
/// become empty through the removal are removed too. Returns whether `value` is now empty.
pub(crate) fn remove(value: &mut Value, set: &Set, pos: Pos<'_>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (pos.node(Some(value)), value) {
        (Node::Object, Value::Object(map)) => {
            let before = map.len();
            map.retain(|k, _| !set.is_member(&PathElement::Field(k.clone())));
            let mut changed = map.len() != before;
            for (pe, sub) in set.children() {
                let PathElement::Field(key) = pe else {
                    continue;
                };
                let child_pos = pos.member(key);
                if map
                    .get_mut(key)
                    .is_some_and(|child| remove(child, sub, child_pos, depth + 1))
                {
                    map.shift_remove(key);
                    changed = true;
                }
            }
            changed && map.is_empty()
        }
        (Node::Items(identity), Value::Array(items)) => {
            let before = items.len();
            let elements: Vec<PathElement> = items
                .iter()
                .enumerate()
                .map(|(i, v)| super::typed::item_element(&identity, i, v))
                .collect();
            let mut keep = Vec::with_capacity(items.len());
            for (item, pe) in std::mem::take(items).into_iter().zip(elements) {
                let mut item = item;
                if set.is_member(&pe) {
                    continue;
                }
                if set
                    .child(&pe)
                    .is_some_and(|sub| remove(&mut item, sub, pos.item(), depth + 1))
                {
                    continue;
                }
                keep.push(item);
            }
            *items = keep;
            items.len() != before && items.is_empty()
        }
        _ => false,
    }
}
