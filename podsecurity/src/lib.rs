//! The Pod Security Standards (privileged, baseline, restricted) as upstream's
//! PodSecurity admission plugin (`k8s.io/pod-security-admission`) checks them.
//!
//! A pure library over `serde_json::Value`: the API server hands it namespace
//! labels and pod JSON, and gets back the policy, the failed checks and
//! upstream's exact message texts. No I/O, no panics on malformed input
//! (fields of the wrong shape read as absent).
//!
//! - [`api`]: levels, versions, policies and namespace label parsing.
//! - [`checks`]: the versioned check registry and every Baseline/Restricted check.
//! - [`admission`]: messages, audit annotations, workload template extraction,
//!   the pod-update rule and the namespace dry run.

pub mod admission;
pub mod api;
pub mod checks;

pub use admission::{
    AUDIT_VIOLATIONS_ANNOTATION, ENFORCE_POLICY_ANNOTATION, ERROR_ANNOTATION, EXEMPT_ANNOTATION,
    Evaluation, NamespaceCheckOptions, enforce_message, evaluate, has_pod_spec,
    is_significant_pod_update, label_errors_reject_update, namespace_update_needs_pod_check,
    namespace_warnings, namespace_warnings_with, pod_spec_of, pod_subresource_ignored,
    warning_message,
};
pub use api::{
    LEVEL_ERROR_MESSAGE, LabelError, Level, LevelVersion, Policy, VERSION_ERROR_MESSAGE, Version,
    aggregate_label_errors, exempt_namespace_warning, policy_from_labels, policy_to_evaluate,
};
pub use checks::{CheckResult, aggregate, aggregate_reasons, check_ids, check_pod};
