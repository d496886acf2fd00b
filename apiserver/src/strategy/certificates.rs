//! CertificateSigningRequest rules: the requester's identity is recorded on create
//! (whatever the client sent), status starts empty, the `approval` subresource changes
//! only the conditions, and conditions get their timestamps filled in.

use serde_json::{Value, json};

use crate::authn::User;

/// Records who asks: `spec.username` and `spec.groups` are the requester's.
pub fn set_requester(obj: &mut Value, user: Option<&User>) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.remove("uid");
    spec.remove("extra");
    match user {
        Some(u) => {
            spec.insert("username".into(), json!(u.name));
            spec.insert("groups".into(), json!(u.groups));
        }
        None => {
            spec.remove("username");
            spec.remove("groups");
        }
    }
}

/// An update of the `approval` subresource: only `status.conditions` change.
pub fn merge_approval(current: &Value, incoming: &Value) -> Value {
    let mut new = current.clone();
    let conditions = incoming
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or(Value::Null);
    if !new.get("status").is_some_and(Value::is_object) {
        new["status"] = json!({});
    }
    match conditions {
        Value::Null => {
            if let Some(s) = new.get_mut("status").and_then(Value::as_object_mut) {
                s.remove("conditions");
            }
        }
        c => new["status"]["conditions"] = c,
    }
    new
}

/// Fills `lastUpdateTime` (now) and `lastTransitionTime` (kept from the same condition
/// type and status before, else now) where the writer left them out, as upstream does.
pub fn fill_condition_timestamps(old: &Value, new: &mut Value, now: &str) {
    let before: Vec<Value> = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(conds) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in conds.iter_mut().filter_map(Value::as_object_mut) {
        let empty = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v == "");
        if empty(c.get("lastUpdateTime")) {
            c.insert("lastUpdateTime".into(), json!(now));
        }
        if empty(c.get("lastTransitionTime")) {
            let kept = before
                .iter()
                .find(|o| o.get("type") == c.get("type") && o.get("status") == c.get("status"))
                .and_then(|o| o.get("lastTransitionTime"))
                .filter(|t| !t.is_null() && *t != "")
                .cloned();
            c.insert(
                "lastTransitionTime".into(),
                kept.unwrap_or_else(|| json!(now)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requester_is_recorded_whatever_the_client_sent() {
        let mut csr = json!({"spec": {"username": "someone-else", "groups": ["x"], "uid": "1",
            "request": "abc", "signerName": "kubernetes.io/kube-apiserver-client"}});
        let alice = User {
            name: "alice".into(),
            groups: vec!["devs".into(), "system:authenticated".into()],
            ..User::default()
        };
        set_requester(&mut csr, Some(&alice));
        assert_eq!(csr["spec"]["username"], "alice");
        assert_eq!(
            csr["spec"]["groups"],
            json!(["devs", "system:authenticated"])
        );
        assert!(csr["spec"].get("uid").is_none());
        assert_eq!(csr["spec"]["request"], "abc");
    }

    #[test]
    fn approval_changes_only_conditions_and_fills_timestamps() {
        let current = json!({"spec": {"request": "abc"}, "status": {"certificate": "Y2VydA=="}});
        let incoming = json!({"spec": {"request": "changed"}, "status": {"certificate": "other",
            "conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}]}});
        let mut new = merge_approval(&current, &incoming);
        assert_eq!(new["spec"]["request"], "abc");
        assert_eq!(new["status"]["certificate"], "Y2VydA==");
        fill_condition_timestamps(&current, &mut new, "2026-01-01T00:00:00Z");
        let c = &new["status"]["conditions"][0];
        assert_eq!(c["type"], "Approved");
        assert_eq!(c["lastUpdateTime"], "2026-01-01T00:00:00Z");
        assert_eq!(c["lastTransitionTime"], "2026-01-01T00:00:00Z");
        // a later write of the same condition keeps its transition time
        let mut again = new.clone();
        again["status"]["conditions"][0]
            .as_object_mut()
            .map(|c| c.remove("lastTransitionTime"));
        fill_condition_timestamps(&new, &mut again, "2026-02-02T00:00:00Z");
        assert_eq!(
            again["status"]["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
    }
}
