//! The `audit.k8s.io/v1` `Policy` (`--audit-policy-file`): decoding, validation and
//! per-request evaluation. Pure logic; the only I/O is [`Policy::load`] reading the file.
//!
//! Rules are tried in order and the first match decides the level; when none matches the
//! request is not audited. The deprecated `audit.k8s.io/v1beta1` is accepted with a warning,
//! as upstream does.

use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::Error;
use crate::request::Attributes;
use crate::types::{Level, Stage};
use crate::validation::{aggregate, validate_policy};

const GROUP: &str = "audit.k8s.io";
const V1: &str = "audit.k8s.io/v1";
const V1BETA1: &str = "audit.k8s.io/v1beta1";

/// A validated audit policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// Rules in order; the first that matches a request decides its level.
    pub rules: Vec<PolicyRule>,
    /// Stages never emitted for any request, added to every rule's own list.
    pub omit_stages: Vec<Stage>,
    /// Whether `metadata.managedFields` is dropped from logged bodies unless a rule says otherwise.
    pub omit_managed_fields: bool,
}

/// One rule: every non-empty selector must match for the rule to apply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyRule {
    /// The level requests matching this rule are audited at.
    pub level: Level,
    /// Usernames to match; empty matches any user.
    pub users: Vec<String>,
    /// Groups to match (any one of the user's groups); empty matches any.
    pub user_groups: Vec<String>,
    /// Verbs to match (`get`, `list`, ... or a lowercased HTTP method); empty matches any.
    pub verbs: Vec<String>,
    /// Group/resource selectors; only resource requests can match a rule that has any.
    pub resources: Vec<GroupResources>,
    /// Namespaces to match (`""` for cluster-scoped); only resource requests can match.
    pub namespaces: Vec<String>,
    /// Non-resource paths to match: exact, `*`, or a prefix ending in `*`.
    pub non_resource_urls: Vec<String>,
    /// Stages omitted for this rule (the policy's own are merged in at load).
    pub omit_stages: Vec<Stage>,
    /// Overrides the policy's `omitManagedFields` for this rule when set.
    pub omit_managed_fields: Option<bool>,
}

/// Resources of one API group a rule selects.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupResources {
    /// The API group; `""` is the core group.
    #[serde(deserialize_with = "null_as_default")]
    pub group: String,
    /// Resources: `pods`, `pods/log`, `pods/*` (a resource and its subresources),
    /// `*/status` (that subresource of any resource) or `*`. Empty means all.
    #[serde(deserialize_with = "null_as_default")]
    pub resources: Vec<String>,
    /// Object names to match; empty means any. Requires `resources`.
    #[serde(deserialize_with = "null_as_default")]
    pub resource_names: Vec<String>,
}

/// What the policy decided for one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestAuditConfig {
    /// The level to audit at; `Level::None` means no event at all.
    pub level: Level,
    /// Stages whose events are not emitted.
    pub omit_stages: Vec<Stage>,
    /// Whether `metadata.managedFields` is dropped from logged bodies.
    pub omit_managed_fields: bool,
}

impl RequestAuditConfig {
    /// A config auditing everything at `level` (handy for tests and callers without a policy file).
    pub fn at_level(level: Level) -> RequestAuditConfig {
        RequestAuditConfig {
            level,
            ..RequestAuditConfig::default()
        }
    }

    /// Whether events at `stage` are dropped for this request.
    pub fn omits(&self, stage: Stage) -> bool {
        self.omit_stages.contains(&stage)
    }
}

/// The policy as written; strings are checked by validation, not by serde, so that
/// errors name the field like upstream does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PolicyDocument {
    pub(crate) api_version: Option<String>,
    pub(crate) kind: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) rules: Vec<RuleDocument>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) omit_stages: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) omit_managed_fields: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RuleDocument {
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) level: String,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) users: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) user_groups: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) verbs: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) resources: Vec<GroupResources>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) namespaces: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    #[serde(rename = "nonResourceURLs")]
    pub(crate) non_resource_urls: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) omit_stages: Vec<String>,
    pub(crate) omit_managed_fields: Option<bool>,
}

impl Policy {
    /// Reads and parses the policy file named by `--audit-policy-file`.
    pub fn load(path: &Path) -> Result<Policy, Error> {
        let display = path.display().to_string();
        if display.is_empty() {
            return Err(Error::InvalidPolicy("file path not specified".into()));
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadPolicy {
            path: display.clone(),
            source,
        })?;
        Policy::parse(&text).map_err(|e| Error::PolicyFile {
            path: display,
            source: Box::new(e),
        })
    }

    /// Parses a policy from YAML or JSON text and validates it.
    pub fn parse(text: &str) -> Result<Policy, Error> {
        let doc: PolicyDocument =
            serde_yaml::from_str(text).map_err(|e| Error::Decode(e.to_string()))?;
        check_type(&doc)?;
        let errs = validate_policy(&doc);
        if !errs.is_empty() {
            return Err(Error::InvalidPolicy(aggregate(&errs)));
        }
        if doc.rules.is_empty() {
            return Err(Error::InvalidPolicy(
                "loaded illegal policy with 0 rules".into(),
            ));
        }
        Ok(Policy::from_document(doc))
    }

    /// Decides the level, omitted stages and managed-fields handling for one request.
    pub fn evaluate(&self, attrs: &Attributes) -> RequestAuditConfig {
        match self.rules.iter().find(|r| r.matches(attrs)) {
            Some(rule) => RequestAuditConfig {
                level: rule.level,
                omit_stages: rule.omit_stages.clone(),
                omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
            },
            None => RequestAuditConfig {
                level: Level::None,
                omit_stages: self.omit_stages.clone(),
                omit_managed_fields: self.omit_managed_fields,
            },
        }
    }

    fn from_document(doc: PolicyDocument) -> Policy {
        // Validation already rejected unknown names, so parsing cannot drop anything here.
        let stages =
            |v: &[String]| -> Vec<Stage> { v.iter().filter_map(|s| Stage::parse(s)).collect() };
        let policy_stages = stages(&doc.omit_stages);
        let rules = doc
            .rules
            .into_iter()
            .map(|r| {
                let mut omit = policy_stages.clone();
                for s in stages(&r.omit_stages) {
                    if !omit.contains(&s) {
                        omit.push(s);
                    }
                }
                PolicyRule {
                    level: Level::parse(&r.level).unwrap_or_default(),
                    users: r.users,
                    user_groups: r.user_groups,
                    verbs: r.verbs,
                    resources: r.resources,
                    namespaces: r.namespaces,
                    non_resource_urls: r.non_resource_urls,
                    omit_stages: omit,
                    omit_managed_fields: r.omit_managed_fields,
                }
            })
            .collect();
        Policy {
            rules,
            omit_stages: policy_stages,
            omit_managed_fields: doc.omit_managed_fields,
        }
    }
}

/// Treats an explicit `null` (e.g. `users:` with nothing after it) like a missing field,
/// as Go's decoder does.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Requires `kind: Policy` in a supported `audit.k8s.io` version.
fn check_type(doc: &PolicyDocument) -> Result<(), Error> {
    let api_version = doc.api_version.as_deref().unwrap_or("");
    let kind = doc.kind.as_deref().unwrap_or("");
    if api_version.is_empty() {
        return Err(Error::Decode("Object 'apiVersion' is missing".into()));
    }
    if kind.is_empty() {
        return Err(Error::Decode("Object 'Kind' is missing".into()));
    }
    if !api_version.starts_with(GROUP) || kind != "Policy" {
        return Err(Error::Decode(format!(
            "no kind {kind:?} is registered for version {api_version:?}"
        )));
    }
    match api_version {
        V1 => Ok(()),
        V1BETA1 => {
            tracing::warn!(
                "{V1BETA1:?} is deprecated and will be removed in a future release, use {V1:?} instead"
            );
            Ok(())
        }
        other => Err(Error::Decode(format!(
            "unknown group version field {other} in policy"
        ))),
    }
}

impl PolicyRule {
    /// Whether this rule applies to the request.
    pub fn matches(&self, attrs: &Attributes) -> bool {
        if !self.users.is_empty() && !self.users.contains(&attrs.user) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !attrs.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&attrs.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(attrs);
        }
        if !self.non_resource_urls.is_empty() {
            return !attrs.resource_request
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(&attrs.path, spec));
        }
        true
    }

    fn matches_resource(&self, attrs: &Attributes) -> bool {
        if !attrs.resource_request {
            return false;
        }
        // Cluster-scoped requests carry the empty namespace, which a rule may list as "".
        if !self.namespaces.is_empty() && !self.namespaces.contains(&attrs.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        self.resources
            .iter()
            .filter(|gr| gr.group == attrs.api_group)
            .any(|gr| gr.matches(attrs))
    }
}

impl GroupResources {
    fn matches(&self, attrs: &Attributes) -> bool {
        if self.resources.is_empty() {
            return true;
        }
        if !self.resource_names.is_empty() && !self.resource_names.contains(&attrs.name) {
            return false;
        }
        let (resource, sub) = (attrs.resource.as_str(), attrs.subresource.as_str());
        self.resources.iter().any(|spec| {
            if spec == "*" {
                return true;
            }
            let exact = if sub.is_empty() {
                spec == resource
            } else {
                spec.split_once('/') == Some((resource, sub))
            };
            // "*/status" selects that subresource of anything; "pods/*" selects the
            // resource itself and every subresource of it, as upstream does.
            let any_parent = !sub.is_empty() && spec.strip_prefix("*/") == Some(sub);
            let any_sub = spec.strip_suffix("/*") == Some(resource);
            exact || any_parent || any_sub
        })
    }
}

/// `*` matches any path, `/foo*` any path starting with `/foo`, otherwise an exact match.
fn path_matches(path: &str, spec: &str) -> bool {
    if spec == "*" || spec == path {
        return true;
    }
    spec.ends_with('*') && path.starts_with(spec.trim_end_matches('*'))
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
