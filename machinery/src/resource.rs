//! The description of one served resource, shared by everything derived from the registry
//! (discovery, OpenAPI, tables, routes).

/// The verbs a resource serves, in upstream's discovery order.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One resource at one group/version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The plural resource name used in URLs, e.g. `deployments`.
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    /// Subresources this resource serves (`status`, `scale`, `binding`, ...).
    pub subresources: Vec<String>,
    /// The storage key segment, as upstream lays out etcd (`/registry/<this>/<ns>/<name>`).
    /// Resources served at several versions share one.
    pub storage_resource: String,
    /// The version objects are stored at; other versions are converted on the way in/out.
    pub storage_version: String,
    /// The OpenAPI definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub definition: String,
    /// Field selectors beyond `metadata.name`/`metadata.namespace`, e.g. `spec.nodeName`.
    pub selectable_fields: Vec<String>,
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Whether `status` is split from the main resource: writes to the main resource keep
    /// the stored status, writes to `/status` keep the stored spec.
    pub fn has_status(&self) -> bool {
        self.has_subresource("status")
    }
}

/// Upstream's "kube-aware" version order (`version.CompareKubeAwareVersionStrings`), most
/// preferred first: GA before beta before alpha, higher majors first, then higher
/// alpha/beta numbers; names that are not Kubernetes versions come last, alphabetically.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let major: u64 = rest[..digits].parse().ok()?;
        if major == 0 {
            return None;
        }
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some((major, level, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => lb.cmp(&la).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_aware_version_order() {
        let mut v = vec![
            "v1alpha1",
            "foo1",
            "v11alpha2",
            "v10beta3",
            "v1",
            "v2",
            "v10",
            "v12alpha1",
            "v3beta1",
            "foo10",
            "v1beta2",
            "v11beta2",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            vec![
                "v10",
                "v2",
                "v1",
                "v11beta2",
                "v10beta3",
                "v3beta1",
                "v1beta2",
                "v12alpha1",
                "v11alpha2",
                "v1alpha1",
                "foo1",
                "foo10"
            ]
        );
    }
}
