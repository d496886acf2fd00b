//! Parser for `extensions.table`, the one place that records which fields of the built-in
//! types carry patch strategies, merge keys, list types and map types.

use std::collections::HashMap;
use std::sync::LazyLock;

/// How server-side apply treats the items of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// The list is one value: whoever sets it owns all of it.
    Atomic,
    /// Items are scalars, each owned on its own (`v:` path elements).
    Set,
    /// Items are objects identified by these key fields (`k:` path elements).
    Map(Vec<String>),
}

/// How server-side apply treats a map or a struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// One value: replaced and owned as a whole.
    Atomic,
    /// Each key is owned and merged on its own (the default).
    Granular,
}

/// The patch and merge metadata of one field, as the OpenAPI `x-kubernetes-*` extensions
/// say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `x-kubernetes-patch-strategy`: `merge`, `replace`, `retainKeys` or a comma list.
    pub patch_strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<String>,
    /// `x-kubernetes-list-type` with `x-kubernetes-list-map-keys`.
    pub list_type: Option<ListType>,
    /// `x-kubernetes-map-type`.
    pub map_type: Option<MapType>,
}

impl Extensions {
    /// Whether the patch strategy includes `strategy` (`merge`, `replace`, `retainKeys`).
    pub fn has_strategy(&self, strategy: &str) -> bool {
        self.patch_strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|p| p == strategy))
    }
}

/// Metadata of the table, keyed by definition name then field name (`.` for the
/// definition itself).
pub type Table = HashMap<String, HashMap<String, Extensions>>;

static TEXT: &str = include_str!("extensions.table");

/// The parsed table (lines that do not parse are skipped; a test checks there are none).
pub static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut table = Table::new();
    for line in TEXT.lines() {
        if let Some((def, field, ext)) = parse_line(line) {
            table
                .entry(def.to_string())
                .or_default()
                .insert(field.to_string(), ext);
        }
    }
    table
});

/// Parses one table line; `None` for comments, blank lines and malformed lines.
pub fn parse_line(line: &str) -> Option<(&str, &str, Extensions)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut words = line.split_whitespace();
    let def = words.next()?;
    let field = words.next()?;
    let mut ext = Extensions::default();
    for word in words {
        let (name, value) = word.split_once('=')?;
        match name {
            "patch" => ext.patch_strategy = Some(value.to_string()),
            "key" => ext.merge_key = Some(value.to_string()),
            "list" => ext.list_type = Some(parse_list_type(value)?),
            "map" | "struct" => {
                ext.map_type = Some(match value {
                    "atomic" => MapType::Atomic,
                    "granular" => MapType::Granular,
                    _ => return None,
                })
            }
            _ => return None,
        }
    }
    Some((def, field, ext))
}

fn parse_list_type(value: &str) -> Option<ListType> {
    match value {
        "atomic" => Some(ListType::Atomic),
        "set" => Some(ListType::Set),
        _ => {
            let keys = value.strip_prefix("map(")?.strip_suffix(')')?;
            Some(ListType::Map(keys.split(',').map(str::to_string).collect()))
        }
    }
}

/// Every line of the table that has content but does not parse (for tests).
#[cfg(test)]
pub fn malformed_lines() -> Vec<&'static str> {
    TEXT.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
        .filter(|l| parse_line(l).is_none())
        .collect()
}
