use super::*;

fn valid() -> Value {
    json!({"metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "listKind": "CronTabList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                    "properties": {"replicas": {"type": "integer", "default": 1}}}}}}}],
            "conversion": {"strategy": "None"}},
        "status": {"storedVersions": ["v1"]}})
}

fn msgs(crd: &Value) -> Vec<String> {
    validate_crd(crd).iter().map(FieldError::message).collect()
}

#[test]
fn a_valid_crd_passes() {
    assert_eq!(msgs(&valid()), Vec::<String>::new());
}

// Upstream validation.go: the name rule, group, scope and names.
#[test]
fn names_group_and_scope() {
    let mut crd = valid();
    crd["metadata"]["name"] = json!("x.stable.example.com");
    crd["spec"]["scope"] = json!("World");
    crd["spec"]["names"]["kind"] = json!("Cron_Tab");
    assert_eq!(
        msgs(&crd),
        [
            r#"metadata.name: Invalid value: "x.stable.example.com": must be spec.names.plural+"."+spec.group"#,
            r#"spec.scope: Unsupported value: "World": supported values: "Cluster", "Namespaced""#,
            r#"spec.names.kind: Invalid value: "Cron_Tab": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
        ]
    );
    let mut crd = valid();
    crd["spec"]["group"] = json!("example");
    crd["metadata"]["name"] = json!("crontabs.example");
    assert_eq!(
        msgs(&crd),
        [r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#]
    );
}

#[test]
fn versions_and_storage() {
    let mut crd = valid();
    crd["spec"]["versions"][0]["storage"] = json!(false);
    let e = msgs(&crd);
    assert!(
        e.iter()
            .any(|m| m.starts_with("spec.versions: Invalid value: ")
                && m.ends_with(": must have exactly one version marked as storage version")),
        "{e:?}"
    );
    let mut crd = valid();
    crd["spec"]["versions"] = json!([]);
    assert!(msgs(&crd).contains(&"spec.versions: Required value: must have exactly one version marked as storage version".to_string()));
    let mut crd = valid();
    crd["spec"]["versions"][0]["schema"] = json!({});
    assert_eq!(
        msgs(&crd),
        ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
    );
}

#[test]
fn schemas_must_be_structural_with_valid_defaults() {
    let mut crd = valid();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] =
        json!({"properties": {}});
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]
        ["default"] = json!("one");
    assert_eq!(
        msgs(&crd),
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
            r#"spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: "string": spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default in body must be of type integer: "string""#,
        ]
    );
}

#[test]
fn columns_and_conversion() {
    let mut crd = valid();
    crd["spec"]["versions"][0]["additionalPrinterColumns"] =
        json!([{"name": "A", "type": "text", "jsonPath": "spec.a"}]);
    crd["spec"]["conversion"] =
        json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2"]}});
    assert_eq!(
        msgs(&crd),
        [
            r#"spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "text": supported values: "boolean", "date", "integer", "number", "string""#,
            r#"spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: "spec.a": must be a simple json path starting with ."#,
            "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
            r#"spec.conversion.conversionReviewVersions: Invalid value: "v2": must include at least one of v1, v1beta1"#,
        ]
    );
}

#[test]
fn stored_versions_and_updates() {
    let mut crd = valid();
    crd["status"]["storedVersions"] = json!(["v0"]);
    let e = msgs(&crd);
    assert!(
        e.iter()
            .any(|m| m.ends_with("must have the storage version v1")),
        "{e:?}"
    );
    assert!(
        e.contains(
            &r#"status.storedVersions[0]: Invalid value: "v0": must appear in spec.versions"#
                .to_string()
        )
    );

    let mut old = valid();
    old["status"]["conditions"] = json!([{"type": "Established", "status": "True"}]);
    let mut new = valid();
    new["spec"]["scope"] = json!("Cluster");
    let e: Vec<String> = validate_crd_update(&new, &old)
        .iter()
        .map(FieldError::message)
        .collect();
    assert_eq!(
        e,
        [r#"spec.scope: Invalid value: "Cluster": field is immutable"#]
    );
}

#[test]
fn selectable_fields_point_at_scalars() {
    let mut crd = valid();
    crd["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.replicas"}, {"jsonPath": ".spec"}, {"jsonPath": ".spec.replicas"}]);
    assert_eq!(
        msgs(&crd),
        [
            r#"spec.versions[0].selectableFields[1].jsonPath: Invalid value: ".spec": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."#,
            r#"spec.versions[0].selectableFields[2].jsonPath: Duplicate value: ".spec.replicas""#,
        ]
    );
}
