//! The engines under the watch cache: where the truth lives and how a write becomes
//! durable. [`super::Store`] gives every engine the same semantics (one revision
//! sequence, compare-and-swap, history, watches); an engine only commits writes, tells
//! how fresh a consistent read must be, and compacts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::consistent::RevisionBatcher;
use super::etcd::Etcd;
use super::writer::{self, Op};
use super::{
    Backend, BackendError, SYNC_TIMEOUT, State, StorageError, Store, same_but_rv,
    set_resource_version,
};

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One durable engine.
pub(super) trait Engine: Send + Sync {
    /// Commits one write for `store`; answers once the store's memory shows it, so the
    /// writer reads its own write.
    fn write<'a>(
        &'a self,
        store: &'a Store,
        key: &'a str,
        op: Op,
    ) -> BoxFuture<'a, Result<Arc<Value>, StorageError>>;

    /// The revision a consistent read must see, or `None` when this process's memory is
    /// the truth (no other writer exists).
    fn fresh_revision(&self) -> BoxFuture<'_, Result<Option<u64>, StorageError>>;

    /// Drops the engine's history at and below `rev`.
    fn compact(&self, rev: u64) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Whether other API servers may write the same data.
    fn is_shared(&self) -> bool;
}

/// The embedded engine: this process owns the data. Writes queue for one committer task
/// ([`writer::run`]) that batches them (group commit) into the [`Backend`].
pub(super) struct Embedded {
    pub(super) writes: mpsc::Sender<writer::WriteReq>,
    pub(super) backend: Arc<dyn Backend>,
}

impl Engine for Embedded {
    fn write<'a>(
        &'a self,
        _store: &'a Store,
        key: &'a str,
        op: Op,
    ) -> BoxFuture<'a, Result<Arc<Value>, StorageError>> {
        Box::pin(async move {
            let (reply, outcome) = tokio::sync::oneshot::channel();
            let req = writer::WriteReq {
                key: key.to_string(),
                op,
                reply,
            };
            let stopped = || {
                StorageError::Backend(BackendError::Other("the storage committer stopped".into()))
            };
            self.writes.send(req).await.map_err(|_| stopped())?;
            outcome.await.map_err(|_| stopped())?
        })
    }

    fn fresh_revision(&self) -> BoxFuture<'_, Result<Option<u64>, StorageError>> {
        Box::pin(async { Ok(None) })
    }

    fn compact(&self, rev: u64) -> BoxFuture<'_, Result<(), StorageError>> {
        let backend = self.backend.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || backend.compact(rev))
                .await
                .map_err(|e| BackendError::Other(e.to_string()))??;
            Ok(())
        })
    }

    fn is_shared(&self) -> bool {
        false
    }
}

/// etcd owns the data: writes are etcd transactions, and the store's memory follows
/// etcd's watch ([`super::follower`]), so writes of other API servers show up too.
pub(super) struct OnEtcd {
    pub(super) etcd: Arc<Etcd>,
    pub(super) revisions: Arc<RevisionBatcher>,
}

impl Engine for OnEtcd {
    fn write<'a>(
        &'a self,
        store: &'a Store,
        key: &'a str,
        op: Op,
    ) -> BoxFuture<'a, Result<Arc<Value>, StorageError>> {
        Box::pin(self.transact(store, key, op))
    }

    fn fresh_revision(&self) -> BoxFuture<'_, Result<Option<u64>, StorageError>> {
        Box::pin(async { self.revisions.fresh_revision().await.map(Some) })
    }

    fn compact(&self, rev: u64) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(self.etcd.compact(rev))
    }

    fn is_shared(&self) -> bool {
        true
    }
}

impl OnEtcd {
    /// One write as an etcd transaction. The answer waits until the store's memory has
    /// seen the write, so a client reads its own writes from this server.
    async fn transact(&self, store: &Store, key: &str, op: Op) -> Result<Arc<Value>, StorageError> {
        let etcd = &self.etcd;
        let outcome = match op {
            Op::Create(obj) => etcd.create(key, &obj).await.map(|rev| (rev, obj)),
            Op::Update { expected, obj } => {
                let unchanged = |st: &State| {
                    st.objects.get(key).and_then(|cur| {
                        (cur.rev == expected && same_but_rv(&obj, &cur.value))
                            .then(|| cur.value.clone())
                    })
                };
                // a write that changes nothing makes no revision, but only once etcd
                // confirms the cached copy is still the latest (as upstream re-reads)
                if unchanged(&store.read()).is_some() {
                    store.sync().await?;
                    if let Some(v) = unchanged(&store.read()) {
                        return Ok(v);
                    }
                }
                etcd.update(key, expected, &obj).await.map(|rev| (rev, obj))
            }
            Op::Delete { expected } => etcd.delete(key, expected).await,
        };
        let (rev, mut written) = match outcome {
            Ok(done) => done,
            Err(e) => {
                // let the caller (and its retry) read what made the compare fail: a
                // write of another API server this cache has not seen yet
                match &e {
                    StorageError::Conflict { actual, .. } => {
                        let _ = store.wait_applied(*actual, SYNC_TIMEOUT).await;
                    }
                    StorageError::AlreadyExists(_) | StorageError::NotFound(_) => {
                        let _ = store.sync().await;
                    }
                    _ => {}
                }
                return Err(e);
            }
        };
        if let Err(e) = store.wait_applied(rev, SYNC_TIMEOUT).await {
            tracing::warn!(%key, rev, error = %e, "the watch cache is behind a write it made");
        }
        if let Some(e) = store.read().objects.get(key)
            && e.rev == rev
        {
            return Ok(e.value.clone());
        }
        set_resource_version(&mut written, rev);
        Ok(Arc::new(written))
    }
}
