//! Addresses for simulated nodes and their pods (IPv4): node i's InternalIP is an address
//! of the node range, its pod CIDR the i-th /24 of the pod range, and each pod takes the
//! lowest free address of its node's /24 (from .2; .1 is the node's gateway) until it
//! stops.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use anyhow::{Context as _, bail};

/// An IPv4 CIDR.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let (ip, len) = s
            .split_once('/')
            .with_context(|| format!("{s:?} is not a CIDR"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .with_context(|| format!("{s:?}: not an IPv4 address"))?;
        let prefix: u8 = len
            .parse()
            .with_context(|| format!("{s:?}: bad prefix length"))?;
        if prefix > 32 {
            bail!("{s:?}: prefix length over 32");
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    /// How many addresses the range holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    /// The `n`-th address of the range.
    pub fn addr(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(self.base.wrapping_add(n as u32)))
    }
}

/// The pod /24 of node `index` within `pods`, e.g. `10.128.3.0/24`.
pub fn node_pod_cidr(pods: &Cidr, index: usize) -> anyhow::Result<Cidr> {
    if pods.prefix > 24 {
        bail!("the pod range must be /24 or larger");
    }
    let base = pods
        .addr(index as u64 * 256)
        .with_context(|| format!("the pod range has no /24 for node {index}"))?;
    Ok(Cidr {
        base: u32::from(base),
        prefix: 24,
    })
}

/// The pod addresses of one node.
#[derive(Debug)]
pub struct NodeIpam {
    cidr: Cidr,
    used: Vec<bool>,
    by_pod: HashMap<String, u8>,
}

impl NodeIpam {
    pub fn new(cidr: Cidr) -> Self {
        NodeIpam {
            cidr,
            used: vec![false; 256],
            by_pod: HashMap::new(),
        }
    }

    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.cidr.base), self.cidr.prefix)
    }

    /// The address of pod `uid`, allocating one the first time; `None` when full.
    pub fn allocate(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(i) = self.by_pod.get(uid) {
            return self.cidr.addr(u64::from(*i));
        }
        let free = (2..255u8).find(|i| !self.used[usize::from(*i)])?;
        self.used[usize::from(free)] = true;
        self.by_pod.insert(uid.to_string(), free);
        self.cidr.addr(u64::from(free))
    }

    /// Records an address a pod already holds (seen in its status after a restart).
    /// False when the address is outside the node's range or taken by another pod.
    pub fn adopt(&mut self, uid: &str, ip: &str) -> bool {
        let Ok(ip) = ip.parse::<Ipv4Addr>() else {
            return false;
        };
        let offset = u32::from(ip).wrapping_sub(self.cidr.base);
        if offset >= 256 || self.by_pod.get(uid) == Some(&(offset as u8)) {
            return offset < 256;
        }
        if self.used[offset as usize] {
            return false;
        }
        self.release(uid);
        self.used[offset as usize] = true;
        self.by_pod.insert(uid.to_string(), offset as u8);
        true
    }

    /// Frees the address of pod `uid`, if it has one.
    pub fn release(&mut self, uid: &str) {
        if let Some(i) = self.by_pod.remove(uid) {
            self.used[usize::from(i)] = false;
        }
    }

    /// The pods holding addresses.
    pub fn pods(&self) -> impl Iterator<Item = &String> {
        self.by_pod.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ranges() {
        let pods = Cidr::parse("10.128.0.0/9").expect("cidr");
        assert_eq!(pods.size(), 1 << 23);
        let c = node_pod_cidr(&pods, 4999).expect("node cidr");
        assert_eq!(NodeIpam::new(c).cidr(), "10.147.135.0/24");
        assert!(node_pod_cidr(&Cidr::parse("10.0.0.0/24").expect("c"), 1).is_err());
        let nodes = Cidr::parse("172.16.0.0/12").expect("cidr");
        assert_eq!(nodes.addr(2), Some(Ipv4Addr::new(172, 16, 0, 2)));
        assert!(Cidr::parse("10.0.0.0").is_err());
    }

    #[test]
    fn allocate_reuse_release() {
        let mut n = NodeIpam::new(Cidr::parse("10.128.1.0/24").expect("cidr"));
        assert_eq!(n.allocate("a"), Some(Ipv4Addr::new(10, 128, 1, 2)));
        assert_eq!(n.allocate("b"), Some(Ipv4Addr::new(10, 128, 1, 3)));
        assert_eq!(n.allocate("a"), Some(Ipv4Addr::new(10, 128, 1, 2)));
        n.release("a");
        assert_eq!(n.allocate("c"), Some(Ipv4Addr::new(10, 128, 1, 2)));
        assert!(n.adopt("d", "10.128.1.9"));
        assert!(!n.adopt("e", "10.128.1.9"));
        assert!(!n.adopt("e", "10.0.0.1"));
        for i in 0..250 {
            n.allocate(&format!("x{i}"));
        }
        assert_eq!(n.allocate("full"), None);
    }
}
