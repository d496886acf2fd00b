//! DefaultPreemption's decision, without I/O: which node to free up for a pod that fits
//! nowhere, and which lower-priority pods to evict there. Victims are chosen as upstream:
//! remove every lower-priority pod, check the pod fits, then reprieve pods (PDB-violating
//! ones first, most important first) while it still fits; the node is picked by fewest PDB
//! violations, then lowest highest-victim priority, smallest priority sum, fewest victims,
//! latest start time.

use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use rand::Rng;

use crate::algorithm::{FitError, run_filters, run_pre_filter};
use crate::cache::{Cache, NodeInfo};
use crate::config::{PreemptionArgs, Profile};
use crate::framework::{Code, CycleState, Snapshot, Status};
use crate::podinfo::PodInfo;
use crate::selectors::Selector;

pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

/// The chosen node and the pods to evict from it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    /// Most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

/// Why preemption did not produce a candidate: the message upstream reports after
/// `preemption: `.
#[derive(Debug, Clone, PartialEq)]
pub struct NoCandidate(pub String);

/// Upstream's `MoreImportantPod`: higher priority, then longer running.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.start_time_nanos().cmp(&b.start_time_nanos()))
}

/// Whether the pod may preempt at all (`PodEligibleToPreemptOthers`).
pub fn eligible(
    pod: &PodInfo,
    cache: &Cache,
    nominated_status: Option<&Status>,
) -> Result<(), String> {
    let policy = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref());
    if policy == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    if let Some(nn) = pod.nominated_node_name() {
        if nominated_status.is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable) {
            return Ok(());
        }
        if let Some(n) = cache.node(nn)
            && n.pods
                .iter()
                .any(|p| p.priority < pod.priority && p.terminating)
        {
            return Err("not eligible due to a terminating pod on the nominated node.".into());
        }
    }
    Ok(())
}

fn fits(profile: &Profile, cache: &Cache, pod: &PodInfo, node: &NodeInfo) -> Status {
    let snap = Snapshot {
        cache,
        overlay: Some(node),
    };
    let mut state = CycleState::default();
    if let Err(st) = run_pre_filter(profile, &mut state, pod, &snap) {
        return st;
    }
    run_filters(profile, &state, pod, node)
}

/// Splits pods (in order) into those whose eviction would violate a PDB and the rest.
fn split_by_pdb(
    pods: Vec<Arc<PodInfo>>,
    pdbs: &[PodDisruptionBudget],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs
        .iter()
        .map(|p| {
            p.status
                .as_ref()
                .map(|s| s.disruptions_allowed)
                .unwrap_or(0)
        })
        .collect();
    let selectors: Vec<Selector> = pdbs
        .iter()
        .map(|p| Selector::new(p.spec.as_ref().and_then(|s| s.selector.as_ref())))
        .collect();
    let (mut violating, mut ok) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        if !p.labels.is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.metadata.namespace.as_deref() != Some(p.namespace.as_str())
                    || selectors[i].is_empty()
                    || !selectors[i].matches(&p.labels)
                {
                    continue;
                }
                let disrupted = pdb
                    .status
                    .as_ref()
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .is_some_and(|d| d.contains_key(&p.name));
                if disrupted {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(p);
        } else {
            ok.push(p);
        }
    }
    (violating, ok)
}

/// `SelectVictimsOnNode`: the minimal set of lower-priority pods to evict.
pub fn select_victims(
    profile: &Profile,
    cache: &Cache,
    pod: &PodInfo,
    node: &NodeInfo,
    pdbs: &[PodDisruptionBudget],
) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
    let mut work = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    for p in &potential {
        work.remove_pod(&p.namespace, &p.name);
    }
    let st = fits(profile, cache, pod, &work);
    if !st.is_success() {
        return Err(st);
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, non_violating) = split_by_pdb(potential, pdbs);
    let mut victims = Vec::new();
    let mut violations = 0;
    let both = !violating.is_empty() && !non_violating.is_empty();
    for (is_violating, list) in [(true, violating), (false, non_violating)] {
        for p in list {
            work.add_pod(p.clone());
            if !fits(profile, cache, pod, &work).is_success() {
                work.remove_pod(&p.namespace, &p.name);
                victims.push(p);
                if is_violating {
                    violations += 1;
                }
            }
        }
    }
    if both {
        victims.sort_by(|a, b| more_important(a, b));
    }
    Ok((victims, violations))
}

/// Upstream's `pickOneNodeForPreemption` criteria, in order.
fn pick(mut cands: Vec<Candidate>) -> Option<Candidate> {
    type Score = fn(&Candidate) -> i64;
    let criteria: [Score; 5] = [
        |c| -(c.pdb_violations as i64),
        |c| -(c.victims.first().map(|p| p.priority as i64).unwrap_or(0)),
        |c| {
            -c.victims
                .iter()
                .map(|p| p.priority as i64 + i32::MAX as i64 + 1)
                .sum::<i64>()
        },
        |c| -(c.victims.len() as i64),
        |c| {
            // The earliest start among the highest-priority victims; later is better.
            let top = c.victims.first().map(|p| p.priority);
            c.victims
                .iter()
                .filter(|p| Some(p.priority) == top)
                .map(|p| p.start_time_nanos())
                .min()
                .unwrap_or(i64::MIN)
        },
    ];
    for f in criteria {
        if cands.len() <= 1 {
            break;
        }
        let best = cands.iter().map(f).max()?;
        cands.retain(|c| f(c) == best);
    }
    cands.into_iter().next()
}

/// Finds the node to preempt on. `fit` is the failed cycle's diagnosis.
pub fn preempt(
    profile: &Profile,
    args: &PreemptionArgs,
    cache: &Cache,
    pod: &PodInfo,
    fit: &FitError,
    pdbs: &[PodDisruptionBudget],
    rng: &mut impl Rng,
) -> Result<Candidate, NoCandidate> {
    let nominated_status = pod
        .nominated_node_name()
        .and_then(|nn| fit.statuses.iter().find(|(n, _)| n == nn).map(|(_, s)| s));
    eligible(pod, cache, nominated_status).map_err(NoCandidate)?;
    let potential: Vec<&NodeInfo> = fit
        .statuses
        .iter()
        .filter(|(_, st)| st.code == Code::Unschedulable)
        .filter_map(|(n, _)| cache.node(n))
        .collect();
    let total = cache.num_nodes();
    let mut statuses: Vec<(String, Status)> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    if !potential.is_empty() {
        let n = potential.len() as i64;
        let want = (n * args.min_candidate_nodes_percentage / 100)
            .max(args.min_candidate_nodes_absolute)
            .min(n) as usize;
        let offset = rng.random_range(0..potential.len());
        let mut non_violating = 0;
        for i in 0..potential.len() {
            let node = potential[(offset + i) % potential.len()];
            match select_victims(profile, cache, pod, node, pdbs) {
                Ok((victims, v)) if !victims.is_empty() => {
                    non_violating += usize::from(v == 0);
                    candidates.push(Candidate {
                        node: node.name.clone(),
                        victims,
                        pdb_violations: v,
                    });
                    if non_violating > 0 && candidates.len() >= want {
                        break;
                    }
                }
                Ok(_) => {}
                Err(st) => statuses.push((node.name.clone(), st)),
            }
        }
    }
    if candidates.is_empty() {
        let evaluated: std::collections::HashSet<&str> =
            statuses.iter().map(|(n, _)| n.as_str()).collect();
        let absent: Vec<(String, Status)> = Snapshot::new(cache)
            .nodes()
            .filter(|n| !evaluated.contains(n.name.as_str()))
            .map(|n| (n.name.clone(), Status::unresolvable(NOT_HELPFUL)))
            .collect();
        statuses.extend(absent);
        let fe = FitError {
            num_all_nodes: total,
            statuses,
            ..Default::default()
        };
        return Err(NoCandidate(fe.message()));
    }
    pick(candidates).ok_or_else(|| NoCandidate("no candidate node for preemption".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{Algorithm, Nominated, ScheduleError};
    use crate::config::SchedulerConfig;
    use crate::plugins::testutil::pod_json;
    use rand::SeedableRng;
    use serde_json::json;

    fn pod(name: &str, prio: i32, cpu: &str, app: &str) -> Arc<PodInfo> {
        pod_json(
            json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"priority": prio, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}),
        )
    }

    fn setup() -> (Cache, Profile) {
        let mut c = Cache::new();
        for n in ["n1", "n2"] {
            c.upsert_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": n},
                    "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}}))
                .expect("node"),
            ));
        }
        c.add_pod(pod("low-a", 1, "1", "a"), "n1", false);
        c.add_pod(pod("low-b", 1, "1", "b"), "n1", false);
        c.add_pod(pod("mid", 5, "2", "m"), "n2", false);
        let p = SchedulerConfig::default()
            .build_profiles()
            .expect("p")
            .remove(0);
        (c, p)
    }

    fn run(
        c: &Cache,
        p: &Profile,
        pod: &PodInfo,
        pdbs: &[PodDisruptionBudget],
    ) -> Result<Candidate, NoCandidate> {
        let Err(ScheduleError::Fit(fit)) =
            Algorithm::seeded(1).schedule(p, c, &Nominated::new(), pod)
        else {
            panic!("expected no fit");
        };
        preempt(
            p,
            &PreemptionArgs::default(),
            c,
            pod,
            &fit,
            pdbs,
            &mut rand::rngs::SmallRng::seed_from_u64(1),
        )
    }

    #[test]
    fn evicts_fewest_lowest_priority() {
        let (c, p) = setup();
        let cand = run(&c, &p, &pod("high", 10, "1", "h"), &[]).expect("candidate");
        assert_eq!(cand.node, "n1");
        assert_eq!(cand.victims.len(), 1);
    }

    #[test]
    fn honours_pdbs() {
        let (c, p) = setup();
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "pa", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
        }))
        .expect("pdb");
        let cand = run(&c, &p, &pod("high", 10, "1", "h"), &[pdb]).expect("candidate");
        assert_eq!(
            cand.victims
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            vec!["low-b"]
        );
        assert_eq!(cand.pdb_violations, 0);
    }

    #[test]
    fn messages_when_nothing_helps() {
        let (c, p) = setup();
        let e = run(&c, &p, &pod("equal", 1, "3", "x"), &[]).expect_err("no candidate");
        assert_eq!(
            e.0,
            "0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
        let never = pod_json(json!({"metadata": {"name": "n", "namespace": "default"},
            "spec": {"priority": 10, "preemptionPolicy": "Never", "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}));
        assert_eq!(
            run(&c, &p, &never, &[]).expect_err("never").0,
            "not eligible due to preemptionPolicy=Never."
        );
    }
}
