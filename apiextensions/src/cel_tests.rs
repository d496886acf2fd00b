use super::*;
use serde_json::json;

fn run(schema: Value, obj: Value, old: Option<Value>) -> Vec<String> {
    let mut errs = vec![];
    let s = Schema::parse(&schema, "openAPIV3Schema", &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    validate(&s, &obj, old.as_ref(), old.is_some(), "", &mut errs);
    errs.iter().map(FieldError::message).collect()
}

fn spec_rule(rule: Value) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [rule],
        "properties": {"replicas": {"type": "integer"}, "max": {"type": "integer"},
                       "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}}})
}

// Upstream (apiserver/schema/cel/validation.go): a failed rule is field.Invalid at the
// node's path with the schema type as the value, detail the message or `failed rule: <rule>`.
#[test]
fn failed_rules_report_message_or_rule() {
    let s = spec_rule(json!({"rule": "self.replicas <= self.max"}));
    let e = run(s, json!({"spec": {"replicas": 5, "max": 3}}), None);
    assert_eq!(
        e,
        [r#"spec: Invalid value: "object": failed rule: self.replicas <= self.max"#]
    );
    let s = spec_rule(json!({"rule": "self.replicas <= self.max", "message": "too many"}));
    assert_eq!(
        run(s.clone(), json!({"spec": {"replicas": 5, "max": 3}}), None),
        [r#"spec: Invalid value: "object": too many"#]
    );
    assert!(run(s, json!({"spec": {"replicas": 1, "max": 3}}), None).is_empty());
}

#[test]
fn message_expression_reason_and_field_path() {
    let s = spec_rule(json!({"rule": "self.replicas <= self.max",
        "messageExpression": "'replicas ' + string(self.replicas) + ' over ' + string(self.max)",
        "reason": "FieldValueForbidden", "fieldPath": ".replicas"}));
    assert_eq!(
        run(s, json!({"spec": {"replicas": 5, "max": 3}}), None),
        ["spec.replicas: Forbidden: replicas 5 over 3"]
    );
}

#[test]
fn root_rules_report_at_nil() {
    let s = json!({"type": "object", "x-kubernetes-validations": [{"rule": "has(self.spec)"}]});
    assert_eq!(
        run(s, json!({"metadata": {}}), None),
        [r#"<nil>: Invalid value: "object": failed rule: has(self.spec)"#]
    );
}

#[test]
fn kubernetes_functions() {
    for (rule, ok) in [
        ("self.name.startsWith('a') && self.name.endsWith('c')", true),
        ("self.name.matches('^[a-c]+$')", true),
        ("self.name.upperAscii() == 'ABC'", true),
        ("self.name.indexOf('b') == 1", true),
        ("self.tags.isSorted()", true),
        ("self.tags.all(t, t.size() == 1)", true),
        ("self.tags.exists_one(t, t == 'x')", true),
        ("self.tags.join(',') == 'x,y'", true),
        ("'a,b'.split(',').size() == 2", true),
        (
            "[1, 2, 3].sum() == 6 && [3, 1].min() == 1 && [3, 1].max() == 3",
            true,
        ),
        ("self.tags.filter(t, t == 'y').size() == 2", false),
    ] {
        let s = spec_rule(json!({"rule": rule}));
        let e = run(
            s,
            json!({"spec": {"name": "abc", "tags": ["x", "y"]}}),
            None,
        );
        assert_eq!(e.is_empty(), ok, "{rule}: {e:?}");
    }
}

#[test]
fn transition_rules_need_an_old_value() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"name": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "is immutable"}]}}}}});
    assert!(run(s.clone(), json!({"spec": {"name": "a"}}), None).is_empty());
    assert_eq!(
        run(
            s.clone(),
            json!({"spec": {"name": "b"}}),
            Some(json!({"spec": {"name": "a"}}))
        ),
        [r#"spec.name: Invalid value: "string": is immutable"#]
    );
    // The old object had no value there: nothing to compare against.
    assert!(run(s, json!({"spec": {"name": "b"}}), Some(json!({"spec": {}}))).is_empty());
}

#[test]
fn optional_old_self() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"name": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self.name == oldSelf.value().name",
            "optionalOldSelf": true}]}}});
    assert!(run(s.clone(), json!({"spec": {"name": "a"}}), None).is_empty());
    assert_eq!(
        run(
            s,
            json!({"spec": {"name": "b"}}),
            Some(json!({"spec": {"name": "a"}}))
        )
        .len(),
        1
    );
}

#[test]
fn map_list_items_correlate_by_key() {
    let s = json!({"type": "object", "properties": {"items": {"type": "array",
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.v >= oldSelf.v"}]}}}});
    let old = json!({"items": [{"name": "a", "v": 2}, {"name": "b", "v": 1}]});
    let new =
        json!({"items": [{"name": "b", "v": 1}, {"name": "a", "v": 1}, {"name": "c", "v": 0}]});
    assert_eq!(
        run(s, new, Some(old)),
        [r#"items[1]: Invalid value: "object": failed rule: self.v >= oldSelf.v"#]
    );
}

#[test]
fn unchanged_values_ratchet() {
    let s = spec_rule(json!({"rule": "self.replicas < 3"}));
    let obj = json!({"spec": {"replicas": 5}});
    assert!(run(s.clone(), obj.clone(), Some(obj)).is_empty());
    assert_eq!(
        run(
            s,
            json!({"spec": {"replicas": 6}}),
            Some(json!({"spec": {"replicas": 5}}))
        )
        .len(),
        1
    );
}

#[test]
fn runtime_errors() {
    let s = spec_rule(json!({"rule": "self.missing == 1"}));
    let e = run(s, json!({"spec": {}}), None);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(r#"spec: Invalid value: "object": "#),
        "{e:?}"
    );
    assert!(
        e[0].ends_with("evaluating rule: self.missing == 1"),
        "{e:?}"
    );
}

#[test]
fn compile_errors_are_reported_at_the_rule() {
    let mut errs = vec![];
    Schema::parse(
        &json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a ==="}, {"rule": "true", "reason": "Bad"}]}),
        "openAPIV3Schema",
        &mut errs,
    );
    assert_eq!(errs.len(), 2);
    assert_eq!(
        errs[0].field,
        "openAPIV3Schema.x-kubernetes-validations[0].rule"
    );
    assert!(errs[0].detail.starts_with("compilation failed: "));
    assert_eq!(
        errs[1].message(),
        r#"openAPIV3Schema.x-kubernetes-validations[1].reason: Unsupported value: "Bad": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired""#
    );
}
