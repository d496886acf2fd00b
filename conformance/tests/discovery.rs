//! What a cluster tells about itself: version, API groups and resources, `explain`
//! (OpenAPI), `cluster-info`, health endpoints, and the objects every cluster starts with.

use conformance::*;

fn k(args: &[&str]) -> Output {
    cluster().run(args, None, std::path::Path::new("."))
}

#[test]
fn version() {
    let out = k(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
    let server = &v["serverVersion"];
    assert_eq!(server["major"], "1");
    let minor: u32 = server["minor"]
        .as_str()
        .expect("minor")
        .trim_end_matches('+')
        .parse()
        .expect("number");
    assert!(minor >= 32, "server minor {minor}");
    let git = server["gitVersion"].as_str().expect("gitVersion");
    assert!(
        matches(&format!("v1.{minor}.{{int}}{{any}}"), git),
        "gitVersion {git}"
    );
    assert_eq!(server["platform"], "linux/amd64");
    for field in [
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
    ] {
        assert!(
            server[field].is_string(),
            "serverVersion.{field} missing: {server}"
        );
    }

    let out = k(&["version"]);
    let text = out.ok();
    assert!(
        text.lines().any(|l| l == format!("Server Version: {git}")),
        "{out}"
    );
    let client_minor = cluster().minor();
    let skew = client_minor.abs_diff(minor);
    let warning = format!(
        "WARNING: version difference between client (1.{client_minor}) and server (1.{minor}) exceeds the supported minor version skew of +/-1"
    );
    assert_eq!(out.stderr.contains(&warning), skew > 1, "{out}");
}

#[test]
fn api_versions() {
    let out = k(&["api-versions"]);
    let versions: Vec<&str> = out.ok().lines().collect();
    let mut sorted = versions.clone();
    sorted.sort();
    assert_eq!(versions, sorted, "api-versions is sorted");
    for want in [
        "v1",
        "admissionregistration.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "apiregistration.k8s.io/v1",
        "apps/v1",
        "authentication.k8s.io/v1",
        "authorization.k8s.io/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "batch/v1",
        "certificates.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "flowcontrol.apiserver.k8s.io/v1",
        "networking.k8s.io/v1",
        "node.k8s.io/v1",
        "policy/v1",
        "rbac.authorization.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "storage.k8s.io/v1",
    ] {
        assert!(
            versions.contains(&want),
            "api-versions lacks {want}:\n{out}"
        );
    }
}

#[test]
fn api_resources() {
    let out = k(&["api-resources"]);
    assert_eq!(
        header(out.ok()),
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    let rows = table(out.ok());
    for want in [
        ["configmaps", "cm", "v1", "true", "ConfigMap"],
        ["namespaces", "ns", "v1", "false", "Namespace"],
        ["pods", "po", "v1", "true", "Pod"],
        ["services", "svc", "v1", "true", "Service"],
        ["serviceaccounts", "sa", "v1", "true", "ServiceAccount"],
        ["resourcequotas", "quota", "v1", "true", "ResourceQuota"],
        ["deployments", "deploy", "apps/v1", "true", "Deployment"],
        ["cronjobs", "cj", "batch/v1", "true", "CronJob"],
        [
            "ingresses",
            "ing",
            "networking.k8s.io/v1",
            "true",
            "Ingress",
        ],
        [
            "poddisruptionbudgets",
            "pdb",
            "policy/v1",
            "true",
            "PodDisruptionBudget",
        ],
        [
            "priorityclasses",
            "pc",
            "scheduling.k8s.io/v1",
            "false",
            "PriorityClass",
        ],
    ] {
        assert!(
            rows.iter().any(|r| r == &want),
            "api-resources lacks {want:?}:\n{out}"
        );
    }
    for want in [
        ["secrets", "v1", "true", "Secret"],
        ["jobs", "batch/v1", "true", "Job"],
        [
            "clusterroles",
            "rbac.authorization.k8s.io/v1",
            "false",
            "ClusterRole",
        ],
    ] {
        assert!(
            rows.iter().any(|r| r == &want),
            "api-resources lacks {want:?}:\n{out}"
        );
    }

    k(&["api-resources", "--api-group=apps", "-o", "name"])
        .ok_exactly("controllerrevisions.apps\ndaemonsets.apps\ndeployments.apps\nreplicasets.apps\nstatefulsets.apps");
    let cluster_scoped = k(&["api-resources", "--namespaced=false", "-o", "name"]);
    let names: Vec<&str> = cluster_scoped.ok().lines().collect();
    assert!(
        names.contains(&"namespaces") && names.contains(&"clusterroles.rbac.authorization.k8s.io"),
        "{cluster_scoped}"
    );
    assert!(!names.contains(&"configmaps"), "{cluster_scoped}");

    let wide = k(&["api-resources", "-o", "wide"]);
    // VERBS prints as [a b c] in some versions and a,b,c in others.
    let flat = normalize(&wide.ok().replace(['[', ']', ','], " "));
    let cm = flat
        .lines()
        .find(|l| l.starts_with("configmaps "))
        .unwrap_or_default();
    assert!(
        cm.starts_with("configmaps cm v1 true ConfigMap create delete deletecollection get list patch update watch"),
        "{wide}"
    );
}

#[test]
fn explain_nested_fields() {
    let out = k(&["explain", "deployment.spec.template.spec.containers"]);
    let text = normalize(out.ok());
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "GROUP: apps",
        "KIND: Deployment",
        "VERSION: v1",
        "FIELD: containers <[]Container>",
        "DESCRIPTION:",
        "FIELDS:",
    ] {
        assert!(
            lines.contains(&want),
            "explain lacks {want:?}:\n{}",
            out.stdout
        );
    }
    for want in [
        "image <string>",
        "name <string> -required-",
        "ports <[]ContainerPort>",
        "resources <ResourceRequirements>",
    ] {
        assert!(
            lines.contains(&want),
            "explain lacks field {want:?}:\n{}",
            out.stdout
        );
    }

    let out = k(&["explain", "configmap"]);
    let text = normalize(out.ok());
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "KIND: ConfigMap",
        "VERSION: v1",
        "apiVersion <string>",
        "binaryData <map[string]string>",
        "data <map[string]string>",
        "immutable <boolean>",
        "kind <string>",
        "metadata <ObjectMeta>",
    ] {
        assert!(
            lines.contains(&want),
            "explain lacks {want:?}:\n{}",
            out.stdout
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("GROUP:")),
        "the core group has no GROUP line:\n{}",
        out.stdout
    );

    let out = k(&["explain", "deployment.spec.replicas"]);
    assert!(
        normalize(out.ok())
            .lines()
            .any(|l| l == "FIELD: replicas <integer>"),
        "{out}"
    );
    k(&["explain", "deployment.spec.nope"]).fails_exactly("error: field \"nope\" does not exist");
    k(&["explain", "foos"]).fails_exactly("the server doesn't have a resource type \"foos\"");
}

#[test]
fn cluster_info() {
    let out = k(&["cluster-info"]);
    assert_lines(
        &strip_ansi(out.ok()),
        &[
            &format!(
                "Kubernetes control plane is running at {}",
                cluster().server()
            ),
            "",
            "To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.",
        ],
    );
}

#[test]
fn health_endpoints() {
    for path in [
        "/healthz",
        "/livez",
        "/readyz",
        "/healthz/ping",
        "/livez/ping",
        "/readyz/ping",
    ] {
        k(&["get", "--raw", path]).ok_exactly("ok");
    }
    for (path, last) in [
        ("/readyz?verbose", "readyz check passed"),
        ("/livez?verbose", "livez check passed"),
    ] {
        let out = k(&["get", "--raw", path]);
        let lines: Vec<&str> = out.ok().lines().collect();
        assert!(lines.contains(&"[+]ping ok"), "{out}");
        assert!(
            lines
                .iter()
                .filter(|l| !l.is_empty())
                .all(|l| l.starts_with("[+]") || *l == last),
            "{out}"
        );
        assert_eq!(lines.iter().rfind(|l| !l.is_empty()), Some(&last), "{out}");
    }
    k(&["get", "--raw", "/readyz/nope"]).fails();
}

#[test]
fn discovery_documents() {
    let api: serde_json::Value =
        serde_json::from_str(k(&["get", "--raw", "/api"]).ok()).expect("json");
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], serde_json::json!(["v1"]));
    let groups: serde_json::Value =
        serde_json::from_str(k(&["get", "--raw", "/apis"]).ok()).expect("json");
    assert_eq!(groups["kind"], "APIGroupList");
    let apps = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "apps")
        .expect("apps group");
    assert_eq!(
        apps["preferredVersion"],
        serde_json::json!({"groupVersion": "apps/v1", "version": "v1"})
    );
    let v1: serde_json::Value =
        serde_json::from_str(k(&["get", "--raw", "/api/v1"]).ok()).expect("json");
    assert_eq!(v1["kind"], "APIResourceList");
    assert_eq!(v1["groupVersion"], "v1");
    let status = v1["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "pods/status");
    assert_eq!(
        status.map(|r| &r["kind"]),
        Some(&serde_json::json!("Pod")),
        "pods/status in /api/v1"
    );
    let openapi: serde_json::Value =
        serde_json::from_str(k(&["get", "--raw", "/openapi/v3"]).ok()).expect("json");
    for path in ["api/v1", "apis/apps/v1"] {
        assert!(
            openapi["paths"][path]["serverRelativeURL"].is_string(),
            "/openapi/v3 lacks {path}"
        );
    }
}

#[test]
fn bootstrap_objects_exist() {
    let out = k(&[
        "get",
        "namespaces",
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "-o",
        "name",
    ]);
    out.ok_exactly("namespace/default\nnamespace/kube-system\nnamespace/kube-public\nnamespace/kube-node-lease");
    assert_table(
        k(&["get", "service", "kubernetes", "-n", "default"]).ok(),
        &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        &[&[
            "kubernetes",
            "ClusterIP",
            "10.0.0.1",
            "<none>",
            "443/TCP",
            "{age}",
        ]],
    );
    k(&["get", "priorityclasses", "system-cluster-critical", "system-node-critical", "-o", "name"])
        .ok_exactly("priorityclass.scheduling.k8s.io/system-cluster-critical\npriorityclass.scheduling.k8s.io/system-node-critical");
    k(&["auth", "can-i", "create", "deployments", "--all-namespaces"]).ok_exactly("yes");
    let whoami = k(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    whoami.ok_exactly("kubernetes-admin");
}

#[test]
fn rbac_bootstrap_policy_exists() {
    k(&["get", "clusterroles", "cluster-admin", "admin", "edit", "view", "-o", "name"]).ok_exactly(
        "clusterrole.rbac.authorization.k8s.io/cluster-admin\nclusterrole.rbac.authorization.k8s.io/admin\n\
         clusterrole.rbac.authorization.k8s.io/edit\nclusterrole.rbac.authorization.k8s.io/view",
    );
}
