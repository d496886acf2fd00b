//! The closed-loop load driver: a list of pre-built requests is shared by one task per
//! connection; each task takes the next request, sends it, waits for the whole response,
//! and records its latency. Bounded by the number of requests and by a deadline.
//!
//! Interruption is cooperative ([`request_stop`]): no new request starts, but in-flight
//! ones run to completion, so the server never sees a write abandoned half-way (which
//! is a legitimate thing for a client to do, but not what a benchmark should test).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::task::JoinSet;

use crate::conn::{Conn, Op, Reply, describe_failure};

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every phase to stop starting requests (on Ctrl-C).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

/// Whether [`request_stop`] was called.
pub fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// What one load phase measured.
#[derive(Default)]
pub struct Outcome {
    /// Latency of each successful request, unsorted.
    pub latencies: Vec<Duration>,
    /// Response body bytes of the successful requests.
    pub bytes: u64,
    /// Wall time from the first request to the last response.
    pub elapsed: Duration,
    /// Requests planned.
    pub planned: usize,
    /// Failed requests, by description (`409 AlreadyExists`, a transport error, ...),
    /// with one example message each.
    pub errors: BTreeMap<String, (usize, String)>,
    /// Whether the deadline stopped the phase before all requests were sent.
    pub timed_out: bool,
    /// Whether an interruption stopped the phase before all requests were sent.
    pub interrupted: bool,
}

impl Outcome {
    /// Successful requests.
    pub fn ok(&self) -> usize {
        self.latencies.len()
    }

    /// Failed requests.
    pub fn failed(&self) -> usize {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// A short note on failures and time-outs, empty when all went well.
    pub fn note(&self) -> String {
        let mut parts = Vec::new();
        if self.interrupted {
            parts.push(format!(
                "interrupted after {} of {}",
                self.ok() + self.failed(),
                self.planned
            ));
        } else if self.timed_out {
            parts.push(format!(
                "timed out after {} of {}",
                self.ok() + self.failed(),
                self.planned
            ));
        }
        for (kind, (n, _)) in &self.errors {
            parts.push(format!("{n}x {kind}"));
        }
        parts.join("; ")
    }

    /// Records the result of one request sent at `sent`: its latency if the status is
    /// `expect`, else the failure.
    pub fn record(&mut self, reply: anyhow::Result<Reply>, sent: Instant, expect: StatusCode) {
        match reply {
            Ok(reply) if reply.status == expect => {
                self.latencies.push(sent.elapsed());
                self.bytes += reply.body.len() as u64;
            }
            Ok(reply) => {
                let message = describe_failure(&reply);
                let kind = message.split(':').next().unwrap_or_default().to_string();
                self.fail(kind, message);
            }
            Err(e) => self.fail("transport error".into(), format!("{e:#}")),
        }
    }

    /// Adds another part of the same phase (run by another task).
    pub fn merge(&mut self, other: Outcome) {
        self.latencies.extend(other.latencies);
        self.bytes += other.bytes;
        self.timed_out |= other.timed_out;
        self.interrupted |= other.interrupted;
        for (kind, (n, example)) in other.errors {
            self.errors.entry(kind).or_insert((0, example)).0 += n;
        }
    }

    /// Whether to send no more requests; records why.
    pub fn should_stop(&mut self, deadline: Instant) -> bool {
        self.interrupted |= stopping();
        self.timed_out |= Instant::now() >= deadline;
        self.interrupted || self.timed_out
    }

    fn fail(&mut self, kind: String, example: String) {
        self.errors.entry(kind).or_insert((0, example)).0 += 1;
    }
}

/// Sends every request in `ops` over `conns` (one task per connection, each with at most
/// one request in flight), stopping early at `limit`. `expect` is the success status.
pub async fn run(
    conns: &[Conn],
    ops: Arc<Vec<Op>>,
    expect: StatusCode,
    limit: Duration,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let mut tasks = JoinSet::new();
    for conn in conns {
        let (conn, ops, next) = (conn.clone(), ops.clone(), next.clone());
        tasks.spawn(async move { worker(conn, &ops, &next, expect, deadline).await });
    }
    let mut total = Outcome {
        planned: ops.len(),
        ..Outcome::default()
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(part) => total.merge(part),
            Err(e) => total.fail("worker panicked".into(), e.to_string()),
        }
    }
    total.elapsed = start.elapsed();
    total
}

async fn worker(
    conn: Conn,
    ops: &[Op],
    next: &AtomicUsize,
    expect: StatusCode,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(op) = ops.get(i) else { break };
        if out.should_stop(deadline) {
            break;
        }
        let sent = Instant::now();
        let reply = conn.send(op).await;
        out.record(reply, sent, expect);
    }
    out
}
