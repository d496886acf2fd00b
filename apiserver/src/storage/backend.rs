//! The durable half of the store: an append-only log of revisions. Implementations must
//! make `append` durable before returning; the in-memory [`super::Store`] is rebuilt from
//! `load` at start.

use std::sync::Arc;

use serde_json::Value;

/// One revision of one key; `value` is `None` for a deletion.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    pub rev: u64,
    pub value: Option<Arc<Value>>,
}

/// What a backend holds at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The highest revision ever written.
    pub rev: u64,
    /// The latest record of every live key.
    pub current: Vec<Record>,
    /// For history replay: each key's last record at or before the first history revision.
    pub history_base: Vec<Record>,
    /// The most recent records in revision order (at most the history limit).
    pub history: Vec<Record>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored object for {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// A durable, crash-safe log of revisions. Calls block; the store runs them off the
/// async runtime.
pub trait Backend: Send + Sync + 'static {
    fn load(&self, history_limit: usize) -> Result<Loaded, BackendError>;
    /// Durably appends consecutive revisions, all or nothing (each `rev` is exactly the
    /// previous one plus one).
    fn append(&self, records: Vec<Record>) -> Result<(), BackendError>;
    /// Forgets superseded revisions at or below `rev`.
    fn compact(&self, rev: u64) -> Result<(), BackendError>;
}
