//! `--admission-control-config-file`: upstream's AdmissionConfiguration
//! (`apiserver.config.k8s.io/v1`), YAML or JSON, whose `plugins` entries carry each
//! plugin's configuration inline (`configuration`) or in a file of its own (`path`,
//! relative to the configuration file). PodSecurity reads its
//! `PodSecurityConfiguration` from it: the default levels for namespaces without labels
//! and the exempt users, namespaces and runtime classes. Other plugins' entries are
//! accepted and ignored, as upstream ignores entries of plugins it does not run.

use std::path::Path;

use podsecurity::{Level, LevelVersion, Policy, Version};
use serde_json::Value;

const ADMISSION_VERSIONS: &[&str] = &[
    "apiserver.config.k8s.io/v1",
    "apiserver.config.k8s.io/v1alpha1",
    "apiserver.k8s.io/v1alpha1",
];

const POD_SECURITY_VERSIONS: &[&str] = &[
    "pod-security.admission.config.k8s.io/v1",
    "pod-security.admission.config.k8s.io/v1beta1",
    "pod-security.admission.config.k8s.io/v1alpha1",
];

/// What the configuration file says, for the plugins that read it.
#[derive(Debug, Clone, Default)]
pub struct AdmissionConfig {
    pub pod_security: PodSecurityConfig,
}

/// PodSecurity's configuration: the policy of namespaces that set no labels, and what
/// is exempt from checks altogether.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSecurityConfig {
    pub defaults: Policy,
    pub exempt_usernames: Vec<String>,
    pub exempt_namespaces: Vec<String>,
    pub exempt_runtime_classes: Vec<String>,
}

impl PodSecurityConfig {
    pub fn exempt_namespace(&self, ns: &str) -> bool {
        !ns.is_empty() && self.exempt_namespaces.iter().any(|n| n == ns)
    }

    pub fn exempt_user(&self, user: &str) -> bool {
        !user.is_empty() && self.exempt_usernames.iter().any(|u| u == user)
    }

    pub fn exempt_runtime_class(&self, class: &str) -> bool {
        !class.is_empty() && self.exempt_runtime_classes.iter().any(|c| c == class)
    }
}

/// Reads and validates the file.
pub fn load(path: &Path) -> Result<AdmissionConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "unable to read admission control configuration from {:?} [{e}]",
            path.display().to_string()
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir)
}

fn decode(text: &str) -> Result<Value, String> {
    serde_yaml::from_str::<Value>(text).map_err(|e| e.to_string())
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Parses the file's text; `dir` resolves relative plugin paths.
pub fn parse(text: &str, dir: &Path) -> Result<AdmissionConfig, String> {
    let doc = decode(text)?;
    let (api_version, kind) = (str_at(&doc, "/apiVersion"), str_at(&doc, "/kind"));
    if kind != "AdmissionConfiguration" || !ADMISSION_VERSIONS.contains(&api_version) {
        return Err(format!(
            "unexpected admission configuration {api_version}, Kind={kind}: want AdmissionConfiguration of apiserver.config.k8s.io/v1"
        ));
    }
    let mut config = AdmissionConfig::default();
    for plugin in doc
        .get("plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(plugin, "/name");
        let body = match (plugin.get("configuration"), str_at(plugin, "/path")) {
            (Some(c), _) if !c.is_null() => c.clone(),
            (_, "") => continue,
            (_, path) => {
                let file = dir.join(path);
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    format!(
                        "couldn't read admission plugin {name}'s configuration from {}: {e}",
                        file.display()
                    )
                })?;
                decode(&text)?
            }
        };
        if name == "PodSecurity" {
            config.pod_security = pod_security(&body).map_err(|errs| {
                format!("invalid PodSecurity configuration: {}", errs.join(", "))
            })?;
        }
    }
    Ok(config)
}

/// A PodSecurityConfiguration, defaulted and validated as upstream does.
fn pod_security(v: &Value) -> Result<PodSecurityConfig, Vec<String>> {
    let (api_version, kind) = (str_at(v, "/apiVersion"), str_at(v, "/kind"));
    if kind != "PodSecurityConfiguration" || !POD_SECURITY_VERSIONS.contains(&api_version) {
        return Err(vec![format!(
            "expected PodSecurityConfiguration of pod-security.admission.config.k8s.io/v1, got {api_version}, Kind={kind}"
        )]);
    }
    let mut errs = Vec::new();
    let mut mode = |m: &str| {
        let level_text = v
            .pointer(&format!("/defaults/{m}"))
            .and_then(Value::as_str)
            .unwrap_or("privileged");
        let version_text = v
            .pointer(&format!("/defaults/{m}-version"))
            .and_then(Value::as_str)
            .unwrap_or("latest");
        let level = Level::parse(level_text).unwrap_or_else(|| {
            errs.push(format!(
                "defaults.{m}: Invalid value: {level_text:?}: {}",
                podsecurity::LEVEL_ERROR_MESSAGE
            ));
            Level::Privileged
        });
        let version = Version::parse(version_text).unwrap_or_else(|| {
            errs.push(format!(
                "defaults.{m}-version: Invalid value: {version_text:?}: {}",
                podsecurity::VERSION_ERROR_MESSAGE
            ));
            Version::Latest
        });
        LevelVersion::new(level, version)
    };
    let defaults = Policy {
        enforce: mode("enforce"),
        warn: mode("warn"),
        audit: mode("audit"),
    };
    let list = |field: &str, errs: &mut Vec<String>, check: &dyn Fn(&str) -> Vec<String>| {
        let mut seen: Vec<String> = Vec::new();
        for (i, item) in v
            .pointer(&format!("/exemptions/{field}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let s = item.as_str().unwrap_or("");
            let path = format!("exemptions.{field}[{i}]");
            let problems = check(s);
            if !problems.is_empty() {
                errs.push(format!("{path}: {}", problems.join(", ")));
            } else if seen.iter().any(|x| x == s) {
                errs.push(format!("{path}: Duplicate value: {s:?}"));
            } else {
                seen.push(s.to_string());
            }
        }
        seen
    };
    let invalid = |s: &str, msgs: Vec<String>| {
        if msgs.is_empty() {
            Vec::new()
        } else {
            vec![format!("Invalid value: {s:?}: {}", msgs.join(", "))]
        }
    };
    let exempt_namespaces = list("namespaces", &mut errs, &|s| {
        invalid(s, machinery::names::is_dns1123_label(s))
    });
    let exempt_runtime_classes = list("runtimeClasses", &mut errs, &|s| {
        invalid(s, machinery::names::is_dns1123_subdomain(s))
    });
    let exempt_usernames = list("usernames", &mut errs, &|s| {
        if s.is_empty() {
            vec!["Required value".to_string()]
        } else {
            Vec::new()
        }
    });
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(PodSecurityConfig {
        defaults,
        exempt_usernames,
        exempt_namespaces,
        exempt_runtime_classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_security_defaults_and_exemptions() {
        let c = parse(
            r#"
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ResourceQuota
  configuration: {}
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
      warn: restricted
      warn-version: v1.30
    exemptions:
      usernames: [system:serviceaccount:kube-system:replicaset-controller]
      namespaces: [kube-system]
      runtimeClasses: [gvisor]
"#,
            Path::new("."),
        )
        .expect("valid");
        let p = c.pod_security;
        assert_eq!(
            p.defaults.enforce,
            LevelVersion::new(Level::Baseline, Version::Latest)
        );
        assert_eq!(
            p.defaults.warn,
            LevelVersion::new(Level::Restricted, Version::Minor(30))
        );
        assert_eq!(p.defaults.audit.level, Level::Privileged);
        assert!(p.exempt_namespace("kube-system") && !p.exempt_namespace("default"));
        assert!(p.exempt_runtime_class("gvisor"));
        assert!(p.exempt_user("system:serviceaccount:kube-system:replicaset-controller"));
    }

    #[test]
    fn a_plugin_configuration_in_its_own_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("pss.yaml"),
            "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: restricted\n",
        )
        .expect("write");
        let main = dir.path().join("admission.yaml");
        std::fs::write(
            &main,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: pss.yaml\n",
        )
        .expect("write");
        let c = load(&main).expect("valid");
        assert_eq!(c.pod_security.defaults.enforce.level, Level::Restricted);
    }

    #[test]
    fn invalid_configurations_say_what_is_wrong() {
        let bad = |pss: &str| {
            parse(
                &format!(
                    "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n    kind: PodSecurityConfiguration\n{pss}"
                ),
                Path::new("."),
            )
            .expect_err("invalid")
        };
        assert_eq!(
            bad("    defaults:\n      enforce: strict\n"),
            "invalid PodSecurity configuration: defaults.enforce: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
        );
        assert!(
            bad("    exemptions:\n      namespaces: [a, a]\n")
                .ends_with("exemptions.namespaces[1]: Duplicate value: \"a\"")
        );
        assert!(bad("    exemptions:\n      usernames: [\"\"]\n").ends_with("Required value"));
        assert!(
            parse("kind: Something\n", Path::new("."))
                .expect_err("wrong kind")
                .starts_with("unexpected admission configuration")
        );
    }
}
