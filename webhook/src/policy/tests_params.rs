//! Parameter resolution: `paramKind`, `paramRef` by name and by selector,
//! `parameterNotFoundAction`, and the configuration errors upstream reports.

use serde_json::{Value, json};

use super::tests::{Fake, binding, denied, deny_message, deployment, ns, policy, run};
use super::*;

fn limits(namespace: &str, name: &str, max: i64, tier: &str) -> Value {
    let mut metadata = json!({"name": name, "labels": {"tier": tier}});
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    json!({"apiVersion": "example.com/v1", "kind": "Limits", "metadata": metadata,
        "spec": {"max": max}})
}

fn source(scope: ParamScope, objects: Vec<Value>) -> Fake {
    Fake {
        kinds: vec![("example.com/v1", "Limits", scope)],
        objects,
        ..ns()
    }
}

fn param_policy() -> Value {
    policy(json!({
        "paramKind": {"apiVersion": "example.com/v1", "kind": "Limits"},
        "validations": [{"expression": "object.spec.replicas <= params.spec.max",
            "messageExpression": "'max is ' + string(params.spec.max) + ' (' + params.metadata.name + ')'"}]
    }))
}

fn by_name(name: &str, extra: Value) -> Value {
    let mut r = json!({"name": name, "parameterNotFoundAction": "Deny"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        r[k] = v;
    }
    binding(json!({"paramRef": r}))
}

#[test]
fn params_by_name_in_the_request_namespace_or_paramref_namespace() {
    let src = source(
        ParamScope::Namespaced,
        vec![
            limits("default", "small", 3, "a"),
            limits("other", "big", 10, "a"),
        ],
    );
    let e = denied(
        param_policy(),
        by_name("small", json!({})),
        &deployment(6),
        &src,
    );
    assert_eq!(e.message, deny_message("max is 3 (small)"));
    let b = by_name("big", json!({"namespace": "other"}));
    assert!(run(param_policy(), b, &deployment(6), &src).is_ok());
}

#[test]
fn params_get_type_meta_from_param_kind() {
    let mut p = limits("default", "small", 3, "a");
    p.as_object_mut().unwrap().remove("apiVersion");
    p.as_object_mut().unwrap().remove("kind");
    let src = Fake {
        kinds: vec![("example.com/v1", "Limits", ParamScope::Namespaced)],
        ..ns()
    };
    // The fake only finds typed objects, so wrap it in a source that strips them.
    struct Untyped(Fake, Value);
    impl ParamSource for Untyped {
        fn param_scope(&self, v: &str, k: &str) -> Option<ParamScope> {
            self.0.param_scope(v, k)
        }
        fn get(&self, _: &str, _: &str, _: &str, _: &str) -> Option<Value> {
            Some(self.1.clone())
        }
        fn list(&self, _: &str, _: &str, _: &str) -> Vec<Value> {
            vec![self.1.clone()]
        }
        fn namespace(&self, n: &str) -> Option<Value> {
            self.0.namespace(n)
        }
    }
    let pol = policy(json!({
        "paramKind": {"apiVersion": "example.com/v1", "kind": "Limits"},
        "validations": [{"expression": "params.kind == 'Limits' && params.apiVersion == 'example.com/v1'"}]
    }));
    let out = validate_policies(
        &[pol],
        &[by_name("small", json!({}))],
        &deployment(1),
        &Untyped(src, p),
    );
    assert!(out.is_ok());
}

#[test]
fn params_by_selector_evaluate_each_match() {
    let src = source(
        ParamScope::Namespaced,
        vec![
            limits("default", "loose", 10, "gold"),
            limits("default", "tight", 4, "gold"),
            limits("default", "other", 1, "bronze"),
        ],
    );
    let b = binding(
        json!({"paramRef": {"selector": {"matchLabels": {"tier": "gold"}},
        "parameterNotFoundAction": "Deny"}}),
    );
    let e = denied(param_policy(), b.clone(), &deployment(6), &src);
    assert_eq!(e.message, deny_message("max is 4 (tight)"));
    assert!(run(param_policy(), b, &deployment(4), &src).is_ok());
    // An empty selector selects every param in the namespace.
    let all = binding(json!({"paramRef": {"selector": {}, "parameterNotFoundAction": "Deny"}}));
    let e = denied(param_policy(), all, &deployment(2), &src);
    assert_eq!(e.message, deny_message("max is 1 (other)"));
}

#[test]
fn parameter_not_found_action() {
    let src = source(ParamScope::Namespaced, vec![]);
    let e = denied(
        param_policy(),
        by_name("absent", json!({})),
        &deployment(1),
        &src,
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        deny_message(
            "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
        )
    );
    let allow = by_name("absent", json!({"parameterNotFoundAction": "Allow"}));
    assert!(run(param_policy(), allow, &deployment(100), &src).is_ok());
    let none = binding(json!({"paramRef": {"selector": {"matchLabels": {"x": "y"}},
        "parameterNotFoundAction": "Allow"}}));
    assert!(run(param_policy(), none, &deployment(100), &src).is_ok());
    // Configuration errors follow failurePolicy.
    let mut ignoring = param_policy();
    ignoring["spec"]["failurePolicy"] = json!("Ignore");
    assert!(run(ignoring, by_name("absent", json!({})), &deployment(1), &src).is_ok());
}

#[test]
fn param_scope_errors() {
    let cluster = source(ParamScope::Cluster, vec![limits("", "global", 3, "a")]);
    let e = denied(
        param_policy(),
        by_name("global", json!({})),
        &deployment(6),
        &cluster,
    );
    assert_eq!(e.message, deny_message("max is 3 (global)"));
    let e = denied(
        param_policy(),
        by_name("global", json!({"namespace": "default"})),
        &deployment(1),
        &cluster,
    );
    assert_eq!(
        e.message,
        deny_message(
            "failed to configure binding: paramRef.namespace must not be provided for a cluster-scoped `paramKind`"
        )
    );
    // A namespaced paramKind for a cluster-scoped request needs paramRef.namespace.
    let namespaced = source(ParamScope::Namespaced, vec![]);
    let mut p = param_policy();
    p["spec"]["matchConstraints"] = json!({"resourceRules": [{"apiGroups": [""],
        "apiVersions": ["v1"], "operations": ["*"], "resources": ["nodes"]}]});
    let node = Request {
        kind: crate::GroupVersionKind::new("", "v1", "Node"),
        resource: crate::GroupVersionResource::new("", "v1", "nodes"),
        name: "n1".into(),
        ..Request::default()
    };
    let e = denied(p, by_name("x", json!({})), &node, &namespaced);
    assert!(e.message.ends_with(
        "failed to configure binding: cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
    ));
    assert!(e.message.starts_with("nodes \"n1\" is forbidden: "));
}

#[test]
fn unknown_param_kind_is_a_policy_error() {
    let e = denied(
        param_policy(),
        by_name("x", json!({})),
        &deployment(1),
        &ns(),
    );
    assert_eq!(
        e.message,
        format!(
            "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy '{}' denied request: \
             failed to configure policy: failed to find resource referenced by paramKind: \
             'example.com/v1, Kind=Limits'",
            super::tests::POLICY
        )
    );
    let mut ignoring = param_policy();
    ignoring["spec"]["failurePolicy"] = json!("Ignore");
    assert!(run(ignoring, by_name("x", json!({})), &deployment(1), &ns()).is_ok());
}

#[test]
fn param_kind_without_param_ref_runs_with_null_params() {
    let src = source(ParamScope::Namespaced, vec![]);
    let p = policy(json!({
        "paramKind": {"apiVersion": "example.com/v1", "kind": "Limits"},
        "validations": [{"expression": "params == null", "message": "params set"}]
    }));
    assert!(run(p, binding(json!({})), &deployment(1), &src).is_ok());
    // With params missing, an expression reading them fails, under failurePolicy.
    let e = denied(param_policy(), binding(json!({})), &deployment(1), &src);
    assert!(e.message.contains("resulted in error"), "{}", e.message);
}
