//! JSON patch (RFC 6902) and JSON merge patch (RFC 7386) on objects in their JSON form,
//! with upstream's status codes for bodies that cannot be decoded or applied.

use machinery::status::{ApiError, FieldError};
use serde_json::Value;

use crate::errors;

/// The most operations upstream accepts in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies an RFC 6902 JSON patch (`application/json-patch+json`) to `doc`.
///
/// A body that is not a JSON array of operations is a 400 `BadRequest`; more than
/// [`MAX_JSON_PATCH_OPERATIONS`] operations is a 413; an operation that cannot be applied
/// (unknown `op`, missing path, failed `test`) is upstream's generic 422 `Invalid`.
pub fn json_patch(doc: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let body: Value =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let ops = match body {
        Value::Null => Vec::new(),
        Value::Array(ops) => ops,
        other => {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                errors::json_kind_word(&other)
            )));
        }
    };
    if let Some(bad) = ops.iter().find(|op| !op.is_object()) {
        return Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            errors::json_kind_word(bad)
        )));
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(errors::too_many_operations(
            MAX_JSON_PATCH_OPERATIONS,
            ops.len(),
        ));
    }
    let mut parsed = Vec::with_capacity(ops.len());
    for op in ops {
        // Upstream decodes operations lazily and fails them at apply time, as a 422.
        let op: json_patch::PatchOperation =
            serde_json::from_value(op).map_err(|_| errors::unprocessable())?;
        parsed.push(op);
    }
    let mut out = doc.clone();
    json_patch::patch(&mut out, &parsed).map_err(|_| errors::unprocessable())?;
    Ok(out)
}

/// Applies an RFC 7386 JSON merge patch (`application/merge-patch+json`) to `doc`.
///
/// `null` members delete, objects merge recursively, anything else replaces. A body that
/// is not JSON, or is `null` or a scalar, is upstream's 400 "Invalid JSON Patch"; an array
/// body replaces the whole object and so cannot decode as one (422 `Invalid`).
pub fn merge_patch(doc: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let bad_patch = || ApiError::bad_request("Invalid JSON Patch");
    let patch: Value = serde_json::from_slice(patch).map_err(|_| bad_patch())?;
    match &patch {
        Value::Object(_) => {
            let mut out = doc.clone();
            json_patch::merge(&mut out, &patch);
            Ok(out)
        }
        Value::Array(_) => Err(ApiError::invalid(
            "",
            "",
            "",
            &[FieldError::invalid(
                "patch",
                Value::String(patch.to_string()),
                "json: cannot unmarshal array into Go value of type map[string]interface {}",
            )],
        )),
        _ => Err(bad_patch()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}})
    }

    #[test]
    fn json_patch_add_replace_remove() {
        let p = br#"[{"op":"add","path":"/data/new","value":"x"},{"op":"replace","path":"/data/k","value":"w"},{"op":"remove","path":"/metadata/labels/a"}]"#;
        let out = json_patch(&cm(), p).unwrap();
        assert_eq!(out["data"], json!({"k": "w", "new": "x"}));
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
    }

    #[test]
    fn json_patch_failed_test_is_generic_422() {
        let p =
            br#"[{"op":"test","path":"/data/k","value":"nope"},{"op":"remove","path":"/data/k"}]"#;
        let e = json_patch(&cm(), p).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.reason, "Invalid");
        assert_eq!(
            e.message,
            "the server rejected our request due to an error in our request"
        );
        let p = br#"[{"op":"test","path":"/data/k","value":"v"}]"#;
        assert_eq!(json_patch(&cm(), p).unwrap(), cm());
    }

    #[test]
    fn json_patch_unknown_op_and_missing_path_are_422() {
        assert_eq!(
            json_patch(&cm(), br#"[{"op":"frob","path":"/a"}]"#)
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            json_patch(&cm(), br#"[{"op":"remove","path":"/nope"}]"#)
                .unwrap_err()
                .code,
            422
        );
    }

    #[test]
    fn json_patch_undecodable_is_400() {
        let e = json_patch(&cm(), br#"{"op":"add"}"#).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        assert_eq!(json_patch(&cm(), b"[").unwrap_err().code, 400);
    }

    #[test]
    fn json_patch_too_many_operations_is_413() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/kind", "value": "ConfigMap"}))
            .collect();
        let body = serde_json::to_vec(&ops).unwrap();
        let e = json_patch(&cm(), &body).unwrap_err();
        assert_eq!(e.code, 413);
        assert!(e.message.ends_with("is 10000, got 10001"), "{}", e.message);
    }

    #[test]
    fn merge_patch_null_deletes_and_objects_merge() {
        let out = merge_patch(
            &cm(),
            br#"{"metadata":{"labels":{"a":null,"c":"3"}},"data":null}"#,
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert!(out.get("data").is_none());
        assert_eq!(out["metadata"]["name"], "c");
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let doc = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = merge_patch(&doc, br#"{"metadata":{"finalizers":["c"]}}"#).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c"]));
    }

    #[test]
    fn merge_patch_bad_bodies() {
        for body in [&b"{"[..], b"null", b"\"x\"", b"3"] {
            let e = merge_patch(&cm(), body).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (400, "Invalid JSON Patch"));
        }
        assert_eq!(merge_patch(&cm(), b"[1]").unwrap_err().code, 422);
    }
}
