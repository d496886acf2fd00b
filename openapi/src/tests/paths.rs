//! Tests: paths.

use super::*;

fn operation_id<'a>(doc: &'a Value, path: &str, method: &str) -> Option<&'a str> {
    doc["paths"][path][method]["operationId"].as_str()
}

#[test]
fn deployment_paths_and_operation_ids() {
    let doc = v2(&registry());
    let expected = [
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments",
            "get",
            "listAppsV1NamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments",
            "post",
            "createAppsV1NamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments",
            "delete",
            "deleteAppsV1CollectionNamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "get",
            "readAppsV1NamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "put",
            "replaceAppsV1NamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "patch",
            "patchAppsV1NamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "delete",
            "deleteAppsV1NamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "get",
            "readAppsV1NamespacedDeploymentScale",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "patch",
            "patchAppsV1NamespacedDeploymentScale",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status",
            "put",
            "replaceAppsV1NamespacedDeploymentStatus",
        ),
        (
            "/apis/apps/v1/deployments",
            "get",
            "listAppsV1DeploymentForAllNamespaces",
        ),
        (
            "/apis/apps/v1/watch/deployments",
            "get",
            "watchAppsV1DeploymentListForAllNamespaces",
        ),
        (
            "/apis/apps/v1/watch/namespaces/{namespace}/deployments",
            "get",
            "watchAppsV1NamespacedDeploymentList",
        ),
        (
            "/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}",
            "get",
            "watchAppsV1NamespacedDeployment",
        ),
    ];
    for (path, method, id) in expected {
        assert_eq!(
            operation_id(&doc, path, method),
            Some(id),
            "{method} {path}"
        );
    }
    let deployment_paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .filter(|path| path.contains("/deployments"))
        .collect();
    let expected_paths: BTreeSet<&str> = expected.iter().map(|(path, _, _)| *path).collect();
    assert_eq!(deployment_paths, expected_paths);

    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert!(
        patch["consumes"]
            .as_array()
            .expect("consumes")
            .contains(&json!("application/strategic-merge-patch+json"))
    );
    let scale =
        &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"];
    assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
    let list = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"];
    assert_eq!(
        list["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentList"
    );
    assert_eq!(list["x-kubernetes-action"], "list");
}

#[test]
fn core_and_connect_operation_ids() {
    let doc = v2(&registry());
    let expected = [
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "get",
            "connectCoreV1GetNamespacedPodExec",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "post",
            "connectCoreV1PostNamespacedPodExec",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/portforward",
            "get",
            "connectCoreV1GetNamespacedPodPortforward",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
            "put",
            "connectCoreV1PutNamespacedPodProxyWithPath",
        ),
        (
            "/api/v1/nodes/{name}/proxy",
            "head",
            "connectCoreV1HeadNodeProxy",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "get",
            "readCoreV1NamespacedPodLog",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/binding",
            "post",
            "createCoreV1NamespacedPodBinding",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            "post",
            "createCoreV1NamespacedPodEviction",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers",
            "patch",
            "patchCoreV1NamespacedPodEphemeralcontainers",
        ),
        (
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            "post",
            "createCoreV1NamespacedServiceAccountToken",
        ),
        (
            "/api/v1/namespaces/{namespace}/bindings",
            "post",
            "createCoreV1NamespacedBinding",
        ),
        (
            "/api/v1/namespaces/{name}/finalize",
            "put",
            "replaceCoreV1NamespaceFinalize",
        ),
        ("/api/v1/namespaces", "get", "listCoreV1Namespace"),
        (
            "/api/v1/watch/namespaces/{name}",
            "get",
            "watchCoreV1Namespace",
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "get",
            "listRbacAuthorizationV1ClusterRole",
        ),
        (
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval",
            "put",
            "replaceCertificatesV1CertificateSigningRequestApproval",
        ),
        ("/apis/apps/v1/", "get", "getAppsV1APIResources"),
        (
            "/apis/rbac.authorization.k8s.io/",
            "get",
            "getRbacAuthorizationAPIGroup",
        ),
        ("/api/", "get", "getCoreAPIVersions"),
    ];
    for (path, method, id) in expected {
        assert_eq!(
            operation_id(&doc, path, method),
            Some(id),
            "{method} {path}"
        );
    }
    // Binding is create-only: no list, no item path.
    assert!(
        doc["paths"]
            .get("/api/v1/namespaces/{namespace}/bindings/{name}")
            .is_none()
    );
    assert!(
        doc["paths"]["/api/v1/namespaces/{namespace}/bindings"]
            .get("get")
            .is_none()
    );
    let exec = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"];
    assert_eq!(exec["x-kubernetes-action"], "connect");
    assert_eq!(
        exec["x-kubernetes-group-version-kind"]["kind"],
        "PodExecOptions"
    );
    let tag = &doc["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["tags"][0];
    assert_eq!(tag, "rbacAuthorization_v1");
}

#[test]
fn operation_ids_are_unique() {
    let resources = registry();
    let doc = v2(&resources);
    let mut seen = HashSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("operationId");
        assert!(
            seen.insert(id.to_string()),
            "duplicate {id} at {method} {path}"
        );
    }
}
