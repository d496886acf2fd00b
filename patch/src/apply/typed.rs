//! How server-side apply sees a value at some position: a leaf, a granular struct or map,
//! or a list whose items are owned one by one; and the path element of a list item.
//!
//! Positions without a schema (custom resources, free-form fields) are "deduced" as
//! upstream does: objects are granular maps, lists are atomic.

use serde_json::Value;

use crate::fieldpath::PathElement;
use crate::schema::{self, Extensions, ListType, MapType, Shape};

/// A position in an object: its shape and the metadata of the field holding it.
#[derive(Clone, Copy)]
pub(crate) struct Pos<'a> {
    pub shape: &'a Shape,
    pub ext: &'a Extensions,
}

/// What apply does with the value at a position.
pub(crate) enum Node<'a> {
    /// Compared, owned and replaced as a whole.
    Leaf,
    /// An object whose members are owned one by one.
    Object,
    /// A list whose items are owned one by one, identified by key fields or by value.
    Items(ItemIdentity<'a>),
}

/// How list items are told apart.
pub(crate) enum ItemIdentity<'a> {
    Keys(&'a [String]),
    Value,
}

static NO_EXT: std::sync::LazyLock<Extensions> = std::sync::LazyLock::new(Extensions::default);
static UNTYPED: Shape = Shape::Untyped;

impl<'a> Pos<'a> {
    /// The root position of an object of `shape`.
    pub fn root(shape: &'a Shape) -> Self {
        Pos {
            shape,
            ext: &NO_EXT,
        }
    }

    /// Classifies the position; `sample` decides for positions without a schema.
    pub fn node(&self, sample: Option<&Value>) -> Node<'a> {
        match self.shape {
            Shape::Scalar => Node::Leaf,
            Shape::Untyped => match sample {
                Some(Value::Object(_)) => Node::Object,
                _ => Node::Leaf,
            },
            Shape::Struct(_) => {
                let atomic = self.shape.definition().is_some_and(|d| d.atomic);
                if atomic || self.ext.map_type == Some(MapType::Atomic) {
                    Node::Leaf
                } else {
                    Node::Object
                }
            }
            Shape::Map(_) => {
                if self.ext.map_type == Some(MapType::Atomic) {
                    Node::Leaf
                } else {
                    Node::Object
                }
            }
            Shape::List(_) => match &self.ext.list_type {
                Some(ListType::Map(keys)) => Node::Items(ItemIdentity::Keys(keys)),
                Some(ListType::Set) => Node::Items(ItemIdentity::Value),
                Some(ListType::Atomic) => Node::Leaf,
                // Lists the table does not type: the patch strategy decides (as upstream's
                // schema conversion does), here owned-by-value when merging without a key.
                None => match schema::effective_list_type(self.ext) {
                    ListType::Set => Node::Items(ItemIdentity::Value),
                    _ => Node::Leaf,
                },
            },
        }
    }

    /// The position of member `key` of an object here.
    pub fn member(&self, key: &str) -> Pos<'a> {
        let (shape, ext) = self.shape.member(key);
        Pos { shape, ext }
    }

    /// Whether `key` is a declared struct field (rather than a map key) here.
    pub fn declares(&self, key: &str) -> bool {
        self.shape.declares(key)
    }

    /// The position of the items of a list here.
    pub fn item(&self) -> Pos<'a> {
        match self.shape {
            Shape::List(inner) => Pos {
                shape: inner,
                ext: &NO_EXT,
            },
            _ => Pos {
                shape: &UNTYPED,
                ext: &NO_EXT,
            },
        }
    }
}

/// Defaults upstream's schemas give to list-map key fields, used when an item omits them.
fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| Value::String("TCP".into()))
}

/// The path element of item `index` of a list whose items are identified as `identity`.
pub(crate) fn item_element(identity: &ItemIdentity<'_>, index: usize, item: &Value) -> PathElement {
    match identity {
        ItemIdentity::Value => PathElement::Value(item.clone()),
        ItemIdentity::Keys(keys) => {
            let Value::Object(map) = item else {
                return PathElement::Index(index);
            };
            let mut fields: Vec<(String, Value)> = keys
                .iter()
                .filter_map(|k| {
                    map.get(k)
                        .cloned()
                        .or_else(|| key_default(k))
                        .map(|v| (k.clone(), v))
                })
                .collect();
            if fields.is_empty() {
                return PathElement::Index(index);
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            PathElement::Key(fields)
        }
    }
}

/// The items of a list with their path elements, first occurrence of each element only.
pub(crate) fn index_items<'v>(
    identity: &ItemIdentity<'_>,
    list: &'v [Value],
) -> Vec<(PathElement, &'v Value)> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let pe = item_element(identity, i, item);
        if !out.iter().any(|(seen, _)| *seen == pe) {
            out.push((pe, item));
        }
    }
    out
}
