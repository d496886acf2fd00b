//! `batch` rules through the public API, with upstream's exact messages.

use crate::{default, validate_create, validate_update};
use machinery::FieldError;
use serde_json::{Value, json};

fn msgs(e: &[FieldError]) -> Vec<String> {
    e.iter().map(FieldError::message).collect()
}

fn job(restart: &str) -> Value {
    json!({"metadata": {"name": "pi", "namespace": "d", "uid": "u-1"}, "spec": {"template": {"spec": {
        "containers": [{"name": "pi", "image": "perl"}], "restartPolicy": restart}}}})
}

#[test]
fn job_defaults_and_generated_selector() {
    let mut j = job("Never");
    default("batch", "v1", "jobs", &mut j);
    let s = &j["spec"];
    assert_eq!(s["completions"], 1);
    assert_eq!(s["parallelism"], 1);
    assert_eq!(s["backoffLimit"], 6);
    assert_eq!(s["completionMode"], "NonIndexed");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(
        s["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    let labels = &s["template"]["metadata"]["labels"];
    assert_eq!(labels["job-name"], "pi");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
    assert_eq!(labels["controller-uid"], "u-1");
    assert_eq!(j["metadata"]["labels"], labels.clone());
    assert_eq!(s["template"]["spec"]["terminationGracePeriodSeconds"], 30);
    assert!(validate_create("batch", "v1", "jobs", &j).is_empty());
    let mut parallel = job("Never");
    parallel["spec"]["parallelism"] = json!(3);
    default("batch", "v1", "jobs", &mut parallel);
    assert!(parallel["spec"].get("completions").is_none());
}

#[test]
fn job_restart_policy() {
    let mut j = job("Always");
    default("batch", "v1", "jobs", &mut j);
    assert_eq!(
        msgs(&validate_create("batch", "v1", "jobs", &j)),
        vec![
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        ]
    );
    let mut neg = job("OnFailure");
    neg["spec"]["backoffLimit"] = json!(-1);
    default("batch", "v1", "jobs", &mut neg);
    assert_eq!(
        msgs(&validate_create("batch", "v1", "jobs", &neg)),
        vec!["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"]
    );
}

#[test]
fn job_template_is_immutable() {
    let mut old = job("Never");
    default("batch", "v1", "jobs", &mut old);
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
    let m = msgs(&validate_update("batch", "v1", "jobs", &new, &old));
    assert_eq!(m.len(), 1);
    assert!(m[0].starts_with("spec.template: Invalid value: {"), "{m:?}");
    assert!(m[0].ends_with("}: field is immutable"));
    let mut suspended = old.clone();
    suspended["spec"]["suspend"] = json!(true);
    let mut moved = suspended.clone();
    moved["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
    assert!(validate_update("batch", "v1", "jobs", &moved, &suspended).is_empty());
}

fn cronjob(schedule: &str) -> Value {
    json!({"metadata": {"name": "nightly", "namespace": "d"}, "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}})
}

#[test]
fn cronjob_defaults_and_schedule() {
    let mut c = cronjob("0 3 * * *");
    default("batch", "v1", "cronjobs", &mut c);
    let s = &c["spec"];
    assert_eq!(s["concurrencyPolicy"], "Allow");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["successfulJobsHistoryLimit"], 3);
    assert_eq!(s["failedJobsHistoryLimit"], 1);
    assert_eq!(
        s["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
    assert!(s["jobTemplate"]["spec"].get("backoffLimit").is_none());
    assert!(validate_create("batch", "v1", "cronjobs", &c).is_empty());
    let mut bad = cronjob("61 * * * *");
    default("batch", "v1", "cronjobs", &mut bad);
    assert_eq!(
        msgs(&validate_create("batch", "v1", "cronjobs", &bad)),
        vec![
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
        ]
    );
    let mut tz = cronjob("TZ=UTC 0 * * * *");
    tz["spec"]["concurrencyPolicy"] = json!("Sometimes");
    default("batch", "v1", "cronjobs", &mut tz);
    assert_eq!(
        msgs(&validate_create("batch", "v1", "cronjobs", &tz)),
        vec![
            "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        ]
    );
    let mut empty = cronjob("");
    default("batch", "v1", "cronjobs", &mut empty);
    assert_eq!(
        msgs(&validate_create("batch", "v1", "cronjobs", &empty)),
        vec!["spec.schedule: Required value"]
    );
}

#[test]
fn cronjob_name_length() {
    let mut c = cronjob("@daily");
    c["metadata"]["name"] = json!("a".repeat(53));
    default("batch", "v1", "cronjobs", &mut c);
    let m = msgs(&validate_create("batch", "v1", "cronjobs", &c));
    assert_eq!(
        m,
        vec![format!(
            "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
            "a".repeat(53)
        )]
    );
}
