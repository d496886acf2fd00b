//! kube-controller-manager: the controllers that make declared state real.
//!
//! Each controller is one module on kube-runtime (watch -> reconcile -> act), talking to
//! the API server only through the API, so the same binary runs against any Kubernetes
//! API server. This file owns what they share: the options, the [`Context`] handed to
//! every controller, and the table of controllers `--controllers` chooses from.

use std::sync::Arc;

use futures::future::BoxFuture;

pub mod bootstrap;
pub mod certificates;
pub mod common;
pub mod credentials;
pub mod deployment;
pub mod garbagecollector;
pub mod horizontal;
pub mod leaderelection;
pub mod namespace;
pub mod options;
pub mod replicaset;
pub mod root_ca_cert_publisher;
pub mod serviceaccount;

pub mod clusterroleaggregation;
pub mod cronjob;
pub mod daemonset;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslice_mirroring;
pub mod job;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod podgc;
pub mod resourcequota;
pub mod statefulset;
pub mod tainteviction;
pub mod ttl_after_finished;
pub mod volumeprotection;
pub mod workqueue;

pub use options::Options;

/// What every controller gets: a client and the parsed flags.
pub struct Context {
    pub client: kube::Client,
    pub options: Options,
}

/// A controller's entry point: runs until the process stops (or fails).
pub type RunFn = fn(Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>>;

/// One controller: its upstream name (as `--controllers` spells it), whether upstream
/// enables it by default, and how to run it.
pub struct ControllerDescriptor {
    pub name: &'static str,
    pub enabled_by_default: bool,
    pub run: RunFn,
}

/// Every controller this binary has, in upstream's names.
pub fn controllers() -> Vec<ControllerDescriptor> {
    vec![
        ControllerDescriptor {
            name: "namespace",
            enabled_by_default: true,
            run: namespace::run,
        },
        ControllerDescriptor {
            name: "serviceaccount",
            enabled_by_default: true,
            run: serviceaccount::run,
        },
        ControllerDescriptor {
            name: "root-ca-cert-publisher",
            enabled_by_default: true,
            run: root_ca_cert_publisher::run,
        },
        ControllerDescriptor {
            name: "garbagecollector",
            enabled_by_default: true,
            run: garbagecollector::run,
        },
        ControllerDescriptor {
            name: "deployment",
            enabled_by_default: true,
            run: deployment::run,
        },
        ControllerDescriptor {
            name: "replicaset",
            enabled_by_default: true,
            run: replicaset::run_replicaset,
        },
        ControllerDescriptor {
            name: "replicationcontroller",
            enabled_by_default: true,
            run: replicaset::run_replicationcontroller,
        },
        ControllerDescriptor {
            name: "endpoint",
            enabled_by_default: true,
            run: endpoints::run,
        },
        ControllerDescriptor {
            name: "endpointslice",
            enabled_by_default: true,
            run: endpointslice::run,
        },
        ControllerDescriptor {
            name: "endpointslicemirroring",
            enabled_by_default: true,
            run: endpointslice_mirroring::run,
        },
        ControllerDescriptor {
            name: "job",
            enabled_by_default: true,
            run: job::run,
        },
        ControllerDescriptor {
            name: "ttl-after-finished",
            enabled_by_default: true,
            run: ttl_after_finished::run,
        },
        ControllerDescriptor {
            name: "cronjob",
            enabled_by_default: true,
            run: cronjob::run,
        },
        ControllerDescriptor {
            name: "statefulset",
            enabled_by_default: true,
            run: statefulset::run,
        },
        ControllerDescriptor {
            name: "daemonset",
            enabled_by_default: true,
            run: daemonset::run,
        },
        ControllerDescriptor {
            name: "podgc",
            enabled_by_default: true,
            run: podgc::run,
        },
        ControllerDescriptor {
            name: "nodelifecycle",
            enabled_by_default: true,
            run: nodelifecycle::run,
        },
        ControllerDescriptor {
            name: "taint-eviction-controller",
            enabled_by_default: true,
            run: tainteviction::run,
        },
        ControllerDescriptor {
            name: "resourcequota",
            enabled_by_default: true,
            run: resourcequota::run,
        },
        ControllerDescriptor {
            name: "clusterrole-aggregation",
            enabled_by_default: true,
            run: clusterroleaggregation::run,
        },
        ControllerDescriptor {
            name: "disruption",
            enabled_by_default: true,
            run: disruption::run,
        },
        ControllerDescriptor {
            name: "csrapproving",
            enabled_by_default: true,
            run: certificates::approver::run,
        },
        ControllerDescriptor {
            name: "csrsigning",
            enabled_by_default: true,
            run: certificates::signer::run,
        },
        ControllerDescriptor {
            name: "csrcleaner",
            enabled_by_default: true,
            run: certificates::cleaner::run,
        },
        ControllerDescriptor {
            name: "horizontalpodautoscaling",
            enabled_by_default: true,
            run: horizontal::run,
        },
        ControllerDescriptor {
            name: "persistentvolume-binder",
            enabled_by_default: true,
            run: persistentvolume::run,
        },
        ControllerDescriptor {
            name: "pvc-protection",
            enabled_by_default: true,
            run: volumeprotection::run_pvc,
        },
        ControllerDescriptor {
            name: "pv-protection",
            enabled_by_default: true,
            run: volumeprotection::run_pv,
        },
        ControllerDescriptor {
            name: "bootstrapsigner",
            enabled_by_default: false,
            run: bootstrap::signer::run,
        },
        ControllerDescriptor {
            name: "tokencleaner",
            enabled_by_default: false,
            run: bootstrap::tokencleaner::run,
        },
    ]
}

/// Upstream's full controller names whose `--controllers` alias is not simply the name
/// without `-controller`.
const ALIASES: &[(&str, &str)] = &[
    ("garbage-collector", "garbagecollector"),
    ("root-ca-certificate-publisher", "root-ca-cert-publisher"),
    ("pod-garbage-collector", "podgc"),
    ("node-lifecycle", "nodelifecycle"),
    ("endpointslice-mirroring", "endpointslicemirroring"),
    ("endpoint", "endpoints"),
    ("certificatesigningrequest-approving", "csrapproving"),
    ("certificatesigningrequest-signing", "csrsigning"),
    ("certificatesigningrequest-cleaner", "csrcleaner"),
    ("bootstrap-signer", "bootstrapsigner"),
    ("token-cleaner", "tokencleaner"),
    ("persistentvolumeclaim-protection", "pvc-protection"),
    ("persistentvolume-protection", "pv-protection"),
    ("horizontal-pod-autoscaler", "horizontalpodautoscaling"),
];

/// The short name (alias) of a controller, whichever way `--controllers` spells it:
/// `deployment-controller` and `deployment` are the same controller, as upstream.
pub fn canonical_name(name: &str) -> &str {
    let short = name.strip_suffix("-controller").unwrap_or(name);
    ALIASES
        .iter()
        .find(|(long, _)| *long == short)
        .map(|(_, alias)| *alias)
        .unwrap_or(short)
}

/// Whether `name` is enabled by `--controllers` (upstream semantics: `*` means the
/// default set, `foo` enables foo, `-foo` disables it; full names and aliases both work).
pub fn is_enabled(spec: &[String], name: &str, enabled_by_default: bool) -> bool {
    let name = canonical_name(name);
    let mut star = false;
    for s in spec {
        if canonical_name(s) == name {
            return true;
        }
        if s.strip_prefix('-').map(canonical_name) == Some(name) {
            return false;
        }
        if s == "*" {
            star = true;
        }
    }
    star && enabled_by_default
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag() {
        let spec = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        assert!(is_enabled(&spec("*"), "deployment", true));
        assert!(!is_enabled(&spec("*"), "bootstrap-signer", false));
        assert!(is_enabled(
            &spec("*,bootstrap-signer"),
            "bootstrap-signer",
            false
        ));
        assert!(!is_enabled(&spec("*,-deployment"), "deployment", true));
        assert!(!is_enabled(&spec("job"), "deployment", true));
        assert!(is_enabled(&spec("job"), "job", true));
        assert!(is_enabled(
            &spec("deployment-controller"),
            "deployment",
            true
        ));
        assert!(!is_enabled(
            &spec("*,-root-ca-certificate-publisher-controller"),
            "root-ca-cert-publisher",
            true
        ));
        assert!(is_enabled(
            &spec("garbage-collector-controller"),
            "garbagecollector",
            true
        ));
    }
}
