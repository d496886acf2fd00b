//! Crash safety: a writer hammers the API server while it is killed with SIGKILL again
//! and again. After every restart each write that was acknowledged is there, objects are
//! whole, resourceVersions never go back, and a watch resumed from the last revision it
//! saw misses no event.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use testenv as common;

const KILLS: usize = 20;

fn cm(name: &str, n: u64) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"n": n.to_string(), "pad": "x".repeat(512)}
    }))
    .expect("configmap")
}

/// What the writer got a 2xx for.
#[derive(Default)]
struct Acked {
    created: Vec<String>,
    /// The highest counter value an update of `counter` was acknowledged with.
    counter: u64,
    max_rv: u64,
}

fn rv_of(c: &ConfigMap) -> u64 {
    c.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("a numeric resourceVersion")
}

async fn writer(
    api: Api<ConfigMap>,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut i = 0u64;
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        i += 1;
        let name = format!("w-{i}");
        if let Ok(made) = api.create(&PostParams::default(), &cm(&name, i)).await {
            let mut a = acked.lock().expect("lock");
            a.created.push(name);
            a.max_rv = a.max_rv.max(rv_of(&made));
        }
        // a compare-and-swap update of one counter object
        if let Ok(cur) = api.get("counter").await {
            let next = cur
                .data
                .as_ref()
                .and_then(|d| d.get("n"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .max(n)
                + 1;
            let mut upd = cm("counter", next);
            upd.metadata.resource_version = cur.metadata.resource_version.clone();
            if let Ok(done) = api.replace("counter", &PostParams::default(), &upd).await {
                n = next;
                let mut a = acked.lock().expect("lock");
                a.counter = a.counter.max(next);
                a.max_rv = a.max_rv.max(rv_of(&done));
            }
        }
        if i.is_multiple_of(50) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Watches from `from`, resuming from the last revision seen whenever the stream breaks
/// (the server is being killed); every ADDED name goes into `seen`.
async fn watcher(
    api: Api<ConfigMap>,
    from: u64,
    seen: Arc<Mutex<(HashSet<String>, u64)>>,
    until: Arc<std::sync::atomic::AtomicU64>,
) -> Result<(), String> {
    let mut last = from;
    // keeps resuming until it has seen the last acknowledged write (0: not known yet);
    // stopping with the writer could leave it between two streams, short of the end
    loop {
        let target = until.load(std::sync::atomic::Ordering::Relaxed);
        if target != 0 && last >= target {
            break;
        }
        let stream = match api
            .watch(&WatchParams::default().timeout(20), &last.to_string())
            .await
        {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut stream = stream.boxed();
        loop {
            match stream.try_next().await {
                Ok(Some(
                    WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o),
                )) => {
                    let rv = rv_of(&o);
                    if rv <= last {
                        return Err(format!("event at {rv} after {last}: revisions went back"));
                    }
                    last = rv;
                    let mut s = seen.lock().expect("lock");
                    s.0.insert(o.metadata.name.clone().unwrap_or_default());
                    s.1 = last;
                }
                Ok(Some(WatchEvent::Bookmark(_))) => {}
                Ok(Some(WatchEvent::Error(e))) => {
                    return Err(format!(
                        "resuming at {last} failed: {} ({})",
                        e.message, e.code
                    ));
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    Ok(())
}

async fn wait_ready(client: &kube::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let req = http::Request::get("/readyz").body(Vec::new()).expect("req");
        if client.request_text(req).await.is_ok_and(|t| t == "ok") {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_survives_repeated_kill_9() {
    kill_9_repeatedly(common::TestServer::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_backed_server_survives_repeated_kill_9() {
    let etcd = common::Etcd::start();
    let flag = format!("--etcd-servers={}", etcd.endpoint);
    kill_9_repeatedly(common::TestServer::start_with(&[&flag])).await;
}

async fn kill_9_repeatedly(mut server: common::TestServer) {
    let client = server.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = api
        .create(&PostParams::default(), &cm("counter", 0))
        .await
        .expect("counter");
    let start_rv = rv_of(&first);
    let acked = Arc::new(Mutex::new(Acked::default()));
    let seen = Arc::new(Mutex::new((HashSet::new(), start_rv)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = tokio::spawn(writer(api.clone(), acked.clone(), stop.clone()));
    let until = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watch = tokio::spawn(watcher(api.clone(), start_rv, seen.clone(), until.clone()));
    let mut last_list_rv = 0u64;
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(150 + (round as u64 * 37) % 250)).await;
        // what was acknowledged before the kill must be there after it
        let (created, counter, max_rv) = {
            let a = acked.lock().expect("lock");
            (a.created.clone(), a.counter, a.max_rv)
        };
        server.restart();
        wait_ready(&client).await;
        let list = api
            .list(&ListParams::default())
            .await
            .expect("list after restart");
        let list_rv: u64 = list
            .metadata
            .resource_version
            .as_deref()
            .and_then(|r| r.parse().ok())
            .expect("list rv");
        assert!(
            list_rv >= max_rv,
            "round {round}: list at {list_rv} is behind an acknowledged write at {max_rv}"
        );
        assert!(
            list_rv >= last_list_rv,
            "round {round}: the revision went back from {last_list_rv} to {list_rv}"
        );
        last_list_rv = list_rv;
        let present: BTreeMap<String, ConfigMap> = list
            .items
            .into_iter()
            .map(|c| (c.metadata.name.clone().unwrap_or_default(), c))
            .collect();
        for name in &created {
            let obj = present
                .get(name)
                .unwrap_or_else(|| panic!("round {round}: acknowledged {name} is lost"));
            let data = obj.data.as_ref().expect("data");
            assert_eq!(
                data.get("pad").map(String::len),
                Some(512),
                "{name} is half-written"
            );
        }
        let stored = present
            .get("counter")
            .and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("n"))
            .and_then(|n| n.parse::<u64>().ok())
            .expect("counter");
        assert!(
            stored >= counter,
            "round {round}: counter {stored} lost the acknowledged {counter}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    w.await.expect("writer");
    // everything acknowledged reached the resumed watch too
    let (created, max_rv) = {
        let a = acked.lock().expect("lock");
        (a.created.clone(), a.max_rv)
    };
    assert!(
        created.len() > KILLS,
        "the writer got too few writes through to test anything"
    );
    until.store(max_rv.max(1), std::sync::atomic::Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().expect("lock").1 < max_rv {
        assert!(
            Instant::now() < deadline,
            "the watch never reached {max_rv}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = seen.lock().expect("lock").0.clone();
    let missed: Vec<&String> = created.iter().filter(|n| !s.contains(*n)).collect();
    assert!(missed.is_empty(), "the resumed watch missed {missed:?}");
    match tokio::time::timeout(Duration::from_secs(30), watch).await {
        Ok(r) => r.expect("watch task").expect("watch"),
        Err(_) => panic!("the watcher did not stop"),
    }
}
