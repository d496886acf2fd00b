//! Which NoExecute taints a pod tolerates, and for how long: upstream's
//! `Toleration.ToleratesTaint`, `GetMatchingTolerations` and the taint-eviction
//! controller's minimum toleration time. Pure functions, no I/O.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Whether one toleration tolerates the taint: the effect (empty tolerates every effect)
/// and the key (empty only with `Exists`, matching every key) must match, and with the
/// `Equal` operator (the default) the value too.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or_default() {
        "Exists" => true,
        "" | "Equal" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// The tolerations that tolerate `taints`, the first matching one for each taint; `None`
/// when some taint is not tolerated at all.
pub fn matching_tolerations<'a>(
    taints: &[Taint],
    tolerations: &'a [Toleration],
) -> Option<Vec<&'a Toleration>> {
    taints
        .iter()
        .map(|taint| tolerations.iter().find(|t| tolerates(t, taint)))
        .collect()
}

/// How long a pod may stay given the tolerations it uses: the smallest
/// `tolerationSeconds` (zero or negative means at once, as does using no toleration),
/// or `None` when every used toleration tolerates forever.
pub fn min_toleration_time(used: &[&Toleration]) -> Option<Duration> {
    if used.is_empty() {
        return Some(Duration::ZERO);
    }
    let mut min: Option<u64> = None;
    for seconds in used.iter().filter_map(|t| t.toleration_seconds) {
        if seconds <= 0 {
            return Some(Duration::ZERO);
        }
        let seconds = seconds.unsigned_abs();
        min = Some(min.map_or(seconds, |m| m.min(seconds)));
    }
    min.map(Duration::from_secs)
}

/// The NoExecute taints among a node's taints.
pub fn no_execute_taints(taints: &[Taint]) -> Vec<Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.into()),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn tol(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).expect("toleration")
    }

    #[test]
    fn toleration_matching_rules() {
        let t = taint("dedicated", "gpu", "NoExecute");
        assert!(tolerates(
            &tol(json!({"key": "dedicated", "value": "gpu"})),
            &t
        ));
        assert!(tolerates(
            &tol(
                json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute"})
            ),
            &t
        ));
        assert!(!tolerates(
            &tol(json!({"key": "dedicated", "value": "cpu"})),
            &t
        ));
        assert!(!tolerates(
            &tol(json!({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"})),
            &t
        ));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &t));
        assert!(!tolerates(
            &tol(json!({"key": "other", "operator": "Exists"})),
            &t
        ));
        assert!(!tolerates(
            &tol(json!({"key": "dedicated", "operator": "Lt", "value": "gpu"})),
            &t
        ));
    }

    #[test]
    fn every_taint_needs_a_toleration() {
        let taints = vec![taint("a", "", "NoExecute"), taint("b", "", "NoExecute")];
        let tolerations = vec![
            tol(json!({"key": "a", "operator": "Exists", "tolerationSeconds": 30})),
            tol(json!({"key": "b", "operator": "Exists", "tolerationSeconds": 10})),
        ];
        let used = matching_tolerations(&taints, &tolerations).expect("tolerated");
        assert_eq!(used.len(), 2);
        assert_eq!(min_toleration_time(&used), Some(Duration::from_secs(10)));
        assert!(matching_tolerations(&taints, &tolerations[..1]).is_none());
        assert_eq!(matching_tolerations(&[], &[]).map(|u| u.len()), Some(0));
    }

    #[test]
    fn toleration_time() {
        let forever = tol(json!({"operator": "Exists"}));
        let ten = tol(json!({"operator": "Exists", "tolerationSeconds": 10}));
        let zero = tol(json!({"operator": "Exists", "tolerationSeconds": 0}));
        let negative = tol(json!({"operator": "Exists", "tolerationSeconds": -5}));
        assert_eq!(min_toleration_time(&[&forever]), None);
        assert_eq!(
            min_toleration_time(&[&forever, &ten]),
            Some(Duration::from_secs(10))
        );
        assert_eq!(min_toleration_time(&[&ten, &zero]), Some(Duration::ZERO));
        assert_eq!(min_toleration_time(&[&negative]), Some(Duration::ZERO));
        assert_eq!(min_toleration_time(&[]), Some(Duration::ZERO));
    }

    #[test]
    fn only_no_execute_taints() {
        let taints = vec![taint("a", "", "NoSchedule"), taint("b", "", "NoExecute")];
        let got = no_execute_taints(&taints);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key, "b");
    }
}
