//! The request under admission (upstream's `admission.Attributes`) and its JSON forms:
//! the `AdmissionRequest` sent to webhooks and the `request` variable of CEL conditions.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// `metav1.GroupVersionKind`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GroupVersionKind {
    /// Builds one from its parts.
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.kind})
    }
}

/// `metav1.GroupVersionResource`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl GroupVersionResource {
    /// Builds one from its parts.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "resource": self.resource})
    }
}

/// The admission operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Operation {
    #[default]
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// The wire form: `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

/// `authenticationv1.UserInfo` of the requesting user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// One request under admission.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// Identifies the admission attempt in logs. Every webhook call still gets a fresh
    /// `AdmissionReview` uid, as upstream generates one per call.
    pub uid: String,
    /// Kind of the object as sent to webhooks.
    pub kind: GroupVersionKind,
    /// Resource being admitted.
    pub resource: GroupVersionResource,
    /// Subresource (`status`, `scale`, ...) or empty.
    pub sub_resource: String,
    /// Kind the client asked for, when it differs from `kind`.
    pub request_kind: Option<GroupVersionKind>,
    /// Resource the client asked for, when it differs from `resource`.
    pub request_resource: Option<GroupVersionResource>,
    /// Subresource the client asked for, when it differs from `sub_resource`.
    pub request_sub_resource: Option<String>,
    /// Object name; may be empty on create with `generateName`.
    pub name: String,
    /// Namespace; empty for cluster-scoped objects. For a Namespace object itself upstream
    /// sets this to the namespace's own name.
    pub namespace: String,
    pub operation: Operation,
    pub user: UserInfo,
    /// The new object (CREATE, UPDATE; the options object for CONNECT in upstream terms).
    pub object: Option<Value>,
    /// The existing object (UPDATE, DELETE).
    pub old_object: Option<Value>,
    pub dry_run: bool,
    /// The operation's options (`CreateOptions`, `UpdateOptions`, `DeleteOptions`).
    pub options: Option<Value>,
}

impl Request {
    pub(crate) fn effective_request_kind(&self) -> &GroupVersionKind {
        self.request_kind.as_ref().unwrap_or(&self.kind)
    }

    pub(crate) fn effective_request_resource(&self) -> &GroupVersionResource {
        self.request_resource.as_ref().unwrap_or(&self.resource)
    }

    pub(crate) fn effective_request_sub_resource(&self) -> &str {
        self.request_sub_resource
            .as_deref()
            .unwrap_or(&self.sub_resource)
    }

    fn user_json(&self) -> Value {
        let mut u = Map::new();
        if !self.user.username.is_empty() {
            u.insert("username".into(), self.user.username.clone().into());
        }
        if !self.user.uid.is_empty() {
            u.insert("uid".into(), self.user.uid.clone().into());
        }
        if !self.user.groups.is_empty() {
            u.insert("groups".into(), json!(self.user.groups));
        }
        if !self.user.extra.is_empty() {
            u.insert("extra".into(), json!(self.user.extra));
        }
        Value::Object(u)
    }

    /// The fields shared by the wire `AdmissionRequest` and the CEL `request` variable.
    fn common_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), self.kind.to_json());
        m.insert("resource".into(), self.resource.to_json());
        if !self.sub_resource.is_empty() {
            m.insert("subResource".into(), self.sub_resource.clone().into());
        }
        m.insert(
            "requestKind".into(),
            self.effective_request_kind().to_json(),
        );
        m.insert(
            "requestResource".into(),
            self.effective_request_resource().to_json(),
        );
        let rsub = self.effective_request_sub_resource();
        if !rsub.is_empty() {
            m.insert("requestSubResource".into(), rsub.into());
        }
        if !self.name.is_empty() {
            m.insert("name".into(), self.name.clone().into());
        }
        if !self.namespace.is_empty() {
            m.insert("namespace".into(), self.namespace.clone().into());
        }
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("userInfo".into(), self.user_json());
        m
    }

    /// The `request` of an `AdmissionReview`, with the given per-call uid.
    pub(crate) fn admission_request(&self, uid: &str) -> Value {
        let mut m = Map::new();
        m.insert("uid".into(), uid.into());
        m.extend(self.common_fields());
        m.insert("object".into(), self.object.clone().unwrap_or(Value::Null));
        m.insert(
            "oldObject".into(),
            self.old_object.clone().unwrap_or(Value::Null),
        );
        m.insert("dryRun".into(), self.dry_run.into());
        m.insert(
            "options".into(),
            self.options.clone().unwrap_or(Value::Null),
        );
        Value::Object(m)
    }

    /// The CEL `request` variable: the admission request without the objects, which CEL
    /// sees as `object` and `oldObject`. Upstream's variable is typed, so every field is
    /// present with its zero value rather than omitted.
    pub(crate) fn cel_request(&self) -> Value {
        json!({
            "kind": self.kind.to_json(),
            "resource": self.resource.to_json(),
            "subResource": self.sub_resource,
            "requestKind": self.effective_request_kind().to_json(),
            "requestResource": self.effective_request_resource().to_json(),
            "requestSubResource": self.effective_request_sub_resource(),
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation.as_str(),
            "userInfo": {
                "username": self.user.username,
                "uid": self.user.uid,
                "groups": self.user.groups,
                "extra": self.user.extra,
            },
            "dryRun": self.dry_run,
            "options": self.options.clone().unwrap_or(Value::Null),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_request_defaults_request_kind_and_omits_empty_fields() {
        let req = Request {
            kind: GroupVersionKind::new("", "v1", "Pod"),
            resource: GroupVersionResource::new("", "v1", "pods"),
            namespace: "ns".into(),
            user: UserInfo {
                username: "alice".into(),
                ..UserInfo::default()
            },
            object: Some(json!({"kind": "Pod"})),
            ..Request::default()
        };
        let r = req.admission_request("u1");
        assert_eq!(r["uid"], "u1");
        assert_eq!(r["requestKind"]["kind"], "Pod");
        assert_eq!(r["operation"], "CREATE");
        assert!(r.get("name").is_none());
        assert!(r.get("subResource").is_none());
        assert_eq!(r["oldObject"], Value::Null);
        assert_eq!(r["userInfo"], json!({"username": "alice"}));
        assert_eq!(r["dryRun"], false);
    }
}
