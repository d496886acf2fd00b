//! Printer columns of custom resources (upstream `tableconvertor`) and the values of
//! `selectableFields` (upstream `customResourceStrategy.selectableFields`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::gofmt;
use crate::jsonpath::JsonPath;

/// One `additionalPrinterColumns` entry of a served version.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// The description of `metadata.creationTimestamp`, shown for the default Age column.
const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The columns `version` of `crd` prints after Name: its `additionalPrinterColumns`,
/// or upstream's default `Age` column when it has none.
pub fn columns_for_version(crd: &Value, version: &str) -> Vec<Column> {
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    let Some(v) = versions.and_then(|vs| vs.iter().find(|v| v["name"] == version)) else {
        return vec![];
    };
    let s = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let columns: Vec<Column> = v
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| Column {
                    name: s(c, "name"),
                    type_: s(c, "type"),
                    format: s(c, "format"),
                    description: s(c, "description"),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: s(c, "jsonPath"),
                })
                .collect()
        })
        .unwrap_or_default();
    if !columns.is_empty() {
        return columns;
    }
    vec![Column {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: CREATION_TIMESTAMP_DESCRIPTION.into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }]
}

/// The Table cell of `col` for `obj`: the first value the path selects, rendered by the
/// column type (strings print as JSONPath prints; dates as ages like `5m`); `null` when
/// nothing is found or the value does not fit the type.
pub fn cell(obj: &Value, col: &Column) -> Value {
    cell_at(obj, col, Utc::now())
}

fn cell_at(obj: &Value, col: &Column, now: DateTime<Utc>) -> Value {
    let Ok(path) = JsonPath::parse(&col.json_path) else {
        return Value::Null;
    };
    let Some(v) = path.find(obj).into_iter().next() else {
        return Value::Null;
    };
    if v.is_null() {
        return Value::Null;
    }
    match col.type_.as_str() {
        "string" => Value::String(gofmt::sprint(v)),
        "integer" => match v {
            Value::Number(n) => n
                .as_i64()
                .map(Value::from)
                .unwrap_or_else(|| Value::from(n.as_f64().unwrap_or(0.0) as i64)),
            _ => Value::Null,
        },
        "number" => v.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::Bool).unwrap_or(Value::Null),
        "date" => match v.as_str() {
            Some(s) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Value::String(printers::human_duration(now - t.with_timezone(&Utc))),
                Err(_) => Value::String("<invalid>".into()),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// The value a `selectableFields` entry has on `obj`, as upstream puts it in the field
/// set (`fmt.Sprint` of the value; `""` when the path finds nothing). `None` only when
/// `json_path` does not parse.
pub fn selectable_field_value(obj: &Value, json_path: &str) -> Option<String> {
    let path = JsonPath::parse(json_path).ok()?;
    Some(match path.find(obj).into_iter().next() {
        Some(v) if !v.is_null() => gofmt::sprint(v),
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(columns: Value) -> Value {
        json!({"spec": {"versions": [{"name": "v1", "additionalPrinterColumns": columns}]}})
    }

    fn col(type_: &str, path: &str) -> Column {
        Column {
            name: "C".into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: path.into(),
        }
    }

    // Upstream tableconvertor: serveDefaultColumnsIfEmpty adds Age.
    #[test]
    fn default_age_column() {
        let cols = columns_for_version(&crd(json!([])), "v1");
        assert_eq!(cols.len(), 1);
        assert_eq!(
            (cols[0].name.as_str(), cols[0].type_.as_str()),
            ("Age", "date")
        );
        assert_eq!(cols[0].json_path, ".metadata.creationTimestamp");
        let cols = columns_for_version(
            &crd(
                json!([{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1}]),
            ),
            "v1",
        );
        assert_eq!(cols[0].name, "Replicas");
        assert_eq!(cols[0].priority, 1);
        assert!(columns_for_version(&crd(json!([])), "v2").is_empty());
    }

    // Upstream tableconvertor cellForJSONValue.
    #[test]
    fn cells_by_type() {
        let obj = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "ratio": 1.5, "on": true, "tags": ["a", "b"], "m": {"k": 1}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(cell(&obj, &col("integer", ".spec.replicas")), json!(3));
        assert_eq!(cell(&obj, &col("integer", ".spec.ratio")), json!(1));
        assert_eq!(cell(&obj, &col("number", ".spec.replicas")), json!(3.0));
        assert_eq!(cell(&obj, &col("boolean", ".spec.on")), json!(true));
        assert_eq!(cell(&obj, &col("boolean", ".spec.replicas")), Value::Null);
        assert_eq!(cell(&obj, &col("string", ".spec.replicas")), json!("3"));
        assert_eq!(cell(&obj, &col("string", ".spec.tags")), json!("[a b]"));
        assert_eq!(cell(&obj, &col("string", ".spec.m")), json!("map[k:1]"));
        assert_eq!(cell(&obj, &col("string", ".spec.missing")), Value::Null);
        assert_eq!(
            cell(
                &obj,
                &col("string", r#".status.conditions[?(@.type=="Ready")].status"#)
            ),
            json!("True")
        );
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            cell_at(&obj, &col("date", ".metadata.creationTimestamp"), now),
            json!("5m")
        );
        assert_eq!(cell_at(&obj, &col("date", ".spec.tags"), now), Value::Null);
    }

    #[test]
    fn selectable_fields() {
        let obj = json!({"spec": {"color": "red", "size": 3, "on": false}});
        assert_eq!(
            selectable_field_value(&obj, ".spec.color").as_deref(),
            Some("red")
        );
        assert_eq!(
            selectable_field_value(&obj, ".spec.size").as_deref(),
            Some("3")
        );
        assert_eq!(
            selectable_field_value(&obj, ".spec.on").as_deref(),
            Some("false")
        );
        assert_eq!(
            selectable_field_value(&obj, ".spec.none").as_deref(),
            Some("")
        );
    }
}
