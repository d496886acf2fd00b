//! The ServiceAccount admission plugin on pod creation: the pod runs as `default` unless
//! it names an account; the account must exist (the `default` one is waited for
//! briefly, as the controller creates it with the namespace); unless automounting is
//! off, every container and init container mounts a projected `kube-api-access-*`
//! volume (a bound token, the cluster CA from `kube-root-ca.crt`, the namespace); the
//! account's imagePullSecrets are used when the pod names none. Mirror pods are left as
//! they are but may not reference accounts or secrets.

use std::time::Duration;

use machinery::ApiError;
use serde_json::{Value, json};

use crate::rest::Rest;

/// Where the token volume is mounted in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the generated token volume's name.
const VOLUME_PREFIX: &str = "kube-api-access-";
/// Upstream's lifetime of the projected token (an hour and 7 seconds, so kubelets that
/// refresh late are noticed).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// How often and how long the `default` account is looked for before giving up.
const DEFAULT_ACCOUNT_ATTEMPTS: u32 = 10;
const DEFAULT_ACCOUNT_RETRY: Duration = Duration::from_millis(150);
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn forbidden(pod: &Value, why: &str) -> ApiError {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ApiError::forbidden("", "pods", name, why)
}

/// Applies the plugin to a new pod in `ns`.
pub async fn admit(rest: &Rest, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    let mirror = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .is_some();
    if mirror {
        return check_mirror(pod);
    }
    let name = pod
        .pointer("/spec/serviceAccountName")
        .or_else(|| pod.pointer("/spec/serviceAccount"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    pod["spec"]["serviceAccountName"] = json!(name);
    pod["spec"]["serviceAccount"] = json!(name);
    let Some(account) = lookup(rest, ns, &name).await else {
        return Err(forbidden(
            pod,
            &format!(
                "error looking up service account {ns}/{name}: serviceaccount \"{name}\" not found"
            ),
        ));
    };
    if automount(&account, pod) {
        mount_token(pod);
    }
    let pull_secrets = pod
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if !pull_secrets
        && let Some(secrets) = account.get("imagePullSecrets").and_then(Value::as_array)
        && !secrets.is_empty()
    {
        pod["spec"]["imagePullSecrets"] = json!(secrets);
    }
    Ok(())
}

/// The stored account; `default` is looked for again for a moment, since the
/// serviceaccount controller creates it right after the namespace.
async fn lookup(rest: &Rest, ns: &str, name: &str) -> Option<Value> {
    let res = rest.registry.get("", "v1", "serviceaccounts")?;
    let attempts = if name == "default" {
        DEFAULT_ACCOUNT_ATTEMPTS
    } else {
        1
    };
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(DEFAULT_ACCOUNT_RETRY).await;
        }
        if let Some(sa) = rest.get_stored(&res, ns, name) {
            return Some((*sa).clone());
        }
    }
    None
}

/// The pod's choice wins, then the account's, else true.
fn automount(account: &Value, pod: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

/// The projected volume upstream mounts for the API: a bound token, the CA and the
/// namespace.
fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

/// Mounts the token volume in every container and init container that does not already
/// mount something at the token path, adding the volume when one of them needs it.
fn mount_token(pod: &mut Value) {
    let existing = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .and_then(|vols| {
            vols.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|n| n.starts_with(VOLUME_PREFIX))
                .map(str::to_string)
        });
    let name = existing
        .clone()
        .unwrap_or_else(|| crate::rest::generate_name(VOLUME_PREFIX));
    let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod["spec"].get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let mounted = c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|m| {
                    m.iter().any(|m| {
                        m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH)
                    })
                });
            if mounted || !c.is_object() {
                continue;
            }
            match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                Some(mounts) => mounts.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
            needed = true;
        }
    }
    if needed && existing.is_none() {
        match pod["spec"].get_mut("volumes").and_then(Value::as_array_mut) {
            Some(vols) => vols.push(token_volume(&name)),
            None => pod["spec"]["volumes"] = json!([token_volume(&name)]),
        }
    }
}

/// Mirror pods (static pods the kubelet reports) must not reference accounts or secrets.
fn check_mirror(pod: &Value) -> Result<(), ApiError> {
    let spec = &pod["spec"];
    if spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(forbidden(
            pod,
            "a mirror pod may not reference service accounts",
        ));
    }
    let secret_volume = spec
        .get("volumes")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|v| v.get("secret").is_some()));
    let secret_env = ["containers", "initContainers"].iter().any(|list| {
        spec.get(*list).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                let env = c.get("env").and_then(Value::as_array);
                let env_from = c.get("envFrom").and_then(Value::as_array);
                env.is_some_and(|e| {
                    e.iter()
                        .any(|e| e.pointer("/valueFrom/secretKeyRef").is_some())
                }) || env_from.is_some_and(|e| e.iter().any(|e| e.get("secretRef").is_some()))
            })
        })
    });
    let pull_secrets = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if secret_volume || secret_env || pull_secrets {
        return Err(forbidden(pod, "a mirror pod may not reference secrets"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_volume_is_mounted_once_per_container() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]},
            ],
        }});
        mount_token(&mut pod);
        let vols = pod["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(vols.len(), 1);
        let name = vols[0]["name"].as_str().expect("name");
        assert!(name.starts_with(VOLUME_PREFIX) && name.len() == VOLUME_PREFIX.len() + 5);
        assert_eq!(
            vols[0]["projected"]["sources"][1]["configMap"]["name"],
            "kube-root-ca.crt"
        );
        let want = json!([{"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}]);
        assert_eq!(pod["spec"]["initContainers"][0]["volumeMounts"], want);
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"], want);
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"],
            json!([{"name": "own", "mountPath": TOKEN_MOUNT_PATH}])
        );
        // a second pass (an update, a re-admission) adds nothing
        let before = pod.clone();
        mount_token(&mut pod);
        assert_eq!(pod, before);
    }

    #[test]
    fn automount_pod_choice_wins() {
        let sa_off = json!({"automountServiceAccountToken": false});
        assert!(!automount(&sa_off, &json!({"spec": {}})));
        assert!(automount(
            &sa_off,
            &json!({"spec": {"automountServiceAccountToken": true}})
        ));
        assert!(automount(&json!({}), &json!({"spec": {}})));
    }

    #[test]
    fn mirror_pods_reference_no_secrets() {
        let base = json!({"metadata": {"name": "m"}, "spec": {"containers": [{"name": "c"}]}});
        assert!(check_mirror(&base).is_ok());
        let mut with_secret = base.clone();
        with_secret["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "x"}}]);
        assert_eq!(
            check_mirror(&with_secret).map_err(|e| e.message),
            Err("pods \"m\" is forbidden: a mirror pod may not reference secrets".into())
        );
        let mut with_account = base;
        with_account["spec"]["serviceAccountName"] = json!("default");
        assert!(check_mirror(&with_account).is_err());
    }
}
