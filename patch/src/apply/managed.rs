//! `metadata.managedFields`: decoding the entries into field sets per manager, encoding
//! them back in upstream's order, and the 409 an apply gets when it would take fields
//! other managers own.

use machinery::status::{ApiError, Cause, Details};
use serde_json::{Map, Value, json};

use crate::fieldpath::encoding::{from_fields_v1, to_fields_v1};
use crate::fieldpath::{Path, Set, path_string};

/// `operation` of an entry written by server-side apply.
pub const APPLY: &str = "Apply";
/// `operation` of an entry written by create, update and the other patch types.
pub const UPDATE: &str = "Update";

/// One manager's entry: who, how, at which version, when, and what it owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    /// The field manager's name (`kubectl`, `kube-controller-manager`, ...).
    pub name: String,
    /// [`APPLY`] or [`UPDATE`].
    pub operation: String,
    /// The API version the fields were set through.
    pub api_version: String,
    /// The subresource written (`status`), or empty.
    pub subresource: String,
    /// When the manager last changed the object (RFC 3339), if known.
    pub time: Option<String>,
    /// The fields it owns.
    pub set: Set,
}

impl Manager {
    /// Whether two entries are the same manager as upstream identifies them: appliers by
    /// name (and subresource), updaters by name, version and subresource.
    pub fn same_identity(&self, other: &Manager) -> bool {
        self.name == other.name
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == APPLY || self.api_version == other.api_version)
    }

    /// The manager as upstream prints it in conflict messages.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.name);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// Decodes `metadata.managedFields` of `object`; absent or null is no managers.
pub fn decode(object: &Value) -> Result<Vec<Manager>, String> {
    let entries = match object.get("metadata").and_then(|m| m.get("managedFields")) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err("managedFields must be a list".into()),
    };
    let mut out: Vec<Manager> = Vec::with_capacity(entries.len());
    for entry in entries {
        let text = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let fields_type = text("fieldsType");
        if fields_type != "FieldsV1" {
            return Err(format!("unsupported fieldsType {fields_type:?}"));
        }
        let set = match entry.get("fieldsV1") {
            None | Some(Value::Null) => Set::new(),
            Some(v) => from_fields_v1(v)?,
        };
        let manager = Manager {
            name: text("manager"),
            operation: text("operation"),
            api_version: text("apiVersion"),
            subresource: text("subresource"),
            time: entry
                .get("time")
                .and_then(Value::as_str)
                .map(str::to_string),
            set,
        };
        if manager.operation != APPLY && manager.operation != UPDATE {
            return Err(format!("unknown operation {:?}", manager.operation));
        }
        if out.iter().any(|m| m.same_identity(&manager)) {
            return Err(format!("duplicate entry for manager {:?}", manager.name));
        }
        out.push(manager);
    }
    Ok(out)
}

fn time_key(m: &Manager) -> &str {
    // RFC 3339 UTC times with whole seconds sort as text; unknown times sort first.
    m.time.as_deref().unwrap_or("")
}

/// Encodes managers as `managedFields` entries, in upstream's order (appliers first, then
/// by time, name, version and subresource) and without managers that own nothing.
pub fn encode(managers: &[Manager]) -> Value {
    let mut sorted: Vec<&Manager> = managers.iter().filter(|m| !m.set.is_empty()).collect();
    sorted.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| time_key(p).cmp(time_key(q)))
            .then_with(|| p.name.cmp(&q.name))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    let entries: Vec<Value> = sorted
        .into_iter()
        .map(|m| {
            let mut e = Map::new();
            e.insert("manager".into(), json!(m.name));
            e.insert("operation".into(), json!(m.operation));
            e.insert("apiVersion".into(), json!(m.api_version));
            if let Some(t) = &m.time {
                e.insert("time".into(), json!(t));
            }
            e.insert("fieldsType".into(), json!("FieldsV1"));
            e.insert("fieldsV1".into(), to_fields_v1(&m.set));
            if !m.subresource.is_empty() {
                e.insert("subresource".into(), json!(m.subresource));
            }
            Value::Object(e)
        })
        .collect();
    Value::Array(entries)
}

/// Writes `managers` into `object.metadata.managedFields` (removing the field when no
/// manager owns anything).
pub fn store(object: &mut Value, managers: &[Manager]) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    match encode(managers) {
        Value::Array(entries) if entries.is_empty() => {
            meta.shift_remove("managedFields");
        }
        entries => {
            meta.insert("managedFields".into(), entries);
        }
    }
}

/// The 409 for an apply that would change fields other managers own, worded as upstream
/// (one cause per conflicting field, reason `FieldManagerConflict`).
pub fn conflict_error(conflicts: &[(&Manager, Path)]) -> ApiError {
    let mut sorted: Vec<&(&Manager, Path)> = conflicts.iter().collect();
    sorted.sort_by(|a, b| {
        a.0.display()
            .cmp(&b.0.display())
            .then_with(|| a.1.cmp(&b.1))
    });
    let causes = sorted
        .iter()
        .map(|(m, p)| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", m.display()),
            field: path_string(p),
        })
        .collect();
    let message = match sorted.as_slice() {
        [(m, p)] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            m.display(),
            path_string(p)
        ),
        _ => {
            let mut lines = Vec::new();
            let mut last: Option<String> = None;
            for (m, p) in &sorted {
                let who = m.display();
                if last.as_ref() != Some(&who) {
                    lines.push(format!("conflicts with {who}:"));
                    last = Some(who);
                }
                lines.push(format!("- {}", path_string(p)));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                sorted.len(),
                lines.join("\n")
            )
        }
    };
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(Box::new(Details {
        causes,
        ..Details::default()
    }));
    e
}
