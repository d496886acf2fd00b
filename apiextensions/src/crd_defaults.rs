//! Defaulting of CustomResourceDefinitions (upstream `apis/apiextensions/v1/defaults.go`)
//! and the status the CRD strategy sets on create.

use serde_json::{Value, json};

/// Upstream's v1 defaults: `names.singular` (lowercased kind), `names.listKind`
/// (`<kind>List`), `conversion.strategy: None`, webhook service port 443, and
/// `status.storedVersions` (the storage version) when empty.
pub fn default_crd(crd: &mut Value) {
    if !crd.is_object() {
        return;
    }
    if !crd["spec"].is_object() {
        crd["spec"] = json!({});
    }
    let spec = &mut crd["spec"];
    if !spec["names"].is_object() {
        spec["names"] = json!({});
    }
    let kind = spec["names"]["kind"].as_str().unwrap_or("").to_string();
    let names = &mut spec["names"];
    if names["singular"].as_str().unwrap_or("").is_empty() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names["listKind"].as_str().unwrap_or("").is_empty() && !kind.is_empty() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    if !spec["conversion"].is_object() {
        spec["conversion"] = json!({"strategy": "None"});
    }
    if let Some(service) = spec.pointer_mut("/conversion/webhook/clientConfig/service")
        && service.is_object()
        && service.get("port").is_none()
    {
        service["port"] = json!(443);
    }
    let stored_empty = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if stored_empty && let Some(storage) = storage_version(crd) {
        if !crd["status"].is_object() {
            crd["status"] = json!({});
        }
        crd["status"]["storedVersions"] = json!([storage]);
    }
}

/// The strategy's `PrepareForCreate`: status starts empty except for the storage
/// version in `storedVersions`.
pub fn prepare_crd_for_create(crd: &mut Value) {
    if !crd.is_object() {
        return;
    }
    let stored: Vec<String> = storage_version(crd).into_iter().collect();
    crd["status"] = json!({"storedVersions": stored});
}

fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v["storage"] == json!(true))
        .and_then(|v| v["name"].as_str())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_defaults() {
        let mut crd = json!({"spec": {"names": {"kind": "CronTab", "plural": "crontabs"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
        default_crd(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "crontab");
        assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));

        let mut crd = json!({"spec": {"names": {"kind": "A", "singular": "x", "listKind": "Xs"},
            "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "s", "namespace": "n"}}}}}});
        default_crd(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "x");
        assert_eq!(crd["spec"]["names"]["listKind"], "Xs");
        assert_eq!(
            crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
            443
        );
    }
}
