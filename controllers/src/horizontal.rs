//! The HorizontalPodAutoscaler controller (upstream's `horizontalpodautoscaling`): every
//! 15 seconds (`--horizontal-pod-autoscaler-sync-period`) and whenever an HPA changes, it
//! reads the target's `scale` subresource, the pods its selector picks and their
//! `metrics.k8s.io` PodMetrics, lets the `hpa` crate decide (upstream's replica
//! calculator, tolerances, stabilization windows and scaling policies), then updates the
//! scale, records the events (`SuccessfulRescale`, `FailedGetResourceMetric`, ...) and
//! writes the autoscaling/v2 status with its conditions.
//!
//! Without a registered metrics API the HPA says so in its `ScalingActive` condition and
//! leaves the target alone, as upstream. Pods, Object and External metrics need the
//! custom and external metrics APIs, which this controller does not read yet: they report
//! as unavailable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, ListParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use machinery::labels::Selector;
use serde_json::Value;

use crate::Context;
use crate::common::EventRecorder;
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

const SYNC_PERIOD: Duration = Duration::from_secs(15);
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
struct History {
    recommendations: Vec<(i64, i32)>,
    scale_events: Vec<hpa::ScaleEvent>,
}

struct Controller {
    client: kube::Client,
    recorder: EventRecorder,
    hpas: Store<HorizontalPodAutoscaler>,
    /// Per HPA uid: what the stabilization windows and rate limits remember (dropped
    /// with the HPA).
    history: Arc<Mutex<HashMap<String, History>>>,
    /// Per HPA (`namespace/name`): the selector of its target's scale when last synced,
    /// to find pods that several HPAs claim (upstream's `hpaSelectors`).
    selectors: Arc<Mutex<HashMap<String, Selector>>>,
    /// Scale-target collections found through discovery, by (apiVersion, kind), with
    /// when they were found; looked up again when older than [`DISCOVERY_TTL`].
    collections: Mutex<HashMap<(String, String), (Instant, ApiResource)>>,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    // as upstream's rate-limited queue, an HPA is synced when it is new or its spec
    // changed, and every sync period; its own status writes do not trigger a sync
    let seen: Mutex<HashMap<String, i64>> = Mutex::default();
    let history: Arc<Mutex<HashMap<String, History>>> = Arc::default();
    let selectors: Arc<Mutex<HashMap<String, Selector>>> = Arc::default();
    let forget = history.clone();
    let unselect = selectors.clone();
    let hpas = informer(
        Api::<HorizontalPodAutoscaler>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(h) | Event::InitApply(h) = ev {
                let generation = h.metadata.generation.unwrap_or(0);
                let uid = h.uid().unwrap_or_default();
                let changed = seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(uid, generation)
                    != Some(generation);
                if changed {
                    q.add(key_of(h));
                }
            }
            if let Event::Delete(h) = ev {
                let uid = h.uid().unwrap_or_default();
                seen.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
                forget
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&uid);
                unselect
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key_of(h));
            }
        },
    );
    hpas.wait_until_ready().await?;
    let controller = Arc::new(Controller {
        recorder: EventRecorder::new(client.clone(), "horizontal-pod-autoscaler"),
        client,
        hpas,
        history,
        selectors,
        collections: Mutex::default(),
    });
    let (resync, q) = (controller.clone(), queue.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SYNC_PERIOD).await;
            for h in resync.hpas.state() {
                q.add(key_of(h.as_ref()));
            }
        }
    });
    queue
        .run(1, "horizontalpodautoscaling", move |key| {
            let c = controller.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// The API path of a scale target's collection, for the kinds every cluster has; other
/// kinds are found through discovery.
fn known_collection(api_version: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    match (api_version, kind) {
        ("apps/v1", "Deployment") => Some(("/apis/apps/v1", "deployments")),
        ("apps/v1", "ReplicaSet") => Some(("/apis/apps/v1", "replicasets")),
        ("apps/v1", "StatefulSet") => Some(("/apis/apps/v1", "statefulsets")),
        ("v1", "ReplicationController") => Some(("/api/v1", "replicationcontrollers")),
        _ => None,
    }
}

fn unix_now() -> i64 {
    crate::common::now().as_second()
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(obj) = self.hpas.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(());
        };
        let hpa_json = serde_json::to_value(obj.as_ref())?;
        let uid = obj.uid().unwrap_or_default();
        let now = unix_now();
        let target = obj.spec.as_ref().map(|s| s.scale_target_ref.clone());
        let Some(target) = target else {
            return Ok(());
        };
        let scale_url = match self
            .scale_url(
                target.api_version.as_deref().unwrap_or(""),
                &target.kind,
                ns,
                &target.name,
            )
            .await
        {
            Ok(u) => u,
            Err(e) => return self.failed_scale(&obj, &hpa_json, now, &e).await,
        };
        let scale: Value = match self
            .client
            .request(http::Request::get(&scale_url).body(Vec::new())?)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                // a collection found through discovery may have moved
                self.collections
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(
                        target.api_version.clone().unwrap_or_default(),
                        target.kind.clone(),
                    ));
                let msg = crate::common::error_message(&e);
                return self.failed_scale(&obj, &hpa_json, now, &msg).await;
            }
        };
        let current = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32;
        let selector = scale
            .pointer("/status/selector")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let parsed = Selector::parse(&selector);
        let (pods, selector_problem) = match parsed {
            _ if selector.is_empty() => (Vec::new(), None),
            Err(e) => (Vec::new(), Some(hpa::SelectorProblem::Invalid(e))),
            Ok(parsed) => {
                let pods: Vec<Value> = Api::<Pod>::namespaced(self.client.clone(), ns)
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items
                    .iter()
                    .filter_map(|p| serde_json::to_value(p).ok())
                    .collect();
                let claimed = self.claimants(key, parsed, &pods);
                let problem =
                    (claimed.len() > 1).then_some(hpa::SelectorProblem::Ambiguous(claimed));
                (pods, problem)
            }
        };
        let (metrics, metrics_error) = if selector_problem.is_some() {
            (None, None)
        } else {
            self.pod_metrics(ns, &selector).await
        };
        let (recommendations, scale_events) = {
            let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            h.get(&uid)
                .map(|h| (h.recommendations.clone(), h.scale_events.clone()))
                .unwrap_or_default()
        };
        let inputs = hpa::Inputs {
            selector: Some(&selector),
            selector_problem,
            pods: &pods,
            pod_metrics: metrics.as_deref(),
            pod_metrics_error: metrics_error.as_deref(),
            recommendations: &recommendations,
            scale_events: &scale_events,
            ..hpa::Inputs::new(&hpa_json, current, now)
        };
        let mut outcome = hpa::reconcile(&inputs);
        if outcome.rescale {
            let mut updated = scale.clone();
            updated["spec"]["replicas"] = Value::from(outcome.desired_replicas);
            let req = http::Request::put(&scale_url)
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&updated)?)?;
            if let Err(e) = self.client.request::<Value>(req).await {
                let msg = crate::common::error_message(&e);
                outcome = hpa::rescale_failed(&inputs, &outcome, &msg);
            } else {
                tracing::info!(hpa = %key, replicas = outcome.desired_replicas, reason = %outcome.rescale_reason, "rescaled");
            }
        }
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            let entry = h.entry(uid).or_default();
            entry.recommendations = outcome.recommendations.clone();
            entry.scale_events = outcome.scale_events.clone();
        }
        for e in &outcome.events {
            self.recorder
                .record(obj.as_ref(), &e.event_type, &e.reason, &e.message)
                .await;
        }
        if outcome.status_changed {
            self.write_status(&obj, outcome.status).await?;
        }
        if let Some(e) = outcome.error {
            tracing::debug!(hpa = %key, error = %e, "horizontal pod autoscaler");
        }
        Ok(())
    }

    async fn failed_scale(
        &self,
        obj: &HorizontalPodAutoscaler,
        hpa_json: &Value,
        now: i64,
        error: &str,
    ) -> anyhow::Result<()> {
        let (status, event) = hpa::failed_get_scale(hpa_json, now, error);
        self.recorder
            .record(obj, &event.event_type, &event.reason, &event.message)
            .await;
        if hpa_json
            .get("status")
            .is_some_and(|old| !hpa::differs(old, &status))
        {
            return Ok(());
        }
        self.write_status(obj, status).await
    }

    async fn write_status(
        &self,
        obj: &HorizontalPodAutoscaler,
        status: Value,
    ) -> anyhow::Result<()> {
        let mut updated = obj.clone();
        updated.status = Some(serde_json::from_value(status)?);
        let api: Api<HorizontalPodAutoscaler> =
            Api::namespaced(self.client.clone(), &obj.namespace().unwrap_or_default());
        match api
            .replace_status(&obj.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::common::is_not_found(&e) => Ok(()),
            Err(e) => {
                let msg = crate::common::error_message(&e);
                self.recorder
                    .record(
                        obj,
                        crate::common::events::WARNING,
                        "FailedUpdateStatus",
                        &msg,
                    )
                    .await;
                Err(anyhow::anyhow!(
                    "failed to update status for {}: {msg}",
                    obj.name_any()
                ))
            }
        }
    }

    /// Remembers `key`'s selector and returns every HPA (`namespace/name`, sorted, `key`
    /// included) whose selector picks one of `pods`.
    fn claimants(&self, key: &str, selector: Selector, pods: &[Value]) -> Vec<String> {
        let mut selectors = self.selectors.lock().unwrap_or_else(|e| e.into_inner());
        selectors.insert(key.to_string(), selector);
        let ns = split_key(key).0;
        let mut claimed: Vec<String> = selectors
            .iter()
            .filter(|(other, sel)| {
                split_key(other).0 == ns && pods.iter().any(|p| sel.matches_object(p))
            })
            .map(|(other, _)| other.clone())
            .collect();
        claimed.sort();
        claimed
    }

    /// The URL of the target's `scale` subresource, or upstream's error text.
    async fn scale_url(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> Result<String, String> {
        if let Some((base, plural)) = known_collection(api_version, kind) {
            return Ok(format!("{base}/namespaces/{ns}/{plural}/{name}/scale"));
        }
        let cache_key = (api_version.to_string(), kind.to_string());
        let cached = self
            .collections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
            .filter(|(found, _)| found.elapsed() < DISCOVERY_TTL)
            .map(|(_, r)| r.clone());
        let resource = match cached {
            Some(r) => r,
            None => {
                let all = crate::common::discovery::resources_with(&self.client, &["get"])
                    .await
                    .map_err(|e| crate::common::error_message(&e))?;
                let d = crate::common::discovery::by_kind(&all, api_version, kind).ok_or_else(
                    || {
                        format!("no matches for kind {kind:?} in group {:?}", {
                            api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
                        })
                    },
                )?;
                self.collections
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(cache_key, (Instant::now(), d.resource.clone()));
                d.resource.clone()
            }
        };
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &resource);
        Ok(format!("{}/{name}/scale", api.resource_url()))
    }

    /// The PodMetrics of the selected pods, or why they could not be read.
    async fn pod_metrics(&self, ns: &str, selector: &str) -> (Option<Vec<Value>>, Option<String>) {
        let mut url = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods");
        if !selector.is_empty() {
            url.push_str("?labelSelector=");
            url.extend(form_urlencoded::byte_serialize(selector.as_bytes()));
        }
        let Ok(req) = http::Request::get(url).body(Vec::new()) else {
            return (None, None);
        };
        match self.client.request::<Value>(req).await {
            Ok(list) => (
                Some(
                    list.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                ),
                None,
            ),
            Err(kube::Error::Api(s)) if s.code == 404 => (None, None),
            Err(e) => (None, Some(crate::common::error_message(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn known_targets() {
        assert_eq!(
            known_collection("apps/v1", "Deployment"),
            Some(("/apis/apps/v1", "deployments"))
        );
        assert_eq!(known_collection("example.com/v1", "Widget"), None);
        assert_eq!(
            HorizontalPodAutoscaler::kind(&()),
            "HorizontalPodAutoscaler"
        );
    }
}
