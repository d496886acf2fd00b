//! The event recorder: writes core/v1 `Event`s the way upstream's legacy
//! `record.EventRecorder` does (what `kubectl describe` and `kubectl get events` show).
//!
//! Each call creates one Event named `<object name>.<unix nanos in hex>` in the object's
//! namespace (`default` for cluster-scoped objects), with `source.component`,
//! `reportingComponent` and `reportingInstance` set. Count aggregation and spam filtering
//! are not done. Recording never fails the caller: errors are logged and dropped, as
//! upstream's broadcaster does.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};

/// Upstream's event types.
pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// Records events for one component (`source.component`, e.g. `replicaset-controller`).
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    host: String,
}

impl EventRecorder {
    pub fn new(client: kube::Client, component: &str) -> Self {
        Self {
            client,
            component: component.to_string(),
            host: crate::common::hostname(),
        }
    }

    /// The reference upstream puts in `involvedObject` for a typed object.
    pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
        ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: obj.meta().name.clone(),
            namespace: obj.meta().namespace.clone(),
            uid: obj.meta().uid.clone(),
            resource_version: obj.meta().resource_version.clone(),
            field_path: None,
        }
    }

    /// Records an event about a typed object. Never fails; errors are logged.
    pub async fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        self.record_ref(Self::reference(obj), type_, reason, message)
            .await
    }

    /// Records an event about the object `involved` refers to.
    pub async fn record_ref(
        &self,
        involved: ObjectReference,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let event = self.build(involved, type_, reason, message);
        let ns = event.namespace().unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => tracing::debug!(reason, message, "event recorded"),
            Err(e) => tracing::warn!(reason, message, error = %e, "could not record event"),
        }
    }

    fn build(&self, involved: ObjectReference, type_: &str, reason: &str, msg: &str) -> Event {
        let now = k8s_openapi::jiff::Timestamp::now();
        let nanos = now.as_nanosecond();
        let name = involved.name.clone().unwrap_or_default();
        let namespace = involved
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{nanos:x}")),
                namespace: Some(namespace),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.to_string()),
            message: Some(msg.to_string()),
            type_: Some(type_.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            event_time: None::<MicroTime>,
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;

    #[test]
    fn reference_names_the_kind() {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some("web".into());
        rs.metadata.namespace = Some("ns".into());
        let r = EventRecorder::reference(&rs);
        assert_eq!(r.kind.as_deref(), Some("ReplicaSet"));
        assert_eq!(r.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(r.namespace.as_deref(), Some("ns"));
    }
}
