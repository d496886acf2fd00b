//! Cell formatting shared by every printer: reading optional fields, ages, label maps and
//! selectors, container lists and "`a,b,c + N more...`" lists.
//!
//! Every accessor tolerates missing or mistyped fields (they read as empty/zero), so a
//! printer never fails on a partial object.

use chrono::{DateTime, Utc};
use machinery::labels::{Requirement, Selector};
use serde_json::Value;

use crate::duration::human_duration;

/// The string at `v`, or `""` when absent or not a string.
pub(crate) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The integer at `v`, or 0.
pub(crate) fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .unwrap_or(0)
}

/// The boolean at `v`, or false.
pub(crate) fn boolean(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

/// The array at `v`, or an empty slice.
pub(crate) fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Number of entries of the map at `v`.
pub(crate) fn map_len(v: &Value) -> usize {
    v.as_object().map(|m| m.len()).unwrap_or(0)
}

/// Whether an optional struct (a Go pointer) is set.
pub(crate) fn present(v: &Value) -> bool {
    v.is_object()
}

/// The string, or `default` when empty.
pub(crate) fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}

/// `metadata.name`.
pub(crate) fn name(obj: &Value) -> Value {
    Value::from(s(&obj["metadata"]["name"]))
}

/// A timestamp (RFC 3339, with or without fractional seconds); `None` when absent.
pub(crate) fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Time elapsed since `t` as `HumanDuration`, `<unknown>` when unset.
pub(crate) fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

/// The AGE cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    Value::from(since(time(&obj["metadata"]["creationTimestamp"]), now))
}

/// `True`/`False` for a set boolean, `<unset>` otherwise.
pub(crate) fn bool_ptr(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// A label map as `k1=v1,k2=v2` (keys sorted), `<none>` when empty.
pub(crate) fn labels(map: &Value) -> String {
    let mut pairs: Vec<(&String, &str)> = map
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k, s(v))).collect())
        .unwrap_or_default();
    pairs.sort();
    let out: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if out.is_empty() {
        "<none>".into()
    } else {
        out.join(",")
    }
}

/// A `metav1.LabelSelector` in selector syntax (`app=web,tier in (a,b)`); an absent or
/// empty selector prints as `""`. Errors when the selector does not compile.
pub(crate) fn selector_string(sel: &Value) -> Result<String, String> {
    if !sel.is_object() {
        return Ok(String::new());
    }
    let compiled = Selector::from_label_selector(sel)?;
    let parts: Vec<String> = compiled
        .requirements
        .iter()
        .map(requirement_string)
        .collect();
    Ok(parts.join(","))
}

/// A `metav1.LabelSelector` for display: `<none>` when it selects by nothing,
/// `<error>` when it does not compile.
pub(crate) fn label_selector(sel: &Value) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(_) => "<error>".into(),
    }
}

fn sorted_values(values: &[String]) -> String {
    let mut v: Vec<&str> = values.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.join(",")
}

fn requirement_string(r: &Requirement) -> String {
    match r {
        Requirement::Exists(k) => k.clone(),
        Requirement::DoesNotExist(k) => format!("!{k}"),
        Requirement::Equals(k, v) => format!("{k}={v}"),
        Requirement::NotEquals(k, v) => format!("{k}!={v}"),
        Requirement::In(k, vs) => format!("{k} in ({})", sorted_values(vs)),
        Requirement::NotIn(k, vs) => format!("{k} notin ({})", sorted_values(vs)),
        Requirement::GreaterThan(k, n) => format!("{k}>{n}"),
        Requirement::LessThan(k, n) => format!("{k}<{n}"),
    }
}

/// Container names and images of a pod spec, each comma-joined.
pub(crate) fn containers(pod_spec: &Value) -> (Value, Value) {
    let list = arr(&pod_spec["containers"]);
    let names: Vec<&str> = list.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| s(&c["image"])).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// At most `max` items joined by `,`, then ` + N more...`; `<unset>` when empty.
pub(crate) fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if items.len() > max {
        return format!("{shown} + {} more...", items.len() - max);
    }
    if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

/// Go's `net.JoinHostPort`: brackets around hosts containing a colon (IPv6).
pub(crate) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The first condition of `conditions` with the given type.
pub(crate) fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    arr(conditions).iter().find(|c| s(&c["type"]) == type_)
}

/// The `OwnerReference` marked `controller: true`, if any.
pub(crate) fn controller_of(obj: &Value) -> Option<&Value> {
    arr(&obj["metadata"]["ownerReferences"])
        .iter()
        .find(|r| boolean(&r["controller"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_maps() {
        assert_eq!(
            labels(&json!({"tier": "db", "app": "web"})),
            "app=web,tier=db"
        );
        assert_eq!(labels(&json!({})), "<none>");
        assert_eq!(labels(&Value::Null), "<none>");
    }

    #[test]
    fn label_selectors() {
        let sel = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "zone", "operator": "Exists"}
            ]
        });
        assert_eq!(
            label_selector(&sel),
            "app=web,!canary,env notin (prod),tier in (a,b),zone"
        );
        assert_eq!(label_selector(&json!({})), "<none>");
        assert_eq!(label_selector(&Value::Null), "<none>");
        assert_eq!(
            label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})),
            "<error>"
        );
    }

    #[test]
    fn more_lists() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&items[..2], 3), "a,b");
        assert_eq!(list_with_more(&[], 3), "<unset>");
    }

    #[test]
    fn host_ports() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 443), "[fd00::1]:443");
    }
}
