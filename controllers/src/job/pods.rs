//! The Job controller's writes to pods: new pods from the Job's template (with the
//! tracking finalizer, and for Indexed Jobs the completion index as annotation, label,
//! hostname and `JOB_COMPLETION_INDEX`), deletions, and removal of the tracking
//! finalizer once a finished pod is accounted for.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::state::{COMPLETION_INDEX, TRACKING_FINALIZER};
use crate::common::OwnerInfo;
use crate::common::pods::pod_from_template;

/// The pod the Job creates (for `index` when Indexed).
pub fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let owner = OwnerInfo::of(job);
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut pod = pod_from_template(&template, &owner);
    pod.metadata
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    let Some(i) = index else {
        return pod;
    };
    pod.metadata.generate_name = Some(format!("{}-{i}-", owner.name));
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), i.to_string());
    pod.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), i.to_string());
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(format!("{}-{i}", owner.name));
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                }),
                ..Default::default()
            }),
        };
        let containers = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten());
        for c in containers {
            let envs = c.env.get_or_insert_with(Vec::new);
            if !envs.iter().any(|e| e.name == env.name) {
                envs.push(env.clone());
            }
        }
    }
    pod
}

pub async fn create(api: &Api<Pod>, pod: Pod) -> Result<Pod, kube::Error> {
    api.create(&PostParams::default(), &pod).await
}

/// Deletes a pod (a pod already gone is fine).
pub async fn delete(api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the tracking finalizer (a pod already gone is fine). The merge patch carries
/// the pod's resourceVersion, so a concurrent change of the finalizers is a conflict
/// (retried) rather than a lost edit.
pub async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let Some(finalizers) = pod.metadata.finalizers.as_ref() else {
        return Ok(());
    };
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        return Ok(());
    }
    let rest: Vec<&String> = finalizers
        .iter()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch = json!({"metadata": {
        "finalizers": rest,
        "resourceVersion": pod.metadata.resource_version,
    }});
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_pods_carry_their_index() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "work", "namespace": "ns", "uid": "u1"},
            "spec": {"completionMode": "Indexed", "template": {
                "metadata": {"labels": {"job-name": "work"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
        }))
        .expect("job");
        let p = new_pod(&job, Some(3));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("work-3-"));
        let ann = p.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(ann.get(COMPLETION_INDEX).map(String::as_str), Some("3"));
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("work-3"));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert_eq!(env[0].name, "JOB_COMPLETION_INDEX");
        assert_eq!(
            p.metadata.finalizers.unwrap_or_default(),
            [TRACKING_FINALIZER.to_string()]
        );
        let owner = &p.metadata.owner_references.unwrap_or_default()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Job", "u1"));
    }
}
