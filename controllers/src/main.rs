//! The kube-controller-manager binary: parses flags, connects, and runs the enabled
//! controllers (behind leader election when `--leader-elect`).

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

/// mimalloc instead of the C library's allocator, as in kube-apiserver: a fifth of this
/// process's CPU went to glibc's malloc and free under load.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kube_controller_manager::credentials::ServiceAccountClients;
use kube_controller_manager::leaderelection::{self, LeaderElector};
use kube_controller_manager::{Context, Options, controllers, is_enabled};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    init_tracing(options.verbosity);
    let (config, client) = client(&options).await?;
    let accounts = if options.use_service_account_credentials {
        Some(Arc::new(ServiceAccountClients::new(
            client.clone(),
            config,
        )?))
    } else {
        None
    };
    let ctx = Arc::new(Context { client, options });
    if !ctx.options.leader_elect {
        return run_until_signal(ctx, accounts).await;
    }
    if ctx.options.leader_elect_resource_lock != "leases" {
        anyhow::bail!(
            "--leader-elect-resource-lock={} is not supported (only leases)",
            ctx.options.leader_elect_resource_lock
        );
    }
    let mut elector = LeaderElector::new(ctx.client.clone(), election_config(&ctx.options));
    elector.acquire().await;
    let outcome = tokio::select! {
        r = run_until_signal(ctx.clone(), accounts) => r,
        () = elector.keep_renewing() => {
            tracing::error!("leaderelection lost");
            std::process::exit(1);
        }
    };
    elector.release().await;
    outcome
}

fn election_config(o: &Options) -> leaderelection::Config {
    leaderelection::Config {
        namespace: o.leader_elect_resource_namespace.clone(),
        name: o.leader_elect_resource_name.clone(),
        identity: leaderelection::identity(),
        lease_duration: o.leader_elect_lease_duration,
        renew_deadline: o.leader_elect_renew_deadline,
        retry_period: o.leader_elect_retry_period,
    }
}

/// Runs the controllers until SIGTERM/SIGINT (Ok) or until one fails (Err).
async fn run_until_signal(
    ctx: Arc<Context>,
    accounts: Option<Arc<ServiceAccountClients>>,
) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = run_controllers(ctx, accounts) => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted, shutting down"); Ok(()) }
        _ = term.recv() => { tracing::info!("terminated, shutting down"); Ok(()) }
    }
}

async fn run_controllers(
    ctx: Arc<Context>,
    accounts: Option<Arc<ServiceAccountClients>>,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in controllers() {
        if !is_enabled(&ctx.options.controllers, c.name, c.enabled_by_default) {
            tracing::info!(controller = c.name, "disabled");
            continue;
        }
        tracing::info!(controller = c.name, "starting");
        let name = c.name;
        // with --use-service-account-credentials each controller gets its own identity
        let own = match &accounts {
            Some(a) => Arc::new(Context {
                client: a.client_for(name).await?,
                options: ctx.options.clone(),
            }),
            None => ctx.clone(),
        };
        let fut = (c.run)(own);
        tasks.spawn(async move { (name, fut.await) });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((name, Ok(()))) => tracing::info!(controller = name, "stopped"),
            Ok((name, Err(e))) => anyhow::bail!("controller {name} failed: {e:#}"),
            Err(e) => anyhow::bail!("controller task panicked: {e}"),
        }
    }
    // nothing enabled (or everything stopped): stay up like upstream, serving nothing
    futures::future::pending::<()>().await;
    Ok(())
}

fn init_tracing(v: u8) {
    let level = match v {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=info,tower=info,rustls=info"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn client(o: &Options) -> anyhow::Result<(kube::Config, kube::Client)> {
    let mut config = match &o.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("loading --kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no --kubeconfig given and no in-cluster or default kubeconfig found")?,
    };
    if let Some(master) = &o.master {
        config.cluster_url = master
            .parse()
            .with_context(|| format!("--master {master}"))?;
    }
    let client = kube::Client::try_from(config.clone()).context("building the API client")?;
    Ok((config, client))
}
