//! Which PersistentVolume a claim binds to, as upstream's volume index decides it: a
//! volume pre-bound to the claim wins; otherwise the smallest Available, unclaimed
//! volume of the claim's class whose capacity, volume mode, label selector and access
//! modes fit, preferring volumes with the fewest access modes beyond the claim's.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use machinery::quantity::Quantity;

/// The pre-1.6 annotations that named a class before `storageClassName`.
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The class a claim asks for (`""` for none).
pub fn claim_class(claim: &PersistentVolumeClaim) -> String {
    if let Some(c) = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
    {
        return c.clone();
    }
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// The class a volume belongs to (`""` for none).
pub fn volume_class(pv: &PersistentVolume) -> String {
    if let Some(c) = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
    {
        return c.clone();
    }
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn requested(claim: &PersistentVolumeClaim) -> Quantity {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
        .unwrap_or_default()
}

/// A volume's storage capacity (zero when it states none).
pub fn capacity(pv: &PersistentVolume) -> Quantity {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
        .unwrap_or_default()
}

fn claim_modes(claim: &PersistentVolumeClaim) -> Vec<String> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default()
}

fn volume_modes(pv: &PersistentVolume) -> Vec<String> {
    pv.spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default()
}

fn volume_mode_of_claim(claim: &PersistentVolumeClaim) -> String {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.clone())
        .unwrap_or_else(|| "Filesystem".into())
}

fn volume_mode_of_volume(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .and_then(|s| s.volume_mode.clone())
        .unwrap_or_else(|| "Filesystem".into())
}

fn phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Whether the volume's claimRef names this claim (by uid when it has one).
pub fn bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if r.name != claim.metadata.name || r.namespace != claim.metadata.namespace {
        return false;
    }
    match r.uid.as_deref().filter(|u| !u.is_empty()) {
        Some(uid) => claim.metadata.uid.as_deref() == Some(uid),
        None => true,
    }
}

fn selector_matches(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    match claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        None => true,
        Some(sel) => match crate::common::selector(sel) {
            Ok(s) => crate::common::matches(&s, pv.metadata.labels.as_ref()),
            Err(_) => false,
        },
    }
}

/// Why a volume the claim names cannot serve it (upstream's checkVolumeSatisfyClaim).
pub fn unsatisfied(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> Option<&'static str> {
    if pv.metadata.deletion_timestamp.is_some() {
        return Some("the volume is marked for deletion");
    }
    if capacity(pv) < requested(claim) {
        return Some("requested PV is too small");
    }
    if volume_class(pv) != claim_class(claim) {
        return Some("storageClassName does not match");
    }
    if volume_mode_of_claim(claim) != volume_mode_of_volume(pv) {
        return Some("incompatible volumeMode");
    }
    let have = volume_modes(pv);
    if !claim_modes(claim).iter().all(|m| have.contains(m)) {
        return Some("incompatible accessMode");
    }
    None
}

/// The volume the claim should bind to, if any. With `delay_binding`
/// (WaitForFirstConsumer) only a volume pre-bound to the claim qualifies: the scheduler
/// picks the rest once a pod needs the claim.
pub fn best_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [std::sync::Arc<PersistentVolume>],
    delay_binding: bool,
) -> Option<&'a PersistentVolume> {
    let want_modes = claim_modes(claim);
    let want_size = requested(claim);
    let class = claim_class(claim);
    let mut best: Option<(&PersistentVolume, usize, Quantity)> = None;
    for pv in volumes.iter().map(|v| v.as_ref()) {
        if volume_mode_of_claim(claim) != volume_mode_of_volume(pv)
            || pv.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let modes = volume_modes(pv);
        if !want_modes.iter().all(|m| modes.contains(m)) {
            continue;
        }
        if bound_to(pv, claim) {
            return Some(pv);
        }
        if delay_binding
            || phase(pv) != "Available"
            || pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .is_some()
            || !selector_matches(claim, pv)
            || volume_class(pv) != class
        {
            continue;
        }
        let size = capacity(pv);
        if size < want_size {
            continue;
        }
        // fewest extra access modes first, then the smallest volume
        let rank = (modes.len(), size);
        if best
            .as_ref()
            .is_none_or(|(_, n, s)| (rank.0, &rank.1) < (*n, s))
        {
            best = Some((pv, rank.0, rank.1));
        }
    }
    best.map(|(pv, _, _)| pv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::Arc;

    fn pv(name: &str, size: &str, extra: Value) -> Arc<PersistentVolume> {
        let mut v = json!({"metadata": {"name": name}, "spec": {
            "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/x"}}, "status": {"phase": "Available"}});
        merge(&mut v, extra);
        Arc::new(serde_json::from_value(v).expect("pv"))
    }

    fn claim(size: &str, extra: Value) -> PersistentVolumeClaim {
        let mut v = json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u1"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}});
        merge(&mut v, extra);
        serde_json::from_value(v).expect("claim")
    }

    fn merge(base: &mut Value, extra: Value) {
        if let (Value::Object(b), Value::Object(e)) = (base, extra) {
            for (k, v) in e {
                match b.get_mut(&k) {
                    Some(slot @ Value::Object(_)) if v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
    }

    fn name(pv: Option<&PersistentVolume>) -> Option<&str> {
        pv.and_then(|p| p.metadata.name.as_deref())
    }

    #[test]
    fn the_smallest_fitting_volume_of_the_class() {
        let vols = vec![
            pv("big", "10Gi", json!({})),
            pv("small", "1Gi", json!({})),
            pv("fits", "2Gi", json!({})),
            pv(
                "other-class",
                "2Gi",
                json!({"spec": {"storageClassName": "fast"}}),
            ),
        ];
        assert_eq!(
            name(best_match(&claim("1500Mi", json!({})), &vols, false)),
            Some("fits")
        );
        assert_eq!(
            name(best_match(
                &claim("1Gi", json!({"spec": {"storageClassName": "fast"}})),
                &vols,
                false
            )),
            Some("other-class")
        );
        assert_eq!(
            name(best_match(&claim("20Gi", json!({})), &vols, false)),
            None
        );
    }

    #[test]
    fn prebound_volumes_win_and_others_are_skipped() {
        let vols = vec![
            pv(
                "mine",
                "5Gi",
                json!({"spec": {"claimRef": {"namespace": "ns", "name": "c"}}}),
            ),
            pv("free", "1Gi", json!({})),
            pv(
                "taken",
                "1Gi",
                json!({"spec": {"claimRef": {"namespace": "ns", "name": "d", "uid": "x"}}}),
            ),
            pv("released", "1Gi", json!({"status": {"phase": "Released"}})),
        ];
        assert_eq!(
            name(best_match(&claim("1Gi", json!({})), &vols, false)),
            Some("mine")
        );
        // waiting for a consumer: only the pre-bound volume
        assert_eq!(
            name(best_match(&claim("1Gi", json!({})), &vols, true)),
            Some("mine")
        );
        assert_eq!(
            name(best_match(&claim("1Gi", json!({})), &vols[1..], true)),
            None
        );
        assert_eq!(
            name(best_match(&claim("1Gi", json!({})), &vols[1..], false)),
            Some("free")
        );
    }

    #[test]
    fn access_modes_selectors_and_volume_modes() {
        let vols = vec![
            pv(
                "many",
                "1Gi",
                json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"]}}),
            ),
            pv(
                "two",
                "5Gi",
                json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}}),
            ),
            pv(
                "block",
                "1Gi",
                json!({"spec": {"volumeMode": "Block", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}}),
            ),
            pv(
                "labelled",
                "9Gi",
                json!({"metadata": {"labels": {"tier": "gold"}}, "spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"]}}),
            ),
        ];
        let rox = claim("1Gi", json!({"spec": {"accessModes": ["ReadOnlyMany"]}}));
        // fewer extra modes beats a smaller size
        assert_eq!(name(best_match(&rox, &vols, false)), Some("two"));
        let gold = claim(
            "1Gi",
            json!({"spec": {"accessModes": ["ReadWriteMany"], "selector": {"matchLabels": {"tier": "gold"}}}}),
        );
        assert_eq!(name(best_match(&gold, &vols, false)), Some("labelled"));
        let block = claim("1Gi", json!({"spec": {"volumeMode": "Block"}}));
        assert_eq!(name(best_match(&block, &vols, false)), Some("block"));
    }

    #[test]
    fn why_a_named_volume_does_not_fit() {
        let v = pv("v", "1Gi", json!({}));
        assert_eq!(
            unsatisfied(&v, &claim("2Gi", json!({}))),
            Some("requested PV is too small")
        );
        assert_eq!(
            unsatisfied(
                &v,
                &claim("1Gi", json!({"spec": {"storageClassName": "x"}}))
            ),
            Some("storageClassName does not match")
        );
        assert_eq!(
            unsatisfied(
                &v,
                &claim("1Gi", json!({"spec": {"accessModes": ["ReadWriteMany"]}}))
            ),
            Some("incompatible accessMode")
        );
        assert_eq!(unsatisfied(&v, &claim("1Gi", json!({}))), None);
    }
}
