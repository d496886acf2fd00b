//! Expectations: what a controller has done but its watch cache has not shown yet
//! (upstream's `UIDTrackingControllerExpectations`, keyed by the created or deleted
//! objects' uids instead of counters).
//!
//! A controller that creates pods records the uids the API returned with
//! [`Expectations::expect_creations`]; one that deletes records the uids with
//! [`Expectations::expect_deletions`]. Before acting again on the same owner it asks
//! [`Expectations::satisfied`], passing a lookup into its cache: a creation is observed
//! once the uid is in the cache, a deletion once the uid is gone or terminating. Until
//! then the controller must not create or delete more (it may still update status), so
//! a slow watch never leads to duplicate pods. Entries expire after five minutes, as
//! upstream's do, so a lost event cannot wedge an owner forever.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long unobserved expectations are honoured.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// What the cache knows about an object the controller created or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Not in the cache.
    Absent,
    /// In the cache, without a deletionTimestamp.
    Present,
    /// In the cache, being deleted.
    Terminating,
}

#[derive(Default)]
struct Pending {
    creations: HashSet<String>,
    deletions: HashSet<String>,
    since: Option<Instant>,
}

/// Per-owner pending creations and deletions (owners keyed by `namespace/name`).
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Pending>) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Remembers objects just created for `key`.
    pub fn expect_creations(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        self.with(|m| {
            let p = m.entry(key.to_string()).or_default();
            p.creations.extend(uids);
            p.since = Some(Instant::now());
        })
    }

    /// Remembers objects just deleted for `key`.
    pub fn expect_deletions(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        self.with(|m| {
            let p = m.entry(key.to_string()).or_default();
            p.deletions.extend(uids);
            p.since = Some(Instant::now());
        })
    }

    /// Whether every creation and deletion recorded for `key` has been observed through
    /// `lookup` (or has expired). Observed entries are dropped.
    pub fn satisfied(&self, key: &str, lookup: impl Fn(&str) -> Observed) -> bool {
        self.with(|m| {
            let Some(p) = m.get_mut(key) else {
                return true;
            };
            p.creations.retain(|uid| lookup(uid) == Observed::Absent);
            p.deletions.retain(|uid| lookup(uid) == Observed::Present);
            let expired = p.since.is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT);
            if expired || (p.creations.is_empty() && p.deletions.is_empty()) {
                m.remove(key);
                return true;
            }
            false
        })
    }

    /// Forgets everything about `key` (the owner was deleted).
    pub fn forget(&self, key: &str) {
        self.with(|m| {
            m.remove(key);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_cache_catches_up() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/a", |_| Observed::Absent));
        e.expect_creations("ns/a", ["u1".to_string(), "u2".to_string()]);
        assert!(!e.satisfied("ns/a", |_| Observed::Absent));
        assert!(!e.satisfied("ns/a", |u| if u == "u1" {
            Observed::Present
        } else {
            Observed::Absent
        }));
        assert!(e.satisfied("ns/a", |_| Observed::Present));
        e.expect_deletions("ns/a", ["u1".to_string()]);
        assert!(!e.satisfied("ns/a", |_| Observed::Present));
        assert!(e.satisfied("ns/a", |_| Observed::Terminating));
        e.expect_deletions("ns/b", ["x".to_string()]);
        e.forget("ns/b");
        assert!(e.satisfied("ns/b", |_| Observed::Present));
    }
}
