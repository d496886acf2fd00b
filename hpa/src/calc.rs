//! Replica calculation for resource metrics (the HPA "replica calculator").

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::quantity::milli_from_value;
use crate::timefmt::{parse_go_duration_millis, parse_rfc3339_millis};

/// A single pod's metric sample (milli-units).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PodMetric {
    pub timestamp_ms: i64,
    pub window_ms: i64,
    pub value: i64,
}

pub(crate) type PodMetricsInfo = BTreeMap<String, PodMetric>;

/// Timestamp used when a sample carries none (Go's zero time is far in the past).
const ZERO_TIME_MS: i64 = -62_135_596_800_000;

/// Scale-up / scale-down tolerances around a usage ratio of 1.0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tolerances {
    pub scale_down: f64,
    pub scale_up: f64,
}

impl Tolerances {
    fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct CalcParams {
    pub tolerances: Tolerances,
    pub cpu_initialization_period_ms: i64,
    pub delay_of_initial_readiness_status_ms: i64,
    pub now_ms: i64,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Builds per-pod metric values from metrics.k8s.io PodMetrics items. With a
/// container name only that container counts; otherwise all containers are
/// summed and a pod with any container lacking the resource is left out.
pub(crate) fn pod_metrics_info(
    items: &[Value],
    resource: &str,
    container: Option<&str>,
) -> PodMetricsInfo {
    let mut res = PodMetricsInfo::new();
    for item in items {
        let Some(name) = s(item, &["metadata", "name"]) else {
            continue;
        };
        let timestamp_ms = s(item, &["timestamp"])
            .and_then(parse_rfc3339_millis)
            .unwrap_or(ZERO_TIME_MS);
        let window_ms = s(item, &["window"])
            .and_then(parse_go_duration_millis)
            .unwrap_or(0);
        let containers: &[Value] = item
            .get("containers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match container {
            Some(cname) => {
                for c in containers {
                    if s(c, &["name"]) == Some(cname) {
                        if let Some(v) = c
                            .get("usage")
                            .and_then(|u| u.get(resource))
                            .and_then(milli_from_value)
                        {
                            res.insert(
                                name.to_string(),
                                PodMetric {
                                    timestamp_ms,
                                    window_ms,
                                    value: v,
                                },
                            );
                        }
                        break;
                    }
                }
            }
            None => {
                let mut sum: i64 = 0;
                let mut missing = containers.is_empty();
                for c in containers {
                    match c
                        .get("usage")
                        .and_then(|u| u.get(resource))
                        .and_then(milli_from_value)
                    {
                        Some(v) => sum = sum.saturating_add(v),
                        None => {
                            missing = true;
                            break;
                        }
                    }
                }
                if !missing {
                    res.insert(
                        name.to_string(),
                        PodMetric {
                            timestamp_ms,
                            window_ms,
                            value: sum,
                        },
                    );
                }
            }
        }
    }
    res
}

/// The parts of a pod the calculator looks at.
struct PodInfo<'a> {
    name: String,
    deleted: bool,
    phase: &'a str,
    /// Ready condition: (status, lastTransitionTime in ms)
    ready: Option<(&'a str, i64)>,
    start_ms: Option<i64>,
    raw: &'a Value,
}

fn pod_info(p: &Value) -> PodInfo<'_> {
    let ready = p
        .get("status")
        .and_then(|st| st.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|conds| conds.iter().find(|c| s(c, &["type"]) == Some("Ready")))
        .map(|c| {
            (
                s(c, &["status"]).unwrap_or(""),
                s(c, &["lastTransitionTime"])
                    .and_then(parse_rfc3339_millis)
                    .unwrap_or(ZERO_TIME_MS),
            )
        });
    PodInfo {
        name: s(p, &["metadata", "name"]).unwrap_or("").to_string(),
        deleted: p
            .get("metadata")
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|d| !d.is_null()),
        phase: s(p, &["status", "phase"]).unwrap_or(""),
        ready,
        start_ms: s(p, &["status", "startTime"]).and_then(parse_rfc3339_millis),
        raw: p,
    }
}

struct Groups {
    ready_count: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

fn group_pods(
    pods: &[PodInfo<'_>],
    metrics: &PodMetricsInfo,
    resource: &str,
    params: &CalcParams,
) -> Groups {
    let mut g = Groups {
        ready_count: 0,
        unready: BTreeSet::new(),
        missing: BTreeSet::new(),
        ignored: BTreeSet::new(),
    };
    for pod in pods {
        if pod.deleted || pod.phase == "Failed" {
            g.ignored.insert(pod.name.clone());
            continue;
        }
        if pod.phase == "Pending" {
            g.unready.insert(pod.name.clone());
            continue;
        }
        let Some(metric) = metrics.get(&pod.name) else {
            g.missing.insert(pod.name.clone());
            continue;
        };
        if resource == "cpu" {
            let unready = match (pod.ready, pod.start_ms) {
                (Some((status, ltt)), Some(start)) => {
                    if start.saturating_add(params.cpu_initialization_period_ms) > params.now_ms {
                        // Still initializing: skip unready pods and samples that
                        // do not cover a full window since the last transition.
                        status == "False"
                            || metric.timestamp_ms < ltt.saturating_add(metric.window_ms)
                    } else {
                        // Skip pods that are unready and have never been ready.
                        status == "False"
                            && start.saturating_add(params.delay_of_initial_readiness_status_ms)
                                > ltt
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(pod.name.clone());
                continue;
            }
        }
        g.ready_count += 1;
    }
    g
}

fn container_request(c: &Value, resource: &str) -> Option<i64> {
    c.get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get(resource))
        .and_then(milli_from_value)
}

fn pod_request(pod: &PodInfo<'_>, container: Option<&str>, resource: &str) -> Result<i64, String> {
    let spec = pod.raw.get("spec");
    let list = |key: &str| -> Vec<&Value> {
        spec.and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    let mut containers = list("containers");
    for c in list("initContainers") {
        if s(c, &["restartPolicy"]) == Some("Always") {
            containers.push(c);
        }
    }

    // Pod-level requests win when set and no specific container is targeted.
    let pod_level = spec
        .and_then(|s| s.get("resources"))
        .and_then(|r| r.get("requests"))
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    if let (Some(reqs), None) = (pod_level, container) {
        if let Some(v) = reqs.get(resource).and_then(milli_from_value) {
            return Ok(v);
        }
        let mut found = false;
        let mut total = 0i64;
        for c in &containers {
            if let Some(v) = container_request(c, resource) {
                found = true;
                total = total.saturating_add(v);
            }
        }
        if found {
            return Ok(total);
        }
        return Err(format!(
            "missing pod-level request for {} in Pod {}",
            resource, pod.name
        ));
    }

    let mut request = 0i64;
    for c in &containers {
        let cname = s(c, &["name"]).unwrap_or("");
        if container.is_none() || container == Some(cname) {
            match container_request(c, resource) {
                Some(v) => request = request.saturating_add(v),
                None => {
                    return Err(format!(
                        "missing request for {} in container {} of Pod {}",
                        resource, cname, pod.name
                    ));
                }
            }
        }
        if container == Some(cname) {
            return Ok(request);
        }
    }
    if let Some(cname) = container {
        return Err(format!("container {} not found in Pod {}", cname, pod.name));
    }
    Ok(request)
}

fn calculate_requests(
    pods: &[PodInfo<'_>],
    container: Option<&str>,
    resource: &str,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for p in pods {
        out.insert(p.name.clone(), pod_request(p, container, resource)?);
    }
    Ok(out)
}

/// Returns (ratio, utilization percent, raw average value).
fn resource_utilization_ratio(
    metrics: &PodMetricsInfo,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<(f64, i32, i64), String> {
    let mut metrics_total: i128 = 0;
    let mut requests_total: i128 = 0;
    let mut entries: i128 = 0;
    for (name, m) in metrics {
        let Some(req) = requests.get(name) else {
            continue;
        };
        metrics_total += m.value as i128;
        requests_total += *req as i128;
        entries += 1;
    }
    if requests_total == 0 {
        return Err("no metrics returned matched known pods".to_string());
    }
    let pct = (metrics_total * 100) / requests_total;
    let utilization = pct.clamp(i32::MIN as i128, i32::MAX as i128) as i32;
    let raw = (metrics_total / entries) as i64;
    Ok((
        utilization as f64 / target_utilization as f64,
        utilization,
        raw,
    ))
}

fn metric_usage_ratio(metrics: &PodMetricsInfo, target: i64) -> (f64, i64) {
    let total: i128 = metrics.values().map(|m| m.value as i128).sum();
    let n = metrics.len().max(1) as i128;
    let usage = (total / n) as i64;
    (usage as f64 / target as f64, usage)
}

fn ceil_i32(x: f64) -> i32 {
    let c = x.ceil();
    if c.is_nan() { 0 } else { c as i32 }
}

/// Error text for a failed PodMetrics list (prefixes as upstream's metrics client).
pub(crate) fn resource_metrics_fetch(
    metrics: Result<&[Value], &str>,
    resource: &str,
    container: Option<&str>,
) -> Result<PodMetricsInfo, String> {
    let wrap = |e: String| format!("unable to get metrics for resource {}: {}", resource, e);
    match metrics {
        Err(api) => Err(wrap(format!(
            "unable to fetch metrics from resource metrics API: {}",
            api
        ))),
        Ok([]) => Err(wrap(
            "no metrics returned from resource metrics API".to_string(),
        )),
        Ok(items) => Ok(pod_metrics_info(items, resource, container)),
    }
}

/// The pods and metrics a calculation uses (upstream's shared prologue): deleted and
/// failed pods and unready ones are left out; errors when nothing is left.
fn usable_metrics<'a>(
    resource: &str,
    container: Option<&str>,
    pods: &'a [Value],
    metrics: Result<&[Value], &str>,
    params: &CalcParams,
) -> Result<(PodMetricsInfo, Vec<PodInfo<'a>>, Groups), String> {
    let mut metrics = resource_metrics_fetch(metrics, resource, container)?;
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".to_string());
    }
    let pods: Vec<PodInfo<'_>> = pods.iter().map(pod_info).collect();
    let g = group_pods(&pods, &metrics, resource, params);
    for n in g.ignored.iter().chain(g.unready.iter()) {
        metrics.remove(n);
    }
    if metrics.is_empty() {
        return Err(
            "did not receive metrics for targeted pods (pods might be unready)".to_string(),
        );
    }
    Ok((metrics, pods, g))
}

/// The replica count for a usage ratio (upstream's rule, common to both calculations):
/// within tolerance nothing changes; pods without metrics count at `missing_value`
/// (their fallback usage) when scaling down and at zero when scaling up, unready pods at
/// zero when scaling up; then a recomputed ratio (`ratio_of`) that flips direction or
/// lands within tolerance keeps the current count.
fn replicas_for_ratio(
    current_replicas: i32,
    mut metrics: PodMetricsInfo,
    g: &Groups,
    usage_ratio: f64,
    params: &CalcParams,
    missing_value: impl Fn(&str) -> i64,
    ratio_of: impl Fn(&PodMetricsInfo) -> Result<f64, String>,
) -> Result<i32, String> {
    let scale_up_with_unready = !g.unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && g.missing.is_empty() {
        if params.tolerances.is_within(usage_ratio) {
            return Ok(current_replicas);
        }
        return Ok(ceil_i32(usage_ratio * g.ready_count as f64));
    }
    if !g.missing.is_empty() {
        if usage_ratio < 1.0 {
            for n in &g.missing {
                metrics.insert(
                    n.clone(),
                    PodMetric {
                        timestamp_ms: ZERO_TIME_MS,
                        window_ms: 0,
                        value: missing_value(n),
                    },
                );
            }
        } else if usage_ratio > 1.0 {
            for n in &g.missing {
                metrics.insert(n.clone(), zero_metric());
            }
        }
    }
    if scale_up_with_unready {
        for n in &g.unready {
            metrics.insert(n.clone(), zero_metric());
        }
    }
    let new_ratio = ratio_of(&metrics)?;
    if params.tolerances.is_within(new_ratio)
        || (usage_ratio < 1.0 && new_ratio > 1.0)
        || (usage_ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(current_replicas);
    }
    let new_replicas = ceil_i32(new_ratio * metrics.len() as f64);
    if (new_ratio < 1.0 && new_replicas > current_replicas)
        || (new_ratio > 1.0 && new_replicas < current_replicas)
    {
        return Ok(current_replicas);
    }
    Ok(new_replicas)
}

fn zero_metric() -> PodMetric {
    PodMetric {
        timestamp_ms: ZERO_TIME_MS,
        window_ms: 0,
        value: 0,
    }
}

/// Utilization-based calculation. Returns (replicas, utilization %, raw average milli-value).
pub(crate) fn get_resource_replicas(
    current_replicas: i32,
    target_utilization: i32,
    resource: &str,
    container: Option<&str>,
    pods: &[Value],
    metrics: Result<&[Value], &str>,
    params: &CalcParams,
) -> Result<(i32, i32, i64), String> {
    let (metrics, pods, g) = usable_metrics(resource, container, pods, metrics, params)?;
    let requests = calculate_requests(&pods, container, resource)?;
    let (usage_ratio, utilization, raw) =
        resource_utilization_ratio(&metrics, &requests, target_utilization)?;
    let fallback = i64::from(target_utilization.max(100));
    let replicas = replicas_for_ratio(
        current_replicas,
        metrics,
        &g,
        usage_ratio,
        params,
        |n| {
            requests
                .get(n)
                .copied()
                .unwrap_or(0)
                .saturating_mul(fallback)
                / 100
        },
        |m| resource_utilization_ratio(m, &requests, target_utilization).map(|r| r.0),
    )?;
    Ok((replicas, utilization, raw))
}

/// Average-value calculation. Returns (replicas, average usage milli-value).
pub(crate) fn get_raw_resource_replicas(
    current_replicas: i32,
    target_usage: i64,
    resource: &str,
    container: Option<&str>,
    pods: &[Value],
    metrics: Result<&[Value], &str>,
    params: &CalcParams,
) -> Result<(i32, i64), String> {
    let (metrics, _, g) = usable_metrics(resource, container, pods, metrics, params)?;
    let (usage_ratio, usage) = metric_usage_ratio(&metrics, target_usage);
    let replicas = replicas_for_ratio(
        current_replicas,
        metrics,
        &g,
        usage_ratio,
        params,
        |_| target_usage,
        |m| Ok(metric_usage_ratio(m, target_usage).0),
    )?;
    Ok((replicas, usage))
}
