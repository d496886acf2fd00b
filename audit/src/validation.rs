//! Validation of a decoded policy, with field paths and messages in upstream's
//! `field.ErrorList` shape so operators see the errors they already know.

use crate::policy::{PolicyDocument, RuleDocument};
use crate::types::{Level, Stage};

/// Returns one message per invalid field; empty when the policy is valid.
pub(crate) fn validate_policy(doc: &PolicyDocument) -> Vec<String> {
    let mut errs = Vec::new();
    for (i, rule) in doc.rules.iter().enumerate() {
        validate_rule(rule, &format!("rules[{i}]"), &mut errs);
    }
    validate_omit_stages(&doc.omit_stages, "omitStages", &mut errs);
    errs
}

/// Joins field errors the way an aggregate error prints: bare when single, bracketed otherwise.
pub(crate) fn aggregate(errs: &[String]) -> String {
    match errs {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn validate_rule(rule: &RuleDocument, path: &str, errs: &mut Vec<String>) {
    validate_level(&rule.level, &format!("{path}.level"), errs);
    validate_non_resource_urls(
        &rule.non_resource_urls,
        &format!("{path}.nonResourceURLs"),
        errs,
    );
    validate_resources(rule, &format!("{path}.resources"), errs);
    validate_omit_stages(&rule.omit_stages, &format!("{path}.omitStages"), errs);
    if !rule.non_resource_urls.is_empty()
        && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
    {
        errs.push(format!(
            "{path}.nonResourceURLs: Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
            quote_list(&rule.non_resource_urls)
        ));
    }
}

fn validate_level(level: &str, path: &str, errs: &mut Vec<String>) {
    if level.is_empty() {
        errs.push(format!("{path}: Required value"));
    } else if Level::parse(level).is_none() {
        let supported: Vec<String> = Level::ALL
            .iter()
            .map(|l| format!("{:?}", l.as_str()))
            .collect();
        errs.push(format!(
            "{path}: Unsupported value: {level:?}: supported values: {}",
            supported.join(", ")
        ));
    }
}

fn validate_non_resource_urls(urls: &[String], path: &str, errs: &mut Vec<String>) {
    for (i, url) in urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        if !url.starts_with('/') {
            errs.push(format!(
                "{path}[{i}]: Invalid value: {url:?}: non-resource URL rules must begin with a '/' character"
            ));
        }
        // Everything but the last character must be free of wildcards.
        let body = url.char_indices().last().map_or("", |(end, _)| &url[..end]);
        if body.contains('*') {
            errs.push(format!(
                "{path}[{i}]: Invalid value: {url:?}: non-resource URL wildcards '*' must be the final character of the rule"
            ));
        }
    }
}

fn validate_resources(rule: &RuleDocument, path: &str, errs: &mut Vec<String>) {
    for gr in &rule.resources {
        if !gr.group.is_empty() && !is_dns1123_subdomain(&gr.group) {
            errs.push(format!(
                "{path}.group: Invalid value: {:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                gr.group
            ));
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errs.push(format!(
                "{path}.resourceNames: Invalid value: {}: using resourceNames requires at least one resource",
                quote_list(&gr.resource_names)
            ));
        }
    }
}

fn validate_omit_stages(stages: &[String], path: &str, errs: &mut Vec<String>) {
    let allowed: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    for (i, stage) in stages.iter().enumerate() {
        if Stage::parse(stage).is_none() {
            errs.push(format!(
                "{path}[{i}]: Invalid value: {stage:?}: allowed stages are {}",
                allowed.join(",")
            ));
        }
    }
}

fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// RFC 1123 subdomain: at most 253 characters of dot-separated labels, each made of
/// lowercase alphanumerics and '-', starting and ending alphanumeric.
fn is_dns1123_subdomain(s: &str) -> bool {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(e)) => {
                is_alnum(*f) && is_alnum(*e) && b.iter().all(|c| is_alnum(*c) || *c == b'-')
            }
            _ => false,
        }
    };
    s.len() <= 253 && s.split('.').all(label_ok)
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomains() {
        assert!(is_dns1123_subdomain("apps"));
        assert!(is_dns1123_subdomain("rbac.authorization.k8s.io"));
        assert!(!is_dns1123_subdomain("rbac.authorization.k8s.io/v1"));
        assert!(!is_dns1123_subdomain("Apps"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a"));
    }

    #[test]
    fn aggregate_formats() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
