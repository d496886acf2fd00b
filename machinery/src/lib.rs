//! Shared Kubernetes API machinery: `metav1.Status` errors, label and field selectors,
//! name validation and resource descriptions. Pure logic, no I/O: every other crate
//! builds on it.

pub mod duration;
pub mod fields;
pub mod labels;
pub mod names;
pub mod quantity;
pub mod resource;
pub mod status;

pub use status::{ApiError, FieldError};
