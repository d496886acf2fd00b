//! `bench-scheduler`: measures a kube-scheduler with the API server in the loop. Against
//! a cluster of simulated nodes (kubelet-sim), it creates pods in three phases (plain,
//! required pod anti-affinity, zone topology spread), each in its own namespace, and
//! prints per phase the pods scheduled per second, p50/p99 create-to-bound latency and
//! the scheduler's RSS. `hack/bench-scheduler` starts the cluster and runs this.
//!
//! Upstream's scheduler_perf fails SchedulingBasic (5,000 nodes, 10,000 pods) below 680
//! pods/s; the table shows each phase against that floor. pods/s counts from the first
//! create to the last binding, so it cannot exceed the creates/s column: when the two
//! are close, the API server (or this client) is the bottleneck, not the scheduler.

mod measure;
mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

use measure::{PhaseConfig, PhaseResult};
use workload::Phase;

/// Upstream scheduler_perf's threshold for SchedulingBasic at 5,000 nodes, pods/s.
const UPSTREAM_FLOOR: f64 = 680.0;

#[derive(Parser, Debug)]
#[command(
    name = "bench-scheduler",
    about = "Scheduler throughput and latency over simulated nodes, with the API server in the loop"
)]
struct Args {
    /// Kubeconfig of the cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<String>,
    /// Small counts, for a smoke run.
    #[arg(long)]
    quick: bool,
    /// Ready nodes to wait for before measuring [default: 5000, quick: 500].
    #[arg(long)]
    nodes: Option<usize>,
    /// Pods per phase [default: 10000, quick: 1000].
    #[arg(long)]
    pods: Option<usize>,
    /// Creates in flight (enough that creating pods does not cap what is measured).
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Phases to run, comma separated (plain, pod-anti-affinity, topology-spread).
    #[arg(long, value_delimiter = ',')]
    phases: Vec<String>,
    /// The scheduler's pid, to report its memory.
    #[arg(long)]
    scheduler_pid: Option<u32>,
    /// Upper bound on each phase, in seconds.
    #[arg(long, default_value_t = 600)]
    phase_timeout: u64,
}

async fn client(kubeconfig: Option<&str>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading --kubeconfig {path}"))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await.context("no kubeconfig")?,
    };
    Client::try_from(config).context("building the client")
}

fn is_ready(n: &Node) -> bool {
    let conds = n.status.as_ref().and_then(|s| s.conditions.as_ref());
    conds.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn wait_for_nodes(client: &Client, want: usize, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + timeout;
    loop {
        let ready = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|n| is_ready(n))
            .count();
        if ready >= want {
            eprintln!("bench-scheduler: {ready} nodes ready");
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready} of {want} nodes became Ready"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn print_table(results: &[PhaseResult]) {
    println!(
        "{:<20} {:>7} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10} {:>22}",
        "phase",
        "pods",
        "bound",
        "pods/s",
        "p50 ms",
        "p99 ms",
        "vs 680/s",
        "creates/s",
        "scheduler RSS (peak)"
    );
    for r in results {
        let rss = r
            .rss_kb
            .map(|(rss, peak)| format!("{} MiB ({} MiB)", rss / 1024, peak / 1024))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:>7} {:>7} {:>9.0} {:>9.0} {:>9.0} {:>9.1}x {:>10.0} {:>22}",
            r.phase.name(),
            r.pods,
            r.bound,
            r.pods_per_second,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.pods_per_second / UPSTREAM_FLOOR,
            r.creates_per_second,
            rss
        );
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let nodes = args.nodes.unwrap_or(if args.quick { 500 } else { 5000 });
    let pods = args.pods.unwrap_or(if args.quick { 1000 } else { 10_000 });
    let phases: Vec<Phase> = if args.phases.is_empty() {
        Phase::ALL.to_vec()
    } else {
        args.phases
            .iter()
            .map(|p| {
                Phase::ALL
                    .into_iter()
                    .find(|ph| ph.name() == p)
                    .with_context(|| format!("unknown phase {p:?}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let client = client(args.kubeconfig.as_deref()).await?;
    wait_for_nodes(&client, nodes, Duration::from_secs(600)).await?;
    let cfg = PhaseConfig {
        pods,
        nodes,
        concurrency: args.concurrency,
        timeout: Duration::from_secs(args.phase_timeout),
        scheduler_pid: args.scheduler_pid,
    };
    let mut results = Vec::new();
    for phase in phases {
        let r = measure::run_phase(&client, phase, &cfg).await?;
        eprintln!(
            "bench-scheduler: {}: {} of {} bound, {:.0} pods/s",
            phase.name(),
            r.bound,
            r.pods,
            r.pods_per_second
        );
        results.push(r);
    }
    println!("scheduler benchmark: {nodes} nodes, {pods} pods per phase");
    print_table(&results);
    Ok(results.iter().all(|r| r.bound == r.pods))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bench-scheduler: not every pod was bound within the phase timeout");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench-scheduler: {e:#}");
            ExitCode::FAILURE
        }
    }
}
