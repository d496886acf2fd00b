//! The result table: one [`Row`] per measurement, printed as aligned markdown to stdout.
//! Also the small statistics the rows need (percentiles, rates, human units).

use std::time::Duration;

use crate::load::Outcome;

/// One line of the result table.
pub struct Row {
    /// What was measured, e.g. `create configmap`.
    pub name: String,
    /// Concurrent connections (or watchers).
    pub conns: usize,
    /// Completed operations (requests, or events for watches).
    pub ops: usize,
    /// Operations per second over the phase's wall time.
    pub rate: Option<f64>,
    /// Median latency.
    pub p50: Option<Duration>,
    /// 99th percentile latency.
    pub p99: Option<Duration>,
    /// Response bytes per operation.
    pub bytes: Option<u64>,
    /// Anything else worth knowing: errors, time-outs, comparisons.
    pub note: String,
}

impl Row {
    /// A row from a load phase.
    pub fn from_outcome(
        name: impl Into<String>,
        conns: usize,
        outcome: &Outcome,
        with_bytes: bool,
    ) -> Self {
        let ops = outcome.ok();
        let mut sorted = outcome.latencies.clone();
        sorted.sort_unstable();
        Row {
            name: name.into(),
            conns,
            ops,
            rate: rate(ops, outcome.elapsed),
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            bytes: (with_bytes && ops > 0).then(|| outcome.bytes / ops as u64),
            note: outcome.note(),
        }
    }

    /// Puts `text` (a comparison, say) before the note already there.
    pub fn prepend_note(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.note = match (text.is_empty(), self.note.is_empty()) {
            (true, _) => return,
            (false, true) => text,
            (false, false) => format!("{text}; {}", self.note),
        };
    }
}

/// `ops` per second over `elapsed`, if anything happened.
pub fn rate(ops: usize, elapsed: Duration) -> Option<f64> {
    (ops > 0 && !elapsed.is_zero()).then(|| ops as f64 / elapsed.as_secs_f64())
}

/// The nearest-rank percentile of an ascending slice.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A duration for humans: `850µs`, `12.3ms`, `4.56s`.
pub fn fmt_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0}µs")
    } else if micros < 1e6 {
        format!("{:.1}ms", micros / 1e3)
    } else {
        format!("{:.2}s", micros / 1e6)
    }
}

/// The signed difference `a - b` for humans: `+85µs`, `-1.2ms`.
pub fn fmt_delta(a: Duration, b: Duration) -> String {
    if a >= b {
        format!("+{}", fmt_duration(a - b))
    } else {
        format!("-{}", fmt_duration(b - a))
    }
}

/// A byte count for humans: `512 B`, `3.4 KiB`, `12.7 MiB`.
pub fn fmt_bytes(n: u64) -> String {
    let f = n as f64;
    if f < 1024.0 {
        format!("{n} B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{:.1} MiB", f / (1024.0 * 1024.0))
    }
}

/// Renders the rows as an aligned markdown table.
pub fn render(rows: &[Row]) -> String {
    let header = [
        "benchmark",
        "conns",
        "ops",
        "ops/s",
        "p50",
        "p99",
        "bytes/op",
        "note",
    ];
    let dash = || "-".to_string();
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.conns.to_string(),
                r.ops.to_string(),
                r.rate.map_or_else(dash, |v| format!("{v:.0}")),
                r.p50.map_or_else(dash, fmt_duration),
                r.p99.map_or_else(dash, fmt_duration),
                r.bytes.map_or_else(dash, fmt_bytes),
                r.note.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Text columns align left, numbers right.
    let numeric = [false, true, true, true, true, true, true, false];
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(numeric)
            .map(|((c, w), num)| {
                if num {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(&header.map(String::from));
    // Each rule cell spans its column and the two spaces around it.
    let rule: Vec<String> = widths
        .iter()
        .zip(numeric)
        .map(|(w, num)| {
            if num {
                format!("{}:", "-".repeat(w + 1))
            } else {
                "-".repeat(w + 2)
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&ms, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&ms[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn units_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_micros(850)), "850µs");
        assert_eq!(fmt_duration(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(fmt_bytes(3 * 1024 + 512), "3.5 KiB");
        let (a, b) = (Duration::from_micros(900), Duration::from_micros(815));
        assert_eq!(fmt_delta(a, b), "+85µs");
        assert_eq!(fmt_delta(b, a), "-85µs");
    }

    #[test]
    fn notes_are_prepended() {
        let mut row = Row::from_outcome("x", 1, &Outcome::default(), false);
        row.prepend_note("");
        assert_eq!(row.note, "");
        row.note = "2x 409 AlreadyExists".into();
        row.prepend_note("0.9x configmap creates/s");
        assert_eq!(row.note, "0.9x configmap creates/s; 2x 409 AlreadyExists");
    }
}
