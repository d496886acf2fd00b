//! Service ClusterIP and NodePort allocation from `--service-cluster-ip-range` and
//! `--service-node-port-range`, without duplicates. The allocation state is rebuilt from
//! the stored Services at start.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use machinery::resource::ResourceInfo;
use machinery::{ApiError, FieldError};
use serde_json::{Value, json};

/// The service IP and node port allocators.
pub struct Allocators {
    ips: Mutex<Pool>,
    ports: Mutex<Pool>,
    /// First address of the range (network address + 0).
    ip_base: u32,
    cidr: String,
    port_range: String,
}

/// A set of integers `[first, first+size)` handing out free ones round-robin.
struct Pool {
    first: u32,
    size: u32,
    used: HashSet<u32>,
    next: u32,
}

impl Pool {
    fn new(first: u32, size: u32) -> Self {
        Pool {
            first,
            size,
            used: HashSet::new(),
            next: 0,
        }
    }
    fn contains(&self, v: u32) -> bool {
        v >= self.first && v < self.first + self.size
    }
    fn take(&mut self, v: u32) -> bool {
        self.contains(v) && self.used.insert(v)
    }
    fn allocate(&mut self) -> Option<u32> {
        for i in 0..self.size {
            let v = self.first + (self.next + i) % self.size;
            if self.used.insert(v) {
                self.next = (self.next + i + 1) % self.size;
                return Some(v);
            }
        }
        None
    }
    fn release(&mut self, v: u32) {
        self.used.remove(&v);
    }
}

/// What a failed create must give back.
#[derive(Default)]
pub struct Release {
    ips: Vec<u32>,
    ports: Vec<u32>,
}

impl Release {
    /// The service IPs this allocation took.
    pub fn ips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.ips.iter().map(|v| Ipv4Addr::from(*v))
    }

    /// The node ports this allocation took.
    pub fn ports(&self) -> &[u32] {
        &self.ports
    }

    /// Leaves `ip` marked used when the rest is given back (someone else holds it).
    pub fn keep_ip(&mut self, ip: Ipv4Addr) {
        self.ips.retain(|v| *v != u32::from(ip));
    }

    /// Leaves `port` marked used when the rest is given back.
    pub fn keep_port(&mut self, port: u32) {
        self.ports.retain(|v| *v != port);
    }

    pub fn run(self, a: &Allocators) {
        let mut ips = a.ips.lock().unwrap_or_else(|e| e.into_inner());
        self.ips.into_iter().for_each(|i| ips.release(i));
        let mut ports = a.ports.lock().unwrap_or_else(|e| e.into_inner());
        self.ports.into_iter().for_each(|p| ports.release(p));
    }
}

/// What a Service update took from the pools and what it gave up.
#[derive(Default)]
pub struct UpdateAlloc {
    /// Newly allocated: given back if the update is not stored.
    pub taken: Release,
    /// Held by the old object only: freed once the update is stored.
    pub freed: Release,
}

impl UpdateAlloc {
    /// The update was stored: free what it gave up.
    pub fn commit(self, a: &Allocators) {
        self.freed.run(a);
    }

    /// The update was not stored (failed or dry run): give back what it took.
    pub fn abort(self, a: &Allocators) {
        self.taken.run(a);
    }
}

/// Parses `10.0.0.0/24` into (network, size).
pub fn parse_cidr(cidr: &str) -> Result<(u32, u32), String> {
    let (ip, bits) = cidr
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR address: {cidr}"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("invalid CIDR address: {cidr}"))?;
    let bits: u32 = bits
        .parse()
        .ok()
        .filter(|b| (8..=30).contains(b))
        .ok_or_else(|| format!("invalid CIDR prefix: {cidr}"))?;
    let mask = u32::MAX << (32 - bits);
    Ok((u32::from(ip) & mask, 1 << (32 - bits)))
}

/// Parses `30000-32767`.
pub fn parse_port_range(r: &str) -> Result<(u32, u32), String> {
    let (a, b) = r
        .split_once('-')
        .ok_or_else(|| format!("invalid port range: {r}"))?;
    let a: u32 = a
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range: {r}"))?;
    let b: u32 = b
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range: {r}"))?;
    if a == 0 || b < a || b > 65535 {
        return Err(format!("invalid port range: {r}"));
    }
    Ok((a, b - a + 1))
}

/// Clears what a type change leaves behind, as upstream infers it: fields that no longer
/// apply to the new type are dropped when the update left them as they were (a changed
/// value is the user's and goes on to validation). Freed IPs and ports are given back
/// when the update is stored.
pub fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    let (Some(o), Some(n)) = (old.get("spec"), new.get("spec").cloned()) else {
        return;
    };
    let ty = |s: &Value| {
        s.get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string()
    };
    let (old_ty, new_ty) = (ty(o), ty(&n));
    let same = |f: &str| o.get(f) == n.get(f);
    let mut drop = Vec::new();
    if old_ty != "ExternalName" && new_ty == "ExternalName" {
        if same("clusterIP") && same("clusterIPs") {
            drop.extend(["clusterIP", "clusterIPs"]);
        }
        for f in ["ipFamilies", "ipFamilyPolicy"] {
            if same(f) {
                drop.push(f);
            }
        }
    }
    let node_ports = |s: &Value| -> HashSet<u64> {
        s.get("ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                    .filter(|p| *p != 0)
                    .collect()
            })
            .unwrap_or_default()
    };
    let wants_node_ports = |t: &str| matches!(t, "NodePort" | "LoadBalancer");
    let clear_node_ports = wants_node_ports(&old_ty)
        && !wants_node_ports(&new_ty)
        && node_ports(&n).is_subset(&node_ports(o));
    let hc = |s: &Value, t: &str| {
        t == "LoadBalancer"
            && s.get("externalTrafficPolicy").and_then(Value::as_str) == Some("Local")
    };
    if hc(o, &old_ty) && !hc(&n, &new_ty) && same("healthCheckNodePort") {
        drop.push("healthCheckNodePort");
    }
    if old_ty == "LoadBalancer" && new_ty != "LoadBalancer" {
        if n.get("allocateLoadBalancerNodePorts").is_some() && same("allocateLoadBalancerNodePorts")
        {
            drop.push("allocateLoadBalancerNodePorts");
        }
        if same("loadBalancerClass") {
            drop.push("loadBalancerClass");
        }
    }
    let external = |s: &Value, t: &str| {
        wants_node_ports(t)
            || (t == "ClusterIP"
                && s.get("externalIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()))
    };
    if external(o, &old_ty) && !external(&n, &new_ty) && same("externalTrafficPolicy") {
        drop.push("externalTrafficPolicy");
    }
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for f in drop {
        spec.remove(f);
    }
    if clear_node_ports && let Some(ps) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ps.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("nodePort");
        }
    }
}

pub fn is_services(res: &ResourceInfo) -> bool {
    res.group.is_empty() && res.plural == "services"
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(
        svc.pointer("/spec/type").and_then(Value::as_str),
        Some("NodePort" | "LoadBalancer")
    )
}

fn ip_error(name: &str, ip: &str, why: &str) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        name,
        &[FieldError::invalid(
            "spec.clusterIPs",
            json!([ip]),
            format!("failed to allocate IP {ip}: {why}"),
        )],
    )
}

impl Allocators {
    pub fn new(cidr: &str, ports: &str) -> Result<Self, String> {
        let (net, size) = parse_cidr(cidr)?;
        let (first_port, nports) = parse_port_range(ports)?;
        // network and broadcast addresses are never handed out
        Ok(Allocators {
            ips: Mutex::new(Pool::new(net + 1, size - 2)),
            ports: Mutex::new(Pool::new(first_port, nports)),
            ip_base: net,
            cidr: cidr.to_string(),
            port_range: ports.to_string(),
        })
    }

    /// The first service IP (the `kubernetes` service's).
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ip_base + 1)
    }

    /// Marks what stored Services hold as used (at start).
    pub fn restore(&self, svc: &Value) {
        if let Some(ip) = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        {
            self.ips
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(u32::from(ip));
        }
        for p in node_ports(svc) {
            self.ports.lock().unwrap_or_else(|e| e.into_inner()).take(p);
        }
    }

    /// Allocates a new Service's IP and node ports. Dry runs check without keeping.
    pub fn admit_create(
        &self,
        res: &ResourceInfo,
        svc: &mut Value,
        dry_run: bool,
    ) -> Result<Release, ApiError> {
        if !is_services(res) {
            return Ok(Release::default());
        }
        let mut release = Release::default();
        let result = self.allocate(svc, &mut release, None);
        if result.is_err() || dry_run {
            release.run(self);
            return result.map(|_| Release::default());
        }
        Ok(release)
    }

    fn allocate(
        &self,
        svc: &mut Value,
        release: &mut Release,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let name = svc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ty = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if ty == "ExternalName" {
            return Ok(());
        }
        let requested = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let had_ip = old.is_some_and(|o| {
            o.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .is_some_and(|ip| !ip.is_empty())
        });
        if !had_ip {
            let ip = match requested.as_str() {
                "None" => "None".to_string(),
                "" => {
                    let mut pool = self.ips.lock().unwrap_or_else(|e| e.into_inner());
                    let v = pool.allocate().ok_or_else(|| {
                        ApiError::internal("failed to allocate a serviceIP: range is full")
                    })?;
                    release.ips.push(v);
                    Ipv4Addr::from(v).to_string()
                }
                want => {
                    let addr: Ipv4Addr = want
                        .parse()
                        .map_err(|_| ip_error(&name, want, "invalid IP address"))?;
                    let mut pool = self.ips.lock().unwrap_or_else(|e| e.into_inner());
                    let v = u32::from(addr);
                    if !pool.contains(v) {
                        return Err(ip_error(
                            &name,
                            want,
                            &format!(
                                "the provided IP ({want}) is not in the valid range. The range of valid IPs is {}",
                                self.cidr
                            ),
                        ));
                    }
                    if !pool.take(v) {
                        return Err(ip_error(&name, want, "provided IP is already allocated"));
                    }
                    release.ips.push(v);
                    want.to_string()
                }
            };
            svc["spec"]["clusterIP"] = Value::String(ip.clone());
            svc["spec"]["clusterIPs"] = json!([ip]);
        }
        if needs_node_ports(svc) {
            let old_ports = old.map(node_ports_by_port).unwrap_or_default();
            let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
                return Ok(());
            };
            for (i, p) in ports.iter_mut().enumerate() {
                let want = p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) as u32;
                let port = p.get("port").and_then(Value::as_u64).unwrap_or(0) as u32;
                let mut pool = self.ports.lock().unwrap_or_else(|e| e.into_inner());
                let kept = old_ports
                    .iter()
                    .find(|(op, onp)| *op == port && (want == 0 || want == *onp))
                    .map(|(_, np)| *np);
                let np = match (want, kept) {
                    (_, Some(np)) => np,
                    (0, None) => {
                        let v = pool.allocate().ok_or_else(|| {
                            ApiError::internal("failed to allocate a nodePort: range is full")
                        })?;
                        release.ports.push(v);
                        v
                    }
                    (w, None) => {
                        if !pool.take(w) {
                            let why = if pool.contains(w) {
                                "provided port is already allocated".to_string()
                            } else {
                                format!(
                                    "provided port is not in the valid range. The range of valid ports is {}",
                                    self.port_range
                                )
                            };
                            return Err(ApiError::invalid(
                                "",
                                "Service",
                                &name,
                                &[FieldError::invalid(
                                    format!("spec.ports[{i}].nodePort"),
                                    json!(w),
                                    why,
                                )],
                            ));
                        }
                        release.ports.push(w);
                        w
                    }
                };
                p["nodePort"] = json!(np);
            }
        }
        Ok(())
    }

    /// Keeps the IP across updates and allocates what a type change needs: node ports
    /// when it becomes NodePort/LoadBalancer, an IP when an ExternalName becomes a
    /// ClusterIP. What the old object held and the new one no longer does is only freed
    /// by [`UpdateAlloc::commit`], once the update is stored.
    pub fn admit_update(
        &self,
        res: &ResourceInfo,
        old: &Value,
        new: &mut Value,
    ) -> Result<UpdateAlloc, ApiError> {
        if !is_services(res) {
            return Ok(UpdateAlloc::default());
        }
        let external = new.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
        if !external {
            for f in ["clusterIP", "clusterIPs"] {
                let empty = new
                    .pointer(&format!("/spec/{f}"))
                    .is_none_or(|v| v.is_null() || v == "" || v == &json!([]));
                if empty && let Some(v) = old.pointer(&format!("/spec/{f}")) {
                    new["spec"][f] = v.clone();
                }
            }
        }
        let mut alloc = UpdateAlloc::default();
        if let Err(e) = self.allocate(new, &mut alloc.taken, Some(old)) {
            alloc.abort(self);
            return Err(e);
        }
        let (old_ip, old_ports) = held_by(old);
        let (new_ip, new_ports) = held_by(new);
        if let Some(ip) = old_ip.filter(|ip| Some(*ip) != new_ip) {
            alloc.freed.ips.push(u32::from(ip));
        }
        alloc.freed.ports = old_ports
            .into_iter()
            .filter(|p| !new_ports.contains(p))
            .collect();
        Ok(alloc)
    }

    /// Marks a service IP used or free (following claims made by other API servers).
    pub fn mark_ip(&self, ip: Ipv4Addr, used: bool) {
        let mut pool = self.ips.lock().unwrap_or_else(|e| e.into_inner());
        if used {
            pool.take(u32::from(ip));
        } else {
            pool.release(u32::from(ip));
        }
    }

    /// Marks a node port used or free.
    pub fn mark_port(&self, port: u32, used: bool) {
        let mut pool = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        if used {
            pool.take(port);
        } else {
            pool.release(port);
        }
    }

    /// Frees a deleted Service's IP and ports.
    pub fn release_for(&self, res: &ResourceInfo, svc: &Value) {
        if !is_services(res) {
            return;
        }
        if let Some(ip) = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        {
            self.ips
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(u32::from(ip));
        }
        let mut pool = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        node_ports(svc).into_iter().for_each(|p| pool.release(p));
    }
}

/// The service IP and node ports a stored Service holds.
pub fn held_by(svc: &Value) -> (Option<Ipv4Addr>, Vec<u32>) {
    let ip = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Ipv4Addr>().ok());
    (ip, node_ports(svc))
}

fn node_ports(svc: &Value) -> Vec<u32> {
    node_ports_by_port(svc)
        .into_iter()
        .map(|(_, np)| np)
        .collect()
}

fn node_ports_by_port(svc: &Value) -> Vec<(u32, u32)> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let np = p.get("nodePort").and_then(Value::as_u64)? as u32;
                    Some((
                        p.get("port").and_then(Value::as_u64).unwrap_or(0) as u32,
                        np,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc_res() -> ResourceInfo {
        crate::registry::builtin_resources()
            .into_iter()
            .find(|r| r.plural == "services")
            .expect("services")
    }

    #[test]
    fn allocates_unique_ips_and_ports() {
        let a = Allocators::new("10.0.0.0/29", "30000-30001").expect("alloc");
        let res = svc_res();
        let mut s1 = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        a.admit_create(&res, &mut s1, false).expect("s1");
        let mut s2 = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        a.admit_create(&res, &mut s2, false).expect("s2");
        assert_ne!(s1["spec"]["clusterIP"], s2["spec"]["clusterIP"]);
        assert_ne!(
            s1["spec"]["ports"][0]["nodePort"],
            s2["spec"]["ports"][0]["nodePort"]
        );
        let mut s3 = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        assert!(
            a.admit_create(&res, &mut s3, false).is_err(),
            "ports exhausted"
        );
        let mut dup = json!({"spec":{"clusterIP": s1["spec"]["clusterIP"].clone()}});
        assert_eq!(
            a.admit_create(&res, &mut dup, false)
                .map(|_| ())
                .map_err(|e| e.code),
            Err(422)
        );
        a.release_for(&res, &s1);
        let mut s4 = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        a.admit_create(&res, &mut s4, false).expect("after release");
    }

    #[test]
    fn updates_give_back_ports_only_once_stored() {
        let a = Allocators::new("10.0.0.0/29", "30000-30000").expect("alloc");
        let res = svc_res();
        let mut old = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        a.admit_create(&res, &mut old, false).expect("create");
        let mut new = json!({"spec":{"type":"ClusterIP","ports":[{"port":80,"nodePort":30000}],
            "externalTrafficPolicy":"Cluster"}});
        new["spec"]["externalTrafficPolicy"] = old["spec"]["externalTrafficPolicy"].clone();
        drop_type_dependent_fields(&old, &mut new);
        assert_eq!(new["spec"]["ports"][0].get("nodePort"), None);
        let alloc = a.admit_update(&res, &old, &mut new).expect("update");
        assert_eq!(alloc.freed.ports(), &[30000]);
        assert_eq!(new["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        // not stored: the port stays with the old object
        alloc.abort(&a);
        let mut other = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        assert!(
            a.admit_create(&res, &mut other, false).is_err(),
            "still held"
        );
        let alloc = a.admit_update(&res, &old, &mut new).expect("update");
        alloc.commit(&a);
        a.admit_create(&res, &mut other, false)
            .expect("freed once stored");
        // a dry-run-like abort of a type change to NodePort gives the new port back
        let mut back = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        let held = json!({"spec":{"type":"ClusterIP","clusterIP": new["spec"]["clusterIP"].clone(),
            "ports":[{"port":80}]}});
        a.release_for(&res, &other);
        let alloc = a.admit_update(&res, &held, &mut back).expect("to NodePort");
        assert_eq!(alloc.taken.ports(), &[30000]);
        alloc.abort(&a);
        a.admit_update(&res, &held, &mut held.clone())
            .expect("no change")
            .commit(&a);
        let mut again = json!({"spec":{"type":"NodePort","ports":[{"port":80}]}});
        a.admit_create(&res, &mut again, false)
            .expect("the aborted port is free");
    }

    #[test]
    fn type_changes_drop_what_no_longer_applies() {
        let old = json!({"spec":{"type":"LoadBalancer","clusterIP":"10.0.0.5","clusterIPs":["10.0.0.5"],
            "externalTrafficPolicy":"Local","healthCheckNodePort":31000,"allocateLoadBalancerNodePorts":true,
            "ports":[{"port":80,"nodePort":30001}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&old, &mut new);
        let spec = &new["spec"];
        assert_eq!(
            spec["clusterIP"], "10.0.0.5",
            "ClusterIP still needs its IP"
        );
        for f in [
            "externalTrafficPolicy",
            "healthCheckNodePort",
            "allocateLoadBalancerNodePorts",
        ] {
            assert_eq!(spec.get(f), None, "{f} dropped");
        }
        assert_eq!(spec["ports"][0].get("nodePort"), None);
        // a node port the user changed is theirs: kept for validation to judge
        let mut changed = old.clone();
        changed["spec"]["type"] = json!("ClusterIP");
        changed["spec"]["ports"][0]["nodePort"] = json!(30002);
        drop_type_dependent_fields(&old, &mut changed);
        assert_eq!(changed["spec"]["ports"][0]["nodePort"], 30002);
        // to ExternalName: the cluster IPs go
        let mut ext = old.clone();
        ext["spec"]["type"] = json!("ExternalName");
        drop_type_dependent_fields(&old, &mut ext);
        assert_eq!(ext["spec"].get("clusterIP"), None);
        assert_eq!(ext["spec"].get("clusterIPs"), None);
    }
}
