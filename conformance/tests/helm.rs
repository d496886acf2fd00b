//! helm 4 against the cluster: a chart that ships a CRD (in `crds/`) and a custom
//! resource of it, installed, upgraded and uninstalled.

use conformance::*;

const CHART: &str = "apiVersion: v2\nname: widgets\nversion: 0.1.0\n";
const VALUES: &str = "size: 3\n";
const TEMPLATES: &str = r#"apiVersion: {{ .Values.group }}/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
spec:
  size: {{ .Values.size }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  size: "{{ .Values.size }}"
"#;

fn crd(group: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer, minimum: 1}}
"#
    )
}

#[test]
fn helm_install_upgrade_uninstall_a_chart_with_a_crd() {
    let mut ns = Namespace::new("helm");
    let group = format!("{}.example.com", unique_name("helm"));
    ns.cleanup_cluster_object(&format!("crd/widgets.{group}"));
    ns.write("chart/Chart.yaml", CHART);
    ns.write("chart/values.yaml", &format!("{VALUES}group: {group}\n"));
    ns.write("chart/crds/widgets.yaml", &crd(&group));
    ns.write("chart/templates/widget.yaml", TEMPLATES);
    let helm = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-n", ns.name.as_str()]);
        ns.cluster().helm(&all, ns.dir())
    };

    let out = helm(&["install", "rel", "./chart"]);
    let text = out.ok();
    assert!(text.contains("STATUS: deployed"), "{out}");
    assert!(text.contains("REVISION: 1"), "{out}");
    let widgets = format!("widgets.{group}");
    assert_table(
        ns.k(&["get", &widgets]).ok(),
        &["NAME", "SIZE"],
        &[&["rel-widget", "3"]],
    );
    assert_eq!(
        ns.jsonpath(&["configmap", "rel-config"], "{.data.size}"),
        "3"
    );

    let out = helm(&["upgrade", "rel", "./chart", "--set", "size=5"]);
    let text = out.ok();
    assert!(text.contains("Release \"rel\" has been upgraded."), "{out}");
    assert!(text.contains("REVISION: 2"), "{out}");
    assert_table(
        ns.k(&["get", &widgets]).ok(),
        &["NAME", "SIZE"],
        &[&["rel-widget", "5"]],
    );
    // an invalid value is refused by the CRD's schema and the release stays at 2
    let out = helm(&["upgrade", "rel", "./chart", "--set", "size=0"]);
    let err = out.fails();
    assert!(
        err.contains(
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
        ),
        "{out}"
    );
    assert_table(
        ns.k(&["get", &widgets]).ok(),
        &["NAME", "SIZE"],
        &[&["rel-widget", "5"]],
    );

    // the refused upgrade is recorded as a failed revision 3, as helm does
    let out = helm(&["list"]);
    let rows: Vec<Vec<&str>> = out
        .ok()
        .lines()
        .map(|l| l.split('\t').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(
        rows[0][..5],
        ["NAME", "NAMESPACE", "REVISION", "UPDATED", "STATUS"],
        "{out}"
    );
    assert_eq!(
        [rows[1][0], rows[1][2], rows[1][4]],
        ["rel", "3", "failed"],
        "{out}"
    );

    helm(&["uninstall", "rel"]).ok_exactly("release \"rel\" uninstalled");
    let out = ns.k(&["get", &widgets]);
    assert_eq!(out.ok(), "");
    // helm leaves CRDs from crds/ in place, as documented
    ns.kubectl(&["get", "crd", &widgets, "-o", "name"])
        .ok_exactly(&format!(
            "customresourcedefinition.apiextensions.k8s.io/{widgets}"
        ));
}
