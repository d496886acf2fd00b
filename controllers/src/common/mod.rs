//! Helpers every controller shares (the counterpart of upstream's
//! `pkg/controller/controller_utils.go` and `controller_ref_manager.go`):
//!
//! - [`events`]: the core/v1 Event recorder (`SuccessfulCreate`, `ScalingReplicaSet`, ...);
//! - [`controller_ref`]: controller ownerReferences, adoption and release of objects
//!   (upstream's `ControllerRefManager`);
//! - [`pods`]: pod predicates (active, ready, available), pods from templates, and
//!   upstream's ranking of pods for deletion;
//! - [`discovery`]: the resources generic controllers (GC, namespace deletion) act on;
//! - [`expectations`]: remembers the pods a controller created or deleted until its
//!   watch cache has seen them, so a controller never creates duplicates;
//! - here: label-selector matching for typed selectors, the host name, and time.

pub mod controller_ref;
pub mod discovery;
pub mod events;
pub mod expectations;
pub mod pods;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use machinery::labels::Selector;

pub use controller_ref::{OwnerInfo, claim};
pub use events::EventRecorder;
pub use expectations::Expectations;

/// Lets any number of reconciles wait for a reflector store to hold its first full list.
///
/// `Store::wait_until_ready` keeps a single waker: when several futures wait on it at
/// once (concurrent reconciles in one runner), only the last one polled is woken, and the
/// others hang for good. The gate waits on the store from one task of its own and opens a
/// watch channel, which wakes every waiter.
#[derive(Clone)]
pub struct ReadyGate(tokio::sync::watch::Receiver<bool>);

impl ReadyGate {
    /// Starts waiting for `store`.
    pub fn of<K>(store: &kube::runtime::reflector::Store<K>) -> Self
    where
        K: kube::Resource + Clone + Send + Sync + 'static,
        K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
    {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let store = store.clone();
        tokio::spawn(async move {
            // an error means the writer is gone: dropping `tx` fails every waiter
            if store.wait_until_ready().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        ReadyGate(rx)
    }

    /// Waits until the store is ready; fails if it never can be.
    pub async fn wait(&self) -> anyhow::Result<()> {
        let mut rx = self.0.clone();
        rx.wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| anyhow::anyhow!("the cache stopped before it was filled"))
    }
}

/// The machine's host name (what upstream puts in leader identities and event sources).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The current time.
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// Compiles a typed `metav1.LabelSelector` as upstream's `LabelSelectorAsSelector`: an
/// empty selector matches everything; an invalid one is an error.
pub fn selector(sel: &LabelSelector) -> Result<Selector, String> {
    let value = serde_json::to_value(sel).map_err(|e| e.to_string())?;
    Selector::from_label_selector(&value)
}

/// Like [`selector`], but `None` (no selector) matches nothing, as upstream's controllers
/// treat a missing selector.
pub fn selector_opt(sel: Option<&LabelSelector>) -> Option<Selector> {
    sel.and_then(|s| selector(s).ok())
}

/// Whether `sel` matches the label map of an object.
pub fn matches(sel: &Selector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .map(|l| {
            l.iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    sel.matches(&map)
}

/// The error type kube-runtime reconcilers return: any error, with its context chain.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ReconcileError(#[from] pub anyhow::Error);

impl From<kube::Error> for ReconcileError {
    fn from(e: kube::Error) -> Self {
        Self(e.into())
    }
}

/// The message of an API error as upstream prints it (`metav1.Status.message`), or the
/// error's display for other failures.
pub fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Whether an API error is a 404 NotFound.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error is a 409 Conflict or AlreadyExists.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// `namespace/name`, the key upstream's work queues use.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_labels() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        };
        let s = selector(&sel).expect("valid");
        let labels: BTreeMap<String, String> = [("app".into(), "web".into())].into();
        assert!(matches(&s, Some(&labels)));
        assert!(!matches(&s, None));
        let everything = selector(&LabelSelector::default()).expect("valid");
        assert!(matches(&everything, None));
        assert!(selector_opt(None).is_none());
    }

    /// Several reconciles waiting at once are all let through (a store's own
    /// `wait_until_ready` would wake only the last of them).
    #[tokio::test]
    async fn a_ready_gate_wakes_every_waiter() {
        use futures::StreamExt;
        use k8s_openapi::api::core::v1::Pod;
        use kube::runtime::watcher;

        let (store, mut writer) = kube::runtime::reflector::store::<Pod>();
        let gate = ReadyGate::of(&store);
        let mut waiters: futures::stream::FuturesUnordered<_> = (0..3)
            .map(|_| {
                let g = gate.clone();
                async move { g.wait().await }
            })
            .collect();
        // every waiter is parked before the store fills
        let parked =
            tokio::time::timeout(std::time::Duration::from_millis(50), waiters.next()).await;
        assert!(parked.is_err(), "no waiter may pass before the list");
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for _ in 0..3 {
            let done = tokio::time::timeout(std::time::Duration::from_secs(5), waiters.next())
                .await
                .expect("every waiter is woken");
            assert!(matches!(done, Some(Ok(()))));
        }
    }
}
