//! The in-tree plugins and their registry: which extension points each takes part in,
//! upstream's default order and score weights, and construction from `pluginConfig` args.

pub mod basic;
pub mod fit;
pub mod image;
pub mod interpod;
pub mod spread;

use std::sync::Arc;

use crate::framework::PluginRef;

/// Upstream's default plugins in their default order, with default score weights
/// (0 for plugins that do not score).
pub const DEFAULT_PLUGINS: &[(&str, i64)] = &[
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

/// Plugins with a Filter step, in upstream's default filter order.
pub const FILTER_PLUGINS: &[&str] = &[
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAffinity",
];

/// Plugins with a Score step.
pub const SCORE_PLUGINS: &[&str] = &[
    "TaintToleration",
    "NodeAffinity",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAffinity",
    "NodeResourcesBalancedAllocation",
    "ImageLocality",
];

/// Plugins upstream has that this scheduler accepts in configuration but that have
/// nothing to do here (no volumes, no extenders).
pub const INERT_PLUGINS: &[&str] = &[
    "PrioritySort",
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
    "DefaultBinder",
    "DefaultPreemption",
    "SchedulingGates",
    "DynamicResources",
];

/// Builds a plugin from its name and `pluginConfig` args (JSON). Unknown names give None.
pub fn build(name: &str, args: Option<&serde_json::Value>) -> Result<Option<PluginRef>, String> {
    let parse = |what: &str| -> Result<serde_json::Value, String> {
        Ok(args.cloned().unwrap_or(serde_json::json!({}))).and_then(|v| {
            if v.is_object() {
                Ok(v)
            } else {
                Err(format!("{what}: args must be an object"))
            }
        })
    };
    let p: PluginRef = match name {
        "NodeUnschedulable" => Arc::new(basic::NodeUnschedulable),
        "NodeName" => Arc::new(basic::NodeName),
        "NodePorts" => Arc::new(basic::NodePorts),
        "TaintToleration" => Arc::new(basic::TaintToleration),
        "NodeAffinity" => Arc::new(basic::NodeAffinity),
        "NodeResourcesFit" => {
            let a: fit::FitArgs = serde_json::from_value(parse(name)?)
                .map_err(|e| format!("NodeResourcesFitArgs: {e}"))?;
            Arc::new(fit::NodeResourcesFit::new(a))
        }
        "NodeResourcesBalancedAllocation" => {
            #[derive(serde::Deserialize)]
            struct A {
                #[serde(default)]
                resources: Option<Vec<fit::ResourceSpec>>,
            }
            let a: A = serde_json::from_value(parse(name)?)
                .map_err(|e| format!("NodeResourcesBalancedAllocationArgs: {e}"))?;
            Arc::new(fit::BalancedAllocation::new(a.resources))
        }
        "ImageLocality" => Arc::new(image::ImageLocality),
        "PodTopologySpread" => {
            let a: spread::SpreadArgs = serde_json::from_value(parse(name)?)
                .map_err(|e| format!("PodTopologySpreadArgs: {e}"))?;
            Arc::new(spread::PodTopologySpread::new(a)?)
        }
        "InterPodAffinity" => {
            let a: interpod::InterPodAffinityArgs = serde_json::from_value(parse(name)?)
                .map_err(|e| format!("InterPodAffinityArgs: {e}"))?;
            Arc::new(interpod::InterPodAffinity { args: a })
        }
        _ => return Ok(None),
    };
    Ok(Some(p))
}

#[cfg(test)]
pub mod testutil {
    //! Builders for plugin unit tests.
    use std::sync::Arc;

    use crate::cache::NodeInfo;
    use crate::podinfo::PodInfo;
    use crate::selectors::Labels;

    /// A label set from pairs.
    pub fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn node(v: serde_json::Value) -> NodeInfo {
        NodeInfo::new(Arc::new(serde_json::from_value(v).expect("node")))
    }

    /// A pod in `default` named `p` with the given spec.
    pub fn pod(spec: serde_json::Value) -> Arc<PodInfo> {
        pod_json(
            serde_json::json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}),
        )
    }

    pub fn pod_json(v: serde_json::Value) -> Arc<PodInfo> {
        PodInfo::new(Arc::new(serde_json::from_value(v).expect("pod")))
    }
}
