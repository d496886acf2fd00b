//! The periodic pass over all nodes (upstream's `monitorNodeHealth`, `handleDisruption`
//! and `doNoExecuteTaintingPass`): notice nodes coming and going, bring each node's
//! health up to date, queue unhealthy nodes for their NoExecute taint, mark pods of nodes
//! that just stopped being Ready, and adjust the eviction pace to the zones' states.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use super::health::{condition, is_silent, observe, silent_conditions};
use super::taints::{self, NO_EXECUTE, NOT_READY, UNREACHABLE, has_taint, taint};
use super::zones::{
    RateLimitedTimedQueue, ZoneState, compute_zone_state, plan_disruption, zone_key,
};
use super::{Controller, LEASE_NAMESPACE, lock, pod_node};
use crate::common::events::NORMAL;

/// Nodes with this label do not count towards their zone's state.
const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";
/// Attempts at updating one node's health per pass, and the pause between them.
const HEALTH_RETRIES: usize = 5;
const HEALTH_RETRY_SLEEP: Duration = Duration::from_millis(20);
/// Nodes updated at the same time.
const PARALLEL_NODES: usize = 8;

/// What the monitoring loop alone keeps between passes.
#[derive(Default)]
pub(super) struct MonitorState {
    known: HashMap<String, Arc<Node>>,
    zone_states: HashMap<String, ZoneState>,
}

fn name_of(n: &Node) -> &str {
    n.metadata.name.as_deref().unwrap_or_default()
}

fn node_ref(n: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: n.metadata.name.clone(),
        uid: n.metadata.uid.clone(),
        ..Default::default()
    }
}

/// One node's contribution to its zone: the zone and the node's Ready status.
type ZoneVote = (String, Option<String>);

impl Controller {
    fn new_tainter(&self) -> RateLimitedTimedQueue {
        RateLimitedTimedQueue::new(self.config.rates.eviction_qps, Instant::now())
    }

    /// Records an event about a node without holding up the pass.
    fn node_event(&self, node: &Node, reason: &str, message: String) {
        let recorder = self.recorder.clone();
        let reference = node_ref(node);
        let reason = reason.to_string();
        tokio::spawn(async move {
            recorder
                .record_ref(reference, NORMAL, &reason, &message)
                .await;
        });
    }

    fn add_zone(&self, state: &mut MonitorState, node: &Node) {
        let zone = zone_key(node);
        if !state.zone_states.contains_key(&zone) {
            tracing::info!(zone = %zone.escape_debug(), "initializing eviction for zone");
            state.zone_states.insert(zone.clone(), ZoneState::Initial);
            lock(&self.tainters).insert(zone, self.new_tainter());
        }
    }

    /// One pass over every node.
    pub(super) async fn monitor_node_health(&self, state: &mut MonitorState) {
        let nodes = self.nodes.state();
        let current: HashMap<&str, &Arc<Node>> = nodes.iter().map(|n| (name_of(n), n)).collect();
        for n in &nodes {
            if state.known.contains_key(name_of(n)) {
                self.add_zone(state, n);
                continue;
            }
            let name = name_of(n);
            tracing::info!(node = name, "controller observed a new node");
            self.node_event(
                n,
                "RegisteredNode",
                format!("Node {name} event: Registered Node {name} in Controller"),
            );
            state.known.insert(name.to_string(), n.clone());
            self.add_zone(state, n);
            if let Err(e) = self.mark_node_as_reachable(n).await {
                tracing::warn!(node = name, error = %format!("{e:#}"), "failed to remove NoExecute taints");
            }
        }
        let deleted: Vec<Arc<Node>> = state
            .known
            .values()
            .filter(|n| !current.contains_key(name_of(n)))
            .cloned()
            .collect();
        for n in deleted {
            let name = name_of(&n);
            tracing::info!(node = name, "controller observed a node deletion");
            self.node_event(
                &n,
                "RemovingNode",
                format!("Node {name} event: Removing Node {name} from Controller"),
            );
            state.known.remove(name);
            lock(&self.retry).remove(name);
            lock(&self.health).remove(name);
        }

        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in self.pods.state() {
            let node = pod_node(&p);
            if !node.is_empty() {
                by_node.entry(node.to_string()).or_default().push(p);
            }
        }
        let updates: Vec<_> = nodes
            .iter()
            .map(|n| self.update_node(n.clone(), &by_node))
            .collect();
        let votes: Vec<Option<ZoneVote>> = futures::stream::iter(updates)
            .buffer_unordered(PARALLEL_NODES)
            .collect()
            .await;
        let mut zones: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for (zone, ready) in votes.into_iter().flatten() {
            zones.entry(zone).or_default().push(ready);
        }
        self.handle_disruption(state, &zones, &nodes).await;
    }

    /// Brings one node's health up to date and acts on it. Returns the node's vote for
    /// its zone's state (none for excluded nodes or when the update failed).
    async fn update_node(
        &self,
        node: Arc<Node>,
        by_node: &HashMap<String, Vec<Arc<Pod>>>,
    ) -> Option<ZoneVote> {
        let name = name_of(&node).to_string();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut node = node;
        let mut outcome = None;
        for attempt in 1..=HEALTH_RETRIES {
            match self.try_update_node_health(&node).await {
                Ok(o) => {
                    outcome = Some(o);
                    break;
                }
                Err(e) if attempt == HEALTH_RETRIES => {
                    tracing::warn!(node = %name, error = %format!("{e:#}"), "updating node health failed; no pods will be evicted");
                }
                Err(_) => {
                    tokio::time::sleep(HEALTH_RETRY_SLEEP).await;
                    match api.get_opt(&name).await {
                        Ok(Some(fresh)) => node = Arc::new(fresh),
                        _ => {
                            tracing::info!(node = %name, "could not re-read node to retry its health update; probably deleted");
                            return None;
                        }
                    }
                }
            }
        }
        let (observed, current, node) = outcome?;
        let vote = node
            .metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key(EXCLUDE_DISRUPTION))
            .then(|| (zone_key(&node), current.as_ref().map(|c| c.status.clone())));
        let Some(current) = current else {
            return vote;
        };
        self.process_taint_based_eviction(&node, &observed).await;
        let needs_retry = lock(&self.retry).contains(&name);
        let went_not_ready = current.status != "True" && observed.status == "True";
        if went_not_ready {
            tracing::info!(node = %name, "node is now NotReady");
            self.node_event(
                &node,
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
        }
        if went_not_ready || (needs_retry && observed.status != "True") {
            let pods = by_node.get(&name).map(Vec::as_slice).unwrap_or_default();
            if let Err(e) =
                super::pods::mark_pods_not_ready(&self.client, &self.recorder, pods, &name).await
            {
                tracing::info!(node = %name, error = %format!("{e:#}"), "unable to mark all pods NotReady; will retry");
                lock(&self.retry).insert(name);
                return vote;
            }
        }
        lock(&self.retry).remove(&name);
        vote
    }

    /// Observes the node and, once it has been silent too long, writes its conditions
    /// as Unknown. Returns the Ready condition as observed and as it is now, and the node.
    async fn try_update_node_health(
        &self,
        node: &Arc<Node>,
    ) -> anyhow::Result<(NodeCondition, Option<NodeCondition>, Arc<Node>)> {
        let name = name_of(node);
        let now = Timestamp::now();
        let saved = lock(&self.health).get(name).cloned();
        let lease = self
            .leases
            .get(&ObjectRef::new(name).within(LEASE_NAMESPACE))
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        let obs = observe(saved.as_ref(), node, lease, now, self.config.grace);
        let mut current = condition(node, "Ready").cloned();
        let mut health = obs.health.clone();
        let mut out = node.clone();
        if is_silent(&obs, now) {
            let conditions = silent_conditions(node, now);
            let ready = conditions.iter().find(|c| c.type_ == "Ready").cloned();
            tracing::debug!(node = name, since = %obs.health.probe, "node has not been updated");
            if ready.as_ref() != Some(&obs.observed_ready) {
                let patch = json!({
                    "metadata": {"resourceVersion": node.metadata.resource_version},
                    "status": {"conditions": conditions},
                });
                let api: Api<Node> = Api::all(self.client.clone());
                let written = api
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                let written = match written {
                    Ok(n) => n,
                    Err(e) => {
                        lock(&self.health).insert(name.to_string(), health);
                        return Err(e.into());
                    }
                };
                tracing::info!(
                    node = name,
                    "node stopped posting status; conditions set to Unknown"
                );
                health.ready = ready.clone();
                health.ready_transition = now;
                health.lease_renew = lease;
                out = Arc::new(written);
            }
            current = ready;
        }
        lock(&self.health).insert(name.to_string(), health);
        Ok((obs.observed_ready, current, out))
    }

    async fn process_taint_based_eviction(&self, node: &Node, observed: &NodeCondition) {
        let name = name_of(node);
        let (wanted, opposite) = match observed.status.as_str() {
            "False" => (NOT_READY, UNREACHABLE),
            "Unknown" => (UNREACHABLE, NOT_READY),
            "True" => {
                match self.mark_node_as_reachable(node).await {
                    Ok(true) => tracing::info!(
                        node = name,
                        "node is healthy again; removed its NoExecute taints"
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(node = name, error = %format!("{e:#}"), "failed to remove NoExecute taints; will retry")
                    }
                }
                return;
            }
            _ => return,
        };
        let opposite = taint(opposite, NO_EXECUTE);
        if has_taint(node, &opposite) {
            // flip between not-ready and unreachable at once, without waiting in the queue
            let add = [taint(wanted, NO_EXECUTE)];
            if let Err(e) =
                taints::swap_taints(&self.client, &self.nodes, name, &add, &[opposite]).await
            {
                tracing::warn!(node = name, error = %format!("{e:#}"), "failed to swap NoExecute taints; will retry");
            }
        } else if self.mark_node_for_tainting(node, wanted) {
            tracing::info!(node = name, status = %observed.status, "node is not ready; queued for its NoExecute taint");
        }
    }

    /// Queues the node for the NoExecute taint `key`. Returns whether it was queued anew.
    fn mark_node_for_tainting(&self, node: &Node, key: &str) -> bool {
        let name = name_of(node);
        let uid = node.metadata.uid.as_deref().unwrap_or_default();
        let mut tainters = lock(&self.tainters);
        let queue = tainters
            .entry(zone_key(node))
            .or_insert_with(|| self.new_tainter());
        if !has_taint(node, &taint(key, NO_EXECUTE)) {
            // not tainted (any more): queue it again even if it was processed before
            queue.remove(name);
        }
        queue.add(name, uid, Instant::now())
    }

    /// Removes the NoExecute not-ready/unreachable taints and forgets the node in its
    /// zone's queue. Returns whether the node was queued.
    async fn mark_node_as_reachable(&self, node: &Node) -> anyhow::Result<bool> {
        let name = name_of(node);
        let remove = [taint(UNREACHABLE, NO_EXECUTE), taint(NOT_READY, NO_EXECUTE)];
        if remove.iter().any(|t| has_taint(node, t)) {
            taints::swap_taints(&self.client, &self.nodes, name, &[], &remove).await?;
        }
        Ok(lock(&self.tainters)
            .get_mut(&zone_key(node))
            .is_some_and(|q| q.remove(name)))
    }

    /// Adjusts the zones' eviction pace to their new states.
    async fn handle_disruption(
        &self,
        state: &mut MonitorState,
        zones: &HashMap<String, Vec<Option<String>>>,
        nodes: &[Arc<Node>],
    ) {
        let threshold = self.config.unhealthy_zone_threshold;
        let new: HashMap<String, ZoneState> = zones
            .iter()
            .map(|(zone, ready)| {
                let ready: Vec<Option<&str>> = ready.iter().map(Option::as_deref).collect();
                (zone.clone(), compute_zone_state(&ready, threshold).1)
            })
            .collect();
        let plan = plan_disruption(&mut state.zone_states, &new);
        if plan.enter_full_disruption {
            tracing::info!(
                "all nodes are not ready; entering master disruption mode: no evictions"
            );
            for n in nodes {
                if let Err(e) = self.mark_node_as_reachable(n).await {
                    tracing::warn!(node = name_of(n), error = %format!("{e:#}"), "failed to remove NoExecute taints");
                }
            }
            let mut tainters = lock(&self.tainters);
            for zone in state.zone_states.keys() {
                tainters
                    .entry(zone.clone())
                    .or_insert_with(|| self.new_tainter())
                    .swap_limiter(0.0, Instant::now());
            }
            return;
        }
        if plan.exit_full_disruption {
            tracing::info!("some nodes are ready; exiting master disruption mode");
            let now = Timestamp::now();
            let mut health = lock(&self.health);
            for n in nodes {
                if let Some(h) = health.get_mut(name_of(n)) {
                    h.probe = now;
                    h.ready_transition = now;
                }
            }
        }
        let mut tainters = lock(&self.tainters);
        for (zone, zone_state) in plan.set_rates {
            let size = zones.get(&zone).map_or(0, Vec::len);
            let Some(qps) = self.config.rates.qps(zone_state, size) else {
                continue;
            };
            tracing::info!(zone = %zone.escape_debug(), state = ?zone_state, qps, "zone is now in a new state");
            tainters
                .entry(zone)
                .or_insert_with(|| self.new_tainter())
                .swap_limiter(qps, Instant::now());
        }
    }

    /// Gives queued nodes their NoExecute taint, at each zone's pace.
    pub(super) async fn no_execute_tainting_pass(&self) {
        let zones: Vec<String> = lock(&self.tainters).keys().cloned().collect();
        for zone in zones {
            loop {
                let due = lock(&self.tainters)
                    .get_mut(&zone)
                    .and_then(|q| q.next_due(Instant::now()));
                let Some(item) = due else {
                    break;
                };
                let retry_after = self.taint_queued_node(&item.value).await;
                let mut tainters = lock(&self.tainters);
                let Some(queue) = tainters.get_mut(&zone) else {
                    break;
                };
                match retry_after {
                    None => queue.done(&item.value),
                    Some(wait) => queue.retry(&item.value, wait, Instant::now()),
                }
            }
        }
    }

    /// Taints one queued node NoExecute according to its Ready condition (not-ready and
    /// unreachable are mutually exclusive, as the condition is). Returns when to retry,
    /// or `None` when done.
    async fn taint_queued_node(&self, name: &str) -> Option<Duration> {
        let Some(node) = self.nodes.get(&ObjectRef::new(name)) else {
            tracing::info!(node = name, "queued node no longer exists");
            return None;
        };
        let Some(ready) = condition(&node, "Ready") else {
            return Some(Duration::from_millis(50));
        };
        let (add, remove) = match ready.status.as_str() {
            "False" => (NOT_READY, UNREACHABLE),
            "Unknown" => (UNREACHABLE, NOT_READY),
            _ => {
                tracing::debug!(node = name, "queued node is ready again; not tainting it");
                return None;
            }
        };
        let add = [taint(add, NO_EXECUTE)];
        let remove = [taint(remove, NO_EXECUTE)];
        match taints::swap_taints(&self.client, &self.nodes, name, &add, &remove).await {
            Ok(_) => {
                tracing::info!(node = name, taint = %add[0].key, "node tainted NoExecute");
                None
            }
            Err(e) => {
                tracing::warn!(node = name, error = %format!("{e:#}"), "failed to taint node");
                Some(Duration::ZERO)
            }
        }
    }
}
