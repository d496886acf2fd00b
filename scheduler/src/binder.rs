//! The scheduler's writes to the API server, each run off the scheduling loop: binding a
//! pod (`pods/binding`) and its `Scheduled` event; the `PodScheduled=False` condition and
//! `nominatedNodeName` on failure; and preemption's evictions (the victim's
//! `DisruptionTarget` condition, its deletion, and the `Preempted` event).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::events::{EventSpec, pod_ref};
use crate::podinfo::PodInfo;
use crate::preemption::Candidate;
use crate::scheduler::Scheduler;

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// POSTs the Binding; on failure forgets the assumed pod and requeues it with backoff.
pub async fn bind(s: &Arc<Scheduler>, scheduler_name: &str, info: Arc<PodInfo>, node: String) {
    let api: Api<Pod> = Api::namespaced(s.client.clone(), &info.namespace);
    let body = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let res = api
        .create_subresource::<serde_json::Value, serde_json::Value>(
            "binding",
            &info.name,
            &PostParams::default(),
            &body,
        )
        .await;
    match res {
        Ok(_) => {
            s.metrics.scheduled.fetch_add(1, Ordering::Relaxed);
            s.queue().done(&info.key());
            s.events.record(EventSpec {
                regarding: pod_ref(&info.pod),
                related: None,
                type_: "Normal",
                reason: "Scheduled",
                action: "Binding",
                note: format!(
                    "Successfully assigned {}/{} to {}",
                    info.namespace, info.name, node
                ),
                reporting_controller: scheduler_name.to_string(),
            });
        }
        Err(e) => {
            s.metrics.bind_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(pod = %info.key(), %node, error = %e, "binding rejected");
            {
                let mut st = s.state();
                if st.cache.is_assumed(&info.namespace, &info.name) {
                    st.cache.remove_pod(&info.namespace, &info.name);
                }
            }
            if is_status(&e, 404) || is_status(&e, 409) {
                // Deleted or already bound elsewhere: the informer brings the truth.
                s.queue().done(&info.key());
                return;
            }
            if let Some(profile) = s.profiles.get(scheduler_name).cloned() {
                s.fail(
                    &profile,
                    &info,
                    format!("Binding rejected: {e}"),
                    None,
                    true,
                );
            }
            s.wake.notify_one();
        }
    }
}

/// The PodScheduled condition's current (status, reason, message), if any.
fn current_condition(pod: &Pod) -> Option<(String, Option<String>, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Patches `PodScheduled=False` with the reason and message (and the nomination when
/// `nominate` is `Some`), unless the pod already says exactly that.
pub async fn update_status(
    s: &Arc<Scheduler>,
    info: &Arc<PodInfo>,
    reason: &str,
    message: &str,
    nominate: Option<Option<String>>,
) {
    let want = (
        "False".to_string(),
        Some(reason.to_string()),
        Some(message.to_string()),
    );
    let same_condition = current_condition(&info.pod).as_ref() == Some(&want);
    let same_nomination = match &nominate {
        None => true,
        Some(n) => n.as_deref() == info.nominated_node_name(),
    };
    if same_condition && same_nomination {
        return;
    }
    let mut status = json!({
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now_rfc3339(),
        }]
    });
    if let Some(n) = nominate {
        status["nominatedNodeName"] = json!(n);
    }
    let api: Api<Pod> = Api::namespaced(s.client.clone(), &info.namespace);
    let patch = json!({"status": status});
    if let Err(e) = api
        .patch_status(
            &info.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        && !is_status(&e, 404)
    {
        tracing::warn!(pod = %info.key(), error = %e, "could not update pod status");
    }
}

/// Clears a pod's `status.nominatedNodeName`.
pub async fn clear_nomination(s: &Arc<Scheduler>, info: &PodInfo) {
    let api: Api<Pod> = Api::namespaced(s.client.clone(), &info.namespace);
    let patch = json!({"status": {"nominatedNodeName": null}});
    if let Err(e) = api
        .patch_status(&info.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        && !is_status(&e, 404)
    {
        tracing::warn!(pod = %info.key(), error = %e, "cannot clear 'NominatedNodeName' field");
    }
}

/// Evicts the chosen victims: marks each with a DisruptionTarget condition, deletes it,
/// and records `Preempted` on it.
pub async fn evict_victims(
    s: &Arc<Scheduler>,
    scheduler_name: &str,
    preemptor: &PodInfo,
    c: Candidate,
) {
    let started = Instant::now();
    for v in &c.victims {
        if v.terminating {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(s.client.clone(), &v.namespace);
        let patch = json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": format!("{scheduler_name}: preempting to accommodate a higher priority pod"),
            "lastTransitionTime": now_rfc3339(),
        }]}});
        if let Err(e) = api
            .patch_status(&v.name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            if is_status(&e, 404) {
                continue;
            }
            tracing::warn!(victim = %v.key(), error = %e, "could not add DisruptionTarget condition");
        }
        match api.delete(&v.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => continue,
            Err(e) => {
                tracing::warn!(victim = %v.key(), error = %e, "could not preempt pod");
                continue;
            }
        }
        tracing::info!(preemptor = %preemptor.key(), victim = %v.key(), node = %c.node, "preempted victim pod");
        s.events.record(EventSpec {
            regarding: pod_ref(&v.pod),
            related: Some(pod_ref(&preemptor.pod)),
            type_: "Normal",
            reason: "Preempted",
            action: "Preempting",
            note: format!("Preempted by pod {} on node {}", preemptor.uid, c.node),
            reporting_controller: scheduler_name.to_string(),
        });
    }
    tracing::debug!(elapsed = ?started.elapsed(), "preemption finished");
}
