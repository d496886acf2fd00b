//! StatefulSet revisions: the ControllerRevision `<set>-<hash>` recording each pod
//! template the set has had (data `{"spec":{"template":{...,"$patch":"replace"}}}`,
//! labelled with the set's template labels, owned by the set), found again when the
//! template comes back, numbered upward.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

use crate::common::OwnerInfo;

/// The pod label naming the revision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

fn fnv32a(data: &[u8], mut h: u32) -> u32 {
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// Upstream's `SafeEncodeString` of a 32-bit hash (no vowels, no look-alikes).
fn safe_encode(h: u32) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The revision data for the set's current template.
pub fn patch_of(set: &StatefulSet) -> Value {
    template_patch(set.spec.as_ref().map(|s| &s.template))
}

/// The revision data recording a pod template (shared with the DaemonSet controller).
pub fn template_patch(template: Option<&PodTemplateSpec>) -> Value {
    let mut template = template
        .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if let Some(obj) = template.as_object_mut() {
        obj.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// A revision named `<owner>-<hash>` recording `data`, owned by `owner`.
pub fn make_revision(
    owner: &OwnerInfo,
    data: Value,
    labels: BTreeMap<String, String>,
    collisions: Option<i32>,
    number: i64,
) -> ControllerRevision {
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{}-{}", owner.name, hash(&data, collisions))),
            namespace: owner.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner.controller_ref()]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// The hash naming a revision with `data`, salted by the collision count.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    let mut h = fnv32a(&bytes, 2_166_136_261);
    if let Some(c) = collision_count {
        h = fnv32a(&c.to_le_bytes(), h);
    }
    safe_encode(h)
}

/// A new revision of the set's current template with `number`.
pub fn new_revision(set: &StatefulSet, number: i64) -> ControllerRevision {
    let data = patch_of(set);
    let collisions = set.status.as_ref().and_then(|s| s.collision_count);
    let labels: BTreeMap<String, String> = set
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    make_revision(&OwnerInfo::of(set), data, labels, collisions, number)
}

/// Whether a stored revision records the same template as `data`.
pub fn same_data(rev: &ControllerRevision, data: &Value) -> bool {
    rev.data.as_ref().is_some_and(|d| &d.0 == data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_salted() {
        let data = json!({"spec": {"template": {"$patch": "replace"}}});
        assert_eq!(hash(&data, None), hash(&data, None));
        assert_ne!(hash(&data, None), hash(&data, Some(1)));
        assert!(
            hash(&data, None)
                .bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
    }
}
