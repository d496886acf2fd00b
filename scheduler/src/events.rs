//! Publishing `events.k8s.io/v1` Events as upstream's scheduler does (reportingController
//! the profile's scheduler name, reportingInstance `<schedulerName>-<hostname>`, names
//! `<object>.<hex nanoseconds>`), asynchronously and with bounded concurrency so the
//! scheduling loop never waits on the API server for them.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Semaphore, mpsc};

/// One event to publish.
#[derive(Debug, Clone)]
pub struct EventSpec {
    pub regarding: ObjectReference,
    pub related: Option<ObjectReference>,
    pub type_: &'static str,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
    pub reporting_controller: String,
}

/// The reference to a pod that events carry.
pub fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// A handle to the background publisher.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::UnboundedSender<EventSpec>,
}

fn micro_time(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl EventRecorder {
    /// Starts the publisher; `hostname` makes the reportingInstance.
    pub fn start(client: kube::Client, hostname: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<EventSpec>();
        let limit = Arc::new(Semaphore::new(16));
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let client = client.clone();
                let host = hostname.clone();
                tokio::spawn(async move {
                    publish(client, &host, ev).await;
                    drop(permit);
                });
            }
        });
        EventRecorder { tx }
    }

    pub fn record(&self, ev: EventSpec) {
        let _ = self.tx.send(ev);
    }
}

/// Whether the API server refused an events.k8s.io Event as invalid, after which events
/// are written in the core/v1 form it accepts (same storage, same fields when read back).
static USE_CORE: AtomicBool = AtomicBool::new(false);

async fn publish(client: kube::Client, hostname: &str, ev: EventSpec) {
    let now = chrono::Utc::now();
    let ns = ev
        .regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = format!(
        "{}.{:x}",
        ev.regarding.name.as_deref().unwrap_or("scheduler"),
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let instance = format!("{}-{}", ev.reporting_controller, hostname);
    if !USE_CORE.load(Ordering::Relaxed) {
        let body = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "eventTime": micro_time(now),
            "reportingController": ev.reporting_controller,
            "reportingInstance": instance,
            "action": ev.action,
            "reason": ev.reason,
            "note": ev.note,
            "type": ev.type_,
            "regarding": ev.regarding,
            "related": ev.related,
        });
        match create(&client, &ns, "events.k8s.io/v1", body).await {
            Ok(()) => return,
            Err(e) if matches!(&e, kube::Error::Api(s) if s.code == 422) => {
                tracing::debug!(error = %e, "events.k8s.io Event refused; writing core/v1 Events");
                USE_CORE.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, reason = ev.reason, "could not record event");
                return;
            }
        }
    }
    let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": ev.regarding,
        "related": ev.related,
        "reason": ev.reason,
        "message": ev.note,
        "type": ev.type_,
        "action": ev.action,
        "source": {"component": ev.reporting_controller},
        "reportingComponent": ev.reporting_controller,
        "reportingInstance": instance,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
    });
    if let Err(e) = create(&client, &ns, "v1", body).await {
        tracing::debug!(error = %e, reason = ev.reason, "could not record event");
    }
}

async fn create(
    client: &kube::Client,
    ns: &str,
    api_version: &str,
    body: serde_json::Value,
) -> Result<(), kube::Error> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, "Event");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "events");
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let obj: kube::api::DynamicObject =
        serde_json::from_value(body).map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &obj).await.map(|_| ())
}
