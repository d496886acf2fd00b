//! The Kubernetes scheduler, in Rust.
//!
//! The core is usable without an API server: [`cache::Cache`] holds nodes and pods,
//! [`algorithm::Algorithm`] runs one scheduling cycle of a [`config::Profile`]'s plugins
//! over it, and [`preemption`] picks victims. [`topology`] keeps the per-domain pod counts
//! that pod affinity and topology spread read. [`queue`] orders pending pods. The
//! [`scheduler`] module wires these to informers, the binding subresource, events and pod
//! status, and [`leader`] and [`health`] provide leader election and the health endpoint.

pub mod algorithm;
pub mod binder;
pub mod cache;
pub mod config;
pub mod events;
pub mod framework;
pub mod health;
pub mod informers;
pub mod leader;
pub mod owners;
pub mod plugins;
pub mod podinfo;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod selectors;
pub mod topology;
