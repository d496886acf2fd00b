//! Integration tests of the protobuf wire format with an independent protobuf client:
//! the `k8s-pb` (prost) types over `kube`'s raw requests, as Go clients send them.

use testenv as common;

use std::time::Duration;

use futures::StreamExt;
use k8s_pb::api::core::v1::{ConfigMap, ConfigMapList};
use k8s_pb::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Status, WatchEvent};
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;

const PB: &str = "application/vnd.kubernetes.protobuf";

/// Wraps a message in upstream's envelope: `k8s\0` + runtime.Unknown.
fn envelope(api_version: &str, kind: &str, msg: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(msg.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// Opens an envelope, checking its kind.
fn open<M: Message + Default>(bytes: &[u8], kind: &str) -> M {
    assert!(
        bytes.starts_with(b"k8s\0"),
        "no protobuf magic in {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    let unknown = Unknown::decode(&bytes[4..]).expect("runtime.Unknown");
    assert_eq!(
        unknown.type_meta.and_then(|t| t.kind).as_deref(),
        Some(kind)
    );
    M::decode(unknown.raw.unwrap_or_default().as_slice()).expect("message")
}

fn configmap(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: Some(ObjectMeta {
            name: Some(name.into()),
            labels: [("app".to_string(), "pb".to_string())].into(),
            ..Default::default()
        }),
        data: [("k".to_string(), value.to_string())].into(),
        ..Default::default()
    }
}

async fn send(
    client: &kube::Client,
    method: http::Method,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("Accept", PB)
        .header("Content-Type", content_type)
        .body(body)
        .expect("request");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, bytes)
}

#[tokio::test]
async fn protobuf_create_get_list_patch_and_errors() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let base = "/api/v1/namespaces/default/configmaps";

    let (code, body) = send(
        &client,
        http::Method::POST,
        base,
        PB,
        envelope("v1", "ConfigMap", &configmap("pb1", "v1")),
    )
    .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let created: ConfigMap = open(&body, "ConfigMap");
    let meta = created.metadata.expect("metadata");
    assert_eq!(meta.name.as_deref(), Some("pb1"));
    assert!(
        meta.uid.is_some() && meta.resource_version.is_some() && meta.creation_timestamp.is_some()
    );
    assert_eq!(created.data["k"], "v1");

    let (code, body) = send(
        &client,
        http::Method::GET,
        &format!("{base}/pb1"),
        PB,
        Vec::new(),
    )
    .await;
    assert_eq!(code, 200);
    let got: ConfigMap = open(&body, "ConfigMap");
    assert_eq!(
        got.metadata
            .and_then(|m| m.labels.get("app").cloned())
            .as_deref(),
        Some("pb")
    );

    send(
        &client,
        http::Method::POST,
        base,
        PB,
        envelope("v1", "ConfigMap", &configmap("pb2", "v2")),
    )
    .await;
    let (code, body) = send(
        &client,
        http::Method::GET,
        &format!("{base}?labelSelector=app%3Dpb"),
        PB,
        Vec::new(),
    )
    .await;
    assert_eq!(code, 200);
    let list: ConfigMapList = open(&body, "ConfigMapList");
    assert_eq!(list.items.len(), 2);
    assert!(list.metadata.and_then(|m| m.resource_version).is_some());

    // a JSON merge patch answered in protobuf
    let (code, body) = send(
        &client,
        http::Method::PATCH,
        &format!("{base}/pb1"),
        "application/merge-patch+json",
        br#"{"data":{"k":"patched"}}"#.to_vec(),
    )
    .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let patched: ConfigMap = open(&body, "ConfigMap");
    assert_eq!(patched.data["k"], "patched");

    // errors are protobuf Status objects
    let (code, body) = send(
        &client,
        http::Method::GET,
        &format!("{base}/missing"),
        PB,
        Vec::new(),
    )
    .await;
    assert_eq!(code, 404);
    let status: Status = open(&body, "Status");
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(status.code, Some(404));
    let (code, body) = send(
        &client,
        http::Method::POST,
        base,
        PB,
        envelope("v1", "ConfigMap", &configmap("pb1", "dup")),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(
        open::<Status>(&body, "Status").reason.as_deref(),
        Some("AlreadyExists")
    );
    // garbage is a 400, and nothing is stored
    let (code, _) = send(
        &client,
        http::Method::POST,
        base,
        PB,
        b"k8s\0\xff\xff\xff".to_vec(),
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn protobuf_watch_frames() {
    let server = common::TestServer::start();
    let client = server.client().await;
    let base = "/api/v1/namespaces/default/configmaps";
    let (_, body) = send(
        &client,
        http::Method::POST,
        base,
        PB,
        envelope("v1", "ConfigMap", &configmap("w0", "a")),
    )
    .await;
    let rv = open::<ConfigMap>(&body, "ConfigMap")
        .metadata
        .and_then(|m| m.resource_version)
        .expect("rv");

    let req = http::Request::get(format!(
        "{base}?watch=true&resourceVersion={rv}&timeoutSeconds=10"
    ))
    .header("Accept", "application/vnd.kubernetes.protobuf;stream=watch")
    .body(Vec::new())
    .expect("request");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("watch");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/vnd.kubernetes.protobuf;stream=watch")
    );
    let mut body = http_body_util::BodyStream::new(resp.into_body());

    send(
        &client,
        http::Method::POST,
        base,
        PB,
        envelope("v1", "ConfigMap", &configmap("w1", "b")),
    )
    .await;
    send(
        &client,
        http::Method::DELETE,
        &format!("{base}/w0"),
        "application/json",
        Vec::new(),
    )
    .await;

    let mut buf = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < 2 {
        let frame = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("frames in time")
            .expect("open")
            .expect("ok");
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        // 4-byte big-endian length, then a bare WatchEvent whose object is enveloped
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let ev = WatchEvent::decode(&buf[4..4 + len]).expect("WatchEvent");
            let raw = ev.object.and_then(|o| o.raw).expect("object");
            let cm: ConfigMap = open(&raw, "ConfigMap");
            events.push(format!(
                "{} {}",
                ev.r#type.unwrap_or_default(),
                cm.metadata.and_then(|m| m.name).unwrap_or_default()
            ));
            buf.drain(..4 + len);
        }
    }
    assert_eq!(events, vec!["ADDED w1", "DELETED w0"]);
}
