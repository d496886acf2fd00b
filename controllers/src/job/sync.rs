//! One Job's sync: account for finished pods (uncounted first, then the finalizer
//! removed, then counted), decide whether the Job fails, succeeds, is suspended or runs,
//! create or delete pods accordingly, and write the status.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::ObjectRef;

use super::state::{self, PolicyAction, has_finalizer, phase, reason};
use super::{BackoffRecord, Controller, pods};
use crate::common::events::{NORMAL, WARNING};
use crate::common::expectations::Observed;
use crate::workqueue::split_key;

/// At most this many pods are created in one sync (upstream's `MaxPodCreateDeletePerSync`).
const MAX_CREATE: usize = 500;

fn is_terminal(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

impl Controller {
    pub(super) async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.get(&ObjectRef::new(name).within(ns)) else {
            self.expectations.forget(key);
            self.backoff_records().remove(key);
            return Ok(());
        };
        let job_uid = job.metadata.uid.clone();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let owned: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && p.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| r.controller == Some(true) && Some(&r.uid) == job_uid.as_ref())
            })
            .collect();
        if job.metadata.deletion_timestamp.is_some() || state::is_finished(&job) {
            for p in owned.iter().filter(|p| has_finalizer(p)) {
                pods::remove_finalizer(&api, p).await?;
            }
            return Ok(());
        }
        let satisfied = self.expectations.satisfied(key, |u| {
            match owned.iter().find(|p| p.metadata.uid.as_deref() == Some(u)) {
                None => Observed::Absent,
                Some(p) if p.metadata.deletion_timestamp.is_some() => Observed::Terminating,
                Some(_) => Observed::Present,
            }
        });
        let mut job = (*job).clone();
        self.track_finished(key, &mut job, &owned, &api).await?;
        self.reconcile(key, job, &owned, satisfied, &api).await
    }

    /// Accounts for finished pods: records them in `uncountedTerminatedPods` (written
    /// before anything else), removes their finalizers, then moves them into the counts
    /// in `job.status` (written by the caller).
    async fn track_finished(
        &self,
        key: &str,
        job: &mut Job,
        owned: &[Arc<Pod>],
        api: &Api<Pod>,
    ) -> anyhow::Result<()> {
        let mut status = job.status.clone().unwrap_or_default();
        let uc = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut uc_s: BTreeSet<String> = uc.succeeded.unwrap_or_default().into_iter().collect();
        let mut uc_f: BTreeSet<String> = uc.failed.unwrap_or_default().into_iter().collect();
        let mut ignored: BTreeSet<String> = BTreeSet::new();
        let mut fail_job = None;
        let mut new = false;
        let finishing = status.conditions.iter().flatten().any(|c| {
            (c.type_ == "FailureTarget" || c.type_ == "SuccessCriteriaMet") && c.status == "True"
        });
        for p in owned.iter().filter(|p| has_finalizer(p)) {
            let u = uid(p);
            if uc_s.contains(&u) || uc_f.contains(&u) {
                continue;
            }
            if phase(p) == "Succeeded" {
                new |= uc_s.insert(u);
            } else if state::is_pod_failed(job, p)
                || (finishing && p.metadata.deletion_timestamp.is_some())
            {
                let action = if phase(p) == "Failed" {
                    state::match_pod_failure_policy(job, p)
                } else {
                    PolicyAction::Count
                };
                match action {
                    PolicyAction::Ignore => {
                        ignored.insert(u);
                    }
                    PolicyAction::FailJob(m) => {
                        fail_job.get_or_insert(m);
                        new |= uc_f.insert(u);
                    }
                    _ => new |= uc_f.insert(u),
                }
            }
        }
        if new {
            status.uncounted_terminated_pods = Some(uncounted(&uc_s, &uc_f));
            if let Some(m) = &fail_job {
                let conds = status.conditions.get_or_insert_with(Vec::new);
                if !conds.iter().any(|c| c.type_ == "FailureTarget") {
                    let r = reason::POD_FAILURE_POLICY;
                    state::set_condition(conds, "FailureTarget", "True", r, m, Timestamp::now());
                }
            }
            job.status = Some(status.clone());
            *job = self.write_status(job).await?;
        }
        let mut done: BTreeSet<String> = uc_s.union(&uc_f).cloned().collect();
        done.retain(|u| !owned.iter().any(|p| &uid(p) == u && has_finalizer(p)));
        for p in owned.iter().filter(|p| has_finalizer(p)) {
            let u = uid(p);
            if !(uc_s.contains(&u) || uc_f.contains(&u) || ignored.contains(&u)) {
                continue;
            }
            match pods::remove_finalizer(api, p).await {
                Ok(()) => {
                    done.insert(u);
                }
                Err(e) => {
                    tracing::info!(pod = ?p.metadata.name, error = %e, "removing job-tracking finalizer")
                }
            }
        }
        self.count(key, job, owned, &mut uc_s, &mut uc_f, &done);
        Ok(())
    }

    /// Moves the `done` pods from the uncounted lists into the Job's counts.
    fn count(
        &self,
        key: &str,
        job: &mut Job,
        owned: &[Arc<Pod>],
        uc_s: &mut BTreeSet<String>,
        uc_f: &mut BTreeSet<String>,
        done: &BTreeSet<String>,
    ) {
        let mut status = job.status.clone().unwrap_or_default();
        let indexed = is_indexed(job);
        let mut completed = state::parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        let (mut ns, mut nf) = (0, 0);
        for u in done {
            if uc_s.remove(u) {
                ns += 1;
                let p = owned.iter().find(|p| &uid(p) == u);
                if let Some(i) = p.and_then(|p| state::pod_index(p))
                    && indexed
                    && (0..completions).contains(&i)
                {
                    completed.insert(i);
                }
            } else if uc_f.remove(u) {
                nf += 1;
            }
        }
        status.succeeded = Some(status.succeeded.unwrap_or(0) + ns);
        status.failed = Some(status.failed.unwrap_or(0) + nf);
        if indexed {
            let s = state::format_indexes(&completed);
            status.completed_indexes = (!s.is_empty()).then_some(s);
        }
        status.uncounted_terminated_pods = Some(uncounted(uc_s, uc_f));
        job.status = Some(status);
        let mut records = self.backoff_records();
        let rec = records.entry(key.to_string()).or_default();
        if ns > 0 {
            *rec = BackoffRecord::default();
        }
        if nf > 0 {
            rec.failures += nf as u32;
            rec.last_failure = Some(Timestamp::now());
        }
    }

    fn backoff_records(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, BackoffRecord>> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long to wait before creating pods again after failures.
    fn backoff_wait(&self, key: &str, now: Timestamp) -> Option<Duration> {
        let rec = self.backoff_records().get(key).copied()?;
        let last = rec.last_failure?;
        let delay = SignedDuration::try_from(state::backoff(rec.failures)).ok()?;
        let at = last.checked_add(delay).ok()?;
        (now < at).then(|| Duration::try_from(at.duration_since(now)).unwrap_or_default())
    }

    async fn write_status(&self, job: &Job) -> anyhow::Result<Job> {
        let ns = job.metadata.namespace.as_deref().unwrap_or_default();
        let name = job.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        Ok(api
            .replace_status(name, &PostParams::default(), job)
            .await?)
    }

    async fn reconcile(
        &self,
        key: &str,
        mut job: Job,
        owned: &[Arc<Pod>],
        satisfied: bool,
        api: &Api<Pod>,
    ) -> anyhow::Result<()> {
        let now = Timestamp::now();
        let before = job.status.clone();
        let mut status = job.status.clone().unwrap_or_default();
        let mut conds = status.conditions.clone().unwrap_or_default();
        let active: Vec<&Pod> = owned
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| crate::common::pods::is_pod_active(p))
            .collect();
        let terminating = owned
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && !is_terminal(p))
            .count();
        let settled = owned.iter().all(|p| is_terminal(p) && !has_finalizer(p));
        let uc = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let failed = status.failed.unwrap_or(0) + uc.failed.map_or(0, |v| v.len() as i32);
        let succeeded = status.succeeded.unwrap_or(0) + uc.succeeded.map_or(0, |v| v.len() as i32);
        let suspended = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
        let mut deleted = BTreeSet::new();
        if let Some((r, m)) = failure(&job, &conds, failed, now) {
            if !has_true(&conds, "FailureTarget") {
                state::set_condition(&mut conds, "FailureTarget", "True", &r, &m, now);
            }
            deleted = self.delete_pods(key, &job, api, &active).await?;
            if settled && deleted.is_empty() {
                state::set_condition(&mut conds, "Failed", "True", &r, &m, now);
                self.recorder.record(&job, WARNING, &r, &m).await;
            }
        } else if has_true(&conds, "SuccessCriteriaMet")
            || completed(&job, &status, succeeded, active.len())
        {
            let (r, m) = (reason::COMPLETIONS_REACHED, reason::COMPLETIONS_MESSAGE);
            if !has_true(&conds, "SuccessCriteriaMet") {
                state::set_condition(&mut conds, "SuccessCriteriaMet", "True", r, m, now);
            }
            deleted = self.delete_pods(key, &job, api, &active).await?;
            if settled && deleted.is_empty() {
                state::set_condition(&mut conds, "Complete", "True", r, m, now);
                status.completion_time = Some(Time(now));
                self.recorder
                    .record(&job, NORMAL, "Completed", "Job completed")
                    .await;
            }
        } else if suspended {
            deleted = self.delete_pods(key, &job, api, &active).await?;
            if !has_true(&conds, "Suspended") {
                let (r, m) = (reason::SUSPENDED, reason::SUSPENDED_MESSAGE);
                state::set_condition(&mut conds, "Suspended", "True", r, m, now);
                self.recorder
                    .record(&job, NORMAL, "Suspended", "Job suspended")
                    .await;
            }
        } else {
            if has_true(&conds, "Suspended") {
                let (r, m) = (reason::RESUMED, reason::RESUMED_MESSAGE);
                state::set_condition(&mut conds, "Suspended", "False", r, m, now);
                status.start_time = Some(Time(now));
                self.recorder
                    .record(&job, NORMAL, "Resumed", "Job resumed")
                    .await;
            }
            status.start_time.get_or_insert(Time(now));
            job.status = Some(status.clone());
            if satisfied {
                deleted = self
                    .manage(key, &job, api, &active, terminating, succeeded, now)
                    .await?;
            }
            self.requeue_at_deadline(key, &job, now);
        }
        let remaining: Vec<&&Pod> = active
            .iter()
            .filter(|p| !deleted.contains(&uid(p)))
            .collect();
        let ready = remaining
            .iter()
            .filter(|p| crate::common::pods::is_pod_ready(p))
            .count();
        status.active = Some(remaining.len() as i32);
        status.ready = Some(ready as i32);
        status.terminating = Some((terminating + deleted.len()) as i32);
        status.conditions = (!conds.is_empty()).then_some(conds);
        status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        status.succeeded.get_or_insert(0);
        status.failed.get_or_insert(0);
        if before.as_ref() != Some(&status) {
            job.status = Some(status);
            self.write_status(&job).await?;
        }
        Ok(())
    }

    fn requeue_at_deadline(&self, key: &str, job: &Job, now: Timestamp) {
        let ads = job.spec.as_ref().and_then(|s| s.active_deadline_seconds);
        let start = job.status.as_ref().and_then(|s| s.start_time.as_ref());
        if let (Some(ads), Some(start)) = (ads, start) {
            let at = start.0 + SignedDuration::from_secs(ads);
            let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            self.queue.add_after(key, wait + Duration::from_millis(100));
        }
    }

    /// Creates or deletes pods toward the wanted number of active pods; returns the uids
    /// of the pods deleted.
    #[allow(clippy::too_many_arguments)]
    async fn manage(
        &self,
        key: &str,
        job: &Job,
        api: &Api<Pod>,
        active: &[&Pod],
        terminating: usize,
        succeeded: i32,
        now: Timestamp,
    ) -> anyhow::Result<BTreeSet<String>> {
        let spec = job.spec.clone().unwrap_or_default();
        let parallelism = spec.parallelism.unwrap_or(1).max(0) as usize;
        let busy_terminating = if state::only_replace_failed(job) {
            terminating
        } else {
            0
        };
        let (victims, to_create): (Vec<&Pod>, Vec<Option<i32>>) = if is_indexed(job) {
            indexed_plan(job, active, parallelism, busy_terminating)
        } else {
            let want = match spec.completions {
                Some(c) => parallelism.min((c - succeeded).max(0) as usize),
                None if succeeded > 0 => active.len(),
                None => parallelism,
            };
            let victims = if active.len() > want {
                crate::common::pods::pods_to_delete(active, &[], active.len() - want)
            } else {
                vec![]
            };
            let busy = active.len() + busy_terminating;
            (victims, vec![None; want.saturating_sub(busy)])
        };
        let deleted = self.delete_pods(key, job, api, &victims).await?;
        if to_create.is_empty() {
            return Ok(deleted);
        }
        if let Some(wait) = self.backoff_wait(key, now) {
            self.queue.add_after(key, wait);
            return Ok(deleted);
        }
        self.create_pods(
            key,
            job,
            api,
            to_create.into_iter().take(MAX_CREATE).collect(),
        )
        .await?;
        Ok(deleted)
    }

    /// Creates pods in slow-start batches (1, 2, 4, ...), stopping at the first error.
    async fn create_pods(
        &self,
        key: &str,
        job: &Job,
        api: &Api<Pod>,
        mut indexes: Vec<Option<i32>>,
    ) -> anyhow::Result<()> {
        let mut batch = 1;
        while !indexes.is_empty() {
            let chunk: Vec<Option<i32>> = indexes.drain(..batch.min(indexes.len())).collect();
            let results = futures::future::join_all(
                chunk
                    .iter()
                    .map(|i| pods::create(api, pods::new_pod(job, *i))),
            )
            .await;
            let mut failure = None;
            for r in results {
                match r {
                    Ok(p) => {
                        self.expectations
                            .expect_creations(key, p.metadata.uid.clone());
                        let msg = format!("Created pod: {}", p.metadata.name.unwrap_or_default());
                        self.recorder
                            .record(job, NORMAL, "SuccessfulCreate", &msg)
                            .await;
                    }
                    Err(e) => {
                        let msg = format!("Error creating: {}", crate::common::error_message(&e));
                        self.recorder
                            .record(job, WARNING, "FailedCreate", &msg)
                            .await;
                        failure = Some(e);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
            batch *= 2;
        }
        Ok(())
    }

    async fn delete_pods(
        &self,
        key: &str,
        job: &Job,
        api: &Api<Pod>,
        victims: &[&Pod],
    ) -> anyhow::Result<BTreeSet<String>> {
        self.expectations
            .expect_deletions(key, victims.iter().map(|p| uid(p)));
        for p in victims {
            let name = p.metadata.name.clone().unwrap_or_default();
            pods::delete(api, &name).await?;
            let msg = format!("Deleted pod: {name}");
            self.recorder
                .record(job, NORMAL, "SuccessfulDelete", &msg)
                .await;
        }
        Ok(victims.iter().map(|p| uid(p)).collect())
    }
}

fn uncounted(s: &BTreeSet<String>, f: &BTreeSet<String>) -> UncountedTerminatedPods {
    let list = |set: &BTreeSet<String>| (!set.is_empty()).then(|| set.iter().cloned().collect());
    UncountedTerminatedPods {
        succeeded: list(s),
        failed: list(f),
    }
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn has_true(conds: &[JobCondition], type_: &str) -> bool {
    conds.iter().any(|c| c.type_ == type_ && c.status == "True")
}

/// Why the Job fails, if it does: an existing FailureTarget, the backoff limit, or the
/// active deadline.
fn failure(
    job: &Job,
    conds: &[JobCondition],
    failed: i32,
    now: Timestamp,
) -> Option<(String, String)> {
    if let Some(c) = conds
        .iter()
        .find(|c| c.type_ == "FailureTarget" && c.status == "True")
    {
        return Some((
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ));
    }
    let spec = job.spec.clone().unwrap_or_default();
    if failed > spec.backoff_limit.unwrap_or(6) {
        return Some((
            reason::BACKOFF_LIMIT_EXCEEDED.into(),
            reason::BACKOFF_MESSAGE.into(),
        ));
    }
    let start = job.status.as_ref().and_then(|s| s.start_time.as_ref());
    if let (Some(ads), Some(start), false) = (
        spec.active_deadline_seconds,
        start,
        spec.suspend.unwrap_or(false),
    ) && now >= start.0 + SignedDuration::from_secs(ads)
    {
        return Some((
            reason::DEADLINE_EXCEEDED.into(),
            reason::DEADLINE_MESSAGE.into(),
        ));
    }
    None
}

/// Whether the Job has met its completions.
fn completed(job: &Job, status: &JobStatus, succeeded: i32, active: usize) -> bool {
    match job.spec.as_ref().and_then(|s| s.completions) {
        Some(c) if is_indexed(job) => {
            state::parse_indexes(status.completed_indexes.as_deref().unwrap_or("")).len() as i32
                >= c
        }
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active == 0,
    }
}

/// For an Indexed Job: the active pods to delete (duplicate, completed or out-of-range
/// indexes) and the lowest pending indexes to create, up to `parallelism`.
fn indexed_plan<'a>(
    job: &Job,
    active: &[&'a Pod],
    parallelism: usize,
    busy_terminating: usize,
) -> (Vec<&'a Pod>, Vec<Option<i32>>) {
    let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
    let status = job.status.clone().unwrap_or_default();
    let completed = state::parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));
    let mut running = BTreeSet::new();
    let mut victims = vec![];
    for p in active {
        match state::pod_index(p) {
            Some(i)
                if (0..completions).contains(&i)
                    && !completed.contains(&i)
                    && running.insert(i) => {}
            _ => victims.push(*p),
        }
    }
    let slots = parallelism.saturating_sub(running.len() + busy_terminating);
    let pending = (0..completions)
        .filter(|i| !completed.contains(i) && !running.contains(i))
        .take(slots)
        .map(Some)
        .collect();
    (victims, pending)
}
