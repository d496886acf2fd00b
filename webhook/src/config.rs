//! Webhook configurations (`MutatingWebhookConfiguration`, `ValidatingWebhookConfiguration`)
//! read from JSON into the flat per-webhook form the dispatchers use, with upstream's
//! defaults filled in and upstream's call order (configurations by name, then webhooks in
//! the order listed).

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::ClientConfig;

/// One `RuleWithOperations`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rule {
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    /// `*` (default), `Cluster` or `Namespaced`.
    pub scope: String,
}

/// One `matchConditions[]` entry.
#[derive(Debug, Clone)]
pub(crate) struct MatchCondition {
    #[allow(dead_code)] // kept for logs; upstream reports only the expression
    pub name: String,
    pub expression: String,
}

/// One webhook of a configuration, defaulted as the v1 API defaults it.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub name: String,
    pub configuration: String,
    /// `<configuration>/<webhook>/<index>`, upstream's identity for reinvocation.
    pub uid: String,
    pub client: ClientConfig,
    pub rules: Vec<Rule>,
    /// `failurePolicy: Ignore`; the default is `Fail`.
    pub ignore_failures: bool,
    pub namespace_selector: Value,
    pub object_selector: Value,
    /// `sideEffects`: required in v1, so `None` only for malformed input.
    pub side_effects: Option<String>,
    pub timeout: Duration,
    pub review_versions: Vec<String>,
    /// `reinvocationPolicy: IfNeeded` (mutating only); the default is `Never`.
    pub reinvoke_if_needed: bool,
    pub match_conditions: Vec<MatchCondition>,
}

const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const MAX_TIMEOUT_SECONDS: u64 = 30;

pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn rule(v: &Value) -> Rule {
    Rule {
        operations: strings(v.get("operations")),
        api_groups: strings(v.get("apiGroups")),
        api_versions: strings(v.get("apiVersions")),
        resources: strings(v.get("resources")),
        scope: v
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("*")
            .to_string(),
    }
}

fn hook(configuration: &str, index: usize, w: &Value) -> Hook {
    let name = w
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let str_field = |k: &str| w.get(k).and_then(Value::as_str);
    let timeout = w
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
        .min(MAX_TIMEOUT_SECONDS);
    // An absent selector is defaulted to `{}` (match everything) by the v1 API.
    let selector = |k: &str| {
        w.get(k)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| json!({}))
    };
    Hook {
        uid: format!("{configuration}/{name}/{index}"),
        configuration: configuration.to_string(),
        client: ClientConfig::from_json(w.get("clientConfig").unwrap_or(&Value::Null)),
        rules: w
            .get("rules")
            .and_then(Value::as_array)
            .map(|rs| rs.iter().map(rule).collect())
            .unwrap_or_default(),
        ignore_failures: str_field("failurePolicy") == Some("Ignore"),
        namespace_selector: selector("namespaceSelector"),
        object_selector: selector("objectSelector"),
        side_effects: str_field("sideEffects").map(String::from),
        timeout: Duration::from_secs(timeout),
        review_versions: strings(w.get("admissionReviewVersions")),
        reinvoke_if_needed: str_field("reinvocationPolicy") == Some("IfNeeded"),
        match_conditions: w
            .get("matchConditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| MatchCondition {
                        name: c
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        expression: c
                            .get("expression")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        name,
    }
}

/// All webhooks of `configs`, in the order upstream calls them. `matchPolicy` is read as
/// `Exact`: equivalent resources (e.g. `deployments` in another group version) are not
/// matched because this crate cannot convert objects between versions.
pub(crate) fn hooks(configs: &[Value]) -> Vec<Hook> {
    let mut named: Vec<(&str, &Value)> = configs
        .iter()
        .map(|c| {
            let name = c
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            (name, c)
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (name, c) in named {
        if let Some(ws) = c.get("webhooks").and_then(Value::as_array) {
            out.extend(ws.iter().enumerate().map(|(i, w)| hook(name, i, w)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_sorted_by_configuration_name_and_defaulted() {
        let configs = vec![
            json!({"metadata": {"name": "b"}, "webhooks": [{"name": "b1"}]}),
            json!({"metadata": {"name": "a"}, "webhooks": [
                {"name": "a1", "timeoutSeconds": 99, "failurePolicy": "Ignore"},
                {"name": "a2", "reinvocationPolicy": "IfNeeded"}
            ]}),
        ];
        let hs = hooks(&configs);
        let names: Vec<&str> = hs.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "b1"]);
        assert_eq!(hs[0].timeout, Duration::from_secs(30));
        assert!(hs[0].ignore_failures);
        assert_eq!(hs[1].timeout, Duration::from_secs(10));
        assert!(hs[1].reinvoke_if_needed);
        assert_eq!(hs[1].uid, "a/a2/1");
        assert_eq!(hs[2].namespace_selector, json!({}));
    }
}
