//! The etcd backend (`--etcd-servers`): upstream's key layout
//! (`<--etcd-prefix>/<resource>/<namespace>/<name>`, e.g. `/registry/deployments/default/web`),
//! the etcd revision as the resourceVersion, compare-and-swap writes as etcd transactions,
//! and one watch from which the in-memory state (the watch cache) follows every change,
//! whichever API server made it.
//!
//! Objects are stored as JSON without `metadata.resourceVersion` (the revision is the
//! key's `mod_revision`, stamped back on read), as upstream stores them without it.
//! This module only speaks etcd; [`super::Store`] decides what the changes mean.

use std::path::PathBuf;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    KeyValue, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};
use serde_json::Value;

use super::{BackendError, StorageError, set_resource_version};

/// How to reach etcd (upstream's `--etcd-*` flags).
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    pub servers: Vec<String>,
    /// Key prefix (`--etcd-prefix`, default `/registry`).
    pub prefix: String,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// A connection to etcd with the key mapping of one API server.
pub struct Etcd {
    client: Client,
    /// A connection of its own for the watch, so the stream of every change does not
    /// share one HTTP/2 connection (and its flow-control window) with the writes.
    watcher: Client,
    keys: Keys,
}

/// The mapping between store keys (`/registry/pods/ns/x`) and etcd keys.
struct Keys {
    /// The etcd key prefix, without a trailing slash.
    prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// The etcd key of a store key (`/registry/pods/ns/x` -> `<prefix>/pods/ns/x`).
    fn etcd_key(&self, key: &str) -> String {
        format!(
            "{}{}",
            self.prefix,
            key.strip_prefix("/registry").unwrap_or(key)
        )
    }

    /// The store key of an etcd key, if it is under our prefix.
    fn store_key(&self, k: &[u8]) -> Option<String> {
        let rest = std::str::from_utf8(k).ok()?.strip_prefix(&self.prefix)?;
        rest.starts_with('/').then(|| format!("/registry{rest}"))
    }

    /// The first key of our range (`<prefix>/`).
    fn range_prefix(&self) -> String {
        format!("{}/", self.prefix)
    }
}

/// One key's state as etcd holds it.
pub struct Stored {
    pub key: String,
    pub rev: u64,
    pub value: Value,
}

/// What one watch response carried.
pub enum Change {
    /// A key under our prefix was put.
    Put(Stored),
    /// A key under our prefix was deleted at `rev`.
    Delete { key: String, rev: u64 },
    /// Some other key changed at `rev` (it only moves the revision on).
    Other { rev: u64 },
    /// Nothing changed up to `rev` (a progress notification).
    Progress { rev: u64 },
}

fn db(e: etcd_client::Error) -> StorageError {
    StorageError::Backend(BackendError::Database(format!("etcd: {e}")))
}

fn read_file(p: &PathBuf, what: &str) -> Result<Vec<u8>, BackendError> {
    std::fs::read(p)
        .map_err(|e| BackendError::Other(format!("reading {what} {}: {e}", p.display())))
}

impl Etcd {
    /// Connects to the servers (TLS when a CA or client certificate is given).
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self, BackendError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(30));
        if cfg.ca_file.is_some() || cfg.cert_file.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &cfg.ca_file {
                tls = tls.ca_certificate(Certificate::from_pem(read_file(ca, "--etcd-cafile")?));
            }
            match (&cfg.cert_file, &cfg.key_file) {
                (Some(c), Some(k)) => {
                    tls = tls.identity(Identity::from_pem(
                        read_file(c, "--etcd-certfile")?,
                        read_file(k, "--etcd-keyfile")?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(BackendError::Other(
                        "--etcd-certfile and --etcd-keyfile must be given together".into(),
                    ));
                }
            }
            opts = opts.with_tls(tls);
        }
        let connect = |opts| async {
            Client::connect(&cfg.servers, Some(opts))
                .await
                .map_err(|e| {
                    BackendError::Database(format!("connecting to etcd {:?}: {e}", cfg.servers))
                })
        };
        let client = connect(opts.clone()).await?;
        let watcher = connect(opts).await?;
        Ok(Etcd {
            client,
            watcher,
            keys: Keys::new(&cfg.prefix),
        })
    }

    fn etcd_key(&self, key: &str) -> String {
        self.keys.etcd_key(key)
    }

    fn store_key(&self, k: &[u8]) -> Option<String> {
        self.keys.store_key(k)
    }

    fn range_prefix(&self) -> String {
        self.keys.range_prefix()
    }

    fn encode(obj: &Value) -> Result<Vec<u8>, StorageError> {
        let mut o = obj.clone();
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        serde_json::to_vec(&o)
            .map_err(|e| StorageError::Backend(BackendError::Other(e.to_string())))
    }

    fn decode(&self, kv: &KeyValue) -> Result<Option<Stored>, BackendError> {
        let Some(key) = self.store_key(kv.key()) else {
            return Ok(None);
        };
        let mut value: Value =
            serde_json::from_slice(kv.value()).map_err(|e| BackendError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
        let rev = kv.mod_revision() as u64;
        set_resource_version(&mut value, rev);
        Ok(Some(Stored { key, rev, value }))
    }

    /// etcd's current revision (a linearizable read). It reads one key, the bare prefix,
    /// which holds no object: etcd answers a single-key read from its index, where a
    /// range or a count over the prefix would walk every key the cluster stores.
    pub async fn current_revision(&self) -> Result<u64, StorageError> {
        let resp = self
            .client
            .kv_client()
            .get(
                self.range_prefix(),
                Some(GetOptions::new().with_keys_only()),
            )
            .await
            .map_err(db)?;
        Ok(resp.header().map(|h| h.revision() as u64).unwrap_or(0))
    }

    /// Every key under the prefix as of `rev` (0: the latest), with the revision read.
    pub async fn list_all(&self, rev: u64) -> Result<(u64, Vec<Stored>), StorageError> {
        const PAGE: i64 = 5_000;
        let end = {
            let mut e = self.range_prefix().into_bytes();
            if let Some(last) = e.last_mut() {
                *last += 1;
            }
            e
        };
        let mut from = self.range_prefix().into_bytes();
        let mut at = rev as i64;
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if at > 0 {
                opts = opts.with_revision(at);
            }
            let resp = self
                .client
                .kv_client()
                .get(from.clone(), Some(opts))
                .await
                .map_err(db)?;
            if at == 0 {
                at = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            for kv in resp.kvs() {
                if let Some(s) = self.decode(kv)? {
                    out.push(s);
                }
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok((at as u64, out))
    }

    /// Creates `key` unless it exists; the new revision.
    pub async fn create(&self, key: &str, obj: &Value) -> Result<u64, StorageError> {
        let k = self.etcd_key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k, Self::encode(obj)?, None)]);
        let resp = self.client.kv_client().txn(txn).await.map_err(db)?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        Ok(resp.header().map(|h| h.revision() as u64).unwrap_or(0))
    }

    /// Replaces `key` if its revision is `expected`; the new revision.
    pub async fn update(&self, key: &str, expected: u64, obj: &Value) -> Result<u64, StorageError> {
        let k = self.etcd_key(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(
                k.clone(),
                CompareOp::Equal,
                expected as i64,
            )])
            .and_then([TxnOp::put(k.clone(), Self::encode(obj)?, None)])
            .or_else([TxnOp::get(k, None)]);
        let resp = self.client.kv_client().txn(txn).await.map_err(db)?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision() as u64).unwrap_or(0));
        }
        Err(self.failed_compare(key, expected, &resp.op_responses()))
    }

    /// Deletes `key` (only at revision `expected`, if given); the deletion's revision
    /// and the last state.
    pub async fn delete(
        &self,
        key: &str,
        expected: Option<u64>,
    ) -> Result<(u64, Value), StorageError> {
        let k = self.etcd_key(key);
        let cmp = match expected {
            Some(e) => Compare::mod_revision(k.clone(), CompareOp::Equal, e as i64),
            None => Compare::create_revision(k.clone(), CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([cmp])
            .and_then([TxnOp::delete(
                k.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let resp = self.client.kv_client().txn(txn).await.map_err(db)?;
        let ops = resp.op_responses();
        if !resp.succeeded() {
            return Err(self.failed_compare(key, expected.unwrap_or(0), &ops));
        }
        let rev = resp.header().map(|h| h.revision() as u64).unwrap_or(0);
        let prev = ops.iter().find_map(|op| match op {
            TxnOpResponse::Delete(d) => d.prev_kvs().first().cloned(),
            _ => None,
        });
        let Some(prev) = prev else {
            // deleted by someone else between the compare and now cannot happen in one
            // transaction; an empty answer means the key was already gone
            return Err(StorageError::NotFound(key.to_string()));
        };
        let mut value = self
            .decode(&prev)?
            .map(|s| s.value)
            .ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        set_resource_version(&mut value, rev);
        Ok((rev, value))
    }

    /// Why a compare failed: the key is gone, or it moved on to another revision.
    fn failed_compare(&self, key: &str, expected: u64, ops: &[TxnOpResponse]) -> StorageError {
        let current = ops.iter().find_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.mod_revision() as u64),
            _ => None,
        });
        match current {
            None => StorageError::NotFound(key.to_string()),
            Some(actual) => StorageError::Conflict {
                key: key.to_string(),
                expected,
                actual,
            },
        }
    }

    /// Forgets etcd's history at or below `rev`. Another API server having compacted
    /// further already is not an error.
    pub async fn compact(&self, rev: u64) -> Result<(), StorageError> {
        match self.client.kv_client().compact(rev as i64, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("compacted") => Ok(()),
            Err(e) => Err(db(e)),
        }
    }

    /// Watches every key from revision `from` on (all keys, not only ours, so that every
    /// revision etcd reaches is seen and consistent reads can wait for it).
    pub async fn watch(&self, from: u64) -> Result<WatchStream, StorageError> {
        let opts = WatchOptions::new()
            .with_all_keys()
            .with_start_revision(from as i64)
            .with_progress_notify();
        self.watcher
            .watch_client()
            .watch(vec![0u8], Some(opts))
            .await
            .map_err(db)
    }

    /// The changes one watch response carries, in order. `Err` with the compacted
    /// revision when etcd no longer has the history asked for.
    pub fn changes(&self, resp: &etcd_client::WatchResponse) -> Result<Vec<Change>, WatchBroken> {
        if resp.compact_revision() > 0 {
            return Err(WatchBroken::Compacted(resp.compact_revision() as u64));
        }
        if resp.canceled() {
            return Err(WatchBroken::Canceled(resp.cancel_reason().to_string()));
        }
        if resp.events().is_empty() {
            let rev = resp.header().map(|h| h.revision() as u64).unwrap_or(0);
            return Ok(if resp.created() {
                vec![]
            } else {
                vec![Change::Progress { rev }]
            });
        }
        let mut out = Vec::with_capacity(resp.events().len());
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let rev = kv.mod_revision() as u64;
            let Some(key) = self.store_key(kv.key()) else {
                out.push(Change::Other { rev });
                continue;
            };
            match ev.event_type() {
                etcd_client::EventType::Delete => out.push(Change::Delete { key, rev }),
                etcd_client::EventType::Put => match self.decode(kv) {
                    Ok(Some(stored)) => out.push(Change::Put(stored)),
                    Ok(None) => out.push(Change::Other { rev }),
                    Err(e) => {
                        tracing::error!(error = %e, "skipping an undecodable object from etcd");
                        out.push(Change::Other { rev });
                    }
                },
            }
        }
        Ok(out)
    }
}

/// Why the etcd watch stopped.
#[derive(Debug)]
pub enum WatchBroken {
    Compacted(u64),
    Canceled(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_is_upstreams() {
        let k = Keys::new("/registry/");
        assert_eq!(
            k.etcd_key("/registry/deployments/default/web"),
            "/registry/deployments/default/web"
        );
        assert_eq!(
            k.store_key(b"/registry/deployments/default/web").as_deref(),
            Some("/registry/deployments/default/web")
        );
        let custom = Keys::new("/kube");
        assert_eq!(custom.etcd_key("/registry/pods/ns/a"), "/kube/pods/ns/a");
        assert_eq!(
            custom.store_key(b"/kube/pods/ns/a").as_deref(),
            Some("/registry/pods/ns/a")
        );
        // other prefixes and keys that merely start with ours are not ours
        assert_eq!(custom.store_key(b"/registry/pods/ns/a"), None);
        assert_eq!(custom.store_key(b"/kubex/pods/ns/a"), None);
        assert_eq!(custom.store_key(b"compact_rev_key"), None);
    }

    #[test]
    fn stored_objects_have_no_resource_version() {
        let obj = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let bytes = Etcd::encode(&obj).expect("encode");
        let back: Value = serde_json::from_slice(&bytes).expect("json");
        assert!(back["metadata"].get("resourceVersion").is_none());
        assert_eq!(back["metadata"]["name"], "a");
    }
}
