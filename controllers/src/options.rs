//! Command-line flags, with upstream kube-controller-manager's names and defaults.

use std::path::PathBuf;

use clap::Parser;

/// Go-style durations (`15s`, `1h30m`), shared with the other components.
pub use machinery::duration::parse_duration;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "kube-controller-manager",
    about = "The Kubernetes controller manager, in Rust"
)]
pub struct Options {
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// The address of the Kubernetes API server (overrides any value in kubeconfig).
    #[arg(long)]
    pub master: Option<String>,

    /// Controllers to enable: '*' enables all on-by-default controllers, 'foo' enables
    /// foo, '-foo' disables foo.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,

    /// Start a leader election client and gain leadership before running controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,

    /// How long non-leaders wait after observing a renewal before trying to take over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: std::time::Duration,

    /// How long the leader retries renewing before giving up leadership.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: std::time::Duration,

    /// How long clients wait between attempts to acquire or renew leadership.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: std::time::Duration,

    /// The lock object's type (only `leases` is supported).
    #[arg(long, default_value = "leases")]
    pub leader_elect_resource_lock: String,

    /// The lock object's name.
    #[arg(long, default_value = "kube-controller-manager")]
    pub leader_elect_resource_name: String,

    /// The lock object's namespace.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,

    /// PEM CA certificate used to issue cluster-scoped certificates (CSR signing).
    #[arg(long)]
    pub cluster_signing_cert_file: Option<PathBuf>,

    /// PEM CA private key used to sign cluster-scoped certificates.
    #[arg(long)]
    pub cluster_signing_key_file: Option<PathBuf>,

    /// Validity of signed certificates.
    #[arg(long, default_value = "8760h", value_parser = parse_duration)]
    pub cluster_signing_duration: std::time::Duration,

    /// CA certificate for the kubernetes.io/kubelet-serving signer (instead of
    /// --cluster-signing-cert-file).
    #[arg(long)]
    pub cluster_signing_kubelet_serving_cert_file: Option<PathBuf>,
    /// CA key for the kubernetes.io/kubelet-serving signer.
    #[arg(long)]
    pub cluster_signing_kubelet_serving_key_file: Option<PathBuf>,
    /// CA certificate for the kubernetes.io/kube-apiserver-client-kubelet signer.
    #[arg(long)]
    pub cluster_signing_kubelet_client_cert_file: Option<PathBuf>,
    /// CA key for the kubernetes.io/kube-apiserver-client-kubelet signer.
    #[arg(long)]
    pub cluster_signing_kubelet_client_key_file: Option<PathBuf>,
    /// CA certificate for the kubernetes.io/kube-apiserver-client signer.
    #[arg(long)]
    pub cluster_signing_kube_apiserver_client_cert_file: Option<PathBuf>,
    /// CA key for the kubernetes.io/kube-apiserver-client signer.
    #[arg(long)]
    pub cluster_signing_kube_apiserver_client_key_file: Option<PathBuf>,
    /// CA certificate for the kubernetes.io/legacy-unknown signer.
    #[arg(long)]
    pub cluster_signing_legacy_unknown_cert_file: Option<PathBuf>,
    /// CA key for the kubernetes.io/legacy-unknown signer.
    #[arg(long)]
    pub cluster_signing_legacy_unknown_key_file: Option<PathBuf>,

    /// PEM private key used to sign service account tokens (legacy token secrets).
    #[arg(long)]
    pub service_account_private_key_file: Option<PathBuf>,

    /// Root CA published as `ca.crt` in `kube-root-ca.crt` ConfigMaps and token secrets.
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,

    /// Use individual service account credentials for each controller.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub use_service_account_credentials: bool,

    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_rc_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_statefulset_syncs: usize,
    #[arg(long, default_value_t = 2)]
    pub concurrent_daemonset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_job_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_cron_job_syncs: usize,
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_serviceaccount_token_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_resource_quota_syncs: usize,

    /// How often every resource quota's usage is recomputed in full.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resource_quota_sync_period: std::time::Duration,
    #[arg(long, default_value_t = 5)]
    pub concurrent_ttl_after_finished_syncs: usize,

    /// How long a running Node may be unresponsive (no Ready heartbeat, no Lease renewal)
    /// before it is marked unhealthy (upstream's default since 1.32).
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,

    /// How long a starting Node may be unresponsive before it is marked unhealthy.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub node_startup_grace_period: std::time::Duration,

    /// Nodes per second whose pods are evicted (NoExecute-tainted) when a zone is healthy.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f32,

    /// Nodes per second whose pods are evicted when a zone is unhealthy (0 for clusters of
    /// at most --large-cluster-size-threshold nodes).
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f32,

    /// Nodes from which the node-lifecycle controller treats the cluster as large.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: i32,

    /// Fraction of a zone's Nodes (at least 3) that must be not Ready for the zone to be
    /// unhealthy.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f32,

    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: std::time::Duration,

    /// Terminated pods kept before the pod garbage collector deletes the oldest.
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i64,

    /// Whether the garbage collector runs.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_garbage_collector: bool,

    /// CIDR range for pods (used with --allocate-node-cidrs).
    #[arg(long)]
    pub cluster_cidr: Option<String>,

    /// Whether to allocate pod CIDRs to nodes.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,

    /// The port for HTTPS health and metrics (0 disables).
    #[arg(long, default_value_t = 10257)]
    pub secure_port: u16,

    /// The address the health and metrics server binds to.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: String,

    /// Log verbosity (upstream's -v).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn upstream_flags_parse() {
        let o = Options::try_parse_from([
            "kube-controller-manager",
            "--kubeconfig=/tmp/k",
            "--controllers=*,-deployment",
            "--leader-elect=false",
            "--node-monitor-grace-period=20s",
            "-v=4",
        ])
        .expect("parse");
        assert!(!o.leader_elect);
        assert_eq!(o.controllers, vec!["*", "-deployment"]);
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(20));
        assert_eq!(o.verbosity, 4);
    }
}
