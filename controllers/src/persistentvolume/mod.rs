//! The PersistentVolume binder (upstream's `persistentvolume-binder`): binds each claim
//! to a volume and keeps both sides' phases true.
//!
//! - A Pending claim binds to the volume pre-bound to it, or to the smallest Available
//!   volume that fits it ([`matching`]); the volume gets `claimRef`, the claim
//!   `volumeName`, both `pv.kubernetes.io/bound-by-controller` when the controller chose,
//!   the claim `pv.kubernetes.io/bind-completed`, and both phases become Bound (the claim's
//!   status takes the volume's capacity and access modes).
//! - Without a match: a claim of a `WaitForFirstConsumer` class waits (event
//!   `WaitForFirstConsumer`); a claim with a class is handed to its external provisioner
//!   (the `volume.kubernetes.io/storage-provisioner` annotations, event
//!   `ExternalProvisioning`), or fails with `ProvisioningFailed` for a missing class or an
//!   in-tree provisioner this binary has no plugin for (`kubernetes.io/no-provisioner`);
//!   a claim without a class gets `FailedBinding`. A claim without a class field gets
//!   the default class retroactively.
//! - A claim naming a volume binds to it if it fits (`VolumeMismatch` otherwise) and is
//!   not someone else's (`FailedBinding`). A bound claim whose volume is gone or bound
//!   elsewhere becomes Lost (`ClaimLost`, `ClaimMisbound`).
//! - A volume whose claim is gone becomes Released and its reclaim policy runs: Retain
//!   keeps it; Delete leaves dynamically provisioned volumes to their external
//!   provisioner and marks others Failed (`VolumeFailedDelete`: this binary has no
//!   deleter plugins); Recycle marks it Failed (`VolumeFailedRecycle`).
//!
//! Everything is re-synced every 15 seconds (upstream's `--pvclaimbinder-sync-period`).
//! Binding for pods whose claims wait for their first consumer is the scheduler's
//! (VolumeBinding), not done here.

pub mod matching;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::Context;
use crate::common::EventRecorder;
use crate::common::events::{NORMAL, WARNING};
use crate::workqueue::{WorkQueue, informer, key_of, split_key};

const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";
const SYNC_PERIOD: Duration = Duration::from_secs(15);

struct Binder {
    client: kube::Client,
    claims_queue: WorkQueue,
    volumes_queue: WorkQueue,
    recorder: EventRecorder,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    /// Events already recorded, so a claim waiting for minutes does not get one Event
    /// object per resync (upstream's recorder aggregates them instead).
    /// Forgotten when the claim is deleted.
    emitted: Arc<Mutex<HashSet<(String, String, String)>>>,
}

/// Entry point for the controller table.
pub fn run(ctx: Arc<Context>) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(start(ctx))
}

fn is_pending(c: &PersistentVolumeClaim) -> bool {
    c.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_none_or(str::is_empty)
}

async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let claims_queue = WorkQueue::new();
    let volumes_queue = WorkQueue::new();
    let (cq, vq) = (claims_queue.clone(), volumes_queue.clone());
    let emitted: Arc<Mutex<HashSet<(String, String, String)>>> = Arc::default();
    let forget = emitted.clone();
    let claims = informer(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Delete(c) = ev {
                let uid = c.uid().unwrap_or_default();
                forget
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(claim, _, _)| *claim != uid);
            }
            if let Event::Apply(c) | Event::InitApply(c) | Event::Delete(c) = ev {
                cq.add(key_of(c));
                if let Some(v) = c.spec.as_ref().and_then(|s| s.volume_name.as_deref())
                    && !v.is_empty()
                {
                    vq.add(v);
                }
            }
        },
    );
    let (cq, vq, pending) = (claims_queue.clone(), volumes_queue.clone(), claims.clone());
    let volumes = informer(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(v) | Event::InitApply(v) | Event::Delete(v) = ev {
                vq.add(key_of(v));
                match v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                    Some(r) => cq.add(format!(
                        "{}/{}",
                        r.namespace.as_deref().unwrap_or(""),
                        r.name.as_deref().unwrap_or("")
                    )),
                    // a free volume may be what a waiting claim needs
                    None => {
                        for c in pending.state().iter().filter(|c| is_pending(c)) {
                            cq.add(key_of(c.as_ref()));
                        }
                    }
                }
            }
        },
    );
    let (cq, pending) = (claims_queue.clone(), claims.clone());
    let classes = informer(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
        move |ev| {
            if let Event::Apply(_) | Event::Delete(_) = ev {
                for c in pending.state().iter().filter(|c| is_pending(c)) {
                    cq.add(key_of(c.as_ref()));
                }
            }
        },
    );
    claims.wait_until_ready().await?;
    volumes.wait_until_ready().await?;
    classes.wait_until_ready().await?;
    let binder = Arc::new(Binder {
        recorder: EventRecorder::new(client.clone(), "persistentvolume-controller"),
        client,
        claims_queue: claims_queue.clone(),
        volumes_queue: volumes_queue.clone(),
        claims,
        volumes,
        classes,
        emitted,
    });
    let resync = binder.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SYNC_PERIOD).await;
            for c in resync.claims.state() {
                resync.claims_queue.add(key_of(c.as_ref()));
            }
            for v in resync.volumes.state() {
                resync.volumes_queue.add(key_of(v.as_ref()));
            }
        }
    });
    let (b1, b2) = (binder.clone(), binder);
    tokio::join!(
        claims_queue.run(1, "persistentvolume-binder-claims", move |key| {
            let b = b1.clone();
            async move { b.sync_claim(&key).await }
        }),
        volumes_queue.run(1, "persistentvolume-binder-volumes", move |key| {
            let b = b2.clone();
            async move { b.sync_volume(&key).await }
        }),
    );
    Ok(())
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn set_annotation(
    meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
    value: &str,
) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn volume_phase(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_ref(v: &PersistentVolume) -> Option<&ObjectReference> {
    v.spec.as_ref().and_then(|s| s.claim_ref.as_ref())
}

impl Binder {
    fn claims_api(&self, ns: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn volumes_api(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    async fn event(&self, claim: &PersistentVolumeClaim, type_: &str, reason: &str, message: &str) {
        let key = (
            claim.uid().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let fresh = self
            .emitted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if fresh {
            self.recorder.record(claim, type_, reason, message).await;
        }
    }

    fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(&ObjectRef::new(name))
    }

    async fn sync_claim(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(claim) = self.claims.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(());
        };
        if annotation(&claim.metadata, BIND_COMPLETED).is_some() {
            self.sync_bound_claim(&claim).await
        } else {
            self.sync_unbound_claim(&claim).await
        }
    }

    async fn sync_unbound_claim(&self, claim: &PersistentVolumeClaim) -> anyhow::Result<()> {
        let wanted = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        let volumes = self.volumes.state();
        if wanted.is_empty() {
            let class = matching::claim_class(claim);
            let delay = !class.is_empty()
                && self.class(&class).is_some_and(|c| {
                    c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
                });
            if let Some(pv) = matching::best_match(claim, &volumes, delay) {
                return self.bind(pv, claim).await;
            }
            if self.assign_default_class(claim).await? {
                return Ok(());
            }
            if delay && annotation(&claim.metadata, SELECTED_NODE).is_none() {
                self.event(
                    claim,
                    NORMAL,
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                )
                .await;
            } else if !class.is_empty() {
                return self.provision(claim, &class).await;
            } else {
                self.event(
                    claim,
                    NORMAL,
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                )
                .await;
            }
            return self.claim_status(claim, "Pending", None).await;
        }
        let Some(pv) = volumes
            .iter()
            .find(|v| v.metadata.name.as_deref() == Some(wanted.as_str()))
        else {
            return self.claim_status(claim, "Pending", None).await;
        };
        if claim_ref(pv).is_none() {
            if let Some(why) = matching::unsatisfied(pv, claim) {
                let msg = format!("Cannot bind to requested volume {wanted:?}: {why}");
                self.event(claim, WARNING, "VolumeMismatch", &msg).await;
                return self.claim_status(claim, "Pending", None).await;
            }
            return self.bind(pv, claim).await;
        }
        if matching::bound_to(pv, claim) {
            return self.bind(pv, claim).await;
        }
        let msg = format!("volume {wanted:?} already bound to a different claim.");
        self.event(claim, WARNING, "FailedBinding", &msg).await;
        self.claim_status(claim, "Pending", None).await
    }

    async fn sync_bound_claim(&self, claim: &PersistentVolumeClaim) -> anyhow::Result<()> {
        let wanted = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if wanted.is_empty() {
            return self
                .lost(
                    claim,
                    "ClaimLost",
                    "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
                )
                .await;
        }
        let Some(pv) = self.volumes.get(&ObjectRef::new(&wanted)) else {
            return self
                .lost(
                    claim,
                    "ClaimLost",
                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                )
                .await;
        };
        match claim_ref(&pv) {
            None => self.bind(&pv, claim).await,
            Some(r) if r.uid == claim.metadata.uid => self.bind(&pv, claim).await,
            Some(_) => {
                self.lost(
                    claim,
                    "ClaimMisbound",
                    "Two claims are bound to the same volume, this one is bound incorrectly",
                )
                .await
            }
        }
    }

    async fn lost(
        &self,
        claim: &PersistentVolumeClaim,
        reason: &str,
        msg: &str,
    ) -> anyhow::Result<()> {
        if claim_phase(claim) != "Lost" {
            self.event(claim, WARNING, reason, msg).await;
        }
        self.claim_status(claim, "Lost", None).await
    }

    /// Gives a claim without any class field the default class (upstream's retroactive
    /// default StorageClass assignment); true when the claim was updated.
    async fn assign_default_class(&self, claim: &PersistentVolumeClaim) -> anyhow::Result<bool> {
        let unset = claim
            .spec
            .as_ref()
            .is_some_and(|s| s.storage_class_name.is_none())
            && annotation(&claim.metadata, "volume.beta.kubernetes.io/storage-class").is_none();
        if !unset {
            return Ok(false);
        }
        let is_default = |c: &StorageClass| {
            [DEFAULT_CLASS, BETA_DEFAULT_CLASS]
                .iter()
                .any(|k| annotation(&c.metadata, k) == Some("true"))
        };
        // the newest default wins, as the DefaultStorageClass admission plugin picks
        let Some(default) = self
            .classes
            .state()
            .into_iter()
            .filter(|c| is_default(c))
            .max_by_key(|c| {
                (
                    c.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    c.name_any(),
                )
            })
        else {
            return Ok(false);
        };
        let mut updated = claim.clone();
        if let Some(spec) = updated.spec.as_mut() {
            spec.storage_class_name = Some(default.name_any());
        }
        let ns = claim.namespace().unwrap_or_default();
        self.claims_api(&ns)
            .replace(&claim.name_any(), &PostParams::default(), &updated)
            .await?;
        Ok(true)
    }

    /// No volume fits a claim with a class: hand it to the class's provisioner.
    async fn provision(&self, claim: &PersistentVolumeClaim, class: &str) -> anyhow::Result<()> {
        let Some(sc) = self.class(class) else {
            let msg = format!("storageclass.storage.k8s.io {class:?} not found");
            self.event(claim, WARNING, "ProvisioningFailed", &msg).await;
            return self.claim_status(claim, "Pending", None).await;
        };
        let provisioner = sc.provisioner.clone();
        if provisioner.starts_with("kubernetes.io/") {
            // in-tree plugins: this binary has none
            let msg = format!("no volume plugin matched name: {provisioner}");
            self.event(claim, WARNING, "ProvisioningFailed", &msg).await;
            return self.claim_status(claim, "Pending", None).await;
        }
        if annotation(&claim.metadata, STORAGE_PROVISIONER) != Some(provisioner.as_str())
            || annotation(&claim.metadata, BETA_STORAGE_PROVISIONER) != Some(provisioner.as_str())
        {
            let mut updated = claim.clone();
            set_annotation(&mut updated.metadata, STORAGE_PROVISIONER, &provisioner);
            set_annotation(
                &mut updated.metadata,
                BETA_STORAGE_PROVISIONER,
                &provisioner,
            );
            let ns = claim.namespace().unwrap_or_default();
            self.claims_api(&ns)
                .replace(&claim.name_any(), &PostParams::default(), &updated)
                .await?;
        }
        let msg = format!(
            "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        );
        self.event(claim, NORMAL, "ExternalProvisioning", &msg)
            .await;
        self.claim_status(claim, "Pending", None).await
    }

    /// Binds both ways, each write only when something is missing; a conflict retries.
    async fn bind(
        &self,
        pv: &PersistentVolume,
        claim: &PersistentVolumeClaim,
    ) -> anyhow::Result<()> {
        let pv_name = pv.name_any();
        let ns = claim.namespace().unwrap_or_default();
        let wanted_ref = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: claim.metadata.namespace.clone(),
            name: claim.metadata.name.clone(),
            uid: claim.metadata.uid.clone(),
            resource_version: claim.metadata.resource_version.clone(),
            field_path: None,
        };
        let mut volume = pv.clone();
        let current = claim_ref(pv);
        let same = current.is_some_and(|r| {
            r.name == wanted_ref.name
                && r.namespace == wanted_ref.namespace
                && r.uid == wanted_ref.uid
        });
        if !same {
            if !matching::bound_to(pv, claim) {
                set_annotation(&mut volume.metadata, BOUND_BY_CONTROLLER, "yes");
            }
            if let Some(spec) = volume.spec.as_mut() {
                spec.claim_ref = Some(wanted_ref);
            }
            volume = self
                .volumes_api()
                .replace(&pv_name, &PostParams::default(), &volume)
                .await?;
        }
        if volume_phase(&volume) != "Bound" {
            self.volume_status(&volume, "Bound", None).await?;
        }
        let mut bound = claim.clone();
        let mut dirty = false;
        let named = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .unwrap_or("");
        if named != pv_name {
            if let Some(spec) = bound.spec.as_mut() {
                spec.volume_name = Some(pv_name.clone());
            }
            set_annotation(&mut bound.metadata, BOUND_BY_CONTROLLER, "yes");
            dirty = true;
        }
        if annotation(&bound.metadata, BIND_COMPLETED) != Some("yes") {
            set_annotation(&mut bound.metadata, BIND_COMPLETED, "yes");
            dirty = true;
        }
        let bound = if dirty {
            self.claims_api(&ns)
                .replace(&claim.name_any(), &PostParams::default(), &bound)
                .await?
        } else {
            bound
        };
        self.claim_status(&bound, "Bound", Some(&volume)).await
    }

    /// Writes a claim's phase (and, once bound, the volume's capacity and access modes).
    async fn claim_status(
        &self,
        claim: &PersistentVolumeClaim,
        phase: &str,
        volume: Option<&PersistentVolume>,
    ) -> anyhow::Result<()> {
        let old = claim.status.clone().unwrap_or_default();
        let mut status = PersistentVolumeClaimStatus {
            phase: Some(phase.to_string()),
            ..old.clone()
        };
        match volume.and_then(|v| v.spec.as_ref()) {
            Some(spec) => {
                status.access_modes = spec.access_modes.clone();
                status.capacity = spec.capacity.clone();
            }
            None => {
                status.access_modes = None;
                status.capacity = None;
            }
        }
        if status == old {
            return Ok(());
        }
        let mut updated = claim.clone();
        updated.status = Some(status);
        let ns = claim.namespace().unwrap_or_default();
        match self
            .claims_api(&ns)
            .replace_status(&claim.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::common::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn volume_status(
        &self,
        pv: &PersistentVolume,
        phase: &str,
        message: Option<&str>,
    ) -> anyhow::Result<PersistentVolume> {
        let old = pv.status.clone().unwrap_or_default();
        let status = PersistentVolumeStatus {
            phase: Some(phase.to_string()),
            message: message.map(str::to_string),
            last_phase_transition_time: if old.phase.as_deref() == Some(phase) {
                old.last_phase_transition_time.clone()
            } else {
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    crate::common::now(),
                ))
            },
            reason: None,
        };
        if status.phase == old.phase && status.message == old.message {
            return Ok(pv.clone());
        }
        let mut updated = pv.clone();
        updated.status = Some(status);
        Ok(self
            .volumes_api()
            .replace_status(&pv.name_any(), &PostParams::default(), &updated)
            .await?)
    }

    async fn sync_volume(&self, name: &str) -> anyhow::Result<()> {
        let Some(pv) = self.volumes.get(&ObjectRef::new(name)) else {
            return Ok(());
        };
        let Some(r) = claim_ref(&pv).cloned() else {
            self.volume_status(&pv, "Available", None).await?;
            return Ok(());
        };
        if r.uid.as_deref().is_none_or(str::is_empty) {
            // reserved for a claim that has not bound yet: the claim's sync binds it
            self.volume_status(&pv, "Available", None).await?;
            return Ok(());
        }
        let ns = r.namespace.clone().unwrap_or_default();
        let claim_name = r.name.clone().unwrap_or_default();
        // the cache may lag a fresh binding: ask the server before releasing anything
        let claim = match self.claims.get(&ObjectRef::new(&claim_name).within(&ns)) {
            Some(c) if c.metadata.uid == r.uid => Some(c),
            _ => self
                .claims_api(&ns)
                .get_opt(&claim_name)
                .await?
                .map(Arc::new)
                .filter(|c| c.metadata.uid == r.uid),
        };
        let Some(claim) = claim else {
            let pv = if matches!(volume_phase(&pv), "Released" | "Failed") {
                (*pv).clone()
            } else {
                self.volume_status(&pv, "Released", None).await?
            };
            return self.reclaim(&pv).await;
        };
        let named = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if named.is_empty() {
            self.claims_queue.add(key_of(claim.as_ref()));
            return Ok(());
        }
        if named == name {
            self.volume_status(&pv, "Bound", None).await?;
            return Ok(());
        }
        // bound to a claim that is bound elsewhere
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        if annotation(&pv.metadata, PROVISIONED_BY).is_some() && policy == "Delete" {
            let pv = self.volume_status(&pv, "Released", None).await?;
            return self.reclaim(&pv).await;
        }
        let mut unbound = (*pv).clone();
        let by_controller = annotation(&pv.metadata, BOUND_BY_CONTROLLER).is_some();
        if let Some(spec) = unbound.spec.as_mut() {
            if by_controller {
                spec.claim_ref = None;
            } else if let Some(r) = spec.claim_ref.as_mut() {
                r.uid = None;
            }
        }
        if by_controller && let Some(a) = unbound.metadata.annotations.as_mut() {
            a.remove(BOUND_BY_CONTROLLER);
        }
        let unbound = self
            .volumes_api()
            .replace(name, &PostParams::default(), &unbound)
            .await?;
        self.volume_status(&unbound, "Available", None).await?;
        Ok(())
    }

    /// Runs the reclaim policy of a released volume.
    async fn reclaim(&self, pv: &PersistentVolume) -> anyhow::Result<()> {
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        let name = pv.name_any();
        match policy {
            "Delete" => {
                if let Some(p) = annotation(&pv.metadata, PROVISIONED_BY)
                    && !p.starts_with("kubernetes.io/")
                {
                    // the external provisioner deletes what it provisioned
                    return Ok(());
                }
                let msg = format!(
                    "error getting deleter volume plugin for volume {name:?}: no deletable volume plugin matched"
                );
                self.fail_volume(pv, "VolumeFailedDelete", &msg).await
            }
            "Recycle" => {
                self.fail_volume(
                    pv,
                    "VolumeFailedRecycle",
                    "No recycler plugin found for the volume!",
                )
                .await
            }
            _ => Ok(()),
        }
    }

    async fn fail_volume(
        &self,
        pv: &PersistentVolume,
        reason: &str,
        msg: &str,
    ) -> anyhow::Result<()> {
        if volume_phase(pv) == "Failed" {
            return Ok(());
        }
        self.recorder.record(pv, WARNING, reason, msg).await;
        self.volume_status(pv, "Failed", Some(msg)).await?;
        Ok(())
    }
}
