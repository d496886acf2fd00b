//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1) as read from `--config`,
//! and its expansion into profiles: each profile's filter and score plugin lists, built by
//! merging the user's `plugins` (multiPoint and per extension point, enabled/disabled,
//! weights) over upstream's defaults, with `pluginConfig` args.

use std::collections::HashMap;

use serde::Deserialize;

use crate::framework::PluginRef;
use crate::plugins::{self, DEFAULT_PLUGINS, FILTER_PLUGINS, INERT_PLUGINS, SCORE_PLUGINS};

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerConfig {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub client_connection: ClientConnection,
    #[serde(default)]
    pub leader_election: LeaderElectionConfig,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub pod_initial_backoff_seconds: Option<u64>,
    #[serde(default)]
    pub pod_max_backoff_seconds: Option<u64>,
    #[serde(default)]
    pub profiles: Vec<ProfileConfig>,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    #[serde(default)]
    pub kubeconfig: String,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElectionConfig {
    pub leader_elect: Option<bool>,
    pub lease_duration: Option<String>,
    pub renew_deadline: Option<String>,
    pub retry_period: Option<String>,
    pub resource_lock: Option<String>,
    pub resource_name: Option<String>,
    pub resource_namespace: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProfileConfig {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
}

#[derive(Clone, Debug, Deserialize, Default)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRefConfig>,
    #[serde(default)]
    pub disabled: Vec<PluginRefConfig>,
}

#[derive(Clone, Debug, Deserialize, Default)]
pub struct PluginRefConfig {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Option<serde_json::Value>,
}

/// `DefaultPreemptionArgs`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreemptionArgs {
    #[serde(default = "ten")]
    pub min_candidate_nodes_percentage: i64,
    #[serde(default = "hundred")]
    pub min_candidate_nodes_absolute: i64,
}

fn ten() -> i64 {
    10
}
fn hundred() -> i64 {
    100
}

impl Default for PreemptionArgs {
    fn default() -> Self {
        PreemptionArgs {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

/// One scheduling profile, ready to run.
pub struct Profile {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub filters: Vec<PluginRef>,
    pub scorers: Vec<(PluginRef, i64)>,
    pub preemption: Option<PreemptionArgs>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("scheduler_name", &self.scheduler_name)
            .field(
                "filters",
                &self.filters.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field(
                "scorers",
                &self
                    .scorers
                    .iter()
                    .map(|(p, w)| (p.name(), *w))
                    .collect::<Vec<_>>(),
            )
            .field("preemption", &self.preemption.is_some())
            .finish()
    }
}

/// Go-style durations (`15s`, `1h30m`), shared with the other components.
pub use machinery::duration::parse_duration;

impl SchedulerConfig {
    /// Reads and validates a configuration file's YAML.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let c: SchedulerConfig = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if c.api_version != API_VERSION {
            return Err(format!(
                "no kind \"{}\" is registered for version \"{}\"",
                c.kind, c.api_version
            ));
        }
        if c.kind != "KubeSchedulerConfiguration" {
            return Err(format!("unexpected kind {:?}", c.kind));
        }
        if let Some(p) = c.percentage_of_nodes_to_score
            && !(0..=100).contains(&p)
        {
            return Err(format!(
                "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
            ));
        }
        let mut names = std::collections::HashSet::new();
        for p in &c.profiles {
            let n = p
                .scheduler_name
                .clone()
                .unwrap_or("default-scheduler".into());
            if !names.insert(n.clone()) {
                return Err(format!("profiles[].schedulerName: Duplicate value: {n:?}"));
            }
        }
        Ok(c)
    }

    /// The profiles to run (one `default-scheduler` profile when none are configured).
    pub fn build_profiles(&self) -> Result<Vec<Profile>, String> {
        if self.profiles.is_empty() {
            return Ok(vec![build_profile(&ProfileConfig::default())?]);
        }
        self.profiles.iter().map(build_profile).collect()
    }
}

/// upstream's `mergePluginSet`: defaults minus disabled (all with `*`), re-configured
/// defaults updated in place, other enabled plugins appended.
fn merge(defaults: &[(String, Option<i64>)], custom: &PluginSet) -> Vec<(String, Option<i64>)> {
    let disabled: Vec<&str> = custom.disabled.iter().map(|p| p.name.as_str()).collect();
    let mut out = Vec::new();
    let mut used = vec![false; custom.enabled.len()];
    if !disabled.contains(&"*") {
        for (name, w) in defaults {
            if disabled.contains(&name.as_str()) {
                continue;
            }
            match custom.enabled.iter().position(|p| p.name == *name) {
                Some(i) => {
                    used[i] = true;
                    out.push((name.clone(), custom.enabled[i].weight.or(*w)));
                }
                None => out.push((name.clone(), *w)),
            }
        }
    }
    for (i, p) in custom.enabled.iter().enumerate() {
        if !used[i] {
            out.push((p.name.clone(), p.weight));
        }
    }
    out
}

fn build_profile(p: &ProfileConfig) -> Result<Profile, String> {
    let plugins = p.plugins.clone().unwrap_or_default();
    let defaults: Vec<(String, Option<i64>)> = DEFAULT_PLUGINS
        .iter()
        .map(|(n, w)| (n.to_string(), (*w > 0).then_some(*w)))
        .collect();
    let multi = merge(&defaults, &plugins.multi_point);
    let args: HashMap<&str, &serde_json::Value> = p
        .plugin_config
        .iter()
        .filter_map(|c| c.args.as_ref().map(|a| (c.name.as_str(), a)))
        .collect();
    let mut instances: HashMap<String, PluginRef> = HashMap::new();
    let mut get = |name: &str| -> Result<Option<PluginRef>, String> {
        if let Some(p) = instances.get(name) {
            return Ok(Some(p.clone()));
        }
        match plugins::build(name, args.get(name).copied())? {
            Some(p) => {
                instances.insert(name.to_string(), p.clone());
                Ok(Some(p))
            }
            None if INERT_PLUGINS.contains(&name) => Ok(None),
            None => Err(format!("plugin {name:?} does not exist")),
        }
    };
    let point = |set: &PluginSet, supported: &[&str]| {
        let base: Vec<(String, Option<i64>)> = multi
            .iter()
            .filter(|(n, _)| supported.contains(&n.as_str()))
            .cloned()
            .collect();
        merge(&base, set)
    };
    let mut filters = Vec::new();
    for (name, _) in point(&plugins.filter, FILTER_PLUGINS) {
        if let Some(pl) = get(&name)? {
            filters.push(pl);
        }
    }
    let mut scorers = Vec::new();
    for (name, w) in point(&plugins.score, SCORE_PLUGINS) {
        if let Some(pl) = get(&name)? {
            scorers.push((pl, w.filter(|w| *w > 0).unwrap_or(1)));
        }
    }
    let post = point(&plugins.post_filter, &["DefaultPreemption"]);
    let preemption = if post.iter().any(|(n, _)| n == "DefaultPreemption") {
        let a = args
            .get("DefaultPreemption")
            .map(|v| serde_json::from_value((*v).clone()))
            .transpose()
            .map_err(|e| format!("DefaultPreemptionArgs: {e}"))?;
        Some(a.unwrap_or_default())
    } else {
        None
    };
    Ok(Profile {
        scheduler_name: p
            .scheduler_name
            .clone()
            .unwrap_or_else(|| "default-scheduler".into()),
        percentage_of_nodes_to_score: p.percentage_of_nodes_to_score,
        filters,
        scorers,
        preemption,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn default_profile() {
        let p = SchedulerConfig::default()
            .build_profiles()
            .expect("profiles");
        assert_eq!(p.len(), 1);
        let names: Vec<_> = p[0].filters.iter().map(|f| f.name()).collect();
        assert_eq!(names, FILTER_PLUGINS.to_vec());
        let weights: Vec<_> = p[0].scorers.iter().map(|(s, w)| (s.name(), *w)).collect();
        assert_eq!(
            weights,
            vec![
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
        assert!(p[0].preemption.is_some());
    }

    #[test]
    fn custom_profiles() {
        let yaml = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeResourcesFit
        weight: 5
    postFilter:
      disabled:
      - name: DefaultPreemption
    filter:
      disabled:
      - name: TaintToleration
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#;
        let c = SchedulerConfig::from_yaml(yaml).expect("config");
        assert_eq!(c.percentage_of_nodes_to_score, Some(30));
        assert_eq!(c.leader_election.leader_elect, Some(false));
        let p = c.build_profiles().expect("profiles");
        assert_eq!(p[1].scheduler_name, "bin-packer");
        let s: Vec<_> = p[1].scorers.iter().map(|(s, w)| (s.name(), *w)).collect();
        assert_eq!(s, vec![("NodeResourcesFit", 5)]);
        assert!(p[1].preemption.is_none());
        assert!(!p[1].filters.iter().any(|f| f.name() == "TaintToleration"));
        assert!(SchedulerConfig::from_yaml("apiVersion: v1\nkind: Foo\n").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").is_err());
    }
}
