//! The `networking.k8s.io` group: Ingresses, IngressClasses and NetworkPolicies, as
//! upstream's `pkg/apis/networking/v1/defaults.go` and `pkg/apis/networking/validation`.

use crate::meta::Scope::{Cluster, Namespaced};
use crate::util::{
    Errs, arr, child, get_int, get_str, has, immutable, index, one_of, set_default,
    set_default_str, str_or_empty, validate_label_selector,
};
use crate::{Strategy, no_default, no_update_checks};
use machinery::FieldError;
use machinery::names::{self, name_is_dns_subdomain};
use serde_json::{Value, json};

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];

pub(crate) fn strategy(resource: &str) -> Option<Strategy> {
    let s = |default, validate, validate_update| Strategy {
        name: name_is_dns_subdomain,
        scope: Namespaced,
        default,
        validate,
        validate_update,
    };
    Some(match resource {
        "ingresses" => s(no_default, validate_ingress, no_update_checks),
        "ingressclasses" => Strategy {
            scope: Cluster,
            ..s(no_default, validate_ingress_class, ingress_class_update)
        },
        "networkpolicies" => s(
            default_network_policy,
            validate_network_policy,
            no_update_checks,
        ),
        _ => return None,
    })
}

fn validate_host(host: &str, path: &str) -> Errs {
    let mut errs = Errs::new();
    if host.parse::<std::net::IpAddr>().is_ok() {
        errs.push(FieldError::invalid(
            path,
            json!(host),
            "must be a DNS name, not an IP address",
        ));
    }
    let msgs = if host.contains('*') {
        names::is_wildcard_dns1123_subdomain(host)
    } else {
        names::is_dns1123_subdomain(host)
    };
    errs.extend(
        msgs.into_iter()
            .map(|m| FieldError::invalid(path, json!(host), m)),
    );
    errs
}

/// `ValidateIngressSpec`.
fn validate_ingress(ing: &Value) -> Errs {
    let spec = ing.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    let rules = arr(spec, "rules");
    let default_backend = spec.get("defaultBackend").filter(|b| !b.is_null());
    if rules.is_empty() && default_backend.is_none() {
        errs.push(FieldError::invalid(
            "spec",
            json!(rules),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        errs.extend(validate_backend(b, "spec.defaultBackend"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = index("spec.rules", i);
        let host = str_or_empty(rule, "host");
        if !host.is_empty() {
            errs.extend(validate_host(host, &child(&rp, "host")));
        }
        let Some(http) = rule.get("http").filter(|h| !h.is_null()) else {
            continue;
        };
        let hp = child(&rp, "http");
        let paths = arr(http, "paths");
        if paths.is_empty() {
            errs.push(FieldError::required(child(&hp, "paths"), ""));
        }
        for (j, p) in paths.iter().enumerate() {
            errs.extend(validate_http_path(p, &index(&child(&hp, "paths"), j)));
        }
    }
    for (i, tls) in arr(spec, "tls").iter().enumerate() {
        for (j, h) in arr(tls, "hosts").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            let msgs = if h.contains('*') {
                names::is_wildcard_dns1123_subdomain(h)
            } else {
                names::is_dns1123_subdomain(h)
            };
            let p = index(&child(&index("spec.tls", i), "hosts"), j);
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid(&p, json!(h), m)),
            );
        }
    }
    if let Some(class) = get_str(spec, "ingressClassName") {
        for msg in names::is_dns1123_subdomain(class) {
            errs.push(FieldError::invalid(
                "spec.ingressClassName",
                json!(class),
                msg,
            ));
        }
    }
    errs
}

fn validate_http_path(p: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let Some(path_type) = get_str(p, "pathType") else {
        errs.push(FieldError::required(
            child(path, "pathType"),
            "pathType must be specified",
        ));
        return errs;
    };
    let value = str_or_empty(p, "path");
    let pp = child(path, "path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &pp,
                    json!(value),
                    "must be an absolute path",
                ));
            }
            for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                if value.contains(seq) {
                    errs.push(FieldError::invalid(
                        &pp,
                        json!(value),
                        format!("must not contain '{seq}'"),
                    ));
                }
            }
            for suffix in ["/..", "/."] {
                if value.ends_with(suffix) {
                    errs.push(FieldError::invalid(
                        &pp,
                        json!(value),
                        format!("cannot end with '{suffix}'"),
                    ));
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &pp,
                    json!(value),
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "pathType"),
            json!(other),
            PATH_TYPES,
        )),
    }
    errs.extend(validate_backend(
        p.get("backend").unwrap_or(&Value::Null),
        &child(path, "backend"),
    ));
    errs
}

/// `validateIngressBackend`.
fn validate_backend(b: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let resource = b.get("resource").filter(|r| !r.is_null());
    let service = b.get("service").filter(|s| !s.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            json!(""),
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            for f in ["kind", "name"] {
                if str_or_empty(r, f).is_empty() {
                    errs.push(FieldError::required(child(&child(path, "resource"), f), ""));
                }
            }
        }
        (None, Some(s)) => {
            let name = str_or_empty(s, "name");
            let np = child(path, "service.name");
            if name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                errs.extend(
                    names::is_dns1035_label(name)
                        .into_iter()
                        .map(|m| FieldError::invalid(&np, json!(name), m)),
                );
            }
            let port = s.get("port").unwrap_or(&Value::Null);
            let port_name = str_or_empty(port, "name");
            let number = get_int(port, "number").unwrap_or(0);
            match (port_name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    path,
                    json!(""),
                    "cannot set both port name & port number",
                )),
                (false, true) => {
                    for msg in names::is_valid_port_name(port_name) {
                        errs.push(FieldError::invalid(
                            child(path, "service.port.name"),
                            json!(port_name),
                            msg,
                        ));
                    }
                }
                (true, false) => {
                    for msg in names::is_valid_port_num(number) {
                        errs.push(FieldError::invalid(
                            child(path, "service.port.number"),
                            json!(number),
                            msg,
                        ));
                    }
                }
                (true, true) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            json!(""),
            "resource or service backend is required",
        )),
    }
    errs
}

/// `ValidateIngressClassSpec`: a domain-prefixed controller name.
fn validate_ingress_class(ic: &Value) -> Errs {
    let spec = ic.get("spec").unwrap_or(&Value::Null);
    let controller = str_or_empty(spec, "controller");
    let mut errs = Errs::new();
    if controller.is_empty() {
        errs.push(FieldError::required("spec.controller", ""));
        return errs;
    }
    if controller.len() > 250 {
        errs.push(FieldError::too_long("spec.controller", 250));
    }
    match controller.split_once('/') {
        Some((host, rest)) if !host.is_empty() && !rest.is_empty() => {
            for msg in names::is_dns1123_subdomain(host) {
                errs.push(FieldError::invalid("spec.controller", json!(host), msg));
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.controller",
            json!(controller),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )),
    }
    errs
}

fn ingress_class_update(new: &Value, old: &Value) -> Errs {
    let get = |o: &Value| {
        o.pointer("/spec/controller")
            .cloned()
            .unwrap_or(Value::Null)
    };
    immutable(&get(new), &get(old), "spec.controller")
}

/// `SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`.
fn default_network_policy(np: &mut Value) {
    let Some(spec) = np.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if arr(spec, "policyTypes").is_empty() {
        let mut types = vec![json!("Ingress")];
        if !arr(spec, "egress").is_empty() {
            types.push(json!("Egress"));
        }
        if let Some(m) = spec.as_object_mut() {
            m.insert("policyTypes".into(), Value::Array(types));
        }
    }
    for dir in ["ingress", "egress"] {
        crate::util::for_each_mut(spec, dir, |rule| {
            crate::util::for_each_mut(rule, "ports", |p| set_default_str(p, "protocol", "TCP"));
        });
    }
    set_default(spec, "podSelector", json!({}));
}

/// `ValidateNetworkPolicySpec` (selectors, ports, peers, policy types).
fn validate_network_policy(np: &Value) -> Errs {
    let spec = np.get("spec").unwrap_or(&Value::Null);
    let mut errs = validate_label_selector(
        spec.get("podSelector").unwrap_or(&Value::Null),
        "spec.podSelector",
    );
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in arr(spec, dir).iter().enumerate() {
            let rp = index(&child("spec", dir), i);
            for (j, port) in arr(rule, "ports").iter().enumerate() {
                let pp = index(&child(&rp, "ports"), j);
                errs.extend(one_of(
                    port,
                    "protocol",
                    &pp,
                    &["SCTP", "TCP", "UDP"],
                    false,
                ));
                if let Some(p) = port.get("port").filter(|p| !p.is_null()) {
                    errs.extend(crate::util::port_or_name(p, &child(&pp, "port")));
                }
            }
            for (j, peer) in arr(rule, peers).iter().enumerate() {
                let pp = index(&child(&rp, peers), j);
                let count = ["podSelector", "namespaceSelector", "ipBlock"]
                    .iter()
                    .filter(|f| has(peer, f))
                    .count();
                if count == 0 {
                    errs.push(FieldError::required(&pp, "must specify a peer"));
                }
                for sel in ["podSelector", "namespaceSelector"] {
                    if let Some(s) = peer.get(sel).filter(|s| !s.is_null()) {
                        errs.extend(validate_label_selector(s, &child(&pp, sel)));
                    }
                }
                if let Some(b) = peer.get("ipBlock").filter(|b| !b.is_null()) {
                    let cidr = str_or_empty(b, "cidr");
                    if cidr.is_empty() {
                        errs.push(FieldError::required(child(&pp, "ipBlock.cidr"), ""));
                    }
                }
            }
        }
    }
    let types = arr(spec, "policyTypes");
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if !matches!(t, "Ingress" | "Egress") {
            errs.push(FieldError::not_supported(
                index("spec.policyTypes", i),
                json!(t),
                &["Ingress", "Egress"],
            ));
        }
    }
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.policyTypes",
            json!(types),
            "may not specify more than two policyTypes",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use crate::{default, validate_create, validate_update};
    use machinery::FieldError;
    use serde_json::{Value, json};

    const G: &str = "networking.k8s.io";

    fn msgs(r: &str, o: &Value) -> Vec<String> {
        validate_create(G, "v1", r, o)
            .iter()
            .map(FieldError::message)
            .collect()
    }

    fn ing(spec: Value) -> Value {
        json!({"metadata": {"name": "i", "namespace": "d"}, "spec": spec})
    }

    #[test]
    fn ingress_rules() {
        assert_eq!(
            msgs("ingresses", &ing(json!({}))),
            vec!["spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"]
        );
        let bad = ing(json!({"rules": [{"host": "1.2.3.4", "http": {"paths": [
            {"path": "/a", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
            {"path": "a", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80, "name": "http"}}}},
            {"path": "/", "pathType": "Regex", "backend": {"service": {"name": "s", "port": {}}}},
        ]}}]}));
        let m = msgs("ingresses", &bad);
        assert_eq!(
            m,
            vec![
                "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address",
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
                "spec.rules[0].http.paths[1].path: Invalid value: \"a\": must be an absolute path",
                "spec.rules[0].http.paths[1].backend: Invalid value: \"\": cannot set both port name & port number",
                "spec.rules[0].http.paths[2].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
                "spec.rules[0].http.paths[2].backend: Required value: port name or number is required",
            ]
        );
        let ok = ing(
            json!({"ingressClassName": "nginx", "rules": [{"host": "*.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}),
        );
        assert!(msgs("ingresses", &ok).is_empty());
    }

    #[test]
    fn ingress_classes() {
        let ic = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "nginx"}});
        assert_eq!(
            msgs("ingressclasses", &ic),
            vec![
                "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
            ]
        );
        let a =
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
        let b = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/other"}});
        assert!(msgs("ingressclasses", &a).is_empty());
        let m: Vec<String> = validate_update(G, "v1", "ingressclasses", &b, &a)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            m,
            vec!["spec.controller: Invalid value: \"k8s.io/other\": field is immutable"]
        );
    }

    #[test]
    fn network_policy_defaults() {
        let mut np = json!({"metadata": {"name": "n", "namespace": "d"}, "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
        default(G, "v1", "networkpolicies", &mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        assert!(msgs("networkpolicies", &np).is_empty());
    }
}
