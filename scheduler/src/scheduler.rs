//! The running scheduler: shared state (cache, nominations, PDBs, queue), the scheduling
//! loop (pop a pod, run the algorithm under the cache lock, assume the pod and hand the
//! binding to a task, or record the failure and try preemption), and start-up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tokio::sync::{Notify, Semaphore};

use crate::algorithm::{Algorithm, FitError, NO_NODES_AVAILABLE, Nominated, ScheduleError};
use crate::cache::Cache;
use crate::config::Profile;
use crate::events::EventRecorder;
use crate::preemption;
use crate::queue::{QueuedPod, SchedulingQueue};

/// Cache and nominations, locked together for a scheduling cycle.
#[derive(Default)]
pub struct State {
    pub cache: Cache,
    pub nominated: Nominated,
    pub pdbs: Vec<PodDisruptionBudget>,
}

impl State {
    /// Records (or clears) where a pending pod is nominated.
    pub fn set_nomination(&mut self, info: &Arc<crate::podinfo::PodInfo>, node: Option<&str>) {
        for list in self.nominated.values_mut() {
            list.retain(|p| !(p.namespace == info.namespace && p.name == info.name));
        }
        self.nominated.retain(|_, l| !l.is_empty());
        if let Some(n) = node {
            self.nominated
                .entry(n.to_string())
                .or_default()
                .push(info.clone());
        }
    }
}

/// Settings of one scheduler process.
pub struct Settings {
    pub profiles: Vec<Profile>,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Binding calls in flight at once.
    pub parallel_binds: usize,
    pub hostname: String,
}

/// Counters the loop maintains (for logs and tests).
#[derive(Default, Debug)]
pub struct Metrics {
    pub scheduled: AtomicU64,
    pub unschedulable: AtomicU64,
    pub bind_errors: AtomicU64,
    pub preemptions: AtomicU64,
}

pub struct Scheduler {
    pub client: kube::Client,
    pub profiles: HashMap<String, Arc<Profile>>,
    pub state: Mutex<State>,
    pub queue: Mutex<SchedulingQueue>,
    pub wake: Notify,
    pub events: EventRecorder,
    pub binds: Arc<Semaphore>,
    pub synced: Arc<AtomicBool>,
    pub metrics: Metrics,
}

impl Scheduler {
    pub fn new(client: kube::Client, s: Settings) -> Arc<Self> {
        let profiles = s
            .profiles
            .into_iter()
            .map(|p| (p.scheduler_name.clone(), Arc::new(p)))
            .collect();
        Arc::new(Scheduler {
            events: EventRecorder::start(client.clone(), s.hostname),
            client,
            profiles,
            state: Mutex::new(State::default()),
            queue: Mutex::new(SchedulingQueue::new(s.initial_backoff, s.max_backoff)),
            wake: Notify::new(),
            binds: Arc::new(Semaphore::new(s.parallel_binds.max(1))),
            synced: Arc::new(AtomicBool::new(false)),
            metrics: Metrics::default(),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn queue(&self) -> MutexGuard<'_, SchedulingQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a pod with this schedulerName is ours.
    pub fn responsible_for(&self, scheduler_name: &str) -> bool {
        self.profiles.contains_key(scheduler_name)
    }

    /// Starts informers, waits for their first lists, then schedules forever.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        crate::informers::start(self.clone()).await?;
        self.synced.store(true, Ordering::Relaxed);
        tracing::info!(profiles = ?self.profiles.keys().collect::<Vec<_>>(), "informers synced; scheduling");
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                me.queue().flush(Instant::now());
                me.wake.notify_one();
            }
        });
        let mut algo = Algorithm::default();
        loop {
            let next = self.queue().pop();
            match next {
                Some(qp) => {
                    self.schedule_one(&mut algo, qp).await;
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// One scheduling cycle for a popped pod.
    pub async fn schedule_one(self: &Arc<Self>, algo: &mut Algorithm, qp: QueuedPod) {
        let info = qp.info.clone();
        let key = info.key();
        let Some(profile) = self.profiles.get(info.scheduler_name()).cloned() else {
            self.queue().delete(&key);
            return;
        };
        let outcome = {
            let mut st = self.state();
            if st.cache.pod_node(&info.namespace, &info.name).is_some() {
                // Already bound or assumed: nothing to do.
                drop(st);
                self.queue().done(&key);
                return;
            }
            let res = algo.schedule(&profile, &st.cache, &st.nominated, &info);
            if let Ok(r) = &res {
                st.cache.add_pod(info.clone(), &r.node, true);
                st.set_nomination(&info, None);
            }
            res
        };
        match outcome {
            Ok(r) => {
                tracing::debug!(pod = %key, node = %r.node, evaluated = r.evaluated, feasible = r.feasible, "scheduled");
                let permit = self.binds.clone().acquire_owned().await;
                let me = self.clone();
                let name = profile.scheduler_name.clone();
                tokio::spawn(async move {
                    crate::binder::bind(&me, &name, info, r.node).await;
                    drop(permit);
                });
            }
            Err(ScheduleError::NoNodes) => {
                self.fail(&profile, &info, NO_NODES_AVAILABLE.to_string(), None, false);
            }
            Err(ScheduleError::Fit(fe)) => self.handle_fit_error(&profile, &info, fe),
        }
    }

    /// A pod fits nowhere: try preemption, then record the failure.
    fn handle_fit_error(
        self: &Arc<Self>,
        profile: &Arc<Profile>,
        info: &Arc<crate::podinfo::PodInfo>,
        mut fe: FitError,
    ) {
        let mut nominate: Option<Option<String>> = None;
        if let Some(args) = &profile.preemption {
            let mut st = self.state();
            let res = preemption::preempt(
                profile,
                args,
                &st.cache,
                info,
                &fe,
                &st.pdbs,
                &mut rand::rng(),
            );
            match res {
                Ok(c) => {
                    self.metrics.preemptions.fetch_add(1, Ordering::Relaxed);
                    // Lower-priority pods nominated to the same node may no longer fit
                    // there: their nomination is cleared so they look elsewhere.
                    let displaced: Vec<_> = st
                        .nominated
                        .get(&c.node)
                        .into_iter()
                        .flatten()
                        .filter(|p| p.priority < info.priority)
                        .cloned()
                        .collect();
                    for p in &displaced {
                        st.set_nomination(p, None);
                    }
                    st.set_nomination(info, Some(&c.node));
                    nominate = Some(Some(c.node.clone()));
                    let me = self.clone();
                    let (name, pod) = (profile.scheduler_name.clone(), info.clone());
                    tokio::spawn(async move {
                        crate::binder::evict_victims(&me, &name, &pod, c).await;
                        for p in displaced {
                            crate::binder::clear_nomination(&me, &p).await;
                        }
                    });
                }
                Err(preemption::NoCandidate(msg)) => {
                    fe.postfilter_msg = Some(format!("preemption: {msg}"));
                    if info.nominated_node_name().is_some() {
                        st.set_nomination(info, None);
                        nominate = Some(None);
                    }
                }
            }
        }
        self.fail(profile, info, fe.message(), nominate, false);
    }

    /// Records a scheduling failure: back to the queue, FailedScheduling event, and the
    /// PodScheduled condition (plus nominatedNodeName when `nominate` says so).
    pub fn fail(
        self: &Arc<Self>,
        profile: &Profile,
        info: &Arc<crate::podinfo::PodInfo>,
        message: String,
        nominate: Option<Option<String>>,
        scheduler_error: bool,
    ) {
        self.metrics.unschedulable.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pod = %info.key(), %message, "unable to schedule pod");
        self.queue()
            .requeue_failed(&info.key(), Instant::now(), scheduler_error);
        self.events.record(crate::events::EventSpec {
            regarding: crate::events::pod_ref(&info.pod),
            related: None,
            type_: "Warning",
            reason: "FailedScheduling",
            action: "Scheduling",
            note: message.clone(),
            reporting_controller: profile.scheduler_name.clone(),
        });
        let reason = if scheduler_error {
            "SchedulerError"
        } else {
            "Unschedulable"
        };
        let me = self.clone();
        let info = info.clone();
        tokio::spawn(async move {
            crate::binder::update_status(&me, &info, reason, &message, nominate).await;
        });
    }
}
