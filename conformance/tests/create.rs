//! `kubectl create`: from files (YAML, JSON, stdin) and with each generator. Checks what
//! kubectl prints, what the server stored and the defaults it filled in.

use conformance::*;
use serde_json::json;

#[test]
fn create_namespace_and_get_it() {
    let ns = Namespace::new("create-ns");
    assert_table(
        ns.kubectl(&["get", "namespace", &ns.name]).ok(),
        &["NAME", "STATUS", "AGE"],
        &[&[&ns.name, "Active", "{age}"]],
    );
    // The server labels every namespace with its own name.
    assert_eq!(
        ns.kubectl(&[
            "get",
            "namespace",
            &ns.name,
            "-o",
            r"jsonpath={.metadata.labels.kubernetes\.io/metadata\.name}"
        ])
        .ok(),
        ns.name
    );
    assert_eq!(
        ns.kubectl(&[
            "get",
            "namespace",
            &ns.name,
            "-o",
            "jsonpath={.spec.finalizers}"
        ])
        .ok(),
        r#"["kubernetes"]"#
    );
    ns.kubectl(&["create", "namespace", &ns.name])
        .fails_exactly(&format!(
            "Error from server (AlreadyExists): namespaces \"{}\" already exists",
            ns.name
        ));
}

#[test]
fn create_from_yaml_json_and_stdin() {
    let ns = Namespace::new("create-files");
    let multi = ns.write(
        "multi.yaml",
        "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  k: v
---
apiVersion: v1
kind: Secret
metadata:
  name: b
stringData:
  password: hunter2
",
    );
    ns.k(&["create", "-f", &multi])
        .ok_exactly("configmap/a created\nsecret/b created");
    assert_eq!(ns.jsonpath(&["configmap", "a"], "{.data.k}"), "v");
    // stringData is folded into data, base64-encoded, and dropped.
    assert_eq!(
        ns.jsonpath(&["secret", "b"], "{.data.password}"),
        "aHVudGVyMg=="
    );
    assert_eq!(ns.jsonpath(&["secret", "b"], "{.stringData}"), "");
    assert_eq!(ns.jsonpath(&["secret", "b"], "{.type}"), "Opaque");

    let json_file = ns.write(
        "c.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"json"}}"#,
    );
    ns.k(&["create", "-f", &json_file])
        .ok_exactly("configmap/c created");
    ns.k_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n",
    )
    .ok_exactly("configmap/d created");
    assert_eq!(
        ns.k(&["get", "configmaps", "a", "c", "d", "-o", "name"])
            .ok(),
        "configmap/a\nconfigmap/c\nconfigmap/d\n"
    );

    let before = ns.snapshot("configmaps,secrets");
    ns.k(&["create", "-f", &multi]).fails_exactly(
        "Error from server (AlreadyExists): error when creating \"multi.yaml\": configmaps \"a\" already exists\n\
         Error from server (AlreadyExists): error when creating \"multi.yaml\": secrets \"b\" already exists",
    );
    assert_eq!(ns.snapshot("configmaps,secrets"), before);
}

#[test]
fn create_deployment_fills_defaults() {
    let ns = Namespace::new("create-deploy");
    ns.k(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=80",
    ])
    .ok_exactly("deployment.apps/web created");
    let d = ns.get_json(&["deployment", "web"]);
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["securityContext"], json!({}));
    let c = &pod["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["image"], "nginx:1.25");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );

    assert_table(
        ns.k(&["get", "deployment", "web"]).ok(),
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        &[&["web", "0/2", "0", "0", "{age}"]],
    );
}

#[test]
fn create_configmap_from_literal_file_and_env_file() {
    let ns = Namespace::new("create-cm");
    let conf = ns.write("app.conf", "listen 80\n");
    let (file, renamed) = (
        format!("--from-file={conf}"),
        format!("--from-file=renamed={conf}"),
    );
    ns.k(&[
        "create",
        "configmap",
        "cm",
        "--from-literal=a=1",
        &file,
        &renamed,
    ])
    .ok_exactly("configmap/cm created");
    let cm = ns.get_json(&["configmap", "cm"]);
    assert_eq!(
        cm["data"],
        json!({"a": "1", "app.conf": "listen 80\n", "renamed": "listen 80\n"})
    );

    let env = ns.write("app.env", "# comment\nFOO=bar\nBAZ=qux\n");
    ns.k(&[
        "create",
        "configmap",
        "env",
        &format!("--from-env-file={env}"),
    ])
    .ok_exactly("configmap/env created");
    assert_eq!(
        ns.get_json(&["configmap", "env"])["data"],
        json!({"FOO": "bar", "BAZ": "qux"})
    );

    assert_table(
        ns.k(&["get", "configmaps", "cm", "env"]).ok(),
        &["NAME", "DATA", "AGE"],
        &[&["cm", "3", "{age}"], &["env", "2", "{age}"]],
    );
}

#[test]
fn create_secret_generic() {
    let ns = Namespace::new("create-secret");
    ns.k(&[
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=password=hunter2",
        "--from-literal=user=admin",
    ])
    .ok_exactly("secret/s created");
    let s = ns.get_json(&["secret", "s"]);
    assert_eq!(s["type"], "Opaque");
    assert_eq!(
        s["data"],
        json!({"password": "aHVudGVyMg==", "user": "YWRtaW4="})
    );
    assert_table(
        ns.k(&["get", "secret", "s"]).ok(),
        &["NAME", "TYPE", "DATA", "AGE"],
        &[&["s", "Opaque", "2", "{age}"]],
    );
}

#[test]
fn create_secret_tls() {
    let ns = Namespace::new("create-tls");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=example.com",
            "-keyout",
            "tls.key",
            "-out",
            "tls.crt",
        ])
        .current_dir(ns.dir())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl failed");
    ns.k(&[
        "create",
        "secret",
        "tls",
        "t",
        "--cert=tls.crt",
        "--key=tls.key",
    ])
    .ok_exactly("secret/t created");
    let s = ns.get_json(&["secret", "t"]);
    assert_eq!(s["type"], "kubernetes.io/tls");
    let cert = base64_decode(s["data"]["tls.crt"].as_str().expect("tls.crt"));
    assert_eq!(
        cert,
        std::fs::read(ns.dir().join("tls.crt")).expect("read cert")
    );
    assert!(s["data"]["tls.key"].is_string());
    assert_table(
        ns.k(&["get", "secret", "t"]).ok(),
        &["NAME", "TYPE", "DATA", "AGE"],
        &[&["t", "kubernetes.io/tls", "2", "{age}"]],
    );
}

#[test]
fn create_secret_docker_registry() {
    let ns = Namespace::new("create-docker");
    ns.k(&[
        "create",
        "secret",
        "docker-registry",
        "reg",
        "--docker-server=registry.example.com",
        "--docker-username=u",
        "--docker-password=p",
        "--docker-email=u@example.com",
    ])
    .ok_exactly("secret/reg created");
    let s = ns.get_json(&["secret", "reg"]);
    assert_eq!(s["type"], "kubernetes.io/dockerconfigjson");
    let config: serde_json::Value = serde_json::from_slice(&base64_decode(
        s["data"][".dockerconfigjson"].as_str().expect("data"),
    ))
    .expect("json");
    let auth = &config["auths"]["registry.example.com"];
    assert_eq!(auth["username"], "u");
    assert_eq!(auth["password"], "p");
    assert_eq!(auth["auth"], "dTpw");
}

#[test]
fn create_service_clusterip() {
    let ns = Namespace::new("create-svc");
    ns.k(&["create", "service", "clusterip", "s", "--tcp=80:8080"])
        .ok_exactly("service/s created");
    let s = ns.get_json(&["service", "s"]);
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["selector"], json!({"app": "s"}));
    assert_eq!(
        spec["ports"],
        json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    let ip = spec["clusterIP"].as_str().expect("clusterIP allocated");
    assert!(
        matches("10.0.0.{int}", ip) && ip != "10.0.0.0" && ip != "10.0.0.1",
        "clusterIP {ip} outside 10.0.0.0/24"
    );
    assert_eq!(spec["clusterIPs"], json!([ip]));
    assert_table(
        ns.k(&["get", "service", "s", "-o", "wide"]).ok(),
        &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR",
        ],
        &[&["s", "ClusterIP", ip, "<none>", "80/TCP", "{age}", "app=s"]],
    );

    ns.k(&[
        "create",
        "service",
        "clusterip",
        "headless",
        "--clusterip=None",
    ])
    .ok_exactly("service/headless created");
    assert_eq!(
        ns.jsonpath(&["service", "headless"], "{.spec.clusterIP}"),
        "None"
    );
}

#[test]
fn create_service_nodeport() {
    let ns = Namespace::new("create-np");
    ns.k(&["create", "service", "nodeport", "np", "--tcp=80:8080"])
        .ok_exactly("service/np created");
    let spec = ns.get_json(&["service", "np"])["spec"].clone();
    assert_eq!(spec["type"], "NodePort");
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    let port = spec["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort allocated");
    assert!(
        (30000..=32767).contains(&port),
        "nodePort {port} outside 30000-32767"
    );
    assert_table(
        ns.k(&["get", "service", "np"]).ok(),
        &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        &[&[
            "np",
            "NodePort",
            "10.0.0.{int}",
            "<none>",
            &format!("80:{port}/TCP"),
            "{age}",
        ]],
    );
    // A nodePort that is taken is refused.
    let taken = ns.write(
        "taken.yaml",
        &format!(
            "\
apiVersion: v1
kind: Service
metadata:
  name: taken
spec:
  type: NodePort
  ports:
  - port: 81
    nodePort: {port}
"
        ),
    );
    ns.k(&["create", "-f", &taken]).fails_exactly(&format!(
        "The Service \"taken\" is invalid: spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated"
    ));
}

#[test]
fn create_job_fills_selector_and_labels() {
    let ns = Namespace::new("create-job");
    ns.k(&["create", "job", "j", "--image=busybox", "--", "echo", "hi"])
        .ok_exactly("job.batch/j created");
    let j = ns.get_json(&["job", "j"]);
    let uid = j["metadata"]["uid"].as_str().expect("uid");
    let spec = &j["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(
        spec["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/job-name"], "j");
    assert_eq!(labels["job-name"], "j");
    assert_eq!(labels["controller-uid"], uid);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["command"],
        json!(["echo", "hi"])
    );
    let table = ns.k(&["get", "job", "j"]);
    assert_eq!(
        header(table.ok()),
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
}

#[test]
fn create_cronjob_and_job_from_it() {
    let ns = Namespace::new("create-cj");
    ns.k(&[
        "create",
        "cronjob",
        "cj",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "echo",
        "hi",
    ])
    .ok_exactly("cronjob.batch/cj created");
    let spec = ns.get_json(&["cronjob", "cj"])["spec"].clone();
    assert_eq!(spec["schedule"], "*/5 * * * *");
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    assert_table(
        ns.k(&["get", "cronjob", "cj"]).ok(),
        &[
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE",
        ],
        &[&[
            "cj",
            "*/5 * * * *",
            "<none>",
            "False",
            "0",
            "<none>",
            "{age}",
        ]],
    );

    ns.k(&["create", "job", "manual", "--from=cronjob/cj"])
        .ok_exactly("job.batch/manual created");
    let j = ns.get_json(&["job", "manual"]);
    assert_eq!(
        j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(j["metadata"]["ownerReferences"][0]["name"], "cj");
}

#[test]
fn create_serviceaccount() {
    let ns = Namespace::new("create-sa");
    ns.k(&["create", "serviceaccount", "robot"])
        .ok_exactly("serviceaccount/robot created");
    assert_table(
        ns.k(&["get", "serviceaccount", "robot"]).ok(),
        &["NAME", "SECRETS", "AGE"],
        &[&["robot", "0", "{age}"]],
    );
}

#[test]
fn create_rbac_objects() {
    let mut ns = Namespace::new("create-rbac");
    let n = ns.name.clone();
    ns.k(&[
        "create",
        "role",
        "r",
        "--verb=get,list",
        "--resource=pods,configmaps",
    ])
    .ok_exactly("role.rbac.authorization.k8s.io/r created");
    assert_eq!(
        ns.get_json(&["role", "r"])["rules"],
        json!([{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]}])
    );
    ns.k(&[
        "create",
        "rolebinding",
        "rb",
        "--role=r",
        &format!("--serviceaccount={n}:default"),
        "--user=alice",
    ])
    .ok_exactly("rolebinding.rbac.authorization.k8s.io/rb created");
    assert_eq!(
        ns.get_json(&["rolebinding", "rb"])["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"})
    );
    assert_table(
        ns.k(&["get", "rolebinding", "rb"]).ok(),
        &["NAME", "ROLE", "AGE"],
        &[&["rb", "Role/r", "{age}"]],
    );
    assert_table(
        ns.k(&["get", "role", "r"]).ok(),
        &["NAME", "CREATED AT"],
        &[&["r", "{ts}"]],
    );

    let cr = unique_name("conformance-reader");
    ns.cleanup_cluster_object(&format!("clusterrole/{cr}"));
    ns.kubectl(&[
        "create",
        "clusterrole",
        &cr,
        "--verb=get,watch",
        "--resource=nodes",
    ])
    .ok_exactly(&format!(
        "clusterrole.rbac.authorization.k8s.io/{cr} created"
    ));
    ns.cleanup_cluster_object(&format!("clusterrolebinding/{cr}"));
    ns.kubectl(&[
        "create",
        "clusterrolebinding",
        &cr,
        &format!("--clusterrole={cr}"),
        "--group=devs",
    ])
    .ok_exactly(&format!(
        "clusterrolebinding.rbac.authorization.k8s.io/{cr} created"
    ));
    assert_eq!(
        ns.kubectl(&[
            "get",
            "clusterrolebinding",
            &cr,
            "-o",
            "jsonpath={.subjects}"
        ])
        .ok(),
        r#"[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"devs"}]"#
    );
}

#[test]
fn create_priorityclass() {
    let mut ns = Namespace::new("create-pc");
    let pc = unique_name("conformance-pc");
    ns.cleanup_cluster_object(&format!("priorityclass/{pc}"));
    ns.kubectl(&[
        "create",
        "priorityclass",
        &pc,
        "--value=1000",
        "--description=for tests",
    ])
    .ok_exactly(&format!("priorityclass.scheduling.k8s.io/{pc} created"));
    let p = ns.kubectl(&["get", "priorityclass", &pc, "-o", "json"]);
    let p: serde_json::Value = serde_json::from_str(p.ok()).expect("json");
    assert_eq!(p["value"], 1000);
    assert_eq!(p["description"], "for tests");
    assert_eq!(p["preemptionPolicy"], "PreemptLowerPriority");
}

#[test]
fn create_quota() {
    let ns = Namespace::new("create-quota");
    ns.k(&["create", "quota", "q", "--hard=pods=10,cpu=2,memory=1Gi"])
        .ok_exactly("resourcequota/q created");
    assert_eq!(
        ns.get_json(&["resourcequota", "q"])["spec"]["hard"],
        json!({"pods": "10", "cpu": "2", "memory": "1Gi"})
    );
}

#[test]
fn create_pdb() {
    let ns = Namespace::new("create-pdb");
    ns.k(&[
        "create",
        "pdb",
        "p",
        "--selector=app=web",
        "--min-available=1",
    ])
    .ok_exactly("poddisruptionbudget.policy/p created");
    let p = ns.get_json(&["pdb", "p"]);
    assert_eq!(p["spec"]["minAvailable"], 1);
    assert_eq!(
        p["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    assert_table(
        ns.k(&["get", "pdb", "p"]).ok(),
        &[
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE",
        ],
        &[&["p", "1", "N/A", "0", "{age}"]],
    );
}

#[test]
fn create_ingress() {
    let ns = Namespace::new("create-ing");
    ns.k(&[
        "create",
        "ingress",
        "ing",
        "--rule=foo.example.com/bar=svc:80",
    ])
    .ok_exactly("ingress.networking.k8s.io/ing created");
    let rule = ns.get_json(&["ingress", "ing"])["spec"]["rules"][0].clone();
    assert_eq!(rule["host"], "foo.example.com");
    assert_eq!(
        rule["http"]["paths"][0],
        json!({"path": "/bar", "pathType": "Exact", "backend": {"service": {"name": "svc", "port": {"number": 80}}}})
    );
}

#[test]
fn create_pod_from_file_sets_status_and_defaults() {
    let ns = Namespace::new("create-pod");
    ns.default_serviceaccount();
    let pod = ns.write(
        "pod.yaml",
        "\
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels:
    app: p
spec:
  containers:
  - name: main
    image: busybox
    command: [sleep, '3600']
",
    );
    ns.k(&["create", "-f", &pod]).ok_exactly("pod/p created");
    let p = ns.get_json(&["pod", "p"]);
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["qosClass"], "BestEffort");
    let spec = &p["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    let tolerations = spec["tolerations"].as_array().expect("default tolerations");
    assert!(
        tolerations.contains(&json!({"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300})),
        "{tolerations:?}"
    );
    assert_table(
        ns.k(&["get", "pod", "p"]).ok(),
        &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        &[&["p", "0/1", "Pending", "0", "{age}"]],
    );
    assert_table(
        ns.k(&["get", "pod", "p", "-o", "wide"]).ok(),
        &[
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES",
        ],
        &[&[
            "p", "0/1", "Pending", "0", "{age}", "<none>", "<none>", "<none>", "<none>",
        ]],
    );
}

#[test]
fn create_with_generate_name() {
    let ns = Namespace::new("create-gen");
    let file = ns.write(
        "gen.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\n",
    );
    let out = ns.k(&["create", "-f", &file]);
    let name = out
        .ok()
        .trim()
        .strip_prefix("configmap/")
        .and_then(|s| s.strip_suffix(" created"))
        .expect("created");
    assert!(
        matches("gen-{any}", name) && name.len() == "gen-".len() + 5,
        "generated name {name:?}"
    );
}
