//! The audit log on the request path (`--audit-policy-file`, `--audit-log-path`, ...):
//! each request the policy selects is written as audit.k8s.io/v1 Events at its stages
//! (RequestReceived, ResponseStarted for watches, ResponseComplete). Policy, event shape
//! and the log file are the `audit` crate's; this module feeds it what a request is.
//!
//! What it must not do: block a request on the log (the backend drops events when its
//! queue is full and counts them) or log credentials (only what upstream's events hold).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use audit::{Attributes, Event, Level, LogBackend, LogOptions, Policy, Stage};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::HeaderValue;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::authn::User;
use crate::request_info::RequestInfo;

/// Bodies larger than this are not recorded (the request itself is unaffected).
const MAX_RECORDED_BODY: usize = 8 << 20;

/// The configured policy and log.
pub struct Auditor {
    policy: Policy,
    backend: Arc<LogBackend>,
}

/// What the audit flags say.
pub struct Flags {
    pub policy_file: Option<PathBuf>,
    pub log: LogOptions,
}

impl Auditor {
    /// None unless both a policy and a log path are given (as upstream, which logs
    /// nothing without a policy).
    pub fn new(flags: &Flags) -> Result<Option<Arc<Auditor>>> {
        let Some(policy_file) = &flags.policy_file else {
            if flags.log.enabled() {
                tracing::warn!(
                    "--audit-log-path is set without --audit-policy-file: no audit events are written"
                );
            }
            return Ok(None);
        };
        if !flags.log.enabled() {
            return Ok(None);
        }
        let policy = Policy::load(policy_file).context("loading --audit-policy-file")?;
        flags
            .log
            .validate()
            .context("invalid --audit-log-* flags")?;
        let backend = LogBackend::open(&flags.log).context("opening --audit-log-path")?;
        Ok(Some(Arc::new(Auditor {
            policy,
            backend: Arc::new(backend),
        })))
    }

    /// Starts the event of a request (RequestReceived is written now); None when the
    /// policy says level None.
    pub fn begin(
        &self,
        user: &User,
        info: &RequestInfo,
        req: &Request,
        audit_id: &str,
    ) -> Option<Audit> {
        let attrs = Attributes {
            user: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
            verb: info.verb.clone(),
            namespace: info.namespace.clone(),
            api_group: info.group.clone(),
            api_version: info.version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
            path: info.path.clone(),
            resource_request: info.is_resource_request,
        };
        let config = self.policy.evaluate(&attrs);
        let headers = req.headers();
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let peer = req
            .extensions()
            .get::<crate::requestheader::Peer>()
            .and_then(|p| p.addr)
            .map(|a: SocketAddr| a.ip().to_string());
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let event = Event::new(
            &config,
            &attrs,
            uri,
            audit::source_ips(
                header("x-forwarded-for"),
                header("x-real-ip"),
                peer.as_deref(),
            ),
            header("user-agent").map(audit::truncate_user_agent),
            Some(audit_id.to_string()),
        )?;
        let audit = Audit {
            event,
            backend: self.backend.clone(),
        };
        audit.emit(Stage::RequestReceived);
        Some(audit)
    }
}

/// One request's event in progress.
pub struct Audit {
    event: Event,
    backend: Arc<LogBackend>,
}

fn user_info(u: &User) -> audit::UserInfo {
    audit::UserInfo {
        username: u.name.clone(),
        uid: u.uid.clone(),
        groups: u.groups.clone(),
        extra: u.extra.clone(),
    }
}

impl Audit {
    fn emit(&self, stage: Stage) {
        if let Some(line) = self.event.at_stage(stage) {
            self.backend.process(line);
        }
    }

    /// Records whom the request impersonates, when it does.
    pub fn impersonated(&mut self, requester: &User, effective: &User) {
        if requester != effective {
            self.event.set_impersonated_user(user_info(effective));
        }
    }

    /// Records the authorization decision.
    pub fn authorized(&mut self, d: &crate::authz::Decision) {
        self.event.add_annotation(
            audit::ANNOTATION_AUTHZ_DECISION,
            if d.allowed { "allow" } else { "forbid" },
        );
        self.event
            .add_annotation(audit::ANNOTATION_AUTHZ_REASON, &d.reason);
    }

    /// Reads the request body when the level records it (and to fill the object
    /// reference), handing back an equivalent request.
    pub async fn capture_request(&mut self, req: Request) -> Request {
        let writes = matches!(req.method().as_str(), "POST" | "PUT" | "PATCH");
        if !writes || self.event.level < Level::Request {
            return req;
        }
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
            Ok(b) => b,
            Err(_) => return Request::from_parts(parts, Body::empty()),
        };
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            if parts.method == http::Method::PATCH {
                self.event.set_request_patch(&v);
            } else {
                self.event.set_request_object(&v);
            }
        }
        Request::from_parts(parts, Body::from(bytes))
    }

    /// Records the response and writes the remaining stages: at once for ordinary
    /// requests; for long-running ones ResponseStarted now and ResponseComplete when the
    /// response body ends.
    pub async fn finish(mut self, resp: Response, long_running: bool) -> Response {
        let code = resp.status().as_u16();
        if long_running {
            self.event.set_response(code, None);
            self.emit(Stage::ResponseStarted);
            let (parts, body) = resp.into_parts();
            let guard = CompleteOnDrop(self);
            let body = body.map_frame(move |frame| {
                // the closure owns the event: it is completed when the body is dropped
                let _owned = &guard;
                frame
            });
            return Response::from_parts(parts, Body::new(body));
        }
        let wants_body = code >= 400 || self.event.level >= Level::RequestResponse;
        if !wants_body {
            self.event.set_response(code, None);
            self.emit(Stage::ResponseComplete);
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
            Ok(b) => b,
            Err(_) => {
                self.event.set_response(code, None);
                self.emit(Stage::ResponseComplete);
                return Response::from_parts(parts, Body::empty());
            }
        };
        let value = serde_json::from_slice::<Value>(&bytes).ok();
        self.event.set_response(code, value.as_ref());
        self.emit(Stage::ResponseComplete);
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// A long-running request's event, completed when its response body is dropped.
struct CompleteOnDrop(Audit);

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        self.0.emit(Stage::ResponseComplete);
    }
}

/// Echoes the request's audit ID, as upstream does on every response.
pub fn set_audit_id(resp: &mut Response, audit_id: &str) {
    if let Ok(v) = HeaderValue::from_str(audit_id) {
        resp.headers_mut().insert("audit-id", v);
    }
}
