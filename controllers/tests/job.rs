//! The job controller against a real apiserver, with the test playing the kubelet:
//! completions with bounded parallelism, backoffLimit, Indexed jobs, podFailurePolicy,
//! suspend/resume and activeDeadlineSeconds, with upstream's conditions and events.

mod workloads_support;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use workloads_support::{Cluster, obj};

fn job(name: &str, spec: serde_json::Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox"}]}});
    obj(json!({"metadata": {"name": name}, "spec": spec}))
}

async fn pods_of(api: &Api<Pod>, job: &str) -> Vec<Pod> {
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    api.list(&lp).await.map(|l| l.items).unwrap_or_default()
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn is_active(p: &Pod) -> bool {
    !matches!(phase(p), "Succeeded" | "Failed") && p.metadata.deletion_timestamp.is_none()
}

fn condition(job: &Job, type_: &str) -> Option<(String, String)> {
    let c = job
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")?;
    Some((c.reason.clone()?, c.message.clone().unwrap_or_default()))
}

async fn reasons(c: &Cluster, ns: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(c.client.clone(), ns);
    let lp = ListParams::default();
    let list = events.list(&lp).await.map(|l| l.items).unwrap_or_default();
    list.into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn completions_with_bounded_parallelism() {
    let c = Cluster::start("job").await;
    c.namespace("jobs").await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "jobs");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "jobs");
    let j = job("five", json!({"completions": 5, "parallelism": 2}));
    jobs.create(&PostParams::default(), &j).await.expect("job");
    let mut finished = 0;
    while finished < 5 {
        let active = c
            .wait_for("active pods", || async {
                let ps: Vec<Pod> = pods_of(&pods, "five").await;
                let active: Vec<Pod> = ps.into_iter().filter(is_active).collect();
                (!active.is_empty()).then_some(active)
            })
            .await;
        assert!(
            active.len() <= 2,
            "never more than parallelism active: {}",
            active.len()
        );
        for p in active {
            let fins = p.metadata.finalizers.clone().unwrap_or_default();
            assert!(fins.contains(&"batch.kubernetes.io/job-tracking".to_string()));
            let name = p.metadata.name.clone().unwrap_or_default();
            c.set_pod_finished("jobs", &name, "Succeeded", 0).await;
            finished += 1;
        }
    }
    let done = c
        .wait_for("Complete", || async {
            let j = jobs.get("five").await.ok()?;
            condition(&j, "Complete").map(|_| j)
        })
        .await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.succeeded, Some(5));
    assert_eq!(status.active, Some(0));
    assert!(status.completion_time.is_some() && status.start_time.is_some());
    assert_eq!(
        condition(&done, "SuccessCriteriaMet")
            .map(|c| c.0)
            .as_deref(),
        Some("CompletionsReached")
    );
    let all = pods_of(&pods, "five").await;
    assert_eq!(all.len(), 5, "exactly completions pods were created");
    assert!(
        all.iter()
            .all(|p| p.metadata.finalizers.clone().unwrap_or_default().is_empty())
    );
    let r = reasons(&c, "jobs", "five").await;
    assert!(r.iter().any(|r| r == "SuccessfulCreate") && r.iter().any(|r| r == "Completed"));
}

#[tokio::test]
async fn backoff_limit_fails_the_job() {
    let c = Cluster::start("job").await;
    c.namespace("jobs").await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "jobs");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "jobs");
    let j = job("flaky", json!({"backoffLimit": 1}));
    jobs.create(&PostParams::default(), &j).await.expect("job");
    for round in 1..=2 {
        let p = c
            .wait_for("a pod to fail", || async {
                pods_of(&pods, "flaky").await.into_iter().find(is_active)
            })
            .await;
        let name = p.metadata.name.clone().unwrap_or_default();
        c.set_pod_finished("jobs", &name, "Failed", 1).await;
        if round == 1 {
            c.wait_for("failure counted", || async {
                let j = jobs.get("flaky").await.ok()?;
                (j.status?.failed == Some(1)).then_some(())
            })
            .await;
        }
    }
    let failed = c
        .wait_for("Failed", || async {
            let j = jobs.get("flaky").await.ok()?;
            condition(&j, "Failed").map(|f| (j, f))
        })
        .await;
    assert_eq!(
        failed.1,
        (
            "BackoffLimitExceeded".to_string(),
            "Job has reached the specified backoff limit".to_string()
        )
    );
    assert!(condition(&failed.0, "FailureTarget").is_some());
    assert_eq!(failed.0.status.unwrap_or_default().failed, Some(2));
    assert_eq!(pods_of(&pods, "flaky").await.len(), 2);
    assert!(
        reasons(&c, "jobs", "flaky")
            .await
            .iter()
            .any(|r| r == "BackoffLimitExceeded")
    );
}

#[tokio::test]
async fn indexed_completion_and_pod_failure_policy() {
    let c = Cluster::start("job").await;
    c.namespace("jobs").await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "jobs");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "jobs");
    let j = job(
        "idx",
        json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
    );
    jobs.create(&PostParams::default(), &j).await.expect("job");
    let ps = c
        .wait_for("3 indexed pods", || async {
            let ps = pods_of(&pods, "idx").await;
            (ps.len() == 3).then_some(ps)
        })
        .await;
    let mut idx: Vec<String> = ps
        .iter()
        .filter_map(|p| {
            p.metadata
                .annotations
                .as_ref()?
                .get("batch.kubernetes.io/job-completion-index")
                .cloned()
        })
        .collect();
    idx.sort();
    assert_eq!(idx, ["0", "1", "2"]);
    for p in &ps {
        let name = p.metadata.name.clone().unwrap_or_default();
        c.set_pod_finished("jobs", &name, "Succeeded", 0).await;
    }
    let done = c
        .wait_for("indexed Complete", || async {
            let j = jobs.get("idx").await.ok()?;
            condition(&j, "Complete").map(|_| j)
        })
        .await;
    assert_eq!(
        done.status.unwrap_or_default().completed_indexes.as_deref(),
        Some("0-2")
    );

    // a FailJob rule ends the Job on the first matching exit code
    let mut pf = job("policy", json!({"backoffLimit": 6}));
    if let Some(spec) = pf.spec.as_mut() {
        spec.pod_failure_policy = Some(obj(json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]})));
    }
    jobs.create(&PostParams::default(), &pf)
        .await
        .expect("policy job");
    let p = c
        .wait_for("policy pod", || async {
            pods_of(&pods, "policy").await.into_iter().find(is_active)
        })
        .await;
    let name = p.metadata.name.clone().unwrap_or_default();
    c.set_pod_finished("jobs", &name, "Failed", 42).await;
    let (reason, message) = c
        .wait_for("Failed by policy", || async {
            condition(&jobs.get("policy").await.ok()?, "Failed")
        })
        .await;
    assert_eq!(reason, "PodFailurePolicy");
    assert_eq!(
        message,
        format!(
            "Container c for pod jobs/{name} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
}

#[tokio::test]
async fn suspend_resume_and_deadline() {
    let c = Cluster::start("job").await;
    c.namespace("jobs").await;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "jobs");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "jobs");
    let j = job(
        "later",
        json!({"suspend": true, "parallelism": 2, "completions": 2}),
    );
    jobs.create(&PostParams::default(), &j).await.expect("job");
    let (reason, _) = c
        .wait_for("Suspended", || async {
            condition(&jobs.get("later").await.ok()?, "Suspended")
        })
        .await;
    assert_eq!(reason, "JobSuspended");
    assert!(pods_of(&pods, "later").await.is_empty());
    let resume = json!({"spec": {"suspend": false}});
    jobs.patch("later", &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .expect("resume");
    c.wait_for("pods after resume", || async {
        (pods_of(&pods, "later").await.len() == 2).then_some(())
    })
    .await;
    let j = jobs.get("later").await.expect("job");
    let resumed = j
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "Suspended")
                .map(|c| (c.status.clone(), c.reason.clone()))
        });
    assert_eq!(resumed, Some(("False".into(), Some("JobResumed".into()))));

    // activeDeadlineSeconds: the running pod is deleted and the Job fails
    let d = job("deadline", json!({"activeDeadlineSeconds": 2}));
    jobs.create(&PostParams::default(), &d)
        .await
        .expect("deadline job");
    let (reason, message) = c
        .wait_for("DeadlineExceeded", || async {
            condition(&jobs.get("deadline").await.ok()?, "Failed")
        })
        .await;
    assert_eq!(
        (reason.as_str(), message.as_str()),
        (
            "DeadlineExceeded",
            "Job was active longer than specified deadline"
        )
    );
    c.wait_for("deadline pods gone or terminal", || async {
        pods_of(&pods, "deadline")
            .await
            .iter()
            .all(|p| !is_active(p))
            .then_some(())
    })
    .await;
}
