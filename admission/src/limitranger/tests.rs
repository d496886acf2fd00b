//! The plugin end to end over JSON objects: defaulting, the pod, container and claim
//! checks with upstream's exact messages, and the LimitRange object's own rules.

use serde_json::{Value, json};

use super::*;

/// The LimitRange's API defaulting, as the stored object has it.
fn default_limit_range(lr: &mut Value) {
    validation::default("", "v1", "limitranges", lr);
}

fn limit_range(items: Value) -> Value {
    json!({"kind": "LimitRange", "metadata": {"name": "lr"}, "spec": {"limits": items}})
}

fn pod(containers: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
}

fn annotation(pod: &Value) -> &str {
    pod["metadata"]["annotations"][ANNOTATION]
        .as_str()
        .unwrap_or("")
}

fn errors(result: Result<(), Vec<String>>) -> Vec<String> {
    result.err().unwrap_or_default()
}

#[test]
fn defaults_fill_missing_resources_and_annotate() {
    let lrs = [limit_range(json!([{
        "type": "Container",
        "default": {"cpu": "1", "memory": "1.5Gi"},
        "defaultRequest": {"cpu": "0.5", "memory": "512Mi"},
    }]))];
    let mut p = pod(json!([{"name": "nginx", "image": "nginx"}]));
    default_pod(&lrs, &mut p);
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "1", "memory": "1536Mi"}, "requests": {"cpu": "500m", "memory": "512Mi"}})
    );
    assert_eq!(
        annotation(&p),
        "LimitRanger plugin set: cpu, memory request for container nginx; cpu, memory limit for container nginx"
    );
}

#[test]
fn defaults_keep_what_is_set_and_cover_init_containers() {
    let lrs = [limit_range(json!([{
        "type": "Container",
        "default": {"cpu": "1", "memory": "1Gi"},
        "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
    }]))];
    let mut p = json!({"spec": {
        "containers": [{"name": "app", "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "2"}}}],
        "initContainers": [{"name": "setup", "resources": {"requests": {"memory": "64Mi"}}}],
    }});
    default_pod(&lrs, &mut p);
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["limits"],
        json!({"cpu": "2", "memory": "1Gi"})
    );
    assert_eq!(
        p["spec"]["initContainers"][0]["resources"]["requests"],
        json!({"cpu": "100m", "memory": "64Mi"})
    );
    assert_eq!(
        annotation(&p),
        "LimitRanger plugin set: memory request for container app; memory limit for container app; \
         cpu request for init container setup; cpu, memory limit for init container setup"
    );
}

#[test]
fn a_pods_own_limit_beats_the_default_request() {
    // API defaulting has already copied the limit into the request, as it does before
    // admission; the LimitRange's defaultRequest then finds the request present.
    let mut lr = limit_range(json!([{"type": "Container", "max": {"cpu": "4"}}]));
    default_limit_range(&mut lr);
    let mut p = pod(
        json!([{"name": "c", "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "2"}}}]),
    );
    default_pod(&[lr], &mut p);
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "2"})
    );
    assert!(p["metadata"].get("annotations").is_none());
}

#[test]
fn requests_default_to_the_default_limit_through_limitrange_defaulting() {
    let mut lr = limit_range(json!([{"type": "Container", "default": {"memory": "1Gi"}}]));
    default_limit_range(&mut lr);
    let mut p = pod(json!([{"name": "c"}]));
    default_pod(std::slice::from_ref(&lr), &mut p);
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["requests"],
        json!({"memory": "1Gi"})
    );
    assert_eq!(validate_pod(&[lr], &p), Ok(()));
}

#[test]
fn each_limitrange_that_sets_something_rewrites_the_annotation() {
    let lrs = [
        limit_range(json!([{"type": "Container", "default": {"cpu": "1"}}])),
        limit_range(json!([{"type": "Container", "default": {"cpu": "2", "memory": "1Gi"}}])),
        limit_range(json!([{"type": "Container", "default": {"cpu": "3"}}])),
    ];
    let mut p = pod(json!([{"name": "c"}]));
    default_pod(&lrs, &mut p);
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["limits"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    assert_eq!(
        annotation(&p),
        "LimitRanger plugin set: memory limit for container c"
    );
}

#[test]
fn container_min_max_and_ratio_messages() {
    let lrs = [limit_range(json!([{
        "type": "Container",
        "max": {"cpu": "1"},
        "min": {"memory": "100Mi"},
        "maxLimitRequestRatio": {"cpu": "2"},
    }]))];
    let p = pod(json!([{"name": "c", "resources": {
        "limits": {"cpu": "2", "memory": "1Gi"},
        "requests": {"cpu": "500m", "memory": "50Mi"},
    }}]));
    assert_eq!(
        errors(validate_pod(&lrs, &p)),
        [
            "minimum memory usage per Container is 100Mi, but request is 50Mi",
            "maximum cpu usage per Container is 1, but limit is 2",
            "cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000",
        ]
    );
}

#[test]
fn missing_request_or_limit_messages() {
    let lrs = [limit_range(json!([{
        "type": "Container",
        "min": {"cpu": "100m"},
        "max": {"memory": "1Gi"},
        "maxLimitRequestRatio": {"cpu": "3"},
    }]))];
    let p = pod(json!([{"name": "c"}]));
    let messages = errors(validate_pod(&lrs, &p));
    assert_eq!(
        messages,
        [
            "minimum cpu usage per Container is 100m.  No request is specified",
            "maximum memory usage per Container is 1Gi.  No limit is specified",
            "cpu max limit to request ratio per Container is 3, but no request is specified or request is 0",
        ]
    );
    let p = pod(
        json!([{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "1Gi", "cpu": "0"}}}]),
    );
    assert_eq!(
        errors(validate_pod(&lrs, &p)),
        [
            "minimum cpu usage per Container is 100m, but limit is 0",
            "maximum memory usage per Container is 1Gi, but request is 2Gi",
            "cpu max limit to request ratio per Container is 3, but no limit is specified or limit is 0",
        ]
    );
}

#[test]
fn min_applies_to_limits_too() {
    let lrs = [limit_range(
        json!([{"type": "Container", "min": {"cpu": "1"}}]),
    )];
    let p = pod(
        json!([{"name": "c", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "900m"}}}]),
    );
    assert_eq!(
        errors(validate_pod(&lrs, &p)),
        ["minimum cpu usage per Container is 1, but limit is 900m"]
    );
}

#[test]
fn init_containers_are_checked_per_container() {
    let lrs = [limit_range(
        json!([{"type": "Container", "max": {"cpu": "1"}}]),
    )];
    let p = json!({"spec": {
        "containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}}}],
        "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "1500m"}}}],
    }});
    assert_eq!(
        errors(validate_pod(&lrs, &p)),
        ["maximum cpu usage per Container is 1, but limit is 1500m"]
    );
}

#[test]
fn pod_limits_use_the_sum_and_init_maximum() {
    let lrs = [limit_range(json!([{
        "type": "Pod",
        "max": {"cpu": "1", "memory": "1Gi"},
        "min": {"cpu": "100m"},
    }]))];
    let both =
        |cpu: &str| json!({"requests": {"cpu": cpu}, "limits": {"cpu": cpu, "memory": "512Mi"}});
    let p = json!({"spec": {
        "containers": [{"name": "a", "resources": both("600m")}, {"name": "b", "resources": both("600m")}],
        "initContainers": [{"name": "i", "resources": both("1")}],
    }});
    assert_eq!(
        errors(validate_pod(&lrs, &p)),
        ["maximum cpu usage per Pod is 1, but limit is 1200m"]
    );
    let p = json!({"spec": {
        "containers": [{"name": "a", "resources": both("300m")}],
        "initContainers": [{"name": "i", "resources": both("1100m")}],
    }});
    assert_eq!(
        errors(validate_pod(&lrs, &p)),
        ["maximum cpu usage per Pod is 1, but limit is 1100m"]
    );
}

#[test]
fn pod_level_ratio_message() {
    let lrs = [limit_range(
        json!([{"type": "Pod", "maxLimitRequestRatio": {"memory": "2"}}]),
    )];
    let p = pod(json!([
        {"name": "a", "resources": {"requests": {"memory": "100Mi"}, "limits": {"memory": "300Mi"}}},
        {"name": "b", "resources": {"requests": {"memory": "200Mi"}, "limits": {"memory": "700Mi"}}},
    ]));
    assert_eq!(
        errors(validate_pod(&lrs, &p)),
        ["memory max limit to request ratio per Pod is 2, but provided ratio is 3.333333"]
    );
}

#[test]
fn only_the_first_failing_limitrange_is_reported() {
    let lrs = [
        limit_range(json!([{"type": "Container", "max": {"cpu": "10"}}])),
        limit_range(json!([{"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}}])),
        limit_range(json!([{"type": "Container", "max": {"cpu": "500m"}}])),
    ];
    let p = pod(json!([{"name": "c", "resources": {"limits": {"cpu": "2"}}}]));
    let messages = errors(validate_pod(&lrs, &p));
    assert_eq!(
        messages,
        [
            "maximum cpu usage per Container is 1, but limit is 2",
            "maximum memory usage per Container is 1Gi.  No limit is specified",
        ]
    );
    assert_eq!(
        forbidden_text(&messages),
        "[maximum cpu usage per Container is 1, but limit is 2, maximum memory usage per Container is 1Gi.  No limit is specified]"
    );
}

#[test]
fn forbidden_text_matches_the_aggregate() {
    let one = vec!["a".to_string()];
    assert_eq!(forbidden_text(&one), "a");
    let twice = vec!["a".to_string(), "a".to_string()];
    assert_eq!(forbidden_text(&twice), "a");
    let two = vec!["a".to_string(), "b".to_string(), "a".to_string()];
    assert_eq!(forbidden_text(&two), "[a, b]");
}

#[test]
fn pvc_min_and_max_on_requests() {
    let lrs = [limit_range(json!([{
        "type": "PersistentVolumeClaim",
        "min": {"storage": "1Gi"},
        "max": {"storage": "10Gi"},
    }]))];
    let claim = |storage: Value| json!({"spec": {"resources": {"requests": {"storage": storage}, "limits": {"storage": "100Gi"}}}});
    assert_eq!(validate_pvc(&lrs, &claim(json!("5Gi"))), Ok(()));
    assert_eq!(
        errors(validate_pvc(&lrs, &claim(json!("500Mi")))),
        ["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"]
    );
    assert_eq!(
        errors(validate_pvc(&lrs, &claim(json!("20Gi")))),
        ["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"]
    );
    assert_eq!(
        errors(validate_pvc(&lrs, &json!({"spec": {}}))),
        [
            "minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified",
            "maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified",
        ]
    );
    // an unchanged request is not checked again on update; a changed one is
    let old = claim(json!("20Gi"));
    assert_eq!(
        validate_pvc_update(&lrs, &claim(json!("20Gi")), &old),
        Ok(())
    );
    assert!(validate_pvc_update(&lrs, &claim(json!("30Gi")), &old).is_err());
}

#[test]
fn resize_skips_values_that_did_not_change() {
    let lrs = [limit_range(
        json!([{"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}}]),
    )];
    let old = pod(json!([{"name": "c", "resources": {"limits": {"cpu": "2", "memory": "512Mi"}}}]));
    let same_cpu =
        pod(json!([{"name": "c", "resources": {"limits": {"cpu": "2", "memory": "768Mi"}}}]));
    assert_eq!(validate_pod_update(&lrs, &same_cpu, &old), Ok(()));
    let more_cpu =
        pod(json!([{"name": "c", "resources": {"limits": {"cpu": "3", "memory": "512Mi"}}}]));
    assert_eq!(
        errors(validate_pod_update(&lrs, &more_cpu, &old)),
        ["maximum cpu usage per Container is 1, but limit is 3"]
    );
}

#[test]
fn handles_follows_upstream() {
    assert!(handles("pods", "", "CREATE"));
    assert!(!handles("pods", "", "UPDATE"));
    assert!(handles("pods", "resize", "UPDATE"));
    assert!(!handles("pods", "status", "UPDATE"));
    assert!(!handles("pods", "", "DELETE"));
    assert!(handles("persistentvolumeclaims", "", "CREATE"));
    assert!(handles("persistentvolumeclaims", "", "UPDATE"));
    assert!(!handles("persistentvolumeclaims", "status", "UPDATE"));
    assert!(!handles("services", "", "CREATE"));
    assert!(old_object_is_deleting(
        &json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}})
    ));
    assert!(!old_object_is_deleting(&json!({"metadata": {}})));
}

#[test]
fn malformed_input_does_not_panic() {
    let lrs = [
        json!(null),
        json!({"spec": {"limits": "x"}}),
        limit_range(json!([
            7,
            {"type": "Container", "max": {"cpu": "lots"}, "default": {"cpu": [1]}, "defaultRequest": "x"},
            {"type": "Pod", "min": {"cpu": "1e999999"}, "maxLimitRequestRatio": {"cpu": "-1"}},
        ])),
    ];
    let odd_pods = [
        json!(null),
        json!("pod"),
        json!({"spec": {"containers": [1, null, {"resources": "x"}, {"resources": {"limits": 3}}]}}),
        json!({"metadata": 5, "spec": {"containers": [{"name": 7, "resources": {"requests": {"cpu": "1.2.3"}}}]}}),
    ];
    for mut p in odd_pods {
        default_pod(&lrs, &mut p);
        let _ = validate_pod(&lrs, &p);
        let _ = validate_pod_update(&lrs, &p, &p);
        let _ = validate_pvc(&lrs, &p);
    }
    // a negative ratio allows no ratio at all
    let lr = limit_range(json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "-1"}}]));
    let p = pod(
        json!([{"name": "c", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}}]),
    );
    assert_eq!(
        errors(validate_pod(&[lr], &p)),
        ["cpu max limit to request ratio per Container is -1, but provided ratio is 1.000000"]
    );
}
