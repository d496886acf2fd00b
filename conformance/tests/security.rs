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
