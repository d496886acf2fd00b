//! The garbage collector and the namespace controller act on custom resources as on
//! built-in ones: they find them through discovery.

mod kcm;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

use kcm::{Kcm, create_namespace, wait_for, wait_gone};

fn widgets() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    )
}

fn widget(name: &str, owner: Option<&ConfigMap>) -> DynamicObject {
    let mut w = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": {"size": 1},
    });
    if let Some(o) = owner {
        w["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "ConfigMap",
            "name": o.metadata.name, "uid": o.metadata.uid,
        }]);
    }
    serde_json::from_value(w).expect("widget")
}

/// Creates the Widget CRD and waits until it is served.
async fn widget_crd(client: &kube::Client) {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}],
        }
    });
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).expect("crd"),
    )
    .await
    .expect("create crd");
    let probe: Api<DynamicObject> = Api::all_with(client.clone(), &widgets());
    wait_for(60, "widgets served", || async {
        probe.list(&Default::default()).await.ok().map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn owned_custom_resources_are_collected_and_namespaces_empty_of_them() {
    let server = testenv::TestServer::start();
    let client = server.client().await;
    widget_crd(&client).await;
    let _kcm = Kcm::run(&server, "garbagecollector,namespace");
    create_namespace(&client, "crs").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "crs");
    let owner: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "owner"}})).expect("cm");
    let owner = cms
        .create(&PostParams::default(), &owner)
        .await
        .expect("owner");
    let ws: Api<DynamicObject> = Api::namespaced_with(client.clone(), "crs", &widgets());
    for w in [widget("child", Some(&owner)), widget("loose", None)] {
        ws.create(&PostParams::default(), &w).await.expect("widget");
    }

    // the owner goes (background propagation): its dependent widget follows
    cms.delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    wait_gone(&ws, "child", "owned widget collected").await;
    assert!(
        ws.get_opt("loose").await.expect("get").is_some(),
        "an unowned widget stays"
    );

    // deleting the namespace deletes its widgets, then the namespace itself
    Api::<Namespace>::all(client.clone())
        .delete("crs", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    wait_gone(&namespaces, "crs", "namespace gone").await;
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &widgets());
    let left = all.list(&Default::default()).await.expect("list widgets");
    assert!(left.items.is_empty(), "widgets left: {}", left.items.len());
}
