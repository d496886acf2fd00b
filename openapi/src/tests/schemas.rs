//! Tests: schemas.

use super::*;

#[test]
fn kinds_carry_group_version_kind() {
    let doc = v2(&registry());
    let defs = &doc["definitions"];
    assert_eq!(
        gvks(&defs["io.k8s.api.apps.v1.Deployment"]),
        vec![json!({"group": "apps", "kind": "Deployment", "version": "v1"})]
    );
    assert_eq!(
        gvks(&defs["io.k8s.api.apps.v1.DeploymentList"]),
        vec![json!({"group": "apps", "kind": "DeploymentList", "version": "v1"})]
    );
    assert_eq!(
        gvks(&defs["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]),
        vec![json!({"group": "", "kind": "Status", "version": "v1"})]
    );
    let delete_options = gvks(&defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]);
    assert!(
        delete_options.contains(&json!({"group": "", "kind": "DeleteOptions", "version": "v1"}))
    );
    assert!(
        delete_options
            .contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"}))
    );
    let watch_event = gvks(&defs["io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"]);
    assert!(
        watch_event
            .contains(&json!({"group": "autoscaling", "kind": "WatchEvent", "version": "v2"}))
    );
    // Upstream's kinds do not require metadata (k8s-openapi's Rust types do).
    assert!(
        defs["io.k8s.api.apps.v1.Deployment"]
            .get("required")
            .is_none()
    );
    assert_eq!(
        defs["io.k8s.api.apps.v1.DeploymentList"]["required"],
        json!(["items"])
    );
}

/// Calls `f` with every object in `value` that holds a `$ref` string.
fn each_ref(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref") {
                f(target);
            }
            object.values().for_each(|v| each_ref(v, f));
        }
        Value::Array(values) => values.iter().for_each(|v| each_ref(v, f)),
        _ => {}
    }
}

fn assert_refs_resolve(doc: &Value, prefix: &str, defs: &Value, name: &str) {
    let mut count = 0;
    each_ref(doc, &mut |target| {
        let definition = target
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{name}: foreign ref {target}"));
        assert!(
            defs.get(definition).is_some(),
            "{name}: dangling ref {target}"
        );
        count += 1;
    });
    assert!(
        count > 0 || name == "version" || name == "apis" || name == "api",
        "{name}: no refs at all"
    );
}

#[test]
fn every_ref_resolves() {
    let mut resources = registry();
    resources.push(crontab());
    let doc = v2(&resources);
    assert_refs_resolve(&doc, "#/definitions/", &doc["definitions"], "v2");
    for (path, doc) in all_v3(&resources) {
        assert_refs_resolve(
            &doc,
            "#/components/schemas/",
            &doc["components"]["schemas"],
            &path,
        );
    }
}

#[test]
fn int_or_string_and_scalars() {
    let doc = v2(&registry());
    let defs = &doc["definitions"];
    let int_or_string = &defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(int_or_string["type"], "string");
    assert_eq!(int_or_string["format"], "int-or-string");
    assert!(int_or_string.get("x-kubernetes-int-or-string").is_none());
    let quantity = &defs["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(quantity["type"], "string");
    assert!(quantity["description"].is_string());
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"],
        "date-time"
    );
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.runtime.RawExtension"]["type"],
        "object"
    );

    let v3 = v3_group_version(&registry(), "api/v1").expect("api/v1");
    let schemas = &v3["components"]["schemas"];
    let int_or_string = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(int_or_string["format"], "int-or-string");
    assert_eq!(
        int_or_string["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert!(int_or_string.get("type").is_none());
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"],
        json!([{"type": "string"}, {"type": "number"}])
    );
}

/// Swagger 2.0 schema keywords gnostic accepts.
const V2_SCHEMA_KEYS: &[&str] = &[
    "$ref",
    "format",
    "title",
    "description",
    "default",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "enum",
    "additionalProperties",
    "type",
    "items",
    "allOf",
    "properties",
    "readOnly",
    "example",
];

/// Checks every schema in `schema` only uses `allowed` keywords (or `x-` extensions), with a
/// single string `type`.
fn assert_schema_keywords(schema: &Value, allowed: &[&str], at: &str) {
    let Value::Object(object) = schema else {
        panic!("{at}: schema is not an object")
    };
    for (key, value) in object {
        assert!(
            key.starts_with("x-") || allowed.contains(&key.as_str()),
            "{at}: keyword {key}"
        );
        match key.as_str() {
            "type" => assert!(value.is_string(), "{at}: type {value}"),
            "properties" => {
                for (name, sub) in value.as_object().expect("properties object") {
                    assert_schema_keywords(sub, allowed, &format!("{at}.{name}"));
                }
            }
            "items" | "not" => assert_schema_keywords(value, allowed, &format!("{at}[]")),
            "additionalProperties" if value.is_object() => {
                assert_schema_keywords(value, allowed, &format!("{at}{{}}"))
            }
            "allOf" | "anyOf" | "oneOf" => {
                for sub in value.as_array().expect("schema array") {
                    assert_schema_keywords(sub, allowed, at);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn no_keywords_the_parsers_reject() {
    let mut resources = registry();
    resources.push(crontab());
    let doc = v2(&resources);
    for (name, schema) in doc["definitions"].as_object().expect("definitions") {
        assert_schema_keywords(schema, V2_SCHEMA_KEYS, name);
    }
    for (_, op) in operations(&doc).into_iter().map(|(p, _, op)| (p, op)) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            if let Some(schema) = param.get("schema") {
                assert_schema_keywords(schema, V2_SCHEMA_KEYS, "body");
            }
        }
    }
    let mut v3_keys = V2_SCHEMA_KEYS.to_vec();
    v3_keys.extend(["oneOf", "anyOf", "not", "nullable"]);
    for (path, doc) in all_v3(&resources) {
        for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
            assert_schema_keywords(schema, &v3_keys, &format!("{path}:{name}"));
            let text = schema.to_string();
            assert!(
                !text.contains("#/definitions/"),
                "{path}:{name} has a v2 ref"
            );
        }
    }
}

#[test]
fn unknown_kinds_get_a_permissive_schema() {
    let mut resources = registry();
    resources.push(crontab());
    let doc = v3_group_version(&resources, "apis/stable.example.com/v1").expect("custom group");
    let schema = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert_eq!(schema["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(
        gvks(schema),
        vec![json!({"group": "stable.example.com", "kind": "CronTab", "version": "v1"})]
    );
    assert!(doc["components"]["schemas"]["com.example.stable.v1.CronTabList"].is_object());
    let patch = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
        ["patch"];
    assert!(
        patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_none()
    );
    assert_eq!(
        patch["operationId"],
        "patchStableExampleComV1NamespacedCronTab"
    );

    // A published schema replaces the permissive one.
    let mut extra = Map::new();
    extra.insert(
        "com.example.stable.v1.CronTab".into(),
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "port": { "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}] },
                        "note": { "type": ["string", "null"] },
                    },
                },
                "metadata": { "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" },
            },
        }),
    );
    let doc = v3_group_version_with(&resources, &extra, "apis/stable.example.com/v1")
        .expect("custom group");
    let schema = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert!(schema.get("x-kubernetes-preserve-unknown-fields").is_none());
    assert_eq!(
        schema["properties"]["spec"]["properties"]["note"],
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(gvks(schema).len(), 1);
    let v2 = crate::v2_with(&resources, &extra);
    let port = &v2["definitions"]["com.example.stable.v1.CronTab"]["properties"]["spec"]["properties"]
        ["port"];
    assert_eq!(port["type"], "string");
    assert_eq!(port["format"], "int-or-string");
    assert!(port.get("anyOf").is_none());
}

#[test]
fn extension_source_adds_patch_metadata() {
    let source = |definition: &str, field: &str| -> Vec<(&'static str, Value)> {
        match (definition, field) {
            ("io.k8s.api.core.v1.PodSpec", "containers") => vec![
                ("x-kubernetes-patch-merge-key", json!("name")),
                ("x-kubernetes-patch-strategy", json!("merge")),
            ],
            _ => Vec::new(),
        }
    };
    let defs = build(Some(&source));
    let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert!(
        defs["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]
            .get("x-kubernetes-patch-strategy")
            .is_none()
    );
}

#[test]
fn definitions_cover_the_catalog() {
    let defs = definitions();
    for name in [
        "io.k8s.api.core.v1.Pod",
        "io.k8s.api.core.v1.PodList",
        "io.k8s.api.apps.v1.DeploymentList",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.version.Info",
        "io.k8s.api.authentication.v1.TokenRequest",
        "io.k8s.api.policy.v1.Eviction",
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
    ] {
        assert!(defs.contains_key(name), "{name}");
    }
    // Every canonical ref resolves within the map itself.
    for (name, schema) in defs {
        crate::dialect::for_each_reference(schema, &mut |target| {
            assert!(
                defs.contains_key(target),
                "{name} refers to missing {target}"
            );
        });
    }
}
