//! The CRD conversion webhook call (upstream's apiextensions `webhookConverter`): sends
//! the objects not yet at the desired version in a `ConversionReview`, checks the answer,
//! and keeps the original metadata except labels and annotations, which the webhook may
//! change. Error strings are upstream's, so clients see the same messages.

use std::time::Duration;

use machinery::FieldError;
use machinery::names::{is_qualified_name, is_valid_label_value};
use serde_json::{Map, Value, json};

use crate::client::{self, CallError, ClientConfig, go_quote};
use crate::{Dispatcher, Resolver};

/// Upstream sets no deadline of its own on conversion calls; this bounds a hung webhook.
const CONVERSION_TIMEOUT: Duration = Duration::from_secs(30);
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Go's `schema.GroupVersionKind.String()` of an object: `group/version, Kind=Kind`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let gv = if api_version.contains('/') {
        api_version.to_string()
    } else {
        format!("/{api_version}")
    };
    format!("{gv}, Kind={kind}")
}

/// Go's `%T` of a decoded JSON value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.len() == 2 && o.contains_key("kind") && o.contains_key("apiVersion"))
}

/// Builds the `ConversionReview` for the first version of `versions` this crate knows.
fn review(
    versions: &[String],
    objects: &[&Value],
    desired: &str,
    uid: &str,
) -> Result<(String, Vec<u8>), String> {
    let api_version = versions
        .iter()
        .find_map(|v| match v.as_str() {
            "v1beta1" => Some("apiextensions.k8s.io/v1beta1"),
            "v1" => Some("apiextensions.k8s.io/v1"),
            _ => None,
        })
        .ok_or("no supported conversion review versions")?;
    let body = json!({
        "kind": "ConversionReview",
        "apiVersion": api_version,
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
    });
    Ok((
        api_version.to_string(),
        serde_json::to_vec(&body).map_err(|e| e.to_string())?,
    ))
}

/// Checks the answer and returns the converted objects (upstream's
/// `getConvertedObjectsFromResponse`).
fn converted_objects(api_version: &str, uid: &str, body: &[u8]) -> Result<Vec<Value>, String> {
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))?;
    if api_version == "apiextensions.k8s.io/v1" {
        let (got_version, got_kind) = (str_of(&review, "apiVersion"), str_of(&review, "kind"));
        if got_version != api_version || got_kind != "ConversionReview" {
            return Err(format!(
                "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {}",
                gvk_string(got_version, got_kind)
            ));
        }
    }
    let Some(resp) = review.get("response").filter(|r| r.is_object()) else {
        return Err("no response provided".into());
    };
    if api_version == "apiextensions.k8s.io/v1" && str_of(resp, "uid") != uid {
        return Err(format!(
            "expected response.uid={}, got {}",
            go_quote(uid),
            go_quote(str_of(resp, "uid"))
        ));
    }
    let result = resp.get("result").cloned().unwrap_or(Value::Null);
    let status = str_of(&result, "status");
    if status != "Success" {
        let message = str_of(&result, "message");
        if !message.is_empty() {
            return Err(message.to_string());
        }
        return Err(format!(
            "response.result.status was '{status}', not 'Success'"
        ));
    }
    Ok(resp
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Name, namespace, uid and kind must survive conversion unchanged.
fn validate_converted(original: &Value, converted: &Value) -> Result<(), String> {
    let meta = |v: &Value, k: &str| {
        v.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (ek, ak) = (str_of(original, "kind"), str_of(converted, "kind"));
    if ek != ak {
        return Err(format!("must have the same kind: {ek} != {ak}"));
    }
    for (field, label) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let (e, a) = (meta(original, field), meta(converted, field));
        if e != a {
            return Err(format!("must have the same {label}: {e} != {a}"));
        }
    }
    Ok(())
}

fn validate_labels(labels: &Map<String, Value>) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid("metadata.labels", k.clone().into(), msg).message());
        }
        let v = v.as_str().unwrap_or_default();
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid("metadata.labels", v.into(), msg).message());
        }
    }
    errs
}

fn validate_annotations(annotations: &Map<String, Value>) -> Vec<String> {
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in annotations {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid("metadata.annotation", k.clone().into(), msg).message());
        }
        total += k.len() + v.as_str().unwrap_or_default().len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(
            FieldError::too_long("metadata.annotation", TOTAL_ANNOTATION_SIZE_LIMIT).message(),
        );
    }
    errs
}

/// Copies the original metadata onto `converted`, keeping the webhook's labels and
/// annotations (validated when they changed), as upstream's `restoreObjectMeta`.
fn restore_object_meta(original: &Value, converted: &mut Value) -> Result<(), String> {
    let response_meta = match converted.get("metadata") {
        None => return Err("missing metadata in converted object".into()),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                go_type(other)
            ));
        }
    };
    let mut meta = match original.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for field in ["labels", "annotations"] {
        let response_field = match response_meta.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
                continue;
            }
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    go_type(other)
                ));
            }
        };
        for (k, v) in &response_field {
            if !v.is_string() {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string, but is {} in converted object",
                    go_type(v)
                ));
            }
        }
        let original_field = meta.get(field).and_then(Value::as_object);
        let changed = original_field.is_none_or(|o| *o != response_field);
        if changed {
            let errs = if field == "labels" {
                validate_labels(&response_field)
            } else {
                validate_annotations(&response_field)
            };
            match errs.len() {
                0 => {}
                1 => return Err(errs[0].clone()),
                _ => return Err(format!("[{}]", errs.join(", "))),
            }
        }
        meta.insert(field.into(), Value::Object(response_field));
    }
    converted["metadata"] = Value::Object(meta);
    Ok(())
}

/// Checks one converted object against its original and restores its metadata.
fn accept(
    original: &Value,
    mut converted: Value,
    desired: &str,
    list: bool,
    index: usize,
    gvk: &str,
) -> Result<Value, String> {
    if !converted.is_object() {
        return Err(format!(
            "conversion webhook for {gvk} returned invalid converted object at index {index}: Object 'Kind' is missing"
        ));
    }
    // Upstream counts list positions from 1 in these messages and from 0 for single objects.
    let (what, at) = if list {
        ("invalid converted object", index + 1)
    } else {
        ("invalid object", 0)
    };
    let got = str_of(&converted, "apiVersion");
    if got != desired {
        return Err(format!(
            "conversion webhook for {gvk} returned {what} at index {at}: invalid groupVersion (expected {desired}, received {got})"
        ));
    }
    let (ek, ak) = (str_of(original, "kind"), str_of(&converted, "kind"));
    if ek != ak {
        return Err(format!(
            "conversion webhook for {gvk} returned {what} at index {at}: invalid kind (expected {ek}, received {ak})"
        ));
    }
    validate_converted(original, &converted).map_err(|e| {
        if list {
            format!(
                "conversion webhook for {gvk} returned invalid converted object at index {at}: {e}"
            )
        } else {
            format!("conversion webhook for {gvk} returned invalid object: {e}")
        }
    })?;
    restore_object_meta(original, &mut converted).map_err(|e| {
        if list {
            format!("conversion webhook for {gvk} returned invalid metadata in object at index {at}: {e}")
        } else {
            format!("conversion webhook for {gvk} returned invalid metadata: {e}")
        }
    })?;
    Ok(converted)
}

pub(crate) async fn convert(
    dispatcher: &Dispatcher,
    conversion: &Value,
    mut objects: Vec<Value>,
    desired: &str,
    resolver: &impl Resolver,
) -> Result<Vec<Value>, String> {
    let Some(first) = objects.first() else {
        return Ok(objects);
    };
    let list = objects.len() != 1;
    let gvk = if list {
        gvk_string(
            str_of(first, "apiVersion"),
            &format!("{}List", str_of(first, "kind")),
        )
    } else {
        gvk_string(str_of(first, "apiVersion"), str_of(first, "kind"))
    };
    if !list && is_empty_object(first) {
        objects[0]["apiVersion"] = desired.into();
        return Ok(objects);
    }
    let pending: Vec<usize> = (0..objects.len())
        .filter(|i| str_of(&objects[*i], "apiVersion") != desired)
        .collect();
    if pending.is_empty() {
        return Ok(objects);
    }
    let webhook = conversion.get("webhook").unwrap_or(&Value::Null);
    let versions: Vec<String> = webhook
        .get("conversionReviewVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let uid = uuid::Uuid::new_v4().to_string();
    let to_send: Vec<&Value> = pending.iter().map(|i| &objects[*i]).collect();
    let (review_version, body) = review(&versions, &to_send, desired, &uid)?;
    let cc = ClientConfig::from_json(webhook.get("clientConfig").unwrap_or(&Value::Null));
    let failed = |e: String| format!("conversion webhook for {gvk} failed: {e}");
    let response = client::post(
        &dispatcher.tls,
        &cc,
        "",
        body,
        CONVERSION_TIMEOUT,
        false,
        resolver,
    )
    .await
    .map_err(|e| match e {
        CallError::Client(e) | CallError::Request(e) => failed(e),
    })?;
    let converted = converted_objects(&review_version, &uid, &response).map_err(failed)?;
    if converted.len() != pending.len() {
        return Err(format!(
            "conversion webhook for {gvk} returned {} objects, expected {}",
            converted.len(),
            pending.len()
        ));
    }
    for (n, (i, c)) in pending.into_iter().zip(converted).enumerate() {
        objects[i] = accept(&objects[i], c, desired, list, n, &gvk)?;
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_restored_but_labels_come_from_the_webhook() {
        let original = json!({"kind": "W", "metadata": {"name": "a", "uid": "1", "labels": {"x": "1"}, "resourceVersion": "5"}});
        let mut converted = json!({"kind": "W", "metadata": {"name": "a", "uid": "1", "labels": {"y": "2"}, "resourceVersion": "9"}});
        restore_object_meta(&original, &mut converted).unwrap();
        assert_eq!(converted["metadata"]["resourceVersion"], "5");
        assert_eq!(converted["metadata"]["labels"], json!({"y": "2"}));

        let mut bad = json!({"metadata": {"labels": {"bad key": "v"}}});
        let err = restore_object_meta(&original, &mut bad).unwrap_err();
        assert!(
            err.starts_with("metadata.labels: Invalid value: \"bad key\""),
            "{err}"
        );

        let mut bad = json!({"metadata": {"labels": {"k": 1}}});
        assert_eq!(
            restore_object_meta(&original, &mut bad).unwrap_err(),
            "metadata.labels[k] must be a string, but is int64 in converted object"
        );
        let mut none = json!({"kind": "W"});
        assert_eq!(
            restore_object_meta(&original, &mut none).unwrap_err(),
            "missing metadata in converted object"
        );
    }

    #[test]
    fn response_checks() {
        let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {"status": "Failure", "message": "cannot"}}});
        assert_eq!(
            converted_objects("apiextensions.k8s.io/v1", "u", body.to_string().as_bytes())
                .unwrap_err(),
            "cannot"
        );
        let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "v", "result": {"status": "Success"}}});
        assert_eq!(
            converted_objects("apiextensions.k8s.io/v1", "u", body.to_string().as_bytes())
                .unwrap_err(),
            "expected response.uid=\"u\", got \"v\""
        );
        let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {}}});
        assert_eq!(
            converted_objects("apiextensions.k8s.io/v1", "u", body.to_string().as_bytes())
                .unwrap_err(),
            "response.result.status was '', not 'Success'"
        );
        assert_eq!(
            review(&["v2".into()], &[], "g/v1", "u").unwrap_err(),
            "no supported conversion review versions"
        );
    }
}
