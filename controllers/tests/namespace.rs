//! The namespace, serviceaccount and root-ca-cert-publisher controllers.

mod kcm;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use kcm::{Kcm, create_namespace, pod_spec, wait_for, wait_gone};

#[tokio::test]
async fn namespace_deletion_removes_content_and_finishes() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let _kcm = Kcm::run(&server, "namespace");
    create_namespace(&client, "doomed").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "plain"}})).expect("cm");
    cms.create(&PostParams::default(), &cm).await.expect("cm");
    let held: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}
    }))
    .expect("cm");
    cms.create(&PostParams::default(), &held)
        .await
        .expect("held");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": pod_spec()}))
        .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod");

    let nss: Api<Namespace> = Api::all(client.clone());
    nss.delete("doomed", &DeleteParams::default())
        .await
        .expect("delete ns");

    // the finalizer on "held" keeps the namespace, and the status says why
    let conds = wait_for(60, "finalizers-remaining condition", || async {
        let ns = nss.get("doomed").await.ok()?;
        let conds = ns.status?.conditions?;
        let c = conds
            .iter()
            .find(|c| c.type_ == "NamespaceFinalizersRemaining")?;
        (c.status == "True").then_some(conds.clone())
    })
    .await;
    let msg = |t: &str| {
        conds
            .iter()
            .find(|c| c.type_ == t)
            .and_then(|c| c.message.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        msg("NamespaceFinalizersRemaining"),
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    assert_eq!(
        msg("NamespaceContentRemaining"),
        "Some resources are remaining: configmaps has 1 objects"
    );
    assert_eq!(
        msg("NamespaceDeletionDiscoveryFailure"),
        "All resources successfully discovered"
    );
    assert!(cms.get_opt("plain").await.expect("get").is_none());
    assert!(pods.get_opt("p").await.expect("get").is_none());

    let release = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(release))
        .await
        .expect("release");
    wait_gone(&nss, "doomed", "namespace gone").await;
}

#[tokio::test]
async fn default_service_account_and_root_ca_in_every_namespace() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    let ca_file = server.dir.path().join("ca.crt");
    let ca = std::fs::read_to_string(&ca_file).expect("ca");
    let root_ca = format!("--root-ca-file={}", ca_file.display());
    let _kcm = Kcm::start(
        &server,
        "kcm",
        &[
            "--leader-elect=false",
            "--controllers=serviceaccount,root-ca-certificate-publisher-controller",
            &root_ca,
        ],
    );
    create_namespace(&client, "team").await;
    for ns in ["team", "default", "kube-system"] {
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        wait_for(60, &format!("default SA in {ns}"), || async {
            sas.get_opt("default").await.ok()?.map(|_| ())
        })
        .await;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let cm = wait_for(60, &format!("kube-root-ca.crt in {ns}"), || async {
            cms.get_opt("kube-root-ca.crt").await.ok()?
        })
        .await;
        assert_eq!(cm.data.as_ref().and_then(|d| d.get("ca.crt")), Some(&ca));
    }

    // deleted and tampered-with objects come back as they were
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    sas.delete("default", &DeleteParams::default())
        .await
        .expect("delete sa");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let tamper = json!({"data": {"ca.crt": "bogus"}});
    cms.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(tamper),
    )
    .await
    .expect("tamper");
    wait_for(60, "restored", || async {
        let sa = sas.get_opt("default").await.ok()??;
        let cm = cms.get_opt("kube-root-ca.crt").await.ok()??;
        let ok = cm.data.as_ref().and_then(|d| d.get("ca.crt")) == Some(&ca);
        (ok && sa.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .expect("delete cm");
    wait_for(60, "recreated", || async {
        cms.get_opt("kube-root-ca.crt").await.ok()?.map(|_| ())
    })
    .await;
}
