//! Pods on a node that stopped being Ready are no longer Ready either (upstream's
//! `MarkPodsNotReady`): services stop sending them traffic even though no kubelet is
//! there to say so. Each such pod gets a `NodeNotReady` warning event.

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::common::events::WARNING;
use crate::common::{EventRecorder, is_not_found};

use super::health::whole_seconds;

/// The pod's conditions with Ready set to False, or `None` when the pod has no Ready
/// condition or it is already False.
pub fn not_ready_conditions(pod: &Pod, now: Timestamp) -> Option<Vec<PodCondition>> {
    let mut conditions = pod.status.as_ref()?.conditions.clone()?;
    let ready = conditions.iter_mut().find(|c| c.type_ == "Ready")?;
    if ready.status == "False" {
        return None;
    }
    ready.status = "False".into();
    ready.last_transition_time = Some(Time(whole_seconds(now)));
    Some(conditions)
}

/// Marks every pod bound to `node` not Ready. Pods that are gone are skipped; the first
/// other error is returned after trying them all.
pub async fn mark_pods_not_ready(
    client: &kube::Client,
    recorder: &EventRecorder,
    pods: &[std::sync::Arc<Pod>],
    node: &str,
) -> anyhow::Result<()> {
    tracing::debug!(node, "updating ready status of pods on node");
    let mut first_err = None;
    for pod in pods {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let Some(conditions) = not_ready_conditions(pod, Timestamp::now()) else {
            continue;
        };
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        tracing::debug!(pod = %format!("{ns}/{name}"), "updating ready status of pod to false");
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let patch = json!({
            "metadata": {"resourceVersion": pod.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => continue,
            Err(e) => {
                tracing::info!(pod = %format!("{ns}/{name}"), error = %e, "failed to update status for pod");
                first_err.get_or_insert(e);
            }
        }
        recorder
            .record(pod.as_ref(), WARNING, "NodeNotReady", "Node is not ready")
            .await;
    }
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_pods_become_not_ready() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
            ]},
        }))
        .expect("pod");
        let now = Timestamp::now();
        let c = not_ready_conditions(&pod, now).expect("changed");
        assert_eq!(c[1].status, "False");
        assert_eq!(c[1].last_transition_time, Some(Time(whole_seconds(now))));
        assert_eq!(c[0].status, "True");
        let mut marked = pod.clone();
        if let Some(s) = marked.status.as_mut() {
            s.conditions = Some(c);
        }
        assert!(not_ready_conditions(&marked, now).is_none());
        assert!(not_ready_conditions(&Pod::default(), now).is_none());
    }
}
