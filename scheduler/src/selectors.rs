//! Matching helpers shared by the plugins: label selectors (`metav1.LabelSelector`), node
//! selector terms (`v1.NodeSelectorTerm`, with `matchFields` on `metadata.name`), and
//! toleration of taints, with upstream's semantics for each operator.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

/// A compiled `metav1.LabelSelector`. `None` requirements means "matches nothing" (a nil
/// selector), an empty list means "matches everything".
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    reqs: Option<Vec<Requirement>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    /// A selector matching nothing (what a nil `LabelSelector` means in affinity terms).
    pub fn nothing() -> Self {
        Selector { reqs: None }
    }

    /// A selector matching everything.
    pub fn everything() -> Self {
        Selector { reqs: Some(vec![]) }
    }

    /// Compiles a label selector; an invalid operator makes it match nothing, as upstream
    /// treats selectors it cannot convert.
    pub fn new(sel: Option<&LabelSelector>) -> Self {
        let Some(sel) = sel else {
            return Self::nothing();
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement::In(k.clone(), vec![v.clone()]));
        }
        for e in sel.match_expressions.iter().flatten() {
            let vals = e.values.clone().unwrap_or_default();
            let r = match e.operator.as_str() {
                "In" => Requirement::In(e.key.clone(), vals),
                "NotIn" => Requirement::NotIn(e.key.clone(), vals),
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                _ => return Self::nothing(),
            };
            reqs.push(r);
        }
        Selector { reqs: Some(reqs) }
    }

    /// A selector requiring every label of `set` (what a plain label set such as a
    /// Service's selector means).
    pub fn from_labels(set: &Labels) -> Self {
        Selector {
            reqs: Some(
                set.iter()
                    .map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()]))
                    .collect(),
            ),
        }
    }

    /// Adds every requirement of `other`; a selector matching nothing (nil or invalid)
    /// adds none, as upstream adds only the requirements a selector converts to.
    pub fn and(&mut self, other: &Selector) {
        if let (Some(r), Some(o)) = (self.reqs.as_mut(), other.reqs.as_ref()) {
            r.extend(o.iter().cloned());
        }
    }

    /// Adds `key In (value)` requirements (used for `matchLabelKeys`).
    pub fn and_equals(&mut self, key: &str, value: &str) {
        if let Some(r) = self.reqs.as_mut() {
            r.push(Requirement::In(key.to_string(), vec![value.to_string()]));
        }
    }

    /// Adds a `key NotIn (value)` requirement (used for `mismatchLabelKeys`).
    pub fn and_not_equals(&mut self, key: &str, value: &str) {
        if let Some(r) = self.reqs.as_mut() {
            r.push(Requirement::NotIn(key.to_string(), vec![value.to_string()]));
        }
    }

    /// Whether this selector has no requirements (matches every set of labels).
    pub fn is_empty(&self) -> bool {
        self.reqs.as_ref().is_some_and(|r| r.is_empty())
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let Some(reqs) = &self.reqs else {
            return false;
        };
        reqs.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

fn node_requirement(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let vals = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| vals.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !vals.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), [bound]) = (value, vals) else {
                return false;
            };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(b)) if op == "Gt" => v > b,
                (Ok(v), Ok(b)) => v < b,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a node (its labels and name) matches one term. A term with no requirements
/// matches nothing, as upstream.
pub fn node_term_matches(term: &NodeSelectorTerm, labels: &Labels, node_name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| node_requirement(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let v = (r.key == "metadata.name").then_some(node_name);
            node_requirement(r, v)
        })
}

/// Whether any of the terms matches (terms are ORed).
pub fn node_terms_match(terms: &[NodeSelectorTerm], labels: &Labels, node_name: &str) -> bool {
    terms
        .iter()
        .any(|t| node_term_matches(t, labels, node_name))
}

/// Whether one toleration tolerates the taint (`v1.Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref()
        && !e.is_empty()
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// Whether any toleration in the list tolerates the taint.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::labels;
    use serde_json::json;

    #[test]
    fn label_selector_semantics() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .expect("selector");
        let s = Selector::new(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!Selector::new(None).matches(&labels(&[])));
        assert!(Selector::new(Some(&LabelSelector::default())).matches(&labels(&[])));
    }

    #[test]
    fn node_terms() {
        let term: NodeSelectorTerm = serde_json::from_value(json!({
            "matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}],
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]
        }))
        .expect("term");
        assert!(node_term_matches(&term, &labels(&[("cores", "8")]), "n1"));
        assert!(!node_term_matches(&term, &labels(&[("cores", "8")]), "n2"));
        assert!(!node_term_matches(&term, &labels(&[("cores", "2")]), "n1"));
        assert!(!node_term_matches(
            &NodeSelectorTerm::default(),
            &labels(&[]),
            "n1"
        ));
    }

    #[test]
    fn toleration_rules() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).expect("t") };
        assert!(tolerates(&t(json!({"key": "k", "value": "v"})), &taint));
        assert!(!tolerates(&t(json!({"key": "k", "value": "w"})), &taint));
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(
            &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }
}
