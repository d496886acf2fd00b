//! Pure decision logic of the HorizontalPodAutoscaler controller
//! (autoscaling/v2), modelled on kube-controller-manager's behaviour.
//!
//! No I/O happens here: the caller fetches the HPA, the target's scale, the
//! pods selected by the scale's selector and the `metrics.k8s.io` PodMetrics
//! for them, passes everything in as JSON, and receives the new replica
//! count, the complete new `.status`, events to record and the updated
//! in-memory histories (recommendations and scale events) to keep for the
//! next reconciliation of the same HPA.

mod calc;
pub mod quantity;
mod spec;
pub mod timefmt;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use calc::{CalcParams, Tolerances};
use spec::{Behavior, Rules, Spec, as_i32, parse_spec};
pub use spec::{DEFAULT_CPU_UTILIZATION, default_spec};
pub use timefmt::{format_rfc3339, parse_rfc3339};

/// Error text used when the resource metrics API is unavailable and the
/// caller did not supply its own (`Inputs::pod_metrics == None`).
pub const RESOURCE_METRICS_UNAVAILABLE: &str =
    "the server could not find the requested resource (get pods.metrics.k8s.io)";
/// Error text used for Pods/Object metrics (custom metrics API, not supported here).
pub const CUSTOM_METRICS_UNAVAILABLE: &str =
    "no custom metrics API (custom.metrics.k8s.io) registered";

/// Controller-wide settings (kube-controller-manager flags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// `--horizontal-pod-autoscaler-tolerance` (default 0.1).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (default 300s).
    pub cpu_initialization_period_seconds: i64,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (default 30s).
    pub initial_readiness_delay_seconds: i64,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (default 300s).
    pub downscale_stabilization_seconds: i64,
    /// Upstream's controller never writes `status.observedGeneration` (it is
    /// dropped on every status rewrite). Set this to write
    /// `metadata.generation` there instead.
    pub set_observed_generation: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tolerance: 0.1,
            cpu_initialization_period_seconds: 300,
            initial_readiness_delay_seconds: 30,
            downscale_stabilization_seconds: 300,
            set_observed_generation: false,
        }
    }
}

/// A remembered rescale, used by behavior rate limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    /// Unix seconds.
    pub timestamp: i64,
    /// Absolute (non-negative) replica change.
    pub replica_change: i32,
    /// `true` for a scale up, `false` for a scale down.
    pub scale_up: bool,
    /// Older than the longest policy period at the time of the last store;
    /// such entries get reused for new events.
    pub outdated: bool,
}

/// An event to record on the HPA object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub event_type: String,
    pub reason: String,
    pub message: String,
}

impl Event {
    fn new(event_type: &str, reason: &str, message: impl Into<String>) -> Self {
        Event {
            event_type: event_type.to_string(),
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// Why a scale's selector cannot be used (upstream's `validateAndParseSelector`).
#[derive(Clone, Debug, PartialEq)]
pub enum SelectorProblem {
    /// The label selector parser refused it; its message.
    Invalid(String),
    /// Several HPAs (`namespace/name`, this one included) select the same pods.
    Ambiguous(Vec<String>),
}

/// Everything one reconciliation needs.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// The HPA object (autoscaling/v2 JSON, with its current `.status`).
    pub hpa: &'a Value,
    /// `spec.replicas` of the target's scale subresource.
    pub current_replicas: i32,
    /// `status.selector` of the target's scale subresource. `Some("")` is
    /// reported as a missing selector; `None` skips that check.
    pub selector: Option<&'a str>,
    /// Why the selector cannot be used, when the caller found it unparsable or
    /// shared with other HPAs.
    pub selector_problem: Option<SelectorProblem>,
    /// Pods matched by the selector (core/v1 Pod JSON).
    pub pods: &'a [Value],
    /// PodMetrics items (metrics.k8s.io/v1beta1) for the selected pods;
    /// `None` = the resource metrics API is unavailable.
    pub pod_metrics: Option<&'a [Value]>,
    /// Error text of the failed PodMetrics list when `pod_metrics` is `None`
    /// (defaults to [`RESOURCE_METRICS_UNAVAILABLE`]).
    pub pod_metrics_error: Option<&'a str>,
    /// Current time, unix seconds.
    pub now: i64,
    /// Recommendation history of this HPA: (unix seconds, replicas).
    pub recommendations: &'a [(i64, i32)],
    /// Scale-event history of this HPA.
    pub scale_events: &'a [ScaleEvent],
    pub config: Config,
}

impl<'a> Inputs<'a> {
    /// Inputs with no pods, no metrics, empty histories and default config.
    pub fn new(hpa: &'a Value, current_replicas: i32, now: i64) -> Self {
        Inputs {
            hpa,
            current_replicas,
            selector: None,
            selector_problem: None,
            pods: &[],
            pod_metrics: None,
            pod_metrics_error: None,
            now,
            recommendations: &[],
            scale_events: &[],
            config: Config::default(),
        }
    }
}

/// The result of one reconciliation.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Replica count the target should have (equals `status.desiredReplicas`
    /// unless metric computation failed, in which case no scaling happens).
    pub desired_replicas: i32,
    /// Whether the caller must update the target's scale to `desired_replicas`.
    pub rescale: bool,
    /// Human readable reason of the rescale (as in the SuccessfulRescale event).
    pub rescale_reason: String,
    /// Events to record, in order (a `SuccessfulRescale` one assumes the
    /// scale update succeeds; see [`rescale_failed`]).
    pub events: Vec<Event>,
    /// The complete new `.status`.
    pub status: Value,
    /// Whether `status` differs from the HPA's current `.status` (upstream
    /// skips the status write otherwise).
    pub status_changed: bool,
    /// Updated recommendation history to pass next time.
    pub recommendations: Vec<(i64, i32)>,
    /// Updated scale-event history to pass next time.
    pub scale_events: Vec<ScaleEvent>,
    /// The error upstream's reconcile would return (for logging/requeue), if any.
    pub error: Option<String>,
    failure: Option<FailureContext>,
}

#[derive(Clone, Debug)]
struct FailureContext {
    conditions: Vec<Condition>,
    metric_statuses: Option<Vec<Value>>,
    scale_events: Vec<ScaleEvent>,
    current_replicas: i32,
    old_desired: i32,
    old_last_scale_time: Option<Value>,
    observed_generation: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
struct Condition {
    type_: String,
    status: String,
    last_transition_time: Option<Value>,
    reason: String,
    message: String,
}

fn parse_conditions(status: Option<&Value>) -> Vec<Condition> {
    status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    let str_of =
                        |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let type_ = c.get("type")?.as_str()?.to_string();
                    Some(Condition {
                        type_,
                        status: str_of("status"),
                        last_transition_time: c
                            .get("lastTransitionTime")
                            .filter(|v| !v.is_null())
                            .cloned(),
                        reason: str_of("reason"),
                        message: str_of("message"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn condition_json(c: &Condition) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(c.type_));
    m.insert("status".into(), json!(c.status));
    if let Some(t) = &c.last_transition_time {
        m.insert("lastTransitionTime".into(), t.clone());
    }
    if !c.reason.is_empty() {
        m.insert("reason".into(), json!(c.reason));
    }
    if !c.message.is_empty() {
        m.insert("message".into(), json!(c.message));
    }
    Value::Object(m)
}

/// Sets a condition, adding it when absent; the transition time only moves
/// when the status value changes.
fn set_condition(
    list: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: i64,
) {
    let idx = match list.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            list.push(Condition {
                type_: type_.to_string(),
                status: String::new(),
                last_transition_time: None,
                reason: String::new(),
                message: String::new(),
            });
            list.len() - 1
        }
    };
    let c = &mut list[idx];
    if c.status != status {
        c.last_transition_time = Some(json!(format_rfc3339(now)));
    }
    c.status = status.to_string();
    c.reason = reason.to_string();
    c.message = message.to_string();
}

/// Whether two statuses differ once null fields are ignored: the caller's copy of the
/// old status comes from typed objects, which drop nulls the new one may carry (an
/// unchanged status must not be rewritten every sync).
pub fn differs(old: &Value, new: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, x)| !x.is_null())
                    .map(|(k, x)| (k.clone(), strip(x)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    strip(old) != strip(new)
}

fn build_status(
    observed_generation: Option<i64>,
    last_scale_time: Option<Value>,
    current_replicas: i32,
    desired_replicas: i32,
    metric_statuses: Option<&[Value]>,
    conditions: &[Condition],
) -> Value {
    let mut m = Map::new();
    if let Some(g) = observed_generation {
        m.insert("observedGeneration".into(), json!(g));
    }
    if let Some(t) = last_scale_time {
        m.insert("lastScaleTime".into(), t);
    }
    if current_replicas != 0 {
        m.insert("currentReplicas".into(), json!(current_replicas));
    }
    m.insert("desiredReplicas".into(), json!(desired_replicas));
    m.insert(
        "currentMetrics".into(),
        match metric_statuses {
            Some(s) => Value::Array(s.to_vec()),
            None => Value::Null,
        },
    );
    if !conditions.is_empty() {
        m.insert(
            "conditions".into(),
            Value::Array(conditions.iter().map(condition_json).collect()),
        );
    }
    Value::Object(m)
}

/// Renders a `metav1.LabelSelector` the way Go's `%+v` prints a pointer to one
/// (the generated `String()` method), `nil` when absent.
fn label_selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        return "nil".to_string();
    };
    let mut labels = String::from("map[string]string{");
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        for k in keys {
            let v = m.get(k).and_then(Value::as_str).unwrap_or("");
            labels.push_str(&format!("{}: {},", k, v));
        }
    }
    labels.push('}');
    let mut exprs = String::from("[]LabelSelectorRequirement{");
    if let Some(a) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in a {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            exprs.push_str(&format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                key,
                op,
                values.join(" ")
            ));
        }
    }
    exprs.push('}');
    format!(
        "&LabelSelector{{MatchLabels:{},MatchExpressions:{},}}",
        labels, exprs
    )
}

struct MetricCtx<'a, 'b> {
    inputs: &'b Inputs<'a>,
    namespace: &'b str,
    params: CalcParams,
}

struct MetricOk {
    replicas: i32,
    name: String,
    status: Value,
}

struct MetricErr {
    condition: Option<(String, String)>, // (reason, message) for ScalingActive=False
    error: String,
}

fn unable_condition(events: &mut Vec<Event>, reason: &str, err: &str) -> Option<(String, String)> {
    events.push(Event::new("Warning", reason, err));
    Some((
        reason.to_string(),
        format!("the HPA was unable to compute the replica count: {}", err),
    ))
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> &'v str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

/// Shared computation for Resource and ContainerResource metrics. Returns
/// (replicas, `current` MetricValueStatus, metric description).
fn resource_metric_generic(
    ctx: &MetricCtx<'_, '_>,
    target: &Value,
    resource: &str,
    container: Option<&str>,
) -> Result<(i32, Value, String), String> {
    let metrics: Result<&[Value], &str> = match ctx.inputs.pod_metrics {
        Some(m) => Ok(m),
        None => Err(ctx
            .inputs
            .pod_metrics_error
            .unwrap_or(RESOURCE_METRICS_UNAVAILABLE)),
    };
    let current = ctx.inputs.current_replicas;
    if let Some(avg) = target
        .get("averageValue")
        .and_then(quantity::milli_from_value)
    {
        let (replicas, usage) = calc::get_raw_resource_replicas(
            current,
            avg,
            resource,
            container,
            ctx.inputs.pods,
            metrics,
            &ctx.params,
        )
        .map_err(|e| format!("failed to get {} usage: {}", resource, e))?;
        return Ok((
            replicas,
            json!({"averageValue": quantity::format_milli(usage)}),
            format!("{} resource", resource),
        ));
    }
    let Some(util) = as_i32(target.get("averageUtilization")) else {
        return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".to_string());
    };
    let (replicas, utilization, raw) = calc::get_resource_replicas(
        current,
        util,
        resource,
        container,
        ctx.inputs.pods,
        metrics,
        &ctx.params,
    )
    .map_err(|e| format!("failed to get {} utilization: {}", resource, e))?;
    let name = if container.is_some() {
        format!(
            "{} container resource utilization (percentage of request)",
            resource
        )
    } else {
        format!("{} resource utilization (percentage of request)", resource)
    };
    Ok((
        replicas,
        json!({"averageUtilization": utilization, "averageValue": quantity::format_milli(raw)}),
        name,
    ))
}

fn compute_replicas_for_metric(
    ctx: &MetricCtx<'_, '_>,
    ms: &Value,
    events: &mut Vec<Event>,
) -> Result<MetricOk, MetricErr> {
    let mtype = str_at(ms, &["type"]);
    match mtype {
        "Resource" => {
            let src = ms.get("resource").unwrap_or(&Value::Null);
            let name = str_at(src, &["name"]);
            let target = src.get("target").unwrap_or(&Value::Null);
            match resource_metric_generic(ctx, target, name, None) {
                Ok((replicas, current, desc)) => Ok(MetricOk {
                    replicas,
                    name: desc,
                    status: json!({"type": "Resource", "resource": {"name": name, "current": current}}),
                }),
                Err(e) => Err(MetricErr {
                    condition: unable_condition(events, "FailedGetResourceMetric", &e),
                    error: format!("failed to get {} resource metric value: {}", name, e),
                }),
            }
        }
        "ContainerResource" => {
            let src = ms.get("containerResource").unwrap_or(&Value::Null);
            let name = str_at(src, &["name"]);
            let container = str_at(src, &["container"]);
            let target = src.get("target").unwrap_or(&Value::Null);
            match resource_metric_generic(ctx, target, name, Some(container)) {
                Ok((replicas, current, desc)) => Ok(MetricOk {
                    replicas,
                    name: desc,
                    status: json!({"type": "ContainerResource", "containerResource": {
                        "name": name, "current": current, "container": container}}),
                }),
                Err(e) => Err(MetricErr {
                    condition: unable_condition(events, "FailedGetContainerResourceMetric", &e),
                    error: format!("failed to get {} container metric value: {}", container, e),
                }),
            }
        }
        "Pods" => {
            let mname = str_at(ms, &["pods", "metric", "name"]);
            let e = format!(
                "unable to get metric {}: unable to fetch metrics from custom metrics API: {}",
                mname, CUSTOM_METRICS_UNAVAILABLE
            );
            Err(MetricErr {
                condition: unable_condition(events, "FailedGetPodsMetric", &e),
                error: format!("failed to get pods metric value: {}", e),
            })
        }
        "Object" => {
            let obj = ms.get("object").unwrap_or(&Value::Null);
            let mname = str_at(obj, &["metric", "name"]);
            let target = obj.get("target").unwrap_or(&Value::Null);
            let inner = format!(
                "unable to get metric {}: {} on {} {}/unable to fetch metrics from custom metrics API: {}",
                mname,
                str_at(obj, &["describedObject", "kind"]),
                ctx.namespace,
                str_at(obj, &["describedObject", "name"]),
                CUSTOM_METRICS_UNAVAILABLE
            );
            let has = |k: &str| target.get(k).is_some_and(|v| !v.is_null());
            let (condition, err) = if str_at(target, &["type"]) == "Value" && has("value") {
                (
                    unable_condition(events, "FailedGetObjectMetric", &inner),
                    inner,
                )
            } else if str_at(target, &["type"]) == "AverageValue" && has("averageValue") {
                let c = unable_condition(events, "FailedGetObjectMetric", &inner);
                (
                    c,
                    format!("failed to get {} object metric: {}", mname, inner),
                )
            } else {
                let e = "invalid object metric source: neither a value target nor an average value target was set".to_string();
                (unable_condition(events, "FailedGetObjectMetric", &e), e)
            };
            Err(MetricErr {
                condition,
                error: format!("failed to get object metric value: {}", err),
            })
        }
        "External" => {
            let ext = ms.get("external").unwrap_or(&Value::Null);
            let mname = str_at(ext, &["metric", "name"]);
            let target = ext.get("target").unwrap_or(&Value::Null);
            let inner = format!(
                "unable to get external metric {}/{}/{}: unable to fetch metrics from external metrics API: the server could not find the requested resource (get {}.external.metrics.k8s.io)",
                ctx.namespace,
                mname,
                label_selector_string(ext.get("metric").and_then(|m| m.get("selector"))),
                mname
            );
            let has = |k: &str| target.get(k).is_some_and(|v| !v.is_null());
            let (condition, err) = if has("averageValue") {
                let c = unable_condition(events, "FailedGetExternalMetric", &inner);
                (
                    c,
                    format!("failed to get {} external metric: {}", mname, inner),
                )
            } else if has("value") {
                let c = unable_condition(events, "FailedGetExternalMetric", &inner);
                (
                    c,
                    format!("failed to get external metric {}: {}", mname, inner),
                )
            } else {
                let e = "invalid external metric source: neither a value target nor an average value target was set".to_string();
                (unable_condition(events, "FailedGetExternalMetric", &e), e)
            };
            Err(MetricErr {
                condition,
                error: format!("failed to get {} external metric value: {}", mname, err),
            })
        }
        other => {
            let e = format!("unknown metric source type {:?}", other);
            Err(MetricErr {
                condition: unable_condition(events, "InvalidMetricSourceType", &e),
                error: e,
            })
        }
    }
}

struct MetricsResult {
    /// -1 when no scaling decision can be made.
    replicas: i32,
    name: String,
    statuses: Option<Vec<Value>>,
    error: Option<String>,
}

fn compute_replicas_for_metrics(
    ctx: &MetricCtx<'_, '_>,
    metric_specs: &[Value],
    conditions: &mut Vec<Condition>,
    events: &mut Vec<Event>,
) -> MetricsResult {
    let now = ctx.inputs.now;
    let unusable = if ctx.inputs.selector == Some("") {
        let msg = "selector is required".to_string();
        let condition = "the HPA target's scale is missing a selector".to_string();
        Some(("SelectorRequired", "InvalidSelector", msg, condition))
    } else {
        match &ctx.inputs.selector_problem {
            None => None,
            Some(SelectorProblem::Invalid(e)) => {
                let msg = format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                );
                Some(("InvalidSelector", "InvalidSelector", msg.clone(), msg))
            }
            Some(SelectorProblem::Ambiguous(hpas)) => {
                let msg = format!(
                    "pods by selector {} are controlled by multiple HPAs: [{}]",
                    ctx.inputs.selector.unwrap_or(""),
                    hpas.join(" ")
                );
                Some(("AmbiguousSelector", "AmbiguousSelector", msg.clone(), msg))
            }
        }
    };
    if let Some((event, reason, msg, condition)) = unusable {
        events.push(Event::new("Warning", event, &msg));
        set_condition(
            conditions,
            "ScalingActive",
            "False",
            reason,
            &condition,
            now,
        );
        return MetricsResult {
            replicas: -1,
            name: String::new(),
            statuses: None,
            error: Some(msg),
        };
    }
    let spec_replicas = ctx.inputs.current_replicas;
    let mut statuses = vec![json!({"type": ""}); metric_specs.len()];
    let mut replicas = 0i32;
    let mut name = String::new();
    let mut invalid = 0usize;
    let mut first_err: Option<MetricErr> = None;
    for (i, ms) in metric_specs.iter().enumerate() {
        match compute_replicas_for_metric(ctx, ms, events) {
            Ok(ok) => {
                statuses[i] = ok.status;
                if replicas == 0 || ok.replicas > replicas {
                    replicas = ok.replicas;
                    name = ok.name;
                }
            }
            Err(e) => {
                if invalid == 0 {
                    first_err = Some(e);
                }
                invalid += 1;
            }
        }
    }
    let error = first_err.as_ref().map(|e| {
        format!(
            "invalid metrics ({} invalid out of {}), first error is: {}",
            invalid,
            metric_specs.len(),
            e.error
        )
    });
    if invalid >= metric_specs.len() || (invalid > 0 && replicas < spec_replicas) {
        if let Some((reason, message)) = first_err.and_then(|e| e.condition) {
            set_condition(conditions, "ScalingActive", "False", &reason, &message, now);
        }
        return MetricsResult {
            replicas: -1,
            name: String::new(),
            statuses: Some(statuses),
            error: Some(error.unwrap_or_else(|| {
                "invalid metrics (0 invalid out of 0), first error is: <nil>".to_string()
            })),
        };
    }
    set_condition(
        conditions,
        "ScalingActive",
        "True",
        "ValidMetricFound",
        &format!(
            "the HPA was able to successfully calculate a replica count from {}",
            name
        ),
        now,
    );
    MetricsResult {
        replicas,
        name,
        statuses: Some(statuses),
        error,
    }
}

// ---------------------------------------------------------------------------
// Normalization

/// Legacy (no `behavior`) stabilization: max over the window, replacing one
/// expired sample (or appending) with the new recommendation.
fn stabilize_recommendation(
    recs: &mut Vec<(i64, i32)>,
    prenormalized: i32,
    now: i64,
    window: i64,
) -> i32 {
    let cutoff = now.saturating_sub(window);
    let mut max_rec = prenormalized;
    let mut old_idx = None;
    for (i, &(ts, r)) in recs.iter().enumerate() {
        if ts < cutoff {
            old_idx = Some(i);
        } else if r > max_rec {
            max_rec = r;
        }
    }
    match old_idx {
        Some(i) => recs[i] = (now, prenormalized),
        None => recs.push((now, prenormalized)),
    }
    max_rec
}

fn convert_desired_replicas_with_rules(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
) -> (i32, &'static str, &'static str) {
    let scale_up_limit = ((2.0 * current as f64).max(4.0)) as i32;
    let (max_allowed, reason, message) = if max > scale_up_limit {
        (
            scale_up_limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    };
    if desired < min {
        return (
            min,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        );
    }
    if desired > max_allowed {
        return (max_allowed, reason, message);
    }
    (
        desired,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

fn replicas_change_per_period(period: i32, events: &[ScaleEvent], up: bool, now: i64) -> i32 {
    let cutoff = now.saturating_sub(i64::from(period));
    events
        .iter()
        .filter(|e| e.scale_up == up && e.timestamp > cutoff)
        .fold(0i32, |acc, e| acc.saturating_add(e.replica_change))
}

fn scale_up_limit_with_rules(current: i32, events: &[ScaleEvent], rules: &Rules, now: i64) -> i32 {
    let use_min = match rules.select_policy.as_str() {
        "Disabled" => return current,
        "Min" => true,
        _ => false,
    };
    let mut result = if use_min { i32::MAX } else { i32::MIN };
    for p in &rules.policies {
        let added = replicas_change_per_period(p.period_seconds, events, true, now);
        let deleted = replicas_change_per_period(p.period_seconds, events, false, now);
        let start = current.saturating_sub(added).saturating_add(deleted);
        let proposed = match p.kind.as_str() {
            "Pods" => start.saturating_add(p.value),
            "Percent" => (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i32,
            _ => 0,
        };
        result = if use_min {
            result.min(proposed)
        } else {
            result.max(proposed)
        };
    }
    result
}

fn scale_down_limit_with_rules(
    current: i32,
    events: &[ScaleEvent],
    rules: &Rules,
    now: i64,
) -> i32 {
    let use_min_change = match rules.select_policy.as_str() {
        "Disabled" => return current,
        "Min" => true,
        _ => false,
    };
    let mut result = if use_min_change { i32::MIN } else { i32::MAX };
    for p in &rules.policies {
        let added = replicas_change_per_period(p.period_seconds, events, true, now);
        let deleted = replicas_change_per_period(p.period_seconds, events, false, now);
        let start = current.saturating_sub(added).saturating_add(deleted);
        let proposed = match p.kind.as_str() {
            "Pods" => start.saturating_sub(p.value),
            "Percent" => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i32,
            _ => 0,
        };
        result = if use_min_change {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}

struct NormalizationArgs<'b> {
    up: &'b Rules,
    down: &'b Rules,
    down_window: i64,
    min: i32,
    max: i32,
    current: i32,
    desired: i32,
    now: i64,
}

fn stabilize_with_behaviors(
    recs: &mut Vec<(i64, i32)>,
    a: &NormalizationArgs<'_>,
) -> (i32, &'static str, &'static str) {
    let up_cutoff = a
        .now
        .saturating_sub(i64::from(a.up.stabilization_window_seconds.unwrap_or(0)));
    let down_cutoff = a.now.saturating_sub(a.down_window);
    let mut up_rec = a.desired;
    let mut down_rec = a.desired;
    let mut old_idx = None;
    for (i, &(ts, r)) in recs.iter().enumerate() {
        if ts > up_cutoff {
            up_rec = up_rec.min(r);
        }
        if ts > down_cutoff {
            down_rec = down_rec.max(r);
        }
        if ts < up_cutoff && ts < down_cutoff {
            old_idx = Some(i);
        }
    }
    let mut recommendation = a.current;
    if recommendation < up_rec {
        recommendation = up_rec;
    }
    if recommendation > down_rec {
        recommendation = down_rec;
    }
    match old_idx {
        Some(i) => recs[i] = (a.now, a.desired),
        None => recs.push((a.now, a.desired)),
    }
    if a.desired >= a.current {
        (
            recommendation,
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        )
    } else {
        (
            recommendation,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    }
}

fn convert_with_behavior_rate(
    events: &[ScaleEvent],
    a: &NormalizationArgs<'_>,
) -> (i32, &'static str, &'static str) {
    if a.desired > a.current {
        let limit = scale_up_limit_with_rules(a.current, events, a.up, a.now).max(a.current);
        let (max_allowed, reason, message) = if a.max > limit {
            (
                limit,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        } else {
            (
                a.max,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        };
        if a.desired > max_allowed {
            return (max_allowed, reason, message);
        }
    } else if a.desired < a.current {
        let limit = scale_down_limit_with_rules(a.current, events, a.down, a.now).min(a.current);
        let (min_allowed, reason, message) = if a.min < limit {
            (
                limit,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            )
        } else {
            (
                a.min,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        };
        if a.desired < min_allowed {
            return (min_allowed, reason, message);
        }
    }
    (
        a.desired,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

fn store_scale_event(
    events: &mut [ScaleEvent],
    behavior: &Behavior,
    prev: i32,
    new: i32,
    now: i64,
) -> Option<ScaleEvent> {
    let up = new > prev;
    let rules = if up {
        &behavior.scale_up
    } else {
        &behavior.scale_down
    };
    let longest = rules
        .policies
        .iter()
        .map(|p| p.period_seconds)
        .fold(0, i32::max);
    let cutoff = now.saturating_sub(i64::from(longest));
    let mut old_idx = None;
    for (i, e) in events.iter_mut().enumerate() {
        if e.scale_up != up {
            continue;
        }
        if e.timestamp < cutoff {
            e.outdated = true;
        }
        if e.outdated {
            old_idx = Some(i);
        }
    }
    let ev = ScaleEvent {
        timestamp: now,
        replica_change: if up {
            new.saturating_sub(prev)
        } else {
            prev.saturating_sub(new)
        },
        scale_up: up,
        outdated: false,
    };
    match old_idx {
        Some(i) => {
            events[i] = ev;
            None
        }
        None => Some(ev),
    }
}

// ---------------------------------------------------------------------------
// Reconcile

fn tolerances_for(spec: &Spec, config: &Config) -> Tolerances {
    let mut t = Tolerances {
        scale_down: config.tolerance,
        scale_up: config.tolerance,
    };
    if let Some(b) = &spec.behavior {
        if let Some(v) = b.scale_down.tolerance {
            t.scale_down = v;
        }
        if let Some(v) = b.scale_up.tolerance {
            t.scale_up = v;
        }
    }
    t
}

/// Runs one reconciliation of an HPA (upstream's `reconcileAutoscaler` after
/// the scale subresource was fetched successfully).
pub fn reconcile(inputs: &Inputs<'_>) -> Outcome {
    let now = inputs.now;
    let hpa = inputs.hpa;
    let spec = parse_spec(hpa);
    let old_status = hpa.get("status");
    let old_desired = old_status
        .and_then(|s| as_i32(s.get("desiredReplicas")))
        .unwrap_or(0);
    let old_last_scale_time = old_status
        .and_then(|s| s.get("lastScaleTime"))
        .filter(|v| !v.is_null())
        .cloned();
    let observed_generation = if inputs.config.set_observed_generation {
        hpa.get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
    } else {
        None
    };
    let namespace = str_at(hpa, &["metadata", "namespace"]);
    let reference = format!(
        "{}/{}/{}",
        str_at(hpa, &["spec", "scaleTargetRef", "kind"]),
        namespace,
        str_at(hpa, &["spec", "scaleTargetRef", "name"])
    );

    let mut conditions = parse_conditions(old_status);
    let mut events = Vec::new();
    let mut recommendations = inputs.recommendations.to_vec();
    let mut scale_events = inputs.scale_events.to_vec();
    let current = inputs.current_replicas;

    set_condition(
        &mut conditions,
        "AbleToScale",
        "True",
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
        now,
    );
    if recommendations.is_empty() {
        recommendations.push((now, current));
    }

    let finish = |status: Value,
                  desired: i32,
                  rescale: bool,
                  rescale_reason: String,
                  events: Vec<Event>,
                  recommendations: Vec<(i64, i32)>,
                  scale_events: Vec<ScaleEvent>,
                  error: Option<String>,
                  failure: Option<FailureContext>| {
        let status_changed = old_status.is_none_or(|s| differs(s, &status));
        Outcome {
            desired_replicas: desired,
            rescale,
            rescale_reason,
            events,
            status,
            status_changed,
            recommendations,
            scale_events,
            error,
            failure,
        }
    };

    let min = spec.min_replicas;
    let mut desired = 0i32;
    let mut rescale_reason = String::new();
    let mut metric_statuses: Option<Vec<Value>> = None;
    let mut error = None;
    let rescale;

    if current == 0 && min != 0 {
        rescale = false;
        set_condition(
            &mut conditions,
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
            now,
        );
    } else if current > spec.max_replicas {
        rescale_reason = "Current number of replicas above Spec.MaxReplicas".to_string();
        desired = spec.max_replicas;
        rescale = true;
    } else if current < min {
        rescale_reason = "Current number of replicas below Spec.MinReplicas".to_string();
        desired = min;
        rescale = true;
    } else {
        let ctx = MetricCtx {
            inputs,
            namespace,
            params: CalcParams {
                tolerances: tolerances_for(&spec, &inputs.config),
                cpu_initialization_period_ms: inputs
                    .config
                    .cpu_initialization_period_seconds
                    .saturating_mul(1000),
                delay_of_initial_readiness_status_ms: inputs
                    .config
                    .initial_readiness_delay_seconds
                    .saturating_mul(1000),
                now_ms: now.saturating_mul(1000),
            },
        };
        let res = compute_replicas_for_metrics(&ctx, &spec.metrics, &mut conditions, &mut events);
        metric_statuses = res.statuses;
        if let (Some(err), -1) = (&res.error, res.replicas) {
            let status = build_status(
                observed_generation,
                old_last_scale_time,
                current,
                old_desired,
                metric_statuses.as_deref(),
                &conditions,
            );
            events.push(Event::new(
                "Warning",
                "FailedComputeMetricsReplicas",
                err.clone(),
            ));
            let error = format!(
                "failed to compute desired number of replicas based on listed metrics for {}: {}",
                reference, err
            );
            return finish(
                status,
                current,
                false,
                String::new(),
                events,
                recommendations,
                scale_events,
                Some(error),
                None,
            );
        }
        error = res.error;
        let mut rescale_metric = String::new();
        if res.replicas > desired {
            desired = res.replicas;
            rescale_metric = res.name;
        }
        if desired > current {
            rescale_reason = format!("{} above target", rescale_metric);
        }
        if desired < current {
            rescale_reason = "All metrics below target".to_string();
        }
        desired = match &spec.behavior {
            None => {
                let stabilized = stabilize_recommendation(
                    &mut recommendations,
                    desired,
                    now,
                    inputs.config.downscale_stabilization_seconds,
                );
                if stabilized != desired {
                    set_condition(
                        &mut conditions,
                        "AbleToScale",
                        "True",
                        "ScaleDownStabilized",
                        "recent recommendations were higher than current one, applying the highest recent recommendation",
                        now,
                    );
                } else {
                    set_condition(
                        &mut conditions,
                        "AbleToScale",
                        "True",
                        "ReadyForNewScale",
                        "recommended size matches current size",
                        now,
                    );
                }
                let (d, reason, message) = convert_desired_replicas_with_rules(
                    current,
                    stabilized,
                    min,
                    spec.max_replicas,
                );
                let limited = if d == stabilized { "False" } else { "True" };
                set_condition(
                    &mut conditions,
                    "ScalingLimited",
                    limited,
                    reason,
                    message,
                    now,
                );
                d
            }
            Some(b) => {
                let mut args = NormalizationArgs {
                    up: &b.scale_up,
                    down: &b.scale_down,
                    down_window: b
                        .scale_down
                        .stabilization_window_seconds
                        .map(i64::from)
                        .unwrap_or(inputs.config.downscale_stabilization_seconds),
                    min,
                    max: spec.max_replicas,
                    current,
                    desired,
                    now,
                };
                let (stabilized, reason, message) =
                    stabilize_with_behaviors(&mut recommendations, &args);
                if stabilized != desired {
                    set_condition(&mut conditions, "AbleToScale", "True", reason, message, now);
                } else {
                    set_condition(
                        &mut conditions,
                        "AbleToScale",
                        "True",
                        "ReadyForNewScale",
                        "recommended size matches current size",
                        now,
                    );
                }
                args.desired = stabilized;
                let (d, reason, message) = convert_with_behavior_rate(&scale_events, &args);
                let limited = if d == stabilized { "False" } else { "True" };
                set_condition(
                    &mut conditions,
                    "ScalingLimited",
                    limited,
                    reason,
                    message,
                    now,
                );
                d
            }
        };
        rescale = desired != current;
    }

    let mut failure = None;
    if rescale {
        failure = Some(FailureContext {
            conditions: conditions.clone(),
            metric_statuses: metric_statuses.clone(),
            scale_events: scale_events.clone(),
            current_replicas: current,
            old_desired,
            old_last_scale_time: old_last_scale_time.clone(),
            observed_generation,
        });
        set_condition(
            &mut conditions,
            "AbleToScale",
            "True",
            "SucceededRescale",
            &format!(
                "the HPA controller was able to update the target scale to {}",
                desired
            ),
            now,
        );
        events.push(Event::new(
            "Normal",
            "SuccessfulRescale",
            format!("New size: {}; reason: {}", desired, rescale_reason),
        ));
        if let Some(b) = &spec.behavior
            && let Some(ev) = store_scale_event(&mut scale_events, b, current, desired, now)
        {
            scale_events.push(ev);
        }
    } else {
        desired = current;
    }

    let last_scale_time = if rescale {
        Some(json!(format_rfc3339(now)))
    } else {
        old_last_scale_time
    };
    let status = build_status(
        observed_generation,
        last_scale_time,
        current,
        desired,
        metric_statuses.as_deref(),
        &conditions,
    );
    finish(
        status,
        desired,
        rescale,
        rescale_reason,
        events,
        recommendations,
        scale_events,
        error,
        failure,
    )
}

/// Adjusts an outcome whose scale update failed with `error` (upstream's
/// FailedRescale path): the SuccessfulRescale event is replaced by a
/// `FailedRescale` warning, `AbleToScale` becomes False/FailedUpdateScale,
/// desired replicas and lastScaleTime keep their previous values and no
/// scale event is remembered. Returns the outcome unchanged when it did not
/// rescale.
pub fn rescale_failed(inputs: &Inputs<'_>, outcome: &Outcome, error: &str) -> Outcome {
    let Some(f) = &outcome.failure else {
        return outcome.clone();
    };
    let now = inputs.now;
    let mut conditions = f.conditions.clone();
    let mut events: Vec<Event> = outcome
        .events
        .iter()
        .filter(|e| e.reason != "SuccessfulRescale")
        .cloned()
        .collect();
    events.push(Event::new(
        "Warning",
        "FailedRescale",
        format!(
            "New size: {}; reason: {}; error: {}",
            outcome.desired_replicas, outcome.rescale_reason, error
        ),
    ));
    set_condition(
        &mut conditions,
        "AbleToScale",
        "False",
        "FailedUpdateScale",
        &format!(
            "the HPA controller was unable to update the target scale: {}",
            error
        ),
        now,
    );
    let status = build_status(
        f.observed_generation,
        f.old_last_scale_time.clone(),
        f.current_replicas,
        f.old_desired,
        f.metric_statuses.as_deref(),
        &conditions,
    );
    let status_changed = inputs.hpa.get("status").is_none_or(|s| differs(s, &status));
    Outcome {
        desired_replicas: outcome.desired_replicas,
        rescale: false,
        rescale_reason: outcome.rescale_reason.clone(),
        events,
        status,
        status_changed,
        recommendations: outcome.recommendations.clone(),
        scale_events: f.scale_events.clone(),
        error: Some(format!(
            "failed to rescale {}/{}/{}: {}",
            str_at(inputs.hpa, &["spec", "scaleTargetRef", "kind"]),
            str_at(inputs.hpa, &["metadata", "namespace"]),
            str_at(inputs.hpa, &["spec", "scaleTargetRef", "name"]),
            error
        )),
        failure: None,
    }
}

/// Status and event for an HPA whose target scale could not be read
/// (upstream's FailedGetScale path): only `AbleToScale` changes.
pub fn failed_get_scale(hpa: &Value, now: i64, error: &str) -> (Value, Event) {
    let old = hpa.get("status");
    let mut conditions = parse_conditions(old);
    set_condition(
        &mut conditions,
        "AbleToScale",
        "False",
        "FailedGetScale",
        &format!(
            "the HPA controller was unable to get the target's current scale: {}",
            error
        ),
        now,
    );
    let mut status = match old {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("desiredReplicas".into(), json!(0));
            m.insert("currentMetrics".into(), Value::Null);
            m
        }
    };
    status.insert(
        "conditions".into(),
        Value::Array(conditions.iter().map(condition_json).collect()),
    );
    (
        Value::Object(status),
        Event::new("Warning", "FailedGetScale", error),
    )
}
