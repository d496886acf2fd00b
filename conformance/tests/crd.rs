//! CustomResourceDefinitions driven with kubectl: a CRD with a schema and CEL rules,
//! valid and invalid objects, printer columns, `explain`, server-side apply, and deleting
//! the CRD with its objects.

use std::time::Duration;

use conformance::*;

/// A CRD in its own group (no clash with earlier runs against the same cluster). Tests
/// that run at the same time use different kinds, so that kubectl's short names and
/// plurals resolve to one group.
fn crd_yaml(group: &str, plural: &str, kind: &str, short: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    plural: {plural}
    kind: {kind}
    shortNames: [{short}]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {{}}
    selectableFields:
    - jsonPath: .spec.size
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        description: CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            description: What to run and when.
            required: [cronSpec]
            x-kubernetes-validations:
            - rule: "self.replicas <= self.maxReplicas"
              message: replicas must not exceed maxReplicas
            properties:
              cronSpec:
                type: string
                description: The schedule, in cron format.
                pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){{4}}$'
              image:
                type: string
              size:
                type: string
                enum: [small, large]
                default: small
              replicas:
                type: integer
                minimum: 1
                default: 1
              maxReplicas:
                type: integer
                default: 10
          status:
            type: object
            properties:
              ready:
                type: boolean
"#
    )
}

fn object(group: &str, kind: &str, name: &str, spec: &str) -> String {
    format!("apiVersion: {group}/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

fn crontab(group: &str, name: &str, spec: &str) -> String {
    object(group, "CronTab", name, spec)
}

fn backup(group: &str, name: &str, spec: &str) -> String {
    object(group, "Backup", name, spec)
}

/// Creates the CRD and waits until it is established; returns its group.
fn install(ns: &mut Namespace, plural: &str, kind: &str, short: &str) -> String {
    let group = format!("{}.example.com", unique_name("crd"));
    let crd = format!("{plural}.{group}");
    let f = ns.write("crd.yaml", &crd_yaml(&group, plural, kind, short));
    ns.kubectl(&["apply", "-f", &f]).ok_exactly(&format!(
        "customresourcedefinition.apiextensions.k8s.io/{crd} created"
    ));
    ns.cleanup_cluster_object(&format!("crd/{crd}"));
    ns.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        &format!("crd/{crd}"),
    ])
    .ok_exactly(&format!(
        "customresourcedefinition.apiextensions.k8s.io/{crd} condition met"
    ));
    group
}

#[test]
fn schema_defaults_validation_and_printer_columns() {
    let mut ns = Namespace::new("crd-schema");
    let group = install(&mut ns, "crontabs", "CronTab", "ct");
    let good = ns.write(
        "good.yaml",
        &crontab(
            &group,
            "good",
            "  cronSpec: '*/5 * * * *'\n  image: busybox\n  replicas: 2\n",
        ),
    );
    ns.k(&["apply", "-f", &good])
        .ok_exactly(&format!("crontab.{group}/good created"));
    // defaults from the schema
    let obj = ns.get_json(&["crontab", "good"]);
    assert_eq!(obj["spec"]["size"], "small");
    assert_eq!(obj["spec"]["maxReplicas"], 10);
    assert_eq!(obj["metadata"]["generation"], 1);
    // the printer columns, by plural, short name and kind.group
    for what in ["crontabs", "ct", &format!("crontab.{group}")] {
        assert_table(
            ns.k(&["get", what]).ok(),
            &["NAME", "SPEC", "REPLICAS", "AGE"],
            &[&["good", "*/5 * * * *", "2", "{age}"]],
        );
    }

    // selectableFields serve field selectors; other fields are refused
    ns.k(&[
        "get",
        "crontabs",
        "--field-selector",
        "spec.size=small",
        "-o",
        "name",
    ])
    .ok_exactly(&format!("crontab.{group}/good"));
    let none = ns.k(&["get", "crontabs", "--field-selector", "spec.size=large"]);
    assert_eq!(none.ok(), "");
    ns.k(&["get", "crontabs", "--field-selector", "spec.image=busybox"])
        .fails_with("field label not supported: spec.image");

    // wrong type, enum, minimum, pattern, required and a CEL rule, each with upstream's
    // message; a type, enum or required error keeps the CEL rules from running
    const UNCHECKED: &str = "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";
    let cases: [(&str, &[&str]); 6] = [
        (
            "  cronSpec: '* * * * *'\n  replicas: two\n",
            &[
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
                UNCHECKED,
            ],
        ),
        (
            "  cronSpec: '* * * * *'\n  size: huge\n",
            &[
                "spec.size: Unsupported value: \"huge\": supported values: \"small\", \"large\"",
                UNCHECKED,
            ],
        ),
        (
            "  cronSpec: '* * * * *'\n  replicas: 0\n",
            &[
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            ],
        ),
        (
            "  cronSpec: 'every minute'\n",
            &[
                r#"spec.cronSpec: Invalid value: "every minute": spec.cronSpec in body should match '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'"#,
            ],
        ),
        (
            "  image: busybox\n",
            &["spec.cronSpec: Required value", UNCHECKED],
        ),
        (
            "  cronSpec: '* * * * *'\n  replicas: 5\n  maxReplicas: 3\n",
            &["spec: Invalid value: \"object\": replicas must not exceed maxReplicas"],
        ),
    ];
    for (spec, errors) in cases {
        let f = ns.write("bad.yaml", &crontab(&group, "bad", spec));
        let want = match errors {
            [one] => format!("The CronTab \"bad\" is invalid: {one}"),
            many => format!("The CronTab \"bad\" is invalid: \n* {}", many.join("\n* ")),
        };
        ns.k(&["apply", "-f", &f]).fails_exactly(&want);
    }
    ns.assert_not_found(&format!("crontabs.{group}"), "bad");

    // kubectl asks for strict field validation: unknown fields are refused by name
    let f = ns.write(
        "unknown.yaml",
        &crontab(
            &group,
            "unknown",
            "  cronSpec: '* * * * *'\n  colour: blue\n",
        ),
    );
    ns.k(&["apply", "-f", &f]).fails_exactly(
        "Error from server (BadRequest): error when creating \"unknown.yaml\": CronTab in version \"v1\" cannot be handled as a CronTab: strict decoding error: unknown field \"spec.colour\""
    );
    // with validation off, the field is pruned instead
    ns.k(&["apply", "-f", &f, "--validate=false"])
        .ok_exactly(&format!("crontab.{group}/unknown created"));
    let obj = ns.get_json(&["crontab", "unknown"]);
    assert!(obj["spec"].get("colour").is_none(), "{obj}");

    // a transition through CEL on update: an invalid change is refused, the object stays
    ns.k(&[
        "patch",
        "crontab",
        "good",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":20}}"#,
    ])
    .fails_with("replicas must not exceed maxReplicas");
    assert_eq!(ns.get_json(&["crontab", "good"])["spec"]["replicas"], 2);
    // strategic merge patch is refused for custom resources, as upstream
    ns.k(&["patch", "crontab", "good", "--type=strategic", "-p", r#"{"spec":{"replicas":3}}"#])
        .fails_exactly(&format!("error: application/strategic-merge-patch+json is not supported by {group}/v1, Kind=CronTab: the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"));
    // updates of the spec bump generation; status goes through its subresource only
    ns.k(&[
        "patch",
        "crontab",
        "good",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ])
    .ok_exactly(&format!("crontab.{group}/good patched"));
    assert_eq!(
        ns.get_json(&["crontab", "good"])["metadata"]["generation"],
        2
    );
    ns.k(&[
        "patch",
        "crontab",
        "good",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ])
    .ok_exactly(&format!("crontab.{group}/good patched"));
    let obj = ns.get_json(&["crontab", "good"]);
    assert_eq!(obj["status"]["ready"], true);
    assert_eq!(obj["metadata"]["generation"], 2);
}

#[test]
fn explain_server_side_apply_and_delete_with_objects() {
    let mut ns = Namespace::new("crd-ssa");
    let group = install(&mut ns, "backups", "Backup", "bk");
    // explain reads the schema from the OpenAPI documents
    let out = ns.k(&[
        "explain",
        "backups.spec",
        &format!("--api-version={group}/v1"),
    ]);
    let text = out.ok();
    assert!(text.contains("KIND:       Backup"), "{text}");
    assert!(text.contains(&format!("GROUP:      {group}")), "{text}");
    assert!(text.contains("What to run and when."), "{text}");
    assert!(text.contains("cronSpec\t<string> -required-"), "{text}");

    let f = ns.write(
        "ssa.yaml",
        &backup(&group, "ssa", "  cronSpec: '0 * * * *'\n  replicas: 3\n"),
    );
    ns.k(&["apply", "--server-side", "-f", &f])
        .ok_exactly(&format!("backup.{group}/ssa serverside-applied"));
    ns.k(&["apply", "--server-side", "-f", &f])
        .ok_exactly(&format!("backup.{group}/ssa serverside-applied"));
    let obj = ns.get_json(&["backup", "ssa", "--show-managed-fields"]);
    assert_eq!(obj["spec"]["replicas"], 3);
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, vec!["kubectl"], "{obj}");
    // a second manager that changes a field the first owns conflicts
    let g = ns.write(
        "ssa2.yaml",
        &backup(&group, "ssa", "  cronSpec: '0 * * * *'\n  replicas: 4\n"),
    );
    ns.k(&["apply", "--server-side", "--field-manager=other", "-f", &g])
        .fails_with("conflict with \"kubectl\"");

    // the CRD goes, and its objects with it
    let crd = format!("backups.{group}");
    ns.kubectl(&["delete", "crd", &crd]).ok_exactly(&deleted(
        "customresourcedefinition.apiextensions.k8s.io",
        &crd,
        None,
        "",
    ));
    ns.kubectl(&["get", "crd", &crd]).fails_exactly(&format!(
        "Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io \"{crd}\" not found"
    ));
    // its objects went with it: the resource is no longer served (what kubectl says
    // depends on whether its discovery cache has caught up)
    let out = ns.k(&["get", &crd, "ssa"]);
    let err = out.fails();
    assert!(
        err.contains("the server doesn't have a resource type \"backups\"")
            || err.contains("the server could not find the requested resource"),
        "{out}"
    );
    // a CRD of the same name serves again, with no objects left from before
    let f = ns.write("crd.yaml", &crd_yaml(&group, "backups", "Backup", "bk"));
    ns.kubectl(&["apply", "-f", &f]).ok_exactly(&format!(
        "customresourcedefinition.apiextensions.k8s.io/{crd} created"
    ));
    ns.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        &format!("crd/{crd}"),
    ])
    .ok();
    ns.eventually(
        "the resource to serve again",
        Duration::from_secs(20),
        || ns.k(&["get", &crd]).status.success(),
    );
    let out = ns.k(&["get", &crd]);
    assert_eq!(out.ok(), "");
    assert_eq!(
        out.stderr,
        format!("No resources found in {} namespace.\n", ns.name)
    );
}

/// A CRD served at v1 (storage: `spec.cronSpec`) and v2 (`spec.schedule`), converted by
/// a webhook this test runs.
fn two_version_crd(group: &str, url: &str, ca_bundle: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: timers.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: timers, kind: Timer}}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1]
      clientConfig:
        url: {url}
        caBundle: {ca_bundle}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {{name: Spec, type: string, jsonPath: .spec.cronSpec}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {{type: string}}
  - name: v2
    served: true
    storage: false
    additionalPrinterColumns:
    - {{name: Schedule, type: string, jsonPath: .spec.schedule}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              schedule: {{type: string}}
"#
    )
}

/// The converter: renames `spec.cronSpec` (v1) to `spec.schedule` (v2) and back.
fn convert(review: serde_json::Value) -> serde_json::Value {
    let desired = review["request"]["desiredAPIVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let objects = review["request"]["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let converted: Vec<serde_json::Value> = objects
        .into_iter()
        .map(|mut o| {
            let spec = o["spec"]
                .as_object_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            let value = spec
                .get("cronSpec")
                .or_else(|| spec.get("schedule"))
                .cloned();
            let field = if desired.ends_with("/v2") {
                "schedule"
            } else {
                "cronSpec"
            };
            o["spec"] = serde_json::json!({});
            if let Some(v) = value {
                o["spec"][field] = v;
            }
            o["apiVersion"] = serde_json::json!(desired);
            o
        })
        .collect();
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {
            "uid": review["request"]["uid"],
            "convertedObjects": converted,
            "result": {"status": "Success"},
        },
    })
}

#[test]
fn two_versions_round_trip_through_a_conversion_webhook() {
    use testenv::webhook_server::{handler, pki, serve};
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pki = pki();
    let addr = runtime.block_on(serve(
        &pki,
        handler(|_, review| async move { (200, convert(review)) }),
    ));
    let mut ns = Namespace::new("crd-convert");
    let group = format!("{}.example.com", unique_name("conv"));
    let crd = format!("timers.{group}");
    let url = format!("https://127.0.0.1:{}/convert", addr.port());
    let f = ns.write("crd.yaml", &two_version_crd(&group, &url, &pki.ca_bundle));
    ns.kubectl(&["apply", "-f", &f]).ok_exactly(&format!(
        "customresourcedefinition.apiextensions.k8s.io/{crd} created"
    ));
    ns.cleanup_cluster_object(&format!("crd/{crd}"));
    ns.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        &format!("crd/{crd}"),
    ])
    .ok();

    // written at v2, stored at v1, read back at both
    let v2 = format!(
        "apiVersion: {group}/v2\nkind: Timer\nmetadata:\n  name: t\nspec:\n  schedule: '*/5 * * * *'\n"
    );
    let f = ns.write("t.yaml", &v2);
    ns.k(&["apply", "-f", &f])
        .ok_exactly(&format!("timer.{group}/t created"));
    let at_v1 = ns.get_json(&[&format!("timers.v1.{group}"), "t"]);
    assert_eq!(at_v1["apiVersion"], format!("{group}/v1"));
    assert_eq!(at_v1["spec"]["cronSpec"], "*/5 * * * *", "{at_v1}");
    let at_v2 = ns.get_json(&[&format!("timers.v2.{group}"), "t"]);
    assert_eq!(at_v2["apiVersion"], format!("{group}/v2"));
    assert_eq!(
        at_v2["spec"],
        serde_json::json!({"schedule": "*/5 * * * *"}),
        "{at_v2}"
    );
    // lists and tables convert too
    assert_table(
        ns.k(&["get", &format!("timers.v2.{group}")]).ok(),
        &["NAME", "SCHEDULE"],
        &[&["t", "*/5 * * * *"]],
    );
    assert_table(
        ns.k(&["get", &format!("timers.v1.{group}")]).ok(),
        &["NAME", "SPEC"],
        &[&["t", "*/5 * * * *"]],
    );
    // an update at v1 shows at v2
    ns.k(&[
        "patch",
        &format!("timers.v1.{group}"),
        "t",
        "--type=merge",
        "-p",
        r#"{"spec":{"cronSpec":"0 * * * *"}}"#,
    ])
    .ok_exactly(&format!("timer.{group}/t patched"));
    assert_eq!(
        ns.jsonpath(&[&format!("timers.v2.{group}"), "t"], "{.spec.schedule}"),
        "0 * * * *"
    );
    drop(runtime);
}
