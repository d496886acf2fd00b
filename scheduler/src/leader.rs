//! Leader election on a `coordination.k8s.io/v1` Lease with client-go's semantics: a
//! candidate takes the lease when it is free or when the holder's record has not changed
//! for `leaseDuration` as observed on the candidate's own clock; the holder renews every
//! `retryPeriod` and gives up leadership when it cannot renew within `renewDeadline`.
//! Taking over increments `leaseTransitions` and sets `acquireTime`.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// A candidate for the lease.
pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaderElectionConfig,
    /// The last record seen and when it was first seen (local clock).
    observed: Option<(LeaseSpec, Instant)>,
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

impl LeaderElector {
    pub fn new(client: kube::Client, cfg: LeaderElectionConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    fn fresh_spec(&self, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs() as i32),
            acquire_time: Some(now_micro()),
            renew_time: Some(now_micro()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One `tryAcquireOrRenew`: whether we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> bool {
        let lease = match self.api.get_opt(&self.cfg.name).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "error retrieving resource lock");
                return false;
            }
        };
        let Some(mut lease) = lease else {
            let l = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.fresh_spec(0)),
            };
            return match self.api.create(&PostParams::default(), &l).await {
                Ok(created) => {
                    self.observed = created.spec.map(|s| (s, Instant::now()));
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "error initially creating leader election record");
                    false
                }
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if self.observed.as_ref().is_none_or(|(o, _)| *o != spec) {
            self.observed = Some((spec.clone(), Instant::now()));
        }
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.cfg.identity;
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let observed_at = self
            .observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        if !holder.is_empty() && !ours && observed_at + duration > Instant::now() {
            return false;
        }
        let new_spec = if ours {
            LeaseSpec {
                renew_time: Some(now_micro()),
                lease_duration_seconds: Some(self.cfg.lease_duration.as_secs() as i32),
                ..spec
            }
        } else {
            self.fresh_spec(spec.lease_transitions.unwrap_or(0) + 1)
        };
        lease.spec = Some(new_spec);
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observed = updated.spec.map(|s| (s, Instant::now()));
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "failed to update lock");
                false
            }
        }
    }

    /// Blocks until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        tracing::info!(lease = %format!("{}/{}", self.cfg.namespace, self.cfg.name), "attempting to acquire leader lease");
        loop {
            if self.try_acquire_or_renew().await {
                tracing::info!(identity = %self.cfg.identity, "successfully acquired lease");
                return;
            }
            tokio::time::sleep(self.cfg.retry_period).await;
        }
    }

    /// Renews until renewal fails for longer than the renew deadline, then returns.
    pub async fn keep_renewing(&mut self) {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            if self.try_acquire_or_renew().await {
                last_renew = Instant::now();
            } else if last_renew.elapsed() > self.cfg.renew_deadline {
                tracing::error!("failed to renew lease: timed out waiting for the condition");
                return;
            }
        }
    }
}
