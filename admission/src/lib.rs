//! The logic of upstream's built-in admission plugins (`plugin/pkg/admission/*`), without
//! I/O: each module takes the objects an admission step sees (`serde_json::Value`, as
//! they arrive at the API server) plus whatever the plugin would have listed from its
//! informers, and returns the mutated object or upstream's error messages.
//!
//! What this crate must not do: talk to storage, keep caches, or build HTTP responses.
//! The API server owns listing (e.g. the namespace's LimitRanges), the order of the
//! admission chain, and turning messages into a `metav1.Status`.

pub mod limitranger;
pub mod quota;
pub use machinery::quantity;
