//! Resource arithmetic: parsing `resource.Quantity` strings into integers (milli-CPU, bytes,
//! counts) and computing a pod's effective requests the way upstream's
//! `resourcehelper.PodRequests` does (containers, init containers, restartable sidecars,
//! pod-level resources and overhead), plus the "non-zero" requests scoring uses.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Default CPU request (milli-cores) scoring assumes for a container that sets none.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Default memory request (bytes) scoring assumes for a container that sets none.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource: CPU in milli-cores, the rest in base units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended and hugepage resources by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a `ResourceList` (requests, limits, allocatable). CPU is kept in milli-units.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = parse_milli(&q.0).unwrap_or(0),
            "memory" => self.memory = parse_value(&q.0).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = parse_value(&q.0).unwrap_or(0),
            "pods" => self.allowed_pod_number = parse_value(&q.0).unwrap_or(0),
            other if is_scalar_resource(other) => {
                self.scalar
                    .insert(other.to_string(), parse_value(&q.0).unwrap_or(0));
            }
            _ => {}
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Takes the per-resource maximum of `self` and `other`.
    pub fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// The amount of a named resource (`cpu` in milli-units).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    /// Whether no resource is requested at all.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`example.com/gpu`), hugepages and attachable volumes are scalar.
pub fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

/// Parses a quantity into milli-units, rounding up as `Quantity.MilliValue` does.
pub fn parse_milli(s: &str) -> Option<i64> {
    parse_scaled(s, 1000)
}

/// Parses a quantity into base units, rounding up as `Quantity.Value` does.
pub fn parse_value(s: &str) -> Option<i64> {
    parse_scaled(s, 1)
}

fn parse_scaled(s: &str, scale: i64) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (num, suffix) = split_suffix(s);
    let (mul, exp10): (f64, i32) = match suffix {
        "" => (1.0, 0),
        "m" => (1.0, -3),
        "k" => (1.0, 3),
        "M" => (1.0, 6),
        "G" => (1.0, 9),
        "T" => (1.0, 12),
        "P" => (1.0, 15),
        "E" => (1.0, 18),
        "Ki" => (1024.0, 0),
        "Mi" => (1024f64.powi(2), 0),
        "Gi" => (1024f64.powi(3), 0),
        "Ti" => (1024f64.powi(4), 0),
        "Pi" => (1024f64.powi(5), 0),
        "Ei" => (1024f64.powi(6), 0),
        other => {
            // Decimal exponent form: 1e3, 5E-3.
            let e = other.strip_prefix(['e', 'E'])?;
            (1.0, e.parse().ok()?)
        }
    };
    // Integral fast path keeps exactness for the common cases.
    if let Ok(n) = num.parse::<i64>()
        && mul == 1.0
        && exp10 >= 0
    {
        let m = 10i64.checked_pow(exp10 as u32)?;
        return n.checked_mul(m)?.checked_mul(scale);
    }
    let n: f64 = num.parse().ok()?;
    let v = n * mul * 10f64.powi(exp10) * scale as f64;
    Some(v.ceil() as i64)
}

fn split_suffix(s: &str) -> (&str, &str) {
    let idx = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    (&s[..idx], &s[idx..])
}

fn container_requests(c: &Container) -> Resource {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(Resource::from_list)
        .unwrap_or_default()
}

fn non_zero(mut r: Resource, c: &Container) -> Resource {
    let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let has = |n: &str| req.is_some_and(|m| m.contains_key(n));
    if !has("cpu") {
        r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if !has("memory") {
        r.memory = DEFAULT_MEMORY_REQUEST;
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The pod's effective requests, and the same with defaults for unset CPU/memory.
pub fn pod_requests(pod: &Pod) -> (Resource, Resource) {
    let Some(spec) = pod.spec.as_ref() else {
        return Default::default();
    };
    let mut reqs = Resource::default();
    let mut nz = Resource::default();
    for c in &spec.containers {
        let r = container_requests(c);
        nz.add(&non_zero(r.clone(), c));
        reqs.add(&r);
    }
    // Init containers run one at a time, each next to the sidecars started before it.
    let mut sidecars = Resource::default();
    let mut sidecars_nz = Resource::default();
    let mut init_max = Resource::default();
    let mut init_max_nz = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        let rnz = non_zero(r.clone(), c);
        if is_sidecar(c) {
            sidecars.add(&r);
            sidecars_nz.add(&rnz);
            init_max.max_with(&sidecars);
            init_max_nz.max_with(&sidecars_nz);
        } else {
            let mut t = r;
            t.add(&sidecars);
            init_max.max_with(&t);
            let mut t = rnz;
            t.add(&sidecars_nz);
            init_max_nz.max_with(&t);
        }
    }
    reqs.add(&sidecars);
    reqs.max_with(&init_max);
    nz.add(&sidecars_nz);
    nz.max_with(&init_max_nz);
    // Pod-level resources override the container sum for the resources they name.
    if let Some(pl) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let p = Resource::from_list(pl);
        if pl.contains_key("cpu") {
            reqs.milli_cpu = p.milli_cpu;
            nz.milli_cpu = p.milli_cpu;
        }
        if pl.contains_key("memory") {
            reqs.memory = p.memory;
            nz.memory = p.memory;
        }
    }
    if let Some(oh) = spec.overhead.as_ref() {
        let o = Resource::from_list(oh);
        reqs.add(&o);
        nz.add(&o);
    }
    (reqs, nz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("0.5"), Some(500));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_value("1Gi"), Some(1 << 30));
        assert_eq!(parse_value("128Mi"), Some(128 << 20));
        assert_eq!(parse_value("1k"), Some(1000));
        assert_eq!(parse_value("1e3"), Some(1000));
        assert_eq!(parse_value("110"), Some(110));
        assert_eq!(parse_value("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_value("x"), None);
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    #[test]
    fn requests_with_init_sidecars_and_overhead() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m", "example.com/gpu": "1"}}}
            ],
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "1"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "i2", "resources": {"requests": {"memory": "1Gi"}}}
            ],
            "overhead": {"cpu": "10m"}
        }));
        let (r, nz) = pod_requests(&p);
        // max(300m + 50m sidecar, 1000m init) + 10m overhead
        assert_eq!(r.milli_cpu, 1010);
        // max(100Mi, 1Gi + 0 sidecar memory)
        assert_eq!(r.memory, 1 << 30);
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&1));
        // Non-zero: i2's 1Gi next to the sidecar's default 200Mi beats the containers' 500Mi.
        assert_eq!(nz.memory, (1 << 30) + (200 << 20));
        assert_eq!(nz.milli_cpu, 1010);
    }

    #[test]
    fn non_zero_defaults() {
        let p = pod(json!({"containers": [{"name": "a"}]}));
        let (r, nz) = pod_requests(&p);
        assert!(r.is_zero());
        assert_eq!(nz.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(nz.memory, DEFAULT_MEMORY_REQUEST);
    }
}
