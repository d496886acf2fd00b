use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_795_309_200; // 2026-11-22T01:00:00Z

fn ts(t: i64) -> String {
    format_rfc3339(t)
}

fn hpa(min: Option<i32>, max: i32, metrics: Value, behavior: Option<Value>) -> Value {
    let mut spec = json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": max,
        "metrics": metrics,
    });
    if let Some(m) = min {
        spec["minReplicas"] = json!(m);
    }
    if let Some(b) = behavior {
        spec["behavior"] = b;
    }
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "generation": 3},
        "spec": spec,
    })
}

fn cpu_util(target: i32) -> Value {
    json!([{"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": target}}}])
}

/// A running, long-ready pod with one container "app".
fn pod(name: &str, cpu_req: &str, mem_req: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": cpu_req, "memory": mem_req}}}]},
        "status": {
            "phase": "Running",
            "startTime": ts(NOW - 3600),
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts(NOW - 3500)}]
        }
    })
}

fn pm(name: &str, cpu: &str, mem: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "timestamp": ts(NOW - 10),
        "window": "30s",
        "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": mem}}]
    })
}

fn pods_and_metrics(n: usize, req: &str, usage: &str) -> (Vec<Value>, Vec<Value>) {
    let pods = (0..n)
        .map(|i| pod(&format!("web-{i}"), req, "256Mi"))
        .collect();
    let metrics = (0..n)
        .map(|i| pm(&format!("web-{i}"), usage, "100Mi"))
        .collect();
    (pods, metrics)
}

fn cond<'a>(status: &'a Value, t: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == t))
        .unwrap_or(&Value::Null)
}

fn ev(t: &str, r: &str, m: &str) -> Event {
    Event {
        event_type: t.into(),
        reason: r.into(),
        message: m.into(),
    }
}

/// Old recommendation outside every window, so stabilization does not hold.
const OLD_RECS: &[(i64, i32)] = &[(NOW - 10_000, 1)];

#[test]
fn scale_up_from_high_cpu_exact_status() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (pods, metrics) = pods_and_metrics(3, "500m", "500m");
    let mut inp = Inputs::new(&h, 3, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    assert!(out.rescale);
    assert_eq!(out.desired_replicas, 6);
    assert!(out.status_changed);
    assert_eq!(out.error, None);
    assert_eq!(
        out.events,
        vec![ev(
            "Normal",
            "SuccessfulRescale",
            "New size: 6; reason: cpu resource utilization (percentage of request) above target"
        )]
    );
    let t = ts(NOW);
    assert_eq!(t, "2026-11-22T01:00:00Z");
    assert_eq!(
        out.status,
        json!({
            "lastScaleTime": t,
            "currentReplicas": 3,
            "desiredReplicas": 6,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 100, "averageValue": "500m"}}}],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": t,
                 "reason": "SucceededRescale", "message": "the HPA controller was able to update the target scale to 6"},
                {"type": "ScalingActive", "status": "True", "lastTransitionTime": t,
                 "reason": "ValidMetricFound",
                 "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
                {"type": "ScalingLimited", "status": "False", "lastTransitionTime": t,
                 "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"}
            ]
        })
    );
    // the initial recommendation (current replicas) plus the new one
    assert_eq!(out.recommendations, vec![(NOW, 3), (NOW, 6)]);
    // no behavior: scale events are not remembered
    assert!(out.scale_events.is_empty());
}

#[test]
fn legacy_scale_up_limit_is_double_or_four() {
    let h = hpa(Some(1), 100, cpu_util(10), None);
    let (pods, metrics) = pods_and_metrics(3, "500m", "500m");
    let mut inp = Inputs::new(&h, 3, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    // 1000% of a 10% target -> 30 wanted, limited to max(2*3, 4) = 6
    assert_eq!(out.desired_replicas, 6);
    let c = cond(&out.status, "ScalingLimited");
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "ScaleUpLimit");
    assert_eq!(
        c["message"],
        "the desired replica count is increasing faster than the maximum scale rate"
    );
}

#[test]
fn scale_down_held_by_stabilization_then_applied() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (pods, metrics) = pods_and_metrics(4, "1", "100m"); // 10% of request
    let mut inp = Inputs::new(&h, 4, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let recs = [(NOW - 100, 4)];
    inp.recommendations = &recs;
    let out = reconcile(&inp);
    assert!(!out.rescale);
    assert_eq!(out.desired_replicas, 4);
    assert_eq!(out.status["desiredReplicas"], 4);
    let c = cond(&out.status, "AbleToScale");
    assert_eq!(c["reason"], "ScaleDownStabilized");
    assert_eq!(
        c["message"],
        "recent recommendations were higher than current one, applying the highest recent recommendation"
    );
    assert!(out.events.is_empty());
    assert_eq!(out.recommendations, vec![(NOW - 100, 4), (NOW, 1)]);

    // 250s later the sample at NOW-100 is older than 300s and is replaced.
    let later = NOW + 250;
    let mut inp2 = Inputs::new(&h, 4, later);
    inp2.pods = &pods;
    inp2.pod_metrics = Some(&metrics);
    inp2.recommendations = &out.recommendations;
    let out2 = reconcile(&inp2);
    assert!(out2.rescale);
    assert_eq!(out2.desired_replicas, 1);
    assert_eq!(
        out2.events,
        vec![ev(
            "Normal",
            "SuccessfulRescale",
            "New size: 1; reason: All metrics below target"
        )]
    );
    assert_eq!(out2.recommendations, vec![(later, 1), (NOW, 1)]);
    assert_eq!(out2.status["lastScaleTime"], ts(later));
}

#[test]
fn behavior_scale_down_window_respected() {
    let b = json!({"scaleDown": {"stabilizationWindowSeconds": 60}});
    let h = hpa(Some(1), 10, cpu_util(50), Some(b));
    let (pods, metrics) = pods_and_metrics(4, "1", "100m");
    let recs = [(NOW - 30, 4)];
    let mut inp = Inputs::new(&h, 4, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    inp.recommendations = &recs;
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 4);
    assert_eq!(
        cond(&out.status, "AbleToScale")["reason"],
        "ScaleDownStabilized"
    );

    let recs2 = [(NOW - 61, 4)];
    inp.recommendations = &recs2;
    let out = reconcile(&inp);
    // Percent 100 / 15s allows going straight to 1.
    assert_eq!(out.desired_replicas, 1);
    assert_eq!(out.recommendations, vec![(NOW, 1)]);
    assert_eq!(
        out.scale_events,
        vec![ScaleEvent {
            timestamp: NOW,
            replica_change: 3,
            scale_up: false,
            outdated: false
        }]
    );
}

#[test]
fn tolerance_band_keeps_replicas() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    // 540m of 1000m = 54% vs 50% => ratio 1.08, inside 10% tolerance
    let (pods, metrics) = pods_and_metrics(4, "1", "540m");
    let mut inp = Inputs::new(&h, 4, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    inp.recommendations = OLD_RECS;
    let out = reconcile(&inp);
    assert!(!out.rescale);
    assert_eq!(out.desired_replicas, 4);
    assert!(out.events.is_empty());
    let c = cond(&out.status, "AbleToScale");
    assert_eq!(c["reason"], "ReadyForNewScale");
    assert_eq!(c["message"], "recommended size matches current size");
    assert_eq!(
        out.status["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        54
    );

    // 560m => 56% => ratio 1.12: outside tolerance => ceil(1.12*4) = 5
    let (pods, metrics) = pods_and_metrics(4, "1", "560m");
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 5);
}

#[test]
fn missing_metrics_assumed_full_request_on_scale_down() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (pods, mut metrics) = pods_and_metrics(4, "1", "100m");
    metrics.pop(); // web-3 has no metrics
    let mut inp = Inputs::new(&h, 4, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    inp.recommendations = OLD_RECS;
    let out = reconcile(&inp);
    // (300m + 1000m) / 4000m = 32% => 0.64 * 4 => 3 (not 1)
    assert_eq!(out.desired_replicas, 3);
    // reported utilization uses the pods with metrics only
    assert_eq!(
        out.status["currentMetrics"][0]["resource"]["current"],
        json!({"averageUtilization": 10, "averageValue": "100m"})
    );
}

#[test]
fn missing_and_unready_pods_count_zero_on_scale_up() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (mut pods, mut metrics) = pods_and_metrics(3, "1", "600m"); // 60% => 1.2
    // unready: never became ready since start (start within init period, Ready=False)
    let mut unready = pod("web-u", "1", "256Mi");
    unready["status"]["startTime"] = json!(ts(NOW - 60));
    unready["status"]["conditions"][0]["status"] = json!("False");
    unready["status"]["conditions"][0]["lastTransitionTime"] = json!(ts(NOW - 60));
    pods.push(unready);
    metrics.push(pm("web-u", "900m", "1Mi"));
    // pending pod: unready as well
    let mut pending = pod("web-p", "1", "256Mi");
    pending["status"]["phase"] = json!("Pending");
    pods.push(pending);
    let mut inp = Inputs::new(&h, 5, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    inp.recommendations = OLD_RECS;
    let out = reconcile(&inp);
    // 1800m / 5000m = 36% < target => direction flips => keep 5
    assert_eq!(out.desired_replicas, 5);
    assert!(!out.rescale);
    assert_eq!(
        out.status["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        60
    );

    // Same with missing metrics instead of unready pods.
    let (mut pods, metrics) = pods_and_metrics(3, "1", "600m");
    pods.push(pod("web-m1", "1", "256Mi"));
    pods.push(pod("web-m2", "1", "256Mi"));
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 5);

    // Without the extra pods, 3 pods at 1.2 scale to ceil(3.6) = 4.
    let (pods, metrics) = pods_and_metrics(3, "1", "600m");
    inp.current_replicas = 3;
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    assert_eq!(reconcile(&inp).desired_replicas, 4);
}

#[test]
fn cpu_initialization_window_and_ignored_pods() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (mut pods, mut metrics) = pods_and_metrics(2, "1", "1"); // 100% => 2.0
    // Ready recently: sample does not cover a full window since the transition.
    let mut young = pod("web-young", "1", "256Mi");
    young["status"]["startTime"] = json!(ts(NOW - 60));
    young["status"]["conditions"][0]["lastTransitionTime"] = json!(ts(NOW - 20));
    pods.push(young);
    metrics.push(pm("web-young", "1", "1Mi")); // timestamp NOW-10 < NOW-20+30
    // Deleted and failed pods are ignored entirely (their metrics too).
    let mut deleted = pod("web-del", "1", "256Mi");
    deleted["metadata"]["deletionTimestamp"] = json!(ts(NOW - 5));
    pods.push(deleted);
    metrics.push(pm("web-del", "5", "1Mi"));
    let mut failed = pod("web-failed", "1", "256Mi");
    failed["status"]["phase"] = json!("Failed");
    pods.push(failed);
    metrics.push(pm("web-failed", "5", "1Mi"));
    let mut inp = Inputs::new(&h, 3, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    inp.recommendations = OLD_RECS;
    let out = reconcile(&inp);
    // ready: 2 pods at 100% ; unready young pod counts 0 => 2000/3000 = 66% => 1.32 => ceil(3.96) = 4
    assert_eq!(out.desired_replicas, 4);
    assert_eq!(
        out.status["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        100
    );
}

#[test]
fn missing_request_error() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (mut pods, metrics) = pods_and_metrics(2, "1", "1");
    pods[1]["spec"]["containers"][0]["resources"] = json!({"requests": {"memory": "1Gi"}});
    let old_status = json!({
        "currentReplicas": 2, "desiredReplicas": 2,
        "currentMetrics": null,
        "conditions": [{"type": "ScalingActive", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": "ValidMetricFound", "message": "x"}]
    });
    let mut h = h;
    h["status"] = old_status;
    let mut inp = Inputs::new(&h, 2, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    assert!(!out.rescale);
    assert_eq!(out.desired_replicas, 2);
    let inner =
        "failed to get cpu utilization: missing request for cpu in container app of Pod web-1";
    let outer = format!(
        "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: {inner}"
    );
    assert_eq!(
        out.events,
        vec![
            ev("Warning", "FailedGetResourceMetric", inner),
            ev("Warning", "FailedComputeMetricsReplicas", &outer),
        ]
    );
    assert_eq!(
        out.error.as_deref(),
        Some(
            format!(
                "failed to compute desired number of replicas based on listed metrics for Deployment/default/web: {outer}"
            )
            .as_str()
        )
    );
    let t = ts(NOW);
    assert_eq!(
        out.status,
        json!({
            "currentReplicas": 2, "desiredReplicas": 2,
            "currentMetrics": [{"type": ""}],
            "conditions": [
                {"type": "ScalingActive", "status": "False", "lastTransitionTime": t,
                 "reason": "FailedGetResourceMetric",
                 "message": format!("the HPA was unable to compute the replica count: {inner}")},
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": t,
                 "reason": "SucceededGetScale", "message": "the HPA controller was able to get the target's current scale"}
            ]
        })
    );
}

#[test]
fn metrics_api_unavailable_and_unsupported_types() {
    let metrics = json!([
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
    ]);
    let h = hpa(Some(1), 10, metrics, None);
    let (pods, _) = pods_and_metrics(2, "1", "1");
    let mut inp = Inputs::new(&h, 2, NOW);
    inp.pods = &pods;
    let out = reconcile(&inp);
    let res_err = "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)";
    let pods_err = "unable to get metric qps: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered";
    assert_eq!(
        out.events[0],
        ev("Warning", "FailedGetResourceMetric", res_err)
    );
    assert_eq!(
        out.events[1],
        ev("Warning", "FailedGetPodsMetric", pods_err)
    );
    assert_eq!(
        out.events[2],
        ev(
            "Warning",
            "FailedComputeMetricsReplicas",
            &format!(
                "invalid metrics (2 invalid out of 2), first error is: failed to get cpu resource metric value: {res_err}"
            )
        )
    );
    let c = cond(&out.status, "ScalingActive");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "FailedGetResourceMetric");
    assert_eq!(
        c["message"],
        format!("the HPA was unable to compute the replica count: {res_err}")
    );
    assert_eq!(
        out.status["currentMetrics"],
        json!([{"type": ""}, {"type": ""}])
    );
    assert!(!out.rescale);
}

#[test]
fn external_metric_error_text() {
    let metrics = json!([{"type": "External", "external": {
        "metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}},
        "target": {"type": "AverageValue", "averageValue": "30"}}}]);
    let h = hpa(Some(1), 10, metrics, None);
    let inp = Inputs::new(&h, 2, NOW);
    let out = reconcile(&inp);
    let inner = "unable to get external metric default/queue/&LabelSelector{MatchLabels:map[string]string{q: jobs,},MatchExpressions:[]LabelSelectorRequirement{},}: unable to fetch metrics from external metrics API: the server could not find the requested resource (get queue.external.metrics.k8s.io)";
    assert_eq!(
        out.events[0],
        ev("Warning", "FailedGetExternalMetric", inner)
    );
    assert_eq!(
        out.events[1].message,
        format!(
            "invalid metrics (1 invalid out of 1), first error is: failed to get queue external metric value: failed to get queue external metric: {inner}"
        )
    );
}

#[test]
fn min_max_clamping_conditions() {
    // above max
    let h = hpa(Some(2), 5, cpu_util(50), None);
    let (pods, metrics) = pods_and_metrics(4, "1", "1"); // 200% => 8
    let mut inp = Inputs::new(&h, 4, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    inp.recommendations = OLD_RECS;
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 5);
    let c = cond(&out.status, "ScalingLimited");
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "TooManyReplicas");
    assert_eq!(
        c["message"],
        "the desired replica count is more than the maximum replica count"
    );

    // below min
    let (pods, metrics) = pods_and_metrics(3, "1", "10m");
    inp.current_replicas = 3;
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 2);
    let c = cond(&out.status, "ScalingLimited");
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "TooFewReplicas");
    assert_eq!(
        c["message"],
        "the desired replica count is less than the minimum replica count"
    );
    assert_eq!(
        out.events[0].message,
        "New size: 2; reason: All metrics below target"
    );
}

#[test]
fn current_outside_min_max_rescales() {
    let h = hpa(Some(2), 5, cpu_util(50), None);
    let inp = Inputs::new(&h, 7, NOW);
    let out = reconcile(&inp);
    assert!(out.rescale);
    assert_eq!(out.desired_replicas, 5);
    assert_eq!(
        out.events,
        vec![ev(
            "Normal",
            "SuccessfulRescale",
            "New size: 5; reason: Current number of replicas above Spec.MaxReplicas"
        )]
    );
    assert_eq!(out.status["currentMetrics"], Value::Null);
    assert!(cond(&out.status, "ScalingActive").is_null());

    let inp = Inputs::new(&h, 1, NOW);
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 2);
    assert_eq!(
        out.events[0].message,
        "New size: 2; reason: Current number of replicas below Spec.MinReplicas"
    );
    assert_eq!(
        cond(&out.status, "AbleToScale")["message"],
        "the HPA controller was able to update the target scale to 2"
    );
}

#[test]
fn scale_up_rate_limit_with_behavior() {
    let h = hpa(Some(1), 50, cpu_util(10), Some(json!({})));
    let (pods, metrics) = pods_and_metrics(2, "1", "1"); // 1000% of 10% => 20
    let mut inp = Inputs::new(&h, 2, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    // Pods policy: 2 + 4 = 6; Percent: 2 * 2 = 4; Max => 6
    assert_eq!(out.desired_replicas, 6);
    let c = cond(&out.status, "ScalingLimited");
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "ScaleUpLimit");
    assert_eq!(
        out.scale_events,
        vec![ScaleEvent {
            timestamp: NOW,
            replica_change: 4,
            scale_up: true,
            outdated: false
        }]
    );

    // 5s later: the 4 pods added within the last 15s count => limit stays 6.
    let (pods6, metrics6) = pods_and_metrics(6, "1", "1");
    let mut inp2 = Inputs::new(&h, 6, NOW + 5);
    inp2.pods = &pods6;
    inp2.pod_metrics = Some(&metrics6);
    inp2.recommendations = &out.recommendations;
    inp2.scale_events = &out.scale_events;
    let out2 = reconcile(&inp2);
    assert!(!out2.rescale);
    assert_eq!(out2.desired_replicas, 6);
    assert_eq!(
        cond(&out2.status, "ScalingLimited")["reason"],
        "ScaleUpLimit"
    );

    // 16s after the first scale-up: Pods 6+4 = 10, Percent 6*2 = 12 => 12.
    let mut inp3 = Inputs::new(&h, 6, NOW + 16);
    inp3.pods = &pods6;
    inp3.pod_metrics = Some(&metrics6);
    inp3.recommendations = &out2.recommendations;
    inp3.scale_events = &out2.scale_events;
    let out3 = reconcile(&inp3);
    assert_eq!(out3.desired_replicas, 12);
    // the first event is outdated (older than 15s) and gets replaced
    assert_eq!(
        out3.scale_events,
        vec![ScaleEvent {
            timestamp: NOW + 16,
            replica_change: 6,
            scale_up: true,
            outdated: false
        }]
    );
}

#[test]
fn scaling_disabled_at_zero_replicas() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let inp = Inputs::new(&h, 0, NOW);
    let out = reconcile(&inp);
    assert!(!out.rescale);
    assert_eq!(out.desired_replicas, 0);
    assert!(out.events.is_empty());
    let t = ts(NOW);
    assert_eq!(
        out.status,
        json!({
            "desiredReplicas": 0,
            "currentMetrics": null,
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": t,
                 "reason": "SucceededGetScale", "message": "the HPA controller was able to get the target's current scale"},
                {"type": "ScalingActive", "status": "False", "lastTransitionTime": t,
                 "reason": "ScalingDisabled", "message": "scaling is disabled since the replica count of the target is zero"}
            ]
        })
    );
    // minReplicas 0 keeps scaling active (metrics are evaluated)
    let h0 = hpa(Some(0), 10, cpu_util(50), None);
    let out0 = reconcile(&Inputs::new(&h0, 0, NOW));
    assert_eq!(
        cond(&out0.status, "ScalingActive")["reason"],
        "FailedGetResourceMetric"
    );
}

#[test]
fn average_value_memory_target() {
    let metrics = json!([{"type": "Resource", "resource": {"name": "memory",
        "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]);
    let h = hpa(Some(1), 10, metrics, None);
    let pods: Vec<Value> = (0..2)
        .map(|i| pod(&format!("m-{i}"), "1", "256Mi"))
        .collect();
    let pmetrics: Vec<Value> = (0..2)
        .map(|i| pm(&format!("m-{i}"), "1", "200Mi"))
        .collect();
    let mut inp = Inputs::new(&h, 2, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&pmetrics);
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 4);
    assert_eq!(
        out.status["currentMetrics"],
        json!([{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "209715200"}}}])
    );
    assert_eq!(
        out.events[0].message,
        "New size: 4; reason: memory resource above target"
    );
    assert_eq!(
        cond(&out.status, "ScalingActive")["message"],
        "the HPA was able to successfully calculate a replica count from memory resource"
    );
}

#[test]
fn container_resource_and_max_over_metrics() {
    let metrics = json!([
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}}},
        {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
            "target": {"type": "Utilization", "averageUtilization": 50}}}
    ]);
    let h = hpa(Some(1), 10, metrics, None);
    let (pods, pmetrics) = pods_and_metrics(2, "500m", "750m"); // 150% => 3x
    let mut inp = Inputs::new(&h, 2, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&pmetrics);
    let out = reconcile(&inp);
    assert_eq!(out.desired_replicas, 4); // legacy limit max(2*2,4) = 4 (wanted 6)
    assert_eq!(
        out.status["currentMetrics"][1],
        json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
            "current": {"averageUtilization": 150, "averageValue": "750m"}}})
    );
    assert_eq!(
        out.events[0].message,
        "New size: 4; reason: cpu container resource utilization (percentage of request) above target"
    );
}

#[test]
fn condition_transition_time_kept_when_status_unchanged() {
    let mut h = hpa(Some(1), 10, cpu_util(50), None);
    let old = "2026-01-01T00:00:00Z";
    h["status"] = json!({
        "currentReplicas": 4, "desiredReplicas": 4,
        "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": 50, "averageValue": "500m"}}}],
        "conditions": [
            {"type": "AbleToScale", "status": "True", "lastTransitionTime": old,
             "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
            {"type": "ScalingActive", "status": "True", "lastTransitionTime": old,
             "reason": "ValidMetricFound",
             "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
            {"type": "ScalingLimited", "status": "False", "lastTransitionTime": old,
             "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"}
        ]
    });
    let (pods, metrics) = pods_and_metrics(4, "1", "500m");
    let mut inp = Inputs::new(&h, 4, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    inp.recommendations = OLD_RECS;
    let out = reconcile(&inp);
    assert!(!out.status_changed);
    assert_eq!(out.status, h["status"]);
}

#[test]
fn rescale_failure_path() {
    let h = hpa(Some(1), 10, cpu_util(50), Some(json!({})));
    let (pods, metrics) = pods_and_metrics(3, "500m", "500m");
    let mut inp = Inputs::new(&h, 3, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    assert!(out.rescale);
    assert_eq!(out.scale_events.len(), 1);
    let failed = rescale_failed(&inp, &out, "conflict");
    assert!(!failed.rescale);
    assert!(failed.scale_events.is_empty());
    assert_eq!(
        failed.events,
        vec![ev(
            "Warning",
            "FailedRescale",
            "New size: 6; reason: cpu resource utilization (percentage of request) above target; error: conflict"
        )]
    );
    let c = cond(&failed.status, "AbleToScale");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "FailedUpdateScale");
    assert_eq!(
        c["message"],
        "the HPA controller was unable to update the target scale: conflict"
    );
    assert_eq!(failed.status["desiredReplicas"], 0);
    assert!(failed.status.get("lastScaleTime").is_none());
}

#[test]
fn failed_get_scale_sets_condition() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (status, event) = failed_get_scale(&h, NOW, "deployments.apps \"web\" not found");
    assert_eq!(
        event,
        ev(
            "Warning",
            "FailedGetScale",
            "deployments.apps \"web\" not found"
        )
    );
    assert_eq!(
        cond(&status, "AbleToScale")["message"],
        "the HPA controller was unable to get the target's current scale: deployments.apps \"web\" not found"
    );
}

#[test]
fn spec_defaulting() {
    let d = default_spec(&json!({"maxReplicas": 5}));
    assert_eq!(
        d,
        json!({
            "maxReplicas": 5,
            "minReplicas": 1,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]
        })
    );
    let d = default_spec(&json!({"maxReplicas": 5, "minReplicas": 2,
        "behavior": {"scaleDown": {"selectPolicy": "Min"}}}));
    assert_eq!(d["minReplicas"], 2);
    assert_eq!(
        d["behavior"],
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"selectPolicy": "Min", "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15}]}
        })
    );
}

#[test]
fn malformed_input_does_not_panic() {
    let h = json!({"spec": {"metrics": "nope", "maxReplicas": "x"}, "status": 7});
    let pods = vec![json!(null), json!({"metadata": 1})];
    let metrics = vec![json!({"containers": 5}), json!("x")];
    let mut inp = Inputs::new(&h, 3, NOW);
    inp.pods = &pods;
    inp.pod_metrics = Some(&metrics);
    let out = reconcile(&inp);
    // maxReplicas reads as absent (0): current above max => rescale to 0
    assert_eq!(out.desired_replicas, 0);
}

#[test]
fn an_unchanged_status_is_not_rewritten_when_nulls_were_dropped() {
    // scaled to zero: currentMetrics is null in the new status, absent in the typed copy
    let mut h = hpa(Some(1), 5, json!([]), None);
    let first = reconcile(&Inputs::new(&h, 0, NOW));
    assert!(first.status_changed);
    assert!(
        first
            .status
            .get("currentMetrics")
            .is_some_and(Value::is_null)
    );
    let mut stored = first.status.clone();
    if let Some(m) = stored.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    h["status"] = stored;
    let again = reconcile(&Inputs::new(&h, 0, NOW + 15));
    assert!(!again.status_changed, "{}", again.status);
    assert!(differs(&json!({"a": 1}), &json!({"a": 2, "b": null})));
    assert!(!differs(&json!({"a": 1}), &json!({"a": 1, "b": null})));
}

#[test]
fn unusable_selectors_stop_scaling_with_upstream_reasons() {
    let h = hpa(Some(1), 10, cpu_util(50), None);
    let (pods, metrics) = pods_and_metrics(2, "1", "1");
    let cases = [
        (
            "",
            None,
            "SelectorRequired",
            "InvalidSelector",
            "selector is required",
            "the HPA target's scale is missing a selector".to_string(),
        ),
        (
            "app in (web",
            Some(SelectorProblem::Invalid("unclosed (".into())),
            "InvalidSelector",
            "InvalidSelector",
            "couldn't convert selector into a corresponding internal selector object: unclosed (",
            "couldn't convert selector into a corresponding internal selector object: unclosed ("
                .to_string(),
        ),
        (
            "app=web",
            Some(SelectorProblem::Ambiguous(vec![
                "default/other".into(),
                "default/web".into(),
            ])),
            "AmbiguousSelector",
            "AmbiguousSelector",
            "pods by selector app=web are controlled by multiple HPAs: [default/other default/web]",
            "pods by selector app=web are controlled by multiple HPAs: [default/other default/web]"
                .to_string(),
        ),
    ];
    for (selector, problem, event, reason, msg, condition) in cases {
        let mut inp = Inputs::new(&h, 2, NOW);
        inp.selector = Some(selector);
        inp.selector_problem = problem;
        inp.pods = &pods;
        inp.pod_metrics = Some(&metrics);
        let out = reconcile(&inp);
        assert!(!out.rescale, "{selector}");
        assert_eq!(out.desired_replicas, 2);
        assert_eq!(out.events[0], ev("Warning", event, msg));
        assert_eq!(out.events[1].reason, "FailedComputeMetricsReplicas");
        let active = cond(&out.status, "ScalingActive");
        assert_eq!(active["status"], "False");
        assert_eq!(active["reason"], reason);
        assert_eq!(active["message"], condition.as_str());
    }
}
