//! Simulated nodes (kwok-style) in one process: `kubelet-sim` registers N nodes, keeps
//! their leases and heartbeats ([`heartbeat`]), and runs the pods bound to them through
//! the real status lifecycle with no containers ([`pods`]). Everything goes through the
//! API server, as a fleet of real kubelets would: this is how the control plane is
//! tested at thousands of nodes on one machine.

pub mod events;
pub mod heartbeat;
pub mod ipam;
pub mod nodes;
pub mod options;
pub mod pods;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{Controller, controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::Semaphore;

use heartbeat::HeartbeatConfig;
use ipam::{Cidr, NodeIpam, node_pod_cidr};
use nodes::SimNode;
pub use options::Options;
use pods::{NodeRuntime, PodWorkers};

/// The nodes described by the options, with their addresses.
pub fn sim_nodes(o: &Options) -> anyhow::Result<Vec<SimNode>> {
    let pod_range = Cidr::parse(&o.pod_cidr).context("--pod-cidr")?;
    let node_range = Cidr::parse(&o.node_ip_range).context("--node-ip-range")?;
    let specs = o.node_specs()?;
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        anyhow::ensure!(
            names.insert(spec.name.clone()),
            "node {} is listed twice",
            spec.name
        );
        let host_ip = node_range
            .addr(i as u64 + 2)
            .with_context(|| format!("--node-ip-range has no address for node {i}"))?;
        out.push(SimNode {
            host_ip: host_ip.to_string(),
            pod_cidr: node_pod_cidr(&pod_range, i)?,
            spec,
        });
    }
    Ok(out)
}

/// The API client from `--kubeconfig`, else the usual inference.
pub async fn client(o: &Options) -> anyhow::Result<Client> {
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
            .context("no --kubeconfig given and no default kubeconfig found")?,
    };
    // thousands of nodes' writes: keep them from queueing behind slow reads
    config.read_timeout = Some(Duration::from_secs(60));
    Client::try_from(config).context("building the API client")
}

/// Runs the simulated nodes until the process is stopped.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let nodes = sim_nodes(&o)?;
    let client = client(&o).await?;
    let writes = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let cfg = Arc::new(HeartbeatConfig {
        lease_duration_seconds: o.node_lease_duration_seconds,
        report_frequency: o.node_status_report_frequency,
        writes,
    });
    tracing::info!(
        nodes = nodes.len(),
        first = nodes.first().map(|n| n.spec.name.as_str()).unwrap_or(""),
        "starting simulated nodes"
    );
    let n = nodes.len().max(1) as u32;
    let mut runtimes = HashMap::new();
    for (i, node) in nodes.into_iter().enumerate() {
        runtimes.insert(
            node.spec.name.clone(),
            NodeRuntime {
                host_ips: vec![node.host_ip.clone()],
                ipam: Mutex::new(NodeIpam::new(node.pod_cidr)),
            },
        );
        let offset = cfg.renew_interval() * i as u32 / n;
        tokio::spawn(heartbeat::run_node(
            client.clone(),
            node,
            cfg.clone(),
            offset,
        ));
    }

    let events = events::EventRecorder::new(client.clone(), o.events);
    let workers = Arc::new(PodWorkers::new(client.clone(), runtimes, events));
    let pods: Api<Pod> = Api::all(client);
    // one watch for every node: bound pods, filtered to ours in memory
    let wc = watcher::Config::default().fields("spec.nodeName!=");
    let controller = Controller::new(pods, wc).with_config(
        controller::Config::default().concurrency(o.concurrency.clamp(1, 1024) as u16),
    );
    tokio::spawn(collect_garbage(controller.store(), workers.clone()));
    controller
        .shutdown_on_signal()
        .run(pods::reconcile, pods::error_policy, workers)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!("pod worker: {e}");
            }
        })
        .await;
    tracing::info!("stopped");
    Ok(())
}

/// Every 30 s, forgets pods that disappeared without us deleting them. It never waits
/// on the store's readiness: `Store::wait_until_ready` wakes only its latest waiter, and
/// the controller's own runner waits on this store. It need not: runs exist only once
/// the controller has started, that is once the store is complete, and with no runs
/// there is nothing to forget.
async fn collect_garbage(store: kube::runtime::reflector::Store<Pod>, workers: Arc<PodWorkers>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let live: HashSet<String> = store.state().iter().filter_map(|p| p.uid()).collect();
        workers.collect_garbage(&live);
    }
}
