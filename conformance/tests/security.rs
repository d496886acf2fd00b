//! Security as a kubectl user meets it: a service account bound to `view` in one
//! namespace, using its own token (`kubectl create token`), can read there and nowhere
//! else, cannot write, cannot impersonate, and `kubectl auth` tells the truth.

use conformance::*;

/// A kubeconfig with the cluster's server and CA and only `token` as credentials.
fn token_kubeconfig(ns: &Namespace, token: &str) -> String {
    let ca = ns
        .kubectl(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ])
        .ok()
        .to_string();
    let server = ns.cluster().server();
    let file = format!("token-{}.kubeconfig", token.len());
    ns.write(
        &file,
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    );
    // absolute, so kubectl finds it from other namespaces' working directories too
    ns.dir().join(file).display().to_string()
}

#[test]
fn a_view_only_service_account_with_its_own_token() {
    let a = Namespace::new("sec-a");
    let b = Namespace::new("sec-b");
    a.k(&["create", "serviceaccount", "viewer"])
        .ok_exactly("serviceaccount/viewer created");
    let subject = format!("{}:viewer", a.name);
    a.k(&[
        "create",
        "rolebinding",
        "viewer-view",
        "--clusterrole=view",
        &format!("--serviceaccount={subject}"),
    ])
    .ok_exactly("rolebinding.rbac.authorization.k8s.io/viewer-view created");
    let token = a.k(&["create", "token", "viewer"]).ok().trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let kubeconfig = token_kubeconfig(&a, &token);
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let user = format!("system:serviceaccount:{subject}");

    a.k_env(
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        &env,
    )
    .ok_exactly(&user);
    a.k_env(&["get", "pods"], &env).ok();
    a.k_env(&["auth", "can-i", "list", "pods"], &env)
        .ok_exactly("yes");
    // `can-i` answers "no" on stdout and exits 1
    let no = b.k_env(&["auth", "can-i", "list", "pods"], &env);
    no.fails();
    assert_eq!(no.stdout.trim_end(), "no", "\n{no}");
    b.k_env(&["get", "pods"], &env).fails_exactly(&format!(
        "Error from server (Forbidden): pods is forbidden: User \"{user}\" cannot list resource \"pods\" in API group \"\" in the namespace \"{}\"",
        b.name
    ));
    a.k_env(&["create", "configmap", "x"], &env).fails_exactly(&format!(
        "error: failed to create configmap: configmaps is forbidden: User \"{user}\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"{}\"",
        a.name
    ));
    a.k_env(&["get", "pods", "--as=kubernetes-admin"], &env).fails_exactly(&format!(
        "Error from server (Forbidden): users \"kubernetes-admin\" is forbidden: User \"{user}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    ));
    // a garbled token is refused outright
    let bad = token_kubeconfig(&a, "not-a-token");
    a.k_env(&["get", "pods"], &[("KUBECONFIG", bad.as_str())])
        .fails_with("error: You must be logged in to the server (Unauthorized)");
    // nothing the viewer tried was stored
    a.assert_not_found("configmaps", "x");
}

#[test]
fn a_kubelet_reads_only_what_its_own_pods_use() {
    let mut ns = Namespace::new("sec-node");
    ns.default_serviceaccount();
    let node = unique_name("sec-node");
    ns.cleanup_cluster_object(&format!("node/{node}"));
    ns.k(&["create", "secret", "generic", "mine", "--from-literal=k=v"])
        .ok();
    ns.k(&[
        "create",
        "secret",
        "generic",
        "theirs",
        "--from-literal=k=v",
    ])
    .ok();
    let manifest = ns.write(
        "node-objects.yaml",
        &format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: bound\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: busybox\n    envFrom:\n    - secretRef:\n        name: mine\n"
        ),
    );
    ns.k(&["apply", "-f", &manifest]).ok();
    let user = format!("system:node:{node}");
    let as_node = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--as");
        all.push(&user);
        all.push("--as-group=system:nodes");
        ns.k(&all)
    };
    as_node(&["get", "secret", "mine", "-o", "name"]).ok_exactly("secret/mine");
    as_node(&["get", "secret", "theirs"]).fails_exactly(&format!(
        "Error from server (Forbidden): secrets \"theirs\" is forbidden: User \"{user}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{}\": no relationship found between node '{node}' and this object",
        ns.name
    ));
    as_node(&["auth", "can-i", "get", "secret/mine"]).ok_exactly("yes");
    // kubectl prints the authorizer's reason after a "no"
    let no = as_node(&["auth", "can-i", "get", "secret/theirs"]);
    no.fails();
    assert_eq!(
        no.stdout.trim_end(),
        format!("no - no relationship found between node '{node}' and this object"),
        "\n{no}"
    );
    as_node(&["get", "pods"]).fails_exactly(&format!(
        "Error from server (Forbidden): pods is forbidden: User \"{user}\" cannot list resource \"pods\" in API group \"\" in the namespace \"{}\": can only list/watch pods with spec.nodeName field selector",
        ns.name
    ));
    as_node(&[
        "get",
        "pods",
        &format!("--field-selector=spec.nodeName={node}"),
        "-o",
        "name",
    ])
    .ok_exactly("pod/bound");
    // the pod gone, so is the kubelet's access to its secret
    ns.k(&["delete", "pod", "bound", "--grace-period=0", "--force"])
        .ok();
    as_node(&["get", "secret", "mine"]).fails();
}
