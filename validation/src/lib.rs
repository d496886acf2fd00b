//! Defaulting and validation of the built-in types, as upstream does it.
//!
//! Objects are JSON values of their (storage) version. Each API group has a module that
//! knows its resources' rules: the name rule and scope for `metadata`, upstream's
//! defaults (`pkg/apis/<group>/v1/defaults.go`), and validation
//! (`pkg/apis/<group>/validation`), worded as upstream so clients see the same 422s.
//! Resources not known here (custom resources, ...) get `metadata` validation only.
//!
//! What this crate does not do: anything the REST layer or admission does upstream
//! (allocating cluster IPs, generating names, service-account or toleration admission,
//! status/spec splitting).

mod admission;
mod apps;
mod batch;
mod core;
mod cron;
mod meta;
mod networking;
mod policy;
mod rbac;
mod small;
mod util;

use machinery::FieldError;
use machinery::names::{self, NameValidator};
pub use meta::{Scope, TOTAL_ANNOTATION_SIZE_LIMIT};
use serde_json::Value;
use util::Errs;

/// One resource's rules, as upstream's registry strategy holds them.
pub(crate) struct Strategy {
    /// The rule `metadata.name` (and `generateName`) must follow.
    pub name: NameValidator,
    /// Whether the resource is namespaced.
    pub scope: Scope,
    /// Fills upstream's defaults in.
    pub default: fn(&mut Value),
    /// Type-specific checks of an object, on create and on update.
    pub validate: fn(&Value) -> Errs,
    /// Extra checks of an update against the old object (immutable fields, ...).
    pub validate_update: fn(&Value, &Value) -> Errs,
}

pub(crate) fn no_default(_: &mut Value) {}
pub(crate) fn no_checks(_: &Value) -> Errs {
    Vec::new()
}
pub(crate) fn no_update_checks(_: &Value, _: &Value) -> Errs {
    Vec::new()
}

fn strategy(group: &str, version: &str, resource: &str) -> Option<Strategy> {
    match group {
        "" => core::strategy(resource),
        "apps" => apps::strategy(resource),
        "batch" => batch::strategy(resource),
        "rbac.authorization.k8s.io" => rbac::strategy(resource),
        "policy" => policy::strategy(resource),
        "networking.k8s.io" => networking::strategy(resource),
        "admissionregistration.k8s.io" => admission::strategy(resource),
        "apiextensions.k8s.io" if resource == "customresourcedefinitions" => Some(Strategy {
            name: names::name_is_dns_subdomain,
            scope: Scope::Cluster,
            default: apiextensions::default_crd,
            validate: apiextensions::validate_crd,
            validate_update: crd_update_checks,
        }),
        _ => small::strategy(group, version, resource),
    }
}

/// What only an update of a CRD is checked for (immutable group, names, scope); the
/// checks every CRD gets run as `validate`.
fn crd_update_checks(crd: &Value, old: &Value) -> Errs {
    let every = apiextensions::validate_crd(crd);
    apiextensions::validate_crd_update(crd, old)
        .into_iter()
        .filter(|e| !every.contains(e))
        .collect()
}

/// Fill upstream's defaults into a new/updated object of this resource (group `""` =
/// core, plural resource name, version), as upstream's decoding does (v1.35 defaults).
///
/// A Job's generated selector needs `metadata.uid`: call this once the uid is set.
pub fn default(group: &str, version: &str, resource: &str, obj: &mut Value) {
    if let Some(s) = strategy(group, version, resource) {
        (s.default)(obj);
    }
}

/// Validate a create. Returns field errors (empty = valid).
pub fn validate_create(group: &str, version: &str, resource: &str, obj: &Value) -> Vec<FieldError> {
    match strategy(group, version, resource) {
        Some(s) => {
            let mut errs = meta::validate_create(obj, s.scope, s.name);
            errs.extend((s.validate)(obj));
            errs
        }
        None => meta::validate_create(obj, Scope::Unknown, names::name_is_dns_subdomain),
    }
}

/// Validate an update against the old object (immutable fields, e.g. Deployment
/// `spec.selector`, immutable Secrets and ConfigMaps, Job templates, Service cluster IPs,
/// PVC specs, ...). Returns field errors (empty = valid).
pub fn validate_update(
    group: &str,
    version: &str,
    resource: &str,
    obj: &Value,
    old: &Value,
) -> Vec<FieldError> {
    let mut errs = meta::validate_update(obj, old);
    if let Some(s) = strategy(group, version, resource) {
        errs.extend((s.validate)(obj));
        errs.extend((s.validate_update)(obj, old));
    }
    errs
}

/// Whether this crate has type-specific rules for the resource (beyond `metadata`).
pub fn is_known(group: &str, version: &str, resource: &str) -> bool {
    strategy(group, version, resource).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_resources_get_metadata_validation() {
        let obj = json!({"metadata": {"name": "Bad"}});
        let errs = validate_create("example.com", "v1", "widgets", &obj);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        let mut o = obj.clone();
        default("example.com", "v1", "widgets", &mut o);
        assert_eq!(o, obj);
        assert!(!is_known("example.com", "v1", "widgets"));
    }

    #[test]
    fn update_checks_metadata_first() {
        let old = json!({"metadata": {"name": "a", "namespace": "d"}, "data": {}});
        let new = json!({"metadata": {"name": "b", "namespace": "d"}, "data": {}});
        let errs = validate_update("", "v1", "configmaps", &new, &old);
        assert_eq!(
            errs[0].message(),
            "metadata.name: Invalid value: \"b\": field is immutable"
        );
    }

    /// Objects as kubectl's generators send them must default into valid objects.
    #[test]
    fn kubectl_generated_objects_are_valid() {
        let cases = [
            (
                "",
                "pods",
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx", "namespace": "default", "labels": {"run": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}], "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"}, "status": {}}),
            ),
            (
                "apps",
                "deployments",
                json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}}}}),
            ),
            (
                "",
                "services",
                json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "web"}}}),
            ),
            (
                "batch",
                "jobs",
                json!({"metadata": {"name": "pi", "namespace": "default", "uid": "abc"},
                "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "pi", "image": "perl", "resources": {}}], "restartPolicy": "Never"}}}}),
            ),
            (
                "batch",
                "cronjobs",
                json!({"metadata": {"name": "hello", "namespace": "default"}, "spec": {"schedule": "*/1 * * * *",
                "jobTemplate": {"metadata": {"name": "hello"}, "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "hello", "image": "busybox", "resources": {}}], "restartPolicy": "OnFailure"}}}}}}),
            ),
            (
                "",
                "configmaps",
                json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"key": "value", "app.properties": "a=b"}}),
            ),
            (
                "",
                "secrets",
                json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"}),
            ),
            (
                "",
                "serviceaccounts",
                json!({"metadata": {"name": "builder", "namespace": "default"}}),
            ),
            (
                "",
                "namespaces",
                json!({"metadata": {"name": "dev"}, "spec": {}, "status": {}}),
            ),
            (
                "rbac.authorization.k8s.io",
                "roles",
                json!({"metadata": {"name": "pod-reader", "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                json!({"metadata": {"name": "admin-binding"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}]}),
            ),
            (
                "networking.k8s.io",
                "ingresses",
                json!({"metadata": {"name": "simple", "namespace": "default"}, "spec": {"rules": [{"host": "foo.com",
                "http": {"paths": [{"path": "/bar", "pathType": "Exact", "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}}]}}]}}),
            ),
            (
                "policy",
                "poddisruptionbudgets",
                json!({"metadata": {"name": "pdb", "namespace": "default"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
            ),
            (
                "scheduling.k8s.io",
                "priorityclasses",
                json!({"metadata": {"name": "high"}, "value": 1000, "globalDefault": false}),
            ),
            (
                "",
                "resourcequotas",
                json!({"metadata": {"name": "q", "namespace": "default"}, "spec": {"hard": {"pods": "10", "requests.cpu": "2", "count/deployments.apps": "3"}}}),
            ),
        ];
        for (g, r, mut o) in cases {
            default(g, "v1", r, &mut o);
            let errs: Vec<String> = validate_create(g, "v1", r, &o)
                .iter()
                .map(FieldError::message)
                .collect();
            assert!(errs.is_empty(), "{g}/{r}: {errs:?}");
            let again: Vec<String> = validate_update(g, "v1", r, &o, &o)
                .iter()
                .map(FieldError::message)
                .collect();
            assert!(again.is_empty(), "{g}/{r} update: {again:?}");
        }
    }

    #[test]
    fn wrong_types_never_panic() {
        let junk = [
            json!(null),
            json!(1),
            json!("x"),
            json!([1, 2]),
            json!({"metadata": 5, "spec": "x"}),
            json!({"metadata": {"name": 5, "labels": [1]}, "spec": {"containers": {"a": 1}, "template": 3, "selector": "x", "ports": [null, 5]}}),
        ];
        let resources = [
            ("", "pods"),
            ("", "services"),
            ("", "configmaps"),
            ("", "secrets"),
            ("", "namespaces"),
            ("", "nodes"),
            ("", "serviceaccounts"),
            ("", "persistentvolumeclaims"),
            ("", "persistentvolumes"),
            ("", "resourcequotas"),
            ("", "events"),
            ("", "replicationcontrollers"),
            ("", "podtemplates"),
            ("", "limitranges"),
            ("", "endpoints"),
            ("apps", "deployments"),
            ("apps", "replicasets"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("rbac.authorization.k8s.io", "clusterrolebindings"),
            ("policy", "poddisruptionbudgets"),
            ("networking.k8s.io", "ingresses"),
            ("networking.k8s.io", "networkpolicies"),
            ("networking.k8s.io", "ingressclasses"),
            ("scheduling.k8s.io", "priorityclasses"),
            ("coordination.k8s.io", "leases"),
            ("events.k8s.io", "events"),
            ("storage.k8s.io", "storageclasses"),
            ("autoscaling", "horizontalpodautoscalers"),
            (
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
            ),
            (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
            ),
            ("discovery.k8s.io", "endpointslices"),
        ];
        for (g, r) in resources {
            let v = if g == "autoscaling" { "v2" } else { "v1" };
            assert!(is_known(g, v, r), "{g}/{r}");
            for j in &junk {
                let mut o = j.clone();
                default(g, v, r, &mut o);
                let _ = validate_create(g, v, r, &o);
                let _ = validate_update(g, v, r, &o, j);
                let _ = validate_update(g, v, r, j, &o);
            }
        }
    }
}
