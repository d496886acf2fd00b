//! The kubelet crate. Today it holds the pod status lifecycle ([`status`]), which the
//! real kubelet's pod workers will share, and the simulated nodes ([`sim`]) behind the
//! `kubelet-sim` binary: one process that registers many nodes, keeps their leases and
//! heartbeats, and runs their pods without containers, all through the API server.

pub mod sim;
pub mod status;
