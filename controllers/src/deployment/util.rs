//! Pure helpers of the deployment controller (upstream's `deployment/util`): the
//! pod-template hash, revisions and their annotations, maxSurge/maxUnavailable, the size
//! of the new ReplicaSet during a rolling update, and proportional scaling.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label and selector key that ties a ReplicaSet and its pods to one template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Upstream's limit on the length of the revision-history annotation.
pub const MAX_REV_HISTORY_CHARS: usize = 2000;

/// FNV-1a, 32 bits (what upstream's `fnv.New32a` computes).
fn fnv32a(data: &[u8], mut h: u32) -> u32 {
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// Upstream's `rand.SafeEncodeString`: maps each byte onto consonants and digits that
/// cannot spell words.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The pod-template hash: FNV-32a over the template, then over the collision count
/// (as 8 little-endian bytes, as upstream writes it), printed in decimal and
/// safe-encoded. Upstream hashes Go's `%#v` dump of the struct, which has no Rust
/// equivalent; we hash the template's canonical JSON instead, so names have upstream's
/// shape (`<deployment>-<hash>` over the same alphabet) but not the same letters.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    let mut h = fnv32a(&json, 2_166_136_261);
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        h = fnv32a(&bytes, h);
    }
    safe_encode(&h.to_string())
}

fn without_hash(t: &PodTemplateSpec) -> serde_json::Value {
    let mut t = t.clone();
    if let Some(meta) = t.metadata.as_mut()
        && let Some(labels) = meta.labels.as_mut()
    {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty() {
            meta.labels = None;
        }
    }
    serde_json::to_value(t).unwrap_or_default()
}

/// Upstream's `EqualIgnoreHash`: templates equal but for the pod-template-hash label.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn deployment_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    k: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(k).map(String::as_str)
}

/// The revision recorded on a ReplicaSet (0 when none or unparsable).
pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(revision).max().unwrap_or(0)
}

pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata, DESIRED_REPLICAS).and_then(|v| v.parse().ok())
}

fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata, MAX_REPLICAS).and_then(|v| v.parse().ok())
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling_update(d: &Deployment) -> bool {
    is_rolling(d)
}

/// Upstream's `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: f64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<i32>().ok())
                .map(f64::from)
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let x = pct * f64::from(total) / 100.0;
            Ok(if round_up { x.ceil() } else { x.floor() } as i32)
        }
    }
}

/// Upstream's `ResolveFenceposts`: (maxSurge, maxUnavailable) as pod counts; surge rounds
/// up, unavailable down, and both zero means one unavailable.
pub fn resolve_fenceposts(d: &Deployment) -> (i32, i32) {
    let desired = deployment_replicas(d);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge_v = ru
        .and_then(|r| r.max_surge.clone())
        .unwrap_or(default.clone());
    let unavail_v = ru
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(default);
    let surge = scaled_value(&surge_v, desired, true).unwrap_or(0);
    let unavailable = scaled_value(&unavail_v, desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    resolve_fenceposts(d).0
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = deployment_replicas(d);
    if !is_rolling(d) || replicas == 0 {
        return 0;
    }
    resolve_fenceposts(d).1.min(replicas)
}

/// Sets desired-replicas and max-replicas; true when they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(Default::default);
    let (d, m) = (desired.to_string(), max.to_string());
    let changed = a.get(DESIRED_REPLICAS) != Some(&d) || a.get(MAX_REPLICAS) != Some(&m);
    a.insert(DESIRED_REPLICAS.into(), d);
    a.insert(MAX_REPLICAS.into(), m);
    changed
}

pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Upstream's `SetNewReplicaSetAnnotations`: copies the deployment's annotations (except
/// the controller's own and kubectl's last-applied), raises the revision (keeping the
/// previous one in revision-history when an old ReplicaSet comes back), and for a new
/// ReplicaSet sets the replica annotations. True when anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    let skip = [
        LAST_APPLIED,
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        ROLLBACK_TO,
    ];
    let a = rs.metadata.annotations.get_or_insert_with(Default::default);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip.contains(&k.as_str()) || a.get(k) == Some(v) {
            continue;
        }
        a.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = a.get(REVISION).cloned();
    let old_n: i64 = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_n < new_revision {
        a.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            let mut parts: Vec<&str> = history.split(',').filter(|s| !s.is_empty()).collect();
            let mut total = history.len() + old.len() + 1;
            while total > MAX_REV_HISTORY_CHARS && !parts.is_empty() {
                total -= parts.remove(0).len() + 1;
            }
            parts.push(&old);
            let joined = parts.join(",");
            a.insert(REVISION_HISTORY.into(), joined);
        }
    }
    if !exists {
        let desired = deployment_replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + max_surge(d));
    }
    changed
}

/// Upstream's `NewRSNewReplicas`: how big the new ReplicaSet may be now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = deployment_replicas(d);
    if !is_rolling(d) {
        return desired;
    }
    let current: i32 = all.iter().map(spec_replicas).sum();
    let max_total = desired + max_surge(d);
    if current >= max_total {
        return spec_replicas(new_rs);
    }
    let up = (max_total - current).min(desired - spec_replicas(new_rs));
    spec_replicas(new_rs) + up
}

/// Upstream's `getReplicaSetFraction`.
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let desired = deployment_replicas(d);
    let size = spec_replicas(rs);
    if desired == 0 {
        return -size;
    }
    let max = desired + max_surge(d);
    let before = match max_replicas_annotation(rs) {
        Some(n) if n != 0 => n,
        _ => {
            let status = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if status == 0 { size } else { status }
        }
    };
    if before == 0 {
        return 0;
    }
    let new_size = f64::from(size) * f64::from(max) / f64::from(before);
    new_size.round() as i32 - size
}

/// Upstream's `GetProportion`.
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if spec_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let f = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        f.min(allowed)
    } else {
        f.max(allowed)
    }
}

fn created(rs: &ReplicaSet) -> Option<k8s_openapi::jiff::Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Oldest first, ties by name (upstream's `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Larger first; equal sizes newer first (`ReplicaSetsBySizeNewer`).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    spec_replicas(b)
        .cmp(&spec_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Larger first; equal sizes older first (`ReplicaSetsBySizeOlder`).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    spec_replicas(b)
        .cmp(&spec_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Lower revision first, ties by creation (`ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
            }
        }))
        .expect("deployment")
    }

    #[test]
    fn fenceposts_round_like_upstream() {
        assert_eq!(
            resolve_fenceposts(&deployment(10, json!("25%"), json!("25%"))),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(&deployment(1, json!("25%"), json!("25%"))),
            (1, 0)
        );
        assert_eq!(
            resolve_fenceposts(&deployment(3, json!(0), json!(0))),
            (0, 1)
        );
        assert_eq!(max_unavailable(&deployment(2, json!(0), json!(5))), 2);
    }

    #[test]
    fn hash_is_stable_and_safe() {
        let d = deployment(1, json!(1), json!(0));
        let t = d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .expect("template");
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn revision_history_on_rollback() {
        let d = deployment(1, json!(1), json!(0));
        let mut rs = ReplicaSet::default();
        assert!(set_new_rs_annotations(&d, &mut rs, 1, false));
        assert_eq!(revision(&rs), 1);
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        let a = rs.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("1"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("2"));
    }

    #[test]
    fn new_rs_grows_within_surge() {
        let d = deployment(10, json!(3), json!(2));
        let sized = |n: i32| ReplicaSet {
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(n),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (old, new) = (sized(10), sized(0));
        assert_eq!(
            new_rs_new_replicas(&d, &[old.clone(), new.clone()], &new),
            3
        );
    }
}
