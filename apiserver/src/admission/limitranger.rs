//! The LimitRanger admission plugin: the namespace's LimitRanges default the resources
//! of new pods' containers (and say so in the `kubernetes.io/limit-ranger` annotation),
//! and refuse pods and PersistentVolumeClaims outside their min/max/ratio bounds. The
//! rules are the `admission` crate's; this module lists the LimitRanges and answers.

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;

use crate::rest::Rest;

/// The namespace's LimitRanges, by name (the order upstream's lister gives).
fn limit_ranges(rest: &Rest, ns: &str) -> Vec<Value> {
    let Some(res) = rest.registry.get("", "v1", "limitranges") else {
        return Vec::new();
    };
    let (items, _) = rest.store.snapshot(&crate::rest::prefix(&res, ns));
    items.iter().map(|lr| (**lr).clone()).collect()
}

fn handled(res: &ResourceInfo, sub: &str, operation: &str) -> bool {
    res.group.is_empty() && ::admission::limitranger::handles(&res.plural, sub, operation)
}

/// The mutating step on a new pod.
pub fn default(rest: &Rest, res: &ResourceInfo, ns: &str, obj: &mut Value) {
    if handled(res, "", "CREATE") && res.plural == "pods" {
        let lrs = limit_ranges(rest, ns);
        if !lrs.is_empty() {
            ::admission::limitranger::default_pod(&lrs, obj);
        }
    }
}

/// The validating step on a create (`old` None) or update.
pub fn validate(
    rest: &Rest,
    res: &ResourceInfo,
    sub: &str,
    ns: &str,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
    if !handled(res, sub, operation)
        || old.is_some_and(::admission::limitranger::old_object_is_deleting)
    {
        return Ok(());
    }
    let lrs = limit_ranges(rest, ns);
    if lrs.is_empty() {
        return Ok(());
    }
    use ::admission::limitranger as lr;
    let outcome = match (res.plural.as_str(), old) {
        ("pods", None) => lr::validate_pod(&lrs, obj),
        ("pods", Some(old)) => lr::validate_pod_update(&lrs, obj, old),
        ("persistentvolumeclaims", None) => lr::validate_pvc(&lrs, obj),
        ("persistentvolumeclaims", Some(old)) => lr::validate_pvc_update(&lrs, obj, old),
        _ => Ok(()),
    };
    outcome.map_err(|messages| {
        ApiError::forbidden(
            &res.group,
            &res.plural,
            name,
            &lr::forbidden_text(&messages),
        )
    })
}
