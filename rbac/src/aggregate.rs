//! ClusterRole aggregation, as upstream's clusterrole-aggregation controller computes it:
//! the rules of a ClusterRole with an `aggregationRule` are the union of the rules of
//! every other ClusterRole matched by one of its `clusterRoleSelectors`, selectors in
//! order, matched roles by name, duplicates dropped.
//!
//! Aggregated roles may select other aggregated roles (`admin` selects `edit`, which
//! selects `view`); the controller converges through repeated syncs, and this computes
//! the same fixed point directly.

use machinery::labels::Selector;
use serde_json::Value;

use crate::rule::Rule;

/// One ClusterRole as aggregation sees it.
struct Entry<'a> {
    name: &'a str,
    object: &'a Value,
    /// `Some` for aggregated roles: their parsed selectors (invalid ones dropped).
    selectors: Option<Vec<Selector>>,
    rules: Vec<Rule>,
}

fn selectors_of(cr: &Value) -> Option<Vec<Selector>> {
    let rule = cr.get("aggregationRule").filter(|v| v.is_object())?;
    let selectors = rule
        .get("clusterRoleSelectors")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|s| s.is_object())
                .filter_map(|s| Selector::from_label_selector(s).ok())
                .collect()
        })
        .unwrap_or_default();
    Some(selectors)
}

/// The rules of every ClusterRole that has an `aggregationRule`, as
/// `(name, rules)` in input order; rules are `PolicyRule` JSON objects.
///
/// Roles without an `aggregationRule` are not returned (their stored rules stand).
pub fn aggregate(cluster_roles: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut entries: Vec<Entry> = cluster_roles
        .iter()
        .map(|cr| Entry {
            name: cr
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or(""),
            object: cr,
            selectors: selectors_of(cr),
            rules: Rule::list_from_object(cr),
        })
        .collect();
    let mut by_name: Vec<usize> = (0..entries.len()).collect();
    by_name.sort_by(|&a, &b| entries[a].name.cmp(entries[b].name));
    let aggregated: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].selectors.is_some())
        .collect();

    // Each pass can only propagate rules one aggregation level further; the bound
    // guarantees termination even for selector cycles.
    for _ in 0..=aggregated.len() {
        let mut changed = false;
        for &i in &aggregated {
            let mut rules: Vec<Rule> = Vec::new();
            for selector in entries[i].selectors.iter().flatten() {
                for &j in &by_name {
                    if entries[j].name == entries[i].name
                        || !selector.matches_object(entries[j].object)
                    {
                        continue;
                    }
                    for r in &entries[j].rules {
                        if !rules.contains(r) {
                            rules.push(r.clone());
                        }
                    }
                }
            }
            if rules != entries[i].rules {
                entries[i].rules = rules;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    aggregated
        .into_iter()
        .map(|i| {
            let e = &entries[i];
            (
                e.name.to_string(),
                e.rules.iter().map(Rule::to_json).collect(),
            )
        })
        .collect()
}
