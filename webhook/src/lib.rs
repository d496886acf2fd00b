//! Dynamic admission webhooks and the CRD conversion webhook, as the API server calls them.
//!
//! This crate owns the *client* side of upstream's `MutatingAdmissionWebhook` and
//! `ValidatingAdmissionWebhook` plugins (`admissionregistration.k8s.io/v1` configurations,
//! `AdmissionReview` v1 and v1beta1 on the wire) and of the apiextensions webhook converter
//! (`ConversionReview` v1 and v1beta1). It decides which webhooks a request matches
//! (rules, namespace and object selectors, CEL `matchConditions`), calls them over HTTPS,
//! checks their answers and turns failures into the `metav1.Status` errors upstream returns.
//!
//! It must not read storage: configurations arrive as JSON objects from the caller, and
//! Service addresses and namespace labels come through a [`Resolver`]. Each webhook call
//! opens its own connection (no keep-alive pool); TLS client configurations are cached
//! per `caBundle`.
//!
//! Layout: [`request`] (what is being admitted), `config` (webhook configurations as
//! upstream defaults them), `matching` and `conditions` (whether a webhook applies),
//! `client` (HTTPS transport with Go-shaped error strings), `review` (AdmissionReview
//! encoding and response checks), `call` (one webhook call and its failure policy),
//! `mutating`, `validating` and `conversion` (the dispatchers), and [`policy`]
//! (`ValidatingAdmissionPolicy`: CEL policies evaluated in-process, no webhook call).

mod call;
mod client;
mod conditions;
mod config;
mod conversion;
mod matching;
mod mutating;
pub mod policy;
pub mod request;
mod review;
mod validating;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;

use machinery::ApiError;

pub use policy::{ParamScope, ParamSource, validate_policies};
pub use request::{GroupVersionKind, GroupVersionResource, Operation, Request, UserInfo};

/// What the dispatcher needs from the API server's own state.
pub trait Resolver: Send + Sync {
    /// Where to connect for a Service-backed webhook: the API server resolves the Service's
    /// ClusterIP or one of its endpoint addresses. The error text is shown to clients
    /// verbatim after `Post "<url>": `, as upstream does (e.g. `service "x" not found`).
    fn service_address(
        &self,
        namespace: &str,
        name: &str,
        port: i32,
    ) -> impl Future<Output = Result<SocketAddr, String>> + Send;

    /// Labels of a namespace, for `namespaceSelector`; `None` when it does not exist.
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
}

/// What admission produced besides the verdict: to be returned as `Warning` headers and
/// recorded as audit annotations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Warnings from webhook responses, de-duplicated, in the order received.
    pub warnings: Vec<String>,
    /// Audit annotations: the webhooks' own (`<webhook name>/<key>`) and the dispatcher's
    /// (`mutation.webhook.admission.k8s.io/round_0_index_0`, `failed-open...`).
    pub audit_annotations: Vec<(String, String)>,
}

impl Outcome {
    fn warn(&mut self, warning: String) {
        if !warning.is_empty() && !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    fn annotate(&mut self, key: String, value: String) {
        if !self.audit_annotations.iter().any(|(k, _)| *k == key) {
            self.audit_annotations.push((key, value));
        }
    }

    fn extend(&mut self, other: Outcome) {
        for w in other.warnings {
            self.warn(w);
        }
        for (k, v) in other.audit_annotations {
            self.annotate(k, v);
        }
    }
}

/// A request refused by admission. Warnings and audit annotations gathered before the
/// refusal travel with it, because upstream still returns them with the error.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The `metav1.Status` error for the client.
    pub error: ApiError,
    /// Warnings and annotations collected before the refusal.
    pub outcome: Outcome,
}

impl From<Rejected> for ApiError {
    fn from(r: Rejected) -> Self {
        r.error
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error.message)
    }
}

impl std::error::Error for Rejected {}

/// Calls admission and conversion webhooks. Cheap to share (`Arc`) across requests: it
/// only caches TLS client configurations, keyed by `caBundle`.
#[derive(Default)]
pub struct Dispatcher {
    tls: client::TlsCache,
}

impl Dispatcher {
    /// A dispatcher with an empty TLS cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the mutating webhooks of `configs` (MutatingWebhookConfiguration objects) that
    /// match `req`, in upstream order (configurations by name, webhooks in order), applying
    /// each JSONPatch to `req.object`. Webhooks with `reinvocationPolicy: IfNeeded` run once
    /// more when a later webhook changed the object.
    pub async fn mutate(
        &self,
        configs: &[serde_json::Value],
        req: &mut Request,
        resolver: &impl Resolver,
    ) -> Result<Outcome, Rejected> {
        mutating::dispatch(self, configs, req, resolver).await
    }

    /// Runs the validating webhooks of `configs` (ValidatingWebhookConfiguration objects)
    /// that match `req`, all at once; the first refusal (in webhook order) wins.
    pub async fn validate(
        &self,
        configs: &[serde_json::Value],
        req: &Request,
        resolver: &impl Resolver,
    ) -> Result<Outcome, Rejected> {
        validating::dispatch(self, configs, req, resolver).await
    }

    /// Converts custom resources through the webhook of a CRD's `spec.conversion`.
    /// One object is converted as upstream converts an object, several as the items of a
    /// list; objects already at `desired_api_version` are not sent. The error strings are
    /// upstream's webhook converter's.
    pub async fn convert(
        &self,
        conversion: &serde_json::Value,
        objects: Vec<serde_json::Value>,
        desired_api_version: &str,
        resolver: &impl Resolver,
    ) -> Result<Vec<serde_json::Value>, String> {
        conversion::convert(self, conversion, objects, desired_api_version, resolver).await
    }
}
