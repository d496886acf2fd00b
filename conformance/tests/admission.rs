//! Built-in admission as a kubectl user meets it: PodSecurity levels from namespace
//! labels (enforce refuses, warn warns, bad labels are refused) and LimitRanger
//! defaults and bounds, with upstream's messages.

use conformance::*;

const NGINX_RESTRICTED: &str = "allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

#[test]
fn pod_security_levels_from_namespace_labels() {
    let ns = Namespace::new("psa");
    ns.default_serviceaccount();
    let label = |kv: &str| ns.k(&["label", "namespace", &ns.name, kv, "--overwrite"]);

    // a bad level is refused, and changes nothing
    label("pod-security.kubernetes.io/enforce=strict").fails_with(
        "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted",
    );

    // warn: the pod is created, with upstream's warning
    label("pod-security.kubernetes.io/warn=restricted").ok();
    let out = ns.k(&["run", "nginx", "--image=nginx"]);
    assert_eq!(out.ok().trim(), "pod/nginx created");
    assert!(
        out.stderr.contains(&format!(
            "Warning: would violate PodSecurity \"restricted:latest\": {NGINX_RESTRICTED}"
        )),
        "{out}"
    );

    // enforce on a namespace with a violating pod: the label is set, with a warning
    let out = label("pod-security.kubernetes.io/enforce=restricted");
    assert!(
        out.stderr.contains(&format!(
            "Warning: existing pods in namespace \"{}\" violate the new PodSecurity enforce level \"restricted:latest\"",
            ns.name
        )),
        "{out}"
    );

    // enforce: the pod is refused
    ns.k(&["run", "nginx2", "--image=nginx", "--overrides", r#"{"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}"#])
        .fails_exactly(&format!(
            "Error from server (Forbidden): pods \"nginx2\" is forbidden: violates PodSecurity \"restricted:latest\": {NGINX_RESTRICTED}"
        ));
    ns.assert_not_found("pods", "nginx2");

    // a pod that meets restricted is admitted
    let compliant = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ok"},"spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"c","image":"nginx","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}"#;
    ns.k_stdin(&["create", "-f", "-"], compliant)
        .ok_exactly("pod/ok created");

    // workloads are only warned about
    let out = ns.k(&["create", "deployment", "web", "--image=nginx"]);
    assert_eq!(out.ok().trim(), "deployment.apps/web created");
    assert!(
        out.stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\""),
        "{out}"
    );
}

#[test]
fn limit_ranges_default_and_bound_container_resources() {
    let ns = Namespace::new("limits");
    ns.default_serviceaccount();
    let lr = r#"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"cpu"},"spec":{"limits":[{"type":"Container","default":{"cpu":"500m"},"defaultRequest":{"cpu":"100m"},"max":{"cpu":"1"}}]}}"#;
    ns.k_stdin(&["create", "-f", "-"], lr)
        .ok_exactly("limitrange/cpu created");
    ns.k(&["run", "small", "--image=nginx"])
        .ok_exactly("pod/small created");
    ns.k(&[
        "get",
        "pod",
        "small",
        "-o",
        "jsonpath={.spec.containers[0].resources}",
    ])
    .ok_exactly(r#"{"limits":{"cpu":"500m"},"requests":{"cpu":"100m"}}"#);
    ns.k(&[
        "get",
        "pod",
        "small",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}",
    ])
    .ok_exactly(
        "LimitRanger plugin set: cpu request for container small; cpu limit for container small",
    );
    ns.k(&["run", "big", "--image=nginx", "--overrides", r#"{"spec":{"containers":[{"name":"big","image":"nginx","resources":{"limits":{"cpu":"2"}}}]}}"#])
        .fails_exactly("Error from server (Forbidden): pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2");
    ns.assert_not_found("pods", "big");
}
