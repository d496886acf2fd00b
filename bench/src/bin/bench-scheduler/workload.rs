//! The pods each phase creates: plain pods (upstream scheduler_perf's SchedulingBasic
//! pod: one pause container with small requests), pods with required pod anti-affinity
//! on the hostname within their group, and pods spread evenly over zones.

use serde_json::{Value, json};

/// One measured phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    Plain,
    AntiAffinity,
    TopologySpread,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Plain, Phase::AntiAffinity, Phase::TopologySpread];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Plain => "plain",
            Phase::AntiAffinity => "pod-anti-affinity",
            Phase::TopologySpread => "topology-spread",
        }
    }

    /// The phase's own namespace, so phases never see each other's pods.
    pub fn namespace(self) -> String {
        format!("bench-scheduler-{}", self.name())
    }
}

/// Pods per anti-affinity group: at most one pod of a group per node, so a group may
/// not outnumber the nodes.
pub fn anti_affinity_groups(pods: usize, nodes: usize) -> usize {
    pods.div_ceil(nodes.max(1)).max(10)
}

fn base(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [{
                "name": "pause",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
            }],
            "terminationGracePeriodSeconds": 0,
        },
    })
}

/// Pod `i` of `phase`, out of `pods` on `nodes` nodes.
pub fn pod(phase: Phase, i: usize, pods: usize, nodes: usize) -> Value {
    let name = format!("pod-{i}");
    match phase {
        Phase::Plain => base(&name, json!({"app": "plain"})),
        Phase::AntiAffinity => {
            let group = format!("g{}", i % anti_affinity_groups(pods, nodes));
            let mut p = base(&name, json!({"app": "anti", "group": group}));
            p["spec"]["affinity"] = json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"group": group}},
                    "topologyKey": "kubernetes.io/hostname",
                }],
            }});
            p
        }
        Phase::TopologySpread => {
            let mut p = base(&name, json!({"app": "spread"}));
            p["spec"]["topologySpreadConstraints"] = json!([{
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "spread"}},
            }]);
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fit_on_the_nodes() {
        assert_eq!(anti_affinity_groups(10_000, 5_000), 10);
        assert_eq!(anti_affinity_groups(1_000, 50), 20);
        let p = pod(Phase::AntiAffinity, 13, 10_000, 5_000);
        assert_eq!(p["metadata"]["labels"]["group"], "g3");
        let p = pod(Phase::TopologySpread, 1, 10, 10);
        assert_eq!(p["spec"]["topologySpreadConstraints"][0]["maxSkew"], 1);
    }
}
