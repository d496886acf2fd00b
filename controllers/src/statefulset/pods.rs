//! StatefulSet pod identity: the pod `<set>-<ordinal>` of a revision (stable hostname,
//! `subdomain` = serviceName, identity labels) and its PersistentVolumeClaims
//! `<claim>-<set>-<ordinal>` from the volumeClaimTemplates.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::revision::REVISION_LABEL;
use crate::common::OwnerInfo;
use crate::common::pods::pod_from_template;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

/// The ordinal of one of the set's pods, from its name.
pub fn ordinal_of(set: &StatefulSet, pod: &Pod) -> Option<i32> {
    let name = pod.metadata.name.as_deref()?;
    let rest = name.strip_prefix(set_name(set))?.strip_prefix('-')?;
    rest.parse()
        .ok()
        .filter(|n: &i32| *n >= 0 && n.to_string() == rest)
}

/// `[start, start + replicas)`.
pub fn ordinal_range(set: &StatefulSet) -> std::ops::Range<i32> {
    let spec = set.spec.as_ref();
    let start = spec
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0);
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1).max(0);
    start..start + replicas
}

/// The pod template a revision recorded.
pub fn template_of(rev: &ControllerRevision) -> PodTemplateSpec {
    let mut t = rev
        .data
        .as_ref()
        .and_then(|d| d.0.pointer("/spec/template").cloned())
        .unwrap_or_default();
    if let Some(obj) = t.as_object_mut() {
        obj.remove("$patch");
    }
    serde_json::from_value(t).unwrap_or_default()
}

pub fn claim_name(claim: &str, set: &StatefulSet, ordinal: i32) -> String {
    format!("{claim}-{}-{ordinal}", set_name(set))
}

/// The pod for `ordinal` from `template` (of revision `revision`).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let mut pod = pod_from_template(template, &OwnerInfo::of(set));
    let name = format!("{}-{ordinal}", set_name(set));
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.into());
    let service = set.spec.as_ref().and_then(|s| s.service_name.clone());
    let claims = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(name);
        spec.subdomain = service.filter(|s| !s.is_empty());
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        for c in &claims {
            let cname = c.metadata.name.clone().unwrap_or_default();
            volumes.retain(|v| v.name != cname);
            volumes.push(Volume {
                name: cname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&cname, set, ordinal),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        if volumes.is_empty() {
            spec.volumes = None;
        }
    }
    pod
}

/// The claims the pod for `ordinal` needs, labelled with the set's selector labels and,
/// when the retention policy deletes them with the set, owned by it.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let spec = set.spec.clone().unwrap_or_default();
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    let owner = OwnerInfo::of(set);
    spec.volume_claim_templates
        .unwrap_or_default()
        .into_iter()
        .map(|mut c| {
            let cname = c.metadata.name.clone().unwrap_or_default();
            c.metadata.name = Some(claim_name(&cname, set, ordinal));
            c.metadata.namespace = set.metadata.namespace.clone();
            let labels = c.metadata.labels.get_or_insert_with(Default::default);
            labels.extend(selector_labels.clone());
            if delete_with_set {
                c.metadata.owner_references = Some(vec![OwnerReference {
                    controller: None,
                    ..owner.controller_ref()
                }]);
            }
            c.status = None;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_and_claims() {
        let set: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
        }))
        .expect("set");
        let template = set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let pod = new_pod(&set, &template, "web-abc", 2);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        assert_eq!(ordinal_of(&set, &pod), Some(2));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(POD_NAME_LABEL).map(String::as_str),
            Some("web-2")
        );
        assert_eq!(
            labels.get(REVISION_LABEL).map(String::as_str),
            Some("web-abc")
        );
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vol = &spec.volumes.unwrap_or_default()[0];
        let claim = vol
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str());
        assert_eq!(claim, Some("www-web-2"));
        let claims = claims_for(&set, 2);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-2"));
        assert!(
            claims[0].metadata.owner_references.is_none(),
            "Retain by default"
        );
    }
}
