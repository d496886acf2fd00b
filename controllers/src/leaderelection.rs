//! Leader election on a `coordination.k8s.io/v1` Lease, as upstream's
//! `client-go/tools/leaderelection` with a `LeaseLock`.
//!
//! A candidate tries every `retry_period` to acquire the Lease: it may take it when it
//! does not exist, is held by nobody, or has not been renewed (as observed on the
//! candidate's own clock, which makes clock skew between machines harmless) for
//! `lease_duration`. The leader renews every `retry_period`; if it cannot renew within
//! `renew_deadline` it has lost leadership, and the binary exits non-zero as upstream's
//! kube-controller-manager does. On shutdown the leader releases the Lease (empty
//! holder) so another candidate takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use crate::common::{EventRecorder, events};

/// The flags that configure an election.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Upstream's identity for a candidate: `<hostname>_<uuid>`.
pub fn identity() -> String {
    format!("{}_{}", crate::common::hostname(), uuid::Uuid::new_v4())
}

/// One candidate in an election.
pub struct LeaderElector {
    api: Api<Lease>,
    config: Config,
    recorder: EventRecorder,
    /// The last lease spec seen and when (on our clock) it changed.
    observed: Option<(LeaseSpec, Instant)>,
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: Config) -> Self {
        Self {
            api: Api::namespaced(client.clone(), &config.namespace),
            recorder: EventRecorder::new(client, &config.name),
            config,
            observed: None,
        }
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        tracing::info!(lease = %self.lease_key(), "attempting to acquire leader lease");
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.lease_key(), "successfully acquired lease");
                    let msg = format!("{} became leader", self.config.identity);
                    if let Ok(lease) = self.api.get(&self.config.name).await {
                        self.recorder
                            .record(&lease, events::NORMAL, "LeaderElection", &msg)
                            .await;
                    }
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "error retrieving resource lock"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews the lease every retry period; returns when leadership is lost (no
    /// successful renewal within the renew deadline, or someone else holds it).
    pub async fn keep_renewing(&mut self) {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renew = Instant::now(),
                Ok(false) => {
                    tracing::error!("leader lease taken over by another candidate");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "failed to renew lease"),
            }
            if last_renew.elapsed() > self.config.renew_deadline {
                tracing::error!("failed to renew lease within the renew deadline");
                return;
            }
        }
    }

    /// Gives the lease up (empty holder), if we still hold it.
    pub async fn release(&mut self) {
        let Ok(mut lease) = self.api.get(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        spec.acquire_time = Some(now_micro());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.lease_key(), "released leader lease"),
            Err(e) => tracing::warn!(error = %e, "failed to release lease"),
        }
    }

    fn lease_key(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn our_spec(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = now_micro();
        let ours = previous.and_then(|p| p.holder_identity.as_deref())
            == Some(self.config.identity.as_str());
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: if ours {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if ours || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        }
    }

    /// One attempt: true when we hold the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.our_spec(None)),
            };
            let created = self.api.create(&PostParams::default(), &lease).await?;
            self.observe(created.spec.unwrap_or_default());
            return Ok(true);
        };
        let current = lease.spec.clone().unwrap_or_default();
        self.observe(current.clone());
        let holder = current.holder_identity.as_deref().unwrap_or("");
        let ours = holder == self.config.identity;
        if !holder.is_empty() && !ours && !self.observed_expired(&current) {
            return Ok(false);
        }
        lease.spec = Some(self.our_spec(Some(&current)));
        let updated = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        self.observe(updated.spec.unwrap_or_default());
        Ok(true)
    }

    fn observe(&mut self, spec: LeaseSpec) {
        if self.observed.as_ref().map(|(s, _)| s) != Some(&spec) {
            self.observed = Some((spec, Instant::now()));
        }
    }

    fn observed_expired(&self, current: &LeaseSpec) -> bool {
        let duration = current
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(self.config.lease_duration);
        match &self.observed {
            Some((_, at)) => at.elapsed() > duration,
            None => false,
        }
    }
}
