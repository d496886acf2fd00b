use std::sync::Arc;

use serde_json::json;

use super::*;

async fn store() -> Store {
    let backend = SqliteBackend::in_memory().expect("db");
    Store::open(Arc::new(backend), 1000).await.expect("open")
}

fn obj(name: &str, v: i64) -> Value {
    json!({"metadata": {"name": name}, "data": {"v": v}})
}

#[tokio::test]
async fn create_update_delete_with_cas() {
    let s = store().await;
    let a = s
        .create("/registry/cm/ns/a", obj("a", 1))
        .await
        .expect("create");
    assert_eq!(a["metadata"]["resourceVersion"], "1");
    assert!(matches!(
        s.create("/registry/cm/ns/a", obj("a", 1)).await,
        Err(StorageError::AlreadyExists(_))
    ));
    let b = s
        .update("/registry/cm/ns/a", 1, obj("a", 2))
        .await
        .expect("update");
    assert_eq!(b["metadata"]["resourceVersion"], "2");
    assert!(matches!(
        s.update("/registry/cm/ns/a", 1, obj("a", 3)).await,
        Err(StorageError::Conflict { .. })
    ));
    assert!(matches!(
        s.delete("/registry/cm/ns/a", Some(1)).await,
        Err(StorageError::Conflict { .. })
    ));
    let gone = s
        .delete("/registry/cm/ns/a", Some(2))
        .await
        .expect("delete");
    assert_eq!(gone["metadata"]["resourceVersion"], "3");
    assert!(s.get("/registry/cm/ns/a").is_none());
    assert_eq!(s.last_change("cm"), 3);
    assert_eq!(s.last_change("roles"), 0);
}

#[tokio::test]
async fn lists_paginate_at_a_fixed_revision() {
    let s = store().await;
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

#[tokio::test]
async fn watch_replays_history_then_follows() {
    let s = store().await;
    s.create("/registry/cm/ns/a", obj("a", 1))
        .await
        .expect("create");
    s.create("/registry/cm/other/b", obj("b", 1))
        .await
        .expect("create");
    s.update("/registry/cm/ns/a", 1, obj("a", 2))
        .await
        .expect("update");
    let mut w = s.watch("/registry/cm/ns/", 0).expect("watch");
    let e1 = w.next().await.expect("e1");
    assert_eq!((e1.kind, e1.rev), (EventType::Added, 1));
    let e2 = w.next().await.expect("e2");
    assert_eq!((e2.kind, e2.rev), (EventType::Modified, 3));
    s.delete("/registry/cm/ns/a", None).await.expect("delete");
    let e3 = w.next().await.expect("e3");
    assert_eq!(e3.kind, EventType::Deleted);
    assert_eq!(e3.object["metadata"]["resourceVersion"], "4");
}

#[tokio::test]
async fn compacted_history_is_gone() {
    let s = store().await;
    for i in 0..10 {
        s.create(&format!("/registry/cm/ns/o{i}"), obj("o", i))
            .await
            .expect("create");
    }
    s.compact(3).await.expect("compact");
    assert!(matches!(
        s.watch("/registry/", 2),
        Err(StorageError::Compacted { .. })
    ));
    assert!(s.watch("/registry/", 8).is_ok());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_batched_in_order() {
    let s = store().await;
    let mut w = s.watch("/registry/", 0).expect("watch");
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
    let mut last = 0;
    for _ in 0..65 {
        let ev = w.next().await.expect("event");
        assert_eq!(ev.rev, last + 1, "revisions are consecutive and in order");
        last = ev.rev;
    }
    assert_eq!(s.current_revision(), 65);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_write_does_not_wedge_the_store() {
    let s = store().await;
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
