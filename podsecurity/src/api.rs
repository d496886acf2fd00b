//! Policy vocabulary: levels, versions and the namespace labels that select them.
//!
//! This module owns parsing of the `pod-security.kubernetes.io/*` namespace labels
//! into a [`Policy`], with upstream's fallbacks (fail closed for enforce, fail open
//! for audit and warn) and upstream's error texts. It knows nothing about pods.

use std::fmt;

use serde_json::{Map, Value};

/// Prefix shared by the namespace labels and the audit annotations.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
/// Namespace label selecting the enforce level.
pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Namespace label selecting the enforce policy version.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
/// Namespace label selecting the audit level.
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
/// Namespace label selecting the audit policy version.
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
/// Namespace label selecting the warn level.
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
/// Namespace label selecting the warn policy version.
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// The newest policy version any check defines (Kubernetes 1.35). `latest`, and
/// any pinned version above this, evaluates exactly as this version does.
pub const MAX_POLICY_MINOR: u32 = 35;

const LEVEL_ERROR: &str = "must be one of privileged, baseline, restricted";
const VERSION_ERROR: &str = r#"must be "latest" or "v1.x""#;

/// A Pod Security Standards level, from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// No restrictions at all.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl Level {
    /// Parses a label value; only the three lowercase names are accepted.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    /// The label spelling of the level.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy version: `latest`, or a pinned `v1.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Always the newest checks; sorts after every pinned version.
    Latest,
    /// The checks as they were at Kubernetes `1.N`.
    Minor(u32),
}

impl Version {
    /// Parses `latest` or `v1.N` (no leading zeros, N fits in a u32).
    pub fn parse(s: &str) -> Option<Version> {
        if s == "latest" {
            return Some(Version::Latest);
        }
        let digits = s.strip_prefix("v1.")?;
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !well_formed {
            return None;
        }
        digits.parse().ok().map(Version::Minor)
    }

    /// The label spelling: `latest` or `v1.N`.
    pub fn as_str(&self) -> String {
        match self {
            Version::Latest => "latest".to_string(),
            Version::Minor(m) => format!("v1.{m}"),
        }
    }

    /// The minor version whose checks apply, after clamping to [`MAX_POLICY_MINOR`].
    pub fn effective_minor(&self) -> u32 {
        match self {
            Version::Latest => MAX_POLICY_MINOR,
            Version::Minor(m) => (*m).min(MAX_POLICY_MINOR),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// A level at a version, shown as `restricted:latest` or `baseline:v1.29`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version.
    pub version: Version,
}

impl LevelVersion {
    /// Shorthand constructor.
    pub fn new(level: Level, version: Version) -> Self {
        LevelVersion { level, version }
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// The three modes a namespace configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Violations reject the pod.
    pub enforce: LevelVersion,
    /// Violations are recorded in the audit event.
    pub audit: LevelVersion,
    /// Violations are returned to the client as warnings.
    pub warn: LevelVersion,
}

impl Default for Policy {
    /// Upstream's default admission configuration: `privileged:latest` everywhere.
    fn default() -> Self {
        let lv = LevelVersion::new(Level::Privileged, Version::Latest);
        Policy {
            enforce: lv,
            audit: lv,
            warn: lv,
        }
    }
}

impl Policy {
    /// Every mode is `privileged` (nothing to check).
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
    }

    /// The same checks in every mode (privileged ignores its version).
    pub fn equivalent(&self, other: &Policy) -> bool {
        let same = |a: &LevelVersion, b: &LevelVersion| {
            a.level == b.level && (a.level == Level::Privileged || a.version == b.version)
        };
        same(&self.enforce, &other.enforce)
            && same(&self.audit, &other.audit)
            && same(&self.warn, &other.warn)
    }
}

/// The warning upstream gives when an exempt namespace's labels set a policy that will
/// be ignored (only non-privileged modes its labels name are listed); `None` when the
/// labels change nothing.
pub fn exempt_namespace_warning(
    namespace: &str,
    policy: &Policy,
    defaults: &Policy,
    labels: &Map<String, Value>,
) -> Option<String> {
    if policy.fully_privileged() || policy.equivalent(defaults) {
        return None;
    }
    let modes = [
        (
            "enforce",
            &policy.enforce,
            ENFORCE_LEVEL_LABEL,
            ENFORCE_VERSION_LABEL,
        ),
        (
            "audit",
            &policy.audit,
            AUDIT_LEVEL_LABEL,
            AUDIT_VERSION_LABEL,
        ),
        ("warn", &policy.warn, WARN_LEVEL_LABEL, WARN_VERSION_LABEL),
    ];
    let parts: Vec<String> = modes
        .iter()
        .filter(|(_, lv, level, version)| {
            lv.level != Level::Privileged
                && (labels.contains_key(*level) || labels.contains_key(*version))
        })
        .map(|(mode, lv, _, _)| format!("{mode}={lv}"))
        .collect();
    Some(format!(
        "namespace {namespace:?} is exempt from Pod Security, and the policy ({}) will be ignored",
        parts.join(", ")
    ))
}

/// Why a level name is invalid (upstream's `ParseLevel` error).
pub const LEVEL_ERROR_MESSAGE: &str = LEVEL_ERROR;
/// Why a version name is invalid (upstream's `ParseVersion` error).
pub const VERSION_ERROR_MESSAGE: &str = VERSION_ERROR;

/// One invalid namespace label, as upstream's `field.Invalid` error reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError {
    /// The full label key, e.g. `pod-security.kubernetes.io/enforce`.
    pub key: String,
    /// The rejected value.
    pub value: String,
    /// Upstream's detail, e.g. `must be one of privileged, baseline, restricted`.
    pub message: String,
}

impl LabelError {
    /// The field path upstream reports: `metadata.labels[<key>]`.
    pub fn field_path(&self) -> String {
        format!("metadata.labels[{}]", self.key)
    }
}

impl fmt::Display for LabelError {
    /// `metadata.labels[k]: Invalid value: "v": message`, as Go's field error prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: Invalid value: {}: {}",
            self.field_path(),
            crate::checks::helpers::go_quote(&self.value),
            self.message
        )
    }
}

/// Joins label errors the way Go's aggregate error prints them: the single
/// message alone, or `[a, b]` for several (duplicates dropped).
pub fn aggregate_label_errors(errs: &[LabelError]) -> String {
    let mut msgs: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    match msgs.len() {
        1 => msgs.remove(0),
        _ => format!("[{}]", msgs.join(", ")),
    }
}

/// Resolves namespace labels to the policy, always returning a usable policy
/// alongside any label errors (upstream's `PolicyToEvaluate`). An invalid
/// enforce level becomes `restricted`, invalid audit/warn levels become
/// `privileged`, and invalid versions become `latest`. Labels whose value is
/// not a JSON string are treated as absent.
pub fn policy_to_evaluate(
    labels: &Map<String, Value>,
    defaults: &Policy,
) -> (Policy, Vec<LabelError>) {
    let mut p = *defaults;
    let mut errs = Vec::new();
    let modes: [(&str, &str, &mut LevelVersion, Level); 3] = [
        (
            ENFORCE_LEVEL_LABEL,
            ENFORCE_VERSION_LABEL,
            &mut p.enforce,
            Level::Restricted,
        ),
        (
            AUDIT_LEVEL_LABEL,
            AUDIT_VERSION_LABEL,
            &mut p.audit,
            Level::Privileged,
        ),
        (
            WARN_LEVEL_LABEL,
            WARN_VERSION_LABEL,
            &mut p.warn,
            Level::Privileged,
        ),
    ];
    for (level_key, version_key, lv, fallback) in modes {
        if let Some(value) = labels.get(level_key).and_then(Value::as_str) {
            lv.level = Level::parse(value).unwrap_or_else(|| {
                errs.push(label_error(level_key, value, LEVEL_ERROR));
                fallback
            });
        }
        if let Some(value) = labels.get(version_key).and_then(Value::as_str) {
            lv.version = Version::parse(value).unwrap_or_else(|| {
                errs.push(label_error(version_key, value, VERSION_ERROR));
                Version::Latest
            });
        }
    }
    (p, errs)
}

/// Resolves namespace labels to the policy, or the list of invalid labels as
/// `(label key, message)` pairs, e.g. for rejecting a namespace create.
pub fn policy_from_labels(
    labels: &Map<String, Value>,
    defaults: &Policy,
) -> Result<Policy, Vec<(String, String)>> {
    let (policy, errs) = policy_to_evaluate(labels, defaults);
    if errs.is_empty() {
        Ok(policy)
    } else {
        Err(errs.into_iter().map(|e| (e.key, e.message)).collect())
    }
}

fn label_error(key: &str, value: &str, message: &str) -> LabelError {
    LabelError {
        key: key.to_string(),
        value: value.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
