//! Pods and pod templates (core/v1): the READY/STATUS/RESTARTS summary kubectl shows,
//! including init-container progress (`Init:0/1`), waiting reasons
//! (`CrashLoopBackOff`), `Completed`, `Terminating`, and the last restart's age.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::format::{
    age, arr, boolean, condition, containers, int, labels, name, or, present, s, since, time,
};
use crate::{AGE, Column, NAME, Printer, col, wide};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    match resource {
        "pods" => Some(&PODS),
        "podtemplates" => Some(&POD_TEMPLATES),
        _ => None,
    }
}

static PODS: Printer = Printer {
    columns: POD_COLUMNS,
    cells: pod_cells,
};
const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready containers out of all containers of the pod.",
    ),
    col(
        "Status",
        "string",
        "Aggregate state of the pod's containers.",
    ),
    col(
        "Restarts",
        "string",
        "Container restarts, and how long ago the last one was.",
    ),
    AGE,
    wide("IP", "string", "Primary IP address of the pod."),
    wide("Node", "string", "Node the pod is bound to."),
    wide(
        "Nominated Node",
        "string",
        "Node nominated for the pod by preemption.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Readiness gates whose condition is true, out of all gates.",
    ),
];

static POD_TEMPLATES: Printer = Printer {
    columns: POD_TEMPLATE_COLUMNS,
    cells: pod_template_cells,
};
const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of the template's containers.",
    ),
    col("Images", "string", "Images of the template's containers."),
    col(
        "Pod Labels",
        "string",
        "Labels of the pods made from the template.",
    ),
];

fn pod_template_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let template = &obj["template"];
    let (names, images) = containers(&template["spec"]);
    vec![
        name(obj),
        names,
        images,
        Value::from(labels(&template["metadata"]["labels"])),
    ]
}

/// Table-row conditions upstream attaches to finished pods.
pub(crate) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match s(&pod["status"]["phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

fn condition_true(conditions: &Value, type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| s(&c["status"]) == "True")
}

/// Keeps the later of the current and the container's last termination time.
fn note_last_termination(latest: &mut Option<DateTime<Utc>>, status: &Value) {
    let terminated = &status["lastState"]["terminated"];
    if !present(terminated) {
        return;
    }
    if let Some(t) = time(&terminated["finishedAt"])
        && latest.is_none_or(|l| l < t)
    {
        *latest = Some(t);
    }
}

/// What the pod summary has counted so far.
struct Summary {
    reason: String,
    ready: usize,
    total: usize,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
}

fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = s(&terminated["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int(&terminated["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(&terminated["exitCode"]))
    }
}

/// Walks init containers; returns true while the pod is still initializing.
fn summarize_init(
    pod: &Value,
    sum: &mut Summary,
    sidecar: &mut (i64, Option<DateTime<Utc>>),
) -> bool {
    let init_specs = arr(&pod["spec"]["initContainers"]);
    let is_sidecar = |container: &str| {
        init_specs
            .iter()
            .any(|c| s(&c["name"]) == container && s(&c["restartPolicy"]) == "Always")
    };
    for (i, status) in arr(&pod["status"]["initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let restarts = int(&status["restartCount"]);
        sum.restarts += restarts;
        note_last_termination(&mut sum.last_restart, status);
        let restartable = is_sidecar(s(&status["name"]));
        if restartable {
            sidecar.0 += restarts;
            note_last_termination(&mut sidecar.1, status);
        }
        let state = &status["state"];
        let terminated = &state["terminated"];
        let waiting_reason = s(&state["waiting"]["reason"]);
        if present(terminated) && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if restartable && boolean(&status["started"]) {
            if boolean(&status["ready"]) {
                sum.ready += 1;
            }
            continue;
        }
        sum.reason = if present(terminated) {
            terminated_reason(terminated, "Init:")
        } else if present(&state["waiting"])
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        return true;
    }
    false
}

/// Walks app containers (last to first, so the first container's state wins).
fn summarize_containers(pod: &Value, sum: &mut Summary) {
    let mut has_running = false;
    for status in arr(&pod["status"]["containerStatuses"]).iter().rev() {
        sum.restarts += int(&status["restartCount"]);
        note_last_termination(&mut sum.last_restart, status);
        let state = &status["state"];
        let waiting = &state["waiting"];
        let terminated = &state["terminated"];
        if present(waiting) && !s(&waiting["reason"]).is_empty() {
            sum.reason = s(&waiting["reason"]).to_string();
        } else if present(terminated) {
            sum.reason = terminated_reason(terminated, "");
        } else if boolean(&status["ready"]) && present(&state["running"]) {
            has_running = true;
            sum.ready += 1;
        }
    }
    if sum.reason == "Completed" && has_running {
        let ready = condition_true(&pod["status"]["conditions"], "Ready");
        sum.reason = if ready { "Running" } else { "NotReady" }.into();
    }
}

fn summarize(pod: &Value) -> Summary {
    let status = &pod["status"];
    let phase = s(&status["phase"]);
    let mut reason = or(s(&status["reason"]), phase).to_string();
    let gated = arr(&status["conditions"])
        .iter()
        .any(|c| s(&c["type"]) == "PodScheduled" && s(&c["reason"]) == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".into();
    }
    let init_specs = arr(&pod["spec"]["initContainers"]);
    let sidecars = init_specs
        .iter()
        .filter(|c| s(&c["restartPolicy"]) == "Always")
        .count();
    let mut sum = Summary {
        reason,
        ready: 0,
        total: arr(&pod["spec"]["containers"]).len() + sidecars,
        restarts: 0,
        last_restart: None,
    };
    let mut sidecar = (0, None);
    let initializing = summarize_init(pod, &mut sum, &mut sidecar);
    if !initializing || condition_true(&status["conditions"], "Initialized") {
        (sum.restarts, sum.last_restart) = sidecar;
        summarize_containers(pod, &mut sum);
    }
    let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
    if deleting && s(&status["reason"]) == "NodeLost" {
        sum.reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        sum.reason = "Terminating".into();
    }
    sum
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let sum = summarize(pod);
    let restarts = match sum.last_restart {
        Some(t) if sum.restarts != 0 => format!("{} ({} ago)", sum.restarts, since(Some(t), now)),
        _ => sum.restarts.to_string(),
    };
    let status = &pod["status"];
    let ip = match s(&status["podIP"]) {
        "" => s(&arr(&status["podIPs"]).first().unwrap_or(&Value::Null)["ip"]),
        ip => ip,
    };
    let gates = arr(&pod["spec"]["readinessGates"]);
    let readiness = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| condition_true(&status["conditions"], s(&g["conditionType"])))
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        name(pod),
        Value::from(format!("{}/{}", sum.ready, sum.total)),
        Value::from(sum.reason),
        Value::from(restarts),
        age(pod, now),
        Value::from(or(ip, "<none>")),
        Value::from(or(s(&pod["spec"]["nodeName"]), "<none>")),
        Value::from(or(s(&status["nominatedNodeName"]), "<none>")),
        Value::from(readiness),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ago(3600 * 5)},
            "spec": spec, "status": status,
        })
    }

    fn running(name: &str, restarts: i64) -> Value {
        json!({"name": name, "ready": true, "restartCount": restarts, "started": true,
               "state": {"running": {"startedAt": ago(100)}}})
    }

    fn cells(p: &Value) -> Vec<Value> {
        pod_cells(p, NOW)
    }

    #[test]
    fn running_pod_with_restarts() {
        let mut status = running("app", 2);
        status["lastState"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}});
        let p = pod(
            json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}]}),
            json!({"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [status]}),
        );
        assert_eq!(
            cells(&p),
            vec![
                json!("web-1"),
                json!("1/1"),
                json!("Running"),
                json!("2 (5m ago)"),
                json!("5h"),
                json!("10.244.0.5"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        assert_eq!(row_conditions(&p), None);
    }

    #[test]
    fn pending_pod_is_container_creating() {
        let p = pod(
            json!({"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]}),
            json!({"phase": "Pending", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}},
                {"name": "b", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}),
        );
        let c = cells(&p);
        assert_eq!(
            c[1..4],
            [json!("0/2"), json!("ContainerCreating"), json!("0")]
        );
        assert_eq!(c[5], json!("<none>"));
    }

    #[test]
    fn crash_loop_back_off() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(45)}}
            }]}),
        );
        assert_eq!(
            cells(&p)[1..4],
            [
                json!("0/1"),
                json!("CrashLoopBackOff"),
                json!("7 (45s ago)")
            ]
        );
    }

    #[test]
    fn completed_pod() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            }]}),
        );
        assert_eq!(
            cells(&p)[1..4],
            [json!("0/1"), json!("Completed"), json!("0")]
        );
        let conditions = row_conditions(&p).unwrap_or_default();
        assert_eq!(conditions[0]["reason"], "Succeeded");
    }

    #[test]
    fn terminated_without_reason_shows_exit_code_or_signal() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "containerStatuses": [{
                "name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}
            }]}),
        );
        assert_eq!(cells(&p)[2], json!("Signal:9"));
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 3}}}]}),
        );
        assert_eq!(cells(&p)[2], json!("ExitCode:3"));
    }

    #[test]
    fn init_containers_in_progress() {
        let spec = json!({"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]});
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending",
                   "initContainerStatuses": [{"name": "init", "restartCount": 0, "state": {"running": {}}}],
                   "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(
            cells(&p)[1..4],
            [json!("0/1"), json!("Init:0/1"), json!("0")]
        );

        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}),
        );
        assert_eq!(
            cells(&p)[2..4],
            [json!("Init:CrashLoopBackOff"), json!("3")]
        );

        let p = pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init", "state": {"terminated": {"exitCode": 2}}}
            ]}),
        );
        assert_eq!(cells(&p)[2], json!("Init:ExitCode:2"));
    }

    #[test]
    fn sidecar_counts_toward_ready_and_total() {
        let p = pod(
            json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Running",
                   "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                   "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                                              "state": {"running": {}}}],
                   "containerStatuses": [running("app", 0)]}),
        );
        assert_eq!(
            cells(&p)[1..4],
            [json!("2/2"), json!("Running"), json!("1")]
        );
    }

    #[test]
    fn deleting_pod_is_terminating() {
        let mut p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [running("app", 0)]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cells(&p)[2], json!("Terminating"));
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells(&p)[2], json!("Unknown"));
    }

    #[test]
    fn scheduling_gated_and_readiness_gates() {
        let p = pod(
            json!({"containers": [{"name": "app"}], "readinessGates": [{"conditionType": "lb/ready"}, {"conditionType": "x"}]}),
            json!({"phase": "Pending", "nominatedNodeName": "node-2", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                {"type": "lb/ready", "status": "True"}
            ]}),
        );
        let c = cells(&p);
        assert_eq!(c[2], json!("SchedulingGated"));
        assert_eq!(c[7..9], [json!("node-2"), json!("1/2")]);
    }

    #[test]
    fn empty_pod_does_not_panic() {
        let c = pod_cells(&json!({}), NOW);
        assert_eq!(
            c[1..5],
            [json!("0/0"), json!(""), json!("0"), json!("<unknown>")]
        );
        assert_eq!(c.len(), POD_COLUMNS.len());
    }

    #[test]
    fn pod_template() {
        let t = json!({"metadata": {"name": "tpl"}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "busybox"}]}
        }});
        assert_eq!(
            pod_template_cells(&t, NOW),
            vec![
                json!("tpl"),
                json!("a,b"),
                json!("nginx:1,busybox"),
                json!("app=web")
            ]
        );
    }
}
