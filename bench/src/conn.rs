//! Connections to the API server: one [`Conn`] is one `kube::Client`, and so one hyper
//! connection pool holding a single keep-alive HTTP/1.1 connection as long as it is used
//! by one task at a time. Load phases hand each worker its own `Conn`, so "64 connections"
//! really means 64 TCP+TLS connections.
//!
//! This module owns request sending and error description; it knows nothing about
//! which benchmark is running.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use futures::future::try_join_all;
use http::{Method, Request, StatusCode, header};
use kube::{Client, Config, client::Body};

/// The media type of JSON requests and responses.
pub const JSON: &str = "application/json";
/// The media type of a JSON merge patch.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// One connection to the API server.
#[derive(Clone)]
pub struct Conn {
    client: Client,
}

/// A complete response: status, content type and the whole body.
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    /// The body, fully read.
    pub body: Bytes,
}

/// One pre-built request, sent as is by a load phase.
#[derive(Clone)]
pub struct Op {
    /// The HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/api/v1/namespaces/ns/configmaps`.
    pub path: String,
    /// The `Accept` header.
    pub accept: &'static str,
    /// The body and its content type, for writes.
    pub body: Option<(&'static str, Bytes)>,
    /// The user to act as (`Impersonate-User`), if not the kubeconfig's own.
    pub impersonate: Option<&'static str>,
}

impl Op {
    /// A GET of `path` accepting `accept`.
    pub fn get(path: impl Into<String>, accept: &'static str) -> Self {
        Op {
            method: Method::GET,
            path: path.into(),
            accept,
            body: None,
            impersonate: None,
        }
    }

    /// A request with a JSON (or patch) body.
    pub fn with_body(
        method: Method,
        path: impl Into<String>,
        content_type: &'static str,
        body: Bytes,
    ) -> Self {
        Op {
            method,
            path: path.into(),
            accept: JSON,
            body: Some((content_type, body)),
            impersonate: None,
        }
    }

    /// The same request, sent as `user` (the kubeconfig's user must be allowed to
    /// impersonate).
    pub fn impersonating(self, user: &'static str) -> Self {
        Op {
            impersonate: Some(user),
            ..self
        }
    }
}

/// Builds the client configuration from a kubeconfig file, with kube's automatic retry of
/// 429/503 turned off: throttling must show up as errors in the report, not as latency.
pub async fn config_from(kubeconfig: &str) -> Result<Config> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).with_context(|| {
        format!("cannot read kubeconfig {kubeconfig} (pass --kubeconfig or export KUBECONFIG)")
    })?;
    let mut config =
        Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("kubeconfig {kubeconfig} has no usable current context"))?;
    config.default_retry = false;
    // Long lists and watches must not be cut by a client-side read timeout; every phase
    // bounds itself instead.
    config.read_timeout = None;
    Ok(config)
}

impl Conn {
    /// Creates a new, independent client (and so a new connection on first use).
    pub fn new(config: &Config) -> Result<Self> {
        let client = Client::try_from(config.clone())
            .context("cannot build a Kubernetes client from the kubeconfig")?;
        Ok(Conn { client })
    }

    /// Sends `op` and reads the whole response.
    pub async fn send(&self, op: &Op) -> Result<Reply> {
        let response = self
            .client
            .send(build(op)?)
            .await
            .map_err(|e| anyhow!("{} {}: {e}", op.method, op.path))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| anyhow!("{} {}: reading body: {e}", op.method, op.path))?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    /// Sends `op` and fails unless the status is 2xx.
    pub async fn send_ok(&self, op: &Op) -> Result<Reply> {
        let reply = self.send(op).await?;
        if !reply.status.is_success() {
            return Err(anyhow!(
                "{} {}: {}",
                op.method,
                op.path,
                describe_failure(&reply)
            ));
        }
        Ok(reply)
    }

    /// Starts a streaming GET (a watch) and returns its body as lines once the response
    /// headers arrived.
    pub async fn stream(&self, path: &str) -> Result<impl futures::AsyncBufRead + use<>> {
        let request = Request::get(path)
            .header(header::ACCEPT, JSON)
            .body(Vec::new())
            .context("building a watch request")?;
        self.client
            .request_stream(request)
            .await
            .map_err(|e| anyhow!("GET {path}: {e}"))
    }

    /// The server's version, e.g. `v1.35.0`.
    pub async fn server_version(&self) -> Result<String> {
        Ok(self.client.apiserver_version().await?.git_version)
    }
}

fn build(op: &Op) -> Result<Request<Body>> {
    let mut builder = Request::builder()
        .method(op.method.clone())
        .uri(&op.path)
        .header(header::ACCEPT, op.accept);
    if let Some(user) = op.impersonate {
        builder = builder.header("Impersonate-User", user);
    }
    let request = match &op.body {
        Some((content_type, body)) => builder
            .header(header::CONTENT_TYPE, *content_type)
            .body(Body::from(body.clone())),
        None => builder.body(Body::empty()),
    };
    request.with_context(|| format!("building request {} {}", op.method, op.path))
}

/// Describes a non-2xx reply the way the server did: `409 AlreadyExists: configmaps "x"
/// already exists` from a `metav1.Status`, else the status and the start of the body.
pub fn describe_failure(reply: &Reply) -> String {
    let status: Option<serde_json::Value> = serde_json::from_slice(&reply.body).ok();
    let field = |name: &str| {
        status
            .as_ref()
            .and_then(|s| s.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    match (field("reason"), field("message")) {
        (Some(reason), Some(message)) => format!("{} {reason}: {message}", reply.status.as_u16()),
        _ => {
            let text = String::from_utf8_lossy(&reply.body);
            let text: String = text.chars().take(200).collect();
            format!("{} {}", reply.status.as_u16(), text.trim())
        }
    }
}

/// A set of independent connections, all opened (TLS handshake done) before any timing.
pub struct Pool {
    conns: Vec<Conn>,
}

impl Pool {
    /// Opens `n` connections (at least one) and checks each with `GET /version`.
    pub async fn open(config: &Config, n: usize) -> Result<Self> {
        let n = n.max(1);
        let conns = (0..n)
            .map(|_| Conn::new(config))
            .collect::<Result<Vec<_>>>()?;
        let warm = Op::get("/version", JSON);
        let warm_up = conns.iter().map(|c| c.send_ok(&warm));
        tokio::time::timeout(Duration::from_secs(60), try_join_all(warm_up))
            .await
            .map_err(|_| {
                anyhow!("opening {n} connections took over 60s; is the apiserver overloaded?")
            })?
            .context("opening connections")?;
        Ok(Pool { conns })
    }

    /// The first `n` connections (all of them if there are fewer).
    pub fn take(&self, n: usize) -> &[Conn] {
        &self.conns[..n.min(self.conns.len())]
    }

    /// The first connection, for set-up and single requests.
    pub fn first(&self) -> &Conn {
        &self.conns[0]
    }
}
