//! batch/v1: jobs (status, completions, duration) and cron jobs.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::core::{CONTAINERS, IMAGES, SELECTOR, deleting};
use crate::duration::human_duration;
use crate::format::{
    age, bool_ptr, condition, containers, int, label_selector, name, s, since, time,
};
use crate::{AGE, Column, NAME, Printer, col};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "jobs" => &JOBS,
        "cronjobs" => &CRON_JOBS,
        _ => return None,
    })
}

static JOBS: Printer = Printer {
    columns: JOB_COLUMNS,
    cells: job_cells,
};
const JOB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Overall state of the job (Running, Complete, Failed, ...).",
    ),
    col(
        "Completions",
        "string",
        "Succeeded pods out of the completions wanted.",
    ),
    col(
        "Duration",
        "string",
        "How long the job ran, or has been running.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn has_condition(conditions: &Value, type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| s(&c["status"]) == "True")
}

fn job_status(job: &Value) -> &'static str {
    let conditions = &job["status"]["conditions"];
    if has_condition(conditions, "Complete") {
        "Complete"
    } else if has_condition(conditions, "Failed") {
        "Failed"
    } else if deleting(job) {
        "Terminating"
    } else if has_condition(conditions, "Suspended") {
        "Suspended"
    } else if has_condition(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &job["spec"];
    let status = &job["status"];
    let succeeded = int(&status["succeeded"]);
    let completions = match spec["completions"].as_i64() {
        Some(wanted) => format!("{succeeded}/{wanted}"),
        None => match int(&spec["parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (time(&status["startTime"]), time(&status["completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), now),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let (names, images) = containers(&spec["template"]["spec"]);
    vec![
        name(job),
        Value::from(job_status(job)),
        Value::from(completions),
        Value::from(duration),
        age(job, now),
        names,
        images,
        Value::from(label_selector(&spec["selector"])),
    ]
}

static CRON_JOBS: Printer = Printer {
    columns: CRON_JOB_COLUMNS,
    cells: cron_job_cells,
};
const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "Cron schedule the jobs are started on.",
    ),
    col("Timezone", "string", "Time zone the schedule is read in."),
    col("Suspend", "boolean", "Whether new runs are suspended."),
    col("Active", "integer", "Number of jobs currently running."),
    col(
        "Last Schedule",
        "string",
        "Time since a job was last scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

fn cron_job_cells(cj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &cj["spec"];
    let status = &cj["status"];
    let last = &status["lastScheduleTime"];
    let last = if last.is_null() {
        "<none>".into()
    } else {
        since(time(last), now)
    };
    let job_spec = &spec["jobTemplate"]["spec"];
    let (names, images) = containers(&job_spec["template"]["spec"]);
    vec![
        name(cj),
        Value::from(s(&spec["schedule"])),
        Value::from(spec["timeZone"].as_str().unwrap_or("<none>")),
        Value::from(bool_ptr(&spec["suspend"])),
        Value::from(status["active"].as_array().map_or(0, Vec::len)),
        Value::from(last),
        age(cj, now),
        names,
        images,
        Value::from(label_selector(&job_spec["selector"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    fn template() -> Value {
        json!({"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}})
    }

    #[test]
    fn completed_job() {
        let job = json!({"metadata": {"name": "pi", "creationTimestamp": ago(600)},
            "spec": {"completions": 1, "parallelism": 1,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}, "template": template()},
            "status": {"succeeded": 1, "startTime": ago(600), "completionTime": ago(560),
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
        assert_eq!(
            job_cells(&job, NOW),
            vec![
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("40s"),
                json!("10m"),
                json!("pi"),
                json!("perl"),
                json!("batch.kubernetes.io/controller-uid=abc")
            ]
        );
    }

    #[test]
    fn running_and_failed_jobs() {
        let job = json!({"metadata": {"name": "work"},
            "spec": {"parallelism": 3, "template": template()},
            "status": {"succeeded": 2, "startTime": ago(200)}});
        assert_eq!(
            job_cells(&job, NOW)[1..4],
            [json!("Running"), json!("2/1 of 3"), json!("3m20s")]
        );
        let failed = json!({"metadata": {"name": "f"}, "spec": {"completions": 5},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(
            job_cells(&failed, NOW)[1..4],
            [json!("Failed"), json!("0/5"), json!("")]
        );
        let suspended = json!({"metadata": {"name": "s"},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(
            job_cells(&suspended, NOW)[1..3],
            [json!("Suspended"), json!("0/1")]
        );
    }

    #[test]
    fn cron_job() {
        let cj = json!({"metadata": {"name": "hello", "creationTimestamp": ago(7200)},
            "spec": {"schedule": "*/1 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": template()}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(30)}});
        assert_eq!(
            cron_job_cells(&cj, NOW),
            vec![
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("30s"),
                json!("120m"),
                json!("pi"),
                json!("perl"),
                json!("<none>")
            ]
        );
        let bare = json!({"metadata": {"name": "b"}, "spec": {"timeZone": "Etc/UTC"}});
        assert_eq!(
            cron_job_cells(&bare, NOW)[2..6],
            [
                json!("Etc/UTC"),
                json!("<unset>"),
                json!(0),
                json!("<none>")
            ]
        );
    }
}
