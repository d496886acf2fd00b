//! One `PolicyRule`: parsing it leniently from JSON, matching a request against it
//! (upstream's `RuleAllows`), deciding whether one rule set covers another (upstream's
//! `validation.Covers`, used by escalation checks and reconciliation), and printing it
//! the way upstream's escalation errors do (`CompactString`).
//!
//! Nothing here knows about bindings or subjects; see `snapshot` for that.

use serde_json::{Map, Value, json};

use crate::Attributes;

/// The wildcard accepted in verbs, API groups, resources and non-resource URLs.
const ALL: &str = "*";

/// A parsed `rbac.authorization.k8s.io/v1` `PolicyRule`.
///
/// Missing or mistyped fields read as empty lists, and non-string list entries are
/// skipped, so a malformed stored object can never panic the authorizer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    /// `verbs`.
    pub verbs: Vec<String>,
    /// `apiGroups` (`""` is the core group).
    pub api_groups: Vec<String>,
    /// `resources`, possibly `resource/subresource` or `*/subresource`.
    pub resources: Vec<String>,
    /// `resourceNames`.
    pub resource_names: Vec<String>,
    /// `nonResourceURLs`.
    pub non_resource_urls: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Rule {
    /// Reads one rule object; anything that is not an object reads as the empty rule
    /// (which allows nothing).
    pub fn from_json(v: &Value) -> Self {
        Rule {
            verbs: strings(v.get("verbs")),
            api_groups: strings(v.get("apiGroups")),
            resources: strings(v.get("resources")),
            resource_names: strings(v.get("resourceNames")),
            non_resource_urls: strings(v.get("nonResourceURLs")),
        }
    }

    /// Reads the `rules` list of a Role or ClusterRole.
    pub fn list_from_object(obj: &Value) -> Vec<Rule> {
        Self::list(obj.get("rules"))
    }

    /// Reads a JSON list of rules (absent or not a list: no rules).
    pub fn list(v: Option<&Value>) -> Vec<Rule> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().map(Rule::from_json).collect())
            .unwrap_or_default()
    }

    /// The rule as stored: `rbacv1.PolicyRule` field order, empty lists omitted.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        let mut put = |k: &str, v: &Vec<String>| {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        };
        put("apiGroups", &self.api_groups);
        put("resources", &self.resources);
        put("resourceNames", &self.resource_names);
        put("nonResourceURLs", &self.non_resource_urls);
        Value::Object(m)
    }

    /// Upstream's `RuleAllows`: does this rule allow the request?
    pub fn allows(&self, attrs: &Attributes) -> bool {
        if !verb_matches(self, &attrs.verb) {
            return false;
        }
        if !attrs.is_resource_request {
            return self.non_resource_url_matches(&attrs.path);
        }
        if !has_or_all(&self.api_groups, &attrs.api_group) {
            return false;
        }
        let matched = if attrs.subresource.is_empty() {
            self.resource_matches(&attrs.resource, "")
        } else {
            let combined = format!("{}/{}", attrs.resource, attrs.subresource);
            self.resource_matches(&combined, &attrs.subresource)
        };
        matched && (self.resource_names.is_empty() || self.resource_names.contains(&attrs.name))
    }

    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == ALL
                || r == combined
                || (!subresource.is_empty()
                    && r.len() == subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(subresource))
        })
    }

    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls
            .iter()
            .any(|u| u == ALL || non_resource_url_covers(u, path))
    }

    /// Upstream's `BreakdownRule`: one rule per (group, resource, verb[, name]) and per
    /// (url, verb), so that coverage can be decided one atom at a time.
    pub fn breakdown(&self) -> Vec<Rule> {
        let one = |s: &String| vec![s.clone()];
        let mut out = Vec::new();
        for g in &self.api_groups {
            for r in &self.resources {
                for v in &self.verbs {
                    let base = Rule {
                        verbs: one(v),
                        api_groups: one(g),
                        resources: one(r),
                        ..Rule::default()
                    };
                    if self.resource_names.is_empty() {
                        out.push(base);
                    } else {
                        for n in &self.resource_names {
                            out.push(Rule {
                                resource_names: one(n),
                                ..base.clone()
                            });
                        }
                    }
                }
            }
        }
        for u in &self.non_resource_urls {
            for v in &self.verbs {
                out.push(Rule {
                    verbs: one(v),
                    non_resource_urls: one(u),
                    ..Rule::default()
                });
            }
        }
        out
    }

    /// Upstream's `ruleCovers`: does this (owner) rule cover `sub`, an atomic rule from
    /// [`Rule::breakdown`]?
    pub fn covers(&self, sub: &Rule) -> bool {
        let verbs = has(&self.verbs, ALL) || has_all(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, ALL) || has_all(&self.api_groups, &sub.api_groups);
        let resources = resource_covers_all(&self.resources, &sub.resources);
        let urls = sub.non_resource_urls.iter().all(|p| {
            self.non_resource_urls
                .iter()
                .any(|o| non_resource_url_covers(o, p))
        });
        let names = if sub.resource_names.is_empty() {
            self.resource_names.is_empty()
        } else {
            self.resource_names.is_empty() || has_all(&self.resource_names, &sub.resource_names)
        };
        verbs && groups && resources && urls && names
    }

    /// Upstream's `CompactString`, e.g. `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        let fields = [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ];
        for (label, list) in fields {
            if !list.is_empty() {
                parts.push(format!("{label}:{}", go_quote_list(list)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn verb_matches(rule: &Rule, verb: &str) -> bool {
    has_or_all(&rule.verbs, verb)
}

fn has_or_all(set: &[String], want: &str) -> bool {
    set.iter().any(|s| s == ALL || s == want)
}

fn has(set: &[String], want: &str) -> bool {
    set.iter().any(|s| s == want)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resource_covers_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// A non-resource URL rule covers a path exactly, or by prefix when it ends in `*`.
fn non_resource_url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// Go's `%q` of one string (`strconv.Quote`): the escapes RBAC names can need.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]` (space separated).
pub fn go_quote_list(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Upstream's `validation.Covers`: whether `owner` covers every atom of `servant`,
/// and the atoms it does not cover, in order.
pub fn covers(owner: &[Rule], servant: &[Rule]) -> (bool, Vec<Rule>) {
    let missing: Vec<Rule> = servant
        .iter()
        .flat_map(Rule::breakdown)
        .filter(|sub| !owner.iter().any(|o| o.covers(sub)))
        .collect();
    (missing.is_empty(), missing)
}

/// Upstream's `CompactRules`: atoms naming one group and one resource (and at most one
/// name) that differ only by verb are merged into one rule; the rest stay as they are.
pub fn compact(rules: &[Rule]) -> Vec<Rule> {
    let mut compacted = Vec::new();
    let mut simple: Vec<Rule> = Vec::new();
    for r in rules {
        let is_simple = r.resource_names.len() <= 1
            && r.non_resource_urls.is_empty()
            && r.api_groups.len() == 1
            && r.resources.len() == 1;
        if !is_simple {
            compacted.push(r.clone());
            continue;
        }
        let same = simple.iter_mut().find(|s| {
            s.api_groups == r.api_groups
                && s.resources == r.resources
                && s.resource_names == r.resource_names
        });
        match same {
            Some(existing) => {
                for v in &r.verbs {
                    if !existing.verbs.contains(v) {
                        existing.verbs.push(v.clone());
                    }
                }
            }
            None => simple.push(r.clone()),
        }
    }
    compacted.extend(simple);
    compacted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    #[test]
    fn quoting_matches_go() {
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(go_quote_list(&[]), "[]");
        assert_eq!(go_quote_list(&["a".into(), "".into()]), r#"["a" ""]"#);
    }

    #[test]
    fn compact_merges_verbs_of_simple_atoms_only() {
        let atoms =
            rule(json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}))
                .breakdown();
        assert_eq!(atoms.len(), 2);
        let merged = compact(&atoms);
        assert_eq!(merged.len(), 1);
        assert_eq!(
            merged[0].compact_string(),
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}"#
        );
        let url = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/x"]}));
        assert_eq!(compact(&[url.clone(), url.clone()]).len(), 2);
    }

    #[test]
    fn covers_handles_star_subresources_and_url_prefixes() {
        let owner = [rule(
            json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]}),
        )];
        let want = [rule(
            json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments/scale"]}),
        )];
        assert!(covers(&owner, &want).0);
        let want = [rule(
            json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]}),
        )];
        assert!(!covers(&owner, &want).0);
        let owner = [rule(
            json!({"verbs": ["*"], "nonResourceURLs": ["/logs/*"]}),
        )];
        assert!(
            covers(
                &owner,
                &[rule(
                    json!({"verbs": ["get"], "nonResourceURLs": ["/logs/a/b"]})
                )]
            )
            .0
        );
        assert!(
            !covers(
                &owner,
                &[rule(json!({"verbs": ["get"], "nonResourceURLs": ["/log"]}))]
            )
            .0
        );
    }

    #[test]
    fn to_json_keeps_upstream_field_order() {
        let r = rule(
            json!({"nonResourceURLs": [], "resourceNames": ["n"], "resources": ["r"], "apiGroups": ["g"], "verbs": ["v"]}),
        );
        assert_eq!(
            serde_json::to_string(&r.to_json()).unwrap_or_default(),
            r#"{"verbs":["v"],"apiGroups":["g"],"resources":["r"],"resourceNames":["n"]}"#
        );
    }
}
