//! NodeResourcesFit (filter on requests vs allocatable; score by LeastAllocated,
//! MostAllocated or RequestedToCapacityRatio) and NodeResourcesBalancedAllocation, with
//! upstream's arithmetic (integer division where upstream divides integers).

use serde::Deserialize;

use crate::cache::NodeInfo;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Snapshot, Status};
use crate::podinfo::PodInfo;
use crate::resources::is_scalar_resource;

/// One resource and its weight in a scoring strategy.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

/// A point of RequestedToCapacityRatio's utilization -> score function (score 0..=10).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestedToCapacityRatio {
    #[serde(default)]
    pub shape: Vec<ShapePoint>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScoringStrategy {
    #[serde(rename = "type", default = "least")]
    pub kind: String,
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatio>,
}

fn least() -> String {
    "LeastAllocated".into()
}

/// `NodeResourcesFitArgs`.
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FitArgs {
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
}

fn default_resources() -> Vec<ResourceSpec> {
    ["cpu", "memory"]
        .iter()
        .map(|n| ResourceSpec {
            name: n.to_string(),
            weight: 1,
        })
        .collect()
}

pub struct NodeResourcesFit {
    args: FitArgs,
    strategy: String,
    resources: Vec<ResourceSpec>,
    shape: Vec<ShapePoint>,
}

impl NodeResourcesFit {
    pub fn new(args: FitArgs) -> Self {
        let s = args.scoring_strategy.clone();
        let strategy = s.as_ref().map(|s| s.kind.clone()).unwrap_or_else(least);
        let resources = s
            .as_ref()
            .map(|s| s.resources.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(default_resources);
        let shape = s
            .and_then(|s| s.requested_to_capacity_ratio)
            .map(|r| r.shape)
            .unwrap_or_default()
            .into_iter()
            .map(|p| ShapePoint {
                utilization: p.utilization,
                score: p.score * (MAX_NODE_SCORE / 10),
            })
            .collect();
        NodeResourcesFit {
            args,
            strategy,
            resources,
            shape,
        }
    }

    fn ignored(&self, name: &str) -> bool {
        self.args.ignored_resources.iter().any(|r| r == name)
            || name
                .split_once('/')
                .is_some_and(|(g, _)| self.args.ignored_resource_groups.iter().any(|x| x == g))
    }

    fn score_one(&self, requested: i64, capacity: i64) -> i64 {
        match self.strategy.as_str() {
            "MostAllocated" => {
                if capacity == 0 {
                    0
                } else {
                    requested.min(capacity) * MAX_NODE_SCORE / capacity
                }
            }
            "RequestedToCapacityRatio" => {
                let u = if capacity == 0 || requested > capacity {
                    100
                } else {
                    requested * 100 / capacity
                };
                broken_linear(&self.shape, u)
            }
            _ => {
                if capacity == 0 || requested > capacity {
                    0
                } else {
                    (capacity - requested) * MAX_NODE_SCORE / capacity
                }
            }
        }
    }
}

/// Piecewise-linear interpolation over the shape points (`helper.BuildBrokenLinearFunction`).
fn broken_linear(shape: &[ShapePoint], p: i64) -> i64 {
    for (i, s) in shape.iter().enumerate() {
        if p <= s.utilization {
            if i == 0 {
                return s.score;
            }
            let prev = &shape[i - 1];
            return prev.score
                + (s.score - prev.score) * (p - prev.utilization)
                    / (s.utilization - prev.utilization);
        }
    }
    shape.last().map(|s| s.score).unwrap_or(0)
}

/// The (allocatable, requested-after-placing-the-pod) pair for one resource. `non_zero`
/// selects the defaulted requests scoring uses for cpu and memory.
fn alloc_and_request(node: &NodeInfo, pod: &PodInfo, name: &str, non_zero: bool) -> (i64, i64) {
    let (node_req, pod_req) = if non_zero && (name == "cpu" || name == "memory") {
        (&node.non_zero_requested, &pod.non_zero_requests)
    } else {
        (&node.requested, &pod.requests)
    };
    let want = pod_req.get(name);
    if want == 0 && is_scalar_resource(name) {
        return (0, 0);
    }
    (node.allocatable.get(name), node_req.get(name) + want)
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn filter(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mut reasons = Vec::new();
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            reasons.push("Too many pods".to_string());
        }
        let r = &pod.requests;
        let free = |name: &str| node.allocatable.get(name) - node.requested.get(name);
        for (name, want) in [
            ("cpu", r.milli_cpu),
            ("memory", r.memory),
            ("ephemeral-storage", r.ephemeral_storage),
        ] {
            if want > 0 && want > free(name) {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        for (name, want) in &r.scalar {
            if *want > 0 && !self.ignored(name) && *want > free(name) {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: crate::framework::Code::Unschedulable,
                reasons,
                plugin: "",
            }
        }
    }
    fn score(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        let mut rtc_any = false;
        for r in &self.resources {
            let (alloc, req) = alloc_and_request(node, pod, &r.name, true);
            if alloc == 0 {
                continue;
            }
            let s = self.score_one(req, alloc);
            if self.strategy == "RequestedToCapacityRatio" {
                // Upstream only counts resources with a positive score here.
                if s > 0 {
                    total += s * r.weight;
                    weights += r.weight;
                    rtc_any = true;
                }
                continue;
            }
            total += s * r.weight;
            weights += r.weight;
        }
        if weights == 0 {
            return 0;
        }
        if rtc_any {
            return (total as f64 / weights as f64).round() as i64;
        }
        total / weights
    }
}

/// Favors nodes whose cpu and memory utilization stay balanced after placing the pod.
pub struct BalancedAllocation {
    resources: Vec<ResourceSpec>,
}

impl BalancedAllocation {
    pub fn new(resources: Option<Vec<ResourceSpec>>) -> Self {
        BalancedAllocation {
            resources: resources
                .filter(|r| !r.is_empty())
                .unwrap_or_else(default_resources),
        }
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
    fn pre_score(
        &self,
        _s: &mut CycleState,
        pod: &PodInfo,
        _n: &[&NodeInfo],
        _snap: &Snapshot,
    ) -> Status {
        // Best-effort pods do not change the balance of any node.
        if pod.requests.is_zero() {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn score(&self, _s: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let mut fractions = Vec::with_capacity(self.resources.len());
        for r in &self.resources {
            let (alloc, req) = alloc_and_request(node, pod, &r.name, false);
            if alloc == 0 {
                continue;
            }
            fractions.push((req as f64 / alloc as f64).min(1.0));
        }
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions
                    .iter()
                    .map(|f| (f - mean) * (f - mean))
                    .sum::<f64>()
                    / n as f64)
                    .sqrt()
            }
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node, pod};
    use serde_json::json;

    fn n(cpu: &str, mem: &str, pods: &str) -> NodeInfo {
        node(json!({"metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": pods}}}))
    }

    fn req(cpu: &str, mem: &str) -> std::sync::Arc<PodInfo> {
        pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}),
        )
    }

    #[test]
    fn filter_reasons() {
        let fit = NodeResourcesFit::new(FitArgs::default());
        let mut node = n("1", "1Gi", "1");
        node.add_pod(req("500m", "512Mi"));
        let st = fit.filter(&CycleState::default(), &req("600m", "600Mi"), &node);
        assert_eq!(
            st.reasons,
            vec!["Too many pods", "Insufficient cpu", "Insufficient memory"]
        );
        let gpu = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}),
        );
        let node = n("1", "1Gi", "10");
        assert_eq!(
            fit.filter(&CycleState::default(), &gpu, &node).reasons,
            vec!["Insufficient example.com/gpu"]
        );
    }

    #[test]
    fn least_and_most_allocated() {
        let node = n("4", "8Gi", "110");
        let p = req("1", "2Gi");
        let least = NodeResourcesFit::new(FitArgs::default());
        // cpu (4000-1000)*100/4000 = 75, memory (8-2)*100/8 = 75
        assert_eq!(least.score(&CycleState::default(), &p, &node), 75);
        let most: FitArgs =
            serde_json::from_value(json!({"scoringStrategy": {"type": "MostAllocated"}}))
                .expect("args");
        assert_eq!(
            NodeResourcesFit::new(most).score(&CycleState::default(), &p, &node),
            25
        );
        let rtc: FitArgs = serde_json::from_value(json!({"scoringStrategy": {
            "type": "RequestedToCapacityRatio",
            "resources": [{"name": "cpu", "weight": 1}],
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}}))
            .expect("args");
        assert_eq!(
            NodeResourcesFit::new(rtc).score(&CycleState::default(), &p, &node),
            25
        );
    }

    #[test]
    fn balanced() {
        let node = n("4", "8Gi", "110");
        let b = BalancedAllocation::new(None);
        // cpu 1/4 = 0.25, memory 4/8 = 0.5: std 0.125 -> 87
        assert_eq!(b.score(&CycleState::default(), &req("1", "4Gi"), &node), 87);
        assert_eq!(
            b.score(&CycleState::default(), &req("2", "4Gi"), &node),
            100
        );
    }
}
