//! Discovery of the resources a generic controller (garbage collector, namespace
//! deletion) works on: every resource the API server lists in discovery, at its group's
//! preferred version, without subresources, with the verbs the controller needs.
//!
//! Events (`events` in the core group and `events.k8s.io`) are left out, as upstream's
//! garbage collector ignores them; both names serve the same objects.

use kube::core::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::discovery::Discovery;

/// One discovered resource.
#[derive(Clone, Debug)]
pub struct Discovered {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl Discovered {
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `group/version/plural`, a stable key.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.resource.group, self.resource.version, self.resource.plural
        )
    }
}

fn is_ignored(ar: &ApiResource) -> bool {
    ar.plural == "events" && (ar.group.is_empty() || ar.group == "events.k8s.io")
}

fn to_discovered(ar: ApiResource, caps: ApiCapabilities) -> Discovered {
    Discovered {
        namespaced: caps.scope == Scope::Namespaced,
        verbs: caps.operations.clone(),
        resource: ar,
    }
}

/// Every resource supporting all of `verbs` (e.g. `list`, `watch`, `delete`).
pub async fn resources_with(
    client: &kube::Client,
    verbs: &[&str],
) -> Result<Vec<Discovered>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if is_ignored(&ar) {
                continue;
            }
            let d = to_discovered(ar, caps);
            if verbs.iter().all(|v| d.supports(v)) {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// Finds the resource for an `apiVersion` and `kind` among discovered ones.
pub fn by_kind<'a>(all: &'a [Discovered], api_version: &str, kind: &str) -> Option<&'a Discovered> {
    all.iter()
        .find(|d| d.resource.api_version == api_version && d.resource.kind == kind)
        .or_else(|| {
            // another version of the same group serves the same objects
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            all.iter()
                .find(|d| d.resource.group == group && d.resource.kind == kind)
        })
}
