//! The CRD conversion webhook against a real HTTPS server.

mod support;

use serde_json::{Value, json};
use support::{TestResolver, handler, pki, serve};
use webhook::Dispatcher;

fn conversion(ca: &str, path: &str, versions: &[&str]) -> Value {
    json!({"strategy": "Webhook", "webhook": {
        "clientConfig": {"service": {"namespace": "test", "name": "hook", "path": path, "port": 443}, "caBundle": ca},
        "conversionReviewVersions": versions,
    }})
}

fn crontab(name: &str, version: &str) -> Value {
    json!({
        "apiVersion": format!("stable.example.com/{version}"), "kind": "CronTab",
        "metadata": {"name": name, "namespace": "dev", "uid": format!("uid-{name}"), "resourceVersion": "7"},
        "spec": {"cronSpec": "* * * * */5"},
    })
}

/// Converts v1 `spec.cronSpec` to v2 `spec.schedule`, relabelling, and garbling metadata
/// the API server must restore. `/short` drops objects, `/refuse` fails.
async fn server(pki: &support::Pki) -> std::net::SocketAddr {
    serve(
        pki,
        handler(|path, review| async move {
            let req = &review["request"];
            let desired = req["desiredAPIVersion"].clone();
            let converted: Vec<Value> = req["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let mut c = o.clone();
                    c["apiVersion"] = desired.clone();
                    c["spec"] = json!({"schedule": o["spec"]["cronSpec"]});
                    c["metadata"]["resourceVersion"] = json!("999");
                    c["metadata"]["labels"] = json!({"converted": "true"});
                    c
                })
                .collect();
            let response = match path.as_str() {
                "/short" => json!({"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": []}),
                "/refuse" => json!({"uid": req["uid"], "result": {"status": "Failure", "message": "cannot convert"}}),
                _ => json!({"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": converted}),
            };
            (200, json!({"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": response}))
        }),
    )
    .await
}

#[tokio::test]
async fn conversion_round_trip() {
    let pki = pki();
    let addr = server(&pki).await;
    let resolver = TestResolver::new(addr);
    let d = Dispatcher::new();

    let out = d
        .convert(
            &conversion(&pki.ca_bundle, "/convert", &["v1"]),
            vec![crontab("a", "v1")],
            "stable.example.com/v2",
            &resolver,
        )
        .await
        .expect("converted");
    assert_eq!(out[0]["apiVersion"], "stable.example.com/v2");
    assert_eq!(out[0]["spec"], json!({"schedule": "* * * * */5"}));
    assert_eq!(
        out[0]["metadata"]["resourceVersion"], "7",
        "metadata is restored"
    );
    assert_eq!(out[0]["metadata"]["labels"], json!({"converted": "true"}));

    // a list: items already at the desired version are not sent and keep their place
    let items = vec![crontab("a", "v1"), crontab("b", "v2"), crontab("c", "v1")];
    let out = d
        .convert(
            &conversion(&pki.ca_bundle, "/convert", &["v1beta1", "v1"]),
            items,
            "stable.example.com/v2",
            &resolver,
        )
        .await
        .expect("converted list");
    let names: Vec<&str> = out
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(
        out.iter()
            .all(|o| o["apiVersion"] == "stable.example.com/v2")
    );
    assert!(out[1]["metadata"].get("labels").is_none(), "b was not sent");

    // nothing to do: no call
    let same = d
        .convert(
            &conversion(&pki.ca_bundle, "/refuse", &["v1"]),
            vec![crontab("a", "v2")],
            "stable.example.com/v2",
            &resolver,
        )
        .await
        .unwrap();
    assert_eq!(same[0], crontab("a", "v2"));
}

#[tokio::test]
async fn conversion_errors_match_upstream() {
    let pki = pki();
    let addr = server(&pki).await;
    let resolver = TestResolver::new(addr);
    let d = Dispatcher::new();
    let convert = |path: &'static str| {
        let c = conversion(&pki.ca_bundle, path, &["v1"]);
        let d = &d;
        let resolver = &resolver;
        async move {
            d.convert(
                &c,
                vec![crontab("a", "v1")],
                "stable.example.com/v2",
                resolver,
            )
            .await
        }
    };
    assert_eq!(
        convert("/short").await.unwrap_err(),
        "conversion webhook for stable.example.com/v1, Kind=CronTab returned 0 objects, expected 1"
    );
    assert_eq!(
        convert("/refuse").await.unwrap_err(),
        "conversion webhook for stable.example.com/v1, Kind=CronTab failed: cannot convert"
    );
    let none = json!({"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"namespace": "test", "name": "gone"}}, "conversionReviewVersions": ["v1"]}});
    assert_eq!(
        d.convert(
            &none,
            vec![crontab("a", "v1")],
            "stable.example.com/v2",
            &resolver
        )
        .await
        .unwrap_err(),
        "conversion webhook for stable.example.com/v1, Kind=CronTab failed: Post \"https://gone.test.svc:443/\": service \"gone\" not found"
    );
}
