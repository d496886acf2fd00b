//! What the collector does for each [`Task`] (upstream's `attemptToDeleteItem`,
//! `processDeletingDependentsItem` and `orphanDependents`). Every decision re-reads the
//! objects involved from the API (the graph may lag), deletes with a uid precondition,
//! and patches with a resourceVersion precondition, so a stale view never deletes or
//! rewrites the wrong object; a conflict is simply retried.

use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use serde_json::json;

use super::Collector;
use super::graph::{FOREGROUND, ORPHAN, Task};
use crate::common::{self, discovery};

type Meta = PartialObjectMeta<DynamicObject>;

impl Collector {
    fn api_for(
        &self,
        resource: usize,
        namespace: Option<&str>,
    ) -> Option<(Api<DynamicObject>, discovery::Discovered)> {
        let d = self.resources.read().ok()?.get(resource)?.clone();
        let api = match namespace {
            Some(ns) if d.namespaced => Api::namespaced_with(self.client.clone(), ns, &d.resource),
            _ => Api::all_with(self.client.clone(), &d.resource),
        };
        Some((api, d))
    }

    /// The object a graph node stands for, read afresh (None when gone or replaced).
    async fn live(&self, uid: &str) -> anyhow::Result<Option<(Api<DynamicObject>, Meta)>> {
        let Some(node) = self.graph.lock().ok().and_then(|g| g.get(uid).cloned()) else {
            return Ok(None);
        };
        let Some((api, _)) = self.api_for(node.resource, node.namespace.as_deref()) else {
            return Ok(None);
        };
        let meta = api.get_metadata_opt(&node.name).await?;
        Ok(meta
            .filter(|m| m.metadata.uid.as_deref() == Some(uid))
            .map(|m| (api, m)))
    }

    pub(super) async fn process(&self, task: &Task) -> anyhow::Result<()> {
        match task {
            Task::AttemptToDelete(uid) => self.attempt_to_delete(uid).await,
            Task::Foreground(uid) => self.process_foreground(uid).await,
            Task::Orphan(uid) => self.orphan_dependents(uid).await,
        }
    }

    /// How an owner reference stands: Solid (owner exists), Dangling (gone or another
    /// uid), Waiting (owner deleting its dependents in the foreground). Unknown kinds
    /// count as solid: never delete on a guess.
    async fn owner_state(
        &self,
        r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
        ns: Option<&str>,
    ) -> anyhow::Result<OwnerState> {
        let resources = self.resources.read().map(|r| r.clone()).unwrap_or_default();
        let Some(d) = discovery::by_kind(&resources, &r.api_version, &r.kind) else {
            tracing::debug!(kind = %r.kind, "owner kind not served; keeping the dependent");
            return Ok(OwnerState::Solid);
        };
        let api: Api<DynamicObject> = match ns {
            Some(ns) if d.namespaced => Api::namespaced_with(self.client.clone(), ns, &d.resource),
            _ => Api::all_with(self.client.clone(), &d.resource),
        };
        let Some(owner) = api.get_metadata_opt(&r.name).await? else {
            return Ok(OwnerState::Dangling);
        };
        if owner.metadata.uid.as_deref() != Some(r.uid.as_str()) {
            return Ok(OwnerState::Dangling);
        }
        let foreground = owner
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FOREGROUND);
        if owner.metadata.deletion_timestamp.is_some() && foreground {
            return Ok(OwnerState::Waiting);
        }
        Ok(OwnerState::Solid)
    }

    async fn attempt_to_delete(&self, uid: &str) -> anyhow::Result<()> {
        let Some((api, item)) = self.live(uid).await? else {
            return Ok(());
        };
        let m = &item.metadata;
        let finalizers = m.finalizers.clone().unwrap_or_default();
        let deleting_dependents = finalizers.iter().any(|f| f == FOREGROUND);
        if m.deletion_timestamp.is_some() && !deleting_dependents {
            return Ok(());
        }
        let owners = m.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(());
        }
        let (mut solid, mut dangling, mut waiting) = (0, vec![], vec![]);
        for r in &owners {
            match self.owner_state(r, m.namespace.as_deref()).await? {
                OwnerState::Solid => solid += 1,
                OwnerState::Dangling => dangling.push(r.uid.clone()),
                OwnerState::Waiting => waiting.push(r.uid.clone()),
            }
        }
        let name = m.name.clone().unwrap_or_default();
        if solid > 0 {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // keep the object, drop references to owners that are gone or going
            let keep: Vec<_> = owners
                .iter()
                .filter(|r| !dangling.contains(&r.uid) && !waiting.contains(&r.uid))
                .collect();
            let patch = json!({"metadata": {"ownerReferences": keep, "resourceVersion": m.resource_version, "uid": uid}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            return Ok(());
        }
        let has_dependents = self
            .graph
            .lock()
            .map(|g| !g.dependents_of(uid).is_empty())
            .unwrap_or(false);
        let policy = if !waiting.is_empty() && has_dependents {
            PropagationPolicy::Foreground
        } else if finalizers.iter().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else if deleting_dependents {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::info!(object = %name, uid, ?policy, "deleting object whose owners are gone");
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if common::is_not_found(&e) || common::is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Dependents that still block a foreground deletion of `owner`.
    fn blocking_dependents(&self, owner: &str) -> Vec<String> {
        let Ok(g) = self.graph.lock() else {
            return vec![];
        };
        g.dependents_of(owner)
            .into_iter()
            .filter(|d| {
                g.get(d).is_some_and(|n| {
                    n.owners
                        .iter()
                        .any(|r| r.uid == owner && r.block_owner_deletion == Some(true))
                })
            })
            .collect()
    }

    async fn process_foreground(&self, uid: &str) -> anyhow::Result<()> {
        let Some((api, owner)) = self.live(uid).await? else {
            return Ok(());
        };
        let m = &owner.metadata;
        let has = m.finalizers.iter().flatten().any(|f| f == FOREGROUND);
        if m.deletion_timestamp.is_none() || !has {
            return Ok(());
        }
        let blocking = self.blocking_dependents(uid);
        if blocking.is_empty() {
            tracing::info!(object = ?m.name, "all blocking dependents gone; removing foregroundDeletion");
            return remove_finalizer(&api, &owner, FOREGROUND).await;
        }
        for d in blocking {
            self.enqueue(Task::AttemptToDelete(d));
        }
        Ok(())
    }

    async fn orphan_dependents(&self, uid: &str) -> anyhow::Result<()> {
        let Some((api, owner)) = self.live(uid).await? else {
            return Ok(());
        };
        let m = &owner.metadata;
        if m.deletion_timestamp.is_none() || !m.finalizers.iter().flatten().any(|f| f == ORPHAN) {
            return Ok(());
        }
        let dependents = self
            .graph
            .lock()
            .map(|g| g.dependents_of(uid))
            .unwrap_or_default();
        for d in dependents {
            let Some((dapi, dep)) = self.live(&d).await? else {
                continue;
            };
            let refs = dep.metadata.owner_references.clone().unwrap_or_default();
            if !refs.iter().any(|r| r.uid == uid) {
                continue;
            }
            let keep: Vec<_> = refs.iter().filter(|r| r.uid != uid).collect();
            let patch = json!({"metadata": {
                "ownerReferences": keep,
                "resourceVersion": dep.metadata.resource_version,
                "uid": d,
            }});
            let name = dep.metadata.name.clone().unwrap_or_default();
            match dapi
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if common::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(object = ?m.name, "dependents orphaned; removing orphan finalizer");
        remove_finalizer(&api, &owner, ORPHAN).await
    }
}

enum OwnerState {
    Solid,
    Dangling,
    Waiting,
}

async fn remove_finalizer(
    api: &Api<DynamicObject>,
    obj: &Meta,
    finalizer: &str,
) -> anyhow::Result<()> {
    let m = &obj.metadata;
    let keep: Vec<&String> = m
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    let patch = json!({"metadata": {"finalizers": keep, "resourceVersion": m.resource_version, "uid": m.uid}});
    let name = m.name.clone().unwrap_or_default();
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if common::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
