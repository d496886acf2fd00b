//! Admission-side glue: upstream's messages, audit annotations, workload pod
//! template extraction, the pod-update significance rule and the namespace
//! dry run. Pure functions over JSON; the API server does the I/O.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use crate::api::{LabelError, Level, LevelVersion, Policy, aggregate_label_errors};
use crate::checks::{CheckResult, aggregate, aggregate_reasons, check_pod};

/// Audit annotation holding the audit-mode violations.
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";
/// Audit annotation holding the enforce policy a pod was checked against.
pub const ENFORCE_POLICY_ANNOTATION: &str = "pod-security.kubernetes.io/enforce-policy";
/// Audit annotation holding a namespace label parse error.
pub const ERROR_ANNOTATION: &str = "pod-security.kubernetes.io/error";
/// Audit annotation naming why a request was exempt (`namespace`, `user`, `runtimeClass`).
pub const EXEMPT_ANNOTATION: &str = "pod-security.kubernetes.io/exempt";

/// Upstream's cap on pods evaluated when a namespace's enforce level tightens.
pub const NAMESPACE_MAX_PODS_TO_CHECK: usize = 3000;
/// Upstream's time budget for that evaluation, in milliseconds.
pub const NAMESPACE_POD_CHECK_TIMEOUT_MS: u64 = 1000;

/// Pod subresources upstream never evaluates.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// The Forbidden message body for an enforce denial:
/// `violates PodSecurity "restricted:latest": <aggregate>`. The API server
/// prefixes `pods "name" is forbidden: `.
pub fn enforce_message(lv: &LevelVersion, results: &[CheckResult]) -> String {
    format!("violates PodSecurity \"{lv}\": {}", aggregate(results))
}

/// The warning (and audit-violations value) for pods and workloads alike:
/// `would violate PodSecurity "restricted:latest": <aggregate>`.
pub fn warning_message(lv: &LevelVersion, results: &[CheckResult]) -> String {
    format!("would violate PodSecurity \"{lv}\": {}", aggregate(results))
}

/// Whether a pod subresource request is skipped (exec, attach, binding, eviction,
/// log, portforward, proxy, status); any other subresource is evaluated.
pub fn pod_subresource_ignored(subresource: &str) -> bool {
    IGNORED_POD_SUBRESOURCES.contains(&subresource)
}

/// What PodSecurity decides for one pod or workload request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The Forbidden message body when enforce rejects the pod.
    pub denied: Option<String>,
    /// Warnings for the client (never set alongside a denial).
    pub warnings: Vec<String>,
    /// Audit annotations, fully prefixed keys, in a fixed order.
    pub audit_annotations: Vec<(String, String)>,
}

/// Evaluates a pod (`enforce = true`) or a workload's pod template
/// (`enforce = false`, only audit and warn apply) as upstream's `EvaluatePod`
/// does, including its short-circuit for fully privileged namespaces.
/// `label_errors` are the namespace's label errors from
/// [`crate::api::policy_to_evaluate`]; `policy` is its fallback policy.
pub fn evaluate(
    policy: &Policy,
    label_errors: &[LabelError],
    metadata: &Value,
    spec: &Value,
    enforce: bool,
) -> Evaluation {
    let privileged = |lv: &LevelVersion| lv.level == Level::Privileged;
    let skip = label_errors.is_empty()
        && privileged(&policy.audit)
        && privileged(&policy.warn)
        && (!enforce || privileged(&policy.enforce));
    let mut out = Evaluation::default();
    if skip {
        return out;
    }
    if !label_errors.is_empty() {
        out.audit_annotations.push((
            ERROR_ANNOTATION.to_string(),
            format!(
                "Failed to parse policy: {}",
                aggregate_label_errors(label_errors)
            ),
        ));
    }
    let mut cache: HashMap<LevelVersion, Vec<CheckResult>> = HashMap::new();
    let mut results = |lv: &LevelVersion| {
        cache
            .entry(*lv)
            .or_insert_with(|| check_pod(lv, metadata, spec))
            .clone()
    };
    if enforce {
        out.audit_annotations.push((
            ENFORCE_POLICY_ANNOTATION.to_string(),
            policy.enforce.to_string(),
        ));
        let r = results(&policy.enforce);
        if !r.is_empty() {
            out.denied = Some(enforce_message(&policy.enforce, &r));
        }
    }
    let r = results(&policy.audit);
    if !r.is_empty() {
        out.audit_annotations.push((
            AUDIT_VIOLATIONS_ANNOTATION.to_string(),
            warning_message(&policy.audit, &r),
        ));
    }
    if out.denied.is_none() {
        let r = results(&policy.warn);
        if !r.is_empty() {
            out.warnings.push(warning_message(&policy.warn, &r));
        }
    }
    out
}

/// Whether upstream can find a pod template in this resource at all.
pub fn has_pod_spec(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("", "pods" | "replicationcontrollers" | "podtemplates")
            | (
                "apps",
                "replicasets" | "deployments" | "statefulsets" | "daemonsets"
            )
            | ("batch", "jobs" | "cronjobs")
    )
}

/// The pod metadata and spec to evaluate for an object, as upstream's default
/// `PodSpecExtractor` sees them. `None` for resources without a pod template,
/// and for a ReplicationController without one (its template is optional).
/// Where the template is a required field, a missing one reads as empty.
pub fn pod_spec_of(group: &str, resource: &str, obj: &Value) -> Option<(Value, Value)> {
    if !has_pod_spec(group, resource) {
        return None;
    }
    let split = |t: Option<&Value>| {
        let field = |k: &str| {
            t.and_then(|t| t.get(k))
                .filter(|v| v.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}))
        };
        (field("metadata"), field("spec"))
    };
    let path: &[&str] = match (group, resource) {
        ("", "pods") => return Some(split(Some(obj))),
        ("", "podtemplates") => &["template"],
        ("", "replicationcontrollers") => {
            let template = obj.get("spec").and_then(|s| s.get("template"));
            return template.filter(|t| t.is_object()).map(|t| split(Some(t)));
        }
        ("batch", "cronjobs") => &["spec", "jobTemplate", "spec", "template"],
        _ => &["spec", "template"],
    };
    let template = path.iter().try_fold(obj, |v, k| v.get(k));
    Some(split(template))
}

fn annotation<'a>(pod: &'a Value, key: &str) -> &'a str {
    pod.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn spec_list<'a>(pod: &'a Value, key: &str) -> &'a [Value] {
    pod.get("spec")
        .and_then(|s| s.get(key))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether a pod update needs evaluating (upstream's `isSignificantPodUpdate`).
/// Pod specs are mostly immutable, so upstream only looks at what can change:
/// the seccomp pod annotation, the number of (init) containers, container
/// images, per-container seccomp annotations, and ephemeral containers added
/// or changed. Everything else (labels, other annotations, status) is ignored.
pub fn is_significant_pod_update(old: &Value, new: &Value) -> bool {
    if annotation(new, SECCOMP_POD_ANNOTATION) != annotation(old, SECCOMP_POD_ANNOTATION) {
        return true;
    }
    let container_changed = |c: &Value, oc: &Value| {
        if str_field(c, "image") != str_field(oc, "image") {
            return true;
        }
        let key = format!(
            "{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}",
            str_field(c, "name")
        );
        annotation(new, &key) != annotation(old, &key)
    };
    for key in ["containers", "initContainers"] {
        let (list, old_list) = (spec_list(new, key), spec_list(old, key));
        if list.len() != old_list.len() {
            return true;
        }
        if list
            .iter()
            .zip(old_list)
            .any(|(c, oc)| container_changed(c, oc))
        {
            return true;
        }
    }
    let old_ephemeral = spec_list(old, "ephemeralContainers");
    spec_list(new, "ephemeralContainers").iter().any(|c| {
        let name = str_field(c, "name");
        match old_ephemeral
            .iter()
            .find(|oc| str_field(oc, "name") == name)
        {
            None => true,
            Some(oc) => container_changed(c, oc),
        }
    })
}

/// Whether a namespace update's label errors reject it: only when the new
/// labels are invalid and the errors differ from the old labels' errors.
pub fn label_errors_reject_update(new_errors: &[LabelError], old_errors: &[LabelError]) -> bool {
    !new_errors.is_empty() && (old_errors.is_empty() || new_errors != old_errors)
}

/// Whether a namespace update should dry-run existing pods: the enforce policy
/// changed, is not privileged, and did not merely relax at the same version.
pub fn namespace_update_needs_pod_check(old: &Policy, new: &Policy) -> bool {
    if new.enforce == old.enforce || new.enforce.level == Level::Privileged {
        return false;
    }
    let relaxed_or_same = new.enforce.level <= old.enforce.level;
    !(new.enforce.version == old.enforce.version && relaxed_or_same)
}

/// Limits for the namespace dry run; see [`NamespaceCheckOptions::upstream`].
#[derive(Debug, Clone)]
pub struct NamespaceCheckOptions {
    /// At most this many pods are evaluated.
    pub max_pods: usize,
    /// Evaluation stops after the pod during which this instant passes.
    pub deadline: Option<Instant>,
    /// Pods with one of these runtime classes are skipped entirely.
    pub exempt_runtime_classes: Vec<String>,
}

impl NamespaceCheckOptions {
    /// Upstream's defaults: 3000 pods, a one second budget from now, no exemptions.
    pub fn upstream() -> Self {
        let budget = std::time::Duration::from_millis(NAMESPACE_POD_CHECK_TIMEOUT_MS);
        NamespaceCheckOptions {
            max_pods: NAMESPACE_MAX_PODS_TO_CHECK,
            deadline: Some(Instant::now() + budget),
            exempt_runtime_classes: Vec::new(),
        }
    }
}

/// The warnings upstream returns when a namespace's enforce level tightens,
/// with upstream's default limits. `pods` are full pod objects.
pub fn namespace_warnings(
    ns_name: &str,
    new_enforce: &LevelVersion,
    pods: &[Value],
) -> Vec<String> {
    namespace_warnings_with(
        ns_name,
        new_enforce,
        pods,
        &NamespaceCheckOptions::upstream(),
    )
}

/// [`namespace_warnings`] with explicit limits (upstream's `EvaluatePodsInNamespace`).
pub fn namespace_warnings_with(
    ns_name: &str,
    enforce: &LevelVersion,
    pods: &[Value],
    opts: &NamespaceCheckOptions,
) -> Vec<String> {
    let prioritized = prioritize_pods(pods, &opts.exempt_runtime_classes);
    let total = prioritized.len();
    let limited = &prioritized[..total.min(opts.max_pods)];
    let mut checked = limited.len();
    // reason text -> (lexically first pod name, pod count), in first-seen order
    let mut groups: Vec<(String, String, usize)> = Vec::new();
    for (i, pod) in limited.iter().enumerate() {
        let empty = json!({});
        let metadata = pod.get("metadata").unwrap_or(&empty);
        let spec = pod.get("spec").unwrap_or(&empty);
        let results = check_pod(enforce, metadata, spec);
        if !results.is_empty() {
            let reasons = aggregate_reasons(&results);
            let name = str_field(metadata, "name").to_string();
            match groups.iter_mut().find(|(r, _, _)| *r == reasons) {
                Some((_, first, count)) => {
                    if name < *first {
                        *first = name;
                    }
                    *count += 1;
                }
                None => groups.push((reasons, name, 1)),
            }
        }
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            checked = i + 1;
            break;
        }
    }
    let mut warnings = Vec::new();
    if checked < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
        ));
    }
    if !groups.is_empty() {
        warnings.push(format!(
            "existing pods in namespace \"{ns_name}\" violate the new PodSecurity enforce level \"{enforce}\""
        ));
    }
    let mut pod_warnings: Vec<String> = groups
        .into_iter()
        .map(|(reasons, name, count)| match count {
            1 => format!("{name}: {reasons}"),
            2 => format!("{name} (and 1 other pod): {reasons}"),
            n => format!("{name} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    pod_warnings.sort();
    warnings.extend(pod_warnings);
    warnings
}

/// Drops runtime-class-exempt pods and moves all but the first pod of each
/// controller to the end, so distinct workloads are checked first.
fn prioritize_pods<'a>(pods: &'a [Value], exempt_runtime_classes: &[String]) -> Vec<&'a Value> {
    let mut first = Vec::new();
    let mut duplicates = Vec::new();
    let mut seen_controllers: Vec<&str> = Vec::new();
    for pod in pods {
        let runtime_class = pod
            .get("spec")
            .and_then(|s| s.get("runtimeClassName"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !runtime_class.is_empty() && exempt_runtime_classes.iter().any(|r| r == runtime_class) {
            continue;
        }
        match controller_uid(pod) {
            None => first.push(pod),
            Some(uid) if seen_controllers.contains(&uid) => duplicates.push(pod),
            Some(uid) => {
                seen_controllers.push(uid);
                first.push(pod);
            }
        }
    }
    first.extend(duplicates);
    first
}

fn controller_uid(pod: &Value) -> Option<&str> {
    let refs = pod.get("metadata")?.get("ownerReferences")?.as_array()?;
    let controller = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    Some(str_field(controller, "uid"))
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
