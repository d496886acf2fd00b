//! Patches of Kubernetes objects in their JSON form: JSON patch (RFC 6902), JSON merge
//! patch (RFC 7386), strategic merge patch, and server-side apply with managed fields.
//!
//! Everything here is pure: functions take the current object and the request body and
//! return the new object or a `metav1.Status` error ([`ApiError`]) worded as upstream.
//! Which patch type a request uses, and storing the result, is the API server's business.
//!
//! - [`json_patch()`], [`merge_patch`]: schema-free patches.
//! - [`strategic_merge_patch`]: merges lists by the keys the built-in types declare
//!   ([`schema`] holds the type graph and the patch metadata table).
//! - [`apply()`], [`update_managed_fields()`]: server-side apply and the `managedFields`
//!   bookkeeping of ordinary writes ([`fieldpath`] is the `FieldsV1` set encoding).

// `ApiError` is the status every caller hands to clients; boxing it in each signature
// would only move the allocation.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

pub mod apply;
pub mod errors;
pub mod fieldpath;
mod json;
pub mod schema;
pub mod strategic;

pub use apply::{
    Request, apply, apply_with, manager_name, update_managed_fields, update_managed_fields_with,
};
pub use errors::strategic_merge_patch_unsupported;
pub use json::{MAX_JSON_PATCH_OPERATIONS, json_patch, merge_patch};
pub use machinery::status::ApiError;
pub use schema::{openapi_extensions, patch_meta};
pub use strategic::{strategic_merge_patch, strategic_merge_patch_with};
