//! Resource verbs over HTTP: get, list, create, update, patch, delete, deletecollection and
//! the subresources that read or write the object itself (`status`, `finalize`). Decodes
//! the request, calls [`crate::rest`], shapes the answer (object, list, Table, metadata).

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use futures::StreamExt;
use http::{StatusCode, header};
use machinery::ApiError;
use machinery::fields::FieldSelector;
use machinery::labels::Selector;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use super::{Query, add_warnings, connect, error_response, respond, reviews, scale, token, watch};
use crate::authn::User;
use crate::conversion::is_builtin_group;
use crate::negotiation::{self, Accept, BodyType, MAX_BODY, Shape};
use crate::request_info::RequestInfo;
use crate::rest::{
    DeleteOptions, DeleteOutcome, FieldValidation, ListOptions, ResourceVersionMatch, WriteOptions,
    Written, as_list_item,
};
use crate::server::AppState;

/// How much of an oversized body is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

fn not_found_resource() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// Entry for every resource request.
pub async fn handle(
    state: &Arc<AppState>,
    user: &User,
    info: RequestInfo,
    query: Query,
    accept_header: Option<&str>,
    req: Request,
) -> Response {
    let Some(res) = state
        .rest
        .registry
        .get(&info.group, &info.version, &info.resource)
    else {
        return error_response(&not_found_resource(), Accept::JSON);
    };
    let builtin = is_builtin_group(&res.group);
    let accept = match negotiation::negotiate(accept_header, builtin) {
        Ok(a) => a,
        Err(e) => return error_response(&e, Accept::JSON),
    };
    match serve(state, user, &res, &info, &query, accept, req).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e, accept),
    }
}

async fn serve(
    state: &Arc<AppState>,
    user: &User,
    res: &Arc<ResourceInfo>,
    info: &RequestInfo,
    query: &Query,
    accept: Accept,
    req: Request,
) -> Result<Response, ApiError> {
    if res.namespaced == info.namespace.is_empty()
        && !(res.namespaced && matches!(info.verb.as_str(), "list" | "watch"))
    {
        return Err(not_found_resource());
    }
    let sub = info.subresource.as_str();
    if !sub.is_empty() && !res.has_subresource(sub) {
        return Err(not_found_resource());
    }
    if sub.is_empty() && !res.has_verb(&info.verb) {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    query.check_dry_run()?;
    let rest = &state.rest;
    let ns = info.namespace.as_str();
    let name = info.name.as_str();
    match (info.verb.as_str(), sub) {
        (_, "scale") => scale::handle(state, res, info, query, accept, req).await,
        (_, sub) if connect::is_connect(sub) => Err(connect::handle(state, res, info, query)),
        ("create", "") if reviews::is_review(res) => {
            reviews::create(state, res, info, user, req).await
        }
        ("create", "token") => token::request(state, res, info, user, req).await,
        ("create", "binding") => scale::bind(state, res, info, query, req).await,
        ("create", "") if res.group.is_empty() && res.plural == "bindings" => {
            scale::bind(state, res, info, query, req).await
        }
        ("create", "eviction") => scale::evict(state, res, info, user, req).await,
        ("get", "" | "status" | "approval") => {
            consistent_read(state, res, query).await?;
            let obj = rest.get_converted(res, ns, name).await?;
            Ok(respond(
                StatusCode::OK,
                &shape_one(
                    &rest.crds,
                    res,
                    &obj,
                    accept,
                    query,
                    rest.store.current_revision(),
                ),
                accept,
            ))
        }
        ("list", "") => {
            if query.get("continue").is_none_or(str::is_empty) {
                consistent_read(state, res, query).await?;
            }
            list(state, res, ns, query, accept).await
        }
        ("watch", "") => watch::serve(state, res.clone(), ns, name, query, accept).await,
        ("create", "") => {
            let body = read_body(req).await?;
            let (ty, obj) = decode(&body.1, body.0, res)?;
            let _ = ty;
            let opts = write_options(query, user, &body.2, &body.1)?;
            let written = rest.create(res, ns, obj, &opts).await?;
            Ok(written_response(&rest.crds, res, &written, accept, query))
        }
        ("update", "" | "status" | "finalize" | "approval") => {
            let body = read_body(req).await?;
            let (_, obj) = decode(&body.1, body.0, res)?;
            let opts = write_options(query, user, &body.2, &body.1)?;
            let written = rest.update(res, ns, name, sub, obj, &opts).await?;
            Ok(written_response(&rest.crds, res, &written, accept, query))
        }
        ("patch", "" | "status" | "approval") => {
            let (ty, bytes, agent) = read_body(req).await?;
            let ty = ty?;
            if matches!(ty, BodyType::Json | BodyType::Yaml | BodyType::Protobuf) {
                return Err(ApiError::unsupported_media_type("application/json"));
            }
            let mut opts = write_options(query, user, &agent, &bytes)?;
            if ty == BodyType::ApplyYaml {
                if query.get("fieldManager").is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request(
                        "PATCH, application/apply-patch+yaml requests require a fieldManager query parameter",
                    ));
                }
                opts.force = query.flag("force");
            } else if query.get("force").is_some() {
                return Err(ApiError::bad_request(
                    "force is only allowed for apply requests",
                ));
            }
            let written = rest.patch(res, ns, name, sub, ty, &bytes, &opts).await?;
            Ok(written_response(&rest.crds, res, &written, accept, query))
        }
        ("delete", "") => {
            let (_, body, _) = read_body(req).await?;
            let mut opts = delete_options(query, &body)?;
            opts.user = Some(user.clone());
            match rest.delete(res, ns, name, &opts).await? {
                DeleteOutcome::Pending(obj) => {
                    let obj = converted(rest, res, obj).await?;
                    Ok(respond(
                        StatusCode::OK,
                        &shape_one(&rest.crds, res, &obj, accept, query, 0),
                        accept,
                    ))
                }
                DeleteOutcome::Deleted(obj) => {
                    if returns_deleted_object(res) {
                        let obj = converted(rest, res, obj).await?;
                        Ok(respond(
                            StatusCode::OK,
                            &shape_one(&rest.crds, res, &obj, accept, query, 0),
                            accept,
                        ))
                    } else {
                        let uid = obj
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let status =
                            machinery::status::success_status(&res.group, &res.plural, name, uid);
                        Ok(respond(
                            StatusCode::OK,
                            &status,
                            Accept {
                                shape: Shape::Object,
                                ..accept
                            },
                        ))
                    }
                }
            }
        }
        ("deletecollection", "") => {
            let (_, body, _) = read_body(req).await?;
            let mut opts = delete_options(query, &body)?;
            opts.user = Some(user.clone());
            let list_opts = list_options(query)?;
            let (items, rev) = rest.delete_collection(res, ns, &list_opts, &opts).await?;
            let items: Vec<Value> = items
                .iter()
                .map(|o| as_list_item(res, o, is_builtin_group(&res.group)))
                .collect();
            Ok(respond(
                StatusCode::OK,
                &json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": {"resourceVersion": rev.to_string()}, "items": items}),
                Accept {
                    shape: Shape::Object,
                    ..accept
                },
            ))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// The answer to a create, update or patch: 201 when it created the object.
fn written_response(
    crds: &crate::crd::CustomResources,
    res: &ResourceInfo,
    written: &Written,
    accept: Accept,
    query: &Query,
) -> Response {
    let code = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = respond(
        code,
        &shape_one(crds, res, &written.object, accept, query, 0),
        accept,
    );
    add_warnings(&mut resp, &written.warnings);
    resp
}

/// Upstream returns the deleted object (not a Status) for these resources.
fn returns_deleted_object(res: &ResourceInfo) -> bool {
    res.group.is_empty()
        && matches!(
            res.plural.as_str(),
            "pods"
                | "services"
                | "namespaces"
                | "replicationcontrollers"
                | "persistentvolumeclaims"
                | "persistentvolumes"
        )
        || !is_builtin_group(&res.group)
        || res.group == "apiextensions.k8s.io"
}

/// Reads the body (at most 3 MiB), its content type and the user agent.
pub(super) async fn read_body(
    req: Request,
) -> Result<(Result<BodyType, ApiError>, Vec<u8>, String), ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut body = req.into_body().into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        seen += chunk.len();
        if seen > MAX_BODY {
            // keep reading (and dropping) a while so the client sees the 413 rather than a
            // reset connection; give up on absurd bodies
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        bytes.extend_from_slice(&chunk);
    }
    if seen > MAX_BODY {
        return Err(ApiError::too_large());
    }
    Ok((negotiation::body_type(ct.as_deref()), bytes, agent))
}

/// Decodes an object body for `res`.
pub(super) fn decode(
    body: &[u8],
    ty: Result<BodyType, ApiError>,
    res: &ResourceInfo,
) -> Result<(BodyType, Value), ApiError> {
    let ty = ty?;
    if !matches!(ty, BodyType::Json | BodyType::Yaml | BodyType::Protobuf) {
        return Err(ApiError::unsupported_media_type("this content type"));
    }
    if ty == BodyType::Protobuf && !is_builtin_group(&res.group) {
        return Err(ApiError::unsupported_media_type(negotiation::PROTOBUF));
    }
    let obj = negotiation::decode_object(body, ty, Some((&res.kind, &res.version)))?;
    Ok((ty, obj))
}

fn write_options(
    query: &Query,
    user: &User,
    agent: &str,
    body: &[u8],
) -> Result<WriteOptions, ApiError> {
    let field_validation = match query.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        Some("Strict") => FieldValidation::Strict,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            )));
        }
    };
    let field_manager = match query.get("fieldManager") {
        Some(m) if !m.is_empty() => {
            if m.len() > 128 || m.chars().any(|c| c.is_control()) {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "",
                    "",
                    &[machinery::FieldError::invalid(
                        "fieldManager",
                        Value::String(m.into()),
                        "must be less than 128 characters and not contain control characters",
                    )],
                ));
            }
            m.to_string()
        }
        // upstream derives the manager from the user agent's program name
        _ => patch::apply::manager_name(None, agent),
    };
    // only JSON object bodies can repeat a key the parser would silently collapse
    let is_json_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let duplicate_fields = if is_json_object {
        crate::fieldvalidation::duplicate_fields(body)
    } else {
        Vec::new()
    };
    Ok(WriteOptions {
        dry_run: query.dry_run_all,
        field_manager,
        field_validation,
        force: false,
        duplicate_fields,
        user: Some(user.clone()),
    })
}

fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions {
        dry_run: query.dry_run_all,
        ..Default::default()
    };
    if let Some(g) = query.get("gracePeriodSeconds") {
        opts.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        );
    }
    if let Some(p) = query.get("propagationPolicy") {
        opts.propagation_policy = Some(p.to_string());
    }
    if let Some(o) = query.get("orphanDependents") {
        opts.orphan_dependents = Some(o == "true");
    }
    if !body.is_empty() {
        let v: Value = if body.starts_with(b"k8s\0") {
            protobuf::decode(body).map_err(|e| ApiError::bad_request(e.to_string()))?
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
        };
        opts.merge_body(&v)?;
    } else {
        opts.merge_body(&json!({}))?;
    }
    Ok(opts)
}

/// Parses list parameters.
pub(super) fn list_options(query: &Query) -> Result<ListOptions, ApiError> {
    let label_selector = Selector::parse(query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let field_selector = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let limit = match query.get("limit") {
        Some(l) if !l.is_empty() => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
                .max(0) as usize,
        ),
        _ => None,
    };
    let resource_version_match = match query.get("resourceVersionMatch") {
        None | Some("") => None,
        Some("NotOlderThan") => Some(ResourceVersionMatch::NotOlderThan),
        Some("Exact") => Some(ResourceVersionMatch::Exact),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    };
    Ok(ListOptions {
        label_selector,
        field_selector,
        limit: limit.filter(|l| *l > 0),
        continue_token: query.get("continue").map(str::to_string),
        resource_version: query.get("resourceVersion").map(str::to_string),
        resource_version_match,
    })
}

/// A read without a resourceVersion is a consistent read: it must see every write
/// acknowledged before it, on any API server (with etcd, the cache first catches up).
pub(super) async fn consistent_read(
    state: &Arc<AppState>,
    res: &ResourceInfo,
    query: &Query,
) -> Result<(), ApiError> {
    if query.get("resourceVersion").is_none_or(str::is_empty) {
        state
            .rest
            .store
            .sync()
            .await
            .map_err(|e| crate::rest::storage_error(res, "", e))?;
    }
    Ok(())
}

/// An object `rest` returned, through the CRD's conversion webhook where it has one.
async fn converted(
    rest: &crate::rest::Rest,
    res: &ResourceInfo,
    obj: Value,
) -> Result<Value, ApiError> {
    let mut out = rest.convert_to(res, vec![obj], &res.api_version()).await?;
    out.pop()
        .ok_or_else(|| ApiError::internal("the conversion webhook returned no object"))
}

async fn list(
    state: &Arc<AppState>,
    res: &ResourceInfo,
    ns: &str,
    query: &Query,
    accept: Accept,
) -> Result<Response, ApiError> {
    let opts = list_options(query)?;
    let (mut result, token) = state.rest.list(res, ns, &opts)?;
    if crate::conversion::webhook_converted(res) {
        let shown = result
            .items
            .iter()
            .map(|o| crate::conversion::to_version(o, res))
            .collect();
        let converted = state
            .rest
            .convert_to(res, shown, &res.api_version())
            .await?;
        result.items = converted.into_iter().map(Arc::new).collect();
    }
    let mut meta = json!({"resourceVersion": result.rev.to_string()});
    if let Some(t) = token {
        meta["continue"] = json!(t);
        if let Some(r) = result.remaining
            && opts.label_selector.is_empty()
            && opts.field_selector.is_empty()
        {
            meta["remainingItemCount"] = json!(r);
        }
    }
    let builtin = is_builtin_group(&res.group);
    if accept.shape == Shape::Object && accept.encoding == negotiation::Encoding::Json {
        return json_list(res, &result.items, &meta, builtin)
            .map(|body| super::raw_response(StatusCode::OK, accept.content_type(), body))
            .map_err(|e| ApiError::internal(format!("encoding the list: {e}")));
    }
    let body = match accept.shape {
        Shape::Object => {
            let items: Vec<Value> = result
                .items
                .iter()
                .map(|o| as_list_item(res, o, builtin))
                .collect();
            json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": meta, "items": items})
        }
        Shape::Table => {
            let objs: Vec<Value> = result
                .items
                .iter()
                .map(|o| crate::conversion::to_version(o, res))
                .collect();
            crate::crd::table(
                &state.rest.crds,
                res,
                &objs,
                meta,
                query.get("includeObject").unwrap_or("Metadata"),
            )
        }
        Shape::PartialMetadata => {
            let items: Vec<Value> = result.items.iter().map(|o| partial(o)).collect();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
        }
    };
    Ok(respond(StatusCode::OK, &body, accept))
}

/// A JSON list written item by item from the stored objects (no copy of any of them).
fn json_list(
    res: &ResourceInfo,
    items: &[Arc<Value>],
    meta: &Value,
    builtin: bool,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256 + items.len() * 1024);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, &format!("{}List", res.kind))?;
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut out, &res.api_version())?;
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, meta)?;
    out.extend_from_slice(b",\"items\":[");
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        crate::conversion::write_list_item(&mut out, o, res, builtin)?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

/// One object in the shape the client asked for.
pub(super) fn shape_one<'a>(
    crds: &crate::crd::CustomResources,
    res: &ResourceInfo,
    obj: &'a Value,
    accept: Accept,
    query: &Query,
    rev: u64,
) -> std::borrow::Cow<'a, Value> {
    std::borrow::Cow::Owned(match accept.shape {
        Shape::Object => return std::borrow::Cow::Borrowed(obj),
        Shape::PartialMetadata => partial(obj),
        Shape::Table => {
            let meta = if rev > 0 {
                json!({"resourceVersion": rev.to_string()})
            } else {
                json!({})
            };
            crate::crd::table(
                crds,
                res,
                std::slice::from_ref(obj),
                meta,
                query.get("includeObject").unwrap_or("Metadata"),
            )
        }
    })
}
