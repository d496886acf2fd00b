//! ConfigMaps and Secrets: valid keys, the 1 MiB size bound, per-type Secret contents,
//! `immutable`, and the `stringData` merge upstream's conversion does.

use crate::util::{Errs, child, get_bool, key, obj, str_or_empty};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use machinery::FieldError;
use machinery::names;
use serde_json::{Map, Value, json};

/// Upstream's `MaxSecretSize` (also bounds ConfigMaps).
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// Secret defaults: `type: Opaque`, and `stringData` merged into `data` (base64), as the
/// v1 to internal conversion does.
pub fn default_secret(secret: &mut Value) {
    let Some(m) = secret.as_object_mut() else {
        return;
    };
    if m.get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        m.insert("type".into(), json!("Opaque"));
    }
    let Some(Value::Object(string_data)) = m.remove("stringData") else {
        return;
    };
    let data = m.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in string_data {
            d.insert(
                k,
                json!(STANDARD.encode(v.as_str().unwrap_or("").as_bytes())),
            );
        }
    }
}

fn decoded_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("");
    STANDARD.decode(s).map_or(s.len(), |b| b.len())
}

fn validate_keys(map: Option<&Map<String, Value>>, path: &str) -> Errs {
    let mut errs = Errs::new();
    for k in map.into_iter().flatten().map(|(k, _)| k) {
        for msg in names::is_config_map_key(k) {
            errs.push(FieldError::invalid(key(path, k), json!(k), msg));
        }
    }
    errs
}

/// `ValidateConfigMap` minus metadata.
pub fn validate_config_map(cm: &Value) -> Errs {
    let data = obj(cm, "data");
    let binary = obj(cm, "binaryData");
    let mut errs = Errs::new();
    let mut total = 0;
    for (k, v) in data.into_iter().flatten() {
        for msg in names::is_config_map_key(k) {
            errs.push(FieldError::invalid(key("data", k), json!(k), msg));
        }
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                key("data", k),
                json!(k),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    errs.extend(validate_keys(binary, "binaryData"));
    total += binary
        .into_iter()
        .flatten()
        .map(|(_, v)| decoded_len(v))
        .sum::<usize>();
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("[]", MAX_SECRET_SIZE));
    }
    errs
}

/// `ValidateSecret` minus metadata.
pub fn validate_secret(secret: &Value) -> Errs {
    let data = obj(secret, "data");
    let mut errs = validate_keys(data, "data");
    let total: usize = data
        .into_iter()
        .flatten()
        .map(|(_, v)| decoded_len(v))
        .sum();
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has_key = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let required = |k: &str| FieldError::required(key("data", k), "");
    match str_or_empty(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let sa = secret
                .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str);
            if sa.is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.and_then(|d| d.get(k)) {
                None => errs.push(required(k)),
                Some(v) => {
                    let bytes = STANDARD
                        .decode(v.as_str().unwrap_or(""))
                        .unwrap_or_default();
                    if let Err(e) = serde_json::from_slice::<Map<String, Value>>(&bytes) {
                        errs.push(FieldError::invalid(
                            key("data", k),
                            json!("<secret contents redacted>"),
                            e.to_string(),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has_key("username") && !has_key("password") => {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth"
            if data
                .and_then(|d| d.get("ssh-privatekey"))
                .is_none_or(|v| decoded_len(v) == 0) =>
        {
            errs.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has_key(k) {
                    errs.push(required(k));
                }
            }
        }
        _ => {}
    }
    errs
}

/// The `immutable` rule both ConfigMaps and Secrets follow on update.
fn immutable_contents(new: &Value, old: &Value, fields: &[&str]) -> Errs {
    let mut errs = Errs::new();
    if get_bool(old, "immutable") != Some(true) {
        return errs;
    }
    if get_bool(new, "immutable") != Some(true) {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
    }
    for f in fields {
        let (n, o) = (
            obj(new, f).filter(|m| !m.is_empty()),
            obj(old, f).filter(|m| !m.is_empty()),
        );
        if n != o {
            errs.push(FieldError::forbidden(child("", f), IMMUTABLE_SET));
        }
    }
    errs
}

/// `ValidateConfigMapUpdate`'s checks against the old object.
pub fn validate_config_map_update(new: &Value, old: &Value) -> Errs {
    immutable_contents(new, old, &["data", "binaryData"])
}

/// `ValidateSecretUpdate`'s checks against the old object.
pub fn validate_secret_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Errs::new();
    let (nt, ot) = (str_or_empty(new, "type"), str_or_empty(old, "type"));
    if nt != ot {
        errs.push(FieldError::invalid(
            "type",
            json!(nt),
            crate::util::IMMUTABLE,
        ));
    }
    errs.extend(immutable_contents(new, old, &["data"]));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(e: &Errs) -> Vec<String> {
        e.iter().map(FieldError::message).collect()
    }

    #[test]
    fn config_map_keys_and_size() {
        let cm = json!({"data": {"ok.key": "v", "bad key": "v", "dup": "x"}, "binaryData": {"dup": "eA=="}});
        let m = msgs(&validate_config_map(&cm));
        assert_eq!(
            m,
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData",
            ]
        );
        let big = json!({"data": {"a": "x".repeat(MAX_SECRET_SIZE + 1)}});
        assert_eq!(
            msgs(&validate_config_map(&big)),
            vec!["[]: Too long: must have at most 1048576 bytes"]
        );
    }

    #[test]
    fn secret_defaults_merge_string_data() {
        let mut s = json!({"stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}});
        default_secret(&mut s);
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"]["password"], "aHVudGVyMg==");
        assert_eq!(s["data"]["user"], "YWRtaW4=");
        assert!(s.get("stringData").is_none());
    }

    #[test]
    fn secret_types() {
        let m = msgs(&validate_secret(
            &json!({"type": "kubernetes.io/tls", "data": {"tls.crt": ""}}),
        ));
        assert_eq!(m, vec!["data[tls.key]: Required value"]);
        let m = msgs(&validate_secret(
            &json!({"type": "kubernetes.io/service-account-token"}),
        ));
        assert_eq!(
            m,
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        let m = msgs(&validate_secret(
            &json!({"type": "kubernetes.io/basic-auth", "data": {}}),
        ));
        assert_eq!(
            m,
            vec![
                "data[username]: Required value",
                "data[password]: Required value"
            ]
        );
        let m = msgs(&validate_secret(
            &json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "bm9wZQ=="}}),
        ));
        assert!(m[0].starts_with(
            "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": "
        ));
    }

    #[test]
    fn immutable_objects() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"data": {"a": "2"}});
        assert_eq!(
            msgs(&validate_config_map_update(&new, &old)),
            vec![
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        assert!(validate_config_map_update(&old, &old).is_empty());
        let m = msgs(&validate_secret_update(
            &json!({"type": "kubernetes.io/tls"}),
            &json!({"type": "Opaque"}),
        ));
        assert_eq!(
            m,
            vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }
}
