//! Objects every cluster has from the start: the `default`, `kube-system`, `kube-public`
//! and `kube-node-lease` namespaces, and the `kubernetes` Service in `default` pointing at
//! this server, and the system PriorityClasses, as upstream's bootstrap controllers keep them.

use machinery::ApiError;
use serde_json::{Value, json};

use crate::rest::{Rest, WriteOptions};

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The PriorityClasses every cluster has (name, value, description), as upstream creates them.
const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: "kube-apiserver".into(),
        ..Default::default()
    }
}

async fn create_if_missing(
    rest: &Rest,
    group: &str,
    plural: &str,
    ns: &str,
    obj: Value,
) -> Result<(), ApiError> {
    let res = rest
        .registry
        .get(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} not served")))?;
    let name = obj.pointer("/metadata/name").and_then(Value::as_str);
    if name.is_some_and(|n| rest.get_stored(&res, ns, n).is_some()) {
        return Ok(());
    }
    match rest.create(&res, ns, obj, &opts()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        // Another API server created the Service a moment ago and holds its cluster IP:
        // a conflict, after which the next pass finds the Service.
        Err(e) if e.code == 422 && plural == "services" => {
            Err(ApiError::new(409, "Conflict", e.message))
        }
        Err(e) => Err(e),
    }
}

/// Marks the stored Services' IPs and ports as used.
pub fn restore_allocations(rest: &Rest) {
    if let Some(res) = rest.registry.get("", "v1", "services") {
        let (items, _) = rest.store.snapshot(&crate::rest::prefix(&res, ""));
        for svc in items {
            rest.allocators.restore(&svc);
        }
    }
}

/// How often start-up reconciles again after a conflict before it gives up.
pub const CONFLICT_RETRIES: u32 = 20;

/// The pause before reconciling again after a conflict: long enough for the watch cache
/// to show what the other writer wrote.
pub const CONFLICT_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs a start-up reconciliation again while it meets conflicts (409): several API
/// servers started together on one etcd write the same objects at the same moment, and
/// the next pass reads what the others wrote.
pub async fn retry_on_conflict<F, Fut>(what: &str, mut pass: F) -> Result<(), ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let mut attempt = 0;
    loop {
        match pass().await {
            Err(e) if e.code == 409 && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tracing::info!(error = %e.message, attempt, "{what}: another writer got there first; reconciling again");
                tokio::time::sleep(CONFLICT_PAUSE).await;
            }
            r => return r,
        }
    }
}

/// Creates what is missing; existing objects are left as they are (RBAC policy objects
/// are reconciled). Reconciles again on conflicts with other API servers.
pub async fn ensure(
    rest: &Rest,
    advertise_address: &str,
    secure_port: u16,
) -> Result<(), ApiError> {
    retry_on_conflict("bootstrap objects", || {
        ensure_once(rest, advertise_address, secure_port)
    })
    .await
}

async fn ensure_once(
    rest: &Rest,
    advertise_address: &str,
    secure_port: u16,
) -> Result<(), ApiError> {
    for ns in NAMESPACES {
        create_if_missing(
            rest,
            "",
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    for (name, value, description) in SYSTEM_PRIORITY_CLASSES {
        create_if_missing(
            rest,
            "scheduling.k8s.io",
            "priorityclasses",
            "",
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value, "description": description}),
        )
        .await?;
    }
    let ip = rest.allocators.first_ip().to_string();
    create_if_missing(
        rest,
        "",
        "services",
        "default",
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}], "sessionAffinity": "None", "type": "ClusterIP"},
        }),
    )
    .await?;
    ensure_kubernetes_endpoints(rest, advertise_address, secure_port).await?;
    if rest.authorizer.rbac_enabled() {
        ensure_rbac_policy(rest).await?;
    }
    Ok(())
}

/// Creates the upstream bootstrap RBAC policy and reconciles what exists (roles gain
/// missing rules, bindings missing subjects), unless an object opted out with
/// `rbac.authorization.kubernetes.io/autoupdate: "false"`.
async fn ensure_rbac_policy(rest: &Rest) -> Result<(), ApiError> {
    let policy = rbac::bootstrap_policy();
    let cluster = |objs: Vec<Value>, plural: &'static str| {
        objs.into_iter().map(move |o| (String::new(), plural, o))
    };
    let namespaced = |objs: Vec<(String, Value)>, plural: &'static str| {
        objs.into_iter().map(move |(ns, o)| (ns, plural, o))
    };
    let all = cluster(policy.cluster_roles, "clusterroles")
        .chain(cluster(policy.cluster_role_bindings, "clusterrolebindings"))
        .chain(namespaced(policy.roles, "roles"))
        .chain(namespaced(policy.role_bindings, "rolebindings"));
    let mut written = 0;
    for (ns, plural, wanted) in all {
        let res = rest
            .registry
            .get("rbac.authorization.k8s.io", "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} not served")))?;
        let name = wanted
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let existing = rest.get_stored(&res, &ns, &name);
        let Some(updated) = rbac::reconcile(existing.as_deref(), &wanted) else {
            continue;
        };
        written += 1;
        match existing {
            None => {
                rest.create(&res, &ns, updated, &opts()).await?;
            }
            Some(old) if rbac::needs_recreate(&old, &updated) => {
                rest.delete(&res, &ns, &name, &Default::default()).await?;
                rest.create(&res, &ns, updated, &opts()).await?;
            }
            Some(_) => {
                rest.update(&res, &ns, &name, "", updated, &opts()).await?;
            }
        }
    }
    written += fill_aggregated_roles(rest).await?;
    tracing::info!(written, "bootstrap RBAC policy reconciled");
    Ok(())
}

/// Writes the aggregated rules of ClusterRoles with an `aggregationRule` (admin, edit,
/// view, ...) once at start, so they read as upstream's do. Keeping them current as roles
/// change is the clusterrole-aggregation controller's job (kube-controller-manager).
async fn fill_aggregated_roles(rest: &Rest) -> Result<usize, ApiError> {
    let res = rest
        .registry
        .get("rbac.authorization.k8s.io", "v1", "clusterroles")
        .ok_or_else(|| ApiError::internal("clusterroles not served"))?;
    let (stored, _) = rest.store.snapshot(&crate::rest::prefix(&res, ""));
    let all: Vec<Value> = stored.iter().map(|o| (**o).clone()).collect();
    let mut written = 0;
    for (name, rules) in rbac::aggregate(&all) {
        let Some(current) = all
            .iter()
            .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name.as_str()))
        else {
            continue;
        };
        if current.get("rules").and_then(Value::as_array) == Some(&rules) {
            continue;
        }
        let mut updated = current.clone();
        updated["rules"] = Value::Array(rules);
        rest.update(&res, "", &name, "", updated, &opts()).await?;
        written += 1;
    }
    Ok(written)
}

/// The `kubernetes` Service's Endpoints and EndpointSlice name this server, as upstream's
/// endpoint reconciler keeps them.
async fn ensure_kubernetes_endpoints(rest: &Rest, ip: &str, port: u16) -> Result<(), ApiError> {
    let labels = json!({"endpointslice.kubernetes.io/skip-mirror": "true"});
    create_if_missing(
        rest,
        "",
        "endpoints",
        "default",
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}),
    )
    .await?;
    create_if_missing(
        rest,
        "discovery.k8s.io",
        "endpointslices",
        "default",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
    )
    .await
}
