//! One suite for both backends: each `suite!` test runs against the embedded store and
//! against a real etcd started for it (Debian's `etcd-server`). Revisions are compared
//! relative to where the store started, since a fresh etcd is already at revision 1.

use std::sync::Arc;

use serde_json::json;

use super::*;

async fn embedded() -> Store {
    let backend = SqliteBackend::in_memory().expect("db");
    Store::open(Arc::new(backend), 1000).await.expect("open")
}

fn etcd_config(etcd: &testenv::Etcd) -> etcd::EtcdConfig {
    etcd::EtcdConfig {
        servers: vec![etcd.endpoint.clone()],
        prefix: "/registry".into(),
        ..Default::default()
    }
}

async fn on(etcd: &testenv::Etcd) -> Store {
    let conn = etcd::Etcd::connect(&etcd_config(etcd))
        .await
        .expect("connect");
    Store::open_etcd(conn, 1000).await.expect("open on etcd")
}

/// Runs `$name(store)` once per backend.
macro_rules! suite {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(super::embedded().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn etcd() {
                let etcd = testenv::Etcd::start();
                super::$name(super::on(&etcd).await).await;
            }
        }
    };
}

fn obj(name: &str, v: i64) -> Value {
    json!({"metadata": {"name": name}, "data": {"v": v}})
}

fn rv(o: &Value) -> u64 {
    o["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("a resourceVersion")
}

suite!(create_update_delete_with_cas);
async fn create_update_delete_with_cas(s: Store) {
    let r0 = s.current_revision();
    let a = s
        .create("/registry/cm/ns/a", obj("a", 1))
        .await
        .expect("create");
    assert_eq!(rv(&a), r0 + 1);
    assert!(matches!(
        s.create("/registry/cm/ns/a", obj("a", 1)).await,
        Err(StorageError::AlreadyExists(_))
    ));
    let b = s
        .update("/registry/cm/ns/a", r0 + 1, obj("a", 2))
        .await
        .expect("update");
    assert_eq!(rv(&b), r0 + 2);
    assert_eq!(s.get("/registry/cm/ns/a").map(|o| rv(&o)), Some(r0 + 2));
    // an update that changes nothing makes no revision
    let same = s
        .update("/registry/cm/ns/a", r0 + 2, obj("a", 2))
        .await
        .expect("no-op update");
    assert_eq!(rv(&same), r0 + 2);
    assert!(matches!(
        s.update("/registry/cm/ns/a", r0 + 1, obj("a", 3)).await,
        Err(StorageError::Conflict { actual, .. }) if actual == r0 + 2
    ));
    assert!(matches!(
        s.delete("/registry/cm/ns/a", Some(r0 + 1)).await,
        Err(StorageError::Conflict { .. })
    ));
    assert!(matches!(
        s.update("/registry/cm/ns/missing", r0, obj("missing", 1))
            .await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        s.delete("/registry/cm/ns/missing", None).await,
        Err(StorageError::NotFound(_))
    ));
    let gone = s
        .delete("/registry/cm/ns/a", Some(r0 + 2))
        .await
        .expect("delete");
    assert_eq!(rv(&gone), r0 + 3);
    assert_eq!(gone["data"]["v"], 2, "a delete answers with the last state");
    assert!(s.get("/registry/cm/ns/a").is_none());
    assert_eq!(s.last_change("cm"), r0 + 3);
    assert_eq!(s.last_change("roles"), 0);
    assert!(matches!(
        s.list("/registry/cm/", None, ReadAt::Exact(r0 + 100), None, |_| {
            true
        }),
        Err(StorageError::TooLarge { .. })
    ));
}

suite!(lists_paginate_at_a_fixed_revision);
async fn lists_paginate_at_a_fixed_revision(s: Store) {
    for i in 0..5 {
        s.create(&format!("/registry/cm/ns/o{i}"), obj(&format!("o{i}"), i))
            .await
            .expect("create");
    }
    let first = s
        .list("/registry/cm/ns/", None, ReadAt::Latest, Some(2), |_| true)
        .expect("list");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.remaining, Some(3));
    let rev = first.rev;
    // changes after the first page do not show in later pages
    s.delete("/registry/cm/ns/o3", None).await.expect("delete");
    s.create("/registry/cm/ns/o9", obj("o9", 9))
        .await
        .expect("create");
    let after = first.continue_after.clone().expect("continue");
    let rest = s
        .list(
            "/registry/cm/ns/",
            Some(&after),
            ReadAt::Exact(rev),
            None,
            |_| true,
        )
        .expect("page 2");
    let names: Vec<&str> = rest
        .items
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["o2", "o3", "o4"]);
    let latest = s
        .list("/registry/cm/ns/", None, ReadAt::Latest, None, |_| true)
        .expect("latest");
    assert_eq!(latest.items.len(), 5);
}

suite!(watch_replays_history_then_follows);
async fn watch_replays_history_then_follows(s: Store) {
    let r0 = s.current_revision();
    s.create("/registry/cm/ns/a", obj("a", 1))
        .await
        .expect("create");
    s.create("/registry/cm/other/b", obj("b", 1))
        .await
        .expect("create");
    s.update("/registry/cm/ns/a", r0 + 1, obj("a", 2))
        .await
        .expect("update");
    let mut w = s.watch("/registry/cm/ns/", r0).expect("watch");
    let e1 = w.next().await.expect("e1");
    assert_eq!((e1.kind, e1.rev), (EventType::Added, r0 + 1));
    let e2 = w.next().await.expect("e2");
    assert_eq!((e2.kind, e2.rev), (EventType::Modified, r0 + 3));
    assert_eq!(
        e2.prev.as_ref().map(|p| p["data"]["v"].clone()),
        Some(json!(1))
    );
    s.delete("/registry/cm/ns/a", None).await.expect("delete");
    let e3 = w.next().await.expect("e3");
    assert_eq!(e3.kind, EventType::Deleted);
    assert_eq!(rv(&e3.object), r0 + 4);
    // a watch from the middle of history replays only what came after
    let mut late = s.watch("/registry/cm/", r0 + 2).expect("watch");
    let revs: Vec<u64> = [late.next().await, late.next().await]
        .into_iter()
        .map(|e| e.expect("event").rev)
        .collect();
    assert_eq!(revs, vec![r0 + 3, r0 + 4]);
}

suite!(compacted_history_is_gone);
async fn compacted_history_is_gone(s: Store) {
    let r0 = s.current_revision();
    for i in 0..10 {
        s.create(&format!("/registry/cm/ns/o{i}"), obj("o", i))
            .await
            .expect("create");
    }
    s.compact(3).await.expect("compact");
    assert!(matches!(
        s.watch("/registry/", r0 + 2),
        Err(StorageError::Compacted { .. })
    ));
    assert!(matches!(
        s.list("/registry/", None, ReadAt::Exact(r0 + 2), None, |_| true),
        Err(StorageError::Compacted { .. })
    ));
    assert!(s.watch("/registry/", r0 + 8).is_ok());
    // writes go on after a compaction
    s.create("/registry/cm/ns/after", obj("after", 1))
        .await
        .expect("create after compaction");
}

#[tokio::test]
async fn survives_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let s = Store::open(Arc::new(SqliteBackend::open(dir.path()).expect("db")), 1000)
            .await
            .expect("open");
        s.create("/registry/cm/ns/a", obj("a", 1))
            .await
            .expect("create");
        s.create("/registry/cm/ns/b", obj("b", 1))
            .await
            .expect("create");
        s.delete("/registry/cm/ns/b", None).await.expect("delete");
        s.compact(0).await.expect("compact everything");
    }
    let s = Store::open(Arc::new(SqliteBackend::open(dir.path()).expect("db")), 1000)
        .await
        .expect("reopen");
    // the revision never goes back, even though the newest tombstone was compacted away
    assert_eq!(s.current_revision(), 3);
    assert!(s.get("/registry/cm/ns/a").is_some());
    assert!(s.get("/registry/cm/ns/b").is_none());
    let c = s
        .create("/registry/cm/ns/c", obj("c", 1))
        .await
        .expect("create");
    assert_eq!(c["metadata"]["resourceVersion"], "4");
}

suite!(concurrent_writers_are_batched_in_order);
async fn concurrent_writers_are_batched_in_order(s: Store) {
    let r0 = s.current_revision();
    let mut w = s.watch("/registry/", r0).expect("watch");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.create(&format!("/registry/cm/ns/c{i}"), obj("c", i))
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("create");
    }
    // compare-and-swap: of many writers racing from the same revision, exactly one wins
    let base: u64 = s
        .get("/registry/cm/ns/c0")
        .and_then(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|r| r.parse().ok())
        })
        .expect("c0's revision");
    let mut racers = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        racers.push(tokio::spawn(async move {
            s.update("/registry/cm/ns/c0", base, obj("c", 100 + i))
                .await
        }));
    }
    let mut wins = 0;
    for r in racers {
        match r.await.expect("task") {
            Ok(_) => wins += 1,
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    let mut last = r0;
    for _ in 0..65 {
        let ev = w.next().await.expect("event");
        assert_eq!(ev.rev, last + 1, "revisions are consecutive and in order");
        last = ev.rev;
    }
    assert_eq!(s.current_revision(), r0 + 65);
}

suite!(a_cancelled_write_does_not_wedge_the_store);
async fn a_cancelled_write_does_not_wedge_the_store(s: Store) {
    // writers whose callers go away mid-commit (a client hanging up)
    for i in 0..32 {
        let s2 = s.clone();
        let h = tokio::spawn(async move {
            s2.create(&format!("/registry/cm/ns/x{i}"), obj("x", i))
                .await
        });
        if i % 2 == 0 {
            h.abort();
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let after = s
        .create("/registry/cm/ns/after", obj("after", 1))
        .await
        .expect("the store still takes writes");
    let rev: u64 = after["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("rv");
    assert_eq!(rev, s.current_revision());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_reopen_keeps_revisions_and_history() {
    let etcd = testenv::Etcd::start();
    let (r0, b_rev) = {
        let s = on(&etcd).await;
        let r0 = s.current_revision();
        s.create("/registry/cm/ns/a", obj("a", 1))
            .await
            .expect("create");
        let b = s
            .create("/registry/cm/ns/b", obj("b", 1))
            .await
            .expect("create");
        s.delete("/registry/cm/ns/b", None).await.expect("delete");
        (r0, rv(&b))
    };
    let s = on(&etcd).await;
    assert_eq!(s.current_revision(), r0 + 3);
    assert!(s.get("/registry/cm/ns/a").is_some());
    assert!(s.get("/registry/cm/ns/b").is_none());
    // a watcher resuming from before the restart misses nothing
    let mut w = s.watch("/registry/cm/", b_rev - 1).expect("resume");
    let e = w.next().await.expect("added");
    assert_eq!((e.kind, e.rev), (EventType::Added, b_rev));
    let e = w.next().await.expect("deleted");
    assert_eq!((e.kind, e.rev), (EventType::Deleted, b_rev + 1));
    let c = s
        .create("/registry/cm/ns/c", obj("c", 1))
        .await
        .expect("create");
    assert_eq!(rv(&c), r0 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_etcd_agree() {
    let etcd = testenv::Etcd::start();
    let a = on(&etcd).await;
    let b = on(&etcd).await;
    let mut wb = b
        .watch("/registry/cm/", b.current_revision())
        .expect("watch on b");
    let made = a
        .create("/registry/cm/ns/x", obj("x", 1))
        .await
        .expect("create on a");
    let seen = wb.next().await.expect("b sees a's write");
    assert_eq!(seen.rev, rv(&made), "both speak the same resourceVersion");
    // a consistent read on b sees a's writes at once
    let upd = a
        .update("/registry/cm/ns/x", rv(&made), obj("x", 2))
        .await
        .expect("update on a");
    b.sync().await.expect("sync");
    assert_eq!(b.get("/registry/cm/ns/x").map(|o| rv(&o)), Some(rv(&upd)));
    // b writing from a stale revision loses the compare-and-swap
    assert!(matches!(
        b.update("/registry/cm/ns/x", rv(&made), obj("x", 3)).await,
        Err(StorageError::Conflict { .. })
    ));
    // b creating what a created is refused
    assert!(matches!(
        b.create("/registry/cm/ns/x", obj("x", 9)).await,
        Err(StorageError::AlreadyExists(_))
    ));
    // upstream's key layout, and no resourceVersion inside the stored value
    let mut kv = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
        .await
        .expect("raw client");
    let got = kv.get("/registry/cm/ns/x", None).await.expect("raw get");
    let raw: Value = serde_json::from_slice(got.kvs()[0].value()).expect("json value");
    assert_eq!(raw["data"]["v"], 2);
    assert!(raw["metadata"].get("resourceVersion").is_none());
    assert_eq!(got.kvs()[0].mod_revision() as u64, rv(&upd));
}

/// When etcd compacts past the follower (a long disconnect), the state is reloaded from
/// etcd's latest: open watches end so their clients re-list, resuming from before the
/// reload is `410 Gone`, and derived caches see every resource as changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_after_compaction_ends_open_watches() {
    let etcd = testenv::Etcd::start();
    let s = on(&etcd).await;
    let first = s
        .create("/registry/cm/ns/a", obj("a", 1))
        .await
        .expect("create");
    let mut open = s.watch("/registry/cm/", rv(&first)).expect("watch");
    // another writer changes etcd directly; the reload must pick it up
    let mut kv = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
        .await
        .expect("raw client");
    let put = kv
        .put("/registry/cm/ns/b", obj("b", 1).to_string(), None)
        .await
        .expect("raw put");
    let at = put.header().map(|h| h.revision() as u64).expect("revision");
    let conn = etcd::Etcd::connect(&etcd_config(&etcd))
        .await
        .expect("connect");
    follower::reload(&s.inner, &conn).await.expect("reload");
    // the open watch either saw b's put before the reload or ends now; either way it ends
    loop {
        match open.next().await {
            Ok(e) => assert_eq!(e.rev, at, "only b's put can come before the reset"),
            Err(end) => {
                assert_eq!(end, WatchEnd::Reset);
                break;
            }
        }
    }
    assert!(matches!(
        s.watch("/registry/cm/", rv(&first)),
        Err(StorageError::Compacted { .. })
    ));
    assert!(s.get("/registry/cm/ns/b").is_some());
    assert!(
        s.last_change("roles") >= at,
        "caches rebuild after a reload"
    );
    // watches started after the reload work as before
    let mut fresh = s
        .watch("/registry/cm/", s.current_revision())
        .expect("watch");
    let c = s
        .create("/registry/cm/ns/c", obj("c", 1))
        .await
        .expect("create");
    assert_eq!(fresh.next().await.expect("event").rev, rv(&c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_current_revision_is_the_latest_of_any_key() {
    let etcd = testenv::Etcd::start();
    let conn = etcd::Etcd::connect(&etcd_config(&etcd))
        .await
        .expect("connect");
    let mut raw = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
        .await
        .expect("raw client");
    // a write outside our prefix moves the revision a consistent read must wait for
    let put = raw.put("/elsewhere/k", "v", None).await.expect("raw put");
    let at = put.header().expect("a header").revision() as u64;
    assert_eq!(conn.current_revision().await.expect("revision"), at);
    let made = conn
        .create("/registry/cm/ns/x", &obj("x", 1))
        .await
        .expect("create");
    assert_eq!(made, at + 1);
    assert_eq!(conn.current_revision().await.expect("revision"), made);
    // reading the revision writes nothing and reads no object
    assert_eq!(conn.current_revision().await.expect("revision"), made);
}

#[test]
fn a_write_differing_only_in_resource_version_is_the_same() {
    let stored = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "v"}});
    let same = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
    let stale_rv = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3"}, "data": {"k": "v"}});
    assert!(same_but_rv(&same, &stored));
    assert!(same_but_rv(&stale_rv, &stored));
    let label = json!({"kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}});
    let data = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "w"}});
    let more = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}, "binaryData": {}});
    let no_meta = json!({"kind": "ConfigMap", "data": {"k": "v"}});
    for changed in [label, data, more, no_meta] {
        assert!(!same_but_rv(&changed, &stored), "{changed}");
    }
}
