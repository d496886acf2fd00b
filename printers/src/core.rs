//! Core (v1) resources other than pods and events: replication controllers, services,
//! endpoints and nodes. Configuration-like core resources live in [`crate::config`],
//! storage-flavoured ones in [`crate::volumes`].

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::format::{
    age, arr, condition, containers, int, join_host_port, labels, name, or, present, s,
};
use crate::{AGE, Column, NAME, Printer, col, config, volumes, wide};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "replicationcontrollers" => &REPLICATION_CONTROLLERS,
        "services" => &SERVICES,
        "endpoints" => &ENDPOINTS,
        "nodes" => &NODES,
        other => return config::printer(other).or_else(|| volumes::printer(other)),
    })
}

/// Columns shared by the `-o wide` tail of workload controllers.
pub(crate) const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of the pod template's containers.",
);
pub(crate) const IMAGES: Column = wide(
    "Images",
    "string",
    "Images of the pod template's containers.",
);
pub(crate) const SELECTOR: Column = wide(
    "Selector",
    "string",
    "Label selector of the pods it manages.",
);

static REPLICATION_CONTROLLERS: Printer = Printer {
    columns: RC_COLUMNS,
    cells: rc_cells,
};
const RC_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", "Number of replicas wanted."),
    col("Current", "integer", "Number of replicas that exist."),
    col("Ready", "integer", "Number of replicas that are ready."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// `spec.replicas`, defaulted to 1 as the API server does.
pub(crate) fn desired_replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn rc_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers(&obj["spec"]["template"]["spec"]);
    let status = &obj["status"];
    vec![
        name(obj),
        Value::from(desired_replicas(obj)),
        Value::from(int(&status["replicas"])),
        Value::from(int(&status["readyReplicas"])),
        age(obj, now),
        names,
        images,
        Value::from(labels(&obj["spec"]["selector"])),
    ]
}

static SERVICES: Printer = Printer {
    columns: SERVICE_COLUMNS,
    cells: service_cells,
};
const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "How the service is exposed (ClusterIP, NodePort, LoadBalancer, ExternalName).",
    ),
    col(
        "Cluster-IP",
        "string",
        "Virtual IP of the service inside the cluster.",
    ),
    col(
        "External-IP",
        "string",
        "Addresses the service is reachable at from outside the cluster.",
    ),
    col(
        "Port(s)",
        "string",
        "Ports the service exposes, with node ports.",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Labels of the pods traffic is routed to.",
    ),
];

/// Load-balancer ingress points (IP, else hostname), sorted and de-duplicated.
pub(crate) fn load_balancer_ingress(lb: &Value) -> String {
    let mut points: Vec<&str> = arr(&lb["ingress"])
        .iter()
        .map(|i| or(s(&i["ip"]), s(&i["hostname"])))
        .filter(|p| !p.is_empty())
        .collect();
    points.sort_unstable();
    points.dedup();
    points.join(",")
}

fn external_ips(spec: &Value) -> Vec<&str> {
    arr(&spec["externalIPs"]).iter().map(s).collect()
}

fn service_external_ip(svc: &Value) -> String {
    let spec = &svc["spec"];
    let external = external_ips(spec);
    match s(&spec["type"]) {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let lb = load_balancer_ingress(&svc["status"]["loadBalancer"]);
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    vec![]
                } else {
                    lb.split(',').collect()
                };
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => s(&spec["externalName"]).into(),
        _ => "<unknown>".into(),
    }
}

fn service_ports(spec: &Value) -> String {
    let ports: Vec<String> = arr(&spec["ports"])
        .iter()
        .map(|p| {
            let (port, node_port, protocol) =
                (int(&p["port"]), int(&p["nodePort"]), s(&p["protocol"]));
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &svc["spec"];
    let cluster_ip = arr(&spec["clusterIPs"])
        .first()
        .map(s)
        .unwrap_or_else(|| s(&spec["clusterIP"]));
    vec![
        name(svc),
        Value::from(s(&spec["type"])),
        Value::from(or(cluster_ip, "<none>")),
        Value::from(service_external_ip(svc)),
        Value::from(service_ports(spec)),
        age(svc, now),
        Value::from(labels(&spec["selector"])),
    ]
}

static ENDPOINTS: Printer = Printer {
    columns: ENDPOINTS_COLUMNS,
    cells: endpoints_cells,
};
const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "Ready addresses with their ports (first three).",
    ),
    AGE,
];

fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let (mut list, mut more, mut count) = (Vec::new(), false, 0);
    for subset in subsets {
        let addresses = arr(&subset["addresses"]);
        let ports = arr(&subset["ports"]);
        // headless services may have addresses without ports
        let port_numbers: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports.iter().map(|p| Some(int(&p["port"]))).collect()
        };
        for port in port_numbers {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = s(&address["ip"]);
                list.push(match port {
                    Some(port) => join_host_port(ip, port),
                    None => ip.to_string(),
                });
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

fn endpoints_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(format_endpoints(arr(&obj["subsets"]))),
        age(obj, now),
    ]
}

static NODES: Printer = Printer {
    columns: NODE_COLUMNS,
    cells: node_cells,
};
const NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Readiness of the node, and whether scheduling is disabled.",
    ),
    col(
        "Roles",
        "string",
        "Roles of the node, from its node-role labels.",
    ),
    AGE,
    col("Version", "string", "Kubelet version the node reports."),
    wide(
        "Internal-IP",
        "string",
        "First internal address of the node.",
    ),
    wide(
        "External-IP",
        "string",
        "First external address of the node.",
    ),
    wide(
        "OS-Image",
        "string",
        "Operating system image the node reports.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel version the node reports.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "Container runtime and version the node reports.",
    ),
];

fn node_roles(node: &Value) -> String {
    let mut roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
                    Some(role) if !role.is_empty() => Some(role),
                    Some(_) => None,
                    None if k == "kubernetes.io/role" && !s(v).is_empty() => Some(s(v)),
                    None => None,
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn node_address(node: &Value, type_: &str) -> String {
    let found = arr(&node["status"]["addresses"])
        .iter()
        .find(|a| s(&a["type"]) == type_);
    found
        .map(|a| s(&a["address"]).to_string())
        .unwrap_or_else(|| "<none>".into())
}

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status = match condition(&node["status"]["conditions"], "Ready") {
        Some(c) if s(&c["status"]) == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push("SchedulingDisabled");
    }
    let info = &node["status"]["nodeInfo"];
    vec![
        name(node),
        Value::from(status.join(",")),
        Value::from(node_roles(node)),
        age(node, now),
        Value::from(s(&info["kubeletVersion"])),
        Value::from(node_address(node, "InternalIP")),
        Value::from(node_address(node, "ExternalIP")),
        Value::from(or(s(&info["osImage"]), "<unknown>")),
        Value::from(or(s(&info["kernelVersion"]), "<unknown>")),
        Value::from(or(s(&info["containerRuntimeVersion"]), "<unknown>")),
    ]
}

/// Whether the object is being deleted.
pub(crate) fn deleting(obj: &Value) -> bool {
    present(&obj["metadata"]) && !obj["metadata"]["deletionTimestamp"].is_null()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    fn meta(name: &str) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": ago(200)})
    }

    #[test]
    fn node_port_service() {
        let svc = json!({"metadata": meta("web"), "spec": {
            "type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"}
        }});
        assert_eq!(
            service_cells(&svc, NOW),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.20"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("3m20s"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn load_balancer_and_external_name_services() {
        let mut svc = json!({"metadata": meta("lb"), "spec": {
            "type": "LoadBalancer", "clusterIPs": ["10.96.0.9"], "ports": [{"port": 443, "nodePort": 31000, "protocol": "TCP"}]
        }});
        assert_eq!(service_cells(&svc, NOW)[3], json!("<pending>"));
        svc["status"] = json!({"loadBalancer": {"ingress": [
            {"hostname": "a-very-long-hostname.elb.example.com"}, {"ip": "203.0.113.9"}
        ]}});
        assert_eq!(
            service_cells(&svc, NOW)[3],
            json!("203.0.113.9,a-very-long-hostname.elb.example.com")
        );
        svc["spec"]["externalIPs"] = json!(["198.51.100.1"]);
        assert_eq!(
            service_cells(&svc, NOW)[3],
            json!("203.0.113.9,a-very-long-hostname.elb.example.com,198.51.100.1")
        );

        let ext = json!({"metadata": meta("db"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        let c = service_cells(&ext, NOW);
        assert_eq!(
            c[2..5],
            [json!("<none>"), json!("db.example.com"), json!("<none>")]
        );
        assert_eq!(c[6], json!("<none>"));
    }

    #[test]
    fn endpoints_lists() {
        let e = json!({"metadata": meta("web"), "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}],
            "ports": [{"port": 80}, {"port": 443}]
        }]});
        assert_eq!(
            endpoints_cells(&e, NOW)[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 3 more...")
        );
        let headless =
            json!({"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "fd00::1"}]}]});
        assert_eq!(endpoints_cells(&headless, NOW)[1], json!("fd00::1"));
        let v6 = json!({"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(endpoints_cells(&v6, NOW)[1], json!("[fd00::1]:80"));
        assert_eq!(
            endpoints_cells(&json!({"metadata": meta("e")}), NOW)[1],
            json!("<none>")
        );
    }

    #[test]
    fn nodes() {
        let node = json!({
            "metadata": {"name": "node-1", "creationTimestamp": ago(3 * 86400 + 4 * 3600),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "x",
                                    "kubernetes.io/role": "master", "kubernetes.io/hostname": "node-1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                "nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian GNU/Linux 13 (trixie)",
                             "kernelVersion": "6.12.0", "containerRuntimeVersion": "containerd://2.1.0"}
            }
        });
        assert_eq!(
            node_cells(&node, NOW),
            vec![
                json!("node-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("3d4h"),
                json!("v1.35.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 13 (trixie)"),
                json!("6.12.0"),
                json!("containerd://2.1.0")
            ]
        );
        let bare = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        let c = node_cells(&bare, NOW);
        assert_eq!(
            c[1..5],
            [
                json!("NotReady"),
                json!("<none>"),
                json!("<unknown>"),
                json!("")
            ]
        );
        assert_eq!(c[7], json!("<unknown>"));
        assert_eq!(node_cells(&json!({}), NOW)[1], json!("Unknown"));
    }

    #[test]
    fn replication_controller() {
        let rc = json!({"metadata": meta("rc"), "spec": {"replicas": 3, "selector": {"app": "web"},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}});
        assert_eq!(
            rc_cells(&rc, NOW),
            vec![
                json!("rc"),
                json!(3),
                json!(3),
                json!(2),
                json!("3m20s"),
                json!("web"),
                json!("nginx"),
                json!("app=web")
            ]
        );
    }
}
