//! The garbage collector (upstream's `pkg/controller/garbagecollector`).
//!
//! It watches the metadata of every resource discovery lists (rediscovering every 30s so
//! CustomResourceDefinitions join), keeps the ownership [`graph`], and runs [`Task`]s from
//! a de-duplicating queue with `--concurrent-gc-syncs` workers ([`actions`]):
//! background deletion of dependents whose owners are gone (owners verified by uid with a
//! live read), foreground deletion (`foregroundDeletion` finalizer: dependents first, the
//! finalizer removed once no `blockOwnerDeletion` dependent remains), and orphaning
//! (`orphan` finalizer: ownerReferences removed from dependents, then the finalizer).

pub mod actions;
pub mod graph;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{Semaphore, mpsc};

use crate::Context;
use crate::common::discovery::{self, Discovered};
use graph::{Graph, Task};

const REDISCOVERY_PERIOD: Duration = Duration::from_secs(30);

/// Entry point of `garbage-collector-controller`.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        if !ctx.options.enable_garbage_collector {
            tracing::info!("garbage collector disabled by --enable-garbage-collector=false");
            futures::future::pending::<()>().await;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let collector = Arc::new(Collector {
            client: ctx.client.clone(),
            resources: RwLock::new(Vec::new()),
            graph: Mutex::new(Graph::default()),
            pending: Mutex::new(HashSet::new()),
            tx,
        });
        tokio::spawn(collector.clone().discover_forever());
        collector
            .work(rx, ctx.options.concurrent_gc_syncs.max(1))
            .await;
        Ok(())
    })
}

/// The collector's shared state.
pub struct Collector {
    client: kube::Client,
    /// Append-only: graph nodes refer to resources by index.
    resources: RwLock<Vec<Discovered>>,
    graph: Mutex<Graph>,
    pending: Mutex<HashSet<Task>>,
    tx: mpsc::UnboundedSender<Task>,
}

impl Collector {
    /// Queues a task unless it is already queued.
    pub fn enqueue(&self, task: Task) {
        let fresh = self
            .pending
            .lock()
            .map(|mut p| p.insert(task.clone()))
            .unwrap_or(false);
        if fresh {
            let _ = self.tx.send(task);
        }
    }

    async fn work(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Task>, workers: usize) {
        let limit = Arc::new(Semaphore::new(workers));
        while let Some(task) = rx.recv().await {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&task);
            }
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let result = me.process(&task).await;
                drop(permit);
                if let Err(e) = result {
                    tracing::warn!(?task, error = %e, "garbage collection failed, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    me.enqueue(task);
                }
            });
        }
    }

    async fn discover_forever(self: Arc<Self>) {
        loop {
            match discovery::resources_with(&self.client, &["list", "watch", "delete"]).await {
                Ok(found) => self.watch_new(found),
                Err(e) => tracing::warn!(error = %e, "garbage collector discovery failed"),
            }
            tokio::time::sleep(REDISCOVERY_PERIOD).await;
        }
    }

    fn watch_new(self: &Arc<Self>, found: Vec<Discovered>) {
        let Ok(mut resources) = self.resources.write() else {
            return;
        };
        let known: HashSet<String> = resources.iter().map(Discovered::key).collect();
        for d in found {
            if known.contains(&d.key()) {
                continue;
            }
            let index = resources.len();
            tracing::debug!(resource = %d.key(), "garbage collector watching");
            let api: Api<PartialObjectMeta<DynamicObject>> =
                Api::all_with(self.client.clone(), &d.resource);
            resources.push(d);
            tokio::spawn(self.clone().watch(index, api));
        }
    }

    async fn watch(self: Arc<Self>, index: usize, api: Api<PartialObjectMeta<DynamicObject>>) {
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::debug!(error = %e, "garbage collector watch error");
                    continue;
                }
            };
            let tasks = {
                let Ok(mut g) = self.graph.lock() else {
                    return;
                };
                match ev {
                    Event::Init => {
                        g.relist_start(index);
                        vec![]
                    }
                    Event::InitApply(o) | Event::Apply(o) => g.upsert(index, &o.metadata),
                    Event::InitDone => g.relist_done(index),
                    Event::Delete(o) => match o.metadata.uid.as_deref() {
                        Some(uid) => g.remove(uid),
                        None => vec![],
                    },
                }
            };
            for t in tasks {
                self.enqueue(t);
            }
        }
    }
}
