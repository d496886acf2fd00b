//! A real HTTPS webhook server for tests: a throwaway CA made with rcgen, a rustls
//! listener on 127.0.0.1, and per-test handlers that answer review JSON (admission and
//! conversion webhooks, aggregated API servers).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// The name the test Service answers to, and which the server certificate covers.
pub const SERVICE_HOST: &str = "hook.test.svc";

/// A CA and a server configuration whose certificate it signed.
pub struct Pki {
    /// `caBundle` as stored in webhook configurations (base64 of PEM).
    pub ca_bundle: String,
    server: Arc<rustls::ServerConfig>,
}

pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        SERVICE_HOST.to_string(),
    ])
    .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server cert");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    Pki {
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_cert.pem()),
        server: Arc::new(server),
    }
}

type Reply = Pin<Box<dyn Future<Output = (u16, Value)> + Send>>;
/// Answers one POST: `(path and query, request JSON) -> (status, response JSON)`.
pub type Handler = Arc<dyn Fn(String, Value) -> Reply + Send + Sync>;

pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(String, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (u16, Value)> + Send + 'static,
{
    Arc::new(move |path, body| Box::pin(f(path, body)))
}

/// One request as the test server saw it.
#[derive(Debug, Clone)]
pub struct TestRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names are lower case; a header sent several times appears several times.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl TestRequest {
    /// Every value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

type RequestReply = Pin<Box<dyn Future<Output = (u16, Value)> + Send>>;
/// Answers any request: `request -> (status, response JSON)`.
pub type RequestHandler = Arc<dyn Fn(TestRequest) -> RequestReply + Send + Sync>;

pub fn request_handler<F, Fut>(f: F) -> RequestHandler
where
    F: Fn(TestRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (u16, Value)> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// Starts the HTTPS server for review POSTs; it lives until the test's runtime ends.
pub async fn serve(pki: &Pki, handler: Handler) -> SocketAddr {
    serve_requests(
        pki,
        request_handler(move |req: TestRequest| handler(req.path, req.body)),
    )
    .await
}

/// Starts the HTTPS server for any request (an aggregated API server, say); it lives
/// until the test's runtime ends.
pub async fn serve_requests(pki: &Pki, handler: RequestHandler) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let path = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let method = req.method().to_string();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                            })
                            .collect();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let json: Value = body
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                            .unwrap_or(Value::Null);
                        let (status, reply) = handler(TestRequest {
                            method,
                            path,
                            headers,
                            body: json,
                        })
                        .await;
                        let resp = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(reply.to_string())))
                            .expect("response");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

/// An `AdmissionReview` answer to `review`, echoing its uid, with `fields` merged in.
pub fn answer(review: &Value, fields: Value) -> Value {
    let mut response = json!({"uid": review["request"]["uid"], "allowed": true});
    if let (Some(r), Some(f)) = (response.as_object_mut(), fields.as_object()) {
        r.extend(f.clone());
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// A JSONPatch as webhooks send it (base64 of the JSON array).
pub fn patch(ops: Value) -> Value {
    json!({
        "patchType": "JSONPatch",
        "patch": base64::engine::general_purpose::STANDARD.encode(ops.to_string()),
    })
}
