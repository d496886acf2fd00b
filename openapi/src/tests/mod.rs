//! Tests of the documents against a small hand-made registry.

mod documents;
mod paths;
mod schemas;

use std::collections::{BTreeSet, HashSet};

use machinery::resource::{ALL_VERBS, ResourceInfo};
use serde_json::{Map, Value, json};

use crate::definitions::build;
use crate::{definitions, v2, v3_group_version, v3_group_version_with, v3_index};

fn resource(
    definition: &str,
    plural: &str,
    namespaced: bool,
    subresources: &[&str],
) -> ResourceInfo {
    resource_gv(definition, plural, namespaced, subresources, ALL_VERBS)
}

fn resource_gv(
    definition: &str,
    plural: &str,
    namespaced: bool,
    subresources: &[&str],
    verbs: &[&str],
) -> ResourceInfo {
    // io.k8s.api.<group>.<version>.<Kind>; the tests only use groups spelled like their package.
    let parts: Vec<&str> = definition.rsplitn(3, '.').collect();
    let (kind, version, package) = (parts[0], parts[1], parts[2]);
    let group = match package {
        "io.k8s.api.core" => String::new(),
        "io.k8s.api.rbac" => "rbac.authorization.k8s.io".into(),
        "io.k8s.api.certificates" => "certificates.k8s.io".into(),
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions" => "apiextensions.k8s.io".into(),
        other => other.rsplit('.').next().unwrap_or_default().to_string(),
    };
    ResourceInfo {
        group,
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: Vec::new(),
        categories: Vec::new(),
        namespaced,
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        subresources: subresources.iter().map(|s| s.to_string()).collect(),
        storage_resource: plural.into(),
        storage_version: version.into(),
        definition: definition.into(),
        selectable_fields: Vec::new(),
    }
}

fn registry() -> Vec<ResourceInfo> {
    vec![
        resource_gv(
            "io.k8s.api.core.v1.Binding",
            "bindings",
            true,
            &[],
            &["create"],
        ),
        resource("io.k8s.api.core.v1.ConfigMap", "configmaps", true, &[]),
        resource(
            "io.k8s.api.core.v1.Namespace",
            "namespaces",
            false,
            &["finalize", "status"],
        ),
        resource(
            "io.k8s.api.core.v1.Node",
            "nodes",
            false,
            &["proxy", "status"],
        ),
        resource(
            "io.k8s.api.core.v1.Pod",
            "pods",
            true,
            &[
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "resize",
                "status",
            ],
        ),
        resource(
            "io.k8s.api.core.v1.Service",
            "services",
            true,
            &["proxy", "status"],
        ),
        resource(
            "io.k8s.api.core.v1.ServiceAccount",
            "serviceaccounts",
            true,
            &["token"],
        ),
        resource(
            "io.k8s.api.apps.v1.Deployment",
            "deployments",
            true,
            &["scale", "status"],
        ),
        resource(
            "io.k8s.api.apps.v1.StatefulSet",
            "statefulsets",
            true,
            &["scale", "status"],
        ),
        resource(
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &["status"],
        ),
        resource(
            "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &["status"],
        ),
        resource("io.k8s.api.rbac.v1.ClusterRole", "clusterroles", false, &[]),
        resource(
            "io.k8s.api.certificates.v1.CertificateSigningRequest",
            "certificatesigningrequests",
            false,
            &["approval", "status"],
        ),
        resource(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["status"],
        ),
    ]
}

fn crontab() -> ResourceInfo {
    let mut info = resource(
        "com.example.stable.v1.CronTab",
        "crontabs",
        true,
        &["status", "scale"],
    );
    info.group = "stable.example.com".into();
    info
}

/// Every document the index lists.
fn all_v3(resources: &[ResourceInfo]) -> Vec<(String, Value)> {
    let index = v3_index(resources);
    let paths = index["paths"].as_object().expect("index paths");
    paths
        .keys()
        .map(|path| {
            (
                path.clone(),
                v3_group_version(resources, path).expect("listed document exists"),
            )
        })
        .collect()
}

fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method != "parameters" {
                out.push((path.as_str(), method.as_str(), op));
            }
        }
    }
    out
}

fn gvks(schema: &Value) -> Vec<Value> {
    schema["x-kubernetes-group-version-kind"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
