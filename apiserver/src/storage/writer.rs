//! The committer: one task that owns every write. It takes the writes queued at the
//! moment, checks each against the current state (and the batch's earlier writes),
//! gives the changes consecutive revisions, makes the whole batch durable with one
//! backend call (one transaction, one fsync), then applies it to memory and publishes the
//! events. Many concurrent writers thus share one fsync, and revisions stay in order.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{
    Backend, BackendError, Entry, Event, EventType, Inner, Record, StorageError, same_but_rv,
    set_resource_version,
};

/// The most writes committed together.
pub(super) const MAX_BATCH: usize = 256;

/// One requested change.
pub(super) enum Op {
    Create(Value),
    Update { expected: u64, obj: Value },
    Delete { expected: Option<u64> },
}

/// Where a write's outcome goes.
pub(super) type Reply = oneshot::Sender<Result<Arc<Value>, StorageError>>;

pub(super) struct WriteReq {
    pub key: String,
    pub op: Op,
    pub reply: Reply,
}

/// Runs until every `Store` handle is gone.
pub(super) async fn run(
    inner: Arc<Inner>,
    backend: Arc<dyn Backend>,
    mut queue: mpsc::Receiver<WriteReq>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        commit(&inner, &backend, std::mem::take(&mut batch)).await;
    }
}

/// What one write does, decided before anything is persisted.
enum Plan {
    /// Answered without a change (an error, or an update that changes nothing).
    Done(Result<Arc<Value>, StorageError>),
    Change(Arc<Event>),
}

fn plan(key: &str, op: Op, current: Option<&Entry>, rev: u64) -> Plan {
    let conflict = |expected: u64, actual: u64| {
        Plan::Done(Err(StorageError::Conflict {
            key: key.to_string(),
            expected,
            actual,
        }))
    };
    let event = |kind, object: Value, prev: Option<Arc<Value>>| {
        Plan::Change(Arc::new(Event {
            kind,
            key: key.to_string(),
            rev,
            object: Arc::new(object),
            prev,
            json_line: Default::default(),
        }))
    };
    match (op, current) {
        (Op::Create(_), Some(_)) => Plan::Done(Err(StorageError::AlreadyExists(key.into()))),
        (Op::Create(mut obj), None) => {
            set_resource_version(&mut obj, rev);
            event(EventType::Added, obj, None)
        }
        (Op::Update { .. } | Op::Delete { .. }, None) => {
            Plan::Done(Err(StorageError::NotFound(key.into())))
        }
        (Op::Update { expected, .. }, Some(cur)) if cur.rev != expected => {
            conflict(expected, cur.rev)
        }
        (Op::Update { mut obj, .. }, Some(cur)) => {
            if same_but_rv(&obj, &cur.value) {
                return Plan::Done(Ok(cur.value.clone()));
            }
            set_resource_version(&mut obj, rev);
            event(EventType::Modified, obj, Some(cur.value.clone()))
        }
        (
            Op::Delete {
                expected: Some(expected),
            },
            Some(cur),
        ) if cur.rev != expected => conflict(expected, cur.rev),
        (Op::Delete { .. }, Some(cur)) => {
            let mut gone = (*cur.value).clone();
            set_resource_version(&mut gone, rev);
            event(EventType::Deleted, gone, Some(cur.value.clone()))
        }
    }
}

async fn commit(inner: &Arc<Inner>, backend: &Arc<dyn Backend>, batch: Vec<WriteReq>) {
    let mut changes: Vec<(Reply, Arc<Event>)> = Vec::new();
    {
        let st = inner.state.read().unwrap_or_else(|e| e.into_inner());
        // the batch's own earlier writes, over the committed state
        let mut overlay: HashMap<String, Option<Entry>> = HashMap::new();
        let mut rev = st.rev;
        for req in batch {
            let current = match overlay.get(&req.key) {
                Some(e) => e.as_ref(),
                None => st.objects.get(&req.key),
            };
            match plan(&req.key, req.op, current, rev + 1) {
                Plan::Done(result) => {
                    let _ = req.reply.send(result);
                }
                Plan::Change(ev) => {
                    rev += 1;
                    let after = (ev.kind != EventType::Deleted).then(|| Entry {
                        rev,
                        value: ev.object.clone(),
                    });
                    overlay.insert(req.key, after);
                    changes.push((req.reply, ev));
                }
            }
        }
    }
    if changes.is_empty() {
        return;
    }
    let records: Vec<Record> = changes
        .iter()
        .map(|(_, ev)| Record {
            key: ev.key.clone(),
            rev: ev.rev,
            value: (ev.kind != EventType::Deleted).then(|| ev.object.clone()),
        })
        .collect();
    let backend = backend.clone();
    let persisted = match tokio::task::spawn_blocking(move || backend.append(records)).await {
        Ok(r) => r,
        Err(e) => Err(BackendError::Other(format!(
            "the storage writer failed: {e}"
        ))),
    };
    if let Err(e) = persisted {
        tracing::error!(error = %e, "storage write failed; nothing of this batch was applied");
        let text = e.to_string();
        for (reply, _) in changes {
            let _ = reply.send(Err(StorageError::Backend(BackendError::Other(
                text.clone(),
            ))));
        }
        return;
    }
    {
        let mut st = inner.state.write().unwrap_or_else(|e| e.into_inner());
        for (_, ev) in &changes {
            inner.apply(&mut st, ev);
        }
        let _ = inner.applied.send_replace(st.rev);
    }
    for (reply, ev) in changes {
        let _ = reply.send(Ok(ev.object.clone()));
    }
}
