//! The `policy` group: PodDisruptionBudgets, as upstream's `pkg/apis/policy/validation`.

use crate::meta::Scope::Namespaced;
use crate::util::{
    Errs, has, not_more_than_100_percent, one_of, positive_int_or_percent, validate_label_selector,
};
use crate::{Strategy, no_default, no_update_checks};
use machinery::FieldError;
use machinery::names::name_is_dns_subdomain;
use serde_json::Value;

pub(crate) fn strategy(resource: &str) -> Option<Strategy> {
    match resource {
        "poddisruptionbudgets" => Some(Strategy {
            name: name_is_dns_subdomain,
            scope: Namespaced,
            default: no_default,
            validate: validate_pdb,
            validate_update: no_update_checks,
        }),
        _ => None,
    }
}

/// `ValidatePodDisruptionBudgetSpec`.
fn validate_pdb(pdb: &Value) -> Errs {
    let spec = pdb.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    if has(spec, "minAvailable") && has(spec, "maxUnavailable") {
        errs.push(FieldError::invalid(
            "spec",
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for f in ["minAvailable", "maxUnavailable"] {
        if let Some(v) = spec.get(f).filter(|v| !v.is_null()) {
            let p = format!("spec.{f}");
            errs.extend(positive_int_or_percent(v, &p));
            errs.extend(not_more_than_100_percent(v, &p));
        }
    }
    if let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) {
        errs.extend(validate_label_selector(sel, "spec.selector"));
    }
    errs.extend(one_of(
        spec,
        "unhealthyPodEvictionPolicy",
        "spec",
        &["AlwaysAllow", "IfHealthyBudget"],
        false,
    ));
    errs
}

#[cfg(test)]
mod tests {
    use crate::validate_create;
    use machinery::FieldError;
    use serde_json::json;

    #[test]
    fn pdb_rules() {
        let pdb = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"minAvailable": "150%", "maxUnavailable": -1,
            "selector": {"matchLabels": {"app": "web"}}, "unhealthyPodEvictionPolicy": "Sometimes"}});
        let m: Vec<String> = validate_create("policy", "v1", "poddisruptionbudgets", &pdb)
            .iter()
            .map(FieldError::message)
            .collect();
        assert!(m[0].starts_with("spec: Invalid value: {"));
        assert!(m[0].ends_with("}: minAvailable and maxUnavailable cannot be both set"));
        assert_eq!(
            m[1],
            "spec.minAvailable: Invalid value: \"150%\": must not be greater than 100%"
        );
        assert_eq!(
            m[2],
            "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            m[3],
            "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Sometimes\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\""
        );
        let ok = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
        assert!(validate_create("policy", "v1", "poddisruptionbudgets", &ok).is_empty());
    }
}
