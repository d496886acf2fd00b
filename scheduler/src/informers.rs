//! Informers: list+watch of nodes, pods, PodDisruptionBudgets, namespaces, and the
//! Services, ReplicationControllers, ReplicaSets and StatefulSets that default topology
//! spreading reads (kube-runtime `watcher`), feeding the cache and the queue. Assigned
//! pods go to the cache (confirming assumed ones); pending pods of our profiles go to the
//! queue; events that may make a pending pod schedulable (node added or changed, assigned
//! pod deleted) move the unschedulable pool back. A re-list drops objects that
//! disappeared meanwhile.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::cache::NodeInfo;
use crate::owners::{Kind, OwnerSelector};
use crate::podinfo::PodInfo;
use crate::scheduler::Scheduler;
use crate::selectors::Selector;

/// Starts all informers and returns once each has delivered its first complete list.
pub async fn start(s: Arc<Scheduler>) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::channel::<&'static str>(8);
    let c = s.client.clone();
    spawn_watch(
        Api::<Node>::all(c.clone()),
        "nodes",
        tx.clone(),
        node_handler(s.clone()),
    );
    spawn_watch(
        Api::<Pod>::all(c.clone()),
        "pods",
        tx.clone(),
        pod_handler(s.clone()),
    );
    spawn_watch(
        Api::<PodDisruptionBudget>::all(c.clone()),
        "poddisruptionbudgets",
        tx.clone(),
        pdb_handler(s.clone()),
    );
    spawn_watch(
        Api::<Namespace>::all(c.clone()),
        "namespaces",
        tx.clone(),
        namespace_handler(s.clone()),
    );
    // what default topology spreading spreads pods against
    spawn_watch(
        Api::<Service>::all(c.clone()),
        "services",
        tx.clone(),
        owner_handler(s.clone(), Kind::Service, |o: &Service| {
            let sel = o.spec.as_ref()?.selector.clone()?;
            Some(OwnerSelector::Labels(sel))
        }),
    );
    spawn_watch(
        Api::<ReplicationController>::all(c.clone()),
        "replicationcontrollers",
        tx.clone(),
        owner_handler(
            s.clone(),
            Kind::ReplicationController,
            |o: &ReplicationController| {
                let sel = o.spec.as_ref()?.selector.clone()?;
                Some(OwnerSelector::Labels(sel))
            },
        ),
    );
    spawn_watch(
        Api::<ReplicaSet>::all(c.clone()),
        "replicasets",
        tx.clone(),
        owner_handler(s.clone(), Kind::ReplicaSet, |o: &ReplicaSet| {
            let sel = &o.spec.as_ref()?.selector;
            Some(OwnerSelector::Selector(Selector::new(Some(sel))))
        }),
    );
    spawn_watch(
        Api::<StatefulSet>::all(c),
        "statefulsets",
        tx,
        owner_handler(s.clone(), Kind::StatefulSet, |o: &StatefulSet| {
            let sel = &o.spec.as_ref()?.selector;
            Some(OwnerSelector::Selector(Selector::new(Some(sel))))
        }),
    );
    let mut pending: HashSet<&str> = [
        "nodes",
        "pods",
        "poddisruptionbudgets",
        "namespaces",
        "services",
        "replicationcontrollers",
        "replicasets",
        "statefulsets",
    ]
    .into();
    while !pending.is_empty() {
        match rx.recv().await {
            Some(name) => {
                pending.remove(name);
            }
            None => anyhow::bail!("informers stopped before syncing"),
        }
    }
    Ok(())
}

fn spawn_watch<K, H>(
    api: Api<K>,
    name: &'static str,
    synced: mpsc::Sender<&'static str>,
    mut handler: H,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    H: FnMut(Event<K>) + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api).boxed();
        let mut first = true;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    let done = matches!(ev, Event::InitDone);
                    handler(ev);
                    if done && first {
                        first = false;
                        let _ = synced.send(name).await;
                    }
                }
                Err(e) => tracing::warn!(resource = name, error = %e, "watch failed; retrying"),
            }
        }
    });
}

fn watcher<K>(api: Api<K>) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default()).default_backoff()
}

fn key_of(ns: Option<&str>, name: Option<&str>) -> String {
    format!("{}/{}", ns.unwrap_or_default(), name.unwrap_or_default())
}

/// Whether a node change could make a pending pod schedulable.
fn node_changed(old: &NodeInfo, new: &NodeInfo) -> bool {
    old.node.is_none()
        || old.labels != new.labels
        || old.taints != new.taints
        || old.unschedulable != new.unschedulable
        || old.allocatable != new.allocatable
}

fn node_handler(s: Arc<Scheduler>) -> impl FnMut(Event<Node>) + Send {
    let mut seen: HashSet<String> = HashSet::new();
    move |ev| match ev {
        Event::Init => seen.clear(),
        Event::InitApply(n) | Event::Apply(n) => {
            let name = n.metadata.name.clone().unwrap_or_default();
            seen.insert(name.clone());
            let node = Arc::new(n);
            let new = NodeInfo::new(node.clone());
            let changed = {
                let mut st = s.state();
                let changed = st
                    .cache
                    .node(&name)
                    .is_none_or(|old| node_changed(old, &new));
                st.cache.upsert_node(node);
                changed
            };
            if changed {
                s.queue().move_all_to_active_or_backoff(Instant::now());
                s.wake.notify_one();
            }
        }
        Event::Delete(n) => {
            s.state()
                .cache
                .remove_node(n.metadata.name.as_deref().unwrap_or_default());
        }
        Event::InitDone => {
            let mut st = s.state();
            let gone: Vec<String> = st
                .cache
                .all()
                .iter()
                .filter(|n| n.node.is_some() && !seen.contains(&n.name))
                .map(|n| n.name.clone())
                .collect();
            for n in gone {
                st.cache.remove_node(&n);
            }
        }
    }
}

fn pod_phase_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn gated(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

/// Applies one observed pod to the cache or the queue.
fn apply_pod(s: &Arc<Scheduler>, pod: Pod) {
    let terminal = pod_phase_terminal(&pod);
    let is_gated = gated(&pod);
    let info = PodInfo::new(Arc::new(pod));
    let key = info.key();
    if let Some(node) = info.node_name().map(str::to_string) {
        let new_here = {
            let mut st = s.state();
            st.set_nomination(&info, None);
            if terminal {
                st.cache.remove_pod(&info.namespace, &info.name)
            } else {
                let known = st.cache.pod_node(&info.namespace, &info.name).is_some();
                st.cache.add_pod(info.clone(), &node, false);
                !known
            }
        };
        s.queue().delete(&key);
        if new_here {
            s.queue().move_all_to_active_or_backoff(Instant::now());
            s.wake.notify_one();
        }
        return;
    }
    if !s.responsible_for(info.scheduler_name()) {
        return;
    }
    if terminal || info.terminating || is_gated {
        s.state().set_nomination(&info, None);
        s.queue().delete(&key);
        return;
    }
    {
        let mut st = s.state();
        if st.cache.is_assumed(&info.namespace, &info.name) {
            return;
        }
        st.set_nomination(&info, info.nominated_node_name());
    }
    s.queue().add_or_update(info, Instant::now());
    s.wake.notify_one();
}

fn delete_pod(s: &Arc<Scheduler>, ns: &str, name: &str) {
    let existed = {
        let mut st = s.state();
        for list in st.nominated.values_mut() {
            list.retain(|p| !(p.namespace == ns && p.name == name));
        }
        st.cache.remove_pod(ns, name)
    };
    s.queue().delete(&format!("{ns}/{name}"));
    if existed {
        s.queue().move_all_to_active_or_backoff(Instant::now());
        s.wake.notify_one();
    }
}

fn pod_handler(s: Arc<Scheduler>) -> impl FnMut(Event<Pod>) + Send {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut relisting = false;
    move |ev| match ev {
        Event::Init => {
            seen.clear();
            relisting = true;
        }
        Event::InitApply(p) | Event::Apply(p) => {
            if relisting {
                seen.insert((
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                ));
            }
            apply_pod(&s, p);
        }
        Event::Delete(p) => delete_pod(
            &s,
            p.metadata.namespace.as_deref().unwrap_or_default(),
            p.metadata.name.as_deref().unwrap_or_default(),
        ),
        Event::InitDone => {
            relisting = false;
            let known = s.state().cache.confirmed_pods();
            for (ns, name) in known {
                if !seen.contains(&(ns.clone(), name.clone())) {
                    delete_pod(&s, &ns, &name);
                }
            }
            let queued = s.queue().keys();
            for k in queued {
                if let Some((ns, name)) = k.split_once('/')
                    && !seen.contains(&(ns.to_string(), name.to_string()))
                {
                    s.queue().delete(&k);
                }
            }
        }
    }
}

fn pdb_handler(s: Arc<Scheduler>) -> impl FnMut(Event<PodDisruptionBudget>) + Send {
    let mut all: HashMap<String, PodDisruptionBudget> = HashMap::new();
    let mut fresh: HashMap<String, PodDisruptionBudget> = HashMap::new();
    move |ev| {
        match ev {
            Event::Init => fresh.clear(),
            Event::InitApply(p) => {
                fresh.insert(
                    key_of(p.metadata.namespace.as_deref(), p.metadata.name.as_deref()),
                    p,
                );
                return;
            }
            Event::InitDone => all = std::mem::take(&mut fresh),
            Event::Apply(p) => {
                all.insert(
                    key_of(p.metadata.namespace.as_deref(), p.metadata.name.as_deref()),
                    p,
                );
            }
            Event::Delete(p) => {
                all.remove(&key_of(
                    p.metadata.namespace.as_deref(),
                    p.metadata.name.as_deref(),
                ));
            }
        }
        s.state().pdbs = all.values().cloned().collect();
    }
}

fn namespace_handler(s: Arc<Scheduler>) -> impl FnMut(Event<Namespace>) + Send {
    move |ev| match ev {
        Event::InitApply(n) | Event::Apply(n) => {
            let name = n.metadata.name.clone().unwrap_or_default();
            let labels = n.metadata.labels.clone().unwrap_or_default();
            s.state().cache.set_namespace(name, labels);
        }
        Event::Delete(n) => {
            s.state()
                .cache
                .remove_namespace(n.metadata.name.as_deref().unwrap_or_default());
        }
        Event::Init | Event::InitDone => {}
    }
}

/// Keeps the selectors of one kind of Service or controller in the cache's owners.
fn owner_handler<K: Resource>(
    s: Arc<Scheduler>,
    kind: Kind,
    selector: fn(&K) -> Option<OwnerSelector>,
) -> impl FnMut(Event<K>) + Send {
    let mut fresh: Vec<(String, String, OwnerSelector)> = Vec::new();
    let names = |o: &K| {
        let m = o.meta();
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
        )
    };
    move |ev| match ev {
        Event::Init => fresh.clear(),
        Event::InitApply(o) => {
            if let Some(sel) = selector(&o) {
                let (ns, name) = names(&o);
                fresh.push((ns, name, sel));
            }
        }
        Event::InitDone => s
            .state()
            .cache
            .owners
            .replace(kind, std::mem::take(&mut fresh)),
        Event::Apply(o) => {
            let (ns, name) = names(&o);
            s.state().cache.owners.set(kind, &ns, &name, selector(&o));
        }
        Event::Delete(o) => {
            let (ns, name) = names(&o);
            s.state().cache.owners.set(kind, &ns, &name, None);
        }
    }
}
