//! `/metrics` in the Prometheus text format: request counts and latencies by verb,
//! resource and code (upstream's names), storage object counts and process memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::request_info::RequestInfo;
use crate::storage::Store;

type Labels = (String, String, String, String, u16);

/// Request counters; cheap to update from every request.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<Labels, (u64, f64)>>,
}

impl Metrics {
    pub fn observe(&self, info: &RequestInfo, code: u16, elapsed: Duration) {
        let verb = info.verb.to_uppercase();
        let key = (
            verb,
            info.group.clone(),
            info.version.clone(),
            info.resource.clone(),
            code,
        );
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(key).or_default();
        e.0 += 1;
        e.1 += elapsed.as_secs_f64();
    }

    pub fn render(&self, store: &Store) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, version, resource and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((verb, g, v, r, code), (n, _)) in m.iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",group=\"{g}\",resource=\"{r}\",verb=\"{verb}\",version=\"{v}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP apiserver_request_duration_seconds_sum Total time spent serving requests.\n",
        );
        out.push_str("# TYPE apiserver_request_duration_seconds_sum counter\n");
        for ((verb, g, v, r, code), (_, secs)) in m.iter() {
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{code=\"{code}\",group=\"{g}\",resource=\"{r}\",verb=\"{verb}\",version=\"{v}\"}} {secs:.6}"
            );
        }
        drop(m);
        out.push_str("# HELP etcd_current_revision The current storage revision.\n# TYPE etcd_current_revision gauge\n");
        let _ = writeln!(out, "etcd_current_revision {}", store.current_revision());
        out.push_str("# HELP apiserver_storage_objects Number of stored objects.\n# TYPE apiserver_storage_objects gauge\n");
        let _ = writeln!(
            out,
            "apiserver_storage_objects {}",
            store.count("/registry/")
        );
        if let Some(rss) = resident_memory_bytes() {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out
    }
}

/// VmRSS of this process, from /proc.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
