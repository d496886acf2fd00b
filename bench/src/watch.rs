//! Watch fan-out: many watchers on one namespace's ConfigMaps, each on its own connection,
//! then a fixed number of updates. Every update carries its sequence number (`data.seq`),
//! so each watcher can compute the delivery latency of every event: from just before the
//! PATCH was sent to the moment the watcher read the event line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use futures::{AsyncBufReadExt, StreamExt};
use http::{Method, StatusCode};
use kube::Config;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::conn::{Conn, JSON, MERGE_PATCH, Op, Pool};
use crate::fixtures::{collection, configmap, list_resource_version};
use crate::load::Outcome;
use crate::report::{Row, fmt_duration, percentile, rate};

/// The shape of a fan-out run.
pub struct FanOut<'a> {
    /// Namespace watched and written to.
    pub ns: &'a str,
    /// Number of watchers (each its own connection).
    pub watchers: usize,
    /// Number of updates, spread over the writer connections.
    pub updates: usize,
    /// Upper bound on the whole run.
    pub limit: Duration,
}

/// What one watcher saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    done_at: Option<Instant>,
    error: Option<String>,
}

/// Send times of the updates, as nanoseconds after `t0` plus one (0: not sent yet).
struct SendTimes {
    t0: Instant,
    nanos: Vec<AtomicU64>,
}

impl SendTimes {
    fn mark(&self, seq: usize) {
        let nanos = self.t0.elapsed().as_nanos() as u64 + 1;
        self.nanos[seq].store(nanos, Ordering::Release);
    }

    /// When the last update was sent (`t0` if none was).
    fn last_sent(&self) -> Instant {
        let nanos = self
            .nanos
            .iter()
            .map(|n| n.load(Ordering::Acquire))
            .max()
            .unwrap_or(0);
        self.t0 + Duration::from_nanos(nanos.saturating_sub(1))
    }

    fn latency(&self, seq: usize, now: Instant) -> Option<Duration> {
        let nanos = self
            .nanos
            .get(seq)?
            .load(Ordering::Acquire)
            .checked_sub(1)?;
        Some(now.saturating_duration_since(self.t0 + Duration::from_nanos(nanos)))
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: EventObject,
}

#[derive(Deserialize)]
struct EventObject {
    #[serde(default)]
    data: Option<EventData>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct EventData {
    seq: Option<String>,
}

/// Runs the fan-out with `writers` as the updating connections; returns the rows for
/// event delivery and for the updates themselves.
pub async fn run(config: &Config, writers: &[Conn], spec: &FanOut<'_>) -> Result<Vec<Row>> {
    let deadline = Instant::now() + spec.limit;
    let targets: Vec<String> = (0..writers.len())
        .map(|k| format!("watch-target-{k}"))
        .collect();
    let path = collection(spec.ns, "configmaps");
    for (conn, name) in writers.iter().zip(&targets) {
        conn.send_ok(&Op::with_body(
            Method::POST,
            path.clone(),
            JSON,
            configmap(name),
        ))
        .await?;
    }
    let rv = list_resource_version(&writers[0], spec.ns, "configmaps").await?;

    let times = Arc::new(SendTimes {
        t0: Instant::now(),
        nanos: (0..spec.updates).map(|_| AtomicU64::new(0)).collect(),
    });
    let watch_path = format!(
        "{path}?watch=true&resourceVersion={rv}&timeoutSeconds={}",
        spec.limit.as_secs() + 30
    );
    let mut tasks = start_watchers(config, spec, &watch_path, &times, deadline).await?;

    eprintln!(
        "+++ watch: {} updates over {} connections",
        spec.updates,
        writers.len()
    );
    let started = Instant::now();
    let writes = update(writers, &targets, spec, &times, deadline).await;
    if writes.interrupted {
        // Ending a watch early is harmless to the server; the updates will not come.
        tasks.abort_all();
    }

    let mut seen = Vec::with_capacity(spec.watchers);
    while let Some(joined) = tasks.join_next().await {
        seen.push(joined.unwrap_or_else(|e| Seen {
            error: Some(if e.is_cancelled() {
                "interrupted".into()
            } else {
                format!("watcher panicked: {e}")
            }),
            ..Seen::default()
        }));
    }
    Ok(rows(
        spec,
        writers.len(),
        &seen,
        &writes,
        started,
        times.last_sent(),
    ))
}

/// Opens the watchers (one connection each, from `path`) and waits until their responses
/// started, so the updates do not race the watch set-up.
async fn start_watchers(
    config: &Config,
    spec: &FanOut<'_>,
    path: &str,
    times: &Arc<SendTimes>,
    deadline: Instant,
) -> Result<JoinSet<Seen>> {
    eprintln!("+++ watch: opening {} watchers: GET {path}", spec.watchers);
    let watchers = Pool::open(config, spec.watchers).await?;
    let (ready_tx, mut ready_rx) = mpsc::channel(spec.watchers);
    let mut tasks = JoinSet::new();
    for conn in watchers.take(spec.watchers) {
        let (conn, path, times, ready) = (
            conn.clone(),
            path.to_string(),
            times.clone(),
            ready_tx.clone(),
        );
        let expected = spec.updates;
        tasks.spawn(async move { watch_one(conn, path, times, expected, deadline, ready).await });
    }
    drop(ready_tx);
    let mut ready = 0;
    while ready < spec.watchers {
        match tokio::time::timeout_at(deadline.into(), ready_rx.recv()).await {
            Ok(Some(())) => ready += 1,
            _ => break,
        }
    }
    if ready < spec.watchers {
        eprintln!(
            "!!! watch: only {ready} of {} watchers were established; updating anyway",
            spec.watchers
        );
    }
    Ok(tasks)
}

/// One watcher: opens the watch, reports it is established, then reads events until it
/// has seen `expected` updates, the stream ends, or the deadline passes.
async fn watch_one(
    conn: Conn,
    path: String,
    times: Arc<SendTimes>,
    expected: usize,
    deadline: Instant,
    ready: mpsc::Sender<()>,
) -> Seen {
    let mut seen = Seen {
        latencies: Vec::with_capacity(expected),
        ..Seen::default()
    };
    let stream = match conn.stream(&path).await {
        Ok(stream) => stream,
        Err(e) => {
            seen.error = Some(format!("{e:#}"));
            return seen;
        }
    };
    let _ = ready.send(()).await;
    let mut lines = std::pin::pin!(stream.lines());
    while seen.latencies.len() < expected {
        let line = match tokio::time::timeout_at(deadline.into(), lines.next()).await {
            Err(_) => {
                return Seen {
                    error: Some("deadline passed".into()),
                    ..seen
                };
            }
            Ok(None) => {
                return Seen {
                    error: Some("the server ended the watch early".into()),
                    ..seen
                };
            }
            Ok(Some(Err(e))) => {
                return Seen {
                    error: Some(format!("reading the watch: {e}")),
                    ..seen
                };
            }
            Ok(Some(Ok(line))) => line,
        };
        let now = Instant::now();
        if let Some(seq) = quick_seq(&line) {
            if let Some(latency) = times.latency(seq, now) {
                seen.latencies.push(latency);
            }
            continue;
        }
        let event: Event = match serde_json::from_str(&line) {
            Ok(event) => event,
            Err(e) => {
                return Seen {
                    error: Some(format!("undecodable watch event: {e}")),
                    ..seen
                };
            }
        };
        if event.kind == "ERROR" {
            let message = event.object.message.unwrap_or_default();
            return Seen {
                error: Some(format!("watch ERROR event: {message}")),
                ..seen
            };
        }
        let seq = event
            .object
            .data
            .and_then(|d| d.seq)
            .and_then(|s| s.parse::<usize>().ok());
        if let (Some(seq), "MODIFIED") = (seq, event.kind.as_str())
            && let Some(latency) = times.latency(seq, now)
        {
            seen.latencies.push(latency);
        }
    }
    seen.done_at = Some(Instant::now());
    seen
}

/// The `data.seq` of a MODIFIED event, found without parsing the whole line: at 100
/// watchers the client reads over 100,000 events a second and must stay cheaper than the
/// server's fan-out. `None` sends the line through a full parse.
fn quick_seq(line: &str) -> Option<usize> {
    const SEQ: &str = r#""seq":""#;
    let object = line.strip_prefix(r#"{"type":"MODIFIED","#)?;
    let value = &object[object.find(SEQ)? + SEQ.len()..];
    value[..value.find('"')?].parse().ok()
}

/// Sends the updates: writer `k` patches `targets[k]` with the sequence numbers `i` where
/// `i % writers == k`, one at a time.
async fn update(
    writers: &[Conn],
    targets: &[String],
    spec: &FanOut<'_>,
    times: &Arc<SendTimes>,
    deadline: Instant,
) -> Outcome {
    let mut tasks = JoinSet::new();
    let n = writers.len();
    for (k, (conn, target)) in writers.iter().zip(targets).enumerate() {
        let path = format!("{}/{target}", collection(spec.ns, "configmaps"));
        let ops: Vec<(usize, Op)> = (k..spec.updates)
            .step_by(n)
            .map(|i| {
                (
                    i,
                    Op::with_body(
                        Method::PATCH,
                        path.clone(),
                        MERGE_PATCH,
                        Bytes::from(format!(r#"{{"data":{{"seq":"{i}"}}}}"#)),
                    ),
                )
            })
            .collect();
        let (conn, times) = (conn.clone(), times.clone());
        tasks.spawn(async move {
            let mut out = Outcome {
                planned: ops.len(),
                ..Outcome::default()
            };
            for (seq, op) in &ops {
                if out.should_stop(deadline) {
                    break;
                }
                let sent = Instant::now();
                times.mark(*seq);
                let reply = conn.send(op).await;
                out.record(reply, sent, StatusCode::OK);
            }
            out
        });
    }
    let start = Instant::now();
    let mut total = Outcome {
        planned: spec.updates,
        ..Outcome::default()
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(part) => total.merge(part),
            Err(e) => total.record(
                Err(anyhow!("writer panicked: {e}")),
                Instant::now(),
                StatusCode::OK,
            ),
        }
    }
    total.elapsed = start.elapsed();
    total
}

fn rows(
    spec: &FanOut<'_>,
    writers: usize,
    seen: &[Seen],
    writes: &Outcome,
    started: Instant,
    last_sent: Instant,
) -> Vec<Row> {
    let mut latencies: Vec<Duration> = seen
        .iter()
        .flat_map(|s| s.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    let complete: Vec<Instant> = seen.iter().filter_map(|s| s.done_at).collect();
    let all_done = complete.len() == spec.watchers;
    let end = complete.iter().max().copied().unwrap_or(last_sent);
    let mut note = format!("{} watchers x {} updates", spec.watchers, spec.updates);
    if all_done {
        note.push_str(&format!(
            "; all had the last event {} after it was sent",
            fmt_duration(end.saturating_duration_since(last_sent))
        ));
        note.push_str(&format!(
            " ({} after the first write)",
            fmt_duration(end.saturating_duration_since(started))
        ));
    } else {
        note.push_str(&format!(
            "; only {} of {} watchers saw every update",
            complete.len(),
            spec.watchers
        ));
        if let Some(error) = seen.iter().find_map(|s| s.error.as_deref()) {
            note.push_str(&format!(" (e.g. {error})"));
        }
    }
    let delivery = Row {
        name: "watch fan-out (event delivery)".into(),
        conns: spec.watchers,
        ops: latencies.len(),
        rate: rate(latencies.len(), end.saturating_duration_since(started)),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        bytes: None,
        note,
    };
    let patches = Row::from_outcome("patch configmap (during fan-out)", writers, writes, false);
    vec![delivery, patches]
}

#[cfg(test)]
mod tests {
    use super::quick_seq;

    #[test]
    fn quick_seq_reads_modified_events_only() {
        let modified = r#"{"type":"MODIFIED","object":{"metadata":{"managedFields":[{"f:data":{"f:seq":{}}}]},"data":{"greeting":"hi","seq":"417"}}}"#;
        assert_eq!(quick_seq(modified), Some(417));
        assert_eq!(quick_seq(&modified.replace("MODIFIED", "ADDED")), None);
        assert_eq!(
            quick_seq(r#"{"type":"MODIFIED","object":{"data":{}}}"#),
            None
        );
        assert_eq!(
            quick_seq(r#"{"type":"ERROR","object":{"message":"seq"}}"#),
            None
        );
    }
}
