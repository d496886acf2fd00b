//! Dynamic admission: the MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins
//! over the `webhook` crate. This module turns a write into the crate's admission
//! [`Request`], hands it the stored configurations, and resolves Services from storage.
//!
//! Writes the server makes itself (no user: bootstrap objects, the CRD controller) are not
//! sent to webhooks.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;
use webhook::{GroupVersionKind, GroupVersionResource, Operation, Request, UserInfo};

use crate::authn::User;
use crate::rest::Rest;

const MUTATING: &str = "/registry/mutatingwebhookconfigurations/";
const VALIDATING: &str = "/registry/validatingwebhookconfigurations/";
const POLICIES: &str = "/registry/validatingadmissionpolicies/";
const BINDINGS: &str = "/registry/validatingadmissionpolicybindings/";

/// One write under admission.
pub struct Attributes<'a> {
    pub res: &'a ResourceInfo,
    pub sub: &'a str,
    pub operation: Operation,
    pub namespace: &'a str,
    pub name: &'a str,
    pub user: Option<&'a User>,
    pub dry_run: bool,
}

fn request(a: &Attributes, user: &User, object: Option<Value>, old: Option<Value>) -> Request {
    let namespace = if a.res.group.is_empty() && a.res.plural == "namespaces" {
        a.name.to_string()
    } else {
        a.namespace.to_string()
    };
    Request {
        uid: uuid::Uuid::new_v4().to_string(),
        kind: GroupVersionKind::new(&a.res.group, &a.res.version, &a.res.kind),
        resource: GroupVersionResource::new(&a.res.group, &a.res.version, &a.res.plural),
        sub_resource: a.sub.to_string(),
        name: a.name.to_string(),
        namespace,
        operation: a.operation,
        user: UserInfo {
            username: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
        },
        object,
        old_object: old,
        dry_run: a.dry_run,
        options: Some(options(a)),
        ..Default::default()
    }
}

/// The operation's options object, as upstream sends it.
fn options(a: &Attributes) -> Value {
    let kind = match a.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
        Operation::Connect => "",
    };
    let mut o = serde_json::json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
    if a.dry_run {
        o["dryRun"] = serde_json::json!(["All"]);
    }
    o
}

fn configurations(rest: &Rest, prefix: &str) -> Vec<Value> {
    rest.store
        .snapshot(prefix)
        .0
        .iter()
        .map(|c| (**c).clone())
        .collect()
}

/// Resolves Services and namespaces for the dispatcher from the server's own state.
pub struct StoreResolver<'a>(pub &'a Rest);

impl webhook::Resolver for StoreResolver<'_> {
    async fn service_address(
        &self,
        namespace: &str,
        name: &str,
        port: i32,
    ) -> Result<SocketAddr, String> {
        service_address(self.0, namespace, name, port)
    }

    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let ns = self.0.namespace(namespace)?;
        Some(
            ns.pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }
}

impl webhook::ParamSource for StoreResolver<'_> {
    fn param_scope(&self, api_version: &str, kind: &str) -> Option<webhook::ParamScope> {
        let res = param_resource(self.0, api_version, kind)?;
        Some(if res.namespaced {
            webhook::ParamScope::Namespaced
        } else {
            webhook::ParamScope::Cluster
        })
    }

    fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = param_resource(self.0, api_version, kind)?;
        let stored = self.0.get_stored(&res, namespace, name)?;
        Some(crate::conversion::to_version(&stored, &res))
    }

    fn list(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<Value> {
        let Some(res) = param_resource(self.0, api_version, kind) else {
            return Vec::new();
        };
        let (items, _) = self.0.store.snapshot(&crate::rest::prefix(&res, namespace));
        items
            .iter()
            .map(|o| crate::conversion::to_version(o, &res))
            .collect()
    }

    fn namespace(&self, name: &str) -> Option<Value> {
        self.0.namespace(name).map(|n| (*n).clone())
    }
}

/// The served resource of a policy's `paramKind`.
fn param_resource(
    rest: &Rest,
    api_version: &str,
    kind: &str,
) -> Option<std::sync::Arc<ResourceInfo>> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    rest.registry
        .resources_in(group, version)
        .into_iter()
        .find(|r| r.kind == kind)
}

/// Where a Service's port is served: a ready endpoint of it (the service network may not
/// reach from the API server's host), else its cluster IP.
pub(crate) fn service_address(
    rest: &Rest,
    ns: &str,
    name: &str,
    port: i32,
) -> Result<SocketAddr, String> {
    let svc = rest
        .store
        .get(&format!("/registry/services/specs/{ns}/{name}"))
        .ok_or_else(|| format!("service \"{name}\" not found"))?;
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(sp) = ports
        .iter()
        .find(|p| p.get("port").and_then(Value::as_i64) == Some(port as i64))
    else {
        return Err(format!(
            "no service port {port} found for service \"{name}\""
        ));
    };
    let port_name = sp.get("name").and_then(Value::as_str).unwrap_or("");
    let (slices, _) = rest
        .store
        .snapshot(&format!("/registry/endpointslices/{ns}/"));
    for slice in slices.iter().filter(|s| {
        s.pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
            == Some(name)
    }) {
        let Some(target) = slice
            .get("ports")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            })
            .and_then(|p| p.get("port").and_then(Value::as_i64))
        else {
            continue;
        };
        for ep in slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if ep.pointer("/conditions/ready") == Some(&Value::Bool(false)) {
                continue;
            }
            if let Some(ip) = ep
                .pointer("/addresses/0")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<IpAddr>().ok())
            {
                return Ok(SocketAddr::new(ip, target as u16));
            }
        }
    }
    match svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|a| a.parse::<IpAddr>().ok())
    {
        Some(ip) => Ok(SocketAddr::new(ip, port as u16)),
        None => Err(format!(
            "service \"{name}\" has no endpoints and no cluster IP"
        )),
    }
}

impl Rest {
    /// Whether any mutating (or validating: webhook or admission policy binding)
    /// configuration exists.
    pub fn has_webhooks(&self, mutating: bool) -> bool {
        if mutating {
            self.store.count(MUTATING) > 0
        } else {
            self.store.count(VALIDATING) > 0 || self.store.count(BINDINGS) > 0
        }
    }

    /// Runs the mutating webhooks on `obj` (in the version of `a.res`); returns their
    /// warnings.
    pub async fn mutate(
        &self,
        a: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let Some(user) = a.user else {
            return Ok(Vec::new());
        };
        if !self.plugins.on("MutatingAdmissionWebhook") {
            return Ok(Vec::new());
        }
        let configs = configurations(self, MUTATING);
        if configs.is_empty() {
            return Ok(Vec::new());
        }
        let mut req = request(a, user, Some(obj.clone()), old.cloned());
        let outcome = self
            .webhooks
            .mutate(&configs, &mut req, &StoreResolver(self))
            .await?;
        if let Some(patched) = req.object {
            *obj = patched;
        }
        Ok(outcome.warnings)
    }

    /// Admission of a DELETE: mutating and validating webhooks see the object going
    /// (`oldObject`) and may refuse.
    pub async fn admit_delete(&self, a: &Attributes<'_>, old: &Value) -> Result<(), ApiError> {
        let Some(user) = a.user else {
            return Ok(());
        };
        if self.plugins.on("NodeRestriction") {
            crate::admission::noderestriction::validate_delete(a, a.res, old)?;
        }
        let old = crate::conversion::to_version(old, a.res);
        let configs = configurations(self, MUTATING);
        if !configs.is_empty() && self.plugins.on("MutatingAdmissionWebhook") {
            let mut req = request(a, user, None, Some(old.clone()));
            self.webhooks
                .mutate(&configs, &mut req, &StoreResolver(self))
                .await?;
        }
        self.validate(a, None, Some(&old)).await.map(|_| ())
    }

    /// Runs the ValidatingAdmissionPolicies, then the validating webhooks (upstream's
    /// plugin order); returns their warnings.
    pub async fn validate(
        &self,
        a: &Attributes<'_>,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let Some(user) = a.user else {
            return Ok(Vec::new());
        };
        let req = request(a, user, obj.cloned(), old.cloned());
        let mut warnings = Vec::new();
        let bindings = configurations(self, BINDINGS);
        if !bindings.is_empty() && self.plugins.on("ValidatingAdmissionPolicy") {
            let policies = configurations(self, POLICIES);
            let outcome =
                webhook::validate_policies(&policies, &bindings, &req, &StoreResolver(self))?;
            warnings.extend(outcome.warnings);
        }
        let configs = configurations(self, VALIDATING);
        if !configs.is_empty() && self.plugins.on("ValidatingAdmissionWebhook") {
            let outcome = self
                .webhooks
                .validate(&configs, &req, &StoreResolver(self))
                .await?;
            warnings.extend(outcome.warnings);
        }
        Ok(warnings)
    }
}
