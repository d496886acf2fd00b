//! The pod's QoS class (Guaranteed, Burstable, BestEffort) from its containers' cpu and
//! memory requests and limits, by upstream's rules, and the quantity arithmetic it needs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A quantity (`100m`, `1.5`, `2Gi`, `1e3`) in thousandths of its unit, or `None` when
/// it does not parse. Fractions below a thousandth round up, as upstream's milli-values.
pub fn parse_quantity_milli(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (mult_num, mult_den, exp): (i128, i128, i32) = match suffix {
        "" => (1, 1, 0),
        "n" => (1, 1, -9),
        "u" => (1, 1, -6),
        "m" => (1, 1, -3),
        "k" => (1, 1, 3),
        "M" => (1, 1, 6),
        "G" => (1, 1, 9),
        "T" => (1, 1, 12),
        "P" => (1, 1, 15),
        "E" => (1, 1, 18),
        "Ki" => (1 << 10, 1, 0),
        "Mi" => (1 << 20, 1, 0),
        "Gi" => (1 << 30, 1, 0),
        "Ti" => (1 << 40, 1, 0),
        "Pi" => (1 << 50, 1, 0),
        "Ei" => (1 << 60, 1, 0),
        s if s.starts_with(['e', 'E']) => (1, 1, s[1..].parse().ok()?),
        _ => return None,
    };
    let negative = num.starts_with('-');
    let digits = num.trim_start_matches(['+', '-']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // value = mantissa * 10^(exp - frac.len()) * mult, in milli-units: * 10^3
    let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    let mut scale = exp + 3 - frac.len() as i32;
    let mut v = mantissa.checked_mul(mult_num)? / mult_den;
    while scale > 0 {
        v = v.checked_mul(10)?;
        scale -= 1;
    }
    while scale < 0 {
        v = (v + 9) / 10;
        scale += 1;
    }
    Some(if negative { -v } else { v })
}

const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

fn nonzero(m: Option<&BTreeMap<String, Quantity>>, name: &str) -> Option<i128> {
    m.and_then(|m| m.get(name))
        .and_then(|q| parse_quantity_milli(&q.0))
        .filter(|v| *v > 0)
}

/// Adds one container's (or the pod's) requests and limits; false when it does not set
/// both cpu and memory limits.
fn add(
    r: Option<&ResourceRequirements>,
    requests: &mut BTreeMap<&'static str, i128>,
    limits: &mut BTreeMap<&'static str, i128>,
) -> bool {
    let mut found = 0;
    for name in QOS_RESOURCES {
        if let Some(v) = nonzero(r.and_then(|r| r.requests.as_ref()), name) {
            *requests.entry(name).or_default() += v;
        }
        if let Some(v) = nonzero(r.and_then(|r| r.limits.as_ref()), name) {
            *limits.entry(name).or_default() += v;
            found += 1;
        }
    }
    found == QOS_RESOURCES.len()
}

/// The QoS class upstream computes for a pod spec. Pod-level resources, when set,
/// decide alone.
pub fn pod_qos_class(spec: &PodSpec) -> &'static str {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    let mut guaranteed = true;
    if spec.resources.is_some() {
        guaranteed = add(spec.resources.as_ref(), &mut requests, &mut limits);
    } else {
        let all: Vec<&Container> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .collect();
        for c in all {
            guaranteed &= add(c.resources.as_ref(), &mut requests, &mut limits);
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        guaranteed = requests.iter().all(|(k, v)| limits.get(k) == Some(v));
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
