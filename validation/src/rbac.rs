//! The `rbac.authorization.k8s.io` group: Roles, ClusterRoles and their bindings, as
//! upstream's `pkg/apis/rbac/v1/defaults.go` and `pkg/apis/rbac/validation`.

use crate::meta::Scope::{self, Cluster, Namespaced};
use crate::util::{
    Errs, arr, child, get_str, index, str_or_empty, validate_label_selector, with_mut,
};
use crate::{Strategy, no_default, no_update_checks};
use machinery::FieldError;
use machinery::names::{self, name_is_path_segment};
use serde_json::{Value, json};

const GROUP: &str = "rbac.authorization.k8s.io";

pub(crate) fn strategy(resource: &str) -> Option<Strategy> {
    let s = |scope: Scope, default, validate, validate_update| Strategy {
        name: name_is_path_segment,
        scope,
        default,
        validate,
        validate_update,
    };
    Some(match resource {
        "roles" => s(Namespaced, no_default, validate_role, no_update_checks),
        "clusterroles" => s(Cluster, no_default, validate_cluster_role, no_update_checks),
        "rolebindings" => s(
            Namespaced,
            default_binding,
            validate_role_binding,
            role_ref_immutable,
        ),
        "clusterrolebindings" => s(
            Cluster,
            default_binding,
            validate_cluster_role_binding,
            role_ref_immutable,
        ),
        _ => return None,
    })
}

/// `SetDefaults_RoleBinding`/`ClusterRoleBinding` and `SetDefaults_Subject`.
fn default_binding(b: &mut Value) {
    with_mut(b, "/roleRef", |r| {
        crate::util::set_default_str(r, "apiGroup", GROUP)
    });
    crate::util::for_each_mut(b, "subjects", |s| {
        if str_or_empty(s, "apiGroup").is_empty() {
            let group = match str_or_empty(s, "kind") {
                "User" | "Group" => GROUP,
                _ => return,
            };
            if let Some(m) = s.as_object_mut() {
                m.insert("apiGroup".into(), json!(group));
            }
        }
    });
}

/// `ValidatePolicyRule`.
fn validate_rule(rule: &Value, namespaced: bool, path: &str) -> Errs {
    let mut errs = Errs::new();
    if arr(rule, "verbs").is_empty() {
        errs.push(FieldError::required(
            child(path, "verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = arr(rule, "nonResourceURLs");
    if !urls.is_empty() {
        let p = child(path, "nonResourceURLs");
        if namespaced {
            errs.push(FieldError::invalid(
                &p,
                json!(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if ["apiGroups", "resources", "resourceNames"]
            .iter()
            .any(|f| !arr(rule, f).is_empty())
        {
            errs.push(FieldError::invalid(
                &p,
                json!(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if arr(rule, "apiGroups").is_empty() {
        errs.push(FieldError::required(
            child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if arr(rule, "resources").is_empty() {
        errs.push(FieldError::required(
            child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(role: &Value, namespaced: bool) -> Errs {
    arr(role, "rules")
        .iter()
        .enumerate()
        .flat_map(|(i, r)| validate_rule(r, namespaced, &index("rules", i)))
        .collect()
}

fn validate_role(role: &Value) -> Errs {
    validate_rules(role, true)
}

fn validate_cluster_role(role: &Value) -> Errs {
    let mut errs = validate_rules(role, false);
    if let Some(agg) = role.get("aggregationRule").filter(|a| !a.is_null()) {
        let selectors = arr(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            errs.extend(validate_label_selector(
                sel,
                &index("aggregationRule.clusterRoleSelectors", i),
            ));
        }
    }
    errs
}

fn validate_binding(b: &Value, kinds: &[&str], namespaced: bool) -> Errs {
    let mut errs = Errs::new();
    let role_ref = b.get("roleRef").unwrap_or(&Value::Null);
    let group = str_or_empty(role_ref, "apiGroup");
    if group != GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            json!(group),
            &[GROUP],
        ));
    }
    let kind = str_or_empty(role_ref, "kind");
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            json!(kind),
            kinds,
        ));
    }
    let name = str_or_empty(role_ref, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in names::is_path_segment_name(name) {
            errs.push(FieldError::invalid("roleRef.name", json!(name), msg));
        }
    }
    for (i, s) in arr(b, "subjects").iter().enumerate() {
        errs.extend(validate_subject(s, namespaced, &index("subjects", i)));
    }
    errs
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(s: &Value, namespaced: bool, path: &str) -> Errs {
    let mut errs = Errs::new();
    let name = str_or_empty(s, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    let group = get_str(s, "apiGroup").unwrap_or("");
    match str_or_empty(s, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in names::name_is_dns_subdomain(name, false) {
                    errs.push(FieldError::invalid(child(path, "name"), json!(name), msg));
                }
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    json!(group),
                    &[""],
                ));
            }
            if !namespaced && str_or_empty(s, "namespace").is_empty() {
                errs.push(FieldError::required(child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    json!(group),
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "kind"),
            json!(other),
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

fn validate_role_binding(b: &Value) -> Errs {
    validate_binding(b, &["Role", "ClusterRole"], true)
}

fn validate_cluster_role_binding(b: &Value) -> Errs {
    validate_binding(b, &["ClusterRole"], false)
}

fn role_ref_immutable(new: &Value, old: &Value) -> Errs {
    let (n, o) = (
        new.get("roleRef").unwrap_or(&Value::Null),
        old.get("roleRef").unwrap_or(&Value::Null),
    );
    if crate::util::semantic_eq(n, o) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        "roleRef",
        n.clone(),
        "cannot change roleRef",
    )]
}

#[cfg(test)]
mod tests {
    use crate::{default, validate_create, validate_update};
    use machinery::FieldError;
    use serde_json::{Value, json};

    fn msgs(e: &[FieldError]) -> Vec<String> {
        e.iter().map(FieldError::message).collect()
    }

    fn create(r: &str, mut o: Value) -> Vec<String> {
        default(super::GROUP, "v1", r, &mut o);
        msgs(&validate_create(super::GROUP, "v1", r, &o))
    }

    #[test]
    fn role_rules() {
        let role = json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["x"]},
        ]});
        assert_eq!(
            create("roles", role),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
                "rules[2].nonResourceURLs: Invalid value: [\"/healthz\"]: namespaced rules cannot apply to non-resource URLs",
                "rules[2].nonResourceURLs: Invalid value: [\"/healthz\"]: rules cannot apply to both regular resources and non-resource URLs",
            ]
        );
        let cr = json!({"metadata": {"name": "system:controller:x"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]});
        assert!(create("clusterroles", cr).is_empty());
        let bad = json!({"metadata": {"name": "a/b"}});
        assert_eq!(
            create("clusterroles", bad),
            vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
        );
    }

    #[test]
    fn bindings() {
        let b = json!({"metadata": {"name": "b", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "d"}]});
        let mut o = b.clone();
        default(super::GROUP, "v1", "rolebindings", &mut o);
        assert_eq!(o["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(o["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(o["subjects"][1].get("apiGroup").is_none());
        assert!(validate_create(super::GROUP, "v1", "rolebindings", &o).is_empty());
        let crb = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": ""},
            "subjects": [{"kind": "ServiceAccount", "name": "x"}, {"kind": "Robot", "name": "y"}]});
        assert_eq!(
            create("clusterrolebindings", crb),
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Required value",
                "subjects[0].namespace: Required value",
                "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
        let mut changed = o.clone();
        changed["roleRef"]["name"] = json!("other");
        let errs = msgs(&validate_update(
            super::GROUP,
            "v1",
            "rolebindings",
            &changed,
            &o,
        ));
        assert_eq!(
            errs,
            vec![
                "roleRef: Invalid value: {\"kind\":\"Role\",\"name\":\"other\",\"apiGroup\":\"rbac.authorization.k8s.io\"}: cannot change roleRef"
            ]
        );
    }
}
