//! The `metav1.Status` errors that patching reports, worded and coded as upstream's patch
//! handler and strategic-merge library report them.
//!
//! Upstream sorts patch failures into three buckets: a body that cannot be decoded is a
//! 400 `BadRequest`; a patch that decodes but cannot be applied is a 422 whose message is
//! the generic "rejected our request" sentence (the detail is not shown to clients); and
//! anything the strategic-merge library reports without a typed error reaches the client
//! as a bare 500 with the library's message and no reason.

use machinery::status::ApiError;
use serde_json::Value;

/// The generic 422 upstream builds with `NewGenericServerResponse`: reason `Invalid`, a
/// fixed message, and empty details.
pub fn unprocessable() -> ApiError {
    let mut e = ApiError::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    e.details = Some(Box::default());
    e
}

/// A 500 as upstream's error writer renders an error that is not a `metav1.Status`:
/// no reason, the error text as the message.
pub fn untyped(message: impl Into<String>) -> ApiError {
    ApiError::new(500, "", message)
}

/// The 413 for a JSON patch with more operations than the server accepts.
pub fn too_many_operations(max: usize, got: usize) -> ApiError {
    ApiError::new(
        413,
        "RequestEntityTooLarge",
        format!(
            "Request entity too large: The allowed maximum operations in a JSON patch is {max}, got {got}"
        ),
    )
}

/// The 415 a resource without strategic-merge metadata (a custom resource, or any
/// definition this crate does not know) answers to `application/strategic-merge-patch+json`.
/// The message lists the patch types such a resource does accept.
pub fn strategic_merge_patch_unsupported() -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )
}

/// Go's rendering of a JSON value with `%v` (`map[a:1 b:[x y]]`), which upstream's
/// strategic-merge errors embed in their messages.
pub fn go_format(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_format(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's name for the dynamic type of a decoded JSON value, as `reflect.TypeOf` prints it.
pub fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The JSON kind word Go's decoder uses in "cannot unmarshal X into ..." errors.
pub fn json_kind_word(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_format_sorts_map_keys() {
        assert_eq!(
            go_format(&json!({"b": [1, "x"], "a": null})),
            "map[a:<nil> b:[1 x]]"
        );
    }

    #[test]
    fn unprocessable_has_empty_details() {
        let s = unprocessable().to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(s["details"], json!({}));
    }
}
