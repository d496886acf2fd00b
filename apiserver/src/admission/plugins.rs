//! Which admission plugins run: upstream's default set, changed by
//! `--enable-admission-plugins` and `--disable-admission-plugins`, with upstream's errors
//! for names it does not know.

use std::collections::BTreeSet;

/// The plugins upstream enables when no flag says otherwise.
const DEFAULT_ON: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "TaintNodesByCondition",
    "PodSecurity",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// Plugins upstream knows but leaves off by default.
const DEFAULT_OFF: &[&str] = &[
    "AlwaysAdmit",
    "AlwaysDeny",
    "AlwaysPullImages",
    "DenyServiceExternalIPs",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "ImagePolicyWebhook",
    "LimitPodHardAntiAffinityTopology",
    "NamespaceAutoProvision",
    "NamespaceExists",
    "NodeRestriction",
    "OwnerReferencesPermissionEnforcement",
    "PodNodeSelector",
    "PodTolerationRestriction",
];

/// The enabled plugins, and the configuration `--admission-control-config-file` gave them.
#[derive(Debug, Clone)]
pub struct Plugins {
    on: BTreeSet<String>,
    pub config: super::config::AdmissionConfig,
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            on: DEFAULT_ON.iter().map(|s| s.to_string()).collect(),
            config: Default::default(),
        }
    }
}

impl Plugins {
    /// The default set plus `enable` minus `disable`; unknown names and names in both
    /// lists are errors, as upstream reports them.
    pub fn from_flags(enable: &[String], disable: &[String]) -> Result<Plugins, String> {
        let known = |n: &str| DEFAULT_ON.contains(&n) || DEFAULT_OFF.contains(&n);
        for (flag, names) in [
            ("enable-admission-plugins", enable),
            ("disable-admission-plugins", disable),
        ] {
            if let Some(bad) = names.iter().find(|n| !known(n)) {
                return Err(format!("{flag} plugin \"{bad}\" is unknown"));
            }
        }
        let both: BTreeSet<&String> = enable.iter().filter(|n| disable.contains(n)).collect();
        if !both.is_empty() {
            let list: Vec<&str> = both.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "[{}] in enable-admission-plugins and disable-admission-plugins overlapped",
                list.join(" ")
            ));
        }
        let mut plugins = Plugins::default();
        plugins.on.extend(enable.iter().cloned());
        plugins.on.retain(|n| !disable.contains(n));
        Ok(plugins)
    }

    /// The same plugins with this configuration.
    pub fn with_config(self, config: super::config::AdmissionConfig) -> Plugins {
        Plugins { config, ..self }
    }

    /// Whether the plugin runs.
    pub fn on(&self, name: &str) -> bool {
        self.on.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let p = Plugins::default();
        assert!(p.on("ServiceAccount") && !p.on("NodeRestriction"));
        let p = Plugins::from_flags(&["NodeRestriction".into()], &["ServiceAccount".into()])
            .expect("valid");
        assert!(p.on("NodeRestriction") && !p.on("ServiceAccount"));
        assert_eq!(
            Plugins::from_flags(&["Nope".into()], &[]).map(|_| ()),
            Err("enable-admission-plugins plugin \"Nope\" is unknown".into())
        );
        assert!(Plugins::from_flags(&["LimitRanger".into()], &["LimitRanger".into()]).is_err());
    }
}
