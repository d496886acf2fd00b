//! Dispatcher behaviour: matching, validations, messages, reasons, actions, failure policy.
//! Parameter handling is in `tests_params`.

use serde_json::{Value, json};

use super::*;
use crate::request::{GroupVersionKind, GroupVersionResource, Operation};

pub(super) const POLICY: &str = "demo-policy.example.com";
pub(super) const BINDING: &str = "demo-binding-test.example.com";

/// An in-memory [`ParamSource`].
#[derive(Default)]
pub(super) struct Fake {
    pub kinds: Vec<(&'static str, &'static str, ParamScope)>,
    pub objects: Vec<Value>,
    pub namespaces: Vec<Value>,
}

impl Fake {
    pub fn with_namespace(name: &str, labels: Value) -> Self {
        Fake {
            namespaces: vec![json!({"metadata": {"name": name, "labels": labels},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})],
            ..Fake::default()
        }
    }
}

fn meta<'a>(o: &'a Value, k: &str) -> &'a str {
    o.pointer(&format!("/metadata/{k}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl ParamSource for Fake {
    fn param_scope(&self, api_version: &str, kind: &str) -> Option<ParamScope> {
        self.kinds
            .iter()
            .find(|(v, k, _)| *v == api_version && *k == kind)
            .map(|(_, _, s)| *s)
    }

    fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self.list(api_version, kind, namespace)
            .into_iter()
            .find(|o| meta(o, "name") == name)
    }

    fn list(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|o| o["apiVersion"] == api_version && o["kind"] == kind)
            .filter(|o| meta(o, "namespace") == namespace)
            .cloned()
            .collect()
    }

    fn namespace(&self, name: &str) -> Option<Value> {
        self.namespaces
            .iter()
            .find(|n| meta(n, "name") == name)
            .cloned()
    }
}

/// A policy on `apps/v1` deployments (CREATE, UPDATE) with `spec` merged in.
pub(super) fn policy(spec: Value) -> Value {
    let mut p = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]
            }]},
            "validations": [{"expression": "object.spec.replicas <= 5"}]
        }
    });
    for (k, v) in spec.as_object().cloned().unwrap_or_default() {
        p["spec"][k] = v;
    }
    p
}

/// A binding of `POLICY` with `spec` merged in; `validationActions: [Deny]` by default.
pub(super) fn binding(spec: Value) -> Value {
    let mut b = json!({
        "metadata": {"name": BINDING},
        "spec": {"policyName": POLICY, "validationActions": ["Deny"]}
    });
    for (k, v) in spec.as_object().cloned().unwrap_or_default() {
        b["spec"][k] = v;
    }
    b
}

/// Creating deployment `web` in `default` with `replicas`.
pub(super) fn deployment(replicas: i64) -> Request {
    Request {
        kind: GroupVersionKind::new("apps", "v1", "Deployment"),
        resource: GroupVersionResource::new("apps", "v1", "deployments"),
        name: "web".into(),
        namespace: "default".into(),
        operation: Operation::Create,
        object: Some(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": replicas}
        })),
        ..Request::default()
    }
}

pub(super) fn ns() -> Fake {
    Fake::with_namespace("default", json!({"env": "prod"}))
}

pub(super) fn run(p: Value, b: Value, req: &Request, src: &Fake) -> Result<Outcome, Rejected> {
    validate_policies(&[p], &[b], req, src)
}

pub(super) fn denied(p: Value, b: Value, req: &Request, src: &Fake) -> ApiError {
    run(p, b, req, src).expect_err("expected a denial").error
}

pub(super) fn deny_message(tail: &str) -> String {
    format!(
        "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy '{POLICY}' with \
         binding '{BINDING}' denied request: {tail}"
    )
}

#[test]
fn deny_without_message_uses_expression_and_invalid() {
    let e = denied(policy(json!({})), binding(json!({})), &deployment(6), &ns());
    assert_eq!(e.code, 422);
    assert_eq!(e.reason, "Invalid");
    assert_eq!(
        e.message,
        deny_message("failed expression: object.spec.replicas <= 5")
    );
    let d = e.details.as_ref().unwrap();
    assert_eq!(
        (d.group.as_str(), d.kind.as_str(), d.name.as_str()),
        ("apps", "deployments", "web")
    );
    assert_eq!(
        d.causes[0].message,
        e.message.split_once("forbidden: ").unwrap().1
    );
    assert!(run(policy(json!({})), binding(json!({})), &deployment(5), &ns()).is_ok());
}

#[test]
fn message_and_reason_codes() {
    for (reason, code) in [
        ("Forbidden", 403),
        ("Invalid", 422),
        ("Unauthorized", 401),
        ("RequestEntityTooLarge", 413),
    ] {
        let p = policy(json!({"validations": [{
            "expression": "object.spec.replicas <= 5",
            "message": "  too many replicas ", "reason": reason
        }]}));
        let e = denied(p, binding(json!({})), &deployment(6), &ns());
        assert_eq!((e.code, e.reason.as_str()), (code, reason));
        assert_eq!(e.message, deny_message("too many replicas"));
    }
}

#[test]
fn message_expression_and_its_fallbacks() {
    let with = |message_expression: &str, message: &str| {
        policy(json!({"validations": [{
            "expression": "object.spec.replicas <= 5",
            "message": message, "messageExpression": message_expression
        }]}))
    };
    let req = deployment(6);
    let e = denied(
        with(
            "'replicas ' + string(object.spec.replicas) + ' > 5'",
            "static",
        ),
        binding(json!({})),
        &req,
        &ns(),
    );
    assert_eq!(e.message, deny_message("replicas 6 > 5"));
    // An error, a non-string and a multi-line result fall back to `message`.
    for bad in ["object.nope + 'x'", "42", "'a\\nb'", "'   '"] {
        let e = denied(with(bad, "static"), binding(json!({})), &req, &ns());
        assert_eq!(e.message, deny_message("static"), "{bad}");
    }
    let e = denied(with("1", ""), binding(json!({})), &req, &ns());
    assert_eq!(
        e.message,
        deny_message("failed expression: object.spec.replicas <= 5")
    );
}

#[test]
fn warn_and_audit_actions() {
    let p = policy(json!({"validations": [
        {"expression": "true"},
        {"expression": "object.spec.replicas <= 5", "message": "at most <5> & no more"}
    ]}));
    let b = binding(json!({"validationActions": ["Warn", "Audit"]}));
    let out = run(p, b, &deployment(6), &ns()).expect("allowed");
    assert_eq!(
        out.warnings,
        [format!(
            "Validation failed for ValidatingAdmissionPolicy '{POLICY}' with binding '{BINDING}': at most <5> & no more"
        )]
    );
    assert_eq!(
        out.audit_annotations,
        [(
            VALIDATION_FAILURE_ANNOTATION.to_string(),
            format!(
                "[{{\"message\":\"at most \\u003c5\\u003e \\u0026 no more\",\"policy\":\"{POLICY}\",\
                 \"binding\":\"{BINDING}\",\"expressionIndex\":1,\"validationActions\":[\"Warn\",\"Audit\"]}}]"
            )
        )]
    );
    // Deny together with Warn: refused, and the warning still travels with the refusal.
    let r = run(
        policy(json!({})),
        binding(json!({"validationActions": ["Deny", "Warn"]})),
        &deployment(6),
        &ns(),
    )
    .unwrap_err();
    assert_eq!(r.outcome.warnings.len(), 1);
}

#[test]
fn audit_annotations_are_published_per_policy() {
    let p = policy(json!({
        "validations": [{"expression": "true"}],
        "auditAnnotations": [
            {"key": "high-replicas", "valueExpression": "object.spec.replicas > 3 ? 'replicas ' + string(object.spec.replicas) : null"},
            {"key": "blank", "valueExpression": "'  '"}
        ]
    }));
    let out = run(p.clone(), binding(json!({})), &deployment(6), &ns()).unwrap();
    assert_eq!(
        out.audit_annotations,
        [(format!("{POLICY}/high-replicas"), "replicas 6".to_string())]
    );
    let out = run(p, binding(json!({})), &deployment(1), &ns()).unwrap();
    assert!(out.audit_annotations.is_empty());
    // A value of another type is an error, which fails the request under Fail.
    let p = policy(json!({
        "validations": [{"expression": "true"}],
        "auditAnnotations": [{"key": "k", "valueExpression": "1"}]
    }));
    let e = denied(
        p,
        binding(json!({"validationActions": ["Audit"]})),
        &deployment(1),
        &ns(),
    );
    assert_eq!(
        e.message,
        deny_message(
            "valueExpression '1' resulted in unsupported return type: int. Return type must be either string or null."
        )
    );
}

#[test]
fn match_constraints() {
    let b = || binding(json!({}));
    let req = deployment(6);
    // Other resources and operations are not matched.
    let p = policy(
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
        "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["deployments"]}]}}),
    );
    assert!(run(p, b(), &req, &ns()).is_ok());
    let p = policy(
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""],
        "apiVersions": ["v1"], "operations": ["*"], "resources": ["pods"]}]}}),
    );
    assert!(run(p, b(), &req, &ns()).is_ok());
    // resourceNames narrows by name.
    let named = |n: &str| {
        policy(
            json!({"matchConstraints": {"resourceRules": [{"apiGroups": ["*"],
        "apiVersions": ["*"], "operations": ["*"], "resources": ["*"], "resourceNames": [n]}]}}),
        )
    };
    assert!(run(named("other"), b(), &req, &ns()).is_ok());
    assert!(run(named("web"), b(), &req, &ns()).is_err());
    // excludeResourceRules wins over resourceRules.
    let p = policy(json!({"matchConstraints": {
        "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}],
        "excludeResourceRules": [{"apiGroups": ["apps"], "apiVersions": ["*"], "operations": ["*"], "resources": ["deployments"]}]
    }}));
    assert!(run(p, b(), &req, &ns()).is_ok());
    // namespaceSelector reads the namespace's labels.
    let sel = |env: &str| {
        policy(json!({"matchConstraints": {
            "namespaceSelector": {"matchLabels": {"env": env}},
            "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["*"], "resources": ["deployments"]}]
        }}))
    };
    assert!(run(sel("dev"), b(), &req, &ns()).is_ok());
    assert!(run(sel("prod"), b(), &req, &ns()).is_err());
    // objectSelector reads the object's labels.
    let p = policy(json!({"matchConstraints": {
        "objectSelector": {"matchLabels": {"app": "db"}},
        "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["*"], "resources": ["deployments"]}]
    }}));
    assert!(run(p, b(), &req, &ns()).is_ok());
}

#[test]
fn binding_match_resources_narrow_the_policy() {
    let req = deployment(6);
    let b = |env: &str| {
        binding(json!({"matchResources": {"namespaceSelector": {"matchLabels": {"env": env}}}}))
    };
    assert!(run(policy(json!({})), b("dev"), &req, &ns()).is_ok());
    assert!(run(policy(json!({})), b("prod"), &req, &ns()).is_err());
    let b = binding(
        json!({"matchResources": {"excludeResourceRules": [{"apiGroups": ["apps"],
        "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]}}),
    );
    assert!(run(policy(json!({})), b, &req, &ns()).is_ok());
}

#[test]
fn match_conditions_skip_or_follow_failure_policy() {
    let req = deployment(6);
    let with = |expr: &str, fp: &str| {
        policy(json!({"failurePolicy": fp,
            "matchConditions": [{"name": "c", "expression": expr}]}))
    };
    assert!(
        run(
            with("request.namespace == 'kube-system'", "Fail"),
            binding(json!({})),
            &req,
            &ns()
        )
        .is_ok()
    );
    assert!(
        run(
            with("request.namespace == 'default'", "Fail"),
            binding(json!({})),
            &req,
            &ns()
        )
        .is_err()
    );
    let e = denied(
        with("object.nope == 1", "Fail"),
        binding(json!({})),
        &req,
        &ns(),
    );
    assert!(
        e.message.starts_with(&deny_message(
            "expression 'object.nope == 1' resulted in error: "
        )),
        "{}",
        e.message
    );
    assert!(
        run(
            with("object.nope == 1", "Ignore"),
            binding(json!({})),
            &req,
            &ns()
        )
        .is_ok()
    );
}

#[test]
fn variables_are_composed_in_order() {
    let p = policy(json!({
        "variables": [
            {"name": "replicas", "expression": "object.spec.replicas"},
            {"name": "limit", "expression": "variables.replicas > 100 ? 0 : 5"},
            {"name": "broken", "expression": "object.nope"}
        ],
        "validations": [{"expression": "variables.replicas <= variables.limit",
            "messageExpression": "'got ' + string(variables.replicas)"}]
    }));
    let e = denied(p.clone(), binding(json!({})), &deployment(6), &ns());
    assert_eq!(e.message, deny_message("got 6"));
    assert!(run(p, binding(json!({})), &deployment(2), &ns()).is_ok());
    let p = policy(json!({
        "variables": [{"name": "broken", "expression": "object.nope"}],
        "validations": [{"expression": "variables.broken == 1"}]
    }));
    let e = denied(p, binding(json!({})), &deployment(2), &ns());
    assert!(
        e.message.starts_with(&deny_message(
            "expression 'variables.broken == 1' resulted in error: composited variable \"broken\" fails to evaluate: "
        )),
        "{}",
        e.message
    );
}

#[test]
fn runtime_errors_follow_failure_policy() {
    let with = |fp: &str| {
        policy(json!({"failurePolicy": fp,
            "validations": [{"expression": "object.spec.nope > 1", "reason": "Forbidden"}]}))
    };
    let e = denied(with("Fail"), binding(json!({})), &deployment(1), &ns());
    // Errors carry no reason: Invalid.
    assert_eq!(e.code, 422);
    assert!(
        e.message.starts_with(&deny_message(
            "expression 'object.spec.nope > 1' resulted in error: "
        )),
        "{}",
        e.message
    );
    assert!(run(with("Ignore"), binding(json!({})), &deployment(1), &ns()).is_ok());
    // Under Fail, errors are enforced by the binding's actions: Warn only warns.
    let out = run(
        with("Fail"),
        binding(json!({"validationActions": ["Warn"]})),
        &deployment(1),
        &ns(),
    )
    .unwrap();
    assert_eq!(out.warnings.len(), 1);
    // The authorizer is not available.
    let p = policy(
        json!({"validations": [{"expression": "authorizer.group('').resource('pods').check('get').allowed()"}]}),
    );
    assert!(run(p, binding(json!({})), &deployment(1), &ns()).is_err());
}

#[test]
fn cel_variables() {
    let p = policy(json!({"validations": [
        {"expression": "oldObject == null"},
        {"expression": "params == null"},
        {"expression": "request.operation == 'CREATE' && request.name == 'web'"},
        {"expression": "namespaceObject.metadata.labels.env == 'prod' && namespaceObject.status.phase == 'Active'"}
    ]}));
    assert!(run(p, binding(json!({})), &deployment(1), &ns()).is_ok());
    // Cluster-scoped requests see a null namespaceObject.
    let p = policy(json!({
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
            "operations": ["*"], "resources": ["nodes"]}]},
        "validations": [{"expression": "namespaceObject == null"}]
    }));
    let node = Request {
        kind: GroupVersionKind::new("", "v1", "Node"),
        resource: GroupVersionResource::new("", "v1", "nodes"),
        name: "n1".into(),
        object: Some(json!({"metadata": {"name": "n1"}})),
        ..Request::default()
    };
    assert!(run(p, binding(json!({})), &node, &ns()).is_ok());
}

#[test]
fn bindings_without_policy_and_exempt_resources() {
    let orphan = binding(json!({"policyName": "missing"}));
    assert!(run(policy(json!({})), orphan, &deployment(9), &ns()).is_ok());
    assert!(validate_policies(&[policy(json!({}))], &[], &deployment(9), &ns()).is_ok());
    let everything = policy(
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": ["*"],
        "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]},
        "validations": [{"expression": "false"}]}),
    );
    let mut req = deployment(1);
    req.kind = GroupVersionKind::new(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
    );
    req.resource = GroupVersionResource::new(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
    );
    req.namespace.clear();
    assert!(run(everything.clone(), binding(json!({})), &req, &ns()).is_ok());
    // Webhook configurations are not exempt from policies.
    req.resource.resource = "validatingwebhookconfigurations".into();
    assert!(run(everything, binding(json!({})), &req, &ns()).is_err());
}

#[test]
fn first_denial_wins_in_policy_then_binding_order() {
    let mut a = policy(json!({"validations": [{"expression": "false", "message": "from a"}]}));
    a["metadata"]["name"] = json!("a");
    let mut z = policy(json!({"validations": [{"expression": "false", "message": "from z"}]}));
    z["metadata"]["name"] = json!("z");
    let mut bz = binding(json!({"policyName": "z"}));
    bz["metadata"]["name"] = json!("bz");
    let mut ba = binding(json!({"policyName": "a"}));
    ba["metadata"]["name"] = json!("ba");
    let e = validate_policies(&[z, a], &[bz, ba], &deployment(1), &ns())
        .unwrap_err()
        .error;
    assert!(
        e.message
            .ends_with("ValidatingAdmissionPolicy 'a' with binding 'ba' denied request: from a")
    );
}

#[test]
fn missing_match_constraints_is_a_policy_error() {
    let mut p = policy(json!({}));
    p["spec"]
        .as_object_mut()
        .unwrap()
        .remove("matchConstraints");
    let e = denied(p, binding(json!({})), &deployment(1), &ns());
    assert!(e.message.ends_with(&format!(
        "ValidatingAdmissionPolicy '{POLICY}' denied request: failed to configure policy: policy contained no match constraints, a required field"
    )));
}
