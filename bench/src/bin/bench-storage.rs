//! `bench-storage`: writes and reads of raw etcd (its own gRPC client) beside the same
//! work through kube-apiserver on etcd and on the embedded store, in one run on one
//! machine, with the same value sizes; then LIST of all the objects written, from the
//! watch cache (`resourceVersion=0`) and as a consistent read, beside a raw etcd range.
//! `hack/bench-storage` starts the clusters and passes their kubeconfigs.

#[path = "../conn.rs"]
#[allow(dead_code)]
mod conn;
#[path = "../load.rs"]
#[allow(dead_code)]
mod load;
#[path = "../report.rs"]
#[allow(dead_code)]
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http::{Method, StatusCode};

use conn::{JSON, Op, Pool};
use load::Outcome;
use report::Row;

#[derive(Parser, Debug)]
#[command(
    name = "bench-storage",
    about = "raw etcd vs kube-apiserver on etcd vs on the embedded store"
)]
struct Args {
    /// etcd client URL for the raw baseline (the etcd the first apiserver uses).
    #[arg(long)]
    etcd: String,
    /// Kubeconfig of a kube-apiserver running on that etcd.
    #[arg(long)]
    etcd_kubeconfig: String,
    /// Kubeconfig of a kube-apiserver running on the embedded store.
    #[arg(long)]
    embedded_kubeconfig: String,
    /// Objects written (and then listed) per target [default: 10000, quick: 1000].
    #[arg(long)]
    objects: Option<usize>,
    /// Concurrent connections (gRPC streams for etcd).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Small counts, for a smoke run.
    #[arg(long)]
    quick: bool,
}

/// A ConfigMap of about 1 KiB of JSON, the value size every target writes.
fn configmap(name: &str) -> Bytes {
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "storage"}},
        "data": {"payload": "x".repeat(900)},
    });
    Bytes::from(body.to_string())
}

const NS: &str = "default";
const LIMIT: Duration = Duration::from_secs(600);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-storage: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(rows) => {
            println!("{}", report::render(&rows));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-storage: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<Vec<Row>> {
    let n = args
        .objects
        .unwrap_or(if args.quick { 1_000 } else { 10_000 });
    let c = args.concurrency;
    let mut rows = Vec::new();
    eprintln!(
        "raw etcd at {}: {n} puts, {n} gets, {c} concurrent",
        args.etcd
    );
    let measured = async {
        rows.extend(raw_etcd(&args.etcd, n, c).await?);
        for (label, kubeconfig) in [
            ("apiserver on etcd", &args.etcd_kubeconfig),
            ("apiserver on embedded", &args.embedded_kubeconfig),
        ] {
            eprintln!("{label}: {n} creates, {n} gets, lists, {c} connections");
            rows.extend(apiserver(label, kubeconfig, n, c).await?);
        }
        anyhow::Ok(())
    }
    .await;
    // The raw keys go last, once nothing is measured any more: etcd 3.4 keeps its
    // buffer of writes not yet in its database at the largest size it reached, and
    // copies the whole buffer for every transaction it applies. Deleting 20,000 keys at
    // once grows it to 20,000 entries, which made the apiserver's creates that followed
    // three times slower than etcd's own transactions before them.
    let cleaned = raw_cleanup(&args.etcd).await;
    measured?;
    cleaned?;
    Ok(rows)
}

/// Runs `n` operations over `c` workers; `op(i)` is the i-th operation.
async fn closed_loop<F, Fut>(n: usize, c: usize, op: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..c {
        let (next, op) = (next.clone(), op.clone());
        tasks.spawn(async move {
            let mut out = Outcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let sent = Instant::now();
                match op(i).await {
                    Ok(()) => out.latencies.push(sent.elapsed()),
                    Err(e) => {
                        out.errors
                            .entry("error".into())
                            .or_insert((0, format!("{e:#}")))
                            .0 += 1
                    }
                }
            }
            out
        });
    }
    let mut total = Outcome {
        planned: n,
        ..Outcome::default()
    };
    while let Some(Ok(part)) = tasks.join_next().await {
        total.merge(part);
    }
    total.elapsed = start.elapsed();
    total
}

/// The prefix of every key the raw etcd phase writes.
fn raw_prefix() -> String {
    format!("/bench-storage/{}/", std::process::id())
}

/// The prefix of the keys of the raw transactions, beside the puts' so that the range
/// of the puts' prefix reads only those.
fn txn_prefix(prefix: &str) -> String {
    format!("{}-txn/", prefix.trim_end_matches('/'))
}

/// Deletes every key the raw etcd phase wrote.
async fn raw_cleanup(endpoint: &str) -> Result<()> {
    let client = etcd_client::Client::connect([endpoint], None)
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))?;
    let prefix = raw_prefix();
    for p in [prefix.clone(), txn_prefix(&prefix)] {
        client
            .kv_client()
            .delete(p, Some(etcd_client::DeleteOptions::new().with_prefix()))
            .await
            .context("deleting the raw etcd keys")?;
    }
    Ok(())
}

async fn raw_etcd(endpoint: &str, n: usize, c: usize) -> Result<Vec<Row>> {
    let client = etcd_client::Client::connect([endpoint], None)
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))?;
    let prefix = raw_prefix();
    let value = configmap("raw");
    let put = {
        let (client, prefix, value) = (client.clone(), prefix.clone(), value.clone());
        closed_loop(n, c, move |i| {
            let (mut kv, key, value) =
                (client.kv_client(), format!("{prefix}{i:06}"), value.clone());
            async move {
                kv.put(key, value.to_vec(), None).await?;
                Ok(())
            }
        })
        .await
    };
    // what an apiserver create is in etcd: a transaction that puts only if the key is new
    let txn = {
        let (client, prefix, value) = (client.clone(), prefix.clone(), value.clone());
        closed_loop(n, c, move |i| {
            let (mut kv, key, value) = (
                client.kv_client(),
                format!("{}{i:06}", txn_prefix(&prefix)),
                value.clone(),
            );
            async move {
                use etcd_client::{Compare, CompareOp, Txn, TxnOp};
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, value.to_vec(), None)]);
                anyhow::ensure!(kv.txn(txn).await?.succeeded(), "key existed");
                Ok(())
            }
        })
        .await
    };
    let get = {
        let (client, prefix) = (client.clone(), prefix.clone());
        closed_loop(n, c, move |i| {
            let (mut kv, key) = (client.kv_client(), format!("{prefix}{i:06}"));
            async move {
                let r = kv.get(key, None).await?;
                anyhow::ensure!(r.kvs().len() == 1, "missing key");
                Ok(())
            }
        })
        .await
    };
    let list = {
        let (client, prefix) = (client.clone(), prefix.clone());
        closed_loop(5, 1, move |_| {
            // 10,000 values of ~1 KiB exceed gRPC's default 4 MiB answer limit
            let (mut kv, prefix) = (
                client.kv_client().max_decoding_message_size(256 << 20),
                prefix.clone(),
            );
            async move {
                let r = kv
                    .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
                    .await?;
                anyhow::ensure!(r.kvs().len() == n, "listed {} of {n}", r.kvs().len());
                Ok(())
            }
        })
        .await
    };
    Ok(vec![
        Row::from_outcome("raw etcd: put", c, &put, false),
        Row::from_outcome("raw etcd: txn (put if absent)", c, &txn, false),
        Row::from_outcome("raw etcd: get (linearizable)", c, &get, false),
        Row::from_outcome(format!("raw etcd: range of {n}"), 1, &list, false),
    ])
}

async fn apiserver(label: &str, kubeconfig: &str, n: usize, c: usize) -> Result<Vec<Row>> {
    let config = conn::config_from(kubeconfig).await?;
    let pool = Pool::open(&config, c).await?;
    let collection = format!("/api/v1/namespaces/{NS}/configmaps");
    let run_id = std::process::id();
    let names: Vec<String> = (0..n).map(|i| format!("bench-{run_id}-{i:06}")).collect();
    let creates: Vec<Op> = names
        .iter()
        .map(|name| Op::with_body(Method::POST, collection.clone(), JSON, configmap(name)))
        .collect();
    let create = load::run(pool.take(c), Arc::new(creates), StatusCode::CREATED, LIMIT).await;
    let gets: Vec<Op> = names
        .iter()
        .map(|name| Op::get(format!("{collection}/{name}"), JSON))
        .collect();
    let get = load::run(pool.take(c), Arc::new(gets), StatusCode::OK, LIMIT).await;
    let selector = "labelSelector=bench%3Dstorage";
    let cached = vec![Op::get(format!("{collection}?{selector}&resourceVersion=0"), JSON); 5];
    let list_cached = load::run(pool.take(1), Arc::new(cached), StatusCode::OK, LIMIT).await;
    let consistent = vec![Op::get(format!("{collection}?{selector}"), JSON); 5];
    let list_consistent =
        load::run(pool.take(1), Arc::new(consistent), StatusCode::OK, LIMIT).await;
    let cleanup = Op {
        method: Method::DELETE,
        ..Op::get(format!("{collection}?{selector}"), JSON)
    };
    pool.first()
        .send_ok(&cleanup)
        .await
        .context("deleting the benchmark's ConfigMaps")?;
    Ok(vec![
        Row::from_outcome(format!("{label}: create"), c, &create, false),
        Row::from_outcome(format!("{label}: get"), c, &get, false),
        Row::from_outcome(
            format!("{label}: list {n}, resourceVersion=0 (cache)"),
            1,
            &list_cached,
            true,
        ),
        Row::from_outcome(
            format!("{label}: list {n}, consistent"),
            1,
            &list_consistent,
            true,
        ),
    ])
}
