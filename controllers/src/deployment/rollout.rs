//! The actions of a Deployment sync (upstream's `sync.go`, `rolling.go`, `recreate.go`):
//! finding or creating the new ReplicaSet, scaling ReplicaSets (with the
//! `ScalingReplicaSet` event), rolling and recreate steps, proportional scaling, and
//! cleaning up old ReplicaSets beyond `revisionHistoryLimit`.

use k8s_openapi::api::apps::v1::{DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};

use super::Sync;
use super::progress::{self, PROGRESSING};
use super::util::{self, deployment_replicas, spec_replicas};
use crate::common::pods::is_pod_active;
use crate::common::{self, OwnerInfo, events};

fn active(rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rss.iter()
        .filter(|rs| spec_replicas(rs) > 0)
        .cloned()
        .collect()
}

fn split_new_old(s: &Sync<'_>, mut rss: Vec<ReplicaSet>) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    rss.sort_by(util::by_creation);
    let template =
        s.d.spec
            .as_ref()
            .map(|sp| sp.template.clone())
            .unwrap_or_default();
    let pos = rss.iter().position(|rs| {
        rs.spec
            .as_ref()
            .and_then(|sp| sp.template.as_ref())
            .is_some_and(|t| util::equal_ignore_hash(t, &template))
    });
    let new = pos.map(|i| rss.remove(i));
    (new, rss)
}

fn with_new(old: &[ReplicaSet], new: Option<&ReplicaSet>) -> Vec<ReplicaSet> {
    old.iter().cloned().chain(new.cloned()).collect()
}

/// Upstream's `getAllReplicaSetsAndSyncRevision`: (new, all old).
pub async fn all_and_sync_revision(
    s: &mut Sync<'_>,
    rss: Vec<ReplicaSet>,
    create: bool,
) -> anyhow::Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
    let (existing, old) = split_new_old(s, rss);
    let new_revision = util::max_revision(&old) + 1;
    let new = match existing {
        Some(rs) => Some(sync_existing_new_rs(s, rs, new_revision).await?),
        None if create => Some(create_new_rs(s, &old, new_revision).await?),
        None => None,
    };
    Ok((new, old))
}

async fn sync_existing_new_rs(
    s: &mut Sync<'_>,
    rs: ReplicaSet,
    revision: i64,
) -> anyhow::Result<ReplicaSet> {
    let mut copy = rs.clone();
    let annotations_changed = util::set_new_rs_annotations(&s.d, &mut copy, revision, true);
    let min_ready = s.d.spec.as_ref().and_then(|sp| sp.min_ready_seconds);
    let spec = copy.spec.get_or_insert_with(Default::default);
    let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
    if annotations_changed || min_ready_changed {
        spec.min_ready_seconds = min_ready;
        return Ok(s
            .rs_api
            .replace(&rs.name_any(), &PostParams::default(), &copy)
            .await?);
    }
    s.set_revision(util::revision(&copy)).await?;
    let status = s.d.status.clone().unwrap_or_default();
    if progress::progress_deadline(&s.d).is_some()
        && progress::get_condition(&status, PROGRESSING).is_none()
    {
        let mut status = status;
        let msg = format!("Found new replica set {:?}", copy.name_any());
        progress::set_condition(
            &mut status,
            progress::condition(PROGRESSING, "True", progress::FOUND_NEW_RS_REASON, msg),
        );
        s.update_status(status).await?;
    }
    Ok(copy)
}

fn new_rs_object(s: &Sync<'_>, hash: &str) -> ReplicaSet {
    let spec = s.d.spec.clone().unwrap_or_default();
    let mut template = spec.template.clone();
    let tmeta = template.metadata.get_or_insert_with(Default::default);
    tmeta
        .labels
        .get_or_insert_with(Default::default)
        .insert(util::POD_TEMPLATE_HASH.into(), hash.into());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(util::POD_TEMPLATE_HASH.into(), hash.into());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", s.name())),
            namespace: s.d.namespace(),
            owner_references: Some(vec![OwnerInfo::of(&s.d).controller_ref()]),
            labels: tmeta.labels.clone(),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

async fn create_new_rs(
    s: &mut Sync<'_>,
    old: &[ReplicaSet],
    revision: i64,
) -> anyhow::Result<ReplicaSet> {
    let template =
        s.d.spec
            .as_ref()
            .map(|sp| sp.template.clone())
            .unwrap_or_default();
    let collisions = s.d.status.as_ref().and_then(|st| st.collision_count);
    let hash = util::compute_hash(&template, collisions);
    let mut rs = new_rs_object(s, &hash);
    let all = with_new(old, Some(&rs));
    let replicas = util::new_rs_new_replicas(&s.d, &all, &rs);
    if let Some(spec) = rs.spec.as_mut() {
        spec.replicas = Some(replicas);
    }
    util::set_new_rs_annotations(&s.d, &mut rs, revision, false);
    let created = match s.rs_api.create(&PostParams::default(), &rs).await {
        Ok(c) => c,
        Err(e) if common::is_conflict(&e) => {
            return adopt_existing_or_collide(s, &rs.name_any(), e).await;
        }
        Err(e) => {
            let msg = format!(
                "Failed to create new replica set {:?}: {}",
                rs.name_any(),
                common::error_message(&e)
            );
            if progress::progress_deadline(&s.d).is_some() {
                let mut status = s.d.status.clone().unwrap_or_default();
                let c = progress::condition(
                    PROGRESSING,
                    "False",
                    progress::FAILED_RS_CREATE_REASON,
                    msg.clone(),
                );
                progress::set_condition(&mut status, c);
                let _ = s.update_status(status).await;
            }
            s.event(events::WARNING, progress::FAILED_RS_CREATE_REASON, &msg)
                .await;
            return Err(e.into());
        }
    };
    if replicas > 0 {
        let msg = format!(
            "Scaled up replica set {} from 0 to {replicas}",
            created.name_any()
        );
        s.event(events::NORMAL, "ScalingReplicaSet", &msg).await;
    }
    s.set_revision(revision).await?;
    if progress::progress_deadline(&s.d).is_some() {
        let mut status = s.d.status.clone().unwrap_or_default();
        let msg = format!("Created new replica set {:?}", created.name_any());
        progress::set_condition(
            &mut status,
            progress::condition(PROGRESSING, "True", progress::NEW_RS_REASON, msg),
        );
        s.update_status(status).await?;
    }
    Ok(created)
}

/// The new ReplicaSet's name is taken: it is ours if we control it and its template
/// matches (a slow cache); otherwise it is a hash collision, counted in the status so the
/// next sync hashes differently.
async fn adopt_existing_or_collide(
    s: &mut Sync<'_>,
    name: &str,
    err: kube::Error,
) -> anyhow::Result<ReplicaSet> {
    let existing = s.rs_api.get(name).await?;
    let ours = common::controller_ref::controller_of(&existing.metadata)
        .is_some_and(|r| Some(&r.uid) == s.d.metadata.uid.as_ref());
    let template =
        s.d.spec
            .as_ref()
            .map(|sp| sp.template.clone())
            .unwrap_or_default();
    let same = existing
        .spec
        .as_ref()
        .and_then(|sp| sp.template.as_ref())
        .is_some_and(|t| util::equal_ignore_hash(t, &template));
    if ours && same {
        return Ok(existing);
    }
    let mut status = s.d.status.clone().unwrap_or_default();
    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
    s.update_status(status).await?;
    Err(err.into())
}

/// Sets a ReplicaSet's size (and the replica annotations); records `ScalingReplicaSet`
/// when the size changed. Returns whether it scaled, and the updated object.
pub async fn scale_rs(
    s: &Sync<'_>,
    rs: &ReplicaSet,
    new_scale: i32,
) -> anyhow::Result<(bool, ReplicaSet)> {
    let old = spec_replicas(rs);
    let desired = deployment_replicas(&s.d);
    let max = desired + util::max_surge(&s.d);
    let size_changed = old != new_scale;
    if !size_changed && !util::replicas_annotations_need_update(rs, desired, max) {
        return Ok((false, rs.clone()));
    }
    let mut copy = rs.clone();
    copy.spec.get_or_insert_with(Default::default).replicas = Some(new_scale);
    util::set_replicas_annotations(&mut copy, desired, max);
    let updated = s
        .rs_api
        .replace(&rs.name_any(), &PostParams::default(), &copy)
        .await?;
    if size_changed {
        let op = if new_scale > old { "up" } else { "down" };
        let msg = format!(
            "Scaled {op} replica set {} from {old} to {new_scale}",
            rs.name_any()
        );
        s.event(events::NORMAL, "ScalingReplicaSet", &msg).await;
    }
    Ok((size_changed, updated))
}

/// Upstream's `isScalingEvent`: an active ReplicaSet was sized for another replica count.
pub fn is_scaling_event(s: &Sync<'_>, rss: &[ReplicaSet]) -> bool {
    let desired = deployment_replicas(&s.d);
    active(rss)
        .iter()
        .filter_map(util::desired_replicas_annotation)
        .any(|d| d != desired)
}

/// Upstream's `syncStatusOnly` (a Deployment being deleted).
pub async fn sync_status_only(
    s: &mut Sync<'_>,
    rss: Vec<ReplicaSet>,
) -> anyhow::Result<DeploymentStatus> {
    let (new, old) = all_and_sync_revision(s, rss, false).await?;
    let all = with_new(&old, new.as_ref());
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    let status = progress::calculate(&refs, new.as_ref(), &s.d);
    s.update_status(status.clone()).await?;
    Ok(status)
}

/// Upstream's `sync`: scaling (also while paused), then status.
pub async fn sync_scale(
    s: &mut Sync<'_>,
    rss: Vec<ReplicaSet>,
) -> anyhow::Result<DeploymentStatus> {
    let (new, old) = all_and_sync_revision(s, rss, false).await?;
    scale(s, new.as_ref(), &old).await?;
    let paused = s.d.spec.as_ref().and_then(|sp| sp.paused).unwrap_or(false);
    if paused {
        cleanup(s, &old).await?;
    }
    let all = with_new(&old, new.as_ref());
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    let status = progress::calculate(&refs, new.as_ref(), &s.d);
    s.update_status(status.clone()).await?;
    Ok(status)
}

/// Upstream's `scale`: proportional scaling across the active ReplicaSets.
async fn scale(s: &Sync<'_>, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> anyhow::Result<()> {
    let desired = deployment_replicas(&s.d);
    if let Some(rs) = active_or_latest(new, old) {
        if spec_replicas(&rs) != desired {
            scale_rs(s, &rs, desired).await?;
        }
        return Ok(());
    }
    if let Some(n) = new
        && is_saturated(s, n)
    {
        for rs in active(old) {
            scale_rs(s, &rs, 0).await?;
        }
        return Ok(());
    }
    if !util::is_rolling_update(&s.d) {
        return Ok(());
    }
    let mut all = active(&with_new(old, new));
    let current: i32 = all.iter().map(spec_replicas).sum();
    let allowed = if desired > 0 {
        desired + util::max_surge(&s.d)
    } else {
        0
    };
    let to_add = allowed - current;
    if to_add > 0 {
        all.sort_by(util::by_size_newer);
    } else if to_add < 0 {
        all.sort_by(util::by_size_older);
    }
    let mut added = 0;
    let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
    for rs in &all {
        let p = util::proportion(rs, &s.d, to_add, added);
        sizes.push(spec_replicas(rs) + p);
        added += p;
    }
    for (i, rs) in all.iter().enumerate() {
        if i == 0 && to_add != 0 {
            sizes[0] = (sizes[0] + to_add - added).max(0);
        }
        scale_rs(s, rs, sizes[i]).await?;
    }
    Ok(())
}

fn active_or_latest(new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Option<ReplicaSet> {
    if new.is_none() && old.is_empty() {
        return None;
    }
    let mut old = old.to_vec();
    old.sort_by(|a, b| util::by_creation(b, a));
    let all = active(&with_new(&old, new));
    match all.len() {
        0 => new.cloned().or_else(|| old.first().cloned()),
        1 => all.into_iter().next(),
        _ => None,
    }
}

fn is_saturated(s: &Sync<'_>, rs: &ReplicaSet) -> bool {
    let desired = deployment_replicas(&s.d);
    let available = rs
        .status
        .as_ref()
        .and_then(|st| st.available_replicas)
        .unwrap_or(0);
    spec_replicas(rs) == desired
        && util::desired_replicas_annotation(rs) == Some(desired)
        && available == desired
}

/// Upstream's `rolloutRolling`.
pub async fn rollout_rolling(
    s: &mut Sync<'_>,
    rss: Vec<ReplicaSet>,
) -> anyhow::Result<DeploymentStatus> {
    let (new, old) = all_and_sync_revision(s, rss, true).await?;
    let Some(mut new_rs) = new else {
        anyhow::bail!("no new replica set");
    };
    let all = with_new(&old, Some(&new_rs));
    let desired = deployment_replicas(&s.d);
    let current = spec_replicas(&new_rs);
    let target = if current > desired {
        desired
    } else {
        util::new_rs_new_replicas(&s.d, &all, &new_rs)
    };
    let (scaled_up, updated) = scale_rs(s, &new_rs, target).await?;
    new_rs = updated;
    if scaled_up {
        return sync_rollout_status(s, &old, &new_rs).await;
    }
    let old = scale_down_old_rolling(s, old, &new_rs).await?;
    let all = with_new(&old, Some(&new_rs));
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    let current_status = progress::calculate(&refs, Some(&new_rs), &s.d);
    if progress::is_complete(&s.d, &current_status) {
        cleanup(s, &old).await?;
    }
    sync_rollout_status(s, &old, &new_rs).await
}

async fn sync_rollout_status(
    s: &mut Sync<'_>,
    old: &[ReplicaSet],
    new: &ReplicaSet,
) -> anyhow::Result<DeploymentStatus> {
    let all = with_new(old, Some(new));
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    let status = progress::rollout_status(&refs, Some(new), &s.d);
    s.update_status(status.clone()).await?;
    Ok(status)
}

/// Upstream's `reconcileOldReplicaSets`: first scale down unhealthy old replicas, then
/// old replicas as far as maxUnavailable allows. Returns the old ReplicaSets as updated.
async fn scale_down_old_rolling(
    s: &Sync<'_>,
    mut old: Vec<ReplicaSet>,
    new_rs: &ReplicaSet,
) -> anyhow::Result<Vec<ReplicaSet>> {
    let old_pods: i32 = old.iter().map(spec_replicas).sum();
    if old_pods == 0 {
        return Ok(old);
    }
    let desired = deployment_replicas(&s.d);
    let all_pods = old_pods + spec_replicas(new_rs);
    let min_available = desired - util::max_unavailable(&s.d);
    let avail = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|st| st.available_replicas)
            .unwrap_or(0)
    };
    let new_unavailable = spec_replicas(new_rs) - avail(new_rs);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Ok(old);
    }
    old.sort_by(util::by_creation);
    // unhealthy replicas first: they do not count towards availability anyway
    let mut cleaned = 0;
    for rs in old.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        let (size, available) = (spec_replicas(rs), avail(rs));
        if size == 0 || size == available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(size - available);
        *rs = scale_rs(s, rs, size - down).await?.1;
        cleaned += down;
    }
    let available_now: i32 = old.iter().map(avail).sum::<i32>() + avail(new_rs);
    if available_now <= min_available {
        return Ok(old);
    }
    let total = available_now - min_available;
    let mut done = 0;
    for rs in old.iter_mut() {
        if done >= total {
            break;
        }
        let size = spec_replicas(rs);
        if size == 0 {
            continue;
        }
        let down = size.min(total - done);
        *rs = scale_rs(s, rs, size - down).await?.1;
        done += down;
    }
    Ok(old)
}

/// Upstream's `rolloutRecreate`: old ReplicaSets to zero, wait for their pods to be
/// gone, then the new ReplicaSet to full size.
pub async fn rollout_recreate(
    s: &mut Sync<'_>,
    rss: Vec<ReplicaSet>,
) -> anyhow::Result<DeploymentStatus> {
    let (mut new, old) = all_and_sync_revision(s, rss, false).await?;
    let mut scaled_down = false;
    let mut old_now = Vec::with_capacity(old.len());
    for rs in old {
        if spec_replicas(&rs) > 0 {
            let (scaled, updated) = scale_rs(s, &rs, 0).await?;
            scaled_down |= scaled;
            old_now.push(updated);
        } else {
            old_now.push(rs);
        }
    }
    let old = old_now;
    if scaled_down || old_pods_running(s, new.as_ref(), &old) {
        return recreate_status(s, &old, new.as_ref()).await;
    }
    if new.is_none() {
        let rss = with_new(&old, None);
        let (n, _) = all_and_sync_revision(s, rss, true).await?;
        new = n;
    }
    if let Some(rs) = new.as_ref() {
        let desired = deployment_replicas(&s.d);
        new = Some(scale_rs(s, rs, desired).await?.1);
    }
    let all = with_new(&old, new.as_ref());
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    if progress::is_complete(&s.d, &progress::calculate(&refs, new.as_ref(), &s.d)) {
        cleanup(s, &old).await?;
    }
    recreate_status(s, &old, new.as_ref()).await
}

async fn recreate_status(
    s: &mut Sync<'_>,
    old: &[ReplicaSet],
    new: Option<&ReplicaSet>,
) -> anyhow::Result<DeploymentStatus> {
    let all = with_new(old, new);
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    let status = progress::rollout_status(&refs, new, &s.d);
    s.update_status(status.clone()).await?;
    Ok(status)
}

/// Upstream's `oldPodsRunning`: any old ReplicaSet still reports pods, or any pod of an
/// old ReplicaSet is not finished.
fn old_pods_running(s: &Sync<'_>, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> bool {
    if old
        .iter()
        .any(|rs| rs.status.as_ref().is_some_and(|st| st.replicas > 0))
    {
        return true;
    }
    let old_uids: Vec<String> = old.iter().filter_map(|rs| rs.uid()).collect();
    let new_uid = new.and_then(|rs| rs.uid());
    s.sh.pods.state().iter().any(|p| {
        let owner = common::controller_ref::controller_of(&p.metadata).map(|r| r.uid.clone());
        owner.is_some_and(|u| old_uids.contains(&u) && Some(&u) != new_uid.as_ref())
            && (is_pod_active(p) || p.metadata.deletion_timestamp.is_some())
    })
}

/// Upstream's `cleanupDeployment`: deletes the oldest fully scaled-down ReplicaSets beyond
/// `revisionHistoryLimit`.
async fn cleanup(s: &Sync<'_>, old: &[ReplicaSet]) -> anyhow::Result<()> {
    let Some(limit) = s.d.spec.as_ref().and_then(|sp| sp.revision_history_limit) else {
        return Ok(());
    };
    let mut cleanable: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = cleanable.len() as i64 - i64::from(limit);
    if diff <= 0 {
        return Ok(());
    }
    cleanable.sort_by(|a, b| util::by_revision(a, b));
    for rs in cleanable.into_iter().take(diff as usize) {
        let status_replicas = rs.status.as_ref().map(|st| st.replicas).unwrap_or(0);
        let observed = rs
            .status
            .as_ref()
            .and_then(|st| st.observed_generation)
            .unwrap_or(0);
        if status_replicas != 0
            || spec_replicas(rs) != 0
            || rs.metadata.generation.unwrap_or(0) > observed
        {
            continue;
        }
        tracing::debug!(rs = %rs.name_any(), "cleaning up old replica set");
        match s
            .rs_api
            .delete(&rs.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if common::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
