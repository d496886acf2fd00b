//! Bad input: each case checks upstream's error text, as kubectl prints it, and that
//! nothing in storage changed.

use conformance::*;

const WATCHED: &str = "configmaps,secrets,deployments";

/// Runs `bad` and checks nothing changed in the namespace.
fn unchanged(ns: &Namespace, bad: impl FnOnce()) {
    let before = ns.snapshot(WATCHED);
    bad();
    assert_eq!(
        ns.snapshot(WATCHED),
        before,
        "a rejected request changed storage"
    );
}

fn with_existing(prefix: &str) -> Namespace {
    let ns = Namespace::new(prefix);
    ns.k(&["create", "configmap", "x", "--from-literal=a=1"])
        .ok_exactly("configmap/x created");
    ns
}

#[test]
fn malformed_json_and_yaml_files() {
    let ns = with_existing("bad-syntax");
    let json = ns.write(
        "bad.json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y""#,
    );
    let yaml = ns.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [y\n",
    );
    unchanged(&ns, || {
        ns.k(&["create", "-f", &json])
            .fails_with("error: error parsing bad.json: ");
        ns.k(&["apply", "-f", &yaml])
            .fails_with("error: error parsing bad.yaml: ");
    });
}

#[test]
fn malformed_json_body_reaches_the_server() {
    let ns = with_existing("bad-body");
    let json = ns.write(
        "bad.json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y""#,
    );
    let path = format!("/api/v1/namespaces/{}/configmaps", ns.name);
    unchanged(&ns, || {
        let out = ns.kubectl(&["create", "--raw", &path, "-f", &json]);
        out.fails_with(
            "Error from server (BadRequest): the object provided is unrecognized (must be of type ConfigMap): \
             couldn't get version/kind; json parse error: ",
        );
    });
}

#[test]
fn wrong_kind_and_api_version() {
    let ns = with_existing("bad-kind");
    let kind = ns.write(
        "kind.yaml",
        "apiVersion: v1\nkind: ConfigMapp\nmetadata:\n  name: yy\n",
    );
    let version = ns.write(
        "version.yaml",
        "apiVersion: apps/v9\nkind: Deployment\nmetadata:\n  name: yy\n",
    );
    unchanged(&ns, || {
        let out = ns.k(&["create", "-f", &kind]);
        assert!(out.fails().starts_with("error: resource mapping not found for name: \"yy\" namespace: \"\" from \"kind.yaml\": "), "{out}");
        out.fails_with("no matches for kind \"ConfigMapp\" in version \"v1\"");
        ns.k(&["apply", "-f", &version])
            .fails_with("no matches for kind \"Deployment\" in version \"apps/v9\"");
    });
}

#[test]
fn missing_and_invalid_names() {
    let ns = with_existing("bad-name");
    let nameless = ns.write(
        "nameless.yaml",
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: '1'\n",
    );
    unchanged(&ns, || {
        ns.k(&["create", "-f", &nameless])
            .fails_exactly("The ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required");
        ns.k(&["create", "configmap", "Bad_Name"]).fails_exactly(
            "error: failed to create configmap: ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": \
             a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and \
             end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        );
        ns.kubectl(&["create", "configmap", "y", "-n", "conformance-no-such-namespace"])
            .fails_exactly("error: failed to create configmap: namespaces \"conformance-no-such-namespace\" not found");
    });
}

#[test]
fn invalid_label_value() {
    let ns = with_existing("bad-label");
    let f = ns.write(
        "label.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yy\n  labels:\n    tier: -bad-\n",
    );
    unchanged(&ns, || {
        let out = ns.k(&["create", "-f", &f]);
        assert_eq!(
            normalize(out.fails()),
            normalize(
                "The ConfigMap \"yy\" is invalid: metadata.labels: Invalid value: \"-bad-\": a valid label must be an empty \
                 string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
                 character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
                 '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ),
            "{out}"
        );
    });
}

#[test]
fn invalid_spec_values() {
    let ns = with_existing("bad-spec");
    let f = ns.write(
        "deploy.yaml",
        "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: -1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx}]
",
    );
    unchanged(&ns, || {
        ns.k(&["create", "-f", &f])
            .fails_exactly("The Deployment \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
    });
}

#[test]
fn request_body_too_large() {
    let ns = with_existing("bad-large");
    // Over the 3 MiB request limit: refused before it is even decoded.
    let big = "x".repeat(3 * 1024 * 1024 + 1024);
    let f = ns.write(
        "big.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: {big}\n"),
    );
    // Over the 1 MiB ConfigMap limit but under the request limit: invalid.
    let medium = "x".repeat(1024 * 1024 + 1);
    let g = ns.write(
        "medium.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: medium\ndata:\n  blob: {medium}\n"
        ),
    );
    unchanged(&ns, || {
        ns.k(&["create", "-f", &f]).fails_exactly(
            "Error from server (RequestEntityTooLarge): error when creating \"big.yaml\": Request entity too large: limit is 3145728",
        );
        ns.k(&["create", "-f", &g]).fails_exactly(
            "The ConfigMap \"medium\" is invalid: []: Too long: must have at most 1048576 bytes",
        );
    });
}

#[test]
fn unknown_fields_by_validation_mode() {
    let ns = with_existing("bad-field");
    let f = ns.write(
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yy\nfoo: bar\ndata:\n  a: '1'\n",
    );
    unchanged(&ns, || {
        ns.k(&["create", "-f", &f, "--validate=strict"]).fails_exactly(
            "Error from server (BadRequest): error when creating \"x.yaml\": ConfigMap in version \"v1\" cannot be handled as a \
             ConfigMap: strict decoding error: unknown field \"foo\"",
        );
        // The default is strict too.
        ns.k(&["create", "-f", &f])
            .fails_with("strict decoding error: unknown field \"foo\"");
    });
    let out = ns.k(&["create", "-f", &f, "--validate=warn"]);
    out.ok_exactly("configmap/yy created");
    assert!(
        out.stderr.contains("Warning: unknown field \"foo\""),
        "{out}"
    );
    let g = ns.write(
        "z.yaml",
        &std::fs::read_to_string(ns.dir().join(&f))
            .unwrap()
            .replace("name: yy", "name: z"),
    );
    let out = ns.k(&["create", "-f", &g, "--validate=false"]);
    out.ok_exactly("configmap/z created");
    assert_eq!(out.stderr, "");
    assert_eq!(ns.jsonpath(&["configmap", "z"], "{.foo}"), "");
}

#[test]
fn stale_resource_version_is_a_conflict() {
    let ns = with_existing("bad-stale");
    let old = ns
        .k(&["get", "configmap", "x", "-o", "yaml"])
        .ok()
        .replace("a: \"1\"", "a: mine");
    let f = ns.write("x.yaml", &old);
    ns.k(&[
        "patch",
        "configmap",
        "x",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"theirs"}}"#,
    ])
    .ok_exactly("configmap/x patched");
    unchanged(&ns, || {
        ns.k(&["replace", "-f", &f]).fails_exactly(
            "Error from server (Conflict): error when replacing \"x.yaml\": Operation cannot be fulfilled on configmaps \"x\": \
             the object has been modified; please apply your changes to the latest version and try again",
        );
    });
    assert_eq!(ns.jsonpath(&["configmap", "x"], "{.data.a}"), "theirs");
}

#[test]
fn immutable_configmap_refuses_changes() {
    let ns = Namespace::new("bad-immutable");
    let f = ns.write(
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nimmutable: true\ndata:\n  a: '1'\n",
    );
    ns.k(&["create", "-f", &f])
        .ok_exactly("configmap/x created");
    unchanged(&ns, || {
        ns.k(&["patch", "configmap", "x", "--type=merge", "-p", r#"{"data":{"a":"2"}}"#])
            .fails_exactly("The ConfigMap \"x\" is invalid: data: Forbidden: field is immutable when `immutable` is set");
    });
}

#[test]
fn unknown_resource_and_object() {
    let ns = with_existing("bad-resource");
    unchanged(&ns, || {
        ns.k(&["get", "foos"])
            .fails_exactly("error: the server doesn't have a resource type \"foos\"");
        ns.k(&["delete", "configmap", "nope"])
            .fails_exactly("Error from server (NotFound): configmaps \"nope\" not found");
        ns.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{}/configmaps/nope", ns.name),
        ])
        .fails_exactly("Error from server (NotFound): configmaps \"nope\" not found");
        ns.k(&["patch", "configmap", "x", "--type=merge", "-p", "{not json"])
            .fails();
    });
}
