//! Simulated nodes: the Node object a kubelet registers (labels, taints, capacity and
//! allocatable, conditions, addresses, nodeInfo), its registration, and the Ready
//! heartbeat written every `--node-status-report-frequency`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::ipam::Cidr;
use super::options::NodeSpec;

/// The port a kubelet would serve on (nobody listens: these nodes run no containers).
const KUBELET_PORT: i32 = 10250;
/// The annotation marking a node as simulated by this process.
pub const SIMULATED_ANNOTATION: &str = "sim.kubelet/simulated";
/// The version these nodes report as their kubelet's.
pub const KUBELET_VERSION: &str = "v1.35.0";

/// One simulated node: what it is, and its addresses.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub spec: NodeSpec,
    pub host_ip: String,
    pub pod_cidr: Cidr,
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A stable 32-hex-digit id derived from the node name (machine and boot ids).
fn node_id(name: &str, salt: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{salt}/{name}").as_bytes());
    h.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn uuid_like(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The four conditions a healthy kubelet reports. Transition times carry over from
/// `current` when a condition's status is unchanged.
pub fn conditions(current: Option<&Node>, now: Timestamp) -> Vec<NodeCondition> {
    let wanted = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    let old = current
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    wanted
        .iter()
        .map(|(type_, status, reason, message)| {
            let before = old.iter().find(|c| c.type_ == *type_);
            let transition = match before {
                Some(c) if c.status == *status => c.last_transition_time.clone(),
                _ => None,
            };
            NodeCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                last_heartbeat_time: Some(Time(now)),
                last_transition_time: transition.or(Some(Time(now))),
            }
        })
        .collect()
}

fn resources(spec: &NodeSpec) -> Value {
    json!({
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": spec.pods,
        "ephemeral-storage": spec.ephemeral_storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    })
}

/// The node's status as the kubelet reports it.
pub fn node_status(node: &SimNode, current: Option<&Node>, now: Timestamp) -> Value {
    let name = &node.spec.name;
    let machine = node_id(name, "machine");
    json!({
        "capacity": resources(&node.spec),
        "allocatable": resources(&node.spec),
        "conditions": conditions(current, now),
        "addresses": [
            {"type": "InternalIP", "address": node.host_ip},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": machine,
            "systemUUID": uuid_like(&machine),
            "bootID": uuid_like(&node_id(name, "boot")),
            "kernelVersion": kernel_version(),
            "osImage": "kubelet-sim (no containers)",
            "containerRuntimeVersion": format!("sim://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": go_arch(),
        },
    })
}

/// The Node object registered for `node`: standard labels, its own labels and taints,
/// its pod CIDR, and a full status.
pub fn node_object(node: &SimNode, now: Timestamp) -> Value {
    let spec = &node.spec;
    let mut labels: BTreeMap<String, String> = [
        ("beta.kubernetes.io/arch", go_arch()),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", go_arch()),
        ("kubernetes.io/hostname", spec.name.as_str()),
        ("kubernetes.io/os", "linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(spec.labels.clone());
    let cidr = super::ipam::NodeIpam::new(node.pod_cidr).cidr();
    let mut node_spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    if !spec.taints.is_empty() {
        node_spec["taints"] = serde_json::to_value(&spec.taints).unwrap_or(Value::Null);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                SIMULATED_ANNOTATION: "true",
            },
        },
        "spec": node_spec,
        "status": node_status(node, None, now),
    })
}

/// Registers the node (or takes over an existing one of that name) and makes sure its
/// status is current. Returns the Node as stored.
pub async fn register(api: &Api<Node>, node: &SimNode) -> anyhow::Result<Node> {
    let name = &node.spec.name;
    let obj: Node = serde_json::from_value(node_object(node, Timestamp::now()))
        .context("building the Node object")?;
    let created = match api.create(&PostParams::default(), &obj).await {
        Ok(n) => Some(n),
        Err(kube::Error::Api(s)) if s.code == 409 => None,
        Err(e) => return Err(e).with_context(|| format!("registering node {name}")),
    };
    let existing = match created {
        Some(n) if n.status.as_ref().is_some_and(|s| s.conditions.is_some()) => return Ok(n),
        Some(n) => n,
        None => {
            tracing::info!(node = %name, "node already registered; taking it over");
            api.get(name)
                .await
                .with_context(|| format!("reading node {name}"))?
        }
    };
    heartbeat(api, node, &existing).await
}

/// Writes the node's status with fresh heartbeats; returns the Node as stored.
pub async fn heartbeat(api: &Api<Node>, node: &SimNode, current: &Node) -> anyhow::Result<Node> {
    let status = node_status(node, Some(current), Timestamp::now());
    let patch = json!({"status": status});
    api.patch_status(
        &node.spec.name,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .with_context(|| format!("updating the status of node {}", node.spec.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> SimNode {
        SimNode {
            spec: NodeSpec {
                name: "sim-3".into(),
                cpu: "8".into(),
                memory: "32Gi".into(),
                pods: "110".into(),
                ephemeral_storage: "100Gi".into(),
                labels: [("zone".to_string(), "a".to_string())].into(),
                taints: vec![super::super::options::parse_taint("k=v:NoSchedule").expect("t")],
            },
            host_ip: "172.16.0.5".into(),
            pod_cidr: Cidr::parse("10.128.3.0/24").expect("cidr"),
        }
    }

    #[test]
    fn node_object_is_a_valid_registered_kubelet_node() {
        let v = node_object(&sim(), Timestamp::now());
        let node: Node = serde_json::from_value(v.clone()).expect("a Node");
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "sim-3");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["zone"], "a");
        assert_eq!(v["spec"]["podCIDR"], "10.128.3.0/24");
        assert_eq!(v["spec"]["taints"][0]["effect"], "NoSchedule");
        assert_eq!(v["status"]["allocatable"]["pods"], "110");
        assert_eq!(v["status"]["capacity"]["memory"], "32Gi");
        assert_eq!(v["status"]["addresses"][0]["address"], "172.16.0.5");
        assert_eq!(v["status"]["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        let ready = &v["status"]["conditions"][3];
        assert_eq!(ready["type"], "Ready");
        assert_eq!(ready["reason"], "KubeletReady");
    }

    #[test]
    fn heartbeats_keep_transition_times() {
        let first: Node = serde_json::from_value(node_object(
            &sim(),
            Timestamp::from_second(1_000_000).expect("t"),
        ))
        .expect("node");
        let later = Timestamp::from_second(2_000_000).expect("t");
        let c = conditions(Some(&first), later);
        assert_eq!(
            c[3].last_transition_time.as_ref().map(|t| t.0.as_second()),
            Some(1_000_000)
        );
        assert_eq!(c[3].last_heartbeat_time.as_ref().map(|t| t.0), Some(later));
    }
}
