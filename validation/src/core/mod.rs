//! The core (`""`) API group: which rules each resource follows.

mod cluster;
mod config;
mod container;
mod pod;
mod pod_defaults;
mod pod_update;
mod service;
mod storage;
#[cfg(test)]
mod tests;
mod volumes;

pub(crate) use pod::validate_pod_template;
pub(crate) use pod_defaults::default_pod_template;
pub(crate) use storage::default_pvc_spec;

use crate::meta::Scope::{Cluster, Namespaced};
use crate::util::Errs;
use crate::{Strategy, no_checks, no_default, no_update_checks};
use machinery::names::{name_is_dns_label, name_is_dns_subdomain, name_is_dns1035_label};
use serde_json::Value;

fn validate_pod(pod: &Value) -> Errs {
    pod::validate_pod_spec(pod.get("spec").unwrap_or(&Value::Null), "spec")
}

pub(crate) fn strategy(resource: &str) -> Option<Strategy> {
    let s = |default, validate, validate_update| Strategy {
        name: name_is_dns_subdomain,
        scope: Namespaced,
        default,
        validate,
        validate_update,
    };
    Some(match resource {
        "pods" => s(
            pod_defaults::default_pod,
            validate_pod,
            pod_update::validate_pod_update,
        ),
        "services" => Strategy {
            name: name_is_dns1035_label,
            ..s(
                service::default_service,
                service::validate_service,
                service::validate_service_update,
            )
        },
        "configmaps" => s(
            no_default,
            config::validate_config_map,
            config::validate_config_map_update,
        ),
        "secrets" => s(
            config::default_secret,
            config::validate_secret,
            config::validate_secret_update,
        ),
        "namespaces" => Strategy {
            name: name_is_dns_label,
            scope: Cluster,
            ..s(
                cluster::default_namespace,
                cluster::validate_namespace,
                no_update_checks,
            )
        },
        "nodes" => Strategy {
            scope: Cluster,
            ..s(
                cluster::default_node,
                cluster::validate_node,
                cluster::validate_node_update,
            )
        },
        "serviceaccounts" => s(no_default, no_checks, no_update_checks),
        "persistentvolumeclaims" => s(
            storage::default_pvc,
            validate_pvc,
            storage::validate_pvc_update,
        ),
        "persistentvolumes" => Strategy {
            scope: Cluster,
            ..s(storage::default_pv, storage::validate_pv, no_update_checks)
        },
        "resourcequotas" => s(
            no_default,
            cluster::validate_resource_quota,
            no_update_checks,
        ),
        "limitranges" => s(
            cluster::default_limit_range,
            cluster::validate_limit_range,
            no_update_checks,
        ),
        "events" => s(no_default, cluster::validate_event, no_update_checks),
        "endpoints" => s(
            cluster::default_endpoints,
            cluster::validate_endpoints,
            no_update_checks,
        ),
        "replicationcontrollers" => s(cluster::default_rc, cluster::validate_rc, no_update_checks),
        "podtemplates" => s(
            default_podtemplate,
            cluster::validate_podtemplate,
            no_update_checks,
        ),
        _ => return None,
    })
}

fn validate_pvc(pvc: &Value) -> Errs {
    storage::validate_pvc_spec(pvc.get("spec").unwrap_or(&Value::Null), "spec")
}

fn default_podtemplate(pt: &mut Value) {
    crate::util::with_mut(pt, "/template", default_pod_template);
}
