//! The events a kubelet records about a pod's containers (`Pulled`, `Created`,
//! `Started` when they start, `Killing` when they stop), as core/v1 Events with source
//! `kubelet` on the node. Like upstream's event broadcaster, recording never blocks the
//! pod workers: events wait in a bounded queue for a few writer tasks and are dropped
//! when it is full.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

/// Events waiting to be written before new ones are dropped.
const QUEUE: usize = 10_000;
/// Concurrent event writers.
const WRITERS: usize = 4;

/// Records events through a bounded queue; cloning shares the queue.
#[derive(Clone)]
pub struct EventRecorder {
    tx: Option<mpsc::Sender<Event>>,
}

/// One container event: reason and message, about `spec.containers{name}` (or
/// `spec.initContainers{name}`).
pub struct ContainerEvent<'a> {
    pub field_path: String,
    pub reason: &'a str,
    pub message: String,
}

impl EventRecorder {
    /// A recorder writing through `client`, or one that records nothing.
    pub fn new(client: Client, enabled: bool) -> Self {
        if !enabled {
            return EventRecorder { tx: None };
        }
        let (tx, rx) = mpsc::channel::<Event>(QUEUE);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WRITERS {
            let rx = rx.clone();
            let client = client.clone();
            tokio::spawn(async move {
                loop {
                    let Some(ev) = rx.lock().await.recv().await else {
                        return;
                    };
                    let ns = ev.metadata.namespace.clone().unwrap_or_default();
                    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
                    if let Err(e) = api.create(&PostParams::default(), &ev).await {
                        tracing::debug!("recording event {}: {e}", ev.reason.unwrap_or_default());
                    }
                }
            });
        }
        EventRecorder { tx: Some(tx) }
    }

    /// Queues a Normal event about `pod` from the kubelet of `node`.
    pub fn record(&self, pod: &Pod, node: &str, ev: ContainerEvent<'_>) {
        let Some(tx) = &self.tx else { return };
        let now = Time(Timestamp::now());
        let name = format!("{}.{:x}", pod.name_any(), Timestamp::now().as_nanosecond());
        let event = json!({
            "metadata": {"name": name, "namespace": pod.namespace()},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": pod.namespace(),
                "name": pod.name_any(),
                "uid": pod.uid(),
                "resourceVersion": pod.resource_version(),
                "fieldPath": ev.field_path,
            },
            "reason": ev.reason,
            "message": ev.message,
            "source": {"component": "kubelet", "host": node},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": "Normal",
            "reportingComponent": "kubelet",
            "reportingInstance": node,
        });
        match serde_json::from_value::<Event>(event) {
            Ok(e) => {
                if tx.try_send(e).is_err() {
                    tracing::debug!("event queue full; dropping an event");
                }
            }
            Err(e) => tracing::warn!("building an event: {e}"),
        }
    }

    /// The events of a pod's containers starting (init containers first).
    pub fn containers_started(&self, pod: &Pod, node: &str) {
        for (path, c) in containers(pod) {
            let image = c.image.clone().unwrap_or_default();
            let field_path = format!("{path}{{{}}}", c.name);
            let events = [
                (
                    "Pulled",
                    format!(
                        "Container image {image:?} already present on machine and can be accessed by the pod"
                    ),
                ),
                ("Created", format!("Created container: {}", c.name)),
                ("Started", format!("Started container {}", c.name)),
            ];
            for (reason, message) in events {
                let field_path = field_path.clone();
                self.record(
                    pod,
                    node,
                    ContainerEvent {
                        field_path,
                        reason,
                        message,
                    },
                );
            }
        }
    }

    /// The events of a pod's running containers being stopped.
    pub fn containers_stopping(&self, pod: &Pod, node: &str) {
        let spec = pod.spec.clone().unwrap_or_default();
        for c in &spec.containers {
            let ev = ContainerEvent {
                field_path: format!("spec.containers{{{}}}", c.name),
                reason: "Killing",
                message: format!("Stopping container {}", c.name),
            };
            self.record(pod, node, ev);
        }
    }
}

fn containers(pod: &Pod) -> Vec<(&'static str, k8s_openapi::api::core::v1::Container)> {
    let spec = pod.spec.clone().unwrap_or_default();
    let init = spec.init_containers.unwrap_or_default();
    init.into_iter()
        .map(|c| ("spec.initContainers", c))
        .chain(spec.containers.into_iter().map(|c| ("spec.containers", c)))
        .collect()
}
