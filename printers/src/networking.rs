//! networking.k8s.io/v1 (ingresses, ingress classes, network policies, service CIDRs,
//! IP addresses) and
//! discovery.k8s.io/v1 endpoint slices.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::core::load_balancer_ingress;
use crate::format::{age, arr, int, label_selector, list_with_more, name, s};
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("networking.k8s.io", "ingresses") => &INGRESSES,
        ("networking.k8s.io", "ingressclasses") => &INGRESS_CLASSES,
        ("networking.k8s.io", "networkpolicies") => &NETWORK_POLICIES,
        ("networking.k8s.io", "servicecidrs") => &SERVICE_CIDRS,
        ("networking.k8s.io", "ipaddresses") => &IP_ADDRESSES,
        ("discovery.k8s.io", "endpointslices") => &ENDPOINT_SLICES,
        _ => return None,
    })
}

static INGRESSES: Printer = Printer {
    columns: INGRESS_COLUMNS,
    cells: ingress_cells,
};
const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "Ingress class that implements the ingress.",
    ),
    col("Hosts", "string", "Hosts the ingress rules match."),
    col(
        "Address",
        "string",
        "Addresses of the load balancer serving the ingress.",
    ),
    col(
        "Ports",
        "string",
        "Ports the ingress is served on (80, and 443 with TLS).",
    ),
    AGE,
];

/// Rule hosts, at most three, `*` when no rule names a host.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = s(&rule["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

fn ingress_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    let ports = if arr(&spec["tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj),
        Value::from(spec["ingressClassName"].as_str().unwrap_or("<none>")),
        Value::from(format_hosts(arr(&spec["rules"]))),
        Value::from(load_balancer_ingress(&obj["status"]["loadBalancer"])),
        Value::from(ports),
        age(obj, now),
    ]
}

static INGRESS_CLASSES: Printer = Printer {
    columns: INGRESS_CLASS_COLUMNS,
    cells: ingress_class_cells,
};
const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller implementing ingresses of this class.",
    ),
    col(
        "Parameters",
        "string",
        "Kind.group/name of the resource holding extra parameters.",
    ),
    AGE,
];

fn ingress_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &obj["spec"];
    let params = &spec["parameters"];
    let parameters = if params.is_object() {
        let kind = match params["apiGroup"].as_str() {
            Some(group) => format!("{}.{group}", s(&params["kind"])),
            None => s(&params["kind"]).to_string(),
        };
        format!("{kind}/{}", s(&params["name"]))
    } else {
        "<none>".into()
    };
    vec![
        name(obj),
        Value::from(s(&spec["controller"])),
        Value::from(parameters),
        age(obj, now),
    ]
}

static NETWORK_POLICIES: Printer = Printer {
    columns: NETWORK_POLICY_COLUMNS,
    cells: network_policy_cells,
};
const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col("Pod-Selector", "string", "Pods the policy applies to."),
    AGE,
];

fn network_policy_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        Value::from(label_selector(&obj["spec"]["podSelector"])),
        age(obj, now),
    ]
}

static SERVICE_CIDRS: Printer = Printer {
    columns: SERVICE_CIDR_COLUMNS,
    cells: service_cidr_cells,
};
const SERVICE_CIDR_COLUMNS: &[Column] = &[
    NAME,
    col(
        "CIDRs",
        "string",
        "IP ranges service cluster IPs are allocated from.",
    ),
    AGE,
];

fn service_cidr_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cidrs: Vec<&str> = arr(&obj["spec"]["cidrs"]).iter().map(s).collect();
    vec![name(obj), Value::from(cidrs.join(",")), age(obj, now)]
}

static IP_ADDRESSES: Printer = Printer {
    columns: IP_ADDRESS_COLUMNS,
    cells: ip_address_cells,
};
const IP_ADDRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "ParentRef",
        "string",
        "Resource[.group]/[namespace/]name of the object owning the address.",
    ),
];

fn ip_address_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let parent = &obj["spec"]["parentRef"];
    let parent_ref = if parent.is_object() {
        let mut out = match s(&parent["group"]) {
            "" => s(&parent["resource"]).to_lowercase(),
            group => format!("{}.{group}", s(&parent["resource"])).to_lowercase(),
        };
        if let Some(namespace) = parent["namespace"].as_str().filter(|n| !n.is_empty()) {
            out = format!("{out}/{namespace}");
        }
        format!("{out}/{}", s(&parent["name"]))
    } else {
        "<none>".into()
    };
    vec![name(obj), Value::from(parent_ref)]
}

static ENDPOINT_SLICES: Printer = Printer {
    columns: ENDPOINT_SLICE_COLUMNS,
    cells: endpoint_slice_cells,
};
const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "Address family of the endpoints (IPv4, IPv6, FQDN).",
    ),
    col("Ports", "string", "Ports of the slice (first three)."),
    col("Endpoints", "string", "Endpoint addresses (first three)."),
    AGE,
];

fn endpoint_slice_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports: Vec<String> = arr(&obj["ports"])
        .iter()
        .map(|p| match (&p["port"], p["name"].as_str()) {
            (port, _) if !port.is_null() => int(port).to_string(),
            (_, Some(name)) => name.to_string(),
            _ => "*".into(),
        })
        .collect();
    let addresses: Vec<String> = arr(&obj["endpoints"])
        .iter()
        .flat_map(|e| arr(&e["addresses"]).iter().map(|a| s(a).to_string()))
        .collect();
    vec![
        name(obj),
        Value::from(s(&obj["addressType"])),
        Value::from(list_with_more(&ports, 3)),
        Value::from(list_with_more(&addresses, 3)),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    #[test]
    fn ingress() {
        let ing = json!({"metadata": {"name": "web", "creationTimestamp": ago(60)},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                     "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"},
                               {"host": "d.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}});
        assert_eq!(
            ingress_cells(&ing, NOW),
            vec![
                json!("web"),
                json!("nginx"),
                json!("a.example.com,b.example.com,c.example.com + 2 more..."),
                json!("192.0.2.10"),
                json!("80, 443"),
                json!("60s")
            ]
        );
        let bare = json!({"metadata": {"name": "x"}, "spec": {"rules": [{}]}});
        assert_eq!(
            ingress_cells(&bare, NOW)[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn ingress_class_and_network_policy() {
        let ic = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        assert_eq!(
            ingress_class_cells(&ic, NOW)[1..3],
            [
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/external-lb")
            ]
        );
        let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(network_policy_cells(&np, NOW)[1], json!("<none>"));
        let np = json!({"metadata": {"name": "db"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(network_policy_cells(&np, NOW)[1], json!("role=db"));
    }

    #[test]
    fn service_cidr_and_ip_address() {
        let cidr = json!({"metadata": {"name": "kubernetes", "creationTimestamp": ago(60)},
            "spec": {"cidrs": ["10.96.0.0/16", "fd00:10:96::/112"]}});
        assert_eq!(
            service_cidr_cells(&cidr, NOW),
            vec![
                json!("kubernetes"),
                json!("10.96.0.0/16,fd00:10:96::/112"),
                json!("60s")
            ]
        );
        let ip = json!({"metadata": {"name": "10.96.0.1"},
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}});
        assert_eq!(
            ip_address_cells(&ip, NOW),
            vec![json!("10.96.0.1"), json!("services/default/kubernetes")]
        );
        assert_eq!(ip_address_cells(&json!({}), NOW)[1], json!("<none>"));
    }

    #[test]
    fn endpoint_slice() {
        let es = json!({"metadata": {"name": "web-abc", "creationTimestamp": ago(60)}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80}, {"name": "metrics"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
        assert_eq!(
            endpoint_slice_cells(&es, NOW),
            vec![
                json!("web-abc"),
                json!("IPv4"),
                json!("80,metrics,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
                json!("60s")
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6"});
        assert_eq!(
            endpoint_slice_cells(&empty, NOW)[2..4],
            [json!("<unset>"), json!("<unset>")]
        );
    }
}
