//! `kubectl describe`: kubectl formats it, but from what the server returns, including
//! the events it finds through field selectors.

use conformance::*;

/// Asserts that every pattern matches some line of the normalized output, in order.
#[track_caller]
fn assert_has_lines(text: &str, patterns: &[&str]) {
    let got = normalize(text);
    let mut lines = got.lines();
    for p in patterns {
        let p = normalize(p);
        assert!(
            lines.any(|l| matches(&p, l)),
            "no line {p:?} (in this order) in:\n{text}"
        );
    }
}

#[test]
fn describe_configmap() {
    let ns = Namespace::new("describe-cm");
    ns.k(&["create", "configmap", "x", "--from-literal=a=1"])
        .ok_exactly("configmap/x created");
    assert_has_lines(
        ns.k(&["describe", "configmap", "x"]).ok(),
        &[
            "Name: x",
            &format!("Namespace: {}", ns.name),
            "Labels: <none>",
            "Annotations: <none>",
            "Data",
            "====",
            "a:",
            "----",
            "1",
            "BinaryData",
            "====",
            "Events: <none>",
        ],
    );
}

#[test]
fn describe_shows_events_of_the_object() {
    let ns = Namespace::new("describe-ev");
    ns.k(&["create", "configmap", "x"])
        .ok_exactly("configmap/x created");
    let uid = ns.jsonpath(&["configmap", "x"], "{.metadata.uid}");
    let now = now_rfc3339();
    let event = ns.write(
        "event.yaml",
        &format!(
            "\
apiVersion: v1
kind: Event
metadata:
  name: x.conformance
involvedObject:
  apiVersion: v1
  kind: ConfigMap
  name: x
  namespace: {ns}
  uid: {uid}
reason: Tested
message: hello from the suite
type: Normal
count: 1
firstTimestamp: \"{now}\"
lastTimestamp: \"{now}\"
source:
  component: conformance
",
            ns = ns.name
        ),
    );
    ns.k(&["create", "-f", &event])
        .ok_exactly("event/x.conformance created");
    assert_has_lines(
        ns.k(&["describe", "configmap", "x"]).ok(),
        &[
            "Events:",
            "Type Reason Age From Message",
            "---- ------ ---- ---- -------",
            "Normal Tested {age} conformance hello from the suite",
        ],
    );
    assert_table(
        ns.k(&["get", "events", "--field-selector", "involvedObject.name=x"])
            .ok(),
        &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        &[&[
            "{age}",
            "Normal",
            "Tested",
            "configmap/x",
            "hello from the suite",
        ]],
    );
    ns.k(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=y",
        "-o",
        "name",
    ])
    .ok_exactly("");
}

#[test]
fn describe_deployment() {
    let ns = Namespace::new("describe-deploy");
    ns.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ])
    .ok_exactly("deployment.apps/web created");
    assert_has_lines(
        ns.k(&["describe", "deployment", "web"]).ok(),
        &[
            "Name: web",
            &format!("Namespace: {}", ns.name),
            "CreationTimestamp: {any}",
            "Labels: app=web",
            "Annotations: <none>",
            "Selector: app=web",
            "Replicas: 2 desired | 0 updated | 0 total | 0 available | 0 unavailable",
            "StrategyType: RollingUpdate",
            "MinReadySeconds: 0",
            "RollingUpdateStrategy: 25% max unavailable, 25% max surge",
            "Pod Template:",
            "Labels: app=web",
            "Containers:",
            "nginx:",
            "Image: nginx:1.25",
            "Events: <none>",
        ],
    );
}

#[test]
fn describe_namespace_and_service() {
    let ns = Namespace::new("describe-ns");
    assert_has_lines(
        ns.kubectl(&["describe", "namespace", &ns.name]).ok(),
        &[
            &format!("Name: {}", ns.name),
            &format!("Labels: kubernetes.io/metadata.name={}", ns.name),
            "Annotations: <none>",
            "Status: Active",
            "No resource quota.",
            "No LimitRange resource.",
        ],
    );
    ns.k(&["create", "service", "clusterip", "s", "--tcp=80:8080"])
        .ok_exactly("service/s created");
    assert_has_lines(
        ns.k(&["describe", "service", "s"]).ok(),
        &[
            "Name: s",
            &format!("Namespace: {}", ns.name),
            "Labels: app=s",
            "Selector: app=s",
            "Type: ClusterIP",
            "IP Family Policy: SingleStack",
            "IP Families: IPv4",
            "IP: 10.0.0.{int}",
            "IPs: 10.0.0.{int}",
            "Port: 80-8080 80/TCP",
            "TargetPort: 8080/TCP",
            "Session Affinity: None",
            "Events: <none>",
        ],
    );
}

#[test]
fn describe_pod() {
    let ns = Namespace::new("describe-pod");
    ns.default_serviceaccount();
    let pod = ns.write(
        "pod.yaml",
        "\
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: p}}
spec:
  containers: [{name: main, image: busybox}]
",
    );
    ns.k(&["create", "-f", &pod]).ok_exactly("pod/p created");
    assert_has_lines(
        ns.k(&["describe", "pod", "p"]).ok(),
        &[
            "Name: p",
            &format!("Namespace: {}", ns.name),
            "Priority: 0",
            "Service Account: default",
            "Node: <none>",
            "Labels: app=p",
            "Status: Pending",
            "Containers:",
            "main:",
            "Image: busybox",
            "QoS Class: BestEffort",
            "Node-Selectors: <none>",
            "Tolerations: node.kubernetes.io/not-ready:NoExecute op=Exists for 300s",
            "node.kubernetes.io/unreachable:NoExecute op=Exists for 300s",
            "Events: <none>",
        ],
    );
}
