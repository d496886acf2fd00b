//! What the benchmark creates and removes: throwaway namespaces and the request bodies of
//! the small ConfigMaps and Pods put in them. Bodies are built before any timing starts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::conn::{Conn, JSON, Op, describe_failure};

/// The label every benchmark object carries.
pub const LABEL: (&str, &str) = ("app.kubernetes.io/created-by", "bench-apiserver");

/// A random lowercase suffix for `bench-<suffix>` namespaces.
pub fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    format!("{:08x}", hasher.finish() as u32)
}

/// The path of a namespaced collection, e.g. `/api/v1/namespaces/ns/configmaps`; roles
/// and rolebindings live in the RBAC group.
pub fn collection(ns: &str, resource: &str) -> String {
    let group = match resource {
        "roles" | "rolebindings" => "/apis/rbac.authorization.k8s.io/v1",
        _ => "/api/v1",
    };
    format!("{group}/namespaces/{ns}/{resource}")
}

/// A small ConfigMap: two labels and two data keys, about 300 bytes of JSON.
pub fn configmap(name: &str) -> Bytes {
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {LABEL.0: LABEL.1, "bench/name": name}},
        "data": {
            "greeting": "hello from bench-apiserver",
            "config.yaml": "replicas: 3\nimage: registry.k8s.io/pause:3.10\nlogLevel: info\n",
        },
    });
    Bytes::from(body.to_string())
}

/// A small Pod with one container; with no scheduler or kubelet it stays Pending.
pub fn pod(name: &str) -> Bytes {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {LABEL.0: LABEL.1}},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    });
    Bytes::from(body.to_string())
}

/// A Role named after the user it is for, granting get and list of ConfigMaps.
pub fn role(name: &str) -> Bytes {
    let body = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "labels": {LABEL.0: LABEL.1}},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    });
    Bytes::from(body.to_string())
}

/// A RoleBinding of user `name` to Role `name`.
pub fn role_binding(name: &str) -> Bytes {
    let body = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "labels": {LABEL.0: LABEL.1}},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
    });
    Bytes::from(body.to_string())
}

/// Pre-built creates of `names` in `ns`'s `resource` collection, bodies from `make`.
pub fn creates(
    ns: &str,
    resource: &str,
    names: impl Iterator<Item = String>,
    make: fn(&str) -> Bytes,
) -> Vec<Op> {
    let path = collection(ns, resource);
    names
        .map(|name| Op::with_body(Method::POST, path.clone(), JSON, make(&name)))
        .collect()
}

/// Creates namespace `name`.
pub async fn create_namespace(conn: &Conn, name: &str) -> Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {LABEL.0: LABEL.1}}});
    let op = Op::with_body(
        Method::POST,
        "/api/v1/namespaces",
        JSON,
        Bytes::from(body.to_string()),
    );
    conn.send_ok(&op)
        .await
        .map_err(|e| anyhow!("cannot create namespace {name}: {e:#}"))?;
    // pods need the `default` ServiceAccount (ServiceAccount admission); without a
    // controller-manager nobody else creates it. A 409 means the controller was first.
    let body =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
    let op = Op::with_body(
        Method::POST,
        format!("/api/v1/namespaces/{name}/serviceaccounts"),
        JSON,
        Bytes::from(body.to_string()),
    );
    let reply = conn.send(&op).await?;
    if !reply.status.is_success() && reply.status != StatusCode::CONFLICT {
        return Err(anyhow!(
            "cannot create the default ServiceAccount of {name}: {}",
            describe_failure(&reply)
        ));
    }
    Ok(())
}

/// Deletes every object of `resource` in `ns` with one deletecollection, returning how
/// long the server took and how many objects it reported deleted.
pub async fn delete_collection(conn: &Conn, ns: &str, resource: &str) -> Result<(Duration, usize)> {
    let op = Op {
        method: Method::DELETE,
        ..Op::get(collection(ns, resource), JSON)
    };
    let start = Instant::now();
    let reply = conn.send(&op).await?;
    let took = start.elapsed();
    if reply.status != StatusCode::OK {
        return Err(anyhow!(
            "deletecollection of {resource} in {ns}: {}",
            describe_failure(&reply)
        ));
    }
    let list: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let deleted = list
        .get("items")
        .and_then(|i| i.as_array())
        .map_or(0, Vec::len);
    Ok((took, deleted))
}

/// Deletes namespace `name` without waiting for it to go away (it stays Terminating when
/// no namespace controller runs).
pub async fn delete_namespace(conn: &Conn, name: &str) -> Result<()> {
    let op = Op {
        method: Method::DELETE,
        ..Op::get(format!("/api/v1/namespaces/{name}"), JSON)
    };
    let reply = conn.send(&op).await?;
    if !reply.status.is_success() && reply.status != StatusCode::NOT_FOUND {
        return Err(anyhow!(
            "deleting namespace {name}: {}",
            describe_failure(&reply)
        ));
    }
    Ok(())
}

/// The current resourceVersion of `ns`'s `resource` collection (a one-item list).
pub async fn list_resource_version(conn: &Conn, ns: &str, resource: &str) -> Result<String> {
    let reply = conn
        .send_ok(&Op::get(
            format!("{}?limit=1", collection(ns, resource)),
            JSON,
        ))
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&reply.body)?;
    list.pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the list of {resource} in {ns} has no metadata.resourceVersion"))
}
