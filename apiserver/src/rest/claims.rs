//! Service IPs and node ports claimed in storage, so that several API servers sharing
//! one etcd never hand out the same one. Each process allocates from its own pool
//! ([`crate::strategy::Allocators`]); when the storage is shared the allocation then
//! claims every value by creating a key for it, which only one server can do. An IP's
//! claim is an upstream-shaped `IPAddress` at `/registry/ipaddresses/<ip>` (the layout
//! upstream's allocator uses since 1.33); a node port's is `/registry/servicenodeports/<port>`.
//! With the embedded store this process is the only writer and nothing is claimed.

use std::net::Ipv4Addr;

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use super::Rest;
use crate::storage::StorageError;
use crate::strategy::services::{Release, UpdateAlloc, held_by, is_services};

/// How many times a create retries after another server claimed what we allocated.
const ATTEMPTS: usize = 16;

fn ip_key(ip: Ipv4Addr) -> String {
    format!("/registry/ipaddresses/{ip}")
}

fn port_key(port: u32) -> String {
    format!("/registry/servicenodeports/{port}")
}

/// What stopped a claim.
enum Lost {
    Ip(Ipv4Addr),
    Port(u32),
    Failed(StorageError),
}

fn meta(svc: &Value, f: &str) -> String {
    svc.pointer(&format!("/metadata/{f}"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn ip_claim(ip: Ipv4Addr, svc: &Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": {"parentRef": {
            "group": "", "resource": "services",
            "namespace": meta(svc, "namespace"), "name": meta(svc, "name"),
        }},
    })
}

/// Keeps this server's pools in step with the claims of every server: a value another
/// server claims is marked used here, and freed when its claim goes. Runs for as long as
/// the process does; only with shared storage.
pub async fn follow_claims(rest: Rest) {
    if !rest.store.is_shared() {
        return;
    }
    loop {
        let from = rest.store.current_revision();
        for key in ["/registry/ipaddresses/", "/registry/servicenodeports/"] {
            for claim in rest.store.snapshot(key).0 {
                mark(&rest, key, &meta(&claim, "name"), true);
            }
        }
        let Ok(mut watch) = rest.store.watch("/registry/", from) else {
            continue;
        };
        while let Ok(ev) = watch.next().await {
            let Some((prefix, name)) = ["/registry/ipaddresses/", "/registry/servicenodeports/"]
                .into_iter()
                .find_map(|p| ev.key.strip_prefix(p).map(|n| (p, n)))
            else {
                continue;
            };
            let used = ev.kind != crate::storage::EventType::Deleted;
            mark(&rest, prefix, name, used);
        }
        tracing::warn!("the claims watch fell behind; re-reading the claims");
    }
}

fn mark(rest: &Rest, prefix: &str, name: &str, used: bool) {
    if prefix.contains("ipaddresses") {
        if let Ok(ip) = name.parse::<Ipv4Addr>() {
            rest.allocators.mark_ip(ip, used);
        }
    } else if let Ok(port) = name.parse::<u32>() {
        rest.allocators.mark_port(port, used);
    }
}

impl Rest {
    /// Allocates a new Service's IP and node ports, claiming them in shared storage.
    pub(super) async fn admit_service_create(
        &self,
        res: &ResourceInfo,
        obj: &mut Value,
        dry_run: bool,
    ) -> Result<Release, ApiError> {
        if dry_run || !self.store.is_shared() || !is_services(res) {
            return self.allocators.admit_create(res, obj, dry_run);
        }
        let allocate = |svc: &mut Value| {
            self.allocators
                .admit_create(res, svc, false)
                .map(|taken| UpdateAlloc {
                    taken,
                    ..Default::default()
                })
        };
        let alloc = self.allocate_and_claim(res, obj, allocate, true).await?;
        Ok(alloc.taken)
    }

    /// Runs `allocate` on a copy of `obj` and claims what it took; when another server
    /// holds a value, keeps it marked used here and allocates again (a value the client
    /// asked for then fails as "already allocated"). With `is_create`, losing a claim to
    /// the same Service made on another server is AlreadyExists.
    async fn allocate_and_claim(
        &self,
        res: &ResourceInfo,
        obj: &mut Value,
        allocate: impl Fn(&mut Value) -> Result<UpdateAlloc, ApiError>,
        is_create: bool,
    ) -> Result<UpdateAlloc, ApiError> {
        let pristine = obj.clone();
        let name = meta(&pristine, "name");
        for _ in 0..ATTEMPTS {
            let mut candidate = pristine.clone();
            let mut alloc = allocate(&mut candidate)?;
            match self.claim(&candidate, &alloc.taken).await {
                Ok(()) => {
                    *obj = candidate;
                    return Ok(alloc);
                }
                Err(Lost::Ip(ip)) => alloc.taken.keep_ip(ip),
                Err(Lost::Port(p)) => alloc.taken.keep_port(p),
                Err(Lost::Failed(e)) => {
                    alloc.abort(&self.allocators);
                    return Err(super::storage_error(res, &name, e));
                }
            }
            alloc.abort(&self.allocators);
            if is_create
                && self
                    .store
                    .get(&super::key(res, &meta(&pristine, "namespace"), &name))
                    .is_some()
            {
                return Err(ApiError::already_exists(&res.group, &res.plural, &name));
            }
        }
        Err(ApiError::internal(
            "failed to allocate a service IP or node port: every candidate was claimed by another API server",
        ))
    }

    /// Creates a claim for each value; on losing one, takes back those made so far.
    async fn claim(&self, svc: &Value, release: &Release) -> Result<(), Lost> {
        let mut made = Vec::new();
        let wanted = release
            .ips()
            .map(|ip| (ip_key(ip), ip_claim(ip, svc), Lost::Ip(ip)))
            .chain(release.ports().iter().map(|p| {
                let claim = json!({"metadata": {"name": p.to_string()}, "service": format!("{}/{}", meta(svc, "namespace"), meta(svc, "name"))});
                (port_key(*p), claim, Lost::Port(*p))
            }));
        for (key, value, lost) in wanted {
            match self.store.create(&key, value).await {
                Ok(_) => made.push(key),
                Err(e) => {
                    for k in made {
                        let _ = self.store.delete(&k, None).await;
                    }
                    return Err(match e {
                        StorageError::AlreadyExists(_) => lost,
                        e => Lost::Failed(e),
                    });
                }
            }
        }
        Ok(())
    }

    /// Keeps a Service's allocations across an update and claims what the update newly
    /// allocates (node ports for a type change to NodePort, an IP for an ExternalName that
    /// becomes a ClusterIP). Settle it with [`Rest::finish_service_update`].
    pub(super) async fn admit_service_update(
        &self,
        res: &ResourceInfo,
        old: &Value,
        new: &mut Value,
        dry_run: bool,
    ) -> Result<UpdateAlloc, ApiError> {
        if !is_services(res) {
            return Ok(UpdateAlloc::default());
        }
        if dry_run || !self.store.is_shared() {
            let alloc = self.allocators.admit_update(res, old, new)?;
            if dry_run {
                alloc.abort(&self.allocators);
                return Ok(UpdateAlloc::default());
            }
            return Ok(alloc);
        }
        let allocate = |svc: &mut Value| self.allocators.admit_update(res, old, svc);
        self.allocate_and_claim(res, new, allocate, false).await
    }

    /// Settles an update's allocations: once it is stored, what the old object alone held
    /// is freed (and its claims dropped); if it was not, what it took is given back.
    pub(super) async fn finish_service_update(&self, alloc: UpdateAlloc, stored: bool) {
        let shared = self.store.is_shared();
        let values = if stored { &alloc.freed } else { &alloc.taken };
        let keys: Vec<String> = if shared {
            values
                .ips()
                .map(ip_key)
                .chain(values.ports().iter().copied().map(port_key))
                .collect()
        } else {
            Vec::new()
        };
        if stored {
            alloc.commit(&self.allocators);
        } else {
            alloc.abort(&self.allocators);
        }
        self.unclaim(keys).await;
    }

    /// Gives back a Service's claims (after a failed create, or once it is deleted).
    pub(super) async fn unclaim_service(&self, res: &ResourceInfo, svc: &Value) {
        if !self.store.is_shared() || !is_services(res) {
            return;
        }
        let (ip, ports) = held_by(svc);
        let keys = ip
            .map(ip_key)
            .into_iter()
            .chain(ports.into_iter().map(port_key));
        self.unclaim(keys).await;
    }

    async fn unclaim(&self, keys: impl IntoIterator<Item = String>) {
        for k in keys {
            if let Err(e) = self.store.delete(&k, None).await
                && !matches!(e, StorageError::NotFound(_))
            {
                tracing::warn!(key = %k, error = %e, "could not give back a service allocation");
            }
        }
    }
}
