//! The API server's audit log, as upstream `k8s.io/apiserver/pkg/audit` and the `log`
//! audit backend do it.
//!
//! * [`policy`]: the `audit.k8s.io/v1` `Policy` read from `--audit-policy-file`, validated
//!   as upstream validates it, and evaluated per request into a [`RequestAuditConfig`].
//! * [`request`]: the request attributes the policy sees ([`Attributes`]) and helpers that
//!   derive the audit ID and source IPs from a request the way upstream does.
//! * [`event`]: the `audit.k8s.io/v1` `Event` built through a request's life and
//!   serialized once per stage.
//! * [`backend`]: the `--audit-log-*` backend that appends one JSON event per line from a
//!   dedicated thread, rotating files like lumberjack ([`rotate`]).
//!
//! This crate owns no HTTP types: the API server maps its own request and response onto
//! these calls, so the wiring lives in one place over there.
//!
//! # Wiring a request
//!
//! 1. Authenticate, resolve the request info, then build [`Attributes`] (the *requesting*
//!    user, not an impersonated one) and call [`Policy::evaluate`].
//! 2. [`Event::new`]; `None` means level `None`: do nothing else for this request. Always
//!    echo the audit ID ([`request::audit_id_from_header`]) as the `Audit-Id` response header.
//! 3. Send [`Event::at_stage`]`(Stage::RequestReceived)` to [`LogBackend::process`].
//! 4. While handling: [`Event::set_impersonated_user`] after impersonation,
//!    [`Event::add_annotation`] for the authorization decision and reason,
//!    [`Event::set_request_object`] once the body is decoded (for a patch, the patch
//!    document), [`Event::set_response`] when the status code and body are known.
//! 5. For long-running requests (watch, exec, attach, port-forward, proxy), send
//!    `at_stage(Stage::ResponseStarted)` when the status line goes out (101 for upgrades).
//! 6. At the end send `at_stage(Stage::ResponseComplete)`, or after [`Event::set_panic`]
//!    `at_stage(Stage::Panic)` if the handler panicked.

pub mod backend;
pub mod event;
pub mod policy;
pub mod request;
pub mod rotate;
mod types;
mod validation;

pub use backend::{LogBackend, LogOptions};
pub use event::{Event, ObjectReference, ResponseStatus, UserInfo};
pub use policy::{Policy, RequestAuditConfig};
pub use request::{
    ANNOTATION_AUTHZ_DECISION, ANNOTATION_AUTHZ_REASON, Attributes, HEADER_AUDIT_ID,
    audit_id_from_header, source_ips, truncate_user_agent,
};
pub use types::{Level, Stage};

/// Everything that can go wrong loading a policy or opening the log backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy file could not be read.
    #[error("failed to read file path {path:?}: {source}")]
    ReadPolicy {
        /// The file that was asked for.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The policy text is not a decodable `audit.k8s.io` `Policy`.
    #[error("failed decoding: {0}")]
    Decode(String),
    /// The policy decoded but is invalid; the message lists every field error.
    #[error("{0}")]
    InvalidPolicy(String),
    /// A policy loaded from a file failed; wraps the underlying error with the path.
    #[error("{source}: from file {path}")]
    PolicyFile {
        /// The file the policy came from.
        path: String,
        /// What was wrong with it.
        source: Box<Error>,
    },
    /// The `--audit-log-*` options are not usable.
    #[error("invalid audit log options: {0}")]
    InvalidOptions(String),
    /// The log file or its directory could not be created or opened.
    #[error("failed to open audit log {path:?}: {source}")]
    OpenLog {
        /// The log path.
        path: String,
        /// Why opening failed.
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("failed to start the audit log writer thread: {0}")]
    SpawnWriter(std::io::Error),
}
