//! Server-side printing: the `meta.k8s.io/v1` `Table` a client gets when it asks for
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (what `kubectl get` prints).
//!
//! Each API group has one module holding its resources' column definitions and cell
//! functions, matching upstream's columns, priorities and cell formatting exactly.
//! Resources without a printer get upstream's default table (`Name`, `Created At`).
//! Like upstream's server, rows always carry every column (including `-o wide` ones,
//! `priority: 1`); the client decides which to show.
//!
//! This crate only formats: objects arrive as JSON values (any served version), and it
//! never fails — missing fields print as upstream prints zero values.

#![warn(missing_docs)]

mod admission;
mod apps;
mod autoscaling;
mod batch;
mod cluster;
mod config;
mod core;
pub mod duration;
mod events;
mod format;
mod networking;
mod pod;
mod quantity;
mod rbac;
mod storage;
mod volumes;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub use duration::{human_duration, short_human_duration};

/// One column of a table (`metav1.TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Header text; kubectl upper-cases it (`Nominated Node` -> `NOMINATED NODE`).
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: &'static str,
    /// OpenAPI format hint; `name` marks the column holding the object's name.
    pub format: &'static str,
    /// Human-readable meaning of the column.
    pub description: &'static str,
    /// 0 for default output, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The column as a `TableColumnDefinition` JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Shorthand for a default-priority column.
pub(crate) const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// Shorthand for a `-o wide` column.
pub(crate) const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

/// The `Name` column every printer starts with.
pub(crate) const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};

/// The `Age` column.
pub(crate) const AGE: Column = col("Age", "string", AGE_DESC);

const NAME_DESC: &str = "Name of the object, unique within its namespace (or the cluster).";
const AGE_DESC: &str = "Time since the object was created (its creationTimestamp).";

/// Column definitions and the row function of one resource.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub cells: fn(&Value, DateTime<Utc>) -> Vec<Value>,
}

/// The default table of resources without a printer (upstream's default convertor).
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Created At",
        "date",
        "Time the object was created (its creationTimestamp), in RFC 3339.",
    ),
];

fn default_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    // upstream formats the zero time for a missing timestamp
    let created = format::time(&obj["metadata"]["creationTimestamp"])
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    vec![format::name(obj), Value::from(created)]
}

static DEFAULT: Printer = Printer {
    columns: DEFAULT_COLUMNS,
    cells: default_cells,
};

/// The printer of a resource, by API group (`""` for core) and plural resource name.
fn printer(group: &str, resource: &str) -> &'static Printer {
    let found = match group {
        "" => core::printer(resource)
            .or_else(|| pod::printer(resource))
            .or_else(|| events::printer(resource)),
        "events.k8s.io" => events::printer(resource),
        "apps" => apps::printer(resource),
        "batch" => batch::printer(resource),
        "autoscaling" => autoscaling::printer(resource),
        "rbac.authorization.k8s.io" => rbac::printer(resource),
        "networking.k8s.io" | "discovery.k8s.io" => networking::printer(group, resource),
        "storage.k8s.io" => storage::printer(resource),
        "admissionregistration.k8s.io" => admission::printer(resource),
        _ => cluster::printer(group, resource),
    };
    found.unwrap_or(&DEFAULT)
}

/// Columns of a resource's table, by API group (`""` for core) and plural resource name.
/// Resources without a dedicated printer get the default `Name`, `Created At`.
pub fn columns(group: &str, resource: &str) -> Vec<Column> {
    printer(group, resource).columns.to_vec()
}

/// Cells of one object's row, in the order of [`columns`]. `now` is the server's clock,
/// used for ages and durations.
pub fn cells(group: &str, resource: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    (printer(group, resource).cells)(obj, now)
}

/// Whether `value` is a valid `includeObject` table option (`None`, `Metadata`, `Object`,
/// or empty for the default); upstream answers 400 BadRequest for anything else.
pub fn valid_include_object(value: &str) -> bool {
    matches!(value, "" | "None" | "Metadata" | "Object")
}

/// The full `meta.k8s.io/v1` `Table` for `objects` (one object for a `get`, the items
/// for a `list`). `list_meta` supplies `resourceVersion`, `continue` and
/// `remainingItemCount` (empty ones are left out). `include_object` chooses each row's
/// `object`: `Object` (the object itself), `None` (null), or `Metadata` (the default,
/// also used for unknown values): a `PartialObjectMetadata` with the object's metadata.
pub fn table(
    group: &str,
    resource: &str,
    objects: &[Value],
    list_meta: Value,
    include_object: &str,
    now: DateTime<Utc>,
) -> Value {
    let printer = printer(group, resource);
    let mut ordered: Vec<&Value> = objects.iter().collect();
    if group == "flowcontrol.apiserver.k8s.io" && resource == "flowschemas" {
        cluster::sort_flow_schemas(&mut ordered);
    }
    let rows: Vec<Value> = ordered
        .into_iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array((printer.cells)(obj, now)));
            if group.is_empty()
                && resource == "pods"
                && let Some(conditions) = pod::row_conditions(obj)
            {
                row.insert("conditions".into(), conditions);
            }
            row.insert("object".into(), row_object(obj, include_object));
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": table_metadata(list_meta),
        "columnDefinitions": printer.columns.iter().map(Column::to_json).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// `ListMeta` without empty fields, as Go's `omitempty` would serialize it.
fn table_metadata(list_meta: Value) -> Value {
    let Value::Object(map) = list_meta else {
        return json!({});
    };
    let kept = map
        .into_iter()
        .filter(|(_, v)| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            _ => true,
        })
        .collect();
    Value::Object(kept)
}

fn row_object(obj: &Value, include_object: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// A Table from columns and rows computed elsewhere (custom resources' printer columns):
/// each row is its cells and the object it shows.
pub fn table_from(
    column_definitions: Vec<Value>,
    rows: Vec<(Vec<Value>, &Value)>,
    list_meta: Value,
    include_object: &str,
) -> Value {
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(cells, obj)| json!({"cells": cells, "object": row_object(obj, include_object)}))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": table_metadata(list_meta),
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests;
