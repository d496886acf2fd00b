//! One measured phase: create the phase's pods as fast as the API server takes them while
//! one watch records when each is seen bound (`spec.nodeName` set), then derive pods/s
//! and create-to-bound latency percentiles from those two clocks (both this process's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::workload::{self, Phase};

/// What one phase measured.
pub struct PhaseResult {
    pub phase: Phase,
    pub pods: usize,
    pub bound: usize,
    pub pods_per_second: f64,
    /// How fast the pods were created: scheduling cannot outrun it.
    pub creates_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// The scheduler's resident and peak resident memory after the phase, in kB.
    pub rss_kb: Option<(u64, u64)>,
}

/// Settings of a phase.
pub struct PhaseConfig {
    pub pods: usize,
    pub nodes: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    pub scheduler_pid: Option<u32>,
}

type Times = Arc<Mutex<HashMap<String, Instant>>>;

fn lock(t: &Times) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `q`-th quantile (0..=1) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// VmRSS and VmHWM of `pid`, in kB.
pub fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => bail!(
            "namespace {name} already exists: measure on a fresh cluster (hack/bench-scheduler starts one)"
        ),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name}"))?,
    }
    // No controller manager runs here to give the namespace its default service
    // account, which the ServiceAccount admission plugin requires of every pod.
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}}))?;
    match Api::<ServiceAccount>::namespaced(client.clone(), name)
        .create(&PostParams::default(), &sa)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating service account {name}/default")),
    }
}

/// Records when each pod of the namespace is first seen bound.
fn watch_bound(api: Api<Pod>, bound: Times) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(pod)) => {
                    if pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_ref())
                        .is_some()
                    {
                        lock(&bound)
                            .entry(pod.name_any())
                            .or_insert_with(Instant::now);
                    }
                }
                Ok(None) => return,
                Err(e) => eprintln!("bench-scheduler: pod watch: {e}"),
            }
        }
    })
}

/// Creates the phase's pods with `concurrency` requests in flight, recording when each
/// create was sent.
async fn create_pods(
    api: &Api<Pod>,
    phase: Phase,
    cfg: &PhaseConfig,
    created: &Times,
) -> anyhow::Result<()> {
    let bodies: Vec<Pod> = (0..cfg.pods)
        .map(|i| serde_json::from_value(workload::pod(phase, i, cfg.pods, cfg.nodes)))
        .collect::<Result<_, _>>()?;
    futures::stream::iter(bodies)
        .map(|pod| {
            let api = api.clone();
            let created = created.clone();
            async move {
                let name = pod.name_any();
                let sent = Instant::now();
                api.create(&PostParams::default(), &pod)
                    .await
                    .with_context(|| format!("creating pod {name}"))?;
                lock(&created).insert(name, sent);
                anyhow::Ok(())
            }
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Runs one phase and measures it.
pub async fn run_phase(
    client: &Client,
    phase: Phase,
    cfg: &PhaseConfig,
) -> anyhow::Result<PhaseResult> {
    let ns = phase.namespace();
    ensure_namespace(client, &ns).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let (created, bound): (Times, Times) = Default::default();
    let watch = watch_bound(api.clone(), bound.clone());
    eprintln!(
        "bench-scheduler: {}: creating {} pods",
        phase.name(),
        cfg.pods
    );
    let start = Instant::now();
    create_pods(&api, phase, cfg, &created).await?;
    let create_secs = start.elapsed().as_secs_f64().max(1e-3);
    eprintln!(
        "bench-scheduler: {}: created in {:.1}s; waiting for bindings",
        phase.name(),
        start.elapsed().as_secs_f64()
    );
    let mut last_report = Instant::now();
    while lock(&bound).len() < cfg.pods && start.elapsed() < cfg.timeout {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "bench-scheduler: {}: {} of {} bound",
                phase.name(),
                lock(&bound).len(),
                cfg.pods
            );
            last_report = Instant::now();
        }
    }
    watch.abort();
    let created = lock(&created).clone();
    let bound = lock(&bound).clone();
    let mut latencies: Vec<Duration> = bound
        .iter()
        .filter_map(|(name, at)| {
            created
                .get(name)
                .map(|sent| at.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort();
    let last = bound.values().max().copied().unwrap_or(start);
    let elapsed = last
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-3);
    Ok(PhaseResult {
        phase,
        pods: cfg.pods,
        bound: bound.len(),
        pods_per_second: bound.len() as f64 / elapsed,
        creates_per_second: cfg.pods as f64 / create_secs,
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
        rss_kb: cfg.scheduler_pid.and_then(rss_kb),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v[..1], 0.99), Duration::from_millis(1));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn own_rss_is_readable() {
        let (rss, peak) = rss_kb(std::process::id()).expect("rss");
        assert!(rss > 0 && peak >= rss);
    }
}
