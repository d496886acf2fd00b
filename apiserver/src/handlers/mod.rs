//! HTTP handlers: the request's path becomes a [`RequestInfo`], which picks a handler —
//! health, version, metrics, discovery, OpenAPI, or a resource verb. Handlers decode,
//! call the REST layer, and encode; they hold no resource rules of their own.

mod connect;
mod discovery;
mod health;
mod resource;
mod reviews;
mod scale;
mod token;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use machinery::ApiError;
use serde_json::Value;

use crate::authn::User;
use crate::negotiation::{self, Accept, Encoding};
use crate::request_info::{self, RequestInfo};
use crate::server::AppState;

/// Query parameters (last value wins; `dryRun` may repeat).
#[derive(Debug, Default, Clone)]
pub struct Query {
    map: HashMap<String, String>,
    pub dry_run_all: bool,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if k == "dryRun" && v == "All" {
                q.dry_run_all = true;
            }
            q.map.insert(k.into_owned(), v.into_owned());
        }
        q
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
    /// Rejects unknown `dryRun` values as upstream does.
    pub fn check_dry_run(&self) -> Result<(), ApiError> {
        match self.get("dryRun") {
            None | Some("All") | Some("") => Ok(()),
            Some(other) => Err(ApiError::invalid(
                "meta.k8s.io",
                "",
                "",
                &[machinery::FieldError::not_supported(
                    "dryRun",
                    Value::String(other.into()),
                    &["All"],
                )],
            )),
        }
    }
}

/// Encodes `value` as the client accepts it.
pub fn respond(status: StatusCode, value: &Value, accept: Accept) -> Response {
    match negotiation::encode(value, accept.encoding) {
        Ok(body) => raw_response(status, accept.content_type(), body),
        Err(e) => error_response(&e, Accept::JSON),
    }
}

/// A response with a body already encoded.
pub fn raw_response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

/// A `metav1.Status` error response; protobuf clients get it as protobuf.
pub fn error_response(e: &ApiError, accept: Accept) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let accept = if accept.encoding == Encoding::Protobuf {
        accept
    } else {
        Accept::JSON
    };
    respond(
        status,
        &e.to_status(),
        Accept {
            shape: negotiation::Shape::Object,
            ..accept
        },
    )
}

fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}

/// The single entry point for every request (axum fallback).
pub async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<crate::requestheader::Peer>()
        .cloned()
        .unwrap_or_default();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // as upstream's union authenticator: the front proxy's headers first, then the
    // client certificate, tokens and anonymous
    let proxied = peer
        .front_proxy
        .then(|| {
            crate::requestheader::user_from_headers(&state.config.requestheader, req.headers())
        })
        .flatten();
    let audit_id = audit::audit_id_from_header(
        req.headers()
            .get(audit::HEADER_AUDIT_ID)
            .and_then(|v| v.to_str().ok()),
    );
    let mut resp = authenticated(&state, proxied, &peer, authorization, &audit_id, req).await;
    crate::auditing::set_audit_id(&mut resp, &audit_id);
    resp
}

/// The request once its credentials are read: authentication, audit, impersonation,
/// authorization, then the handlers.
async fn authenticated(
    state: &Arc<AppState>,
    proxied: Option<User>,
    peer: &crate::requestheader::Peer,
    authorization: Option<String>,
    audit_id: &str,
    req: Request,
) -> Response {
    let user = match proxied.map(Ok).unwrap_or_else(|| {
        state.authenticator.authenticate(
            peer.cert_user.as_ref(),
            peer.cert_rejected,
            authorization.as_deref(),
        )
    }) {
        Ok(u) => u,
        Err(e) => return error_response(&e, Accept::JSON),
    };
    let query = Query::parse(req.uri().query());
    let info = request_info::parse(
        req.method(),
        req.uri().path(),
        query.flag("watch"),
        query.get("fieldSelector"),
    );
    let mut audit = state
        .auditor
        .as_ref()
        .and_then(|a| a.begin(&user, &info, &req, audit_id));
    let requester = user.clone();
    let user = match crate::impersonation::impersonate(&state.rest.authorizer, user, req.headers())
    {
        Ok(u) => u,
        Err(e) => {
            let resp = error_response(&e, Accept::JSON);
            return match audit {
                Some(a) => a.finish(resp, false).await,
                None => resp,
            };
        }
    };
    let decision = state.rest.authorizer.decide(&user, &info);
    let allowed = if decision.allowed {
        Ok(())
    } else {
        Err(crate::authz::forbidden(&user, &info, &decision.reason))
    };
    let req = match audit.as_mut() {
        Some(a) => {
            a.impersonated(&requester, &user);
            a.authorized(&decision);
            a.capture_request(req).await
        }
        None => req,
    };
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let long_running = info.verb == "watch"
        || matches!(
            info.subresource.as_str(),
            "exec" | "attach" | "portforward" | "proxy" | "log"
        );
    let resp = match allowed {
        Ok(()) => dispatch(state, user, info.clone(), query, req).await,
        Err(e) => error_response(&e, Accept::JSON),
    };
    state
        .metrics
        .observe(&info, resp.status().as_u16(), started.elapsed());
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    match audit {
        Some(a) => a.finish(resp, long_running).await,
        None => resp,
    }
}

async fn dispatch(
    state: &Arc<AppState>,
    user: User,
    info: RequestInfo,
    query: Query,
    req: Request,
) -> Response {
    let accept_header = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let req = match crate::aggregator::proxy(&state.rest, &user, req).await {
        Ok(proxied) => return proxied,
        Err(req) => req,
    };
    if info.is_resource_request {
        return resource::handle(state, &user, info, query, accept_header.as_deref(), req).await;
    }
    let path = info.path.trim_end_matches('/');
    let accept = accept_header.as_deref();
    match path {
        "/healthz" | "/livez" | "/readyz" => health::check(state, path, &query),
        p if p.starts_with("/healthz/")
            || p.starts_with("/livez/")
            || p.starts_with("/readyz/") =>
        {
            health::single(state, p)
        }
        "/.well-known/openid-configuration" | "/openid/v1/jwks" => token::discovery(state, path),
        "/version" => respond(StatusCode::OK, &crate::version::info(), Accept::JSON),
        "/metrics" => raw_response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(&state.rest.store).into_bytes(),
        ),
        "/openapi/v2" => crate::handlers::discovery::openapi_v2(state, accept),
        p if p == "/openapi/v3" || p.starts_with("/openapi/v3/") => discovery::openapi_v3(state, p),
        _ => discovery::handle(state, &info, accept),
    }
}
