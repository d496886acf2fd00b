//! Controller references, adoption and release (upstream's `ControllerRefManager`).
//!
//! An object is *owned* by a controller when one of its ownerReferences has
//! `controller: true`. [`claim`] walks the candidate objects a controller sees in its
//! namespace and decides, as upstream does, which of them it owns:
//!
//! - owned by someone else: ignored;
//! - owned by us and the selector matches: claimed;
//! - owned by us but the selector no longer matches: released (our ownerReference is
//!   removed), unless the owner is being deleted;
//! - an orphan matching the selector, not being deleted, in the owner's namespace, while
//!   the owner is not being deleted: adopted (an ownerReference with `controller: true`
//!   and `blockOwnerDeletion: true` is patched on), after `recheck` confirmed once, with a
//!   fresh read, that the owner still exists with the same uid and no deletionTimestamp.
//!
//! Both patches carry the object's uid as a precondition; a NotFound means the object
//! went away and is simply skipped.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use machinery::labels::Selector;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The controller reference of an object, if any.
pub fn controller_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// What a controller needs to know about an owner to claim objects for it.
#[derive(Clone, Debug)]
pub struct OwnerInfo {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub uid: String,
    /// The owner has a deletionTimestamp: adopt nothing, release nothing.
    pub deleting: bool,
}

impl OwnerInfo {
    /// Describes a typed owner object.
    pub fn of<K: Resource<DynamicType = ()>>(owner: &K) -> Self {
        Self {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            name: owner.name_any(),
            namespace: owner.namespace(),
            uid: owner.uid().unwrap_or_default(),
            deleting: owner.meta().deletion_timestamp.is_some(),
        }
    }

    /// The controller ownerReference new or adopted objects get.
    pub fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Whether `meta` is controlled by this owner (by uid).
    pub fn controls(
        &self,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> bool {
        controller_of(meta).is_some_and(|r| r.uid == self.uid)
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Patches the controller reference of `owner` onto `obj` (uid precondition).
pub async fn adopt<K>(api: &Api<K>, owner: &OwnerInfo, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {
        "ownerReferences": [owner.controller_ref()],
        "uid": obj.uid(),
    }});
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map(|_| ())
}

/// Removes the ownerReference to `owner` from `obj` (uid precondition).
pub async fn release<K>(api: &Api<K>, owner: &OwnerInfo, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner.uid}],
        "uid": obj.uid(),
    }});
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map(|_| ())
}

/// Claims the objects `owner` controls among `candidates` (see the module docs),
/// adopting matching orphans and releasing owned objects that no longer match.
/// `recheck` is called at most once, before the first adoption; when it fails no
/// adoption happens and the error is returned.
pub async fn claim<K, F, Fut>(
    api: &Api<K>,
    owner: &OwnerInfo,
    selector: &Selector,
    candidates: Vec<Arc<K>>,
    recheck: F,
) -> anyhow::Result<Vec<Arc<K>>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut recheck = Some(recheck);
    let mut claimed = Vec::new();
    let mut errors = Vec::new();
    for obj in candidates {
        let matches = super::matches(selector, obj.meta().labels.as_ref());
        if let Some(r) = controller_of(obj.meta()) {
            if r.uid != owner.uid {
                continue;
            }
            if matches {
                claimed.push(obj);
            } else if !owner.deleting
                && let Err(e) = release(api, owner, &obj).await
                && !is_not_found(&e)
            {
                errors.push(e.to_string());
            }
            continue;
        }
        if owner.deleting || !matches || obj.meta().deletion_timestamp.is_some() {
            continue;
        }
        if owner
            .namespace
            .as_deref()
            .is_some_and(|ns| Some(ns) != obj.namespace().as_deref())
        {
            continue;
        }
        if let Some(check) = recheck.take() {
            check()
                .await
                .map_err(|e| anyhow::anyhow!("can't adopt {}s: {e:#}", owner.kind))?;
        }
        match adopt(api, owner, &obj).await {
            Ok(()) => claimed.push(obj),
            Err(e) if is_not_found(&e) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(claimed)
    } else {
        anyhow::bail!("{}", errors.join("; "))
    }
}

/// The usual `recheck` for [`claim`]: reads the owner afresh and fails if it is gone,
/// was replaced (another uid) or is being deleted — upstream's
/// `RecheckDeletionTimestamp`.
pub async fn recheck_owner<O>(api: &Api<O>, owner: &OwnerInfo) -> anyhow::Result<()>
where
    O: Resource + Clone + DeserializeOwned + Debug,
{
    let fresh = api.get(&owner.name).await?;
    if fresh.uid().as_deref() != Some(owner.uid.as_str()) {
        anyhow::bail!(
            "original {} {} is gone: got uid {:?}, wanted {}",
            owner.kind,
            owner.name,
            fresh.uid(),
            owner.uid
        );
    }
    if fresh.meta().deletion_timestamp.is_some() {
        anyhow::bail!(
            "{} {} has just been deleted at {:?}",
            owner.kind,
            owner.name,
            fresh.meta().deletion_timestamp
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn controller_ref_and_controls() {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some("web".into());
        rs.metadata.uid = Some("u1".into());
        let owner = OwnerInfo::of(&rs);
        let r = owner.controller_ref();
        assert_eq!(r.kind, "ReplicaSet");
        assert_eq!(r.block_owner_deletion, Some(true));
        let mut pod = Pod::default();
        assert!(!owner.controls(&pod.metadata));
        pod.metadata.owner_references = Some(vec![r]);
        assert!(owner.controls(&pod.metadata));
    }
}
