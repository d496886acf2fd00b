//! The deletion conditions upstream's namespace controller reports on a terminating
//! namespace (`namespace_condition_utils.go`): each type is either a failure found in
//! this pass or its "all is well" form, so a cleared problem shows as cleared.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// Every type, in upstream's order, with its ok reason and message.
const OK: &[(&str, &str, &str)] = &[
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GV_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        CONTENT_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        FINALIZERS_REMAINING,
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The failures found in one deletion pass.
#[derive(Default)]
pub struct Findings {
    pub discovery_errors: Vec<String>,
    pub content_errors: Vec<String>,
    /// `resource.group` -> objects left.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer -> objects carrying it.
    pub finalizers: BTreeMap<String, usize>,
}

fn failure(findings: &Findings, type_: &str) -> Option<(String, String)> {
    match type_ {
        DISCOVERY_FAILURE if !findings.discovery_errors.is_empty() => Some((
            "DiscoveryFailed".into(),
            format!(
                "Discovery failed for some groups, {} failing: {}",
                findings.discovery_errors.len(),
                findings.discovery_errors.join(", ")
            ),
        )),
        CONTENT_FAILURE if !findings.content_errors.is_empty() => Some((
            "ContentDeletionFailed".into(),
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                findings.content_errors.len(),
                findings.content_errors.join(", ")
            ),
        )),
        CONTENT_REMAINING if !findings.remaining.is_empty() => {
            let parts: Vec<String> = findings
                .remaining
                .iter()
                .map(|(r, n)| format!("{r} has {n} objects"))
                .collect();
            Some((
                "SomeResourcesRemain".into(),
                format!("Some resources are remaining: {}", parts.join(", ")),
            ))
        }
        FINALIZERS_REMAINING if !findings.finalizers.is_empty() => {
            let parts: Vec<String> = findings
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            Some((
                "SomeFinalizersRemain".into(),
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    parts.join(", ")
                ),
            ))
        }
        _ => None,
    }
}

/// The conditions after this pass: other condition types are kept, ours replaced, and
/// a condition whose status, reason and message did not change keeps its time.
pub fn update(current: &[NamespaceCondition], findings: &Findings) -> Vec<NamespaceCondition> {
    let mut out: Vec<NamespaceCondition> = current
        .iter()
        .filter(|c| !OK.iter().any(|(t, _, _)| *t == c.type_))
        .cloned()
        .collect();
    for (type_, ok_reason, ok_message) in OK {
        let (status, reason, message) = match failure(findings, type_) {
            Some((r, m)) => ("True", r, m),
            None => ("False", ok_reason.to_string(), ok_message.to_string()),
        };
        let existing = current.iter().find(|c| c.type_ == *type_);
        let unchanged = existing.is_some_and(|c| {
            c.status == status
                && c.reason.as_deref() == Some(reason.as_str())
                && c.message.as_deref() == Some(message.as_str())
        });
        let c = match existing {
            Some(c) if unchanged => c.clone(),
            _ => NamespaceCondition {
                type_: type_.to_string(),
                status: status.into(),
                reason: Some(reason),
                message: Some(message),
                last_transition_time: Some(Time(Timestamp::now())),
            },
        };
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_recoveries() {
        let mut f = Findings::default();
        f.remaining.insert("pods".into(), 2);
        f.finalizers.insert("example.com/keep".into(), 1);
        let conds = update(&[], &f);
        assert_eq!(conds.len(), 5);
        let remaining = conds
            .iter()
            .find(|c| c.type_ == CONTENT_REMAINING)
            .expect("c");
        assert_eq!(remaining.status, "True");
        assert_eq!(
            remaining.message.as_deref(),
            Some("Some resources are remaining: pods has 2 objects")
        );
        let fin = conds
            .iter()
            .find(|c| c.type_ == FINALIZERS_REMAINING)
            .expect("c");
        assert_eq!(
            fin.message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
            )
        );
        let healed = update(&conds, &Findings::default());
        assert!(healed.iter().all(|c| c.status == "False"));
        let again = update(&healed, &Findings::default());
        assert_eq!(healed, again, "unchanged conditions keep their times");
    }
}
