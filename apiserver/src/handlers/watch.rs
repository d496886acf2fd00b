//! Watch: a chunked stream of `{"type":..,"object":..}` events (or protobuf `WatchEvent`
//! frames) from a resourceVersion, with initial events, selectors (objects leaving a
//! selector are DELETED for that watcher), BOOKMARKs and `timeoutSeconds`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Query;
use super::resource::list_options;
use crate::negotiation::{Accept, Encoding, Shape};
use crate::rest::{ListOptions, matches_list, prefix};
use crate::server::AppState;
use crate::storage::{EventType, StorageError, WatchEnd};

/// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// Encodes one event for the wire.
struct Encoder {
    res: Arc<ResourceInfo>,
    crds: Arc<crate::crd::CustomResources>,
    accept: Accept,
    include_object: String,
    first: bool,
}

impl Encoder {
    fn frame(&mut self, ty: &str, object: &Value) -> Option<Bytes> {
        use std::borrow::Cow;
        let object: Cow<'_, Value> = match self.accept.shape {
            Shape::Object => Cow::Borrowed(object),
            Shape::PartialMetadata => Cow::Owned(
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object.get("metadata").cloned().unwrap_or(json!({}))}),
            ),
            Shape::Table if ty == "BOOKMARK" || ty == "ERROR" => Cow::Borrowed(object),
            Shape::Table => {
                let mut t = crate::crd::table(
                    &self.crds,
                    &self.res,
                    std::slice::from_ref(object),
                    json!({"resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)}),
                    &self.include_object,
                );
                // only the first event carries the column definitions, as upstream
                if !self.first {
                    t["columnDefinitions"] = json!([]);
                }
                self.first = false;
                Cow::Owned(t)
            }
        };
        match self.accept.encoding {
            Encoding::Protobuf => protobuf::encode_watch_event(ty, &object)
                .ok()
                .map(Bytes::from),
            _ => {
                #[derive(serde::Serialize)]
                struct Frame<'a> {
                    #[serde(rename = "type")]
                    ty: &'a str,
                    object: &'a Value,
                }
                let mut line = serde_json::to_vec(&Frame {
                    ty,
                    object: &object,
                })
                .ok()?;
                line.push(b'\n');
                Some(Bytes::from(line))
            }
        }
    }

    /// Whether this watcher's frame for `ev` is the shared one: plain JSON objects of the
    /// stored version, with the event's own type.
    fn shares_stored_form(&self, ev: &crate::storage::Event, ty: &str) -> bool {
        self.accept.shape == Shape::Object
            && self.accept.encoding == Encoding::Json
            && ty == ev.kind.as_str()
            && ev.object.get("apiVersion").and_then(Value::as_str)
                == Some(self.res.api_version().as_str())
    }

    fn bookmark(&mut self, rev: u64, initial_end: bool) -> Option<Bytes> {
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta});
        self.frame("BOOKMARK", &obj)
    }
}

/// An object at the watched version (through the CRD's conversion webhook if it has one).
async fn shown<'a>(
    rest: &crate::rest::Rest,
    res: &ResourceInfo,
    obj: &'a Value,
    webhook_converted: bool,
) -> Result<std::borrow::Cow<'a, Value>, ApiError> {
    if webhook_converted {
        rest.shown(res, obj).await.map(std::borrow::Cow::Owned)
    } else {
        Ok(crate::conversion::to_version_cow(obj, res))
    }
}

fn watch_error(e: &ApiError) -> Value {
    e.to_status()
}

/// Starts a watch. `name` (from a legacy `/watch/.../name` path) narrows it to one object.
pub async fn serve(
    state: &Arc<AppState>,
    res: Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    query: &Query,
    accept: Accept,
) -> Result<Response, ApiError> {
    let mut opts: ListOptions = list_options(query)?;
    opts.field_selector
        .check_fields(|f| crate::rest::selectable(&res, f))
        .map_err(ApiError::bad_request)?;
    if !name.is_empty() {
        opts.field_selector
            .requirements
            .push(machinery::fields::FieldRequirement {
                field: "metadata.name".into(),
                value: name.into(),
                negated: false,
            });
    }
    let send_initial = query.get("sendInitialEvents").map(|v| v == "true");
    let allow_bookmarks = query.flag("allowWatchBookmarks");
    let rv = query
        .get("resourceVersion")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if send_initial == Some(true) && query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "",
            "",
            &[machinery::FieldError::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )],
        ));
    }
    if send_initial.is_some() && !allow_bookmarks {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "",
            "",
            &[machinery::FieldError::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            )],
        ));
    }
    let timeout = match query.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
        ),
        None => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let pfx = prefix(&res, ns);
    super::resource::consistent_read(state, &res, query).await?;
    let store = state.rest.store.clone();
    // initial state: for an unset or "0" resourceVersion, or sendInitialEvents=true
    let initial = match (send_initial, rv.as_deref()) {
        (Some(true), _) => true,
        (Some(false), _) => false,
        (None, None | Some("0")) => true,
        (None, Some(_)) => false,
    };
    let (initial_items, start) = if initial {
        let (items, rev) = store.snapshot(&pfx);
        (items, rev)
    } else {
        let from = match rv.as_deref() {
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
            None => store.current_revision(),
        };
        (Vec::new(), from)
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut enc = Encoder {
        res: res.clone(),
        crds: state.rest.crds.clone(),
        accept,
        include_object: query.get("includeObject").unwrap_or("Metadata").to_string(),
        first: true,
    };
    let watch = store.watch(&pfx, start);
    let rest = state.rest.clone();
    let webhook_converted = crate::conversion::webhook_converted(&res);
    tokio::spawn(async move {
        let mut watch = match watch {
            Ok(w) => w,
            Err(StorageError::Compacted { requested, oldest }) => {
                let e = ApiError::gone(format!("too old resource version: {requested} ({oldest})"));
                if let Some(f) = enc.frame("ERROR", &watch_error(&e)) {
                    let _ = tx.send(Ok(f)).await;
                }
                return;
            }
            Err(e) => {
                let e = crate::rest::storage_error(&res, "", e);
                if let Some(f) = enc.frame("ERROR", &watch_error(&e)) {
                    let _ = tx.send(Ok(f)).await;
                }
                return;
            }
        };
        for item in &initial_items {
            if !matches_list(&opts, item) {
                continue;
            }
            let obj = match shown(&rest, &res, item, webhook_converted).await {
                Ok(o) => o,
                Err(e) => {
                    if let Some(f) = enc.frame("ERROR", &watch_error(&e)) {
                        let _ = tx.send(Ok(f)).await;
                    }
                    return;
                }
            };
            if let Some(f) = enc.frame("ADDED", &obj)
                && tx.send(Ok(f)).await.is_err()
            {
                return;
            }
        }
        if send_initial == Some(true)
            && let Some(f) = enc.bookmark(start, true)
            && tx.send(Ok(f)).await.is_err()
        {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_rev = start;
        loop {
            let bookmark_at = tokio::time::sleep(BOOKMARK_INTERVAL);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = bookmark_at, if allow_bookmarks => {
                    if let Some(f) = enc.bookmark(last_rev, false)
                        && tx.send(Ok(f)).await.is_err() { return; }
                }
                ev = watch.next() => {
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(WatchEnd::Lagged | WatchEnd::Reset | WatchEnd::Closed) => return,
                    };
                    last_rev = ev.rev;
                    let now_matches = ev.kind != EventType::Deleted && matches_list(&opts, &ev.object);
                    let was_matching = ev.prev.as_deref().is_some_and(|p| matches_list(&opts, p));
                    let ty = match (ev.kind, was_matching, now_matches) {
                        (EventType::Deleted, true, _) => "DELETED",
                        (EventType::Deleted, false, _) => continue,
                        (_, true, true) => "MODIFIED",
                        (_, false, true) => "ADDED",
                        (_, true, false) => "DELETED",
                        (_, false, false) => continue,
                    };
                    let frame = if enc.shares_stored_form(&ev, ty) {
                        Some(ev.json_line.get_or_init(|| enc.frame(ty, &ev.object).unwrap_or_default()).clone())
                    } else {
                        match shown(&rest, &res, &ev.object, webhook_converted).await {
                            Ok(o) => enc.frame(ty, &o),
                            Err(e) => {
                                if let Some(f) = enc.frame("ERROR", &watch_error(&e)) {
                                    let _ = tx.send(Ok(f)).await;
                                }
                                return;
                            }
                        }
                    };
                    if let Some(f) = frame
                        && tx.send(Ok(f)).await.is_err() { return; }
                }
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    *resp.status_mut() = StatusCode::OK;
    let ct = match accept.encoding {
        Encoding::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        Encoding::Yaml | Encoding::Json => "application/json",
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
