//! `kubelet-sim`'s flags and its node list: N identical nodes from flags, or a YAML file
//! of node groups (`--config`) whose unset fields fall back to the flags.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use k8s_openapi::api::core::v1::Taint;
use serde::Deserialize;

/// Go-style durations (`15s`, `1h30m`), shared with the other components.
pub use machinery::duration::parse_duration;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "kubelet-sim",
    about = "Simulated kubelets: registers many nodes, renews their leases and runs their pods without containers"
)]
pub struct Options {
    /// Path to a kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// How many nodes to simulate (ignored with --config).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,

    /// Node names are this prefix and a number from 0.
    #[arg(long, default_value = "sim-")]
    pub node_name_prefix: String,

    /// CPU capacity (and allocatable) of each node.
    #[arg(long, default_value = "8")]
    pub cpu: String,

    /// Memory capacity of each node.
    #[arg(long, default_value = "32Gi")]
    pub memory: String,

    /// Pod capacity of each node (the kubelet's --max-pods).
    #[arg(long, default_value = "110", alias = "max-pods")]
    pub pods: String,

    /// Ephemeral storage capacity of each node.
    #[arg(long, default_value = "100Gi")]
    pub ephemeral_storage: String,

    /// Labels added to every node: key=value,...
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,

    /// Taints every node registers with: key=value:Effect,...
    #[arg(long, value_delimiter = ',')]
    pub register_with_taints: Vec<String>,

    /// Spread nodes over this many zones (label topology.kubernetes.io/zone=zone-<i mod
    /// N>); 0 sets no zone.
    #[arg(long, default_value_t = 0)]
    pub zones: usize,

    /// A YAML list of node groups: `{count, name, cpu, memory, pods, labels, taints}`.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Pod addresses: node i gets the i-th /24 of this range and its pods addresses in it.
    #[arg(long, default_value = "10.128.0.0/9")]
    pub pod_cidr: String,

    /// Node addresses: node i gets the (i+2)-th address of this range as its InternalIP.
    #[arg(long, default_value = "172.16.0.0/12")]
    pub node_ip_range: String,

    /// Lease duration; leases are renewed every quarter of it, as the kubelet does.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,

    /// How often each node's Ready heartbeat is written when nothing else changes.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub node_status_report_frequency: Duration,

    /// Record the kubelet's container events (Pulled, Created, Started, Killing).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub events: bool,

    /// API writes in flight at once (status updates, leases, registrations).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,

    /// Log verbosity (upstream's -v).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// A taint in the kubelet's flag syntax `key[=value]:Effect`.
pub fn parse_taint(s: &str) -> anyhow::Result<Taint> {
    let (kv, effect) = s
        .rsplit_once(':')
        .with_context(|| format!("taint {s:?}: want key=value:Effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        bail!("taint {s:?}: effect must be NoSchedule, PreferNoSchedule or NoExecute");
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if key.is_empty() {
        bail!("taint {s:?}: empty key");
    }
    Ok(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

/// Labels in `key=value` form.
pub fn parse_labels(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items.iter().filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .with_context(|| format!("label {item:?}: want key=value"))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// One group of nodes in the `--config` file.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// How many nodes (named from the prefix and a running number); default 1.
    pub count: Option<usize>,
    /// An explicit name (only with count 1).
    pub name: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub pods: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
}

/// One node to simulate, everything resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

impl Options {
    /// The nodes to simulate, from `--config` or `--nodes`.
    pub fn node_specs(&self) -> anyhow::Result<Vec<NodeSpec>> {
        let groups = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --config {}", path.display()))?;
                serde_yaml::from_str::<Vec<NodeGroup>>(&text)
                    .with_context(|| format!("parsing --config {}", path.display()))?
            }
            None => vec![NodeGroup {
                count: Some(self.nodes),
                ..Default::default()
            }],
        };
        let labels = parse_labels(&self.node_labels)?;
        let taints = self
            .register_with_taints
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| parse_taint(t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        for g in groups {
            let count = g.count.unwrap_or(1);
            if g.name.is_some() && count != 1 {
                bail!("--config: a group with a name must have count 1");
            }
            for _ in 0..count {
                let i = out.len();
                let mut l = labels.clone();
                if self.zones > 0 {
                    l.insert(
                        "topology.kubernetes.io/zone".into(),
                        format!("zone-{}", i % self.zones),
                    );
                }
                l.extend(g.labels.clone());
                let mut t = taints.clone();
                t.extend(g.taints.clone());
                out.push(NodeSpec {
                    name: g
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{}{i}", self.node_name_prefix)),
                    cpu: g.cpu.clone().unwrap_or_else(|| self.cpu.clone()),
                    memory: g.memory.clone().unwrap_or_else(|| self.memory.clone()),
                    pods: g.pods.clone().unwrap_or_else(|| self.pods.clone()),
                    ephemeral_storage: self.ephemeral_storage.clone(),
                    labels: l,
                    taints: t,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_identical_nodes() {
        let o = Options::try_parse_from([
            "kubelet-sim",
            "--nodes=3",
            "--node-labels=a=b,c=d",
            "--register-with-taints=dedicated=infra:NoSchedule,gpu:NoExecute",
            "--zones=2",
            "-v=4",
        ])
        .expect("parse");
        let nodes = o.node_specs().expect("specs");
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[2].name, "sim-2");
        assert_eq!(nodes[0].cpu, "8");
        assert_eq!(nodes[0].memory, "32Gi");
        assert_eq!(nodes[0].pods, "110");
        assert_eq!(nodes[1].labels["c"], "d");
        assert_eq!(nodes[1].labels["topology.kubernetes.io/zone"], "zone-1");
        assert_eq!(nodes[0].taints[0].value.as_deref(), Some("infra"));
        assert_eq!(nodes[0].taints[1].key, "gpu");
        assert_eq!(nodes[0].taints[1].value, None);
        assert_eq!(o.verbosity, 4);
    }

    #[test]
    fn config_groups_override_flags() {
        let dir = std::env::temp_dir().join(format!("kubelet-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("nodes.yaml");
        std::fs::write(
            &file,
            "- count: 2\n  cpu: \"16\"\n  labels: {pool: big}\n- name: special\n  taints: [{key: k, value: v, effect: NoSchedule}]\n",
        )
        .expect("write");
        let o = Options::try_parse_from(["kubelet-sim", "--config", file.to_str().expect("p")])
            .expect("parse");
        let nodes = o.node_specs().expect("specs");
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["sim-0", "sim-1", "special"]);
        assert_eq!(nodes[0].cpu, "16");
        assert_eq!(nodes[0].labels["pool"], "big");
        assert_eq!(nodes[2].cpu, "8");
        assert_eq!(nodes[2].taints[0].effect, "NoSchedule");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_taints_are_refused() {
        assert!(parse_taint("k=v").is_err());
        assert!(parse_taint("k=v:Sometimes").is_err());
        assert!(parse_taint("=v:NoSchedule").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5").is_err());
    }
}
