//! JSON versus protobuf: the same list of Pods fetched with `Accept: application/json`
//! and with `Accept: application/vnd.kubernetes.protobuf`, side by side in bytes and
//! time. One untimed request per encoding first checks the answer: the content type the
//! server chose and the item count after decoding (protobuf with our `protobuf` crate).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use http::StatusCode;

use crate::conn::{Conn, JSON, Op};
use crate::fixtures::collection;
use crate::load;
use crate::report::{Row, fmt_duration};

/// What the untimed check request found.
struct Checked {
    content_type: String,
    items: usize,
    decode: Duration,
}

/// Lists the `expected` pods of `ns` `repeats` times per encoding over `conn`, returning
/// one row per encoding.
pub async fn compare(
    conn: &Conn,
    ns: &str,
    expected: usize,
    repeats: usize,
    limit: Duration,
) -> Result<Vec<Row>> {
    let path = collection(ns, "pods");
    let mut rows = Vec::new();
    let mut json_row: Option<(u64, Duration)> = None;
    for (label, accept) in [("JSON", JSON), ("protobuf", protobuf::MEDIA_TYPE)] {
        let op = Op::get(path.clone(), accept);
        let checked = check(conn, &op).await?;
        let ops = Arc::new(vec![op; repeats]);
        let outcome = load::run(std::slice::from_ref(conn), ops, StatusCode::OK, limit).await;
        let mut row =
            Row::from_outcome(format!("list {expected} pods ({label})"), 1, &outcome, true);
        let mut notes = vec![format!(
            "client decoded {} items in {}",
            checked.items,
            fmt_duration(checked.decode)
        )];
        if checked.items != expected {
            notes.push(format!("EXPECTED {expected} ITEMS"));
        }
        if !checked.content_type.starts_with(accept) {
            notes.push(format!("server answered {}", checked.content_type));
        }
        match (json_row, row.bytes, row.p50) {
            (None, Some(bytes), Some(p50)) => json_row = Some((bytes, p50)),
            (Some((json_bytes, json_p50)), Some(bytes), Some(p50)) => notes.push(format!(
                "{:.2}x the bytes, {:.2}x the p50 of JSON",
                bytes as f64 / json_bytes as f64,
                p50.as_secs_f64() / json_p50.as_secs_f64()
            )),
            _ => {}
        }
        if !row.note.is_empty() {
            notes.push(std::mem::take(&mut row.note));
        }
        row.note = notes.join("; ");
        rows.push(row);
    }
    Ok(rows)
}

async fn check(conn: &Conn, op: &Op) -> Result<Checked> {
    let reply = conn.send_ok(op).await?;
    let start = Instant::now();
    let list = if reply.content_type.starts_with(protobuf::MEDIA_TYPE) {
        protobuf::decode(&reply.body)
            .map_err(|e| anyhow!("the protobuf list of pods does not decode: {e}"))?
    } else {
        serde_json::from_slice(&reply.body)
            .map_err(|e| anyhow!("the list of pods is not JSON ({}): {e}", reply.content_type))?
    };
    let decode = start.elapsed();
    let items = list
        .get("items")
        .and_then(|i| i.as_array())
        .map_or(0, Vec::len);
    Ok(Checked {
        content_type: reply.content_type,
        items,
        decode,
    })
}
