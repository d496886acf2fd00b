//! The aggregation layer (apiregistration.k8s.io/v1 APIServices), as upstream's
//! kube-aggregator runs it in front of the API server:
//! - every group/version the server serves itself has a `Local` APIService (created and
//!   removed here, labelled `kube-aggregator.kubernetes.io/automanaged`);
//! - a Service-backed APIService is checked for availability (its discovery document is
//!   fetched through the Service, with the front-proxy client certificate); while it is
//!   available its resources join the registry (so discovery, aggregated discovery and
//!   `kubectl api-resources` list them) and every request under `/apis/<group>/<version>`
//!   is proxied to it, authenticated and authorized here and passed on with the
//!   `X-Remote-User`/`X-Remote-Group` headers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use machinery::ApiError;
use machinery::resource::ResourceInfo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};

use crate::authn::User;
use crate::rest::{Rest, now};

const PREFIX: &str = "/registry/apiservices/";
const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";
/// How often Service-backed APIServices are checked again.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// How long one availability check or proxied connection set-up may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The front-proxy client identity (`--proxy-client-cert-file`/`--proxy-client-key-file`).
#[derive(Clone)]
pub struct ProxyIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
}

/// One available Service-backed APIService.
struct Backend {
    namespace: String,
    service: String,
    port: i32,
    tls: Arc<rustls::ClientConfig>,
}

/// An aggregated server's own OpenAPI documents for one group/version.
#[derive(Clone, Default)]
pub struct OpenApiDocs {
    pub v3: Option<Value>,
    pub v2: Option<Value>,
}

/// The aggregator's state: which group/versions are proxied, and to where.
#[derive(Default)]
pub struct Aggregator {
    backends: RwLock<HashMap<(String, String), Arc<Backend>>>,
    /// The OpenAPI documents of available backends, by (group, version).
    openapi: RwLock<HashMap<(String, String), OpenApiDocs>>,
    /// Registry entries added for available backends.
    added: RwLock<HashSet<(String, String, String)>>,
    identity: Option<ProxyIdentity>,
}

impl Aggregator {
    pub fn new(identity: Option<ProxyIdentity>) -> Self {
        Aggregator {
            identity,
            ..Default::default()
        }
    }

    /// The OpenAPI documents of the available backends, by (group, version).
    pub fn openapi_docs(&self) -> Vec<((String, String), OpenApiDocs)> {
        self.openapi
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The backend a request path (`/apis/<group>/<version>/...`) goes to, if any.
    fn backend_for(&self, path: &str) -> Option<Arc<Backend>> {
        let rest = path.strip_prefix("/apis/")?;
        let mut parts = rest.split('/');
        let group = parts.next()?;
        let version = parts.next()?;
        self.backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(group.to_string(), version.to_string()))
            .cloned()
    }
}

/// Proxies the request when its path belongs to an available Service-backed APIService;
/// `None` otherwise (the server handles it).
pub async fn proxy(rest: &Rest, user: &User, req: Request) -> Result<Response, Request> {
    let Some(backend) = rest.aggregator.backend_for(req.uri().path()) else {
        return Err(req);
    };
    Ok(forward(rest, &backend, user, req)
        .await
        .unwrap_or_else(|e| crate::handlers::error_response(&e, crate::negotiation::Accept::JSON)))
}

async fn connect(
    rest: &Rest,
    backend: &Backend,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let addr =
        crate::webhooks::service_address(rest, &backend.namespace, &backend.service, backend.port)?;
    let tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
        .map_err(|e| format!("dial tcp {addr}: {e}"))?;
    let name = ServerName::try_from(format!("{}.{}.svc", backend.service, backend.namespace))
        .map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(backend.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))
}

async fn forward(
    rest: &Rest,
    backend: &Backend,
    user: &User,
    req: Request,
) -> Result<Response, ApiError> {
    let unavailable = |why: String| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!("error trying to reach service: {why}"),
        )
    };
    let tls = connect(rest, backend).await.map_err(unavailable)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (mut parts, body) = req.into_parts();
    for h in [
        "authorization",
        "impersonate-user",
        "impersonate-group",
        "impersonate-uid",
    ] {
        parts.headers.remove(h);
    }
    let extra: Vec<_> = parts
        .headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k.starts_with("impersonate-extra-") || k.starts_with("x-remote-")
        })
        .cloned()
        .collect();
    for k in extra {
        parts.headers.remove(k);
    }
    if let Ok(v) = HeaderValue::from_str(&user.name) {
        parts.headers.insert("x-remote-user", v);
    }
    for g in &user.groups {
        if let Ok(v) = HeaderValue::from_str(g) {
            parts.headers.append("x-remote-group", v);
        }
    }
    if !user.uid.is_empty()
        && let Ok(v) = HeaderValue::from_str(&user.uid)
    {
        parts.headers.insert("x-remote-uid", v);
    }
    for (key, values) in &user.extra {
        let Ok(name) = http::HeaderName::from_bytes(
            format!("x-remote-extra-{}", escape_extra_key(key)).as_bytes(),
        ) else {
            continue;
        };
        for value in values {
            if let Ok(v) = HeaderValue::from_str(value) {
                parts.headers.append(name.clone(), v);
            }
        }
    }
    let host = format!("{}.{}.svc", backend.service, backend.namespace);
    if let Ok(v) = HeaderValue::from_str(&host) {
        parts.headers.insert(http::header::HOST, v);
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = path
        .parse()
        .map_err(|_| ApiError::bad_request("invalid path"))?;
    parts.version = http::Version::HTTP_11;
    let resp = sender
        .send_request(http::Request::from_parts(parts, body))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// A TLS client configuration for one APIService: its `caBundle` as the only roots (or
/// no verification with `insecureSkipTLSVerify`), presenting the front-proxy identity.
fn client_config(
    spec: &Value,
    identity: Option<&ProxyIdentity>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if spec.get("insecureSkipTLSVerify") == Some(&Value::Bool(true)) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        use base64::Engine;
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = spec.get("caBundle").and_then(Value::as_str) {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(ca)
                .map_err(|e| format!("caBundle: {e}"))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
                let _ = roots.add(cert);
            }
        }
        builder.with_root_certificates(roots)
    };
    let cfg = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.certs.clone(), id.key.clone_key())
            .map_err(|e| format!("the proxy client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// `insecureSkipTLSVerify`: the certificate is not checked (signatures still are).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Fetches `/apis/<group>/<version>` from a backend: its APIResourceList.
async fn discover(
    rest: &Rest,
    backend: &Backend,
    group: &str,
    version: &str,
) -> Result<Value, String> {
    get_json(rest, backend, &format!("/apis/{group}/{version}")).await
}

/// The backend's OpenAPI documents for its group/version (v3 document, v2 spec), when it
/// serves them; merged into ours so `kubectl explain` and client-side validation see its
/// types.
async fn fetch_openapi(rest: &Rest, backend: &Backend, group: &str, version: &str) -> OpenApiDocs {
    OpenApiDocs {
        v3: get_json(
            rest,
            backend,
            &format!("/openapi/v3/apis/{group}/{version}"),
        )
        .await
        .ok(),
        v2: get_json(rest, backend, "/openapi/v2").await.ok(),
    }
}

/// GETs a JSON document from a backend.
async fn get_json(rest: &Rest, backend: &Backend, path: &str) -> Result<Value, String> {
    let tls = connect(rest, backend).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header(
            http::header::HOST,
            format!("{}.{}.svc", backend.service, backend.namespace),
        )
        .header(http::header::ACCEPT, "application/json")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(DIAL_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| "context deadline exceeded".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    use http_body_util::BodyExt;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(format!("bad status from {path}: {}", status.as_u16()));
    }
    serde_json::from_slice(&body).map_err(|e| format!("decoding {path}: {e}"))
}

/// The registry entries of a backend's APIResourceList.
fn resources_of(group: &str, version: &str, list: &Value) -> Vec<ResourceInfo> {
    let entries = list["resources"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<ResourceInfo> = Vec::new();
    for e in &entries {
        let name = e["name"].as_str().unwrap_or("");
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let subresources = entries
            .iter()
            .filter_map(|s| s["name"].as_str()?.strip_prefix(&format!("{name}/")))
            .map(String::from)
            .collect();
        out.push(ResourceInfo {
            group: group.into(),
            version: version.into(),
            kind: e["kind"].as_str().unwrap_or("").into(),
            plural: name.into(),
            singular: e["singularName"].as_str().unwrap_or("").into(),
            short_names: crate::crd::controller::strings(e, "/shortNames"),
            categories: crate::crd::controller::strings(e, "/categories"),
            namespaced: e["namespaced"].as_bool().unwrap_or(false),
            verbs: crate::crd::controller::strings(e, "/verbs"),
            subresources,
            storage_resource: format!("{group}/{name}"),
            storage_version: version.into(),
            definition: String::new(),
            selectable_fields: Vec::new(),
        });
    }
    out
}

fn condition(status: &str, reason: &str, message: &str, old: &Value) -> Value {
    let since = old["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
        .filter(|c| c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now()));
    json!({"conditions": [{
        "type": "Available", "status": status, "lastTransitionTime": since,
        "reason": reason, "message": message,
    }]})
}

/// Runs for as long as the server does: keeps Local APIServices for what the server
/// serves, checks Service-backed ones, and keeps backends and registry in step.
pub async fn run(rest: Rest) {
    let mut last_generation = u64::MAX;
    loop {
        if rest.registry.generation() != last_generation {
            register_local(&rest).await;
            last_generation = rest.registry.generation();
        }
        check_all(&rest).await;
        let from = rest.store.current_revision();
        let Ok(mut watch) = rest.store.watch(PREFIX, from) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // the next round starts on a change of an APIService, or after CHECK_EVERY
        let _ = tokio::time::timeout(CHECK_EVERY, watch.next()).await;
    }
}

/// An extra key as a header name: characters a header name cannot hold are `%XX`
/// escaped, as upstream's proxy escapes them.
fn escape_extra_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The APIService name of a group/version: `v1.apps`, `v1.` for the core group.
fn name_of(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// Creates the Local APIServices of what the registry serves and removes automanaged
/// ones whose group/version is gone. Also called once before the server reports ready, so
/// the built-in APIServices exist from the first request on.
pub async fn register_local(rest: &Rest) {
    let mut wanted: HashMap<String, (String, String, bool)> = HashMap::new();
    for g in rest.registry.groups() {
        for v in &g.versions {
            let builtin = crate::conversion::is_builtin_group(&g.name);
            if rest.aggregator.owns_group(&g.name, v) {
                continue;
            }
            wanted.insert(name_of(&g.name, v), (g.name.clone(), v.clone(), builtin));
        }
    }
    let (existing, _) = rest.store.snapshot(PREFIX);
    for obj in &existing {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let managed = obj.pointer(&format!(
            "/metadata/labels/{}",
            AUTOMANAGED.replace('/', "~1")
        ));
        if managed.is_some() && !wanted.contains_key(name) && obj["spec"]["service"].is_null() {
            let _ = rest.store.delete(&format!("{PREFIX}{name}"), None).await;
        }
    }
    for (name, (group, version, builtin)) in wanted {
        let key = format!("{PREFIX}{name}");
        if rest.store.get(&key).is_some() {
            continue;
        }
        let (group_priority, version_priority) = if builtin { (17000, 15) } else { (1000, 100) };
        let obj = json!({
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {
                "name": name,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": now(),
                "labels": {AUTOMANAGED: if builtin { "onstart" } else { "true" }},
            },
            "spec": {
                "group": group, "version": version,
                "groupPriorityMinimum": group_priority, "versionPriority": version_priority,
            },
            "status": {"conditions": [{
                "type": "Available", "status": "True", "lastTransitionTime": now(),
                "reason": "Local", "message": "Local APIServices are always available",
            }]},
        });
        if let Err(e) = rest.store.create(&key, obj).await {
            tracing::debug!(apiservice = %name, error = %e, "registering a local APIService failed");
        }
    }
}

impl Aggregator {
    fn owns_group(&self, group: &str, version: &str) -> bool {
        self.backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&(group.to_string(), version.to_string()))
    }
}

/// Checks every APIService once: status conditions, backends, registry entries.
async fn check_all(rest: &Rest) {
    let (items, _) = rest.store.snapshot(PREFIX);
    let mut backends = HashMap::new();
    let mut infos = Vec::new();
    for obj in &items {
        let spec = &obj["spec"];
        let group = spec["group"].as_str().unwrap_or("").to_string();
        let version = spec["version"].as_str().unwrap_or("").to_string();
        let status = if spec["service"].is_null() {
            condition(
                "True",
                "Local",
                "Local APIServices are always available",
                obj,
            )
        } else {
            let svc = &spec["service"];
            let namespace = svc["namespace"].as_str().unwrap_or("").to_string();
            let service = svc["name"].as_str().unwrap_or("").to_string();
            let port = svc["port"].as_i64().unwrap_or(443) as i32;
            match client_config(spec, rest.aggregator.identity.as_ref()) {
                Err(e) => condition("False", "FailedDiscoveryCheck", &e, obj),
                Ok(tls) => {
                    let backend = Backend {
                        namespace: namespace.clone(),
                        service: service.clone(),
                        port,
                        tls,
                    };
                    if rest
                        .store
                        .get(&format!("/registry/services/specs/{namespace}/{service}"))
                        .is_none()
                    {
                        condition(
                            "False",
                            "ServiceNotFound",
                            &format!("service/{service} in \"{namespace}\" is not present"),
                            obj,
                        )
                    } else {
                        match discover(rest, &backend, &group, &version).await {
                            Ok(list) => {
                                let docs = fetch_openapi(rest, &backend, &group, &version).await;
                                rest.aggregator
                                    .openapi
                                    .write()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert((group.clone(), version.clone()), docs);
                                infos.extend(resources_of(&group, &version, &list));
                                backends
                                    .insert((group.clone(), version.clone()), Arc::new(backend));
                                condition("True", "Passed", "all checks passed", obj)
                            }
                            Err(e) => condition(
                                "False",
                                "FailedDiscoveryCheck",
                                &format!(
                                    "failing or missing response from https://{service}.{namespace}.svc:{port}/apis/{group}/{version}: {e}"
                                ),
                                obj,
                            ),
                        }
                    }
                }
            }
        };
        if obj.get("status") != Some(&status) {
            let mut updated = (**obj).clone();
            updated["status"] = status;
            let key = format!("{PREFIX}{}", obj["metadata"]["name"].as_str().unwrap_or(""));
            let _ = rest
                .store
                .update(&key, crate::rest::rv_of(obj), updated)
                .await;
        }
    }
    rest.aggregator
        .openapi
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|gv, _| backends.contains_key(gv));
    *rest
        .aggregator
        .backends
        .write()
        .unwrap_or_else(|e| e.into_inner()) = backends;
    // registry: drop what went, add what came
    let wanted: HashSet<(String, String, String)> = infos
        .iter()
        .map(|i| (i.group.clone(), i.version.clone(), i.plural.clone()))
        .collect();
    let previous: HashSet<(String, String, String)> = rest
        .aggregator
        .added
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for (g, v, p) in previous.difference(&wanted) {
        rest.registry.remove_version(g, v, p);
    }
    for info in infos {
        let same = rest
            .registry
            .get(&info.group, &info.version, &info.plural)
            .is_some_and(|r| *r == info);
        if !same {
            rest.registry.add(info);
        }
    }
    *rest
        .aggregator
        .added
        .write()
        .unwrap_or_else(|e| e.into_inner()) = wanted;
}
