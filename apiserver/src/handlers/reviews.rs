//! The review APIs, answered from the request itself and never stored:
//! authentication.k8s.io (SelfSubjectReview, TokenReview) and authorization.k8s.io
//! (SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview,
//! SelfSubjectRulesReview), decided by the same authenticator and authorizer as requests.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use super::resource::{decode, read_body};
use super::respond;
use crate::authn::User;
use crate::negotiation::Accept;
use crate::request_info::RequestInfo;
use crate::server::AppState;

/// Whether `res` is one of the review resources this module answers.
pub fn is_review(res: &ResourceInfo) -> bool {
    matches!(
        res.group.as_str(),
        "authentication.k8s.io" | "authorization.k8s.io"
    )
}

fn str_of<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// The request a `resourceAttributes`/`nonResourceAttributes` pair describes.
fn attributes_request(
    spec: &Value,
    namespace_override: Option<&str>,
) -> Result<RequestInfo, ApiError> {
    if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        let ns = namespace_override.unwrap_or(str_of(r, "/namespace"));
        return Ok(RequestInfo {
            is_resource_request: true,
            verb: str_of(r, "/verb").to_string(),
            group: str_of(r, "/group").to_string(),
            version: str_of(r, "/version").to_string(),
            namespace: ns.to_string(),
            resource: str_of(r, "/resource").to_string(),
            subresource: str_of(r, "/subresource").to_string(),
            name: str_of(r, "/name").to_string(),
            field_selector: machinery::fields::FieldSelector::parse(str_of(
                r,
                "/fieldSelector/rawSelector",
            ))
            .unwrap_or_default(),
            ..Default::default()
        });
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|n| n.is_object()) {
        return Ok(RequestInfo {
            path: str_of(n, "/path").to_string(),
            verb: str_of(n, "/verb").to_string(),
            ..Default::default()
        });
    }
    Err(ApiError::invalid(
        "authorization.k8s.io",
        "SubjectAccessReview",
        "",
        &[machinery::FieldError::invalid(
            "spec.resourceAttributes",
            json!(null),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )],
    ))
}

/// `authentication.k8s.io/v1` UserInfo, with uid and extra only when known.
fn user_info(user: &User) -> Value {
    let mut info = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        info["extra"] = json!(user.extra);
    }
    info
}

/// Answers a create of a review resource.
pub async fn create(
    state: &AppState,
    res: &Arc<ResourceInfo>,
    info: &RequestInfo,
    user: &User,
    req: Request,
) -> Result<Response, ApiError> {
    let (ty, body, _) = read_body(req).await?;
    let (_, mut review) = decode(&body, ty, res)?;
    review["apiVersion"] = json!(res.api_version());
    review["kind"] = json!(res.kind);
    if review.get("metadata").is_none() {
        review["metadata"] = json!({});
    }
    let status = match res.plural.as_str() {
        "selfsubjectreviews" => json!({"userInfo": user_info(user)}),
        // no bearer-token authenticators are configured yet, so no token authenticates
        "tokenreviews" => {
            if str_of(&review, "/spec/token").is_empty() {
                return Err(ApiError::invalid(
                    "authentication.k8s.io",
                    "TokenReview",
                    "",
                    &[machinery::FieldError::required("spec.token", "")],
                ));
            }
            token_review(state, &review)
        }
        "selfsubjectaccessreviews" => {
            decide(state, user, &attributes_request(&review["spec"], None)?)
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let spec = &review["spec"];
            let subject = User {
                name: str_of(spec, "/user").to_string(),
                groups: spec
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
                uid: str_of(spec, "/uid").to_string(),
                extra: serde_json::from_value(spec.get("extra").cloned().unwrap_or_default())
                    .unwrap_or_default(),
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(ApiError::invalid(
                    &res.group,
                    &res.kind,
                    "",
                    &[machinery::FieldError::invalid(
                        "spec.user",
                        json!(""),
                        "at least one of user or group must be specified",
                    )],
                ));
            }
            let ns = (res.plural == "localsubjectaccessreviews").then_some(info.namespace.as_str());
            if let Some(ns) = ns {
                let in_body = str_of(spec, "/resourceAttributes/namespace");
                if in_body != ns {
                    return Err(ApiError::bad_request(format!(
                        "spec.resourceAttributes.namespace must match namespace: {ns}"
                    )));
                }
            }
            decide(state, &subject, &attributes_request(spec, ns)?)
        }
        "selfsubjectrulesreviews" => rules(state, user, str_of(&review, "/spec/namespace")),
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    review["status"] = status;
    Ok(respond(StatusCode::CREATED, &review, Accept::JSON))
}

/// Authenticates the reviewed token with the same token authenticators as requests.
fn token_review(state: &AppState, review: &Value) -> Value {
    let header = format!("Bearer {}", str_of(review, "/spec/token"));
    match state.authenticator.authenticate(None, false, Some(&header)) {
        Ok(u) => {
            let audiences = review
                .pointer("/spec/audiences")
                .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
                .cloned()
                .or_else(|| state.token_issuer.as_ref().map(|t| json!(t.audiences)))
                .unwrap_or_else(|| json!([]));
            json!({"authenticated": true, "user": user_info(&u), "audiences": audiences})
        }
        Err(_) => json!({"user": {}, "error": "invalid bearer token"}),
    }
}

fn decide(state: &AppState, user: &User, info: &RequestInfo) -> Value {
    let d = state.rest.authorizer.decide(user, info);
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    status
}

fn rules(state: &AppState, user: &User, namespace: &str) -> Value {
    let (resource_rules, non_resource_rules, incomplete) =
        state.rest.authorizer.rules_for(user, namespace);
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": incomplete})
}
