//! What every document shares: grouping the registry by group/version, the definitions a
//! document's paths reach, and the per-registry annotations (GVKs of served kinds, the
//! group/versions `DeleteOptions` and `WatchEvent` are served in, schemas for kinds nobody
//! described).

use std::collections::{BTreeMap, HashMap, HashSet};

use machinery::resource::ResourceInfo;
use serde_json::{Map, Value};

use crate::definitions::{
    DELETE_OPTIONS, WATCH_EVENT, add_gvk, definitions, gvk, list_definition_name, list_schema,
    permissive_schema,
};
use crate::dialect::{self, Dialect};
use crate::routes::{Payload, Route};

/// The served resources of one group/version, in registry order.
pub(crate) struct GroupVersionResources<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub resources: Vec<&'a ResourceInfo>,
}

/// The registry grouped by group/version, in order of first appearance.
pub(crate) fn group_versions(resources: &[ResourceInfo]) -> Vec<GroupVersionResources<'_>> {
    let mut out: Vec<GroupVersionResources> = Vec::new();
    for info in resources {
        match out
            .iter_mut()
            .find(|gv| gv.group == info.group && gv.version == info.version)
        {
            Some(gv) => gv.resources.push(info),
            None => out.push(GroupVersionResources {
                group: &info.group,
                version: &info.version,
                resources: vec![info],
            }),
        }
    }
    out
}

/// The named API groups, in order of first appearance.
pub(crate) fn groups(resources: &[ResourceInfo]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for info in resources {
        if !info.group.is_empty() && !out.contains(&info.group.as_str()) {
            out.push(&info.group);
        }
    }
    out
}

/// The schemas one registry's documents draw from: extra definitions first, then schemas
/// synthesized for kinds known nowhere, then the built-in [`definitions`].
pub(crate) struct Schemas<'a> {
    builtin: &'static Map<String, Value>,
    extra: &'a Map<String, Value>,
    synthesized: Map<String, Value>,
    /// GVKs to add to definitions, beyond those they carry.
    gvks: HashMap<String, Vec<Value>>,
}

impl<'a> Schemas<'a> {
    pub(crate) fn new(resources: &[ResourceInfo], extra: &'a Map<String, Value>) -> Self {
        let mut schemas = Schemas {
            builtin: definitions(),
            extra,
            synthesized: Map::new(),
            gvks: HashMap::new(),
        };
        let mut served_in: Vec<(&str, &str)> = vec![("", "v1")];
        for info in resources {
            schemas.add_resource(info);
            if !served_in.contains(&(info.group.as_str(), info.version.as_str())) {
                served_in.push((&info.group, &info.version));
            }
        }
        served_in.sort();
        for (group, version) in served_in {
            for (definition, kind) in [
                (DELETE_OPTIONS, "DeleteOptions"),
                (WATCH_EVENT, "WatchEvent"),
            ] {
                schemas
                    .gvks
                    .entry(definition.to_string())
                    .or_default()
                    .push(gvk(group, version, kind));
            }
        }
        schemas
    }

    fn add_resource(&mut self, info: &ResourceInfo) {
        let (group, version, kind) = (&info.group, &info.version, &info.kind);
        if self.get(&info.definition).is_none() {
            self.synthesized.insert(
                info.definition.clone(),
                permissive_schema(group, version, kind),
            );
        }
        let list_name = list_definition_name(&info.definition, kind);
        let list_kind = format!("{kind}List");
        if self.get(&list_name).is_none() {
            let list = list_schema(&info.definition, kind, gvk(group, version, &list_kind));
            self.synthesized.insert(list_name.clone(), list);
        }
        self.gvks
            .entry(info.definition.clone())
            .or_default()
            .push(gvk(group, version, kind));
        self.gvks
            .entry(list_name)
            .or_default()
            .push(gvk(group, version, &list_kind));
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.extra
            .get(name)
            .or_else(|| self.synthesized.get(name))
            .or_else(|| self.builtin.get(name))
    }

    /// Whether a resource is a built-in kind rather than a custom resource.
    pub(crate) fn is_builtin(&self, info: &ResourceInfo) -> bool {
        !self.extra.contains_key(&info.definition) && self.builtin.contains_key(&info.definition)
    }

    /// The definitions `routes` reach, transitively, rendered in `dialect`, sorted by name.
    /// References to unknown names are left dangling rather than failing the document.
    pub(crate) fn reachable(&self, routes: &[Route], dialect: Dialect) -> Map<String, Value> {
        let mut pending: Vec<String> = route_definitions(routes);
        let mut seen: HashSet<String> = HashSet::new();
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(schema) = self.get(&name) else {
                continue;
            };
            dialect::for_each_reference(schema, &mut |target| {
                if !seen.contains(target) {
                    pending.push(target.to_string());
                }
            });
            let mut rendered = dialect::definition(&name, schema, dialect);
            for extra in self.gvks.get(&name).into_iter().flatten() {
                add_gvk(&mut rendered, extra.clone());
            }
            out.insert(name, rendered);
        }
        out.into_iter().collect()
    }
}

/// The definitions operations name directly.
fn route_definitions(routes: &[Route]) -> Vec<String> {
    let mut out = Vec::new();
    for op in routes.iter().flat_map(|route| &route.operations) {
        let payloads = op
            .body
            .iter()
            .map(|body| &body.payload)
            .chain(op.responses.iter().filter_map(|r| r.payload.as_ref()));
        for payload in payloads {
            if let Payload::Definition(name) = payload {
                out.push(name.clone());
            }
        }
    }
    out
}
