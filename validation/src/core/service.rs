//! Services: upstream's `SetDefaults_Service`, the IP-family defaults the Service REST
//! layer fills in for a single-stack IPv4 cluster, `ValidateService` and
//! `ValidateServiceUpdate`. Allocating the cluster IP itself is the server's job.

use crate::util::{
    Errs, arr, child, get_int, get_str, has, index, obj, one_of, set_default, set_default_str,
    str_or_empty, validate_dns1123_label, validate_dns1123_subdomain, validate_labels,
    validate_qualified_name,
};
use machinery::FieldError;
use machinery::names;
use serde_json::{Value, json};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
/// Upstream's `MaxClientIPServiceAffinitySeconds`.
const MAX_CLIENT_IP_AFFINITY_SECONDS: i64 = 86400;

fn spec_type(spec: &Value) -> &str {
    str_or_empty(spec, "type")
}

fn externally_accessible(spec: &Value) -> bool {
    matches!(spec_type(spec), "LoadBalancer" | "NodePort")
        || (spec_type(spec) == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

fn is_headless(spec: &Value) -> bool {
    get_str(spec, "clusterIP") == Some("None")
        || arr(spec, "clusterIPs").first().and_then(Value::as_str) == Some("None")
}

/// `SetDefaults_Service` plus the REST layer's `clusterIPs` and IP-family defaults.
pub fn default_service(svc: &mut Value) {
    let Some(spec) = svc.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default_str(spec, "sessionAffinity", "None");
    let affinity_config = match get_str(spec, "sessionAffinity") {
        Some("None") => Some(Value::Null),
        Some("ClientIP")
            if spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .is_none_or(Value::is_null) =>
        {
            Some(json!({"clientIP": {"timeoutSeconds": 10800}}))
        }
        _ => None,
    };
    if let (Some(config), Some(m)) = (affinity_config, spec.as_object_mut()) {
        if config.is_null() {
            m.remove("sessionAffinityConfig");
        } else {
            m.insert("sessionAffinityConfig".into(), config);
        }
    }
    set_default_str(spec, "type", "ClusterIP");
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut() {
            set_default_str(p, "protocol", "TCP");
            let target_unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if target_unset
                && let Some(port) = p.get("port").cloned()
                && let Some(m) = p.as_object_mut()
            {
                m.insert("targetPort".into(), port);
            }
        }
    }
    if externally_accessible(spec) {
        set_default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    let ty = spec_type(spec).to_string();
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty == "ExternalName" {
        return;
    }
    // The REST layer keeps clusterIP and clusterIPs in step.
    let cluster_ip = str_or_empty(spec, "clusterIP").to_string();
    if !cluster_ip.is_empty()
        && arr(spec, "clusterIPs").is_empty()
        && let Some(m) = spec.as_object_mut()
    {
        m.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    let selectorless = obj(spec, "selector").is_none_or(|s| s.is_empty());
    if is_headless(spec) && selectorless {
        set_default(spec, "ipFamilyPolicy", json!("RequireDualStack"));
        set_default(spec, "ipFamilies", json!(["IPv4", "IPv6"]));
    } else {
        let families = if arr(spec, "ipFamilies").is_empty() {
            json!(["IPv4"])
        } else {
            spec["ipFamilies"].clone()
        };
        let policy = if families.as_array().is_some_and(|f| f.len() > 1) {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        set_default(spec, "ipFamilyPolicy", json!(policy));
        if arr(spec, "ipFamilies").is_empty()
            && let Some(m) = spec.as_object_mut()
        {
            m.insert("ipFamilies".into(), families);
        }
    }
}

fn invalid_ip(ip: &str, path: &str) -> Errs {
    if ip.parse::<std::net::IpAddr>().is_ok() {
        return Vec::new();
    }
    vec![FieldError::invalid(
        path,
        json!(ip),
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    )]
}

/// `ValidateService` minus metadata.
pub fn validate_service(svc: &Value) -> Errs {
    let spec = svc.get("spec").unwrap_or(&Value::Null);
    let sp = "spec";
    let mut errs = Errs::new();
    let ports = arr(spec, "ports");
    let ty = spec_type(spec);
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let first_ip = arr(spec, "clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or("None")
        .to_string();
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            json!(first_ip),
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            for f in ["clusterIPs", "ipFamilies"] {
                if !arr(spec, f).is_empty() {
                    errs.push(FieldError::forbidden(
                        child(sp, f),
                        "may not be set for ExternalName services",
                    ));
                }
            }
            if has(spec, "ipFamilyPolicy") {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = str_or_empty(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(validate_dns1123_subdomain(cname, "spec.externalName"));
            }
        }
        _ => {}
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            p,
            ports.len() > 1,
            &mut port_names,
            &index("spec.ports", i),
        ));
    }
    errs.extend(validate_labels(obj(spec, "selector"), "spec.selector"));
    errs.extend(one_of(
        spec,
        "sessionAffinity",
        sp,
        &["ClientIP", "None"],
        true,
    ));
    match str_or_empty(spec, "sessionAffinity") {
        "ClientIP" => {
            let t = spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .and_then(Value::as_i64);
            match t {
                None => errs.push(FieldError::required(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    "",
                )),
                Some(t) if t <= 0 || t > MAX_CLIENT_IP_AFFINITY_SECONDS => {
                    errs.push(FieldError::invalid(
                        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                        json!(t),
                        format!(
                            "must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"
                        ),
                    ))
                }
                _ => {}
            }
        }
        "None" if has(spec, "sessionAffinityConfig") => errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        )),
        _ => {}
    }
    errs.extend(validate_cluster_ips(spec));
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        errs.extend(invalid_ip(
            ip.as_str().unwrap_or(""),
            &index("spec.externalIPs", i),
        ));
    }
    errs.extend(one_of(
        spec,
        "type",
        sp,
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        true,
    ));
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if get_int(p, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    child(&index("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    errs.extend(duplicate_ports(ports));
    if has(spec, "allocateLoadBalancerNodePorts") && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if !arr(spec, "loadBalancerSourceRanges").is_empty() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.LoadBalancerSourceRanges",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if externally_accessible(spec) {
        errs.extend(one_of(
            spec,
            "externalTrafficPolicy",
            sp,
            &["Cluster", "Local"],
            true,
        ));
    } else if let Some(p) = get_str(spec, "externalTrafficPolicy").filter(|p| !p.is_empty()) {
        errs.push(FieldError::invalid(
            "spec.externalTrafficPolicy",
            json!(p),
            "may only be set for externally-accessible services",
        ));
    }
    let needs_itp = matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP");
    errs.extend(one_of(
        spec,
        "internalTrafficPolicy",
        sp,
        &["Cluster", "Local"],
        needs_itp,
    ));
    errs.extend(one_of(
        spec,
        "trafficDistribution",
        sp,
        &["PreferClose", "PreferSameNode", "PreferSameZone"],
        false,
    ));
    errs
}

fn validate_service_port<'a>(
    p: &'a Value,
    require_name: bool,
    seen: &mut Vec<&'a str>,
    path: &str,
) -> Errs {
    let mut errs = Errs::new();
    let name = str_or_empty(p, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &child(path, "name")));
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(child(path, "name"), json!(name)));
        } else {
            seen.push(name);
        }
    }
    let port = get_int(p, "port").unwrap_or(0);
    for msg in names::is_valid_port_num(port) {
        errs.push(FieldError::invalid(child(path, "port"), json!(port), msg));
    }
    errs.extend(one_of(p, "protocol", path, PROTOCOLS, true));
    errs.extend(crate::util::port_or_name(
        p.get("targetPort").unwrap_or(&Value::Null),
        &child(path, "targetPort"),
    ));
    if let Some(ap) = get_str(p, "appProtocol") {
        errs.extend(validate_qualified_name(ap, &child(path, "appProtocol")));
    }
    errs
}

fn duplicate_ports(ports: &[Value]) -> Errs {
    let mut errs = Errs::new();
    let mut node_ports: Vec<(&str, i64)> = Vec::new();
    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = str_or_empty(p, "protocol");
        let np = get_int(p, "nodePort").unwrap_or(0);
        if np != 0 {
            if node_ports.contains(&(proto, np)) {
                errs.push(FieldError::duplicate(
                    child(&index("spec.ports", i), "nodePort"),
                    json!(np),
                ));
            }
            node_ports.push((proto, np));
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let k = (str_or_empty(p, "protocol"), get_int(p, "port").unwrap_or(0));
        if seen.contains(&k) {
            errs.push(FieldError::duplicate(
                index("spec.ports", i),
                json!({"port": k.1, "protocol": k.0}),
            ));
        }
        seen.push(k);
    }
    errs
}

fn validate_cluster_ips(spec: &Value) -> Errs {
    let mut errs = Errs::new();
    let ips = arr(spec, "clusterIPs");
    let cluster_ip = str_or_empty(spec, "clusterIP");
    if !cluster_ip.is_empty()
        && ips
            .first()
            .and_then(Value::as_str)
            .is_some_and(|f| f != cluster_ip)
    {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            Value::Array(ips.to_vec()),
            "first value must match `clusterIP`",
        ));
    }
    for (i, ip) in ips.iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if ip == "None" {
            if i != 0 || ips.len() > 1 {
                errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    json!(ip),
                    "must not contain 'None' with other values",
                ));
            }
            continue;
        }
        errs.extend(invalid_ip(ip, &index("spec.clusterIPs", i)));
    }
    errs.extend(one_of(
        spec,
        "ipFamilyPolicy",
        "spec",
        &["PreferDualStack", "RequireDualStack", "SingleStack"],
        false,
    ));
    let families = arr(spec, "ipFamilies");
    for (i, f) in families.iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        let p = index("spec.ipFamilies", i);
        if !matches!(f, "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(&p, json!(f), &["IPv4", "IPv6"]));
        } else if families[..i].iter().any(|g| g.as_str() == Some(f)) {
            errs.push(FieldError::duplicate(&p, json!(f)));
        }
    }
    if families.len() > 1 && get_str(spec, "ipFamilyPolicy") == Some("SingleStack") {
        errs.push(FieldError::invalid(
            "spec.ipFamilies",
            Value::Array(families.to_vec()),
            "when multiple IP families are specified, `ipFamilyPolicy` must be set to `PreferDualStack` or `RequireDualStack`",
        ));
    }
    errs
}

/// `ValidateServiceUpdate`'s checks against the old object. A new object without cluster
/// IPs is taken to keep the old ones, as the REST layer arranges upstream.
pub fn validate_service_update(new: &Value, old: &Value) -> Errs {
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let mut errs = Errs::new();
    if spec_type(ns) == "ExternalName" || spec_type(os) == "ExternalName" {
        return errs;
    }
    let ips = |s: &Value| -> Vec<String> {
        let list: Vec<String> = arr(s, "clusterIPs")
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        if list.is_empty() && !str_or_empty(s, "clusterIP").is_empty() {
            vec![str_or_empty(s, "clusterIP").to_string()]
        } else {
            list
        }
    };
    let (new_ips, old_ips) = (ips(ns), ips(os));
    if !new_ips.is_empty() && !old_ips.is_empty() {
        for i in 0..old_ips.len().min(new_ips.len()) {
            if old_ips[i] != new_ips[i] {
                errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    json!(new_ips),
                    "may not change once set",
                ));
            }
        }
    }
    let (nf, of) = (arr(ns, "ipFamilies"), arr(os, "ipFamilies"));
    if let (Some(n), Some(o)) = (nf.first(), of.first())
        && n != o
    {
        errs.push(FieldError::invalid(
            "spec.ipFamilies[0]",
            n.clone(),
            "may not change once set",
        ));
    }
    let hc = |s: &Value| get_int(s, "healthCheckNodePort").unwrap_or(0);
    let needs_hc = |s: &Value| {
        spec_type(s) == "LoadBalancer" && str_or_empty(s, "externalTrafficPolicy") == "Local"
    };
    if needs_hc(ns) && needs_hc(os) && hc(ns) != hc(os) && hc(ns) != 0 {
        errs.push(FieldError::forbidden(
            "spec.healthCheckNodePort",
            "field is immutable",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(e: &Errs) -> Vec<String> {
        e.iter().map(FieldError::message).collect()
    }

    fn svc(spec: Value) -> Value {
        let mut s = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": spec});
        default_service(&mut s);
        s
    }

    #[test]
    fn defaults() {
        let s = svc(
            json!({"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 81, "targetPort": "http"}]}),
        );
        let sp = &s["spec"];
        assert_eq!(sp["type"], "ClusterIP");
        assert_eq!(sp["sessionAffinity"], "None");
        assert_eq!(sp["ports"][0]["protocol"], "TCP");
        assert_eq!(sp["ports"][0]["targetPort"], 80);
        assert_eq!(sp["ports"][1]["targetPort"], "http");
        assert_eq!(sp["internalTrafficPolicy"], "Cluster");
        assert_eq!(sp["ipFamilyPolicy"], "SingleStack");
        assert_eq!(sp["ipFamilies"], json!(["IPv4"]));
        assert!(sp.get("externalTrafficPolicy").is_none());
        let lb = svc(
            json!({"type": "LoadBalancer", "ports": [{"port": 80}], "sessionAffinity": "ClientIP"}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            lb["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
        let headless = svc(json!({"clusterIP": "None"}));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        let ext = svc(json!({"type": "ExternalName", "externalName": "example.com"}));
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
        assert!(validate_service(&ext).is_empty());
    }

    #[test]
    fn ports_required_unless_headless() {
        assert_eq!(
            msgs(&validate_service(&svc(json!({})))),
            vec!["spec.ports: Required value"]
        );
        assert!(validate_service(&svc(json!({"clusterIP": "None"}))).is_empty());
    }

    #[test]
    fn port_rules() {
        let s = svc(
            json!({"ports": [{"port": 0, "protocol": "HTTP"}, {"name": "a", "port": 80}, {"name": "a", "port": 80}]}),
        );
        let m = msgs(&validate_service(&s));
        assert_eq!(
            m,
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[2].name: Duplicate value: \"a\"",
                "spec.ports[2]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
            ]
        );
    }

    #[test]
    fn type_and_selector() {
        let s = svc(json!({"type": "Magic", "selector": {"app": "-x"}, "ports": [{"port": 80}]}));
        let m = msgs(&validate_service(&s));
        assert!(m[0].starts_with("spec.selector: Invalid value: \"-x\""));
        assert_eq!(
            m[1],
            "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        );
        let s = svc(json!({"ports": [{"port": 80, "nodePort": 30000}]}));
        assert_eq!(
            msgs(&validate_service(&s)),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let old = svc(json!({"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}));
        let new = svc(json!({"clusterIP": "10.0.0.2", "ports": [{"port": 80}]}));
        assert_eq!(
            msgs(&validate_service_update(&new, &old)),
            vec!["spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set"]
        );
        let unset = svc(json!({"ports": [{"port": 80}]}));
        assert!(validate_service_update(&unset, &old).is_empty());
        let bad = svc(json!({"clusterIP": "300.1.1.1", "ports": [{"port": 80}]}));
        assert_eq!(
            msgs(&validate_service(&bad)),
            vec![
                "spec.clusterIPs[0]: Invalid value: \"300.1.1.1\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ]
        );
    }
}
