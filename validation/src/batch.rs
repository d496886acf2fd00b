//! The `batch` group: Jobs and CronJobs, as upstream's `pkg/apis/batch/v1/defaults.go`,
//! the Job strategy's selector generation, and `pkg/apis/batch/validation`.

use crate::core::{default_pod_template, validate_pod_template};
use crate::cron;
use crate::meta::Scope::Namespaced;
use crate::util::{
    Errs, child, get_bool, get_int, get_str, has, immutable, nonnegative, obj, one_of,
    selector_matches, semantic_eq, set_default, set_default_str, str_or_empty,
    validate_label_selector, with_mut,
};
use crate::{Strategy, no_update_checks};
use machinery::FieldError;
use machinery::names::name_is_dns_subdomain;
use serde_json::{Map, Value, json};

/// Upstream's `maxParallelismForIndexedJob`.
const MAX_PARALLELISM_INDEXED: i64 = 100_000;
/// Upstream's `DNS1035LabelMaxLength - 11`: room for the `-<timestamp>` job suffix.
const MAX_CRONJOB_NAME: usize = 52;

pub(crate) fn strategy(resource: &str) -> Option<Strategy> {
    let s = |default, validate, validate_update| Strategy {
        name: name_is_dns_subdomain,
        scope: Namespaced,
        default,
        validate,
        validate_update,
    };
    Some(match resource {
        "jobs" => s(default_job, validate_job, validate_job_update),
        "cronjobs" => s(default_cronjob, validate_cronjob, no_update_checks),
        _ => return None,
    })
}

/// `SetDefaults_Job`, plus the selector and labels the Job strategy generates once the
/// object has a uid (unless `manualSelector` is true).
fn default_job(job: &mut Value) {
    generate_selector(job);
    with_mut(job, "/spec", |s| {
        if !has(s, "completions") && !has(s, "parallelism") {
            set_default(s, "completions", json!(1));
        }
        set_default(s, "parallelism", json!(1));
        let backoff = if has(s, "backoffLimitPerIndex") {
            i64::from(i32::MAX)
        } else {
            6
        };
        set_default(s, "backoffLimit", json!(backoff));
        set_default_str(s, "completionMode", "NonIndexed");
        set_default(s, "suspend", json!(false));
        let replacement = if has(s, "podFailurePolicy") {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        set_default_str(s, "podReplacementPolicy", replacement);
        if let Some(rules) = s
            .pointer_mut("/podFailurePolicy/rules")
            .and_then(Value::as_array_mut)
        {
            for rule in rules {
                crate::util::for_each_mut(rule, "onPodConditions", |c| {
                    set_default_str(c, "status", "True")
                });
            }
        }
        with_mut(s, "/template", default_pod_template);
    });
    let labels = job
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = labels {
        let empty = job
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if empty {
            with_mut(job, "/metadata", |m| {
                if let Some(m) = m.as_object_mut() {
                    m.insert("labels".into(), labels);
                }
            });
        }
    }
}

fn generate_selector(job: &mut Value) {
    let uid = job
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if uid.is_empty() || job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true)
    {
        return;
    }
    with_mut(job, "/spec", |s| {
        set_default(s, "template", json!({}));
        with_mut(s, "/template", |t| {
            set_default(t, "metadata", json!({}));
            with_mut(t, "/metadata", |m| {
                set_default(m, "labels", json!({}));
                if let Some(l) = m.get_mut("labels").and_then(Value::as_object_mut) {
                    for k in ["job-name", "batch.kubernetes.io/job-name"] {
                        l.entry(k).or_insert_with(|| json!(name));
                    }
                    for k in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
                        l.entry(k).or_insert_with(|| json!(uid));
                    }
                }
            });
        });
        set_default(s, "selector", json!({}));
        with_mut(s, "/selector", |sel| {
            set_default(sel, "matchLabels", json!({}));
            if let Some(ml) = sel.get_mut("matchLabels").and_then(Value::as_object_mut) {
                ml.entry("batch.kubernetes.io/controller-uid")
                    .or_insert_with(|| json!(uid));
            }
        });
    });
}

/// `validateJobSpec`: what Jobs and CronJob job templates share.
fn validate_job_spec(s: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        errs.extend(nonnegative(s, f, path));
    }
    if has(s, "backoffLimitPerIndex") {
        errs.extend(nonnegative(s, "backoffLimitPerIndex", path));
        if get_str(s, "completionMode") != Some("Indexed") {
            errs.push(FieldError::invalid(
                child(path, "backoffLimitPerIndex"),
                s["backoffLimitPerIndex"].clone(),
                "requires indexed completion mode",
            ));
        }
    }
    errs.extend(one_of(
        s,
        "completionMode",
        path,
        &["NonIndexed", "Indexed"],
        false,
    ));
    if get_str(s, "completionMode") == Some("Indexed") {
        if !has(s, "completions") {
            errs.push(FieldError::required(
                child(path, "completions"),
                "when completion mode is Indexed",
            ));
        }
        if let Some(p) = get_int(s, "parallelism").filter(|p| *p > MAX_PARALLELISM_INDEXED) {
            errs.push(FieldError::invalid(
                child(path, "parallelism"),
                json!(p),
                format!("must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"),
            ));
        }
    }
    errs.extend(one_of(
        s,
        "podReplacementPolicy",
        path,
        &["TerminatingOrFailed", "Failed"],
        false,
    ));
    let template = s.get("template").unwrap_or(&Value::Null);
    let tpath = child(path, "template");
    let rp = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    let rp_path = child(&tpath, "spec.restartPolicy");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            &rp_path,
            json!(rp),
            &["OnFailure", "Never"],
        ));
    } else if has(s, "podFailurePolicy") && rp != "Never" {
        errs.push(FieldError::invalid(
            &rp_path,
            json!(rp),
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs.extend(validate_pod_template(template, &tpath));
    errs
}

fn validate_job(job: &Value) -> Errs {
    let s = job.get("spec").unwrap_or(&Value::Null);
    let mut errs = Errs::new();
    let manual = get_bool(s, "manualSelector") == Some(true);
    match s.get("selector").filter(|v| !v.is_null()) {
        // Without a manual selector the server generates one once the uid is known.
        None if !manual => {}
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            errs.extend(validate_label_selector(sel, "spec.selector"));
            let labels = s
                .pointer("/template/metadata/labels")
                .and_then(Value::as_object);
            if selector_matches(sel, labels) == Some(false) {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    labels.map_or(Value::Null, |l| Value::Object(l.clone())),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    errs.extend(validate_job_spec(s, "spec"));
    if get_str(s, "completionMode") == Some("Indexed")
        && let Some(c) = get_int(s, "completions").filter(|c| *c > 0)
    {
        let name = job
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let hostname = format!("{name}-{}", c - 1);
        if !machinery::names::is_dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                json!(name),
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errs
}

/// `ValidateJobSpecUpdate`: most of a Job's spec is fixed; a suspended Job may still
/// change its pods' scheduling directives.
fn validate_job_update(new: &Value, old: &Value) -> Errs {
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let field = |s: &Value, k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let mut errs = Errs::new();
    let elastic = get_str(ns, "completionMode") == Some("Indexed")
        && get_int(ns, "completions") == get_int(ns, "parallelism")
        && get_int(os, "completions") == get_int(os, "parallelism");
    if !elastic {
        errs.extend(immutable(
            &field(ns, "completions"),
            &field(os, "completions"),
            "spec.completions",
        ));
    }
    errs.extend(immutable(
        &field(ns, "selector"),
        &field(os, "selector"),
        "spec.selector",
    ));
    let (mut nt, mut ot) = (field(ns, "template"), field(os, "template"));
    if get_bool(os, "suspend") == Some(true)
        && !has(old.get("status").unwrap_or(&Value::Null), "startTime")
    {
        for t in [&mut nt, &mut ot] {
            for p in [
                "/spec/nodeSelector",
                "/spec/affinity",
                "/spec/tolerations",
                "/spec/schedulingGates",
            ] {
                if let Some(v) = t.pointer_mut(p) {
                    *v = Value::Null;
                }
            }
            if let Some(m) = t.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
        }
    }
    if !semantic_eq(&nt, &ot) {
        errs.push(FieldError::invalid(
            "spec.template",
            field(ns, "template"),
            crate::util::IMMUTABLE,
        ));
    }
    for k in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
        "podReplacementPolicy",
    ] {
        errs.extend(immutable(&field(ns, k), &field(os, k), &child("spec", k)));
    }
    errs
}

/// `SetDefaults_CronJob` plus pod template defaults inside the job template.
fn default_cronjob(cj: &mut Value) {
    with_mut(cj, "/spec", |s| {
        set_default_str(s, "concurrencyPolicy", "Allow");
        set_default(s, "suspend", json!(false));
        set_default(s, "successfulJobsHistoryLimit", json!(3));
        set_default(s, "failedJobsHistoryLimit", json!(1));
        with_mut(s, "/jobTemplate/spec/template", default_pod_template);
    });
}

fn validate_cronjob(cj: &Value) -> Errs {
    let mut errs = Errs::new();
    let name = cj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > MAX_CRONJOB_NAME {
        errs.push(FieldError::invalid(
            "metadata.name",
            json!(name),
            "must be no more than 52 characters",
        ));
    }
    let s = cj.get("spec").unwrap_or(&Value::Null);
    let schedule = str_or_empty(s, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = cron::parse_standard(schedule) {
            errs.push(FieldError::invalid("spec.schedule", json!(schedule), e));
        }
        if schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                json!(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    errs.extend(nonnegative(s, "startingDeadlineSeconds", "spec"));
    errs.extend(one_of(
        s,
        "concurrencyPolicy",
        "spec",
        &["Allow", "Forbid", "Replace"],
        true,
    ));
    let jt = s.get("jobTemplate").unwrap_or(&Value::Null);
    let js = jt.get("spec").unwrap_or(&Value::Null);
    errs.extend(validate_job_spec(js, "spec.jobTemplate.spec"));
    if let Some(sel) = js.get("selector").filter(|v| !v.is_null()) {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            sel.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if get_bool(js, "manualSelector") == Some(true) {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            json!(true),
            &["nil", "false"],
        ));
    }
    errs.extend(crate::util::validate_labels(
        obj(jt.get("metadata").unwrap_or(&Value::Null), "labels"),
        "spec.jobTemplate.metadata.labels",
    ));
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs.extend(nonnegative(s, f, "spec"));
    }
    if let Some(tz) = get_str(s, "timeZone") {
        errs.extend(validate_time_zone(tz));
    }
    errs
}

fn validate_time_zone(tz: &str) -> Errs {
    let mut errs = Errs::new();
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            json!(tz),
            "timeZone must be nil or non-empty string",
        ));
        return errs;
    }
    let valid_part = |p: &str| {
        !(p == "." || p == ".." || p.starts_with('-'))
            && (1..=14).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    };
    if !tz.split('/').all(valid_part) {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            json!(tz),
            format!("unknown time zone {tz}"),
        ));
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            json!(tz),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    errs
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
