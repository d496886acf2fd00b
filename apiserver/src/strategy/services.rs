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
        if old.is_none() {
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

    /// Keeps the IP across updates and allocates node ports a type change needs.
    pub fn admit_update(
        &self,
        res: &ResourceInfo,
        old: &Value,
        new: &mut Value,
    ) -> Result<(), ApiError> {
        if !is_services(res) {
            return Ok(());
        }
        for f in ["clusterIP", "clusterIPs"] {
            let empty = new
                .pointer(&format!("/spec/{f}"))
                .is_none_or(|v| v.is_null() || v == "" || v == &json!([]));
            if empty && let Some(v) = old.pointer(&format!("/spec/{f}")) {
                new["spec"][f] = v.clone();
            }
        }
        let mut release = Release::default();
        let r = self.allocate(new, &mut release, Some(old));
        if r.is_err() {
            release.run(self);
            return r;
        }
        // ports no longer used go back
        let still: HashSet<u32> = node_ports(new).into_iter().collect();
        let mut pool = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        for p in node_ports(old) {
            if !still.contains(&p) {
                pool.release(p);
            }
        }
        Ok(())
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
}
