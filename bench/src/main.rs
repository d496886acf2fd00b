//! `bench-apiserver`: a load generator for any kube-apiserver (ours or upstream's), driven
//! only by a kubeconfig. It measures ConfigMap creates, gets and lists, custom-resource
//! creates with and without CEL validation rules beside ConfigMap creates, watch fan-out,
//! JSON versus protobuf lists of Pods, and gets authorized by RBAC versus by the
//! system:masters shortcut, in throwaway `bench-<random>` namespaces (and CRDs) that it
//! empties and deletes at the end. Progress goes to stderr, the result table to stdout.
//!
//! The client is built not to be the bottleneck: a multi-threaded tokio runtime, one task
//! per connection, each connection its own `kube::Client` (so its own keep-alive TCP+TLS
//! connection, opened before timing), and request bodies built before timing.

mod conn;
mod crds;
mod encodings;
mod fixtures;
mod load;
mod phases;
mod report;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Command-line flags. Counts left unset take the full-size defaults, or the small ones
/// with `--quick`.
#[derive(Parser, Debug)]
#[command(
    name = "bench-apiserver",
    about = "Load generator for a kube-apiserver: creates, gets, lists, CRD creates with CEL, watch fan-out, JSON vs protobuf, RBAC gets."
)]
pub struct Args {
    /// Kubeconfig of the cluster to measure (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<String>,
    /// Small counts, for a smoke run in CI.
    #[arg(long)]
    pub quick: bool,
    /// Creates and gets per connection count, and creates of each kind in the
    /// custom-resource comparison [default: 2000, quick: 200].
    #[arg(long)]
    pub count: Option<usize>,
    /// Connection counts for creates and gets.
    #[arg(long, value_delimiter = ',', default_value = "8,64")]
    pub conns: Vec<usize>,
    /// ConfigMaps per listed namespace, ascending [default: 1000,10000, quick: 100,1000].
    #[arg(long, value_delimiter = ',')]
    pub list_sizes: Option<Vec<usize>>,
    /// Lists per connection, at each size and connection count [default: 50, quick: 10].
    #[arg(long)]
    pub list_repeats: Option<usize>,
    /// Connections for the concurrent lists (they also run on one connection).
    #[arg(long, default_value_t = 8)]
    pub list_conns: usize,
    /// Watchers of the fan-out, each on its own connection [default: 100, quick: 10].
    #[arg(long)]
    pub watchers: Option<usize>,
    /// Updates seen by every watcher [default: 1000, quick: 200].
    #[arg(long)]
    pub watch_updates: Option<usize>,
    /// Pods listed as JSON and as protobuf [default: 5000, quick: 500].
    #[arg(long)]
    pub pods: Option<usize>,
    /// Roles and RoleBindings of other users around the authorized one [default: 1000,
    /// quick: 100].
    #[arg(long)]
    pub roles: Option<usize>,
    /// Gets of one ConfigMap as system:masters, then as the same number via RBAC
    /// [default: 50000, quick: 5000].
    #[arg(long)]
    pub authz_gets: Option<usize>,
    /// Timed lists of the pods per encoding.
    #[arg(long, default_value_t = 5)]
    pub pod_list_repeats: usize,
    /// Upper bound on each phase, in seconds.
    #[arg(long, default_value_t = 300)]
    pub phase_timeout: u64,
    /// Skip the create benchmark.
    #[arg(long)]
    pub skip_creates: bool,
    /// Skip the custom-resource creates (CRDs with and without CEL rules, vs ConfigMaps).
    #[arg(long)]
    pub skip_crds: bool,
    /// Skip the get benchmark.
    #[arg(long)]
    pub skip_gets: bool,
    /// Skip the list benchmark.
    #[arg(long)]
    pub skip_lists: bool,
    /// Skip the watch fan-out.
    #[arg(long)]
    pub skip_watch: bool,
    /// Skip the JSON vs protobuf pod lists.
    #[arg(long)]
    pub skip_pods: bool,
    /// Skip the RBAC vs system:masters gets.
    #[arg(long)]
    pub skip_authz: bool,
    /// Leave the namespaces and their objects behind (to inspect them).
    #[arg(long)]
    pub keep: bool,
}

/// The run's sizes, with `--quick` and the defaults applied.
pub struct Plan {
    pub count: usize,
    pub conns: Vec<usize>,
    pub list_sizes: Vec<usize>,
    pub list_repeats: usize,
    pub list_conns: usize,
    pub watchers: usize,
    pub watch_updates: usize,
    pub pods: usize,
    pub roles: usize,
    pub authz_gets: usize,
    pub pod_list_repeats: usize,
    pub phase_timeout: Duration,
}

impl Plan {
    fn from(args: &Args) -> Result<Self, String> {
        let pick = |set: Option<usize>, full: usize, quick: usize| {
            set.unwrap_or(if args.quick { quick } else { full })
        };
        let mut list_sizes = args.list_sizes.clone().unwrap_or(if args.quick {
            vec![100, 1000]
        } else {
            vec![1000, 10_000]
        });
        list_sizes.sort_unstable();
        list_sizes.dedup();
        let plan = Plan {
            count: pick(args.count, 2000, 200),
            conns: args.conns.clone(),
            list_sizes,
            list_repeats: pick(args.list_repeats, 50, 10),
            list_conns: args.list_conns,
            watchers: pick(args.watchers, 100, 10),
            watch_updates: pick(args.watch_updates, 1000, 200),
            pods: pick(args.pods, 5000, 500),
            roles: pick(args.roles, 1000, 100),
            authz_gets: pick(args.authz_gets, 50_000, 5000),
            pod_list_repeats: args.pod_list_repeats,
            phase_timeout: Duration::from_secs(args.phase_timeout),
        };
        let positive = [
            ("--count", plan.count),
            ("--list-repeats", plan.list_repeats),
            ("--list-conns", plan.list_conns),
            ("--watchers", plan.watchers),
            ("--watch-updates", plan.watch_updates),
            ("--pods", plan.pods),
            ("--authz-gets", plan.authz_gets),
            ("--pod-list-repeats", plan.pod_list_repeats),
            ("--phase-timeout", args.phase_timeout as usize),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!(
                "{flag} must be at least 1 (to leave a benchmark out, use its --skip-... flag)"
            ));
        }
        if plan.conns.is_empty() || plan.conns.contains(&0) {
            return Err("--conns takes a comma-separated list of connection counts, each at least 1 (e.g. 8,64)".into());
        }
        if plan.list_sizes.is_empty() || plan.list_sizes.contains(&0) {
            return Err("--list-sizes takes a comma-separated list of sizes, each at least 1 (e.g. 1000,10000)".into());
        }
        Ok(plan)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match Plan::from(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("!!! {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("!!! cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(phases::run(&args, &plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("!!! {e:#}");
            ExitCode::FAILURE
        }
    }
}
