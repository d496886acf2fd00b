//! Front-proxy authentication (`--requestheader-*`), as upstream's request-header
//! authenticator: a request whose client certificate chains to
//! `--requestheader-client-ca-file` (and whose CN is in `--requestheader-allowed-names`,
//! when that list is set) is the request of the user its `X-Remote-User`-style headers
//! name. That is how an aggregating API server in front of this one passes its users on.
//!
//! The TLS layer accepts certificates of either CA; this module then tells, per
//! connection, which CA a certificate really chains to, so a front-proxy certificate is
//! never taken for a user certificate of `--client-ca-file` or the other way round.
//! It also publishes `kube-system/extension-apiserver-authentication`, the ConfigMap that
//! aggregated API servers read to learn how to trust us.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use http::HeaderMap;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::authn::{User, user_from_cert};
use crate::rest::{Rest, WriteOptions};

const CONFIGMAP: &str = "extension-apiserver-authentication";

/// What `--requestheader-*` configure.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub client_ca_file: Option<String>,
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
}

/// Who a connection's client certificate speaks for, decided once per connection.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The user of a certificate that chains to `--client-ca-file`.
    pub cert_user: Option<User>,
    /// Set when the certificate chains to `--requestheader-client-ca-file` with an allowed
    /// CN: the request headers then name the user.
    pub front_proxy: bool,
    /// The client's address, for the audit log's sourceIPs.
    pub addr: Option<std::net::SocketAddr>,
    /// A certificate was presented that neither CA vouches for: without a bearer token
    /// that authenticates, the request is Unauthorized (upstream's x509 authenticator
    /// error), never anonymous.
    pub cert_rejected: bool,
}

/// The client-certificate verifiers of both CAs, used after the handshake.
pub struct Verifiers {
    client: Option<Arc<dyn ClientCertVerifier>>,
    proxy: Option<Arc<dyn ClientCertVerifier>>,
    allowed_names: Vec<String>,
}

fn verifier(ca_file: &str) -> Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in crate::server::load_certs(ca_file)? {
        roots
            .add(c)
            .with_context(|| format!("adding {ca_file} to a client CA pool"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .with_context(|| format!("building the client certificate verifier of {ca_file}"))
}

/// Requests a client certificate (hinting both CAs) and checks only that the client
/// holds its key; which CA, if any, issued it is decided after the handshake.
#[derive(Debug)]
struct RequestOnly(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequestOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl Verifiers {
    pub fn new(client_ca_file: Option<&str>, opts: &Options) -> Result<Self> {
        Ok(Verifiers {
            client: client_ca_file.map(verifier).transpose()?,
            proxy: opts.client_ca_file.as_deref().map(verifier).transpose()?,
            allowed_names: opts.allowed_names.clone(),
        })
    }

    /// The verifier the TLS handshake uses: any certificate (or none) is accepted once
    /// the client proves it holds the key, as upstream's server only requests one; the
    /// CAs are checked by [`Verifiers::peer`], so a stranger's certificate gets a 401
    /// answer instead of a failed handshake.
    pub fn handshake(
        client_ca_file: Option<&str>,
        opts: &Options,
    ) -> Result<Option<Arc<dyn ClientCertVerifier>>> {
        let files: Vec<&str> = client_ca_file
            .into_iter()
            .chain(opts.client_ca_file.as_deref())
            .collect();
        if files.is_empty() {
            return Ok(None);
        }
        let mut roots = rustls::RootCertStore::empty();
        for f in files {
            for c in crate::server::load_certs(f)? {
                roots
                    .add(c)
                    .with_context(|| format!("adding {f} to the client CA pool"))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .context("building the client certificate verifier")?;
        Ok(Some(Arc::new(RequestOnly(v))))
    }

    /// Which CA the presented chain really belongs to.
    pub fn peer(&self, chain: Option<&[CertificateDer<'static>]>) -> Peer {
        let Some((end, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return Peer::default();
        };
        // (the caller fills in the address)
        let now = UnixTime::now();
        let verified = |v: &Option<Arc<dyn ClientCertVerifier>>| {
            v.as_ref()
                .is_some_and(|v| v.verify_client_cert(end, intermediates, now).is_ok())
        };
        let cert_user = if verified(&self.client) {
            user_from_cert(end.as_ref())
        } else {
            None
        };
        let front_proxy = verified(&self.proxy) && self.name_allowed(end.as_ref());
        Peer {
            cert_rejected: cert_user.is_none() && !front_proxy,
            cert_user,
            front_proxy,
            addr: None,
        }
    }

    fn name_allowed(&self, der: &[u8]) -> bool {
        if self.allowed_names.is_empty() {
            return true;
        }
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return false;
        };
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or("");
        self.allowed_names.iter().any(|n| n == cn)
    }
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
}

/// Decodes `%XX` escapes of an extra key, as upstream unescapes header names.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user the front-proxy headers name: the first non-empty username header, every
/// group header value, the extras under the prefixes; None without a username.
pub fn user_from_headers(opts: &Options, headers: &HeaderMap) -> Option<User> {
    let first = |names: &[String]| {
        names
            .iter()
            .find_map(|n| values(headers, n).find(|v| !v.is_empty()))
            .map(str::to_string)
    };
    let name = first(&opts.username_headers)?;
    let mut groups: Vec<String> = opts
        .group_headers
        .iter()
        .flat_map(|h| values(headers, h).map(str::to_string))
        .collect();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        let lower = k.as_str();
        let Some(key) = opts
            .extra_headers_prefix
            .iter()
            .find_map(|p| lower.strip_prefix(p.to_ascii_lowercase().as_str()))
        else {
            continue;
        };
        if let Ok(v) = v.to_str() {
            extra
                .entry(unescape(key).to_lowercase())
                .or_default()
                .push(v.to_string());
        }
    }
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Some(User {
        name,
        groups,
        uid: first(&opts.uid_headers).unwrap_or_default(),
        extra,
    })
}

/// Splits a PEM bundle into its certificate blocks.
fn pem_blocks(bundle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in bundle.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line == "-----END CERTIFICATE-----" {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// Existing blocks first, then ours, each once (upstream combines what other API servers
/// published with its own rather than replacing it).
fn combine_bundles(existing: &str, ours: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for b in pem_blocks(existing).into_iter().chain(pem_blocks(ours)) {
        if !seen.contains(&b) {
            seen.push(b);
        }
    }
    seen.concat()
}

fn combine_lists(existing: Option<&Value>, ours: &[String]) -> String {
    let mut out: Vec<String> = existing
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    for v in ours {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    serde_json::to_string(&out).unwrap_or_else(|_| "[]".into())
}

/// The data of `extension-apiserver-authentication`: the client CA, and the front-proxy
/// settings when a front-proxy CA is configured, merged with what is already there.
pub fn configmap_data(
    existing: &Value,
    client_ca: Option<&str>,
    opts: &Options,
    proxy_ca: Option<&str>,
) -> Value {
    let mut data = serde_json::Map::new();
    let old = |k: &str| existing.get(k);
    let old_str = |k: &str| old(k).and_then(Value::as_str).unwrap_or("");
    let client = combine_bundles(old_str("client-ca-file"), client_ca.unwrap_or(""));
    if !client.is_empty() {
        data.insert("client-ca-file".into(), json!(client));
    }
    let proxy = combine_bundles(
        old_str("requestheader-client-ca-file"),
        proxy_ca.unwrap_or(""),
    );
    if !proxy.is_empty() {
        let lists = [
            ("requestheader-username-headers", &opts.username_headers),
            ("requestheader-uid-headers", &opts.uid_headers),
            ("requestheader-group-headers", &opts.group_headers),
            (
                "requestheader-extra-headers-prefix",
                &opts.extra_headers_prefix,
            ),
            ("requestheader-allowed-names", &opts.allowed_names),
        ];
        for (k, ours) in lists {
            data.insert(k.into(), json!(combine_lists(old(k), ours)));
        }
        data.insert("requestheader-client-ca-file".into(), json!(proxy));
    }
    Value::Object(data)
}

/// Writes `kube-system/extension-apiserver-authentication` when its data differs from
/// what it should hold; merges again when another API server wrote it at the same time.
pub async fn publish(rest: &Rest, client_ca_file: Option<&str>, opts: &Options) -> Result<()> {
    let read = |f: Option<&str>| -> Result<Option<String>> {
        f.map(|f| std::fs::read_to_string(f).with_context(|| format!("reading {f}")))
            .transpose()
    };
    let client_ca = read(client_ca_file)?;
    let proxy_ca = read(opts.client_ca_file.as_deref())?;
    let res = rest
        .registry
        .get("", "v1", "configmaps")
        .context("configmaps are not served")?;
    let write = WriteOptions {
        field_manager: "kube-apiserver".into(),
        ..Default::default()
    };
    crate::bootstrap::retry_on_conflict(CONFIGMAP, || async {
        let current = rest.get_stored(&res, "kube-system", CONFIGMAP);
        let existing = current
            .as_ref()
            .and_then(|c| c.get("data"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        let data = configmap_data(&existing, client_ca.as_deref(), opts, proxy_ca.as_deref());
        match current {
            Some(cm) if cm.get("data") == Some(&data) => Ok(()),
            Some(cm) => {
                let mut cm = (*cm).clone();
                cm["data"] = data;
                rest.update(&res, "kube-system", CONFIGMAP, "", cm, &write)
                    .await
                    .map(|_| ())
            }
            None => {
                let cm = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": CONFIGMAP, "namespace": "kube-system"},
                    "data": data,
                });
                rest.create(&res, "kube-system", cm, &write)
                    .await
                    .map(|_| ())
            }
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("writing kube-system/{CONFIGMAP}: {}", e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            username_headers: vec!["X-Remote-User".into()],
            uid_headers: vec!["X-Remote-Uid".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_headers_prefix: vec!["X-Remote-Extra-".into()],
            ..Options::default()
        }
    }

    #[test]
    fn headers_name_the_user() {
        let mut h = HeaderMap::new();
        h.insert("x-remote-user", "alice".parse().expect("header"));
        h.append("x-remote-group", "devs".parse().expect("header"));
        h.append("x-remote-group", "ops".parse().expect("header"));
        h.insert("x-remote-uid", "u-1".parse().expect("header"));
        h.append("x-remote-extra-scopes", "a".parse().expect("header"));
        h.append("x-remote-extra-scopes", "b".parse().expect("header"));
        h.append(
            "x-remote-extra-example.com%2fteam",
            "x".parse().expect("header"),
        );
        let u = user_from_headers(&opts(), &h).expect("user");
        assert_eq!(u.name, "alice");
        assert_eq!(u.uid, "u-1");
        assert_eq!(u.groups, vec!["devs", "ops", "system:authenticated"]);
        assert_eq!(u.extra["scopes"], vec!["a", "b"]);
        assert_eq!(u.extra["example.com/team"], vec!["x"]);
        // no username header: this authenticator does not decide
        h.remove("x-remote-user");
        assert!(user_from_headers(&opts(), &h).is_none());
    }

    #[test]
    fn configmap_merges_with_what_is_there() {
        let ca = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
        let other = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let existing = json!({
            "requestheader-client-ca-file": other,
            "requestheader-username-headers": "[\"X-Other\"]",
        });
        let data = configmap_data(&existing, Some(ca), &opts(), Some(ca));
        assert_eq!(data["client-ca-file"], ca);
        assert_eq!(data["requestheader-client-ca-file"], format!("{other}{ca}"));
        assert_eq!(
            data["requestheader-username-headers"],
            "[\"X-Other\",\"X-Remote-User\"]"
        );
        assert_eq!(data["requestheader-allowed-names"], "[]");
        // without a front-proxy CA only the client CA is published
        let data = configmap_data(&json!({}), Some(ca), &opts(), None);
        assert_eq!(data, json!({"client-ca-file": ca}));
    }
}
