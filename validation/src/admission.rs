//! The `admissionregistration.k8s.io` group: webhook configurations and admission
//! policies, as upstream's `pkg/apis/admissionregistration/v1/defaults.go` and the core of
//! `pkg/apis/admissionregistration/validation`.

use crate::meta::Scope::Cluster;
use crate::util::{
    Errs, arr, child, get_int, has, index, one_of, set_default, set_default_str, str_or_empty,
    with_mut,
};
use crate::{Strategy, no_checks, no_update_checks};
use machinery::FieldError;
use machinery::names::{self, name_is_dns_subdomain};
use serde_json::{Value, json};

pub(crate) fn strategy(resource: &str) -> Option<Strategy> {
    let s = |default, validate| Strategy {
        name: name_is_dns_subdomain,
        scope: Cluster,
        default,
        validate,
        validate_update: no_update_checks,
    };
    Some(match resource {
        "validatingwebhookconfigurations" => s(default_validating, validate_validating),
        "mutatingwebhookconfigurations" => s(default_mutating, validate_mutating),
        "validatingadmissionpolicies" => s(default_policy, no_checks),
        "validatingadmissionpolicybindings"
        | "mutatingadmissionpolicies"
        | "mutatingadmissionpolicybindings" => s(crate::no_default, no_checks),
        _ => return None,
    })
}

/// `SetDefaults_ValidatingWebhook` and what it contains.
fn default_webhook(w: &mut Value) {
    set_default_str(w, "failurePolicy", "Fail");
    set_default_str(w, "matchPolicy", "Equivalent");
    set_default(w, "namespaceSelector", json!({}));
    set_default(w, "objectSelector", json!({}));
    set_default(w, "timeoutSeconds", json!(10));
    crate::util::for_each_mut(w, "rules", |r| set_default_str(r, "scope", "*"));
    with_mut(w, "/clientConfig/service", |s| {
        set_default(s, "port", json!(443))
    });
}

fn default_validating(c: &mut Value) {
    crate::util::for_each_mut(c, "webhooks", default_webhook);
}

fn default_mutating(c: &mut Value) {
    crate::util::for_each_mut(c, "webhooks", |w| {
        default_webhook(w);
        set_default_str(w, "reinvocationPolicy", "Never");
    });
}

fn default_policy(p: &mut Value) {
    with_mut(p, "/spec", |s| {
        set_default_str(s, "failurePolicy", "Fail");
        with_mut(s, "/matchConstraints", |m| {
            set_default_str(m, "matchPolicy", "Equivalent");
            set_default(m, "namespaceSelector", json!({}));
            set_default(m, "objectSelector", json!({}));
            crate::util::for_each_mut(m, "resourceRules", |r| set_default_str(r, "scope", "*"));
        });
    });
}

fn validate_webhooks(c: &Value, mutating: bool) -> Errs {
    let mut errs = Errs::new();
    let hooks = arr(c, "webhooks");
    for (i, w) in hooks.iter().enumerate() {
        let p = index("webhooks", i);
        let name = str_or_empty(w, "name");
        let np = child(&p, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&np, ""));
        } else if !names::is_dns1123_subdomain(name).is_empty() {
            errs.push(FieldError::invalid(
                &np,
                json!(name),
                names::is_dns1123_subdomain(name).join(","),
            ));
        } else if name.split('.').count() < 3 {
            errs.push(FieldError::invalid(
                &np,
                json!(name),
                "should be a domain with at least three segments separated by dots",
            ));
        }
        if hooks[..i].iter().any(|o| str_or_empty(o, "name") == name) && !name.is_empty() {
            errs.push(FieldError::duplicate(&np, json!(name)));
        }
        match str_or_empty(w, "sideEffects") {
            "" => errs.push(FieldError::required(
                child(&p, "sideEffects"),
                "must specify one of None, NoneOnDryRun",
            )),
            "None" | "NoneOnDryRun" => {}
            other => errs.push(FieldError::not_supported(
                child(&p, "sideEffects"),
                json!(other),
                &["None", "NoneOnDryRun"],
            )),
        }
        let versions = arr(w, "admissionReviewVersions");
        if !versions
            .iter()
            .any(|v| matches!(v.as_str(), Some("v1" | "v1beta1")))
        {
            errs.push(FieldError::required(
                child(&p, "admissionReviewVersions"),
                "must specify one of v1, v1beta1",
            ));
        }
        errs.extend(one_of(w, "failurePolicy", &p, &["Fail", "Ignore"], false));
        errs.extend(one_of(
            w,
            "matchPolicy",
            &p,
            &["Equivalent", "Exact"],
            false,
        ));
        if mutating {
            errs.extend(one_of(
                w,
                "reinvocationPolicy",
                &p,
                &["IfNeeded", "Never"],
                false,
            ));
        }
        if let Some(t) = get_int(w, "timeoutSeconds").filter(|t| !(1..=30).contains(t)) {
            errs.push(FieldError::invalid(
                child(&p, "timeoutSeconds"),
                json!(t),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
        let cc = w.get("clientConfig").unwrap_or(&Value::Null);
        match (has(cc, "url"), has(cc, "service")) {
            (true, true) | (false, false) => {
                errs.push(FieldError::required(
                    child(&p, "clientConfig"),
                    "exactly one of url or service is required",
                ));
            }
            (false, true) => {
                let s = &cc["service"];
                for f in ["namespace", "name"] {
                    if str_or_empty(s, f).is_empty() {
                        errs.push(FieldError::required(
                            child(&child(&p, "clientConfig.service"), f),
                            "service namespace is required",
                        ));
                    }
                }
            }
            (true, false) => {
                let url = str_or_empty(cc, "url");
                if !url.starts_with("https://") {
                    errs.push(FieldError::invalid(
                        child(&p, "clientConfig.url"),
                        json!(url),
                        "'https' is the only allowed URL scheme",
                    ));
                }
            }
        }
    }
    errs
}

fn validate_validating(c: &Value) -> Errs {
    validate_webhooks(c, false)
}

fn validate_mutating(c: &Value) -> Errs {
    validate_webhooks(c, true)
}

#[cfg(test)]
mod tests {
    use crate::{default, validate_create};
    use machinery::FieldError;
    use serde_json::json;

    #[test]
    fn webhook_defaults_and_rules() {
        let mut c = json!({"metadata": {"name": "c"}, "webhooks": [{"name": "hook.example.com", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "clientConfig": {"service": {"namespace": "d", "name": "s"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]});
        default(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            &mut c,
        );
        let w = &c["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["rules"][0]["scope"], "*");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        assert!(
            validate_create(
                "admissionregistration.k8s.io",
                "v1",
                "mutatingwebhookconfigurations",
                &c
            )
            .is_empty()
        );
        let bad = json!({"metadata": {"name": "c"}, "webhooks": [{"name": "hook", "clientConfig": {"url": "https://x"}}]});
        let m: Vec<String> = validate_create(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            &bad,
        )
        .iter()
        .map(FieldError::message)
        .collect();
        assert_eq!(
            m,
            vec![
                "webhooks[0].name: Invalid value: \"hook\": should be a domain with at least three segments separated by dots",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            ]
        );
    }
}
