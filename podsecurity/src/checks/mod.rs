//! The check registry: which checks run at a level and version, and in what order.
//!
//! Mirrors upstream's evaluator: a version above the newest check version (and
//! `latest`) clamps to it; each check runs the newest revision at or below the
//! version; Restricted runs the Baseline checks minus those its active checks
//! override, then its own. Results come Baseline first, then Restricted, each
//! group ordered by check ID, so messages list reasons in upstream's order.

pub mod baseline;
pub mod helpers;
pub mod restricted;

use serde_json::Value;

use crate::api::{Level, LevelVersion};
use helpers::PodView;

/// One failed check: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The short reason, e.g. `allowPrivilegeEscalation != false`.
    pub forbidden_reason: String,
    /// The specifics, e.g. `container "c" must set securityContext.allowPrivilegeEscalation=false`; may be empty.
    pub forbidden_detail: String,
}

impl CheckResult {
    /// Builds a result from a reason and detail.
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckResult {
            forbidden_reason: reason.into(),
            forbidden_detail: detail.into(),
        }
    }
}

type CheckFn = fn(&PodView) -> Option<CheckResult>;

/// A check and its revisions, each applying from a policy minor version on.
struct Check {
    id: &'static str,
    level: Level,
    /// `(minimum minor, implementation)`, strictly increasing.
    versions: &'static [(u32, CheckFn)],
    /// Baseline check IDs this Restricted check replaces while it is active.
    overrides: &'static [&'static str],
}

impl Check {
    fn active(&self, minor: u32) -> Option<CheckFn> {
        self.versions
            .iter()
            .rev()
            .find(|(min, _)| *min <= minor)
            .map(|(_, f)| *f)
    }
}

const fn baseline(id: &'static str, versions: &'static [(u32, CheckFn)]) -> Check {
    Check {
        id,
        level: Level::Baseline,
        versions,
        overrides: &[],
    }
}

const fn restricted(
    id: &'static str,
    versions: &'static [(u32, CheckFn)],
    overrides: &'static [&'static str],
) -> Check {
    Check {
        id,
        level: Level::Restricted,
        versions,
        overrides,
    }
}

fn sysctls_1_0(pod: &PodView) -> Option<CheckResult> {
    baseline::sysctls(pod, 0)
}
fn sysctls_1_27(pod: &PodView) -> Option<CheckResult> {
    baseline::sysctls(pod, 27)
}
fn sysctls_1_29(pod: &PodView) -> Option<CheckResult> {
    baseline::sysctls(pod, 29)
}
fn sysctls_1_32(pod: &PodView) -> Option<CheckResult> {
    baseline::sysctls(pod, 32)
}

/// Every check, Baseline then Restricted, each group sorted by ID (byte order),
/// which is the order upstream reports them in.
const CHECKS: &[Check] = &[
    baseline("appArmorProfile", &[(0, baseline::app_armor_profile)]),
    baseline(
        "capabilities_baseline",
        &[(0, baseline::capabilities_baseline)],
    ),
    baseline("hostNamespaces", &[(0, baseline::host_namespaces)]),
    baseline("hostPathVolumes", &[(0, baseline::host_path_volumes)]),
    baseline("hostPorts", &[(0, baseline::host_ports)]),
    baseline(
        "hostProbesAndHostLifecycle",
        &[(34, baseline::host_probes_and_lifecycle)],
    ),
    baseline("privileged", &[(0, baseline::privileged)]),
    baseline(
        "procMount",
        &[
            (0, baseline::proc_mount_strict),
            (35, baseline::proc_mount_1_35_baseline),
        ],
    ),
    baseline(
        "seLinuxOptions",
        &[
            (0, baseline::se_linux_options_1_0),
            (31, baseline::se_linux_options_1_31),
        ],
    ),
    baseline(
        "seccompProfile_baseline",
        &[
            (0, baseline::seccomp_baseline_1_0),
            (19, baseline::seccomp_baseline_1_19),
        ],
    ),
    baseline(
        "sysctls",
        &[
            (0, sysctls_1_0),
            (27, sysctls_1_27),
            (29, sysctls_1_29),
            (32, sysctls_1_32),
        ],
    ),
    baseline("windowsHostProcess", &[(0, baseline::windows_host_process)]),
    restricted(
        "allowPrivilegeEscalation",
        &[
            (8, restricted::allow_privilege_escalation_1_8),
            (25, restricted::allow_privilege_escalation_1_25),
        ],
        &[],
    ),
    restricted(
        "capabilities_restricted",
        &[
            (22, restricted::capabilities_restricted_1_22),
            (25, restricted::capabilities_restricted_1_25),
        ],
        &["capabilities_baseline"],
    ),
    restricted(
        "procMount_restricted",
        &[(35, baseline::proc_mount_strict)],
        &["procMount"],
    ),
    restricted(
        "restrictedVolumes",
        &[(0, restricted::restricted_volumes)],
        &["hostPathVolumes"],
    ),
    restricted(
        "runAsNonRoot",
        &[
            (0, restricted::run_as_non_root_1_0),
            (35, restricted::run_as_non_root_1_35),
        ],
        &[],
    ),
    restricted(
        "runAsUser",
        &[
            (23, restricted::run_as_user_1_23),
            (35, restricted::run_as_user_1_35),
        ],
        &[],
    ),
    restricted(
        "seccompProfile_restricted",
        &[
            (19, restricted::seccomp_restricted_1_19),
            (25, restricted::seccomp_restricted_1_25),
        ],
        &["seccompProfile_baseline"],
    ),
];

/// The IDs of the checks that run for `lv`, in evaluation order.
pub fn check_ids(lv: &LevelVersion) -> Vec<&'static str> {
    active_checks(lv).into_iter().map(|(id, _)| id).collect()
}

fn active_checks(lv: &LevelVersion) -> Vec<(&'static str, CheckFn)> {
    if lv.level == Level::Privileged {
        return Vec::new();
    }
    let minor = lv.version.effective_minor();
    let active = |c: &'static Check| c.active(minor).map(|f| (c, f));
    let restricted: Vec<(&Check, CheckFn)> = match lv.level {
        Level::Restricted => CHECKS
            .iter()
            .filter(|c| c.level == Level::Restricted)
            .filter_map(active)
            .collect(),
        _ => Vec::new(),
    };
    let overridden = |id: &str| restricted.iter().any(|(c, _)| c.overrides.contains(&id));
    CHECKS
        .iter()
        .filter(|c| c.level == Level::Baseline && !overridden(c.id))
        .filter_map(active)
        .chain(restricted.iter().copied())
        .map(|(c, f)| (c.id, f))
        .collect()
}

/// Runs every check of the level (and the levels below it) at that version
/// against a pod's metadata and spec, returning only the failures, in
/// upstream's order. `privileged` runs nothing.
pub fn check_pod(lv: &LevelVersion, metadata: &Value, spec: &Value) -> Vec<CheckResult> {
    let pod = PodView { metadata, spec };
    active_checks(lv)
        .into_iter()
        .filter_map(|(_, f)| f(&pod))
        .collect()
}

/// Upstream's placeholder for a failure that gave no reason.
pub const UNKNOWN_FORBIDDEN_REASON: &str = "unknown forbidden reason";

fn reason(r: &CheckResult) -> &str {
    if r.forbidden_reason.is_empty() {
        UNKNOWN_FORBIDDEN_REASON
    } else {
        &r.forbidden_reason
    }
}

/// The detailed text upstream puts after `violates PodSecurity "<lv>": `:
/// each reason with ` (detail)` when it has one, joined by `, `. Upstream does
/// not merge or reorder reasons; each check contributes at most one.
pub fn aggregate(results: &[CheckResult]) -> String {
    let parts: Vec<String> = results
        .iter()
        .map(|r| {
            if r.forbidden_detail.is_empty() {
                reason(r).to_string()
            } else {
                format!("{} ({})", reason(r), r.forbidden_detail)
            }
        })
        .collect();
    parts.join(", ")
}

/// The reasons alone, joined by `, ` (upstream's `ForbiddenReason()`), as used
/// in the per-pod namespace warnings.
pub fn aggregate_reasons(results: &[CheckResult]) -> String {
    let parts: Vec<&str> = results.iter().map(reason).collect();
    parts.join(", ")
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
