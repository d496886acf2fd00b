//! The serving stack, read top to bottom: TCP -> rustls (serving cert, optional client
//! cert verified against `--client-ca-file`) -> authentication (the client cert's user,
//! else anonymous) -> request handling ([`crate::handlers::handle`]).

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::metrics::Metrics;
use crate::rest::Rest;

/// Serving configuration from flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind_address: String,
    pub secure_port: u16,
    pub advertise_address: String,
    pub tls_cert_file: String,
    pub tls_private_key_file: String,
    pub client_ca_file: Option<String>,
    /// Front-proxy authentication (`--requestheader-*`).
    pub requestheader: crate::requestheader::Options,
}

/// Everything a request handler may use.
pub struct AppState {
    pub rest: Rest,
    pub authenticator: crate::authn::Authenticator,
    /// Issues service-account tokens, when signing keys are configured.
    pub token_issuer: Option<Arc<crate::serviceaccount::TokenIssuer>>,
    pub config: Config,
    pub metrics: Metrics,
    /// The audit log, when --audit-policy-file and --audit-log-path are set.
    pub auditor: Option<Arc<crate::auditing::Auditor>>,
    /// Set once the bootstrap objects (namespaces, `kubernetes` service) exist.
    pub bootstrapped: AtomicBool,
    /// The rendered documents and the registry generation they were rendered at.
    openapi: RwLock<Option<(u64, Arc<OpenApi>)>>,
}

/// The rendered OpenAPI documents (built on first use, again after the registry changes).
struct OpenApi {
    v2_json: Bytes,
    v2_protobuf: Bytes,
    v3_index: Bytes,
    v3: std::collections::HashMap<String, Bytes>,
}

fn to_bytes(v: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

impl AppState {
    pub fn new(
        rest: Rest,
        config: Config,
        authenticator: crate::authn::Authenticator,
        token_issuer: Option<Arc<crate::serviceaccount::TokenIssuer>>,
    ) -> Self {
        AppState {
            rest,
            authenticator,
            token_issuer,
            config,
            metrics: Metrics::default(),
            auditor: None,
            bootstrapped: AtomicBool::new(false),
            openapi: RwLock::new(None),
        }
    }

    fn resources(&self) -> Vec<machinery::resource::ResourceInfo> {
        self.rest
            .registry
            .all()
            .iter()
            .map(|r| (**r).clone())
            .collect()
    }

    fn openapi(&self) -> Arc<OpenApi> {
        let generation = self.rest.registry.generation();
        if let Some((g, docs)) = &*self.openapi.read().unwrap_or_else(|e| e.into_inner())
            && *g == generation
        {
            return docs.clone();
        }
        let resources = self.resources();
        let extra = self.rest.crds.definitions();
        let mut v2 = openapi::v2_with(&resources, &extra);
        let mut v3 = openapi::v3_documents(&resources, &extra);
        // aggregated servers' own documents for their group/versions
        for ((group, version), docs) in self.rest.aggregator.openapi_docs() {
            if let Some(doc) = docs.v3 {
                v3.replace(&format!("apis/{group}/{version}"), doc);
            }
            if let Some(spec) = docs.v2 {
                openapi::v2_merge(&mut v2, &spec, &format!("/apis/{group}/{version}/"));
            }
        }
        let docs = Arc::new(OpenApi {
            v2_json: to_bytes(&v2),
            v2_protobuf: Bytes::from(openapi::v2_protobuf(&v2)),
            v3_index: to_bytes(&v3.index),
            v3: v3
                .documents
                .iter()
                .map(|(k, v)| (k.clone(), to_bytes(v)))
                .collect(),
        });
        *self.openapi.write().unwrap_or_else(|e| e.into_inner()) = Some((generation, docs.clone()));
        docs
    }

    /// The Swagger 2.0 document, as JSON or (what client-go asks for) protobuf.
    pub fn openapi_v2(&self, protobuf: bool) -> Bytes {
        let o = self.openapi();
        if protobuf {
            o.v2_protobuf.clone()
        } else {
            o.v2_json.clone()
        }
    }

    pub fn openapi_v3_index(&self) -> Bytes {
        self.openapi().v3_index.clone()
    }

    /// One group-version document, e.g. `apis/apps/v1`.
    pub fn openapi_v3(&self, path: &str) -> Option<Bytes> {
        self.openapi().v3.get(path).cloned()
    }
}

pub fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading certificate file {path}"))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {path}"))?;
    anyhow::ensure!(!certs.is_empty(), "no certificates found in {path}");
    Ok(certs)
}

pub fn load_key(path: &str) -> Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading private key file {path}"))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("parsing {path}"))?
        .with_context(|| format!("no private key found in {path}"))
}

/// The rustls server config: our serving cert, and client certs verified when offered.
pub fn tls_config(config: &Config) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = load_certs(&config.tls_cert_file)?;
    let key = load_key(&config.tls_private_key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let verifier = crate::requestheader::Verifiers::handshake(
        config.client_ca_file.as_deref(),
        &config.requestheader,
    )?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("loading the serving certificate")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Serves until the process ends.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    tls: rustls::ServerConfig,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let verifiers = Arc::new(crate::requestheader::Verifiers::new(
        state.config.client_ca_file.as_deref(),
        &state.config.requestheader,
    )?);
    let app = Router::new()
        .fallback(crate::handlers::handle)
        .with_state(state);
    loop {
        let (tcp, peer_addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let verifiers = verifiers.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(peer = %peer_addr, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let peer = crate::requestheader::Peer {
                addr: Some(peer_addr),
                ..verifiers.peer(tls.get_ref().1.peer_certificates())
            };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer.clone());
                    let app = app.clone();
                    async move { app.oneshot(req.map(axum::body::Body::new)).await }
                },
            );
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(peer = %peer_addr, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Binds the secure port.
pub async fn listen(config: &Config) -> Result<TcpListener> {
    let addr: SocketAddr = format!("{}:{}", config.bind_address, config.secure_port)
        .parse()
        .with_context(|| format!("invalid --bind-address {}", config.bind_address))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (is another apiserver running?)"))
}
