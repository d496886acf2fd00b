//! The `audit.k8s.io/v1` `Event`: built once per audited request, filled in as the request
//! progresses, and serialized at each stage into exactly upstream's JSON shape (field
//! names, omitted empty fields, microsecond UTC timestamps).
//!
//! Level rules live here, not in the caller: bodies below `Request` and response bodies
//! below `RequestResponse` are never recorded, and `managedFields` are dropped when the
//! policy asks. See the crate docs for the order in which the caller drives the stages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::policy::RequestAuditConfig;
use crate::request::{Attributes, truncate_user_agent};
use crate::types::{Level, Stage};

const API_VERSION: &str = "audit.k8s.io/v1";
const KIND: &str = "Event";

/// `authentication.k8s.io/v1` `UserInfo` as recorded in events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UserInfo {
    /// The username.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// The user's UID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The user's groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes from the authenticator.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The object a resource request targets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// The resource, e.g. `pods`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// The namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The object name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object UID, when the request body carries one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The API group; omitted for the core group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// The API version, e.g. `v1`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// The resource version, when the request body carries one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// The subresource, e.g. `status`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// The bounded subset of `metav1.Status` recorded as `responseStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ResponseStatus {
    /// Always `{}`, as upstream's non-pointer `ListMeta` serializes.
    pub metadata: BTreeMap<String, Value>,
    /// `Success` or `Failure`, when the response body was a `Status`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The human-readable message of a `Status` response.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The machine-readable reason of a `Status` response, e.g. `NotFound`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The `details` of a `Status` response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The HTTP status code.
    #[serde(skip_serializing_if = "is_zero")]
    pub code: i32,
}

fn is_zero(code: &i32) -> bool {
    *code == 0
}

/// One audited request, accumulated across its stages. Construct with [`Event::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The level the policy chose; never `Level::None`.
    pub level: Level,
    /// The audit ID, echoed to the client as the `Audit-Id` header.
    pub audit_id: String,
    /// The request URI: path and query.
    pub request_uri: String,
    /// The request verb.
    pub verb: String,
    /// The authenticated user.
    pub user: UserInfo,
    /// The user being impersonated, if any.
    pub impersonated_user: Option<UserInfo>,
    /// Source IPs, from [`crate::request::source_ips`].
    pub source_ips: Vec<String>,
    /// The user agent, already truncated.
    pub user_agent: String,
    /// The target object of a resource request.
    pub object_ref: Option<ObjectReference>,
    /// The response status, once known.
    pub response_status: Option<ResponseStatus>,
    /// The request body (at `Request` and above).
    pub request_object: Option<Value>,
    /// The response body (at `RequestResponse`).
    pub response_object: Option<Value>,
    /// When the request arrived.
    pub request_received_timestamp: DateTime<Utc>,
    /// Annotations added while handling, e.g. the authorization decision.
    pub annotations: BTreeMap<String, String>,
    omit_stages: Vec<Stage>,
    omit_managed_fields: bool,
}

impl Event {
    /// Starts the event for a request, or returns `None` when the policy level is `None`.
    /// `audit_id` is the client's `Audit-ID` header if any (see
    /// [`crate::request::audit_id_from_header`]); otherwise a random UUID is used.
    pub fn new(
        config: &RequestAuditConfig,
        attrs: &Attributes,
        request_uri: &str,
        source_ips: Vec<String>,
        user_agent: Option<String>,
        audit_id: Option<String>,
    ) -> Option<Event> {
        if config.level == Level::None {
            return None;
        }
        let object_ref = attrs.resource_request.then(|| ObjectReference {
            resource: attrs.resource.clone(),
            namespace: attrs.namespace.clone(),
            name: attrs.name.clone(),
            api_group: attrs.api_group.clone(),
            api_version: attrs.api_version.clone(),
            subresource: attrs.subresource.clone(),
            ..ObjectReference::default()
        });
        Some(Event {
            level: config.level,
            audit_id: crate::request::audit_id_from_header(audit_id.as_deref()),
            request_uri: request_uri.to_string(),
            verb: attrs.verb.clone(),
            user: UserInfo {
                username: attrs.user.clone(),
                uid: attrs.uid.clone(),
                groups: attrs.groups.clone(),
                extra: attrs.extra.clone(),
            },
            impersonated_user: None,
            source_ips,
            user_agent: user_agent
                .as_deref()
                .map(truncate_user_agent)
                .unwrap_or_default(),
            object_ref,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: Utc::now(),
            annotations: BTreeMap::new(),
            omit_stages: config.omit_stages.clone(),
            omit_managed_fields: config.omit_managed_fields,
        })
    }

    /// Overrides when the request was received (defaults to when the event was created),
    /// for servers that stamp requests before authentication.
    pub fn set_request_received_timestamp(&mut self, at: DateTime<Utc>) {
        self.request_received_timestamp = at;
    }

    /// Records the impersonated user once impersonation has been resolved.
    pub fn set_impersonated_user(&mut self, user: UserInfo) {
        self.impersonated_user = Some(user);
    }

    /// Adds an annotation. Like upstream, a key keeps its first value; a conflicting
    /// second value is logged and ignored.
    pub fn add_annotation(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self.annotations.get(&key) {
            Some(existing) if *existing != value => tracing::warn!(
                audit_id = %self.audit_id,
                "failed to set audit annotation {key:?} to {value:?}: already set to {existing:?}"
            ),
            _ => {
                self.annotations.insert(key, value);
            }
        }
    }

    /// Records the decoded request body. At every level this completes `objectRef` from
    /// the body's `metadata` (namespace, name, uid, resourceVersion, where still empty);
    /// the body itself is kept only at `Request` and above.
    pub fn set_request_object(&mut self, object: &Value) {
        let object_ref = self.object_ref.get_or_insert_with(ObjectReference::default);
        if let Some(meta) = object.get("metadata") {
            let fill = |slot: &mut String, key: &str| {
                if slot.is_empty()
                    && let Some(v) = meta.get(key).and_then(Value::as_str)
                {
                    *slot = v.to_string();
                }
            };
            fill(&mut object_ref.namespace, "namespace");
            fill(&mut object_ref.name, "name");
            fill(&mut object_ref.uid, "uid");
            fill(&mut object_ref.resource_version, "resourceVersion");
        }
        if self.level >= Level::Request {
            self.request_object = Some(self.without_managed_fields(object));
        }
    }

    /// Records a patch document as the request body (at `Request` and above), verbatim.
    pub fn set_request_patch(&mut self, patch: &Value) {
        if self.level >= Level::Request {
            self.request_object = Some(patch.clone());
        }
    }

    /// Records the response: the HTTP `code`, and the JSON body if there is one. A body of
    /// kind `Status` also fills `responseStatus` (status, message, reason, details); the
    /// body is kept as `responseObject` only at `RequestResponse`. Call once, when the
    /// status line is written (for watches: before emitting `ResponseStarted`).
    pub fn set_response(&mut self, code: u16, body: Option<&Value>) {
        let mut status = match body.filter(|b| is_status(b)) {
            Some(b) => status_from_body(b),
            None => self.response_status.take().unwrap_or_default(),
        };
        status.code = i32::from(code);
        self.response_status = Some(status);
        if self.level >= Level::RequestResponse
            && let Some(b) = body
        {
            self.response_object = Some(self.without_managed_fields(b));
        }
    }

    /// Records that the handler panicked, as upstream does, before emitting `Stage::Panic`.
    pub fn set_panic(&mut self, message: &str) {
        self.response_status = Some(ResponseStatus {
            status: "Failure".into(),
            reason: "InternalError".into(),
            message: format!("APIServer panic'd: {message}"),
            code: 500,
            ..ResponseStatus::default()
        });
    }

    /// Whether the policy omits `stage` for this request.
    pub fn omits(&self, stage: Stage) -> bool {
        self.omit_stages.contains(&stage)
    }

    /// The event as emitted at `stage`, ready for [`crate::LogBackend::process`], or
    /// `None` if the policy omits that stage. `RequestReceived` carries no bodies and no
    /// `responseStatus` and is stamped with the received time; later stages are stamped
    /// now, and a response never reported is recorded as upstream's
    /// "Connection closed early" success.
    pub fn at_stage(&self, stage: Stage) -> Option<Value> {
        if self.omits(stage) {
            return None;
        }
        let received = stage == Stage::RequestReceived;
        let response_status = match stage {
            Stage::RequestReceived => None,
            Stage::ResponseStarted | Stage::ResponseComplete => Some(
                self.response_status
                    .clone()
                    .unwrap_or_else(connection_closed_early),
            ),
            Stage::Panic => Some(
                self.response_status
                    .clone()
                    .unwrap_or_else(|| ResponseStatus {
                        status: "Failure".into(),
                        reason: "InternalError".into(),
                        message: "APIServer panic'd".into(),
                        code: 500,
                        ..ResponseStatus::default()
                    }),
            ),
        };
        let wire = WireEvent {
            kind: KIND,
            api_version: API_VERSION,
            level: self.level,
            audit_id: &self.audit_id,
            stage,
            request_uri: &self.request_uri,
            verb: &self.verb,
            user: &self.user,
            impersonated_user: self.impersonated_user.as_ref(),
            source_ips: &self.source_ips,
            user_agent: &self.user_agent,
            object_ref: self.object_ref.as_ref(),
            response_status,
            request_object: self.request_object.as_ref().filter(|_| !received),
            response_object: self.response_object.as_ref().filter(|_| !received),
            request_received_timestamp: self.request_received_timestamp,
            stage_timestamp: if received {
                self.request_received_timestamp
            } else {
                Utc::now()
            },
            annotations: &self.annotations,
        };
        match serde_json::to_value(&wire) {
            Ok(v) => Some(v),
            Err(err) => {
                tracing::error!(audit_id = %self.audit_id, "failed to serialize audit event: {err}");
                None
            }
        }
    }

    fn without_managed_fields(&self, object: &Value) -> Value {
        let mut copy = object.clone();
        if self.omit_managed_fields {
            strip_managed_fields(&mut copy);
        }
        copy
    }
}

/// The serialized shape; field order follows upstream's struct.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: Level,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: Stage,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: &'a UserInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<&'a UserInfo>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "<[String]>::is_empty")]
    source_ips: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<&'a ObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<ResponseStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_object: Option<&'a Value>,
    #[serde(serialize_with = "micro_time")]
    request_received_timestamp: DateTime<Utc>,
    #[serde(serialize_with = "micro_time")]
    stage_timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// `metav1.MicroTime`: RFC 3339 in UTC with exactly six fractional digits.
fn micro_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn connection_closed_early() -> ResponseStatus {
    ResponseStatus {
        status: "Success".into(),
        message: "Connection closed early".into(),
        code: 200,
        ..ResponseStatus::default()
    }
}

fn is_status(body: &Value) -> bool {
    body.get("kind").and_then(Value::as_str) == Some("Status")
        && body
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|v| v == "v1")
}

fn status_from_body(body: &Value) -> ResponseStatus {
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    ResponseStatus {
        status: text("status"),
        message: text("message"),
        reason: text("reason"),
        details: body.get("details").filter(|d| !d.is_null()).cloned(),
        ..ResponseStatus::default()
    }
}

/// Drops `metadata.managedFields` from an object, from each item of a list, and from each
/// row object of a `Table`.
fn strip_managed_fields(object: &mut Value) {
    fn strip_one(v: &mut Value) {
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    strip_one(object);
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip_one);
    }
    if object.get("kind").and_then(Value::as_str) == Some("Table")
        && let Some(rows) = object.get_mut("rows").and_then(Value::as_array_mut)
    {
        for row in rows {
            if let Some(obj) = row.get_mut("object") {
                strip_one(obj);
            }
        }
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
