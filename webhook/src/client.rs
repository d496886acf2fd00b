//! The HTTPS transport to webhooks: `clientConfig` (URL or Service, `caBundle`), one
//! connection per call, HTTP/1.1 as upstream pins it, and errors worded as Go's HTTP and
//! REST clients word them, since clients see those strings inside webhook failures
//! (`Post "https://svc.ns.svc:443/path?timeout=10s": dial tcp 10.0.0.1:443: connect:
//! connection refused`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::Resolver;

/// `service` of a `clientConfig`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub path: String,
    pub port: i32,
}

/// A webhook's `clientConfig` (admission and conversion share the shape).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ClientConfig {
    pub url: Option<String>,
    pub service: Option<ServiceRef>,
    /// Base64 of PEM certificates, as stored in the API object.
    pub ca_bundle: Option<String>,
}

impl ClientConfig {
    pub(crate) fn from_json(v: &Value) -> Self {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        Self {
            url: s(v, "url"),
            service: v
                .get("service")
                .filter(|s| s.is_object())
                .map(|svc| ServiceRef {
                    namespace: s(svc, "namespace").unwrap_or_default(),
                    name: s(svc, "name").unwrap_or_default(),
                    path: s(svc, "path").unwrap_or_default(),
                    port: svc
                        .get("port")
                        .and_then(Value::as_i64)
                        .and_then(|p| i32::try_from(p).ok())
                        .filter(|p| *p != 0)
                        .unwrap_or(443),
                }),
            ca_bundle: s(v, "caBundle").filter(|b| !b.is_empty()),
        }
    }
}

/// Why a call failed, split as upstream splits it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallError {
    /// No client could be built (bad URL, bad `caBundle`): upstream's
    /// `could not get REST client: ...` cases.
    Client(String),
    /// The request itself failed, worded as Go's REST client reports it.
    Request(String),
}

/// Where a call goes.
#[derive(Debug, Clone)]
struct Endpoint {
    https: bool,
    /// `host[:port]` as written in the URL, for the `Host` header and messages.
    authority: String,
    /// Host without IPv6 brackets: the TLS server name for URLs.
    host: String,
    port: u16,
    server_name: String,
    path: String,
    service: Option<ServiceRef>,
}

/// Go's `path.Join("/", p)`: rooted, cleaned, no trailing slash.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Endpoint {
    fn new(cc: &ClientConfig, webhook: &str) -> Result<Self, String> {
        if let Some(svc) = &cc.service {
            let host = format!("{}.{}.svc", svc.name, svc.namespace);
            let port = u16::try_from(svc.port).map_err(|_| format!("invalid port {}", svc.port))?;
            return Ok(Self {
                https: true,
                authority: format!("{host}:{port}"),
                server_name: host.clone(),
                host,
                port,
                path: clean_path(&svc.path),
                service: Some(svc.clone()),
            });
        }
        let Some(url) = cc.url.as_deref() else {
            return Err(format!(
                "failed calling webhook {webhook:?}: webhook configuration must have either service or URL"
            ));
        };
        let unparsable = |why: &str| {
            format!("failed calling webhook {webhook:?}: Unparsable URL: parse {url:?}: {why}")
        };
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(unparsable("unsupported protocol scheme"));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let path_end = rest[end..].find(['?', '#']).map_or(rest.len(), |i| end + i);
        let path = &rest[end..path_end];
        let (host, port) = split_host_port(authority).ok_or_else(|| unparsable("invalid port"))?;
        if host.is_empty() {
            return Err(unparsable("missing host"));
        }
        Ok(Self {
            https,
            authority: authority.to_string(),
            server_name: host.clone(),
            host,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path: clean_path(path),
            service: None,
        })
    }

    fn url(&self, query: Option<&str>) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match query {
            Some(q) => format!("{scheme}://{}{}?{q}", self.authority, self.path),
            None => format!("{scheme}://{}{}", self.authority, self.path),
        }
    }
}

fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p.parse().ok()?))),
        None => Some((authority.to_string(), None)),
    }
}

/// TLS client configurations by `caBundle`: with a bundle, its certificates are the only
/// trusted roots; without one, nothing is trusted (this process has no system roots), so
/// verification fails as Go's does with an unknown authority.
#[derive(Default)]
pub(crate) struct TlsCache {
    configs: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
}

impl TlsCache {
    fn get(&self, ca_bundle: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
        let key = ca_bundle.unwrap_or_default().to_string();
        let mut cache = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        if let Some(b64) = ca_bundle {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("unable to load root certificates: {e}"))?;
            let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
                .filter_map(Result::ok)
                .collect();
            if certs.is_empty() {
                return Err(
                    "unable to load root certificates: unable to parse bytes as PEM block".into(),
                );
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("unable to load root certificates: {e}"))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // HTTP/1.1 only, as upstream: HTTP/2 would pin all calls to one backend.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        cache.insert(key, config.clone());
        Ok(config)
    }
}

/// Go's wording of common socket errors (`connection refused`, not `Connection refused
/// (os error 111)`).
fn go_errno(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset by peer".into(),
        TimedOut => "i/o timeout".into(),
        HostUnreachable => "no route to host".into(),
        NetworkUnreachable => "network is unreachable".into(),
        AddrNotAvailable => "cannot assign requested address".into(),
        UnexpectedEof => "EOF".into(),
        _ => {
            let s = e.to_string();
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// `BadCertificate` -> `bad certificate`, as Go names TLS alerts.
fn alert_words(debug: &str) -> String {
    let mut out = String::new();
    for (i, ch) in debug.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(ch.to_lowercase());
    }
    out
}

fn presented_name(p: &str) -> String {
    for prefix in ["DnsName(\"", "IpAddress("] {
        if let Some(rest) = p.strip_prefix(prefix) {
            return rest.trim_end_matches(')').trim_end_matches('"').to_string();
        }
    }
    p.to_string()
}

fn x509_message(e: &rustls::CertificateError, server_name: &str) -> String {
    use rustls::CertificateError::*;
    match e {
        UnknownIssuer => "x509: certificate signed by unknown authority".into(),
        NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| presented_name(p)).collect();
            format!(
                "x509: certificate is valid for {}, not {server_name}",
                names.join(", ")
            )
        }
        NotValidForName => format!("x509: certificate is not valid for {server_name}"),
        Expired | ExpiredContext { .. } | NotValidYet | NotValidYetContext { .. } => {
            "x509: certificate has expired or is not yet valid".into()
        }
        BadSignature => "x509: signature verification failed".into(),
        other => format!("x509: {other:?}"),
    }
}

fn tls_error(e: &io::Error, server_name: &str) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(ce)) => format!(
            "tls: failed to verify certificate: {}",
            x509_message(ce, server_name)
        ),
        Some(rustls::Error::AlertReceived(a)) => {
            format!("remote error: tls: {}", alert_words(&format!("{a:?}")))
        }
        Some(other) => format!("tls: {other}"),
        None => go_errno(e),
    }
}

fn hyper_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        "EOF".into()
    } else {
        e.to_string()
    }
}

/// Go's `%q` for the ASCII text found in URLs and short server messages.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The error Go's REST client makes of a non-2xx answer that is not a `Status` object
/// (upstream's `NewGenericServerResponse`).
fn status_error(code: u16, content_type: &str, body: &[u8]) -> String {
    if let Ok(status) = serde_json::from_slice::<Value>(body)
        && status.get("kind").and_then(Value::as_str) == Some("Status")
        && let Some(msg) = status.get("message").and_then(Value::as_str)
    {
        return msg.to_string();
    }
    let server_message = if content_type.starts_with("text/") {
        String::from_utf8_lossy(body).trim().to_string()
    } else {
        "unknown".to_string()
    };
    match code {
        409 => "the server reported a conflict".into(),
        404 => "the server could not find the requested resource".into(),
        400 => "the server rejected our request for an unknown reason".into(),
        401 => "the server has asked for the client to provide credentials".into(),
        403 => "the server does not allow access to the requested resource".into(),
        406 | 415 => {
            "the server was unable to respond with a content type that the client supports".into()
        }
        405 => "the server does not allow this method on the requested resource".into(),
        422 => "the server rejected our request due to an error in our request".into(),
        503 => "the server is currently unable to handle the request".into(),
        504 => "the server was unable to return a response in the time allotted, but may still be processing the request".into(),
        429 => "the server has received too many requests and has asked us to try again later".into(),
        c if c >= 500 => format!(
            "an error on the server ({}) has prevented the request from succeeding",
            go_quote(&server_message)
        ),
        c => format!("the server responded with the status code {c} but did not return more information"),
    }
}

async fn exchange<S>(
    stream: S,
    req: http::Request<Full<Bytes>>,
) -> Result<(u16, String, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_error(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| hyper_error(&e))?;
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| hyper_error(&e))?
        .to_bytes();
    Ok((code, content_type, body))
}

async fn connect(ep: &Endpoint, resolver: &impl Resolver) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = match &ep.service {
        Some(svc) => vec![
            resolver
                .service_address(&svc.namespace, &svc.name, svc.port)
                .await?,
        ],
        None => match ep.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, ep.port)],
            Err(_) => tokio::net::lookup_host((ep.host.as_str(), ep.port))
                .await
                .map_err(|_| format!("dial tcp: lookup {}: no such host", ep.host))?
                .collect(),
        },
    };
    let mut last = format!("dial tcp: lookup {}: no such host", ep.host);
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("dial tcp {addr}: connect: {}", go_errno(&e)),
        }
    }
    Err(last)
}

/// How one attempt failed: below HTTP (gets Go's `Post "<url>": ` prefix) or with a non-2xx
/// answer (Go's REST client reports those bare).
enum Failure {
    Transport(String),
    Status(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Self::Transport(s)
    }
}

/// One POST of `body` (JSON). Returns the 2xx response body.
async fn post_once(
    tls: &TlsCache,
    cc: &ClientConfig,
    ep: &Endpoint,
    query: Option<&str>,
    body: Vec<u8>,
    resolver: &impl Resolver,
) -> Result<Bytes, Failure> {
    let path_and_query = match query {
        Some(q) => format!("{}?{q}", ep.path),
        None => ep.path.clone(),
    };
    let req = http::Request::post(path_and_query)
        .header(http::header::HOST, &ep.authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .header(http::header::USER_AGENT, "kube-apiserver-admission")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Transport(e.to_string()))?;
    let tcp = connect(ep, resolver).await?;
    let (code, content_type, body) = if ep.https {
        let config = tls.get(cc.ca_bundle.as_deref())?;
        let name = ServerName::try_from(ep.server_name.clone())
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(&e, &ep.server_name))?;
        exchange(stream, req).await?
    } else {
        exchange(tcp, req).await?
    };
    if !(200..=206).contains(&code) {
        return Err(Failure::Status(status_error(code, &content_type, &body)));
    }
    Ok(body)
}

/// POSTs `body` to the webhook of `cc` and returns the response body. `timeout_query`
/// adds upstream's `?timeout=<N>s`. Errors carry Go's wording, including the
/// `Post "<url>": ` prefix for transport failures and `context deadline exceeded` on
/// timeout.
pub(crate) async fn post(
    tls: &TlsCache,
    cc: &ClientConfig,
    webhook: &str,
    body: Vec<u8>,
    timeout: Duration,
    timeout_query: bool,
    resolver: &impl Resolver,
) -> Result<Bytes, CallError> {
    let ep = Endpoint::new(cc, webhook).map_err(CallError::Client)?;
    if ep.https {
        tls.get(cc.ca_bundle.as_deref())
            .map_err(CallError::Client)?;
    }
    let query = timeout_query.then(|| format!("timeout={}s", timeout.as_secs().max(1)));
    let url = ep.url(query.as_deref());
    let call = post_once(tls, cc, &ep, query.as_deref(), body, resolver);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(Failure::Status(e))) => Err(CallError::Request(e)),
        Ok(Err(Failure::Transport(e))) => {
            Err(CallError::Request(format!("Post {}: {e}", go_quote(&url))))
        }
        Err(_) => Err(CallError::Request(format!(
            "Post {}: context deadline exceeded",
            go_quote(&url)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_and_url_endpoints() {
        let cc = ClientConfig::from_json(&serde_json::json!({
            "service": {"namespace": "ns", "name": "svc", "path": "/mutate/"}
        }));
        let ep = Endpoint::new(&cc, "w").unwrap();
        assert_eq!(
            ep.url(Some("timeout=10s")),
            "https://svc.ns.svc:443/mutate?timeout=10s"
        );
        assert_eq!(ep.server_name, "svc.ns.svc");

        let cc = ClientConfig::from_json(&serde_json::json!({"url": "https://hooks.example.com"}));
        let ep = Endpoint::new(&cc, "w").unwrap();
        assert_eq!(ep.url(None), "https://hooks.example.com/");
        assert_eq!(ep.port, 443);

        let cc = ClientConfig::from_json(&serde_json::json!({"url": "https://[::1]:8443/x"}));
        let ep = Endpoint::new(&cc, "w").unwrap();
        assert_eq!((ep.host.as_str(), ep.port), ("::1", 8443));

        assert_eq!(
            Endpoint::new(&ClientConfig::default(), "w").unwrap_err(),
            "failed calling webhook \"w\": webhook configuration must have either service or URL"
        );
    }

    #[test]
    fn generic_server_responses() {
        assert_eq!(
            status_error(500, "text/plain", b"boom\n"),
            "an error on the server (\"boom\") has prevented the request from succeeding"
        );
        assert_eq!(
            status_error(404, "", b""),
            "the server could not find the requested resource"
        );
        assert_eq!(
            status_error(
                400,
                "application/json",
                br#"{"kind":"Status","message":"nope"}"#
            ),
            "nope"
        );
    }

    #[test]
    fn bad_ca_bundle_is_reported() {
        let tls = TlsCache::default();
        let b64 = base64::engine::general_purpose::STANDARD.encode("not pem");
        assert_eq!(
            tls.get(Some(&b64)).unwrap_err(),
            "unable to load root certificates: unable to parse bytes as PEM block"
        );
    }
}
