//! The kube-scheduler binary: upstream's flags, `--config` (KubeSchedulerConfiguration
//! v1), the health port, leader election, then the scheduling loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

/// mimalloc instead of the C library's allocator, as in kube-apiserver: a fifth of this
/// process's CPU went to glibc's malloc and free under load.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kube_scheduler::config::{SchedulerConfig, parse_duration};
use kube_scheduler::leader::{LeaderElectionConfig, LeaderElector};
use kube_scheduler::scheduler::{Scheduler, Settings};

#[derive(Parser, Debug)]
#[command(name = "kube-scheduler", about = "The Kubernetes scheduler, in Rust")]
struct Options {
    /// The path to the configuration file (KubeSchedulerConfiguration).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Path to kubeconfig file with authorization and master location information.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The address of the Kubernetes API server (overrides any value in kubeconfig).
    #[arg(long)]
    master: Option<String>,
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    leader_elect: Option<bool>,
    #[arg(long, value_parser = parse_duration)]
    leader_elect_lease_duration: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    leader_elect_renew_deadline: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    leader_elect_retry_period: Option<Duration>,
    /// The type of resource object used for locking (only `leases`).
    #[arg(long)]
    leader_elect_resource_lock: Option<String>,
    #[arg(long)]
    leader_elect_resource_name: Option<String>,
    #[arg(long)]
    leader_elect_resource_namespace: Option<String>,
    /// The port on which to serve HTTPS health checks; 0 disables it.
    #[arg(long, default_value_t = 10259)]
    secure_port: u16,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: String,
    /// File containing the default x509 certificate for HTTPS.
    #[arg(long)]
    tls_cert_file: Option<String>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long)]
    tls_private_key_file: Option<String>,
    /// Accepted for compatibility; delegated authentication is not performed.
    #[arg(long)]
    authentication_kubeconfig: Option<PathBuf>,
    /// Accepted for compatibility; delegated authorization is not performed.
    #[arg(long)]
    authorization_kubeconfig: Option<PathBuf>,
    /// Accepted for compatibility.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    profiling: Option<bool>,
    /// Number for the log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    verbosity: u8,
}

fn init_tracing(v: u8) {
    let level = match v {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=info,tower=info,rustls=info,kube_client=info,kube_runtime=info"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn client(
    kubeconfig: Option<&PathBuf>,
    master: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no --kubeconfig given and no in-cluster or default kubeconfig found")?,
    };
    if let Some(m) = master {
        config.cluster_url = m.parse().with_context(|| format!("--master {m}"))?;
    }
    kube::Client::try_from(config).context("building the API client")
}

fn leader_config(
    o: &Options,
    c: &SchedulerConfig,
    identity: String,
) -> anyhow::Result<(bool, LeaderElectionConfig)> {
    let le = &c.leader_election;
    let dur =
        |flag: Option<Duration>, cfg: &Option<String>, def: u64| -> anyhow::Result<Duration> {
            match (flag, cfg) {
                (Some(d), _) => Ok(d),
                (None, Some(s)) => parse_duration(s).map_err(|e| anyhow::anyhow!(e)),
                (None, None) => Ok(Duration::from_secs(def)),
            }
        };
    let lock = o
        .leader_elect_resource_lock
        .clone()
        .or(le.resource_lock.clone())
        .unwrap_or("leases".into());
    anyhow::ensure!(
        lock == "leases",
        "unsupported --leader-elect-resource-lock {lock:?}: only leases"
    );
    let cfg = LeaderElectionConfig {
        namespace: o
            .leader_elect_resource_namespace
            .clone()
            .or(le.resource_namespace.clone())
            .unwrap_or("kube-system".into()),
        name: o
            .leader_elect_resource_name
            .clone()
            .or(le.resource_name.clone())
            .unwrap_or("kube-scheduler".into()),
        identity,
        lease_duration: dur(o.leader_elect_lease_duration, &le.lease_duration, 15)?,
        renew_deadline: dur(o.leader_elect_renew_deadline, &le.renew_deadline, 10)?,
        retry_period: dur(o.leader_elect_retry_period, &le.retry_period, 2)?,
    };
    Ok((o.leader_elect.or(le.leader_elect).unwrap_or(true), cfg))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Options::parse();
    init_tracing(o.verbosity);
    let cfg = match &o.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading --config {}", p.display()))?;
            SchedulerConfig::from_yaml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => SchedulerConfig::default(),
    };
    let mut profiles = cfg.build_profiles().map_err(|e| anyhow::anyhow!(e))?;
    for p in &mut profiles {
        p.percentage_of_nodes_to_score = p
            .percentage_of_nodes_to_score
            .or(cfg.percentage_of_nodes_to_score);
    }
    let kubeconfig = Some(cfg.client_connection.kubeconfig.clone())
        .filter(|k| !k.is_empty())
        .map(PathBuf::from)
        .or(o.kubeconfig.clone());
    let client = client(kubeconfig.as_ref(), o.master.as_deref()).await?;
    let hostname = kube_scheduler::health::hostname();
    let sched = Scheduler::new(
        client.clone(),
        Settings {
            profiles,
            initial_backoff: Duration::from_secs(cfg.pod_initial_backoff_seconds.unwrap_or(1)),
            max_backoff: Duration::from_secs(cfg.pod_max_backoff_seconds.unwrap_or(10)),
            parallel_binds: 64,
            hostname: hostname.clone(),
        },
    );
    if o.secure_port != 0 {
        let tls = o.tls_cert_file.clone().zip(o.tls_private_key_file.clone());
        let addr = kube_scheduler::health::serve(
            &o.bind_address,
            o.secure_port,
            tls,
            sched.synced.clone(),
        )
        .await?;
        tracing::info!(%addr, "serving securely");
    }
    let identity = format!("{hostname}_{}", uuid::Uuid::new_v4());
    let (elect, le) = leader_config(&o, &cfg, identity)?;
    if !elect {
        return Arc::clone(&sched).run().await;
    }
    let mut elector = LeaderElector::new(client, le);
    elector.acquire().await;
    tokio::select! {
        r = sched.run() => r,
        _ = elector.keep_renewing() => anyhow::bail!("leaderelection lost"),
    }
}
