//! Consistent reads over etcd without one etcd round trip each. A consistent read needs
//! a revision etcd reported *after* the read arrived; the cache then waits to reach it.
//! Readers take a ticket, and one task fetches etcd's revision for every ticket taken
//! before its fetch started, so a burst of reads costs about one linearizable etcd
//! read per round trip instead of one per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, watch};

use super::StorageError;
use super::etcd::Etcd;

/// Hands out etcd revisions fresh enough for the tickets waiting.
pub(super) struct RevisionBatcher {
    tickets: AtomicU64,
    wake: Notify,
    /// (the highest ticket the fetch covers, the revision etcd reported, or the error)
    served: watch::Sender<(u64, Result<u64, String>)>,
}

impl RevisionBatcher {
    /// Starts the fetching task.
    pub(super) fn start(etcd: Arc<Etcd>) -> Arc<Self> {
        let (served, _) = watch::channel((0, Ok(0)));
        let b = Arc::new(RevisionBatcher {
            tickets: AtomicU64::new(0),
            wake: Notify::new(),
            served,
        });
        tokio::spawn(fetch_loop(b.clone(), etcd));
        b
    }

    /// A revision etcd reported after this call began.
    pub(super) async fn fresh_revision(&self) -> Result<u64, StorageError> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut rx = self.served.subscribe();
        self.wake.notify_one();
        let got = rx
            .wait_for(|(upto, _)| *upto >= ticket)
            .await
            .map_err(|_| {
                StorageError::Backend(super::BackendError::Other(
                    "the etcd revision fetcher stopped".into(),
                ))
            })?;
        match &got.1 {
            Ok(rev) => Ok(*rev),
            Err(e) => Err(StorageError::Backend(super::BackendError::Database(
                e.clone(),
            ))),
        }
    }
}

async fn fetch_loop(b: Arc<RevisionBatcher>, etcd: Arc<Etcd>) {
    loop {
        b.wake.notified().await;
        loop {
            // every ticket taken so far was taken before this fetch starts
            let upto = b.tickets.load(Ordering::SeqCst);
            if upto <= b.served.borrow().0 {
                break;
            }
            let rev = etcd.current_revision().await.map_err(|e| e.to_string());
            let _previous = b.served.send_replace((upto, rev));
        }
    }
}
