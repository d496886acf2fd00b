//! `serviceaccounts/token` (TokenRequest, `kubectl create token`) and service account
//! issuer discovery (`/.well-known/openid-configuration`, `/openid/v1/jwks`).

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use machinery::resource::ResourceInfo;
use machinery::{ApiError, FieldError};
use serde_json::{Value, json};

use super::resource::{decode, read_body};
use super::{raw_response, respond};
use crate::negotiation::Accept;
use crate::request_info::RequestInfo;
use crate::server::AppState;
use crate::serviceaccount::bound_claims;

/// Upstream's bounds on a requested lifetime.
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;
const DEFAULT_EXPIRATION: i64 = 3600;

fn invalid(name: &str, field: FieldError) -> ApiError {
    ApiError::invalid("authentication.k8s.io", "TokenRequest", name, &[field])
}

/// Answers a TokenRequest for the service account in the path.
pub async fn request(
    state: &Arc<AppState>,
    res: &ResourceInfo,
    info: &RequestInfo,
    user: &crate::authn::User,
    req: Request,
) -> Result<Response, ApiError> {
    let Some(issuer) = state.token_issuer.as_ref() else {
        return Err(ApiError::not_found("", "serviceaccounts/token", &info.name));
    };
    let (ty, body, _) = read_body(req).await?;
    let tr_res = ResourceInfo {
        group: "authentication.k8s.io".into(),
        kind: "TokenRequest".into(),
        ..res.clone()
    };
    let (_, mut tr) = decode(&body, ty, &tr_res)?;
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    let sa = state.rest.get(res, ns, name)?;
    if state.rest.plugins.on("NodeRestriction") {
        let pods = state.rest.registry.get("", "v1", "pods");
        crate::admission::noderestriction::validate_token_request(
            Some(user),
            res,
            name,
            &tr,
            |pod| match &pods {
                Some(p) => state.rest.get(p, ns, pod),
                None => Err(ApiError::not_found("", "pods", pod)),
            },
        )?;
    }
    let expiration = tr
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION);
    if expiration < MIN_EXPIRATION {
        return Err(invalid(
            name,
            FieldError::invalid(
                "spec.expirationSeconds",
                json!(expiration),
                "may not specify a duration less than 10 minutes",
            ),
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(invalid(
            name,
            FieldError::invalid(
                "spec.expirationSeconds",
                json!(expiration),
                "may not specify a duration larger than 2^32 seconds",
            ),
        ));
    }
    let audiences: Vec<String> = match tr.pointer("/spec/audiences").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => issuer.audiences.clone(),
    };
    let bound = match tr.pointer("/spec/boundObjectRef").filter(|b| b.is_object()) {
        None => None,
        Some(r) => {
            let kind = r
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let (group, plural) = match kind.as_str() {
                "Pod" => ("", "pods"),
                "Secret" => ("", "secrets"),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for object of kind {other:?}"
                    )));
                }
            };
            let obj_name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let obj_res = state
                .rest
                .registry
                .get(group, "v1", plural)
                .ok_or_else(|| ApiError::internal("pods are not served"))?;
            let obj = state.rest.get(&obj_res, ns, obj_name)?;
            if let Some(uid) = r
                .get("uid")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                && obj.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
            {
                return Err(ApiError::conflict(
                    "",
                    plural,
                    obj_name,
                    &format!(
                        "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
            Some((kind, obj))
        }
    };
    let claims = bound_claims(
        issuer,
        &sa,
        &audiences,
        expiration,
        bound.as_ref().map(|(k, o)| (k.as_str(), o)),
    );
    let token = issuer.sign(&claims).map_err(ApiError::internal)?;
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let expires = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    tr["apiVersion"] = json!("authentication.k8s.io/v1");
    tr["kind"] = json!("TokenRequest");
    tr["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": null});
    tr["spec"]["audiences"] = json!(audiences);
    tr["spec"]["expirationSeconds"] = json!(expiration);
    if tr.pointer("/spec/boundObjectRef").is_none() {
        tr["spec"]["boundObjectRef"] = Value::Null;
    }
    tr["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(respond(StatusCode::CREATED, &tr, Accept::JSON))
}

/// `/.well-known/openid-configuration` and `/openid/v1/jwks`.
pub fn discovery(state: &Arc<AppState>, path: &str) -> Response {
    let Some(issuer) = state.token_issuer.as_ref() else {
        return raw_response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"404 page not found\n".to_vec(),
        );
    };
    let body = if path == "/openid/v1/jwks" {
        issuer.jwks()
    } else {
        let base = issuer.issuer.trim_end_matches('/');
        issuer.discovery(&format!("{base}/openid/v1/jwks"))
    };
    let ct = if path == "/openid/v1/jwks" {
        "application/jwk-set+json"
    } else {
        "application/json"
    };
    raw_response(
        StatusCode::OK,
        ct,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}
