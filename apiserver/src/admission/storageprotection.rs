//! The StorageObjectInUseProtection admission plugin: a new PersistentVolumeClaim gets
//! the `kubernetes.io/pvc-protection` finalizer and a new PersistentVolume
//! `kubernetes.io/pv-protection`, so deleting one still in use waits until the
//! controller-manager's protection controllers see it free.

use serde_json::{Value, json};

const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Adds the finalizer of `plural` (`persistentvolumeclaims` or `persistentvolumes`).
pub fn admit(plural: &str, obj: &mut Value) {
    let finalizer = match plural {
        "persistentvolumeclaims" => PVC_FINALIZER,
        "persistentvolumes" => PV_FINALIZER,
        _ => return,
    };
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(a) = list.as_array_mut()
        && !a.iter().any(|f| f == finalizer)
    {
        a.push(json!(finalizer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_and_volumes_get_their_finalizers_once() {
        let mut claim = json!({"metadata": {"name": "c", "finalizers": ["x"]}});
        admit("persistentvolumeclaims", &mut claim);
        admit("persistentvolumeclaims", &mut claim);
        assert_eq!(
            claim["metadata"]["finalizers"],
            json!(["x", "kubernetes.io/pvc-protection"])
        );
        let mut pv = json!({"metadata": {"name": "v"}});
        admit("persistentvolumes", &mut pv);
        assert_eq!(
            pv["metadata"]["finalizers"],
            json!(["kubernetes.io/pv-protection"])
        );
        let mut other = json!({"metadata": {"name": "o"}});
        admit("pods", &mut other);
        assert!(other["metadata"].get("finalizers").is_none());
    }
}
