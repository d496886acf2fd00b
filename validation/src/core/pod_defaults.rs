//! Pod and pod-template defaults, as upstream's `pkg/apis/core/v1/defaults.go`
//! (`SetDefaults_Pod`, `SetDefaults_PodSpec`, `SetDefaults_Container`, probes, volumes).

use crate::util::{for_each_mut, get_bool, get_int, has, set_default, set_default_str, with_mut};
use serde_json::{Value, json};

/// Upstream's default file mode for projected files (0644).
const DEFAULT_MODE: i64 = 0o644;

/// `SetDefaults_Pod` plus everything below it.
pub fn default_pod(pod: &mut Value) {
    with_mut(pod, "/spec", |spec| {
        default_pod_spec(spec);
        for list in ["containers", "initContainers"] {
            for_each_mut(spec, list, requests_from_limits);
        }
        set_default(spec, "enableServiceLinks", json!(true));
        if get_bool(spec, "hostNetwork") == Some(true) {
            for list in ["containers", "initContainers"] {
                for_each_mut(spec, list, host_network_ports);
            }
        }
    });
}

/// A `PodTemplateSpec` (Deployments, Jobs, ...): only `PodSpec` defaults apply, not the
/// Pod-only ones (`enableServiceLinks`, requests from limits).
pub fn default_pod_template(template: &mut Value) {
    with_mut(template, "/spec", default_pod_spec);
}

/// If limits are given but requests are not, requests default to the limits.
fn requests_from_limits(container: &mut Value) {
    let Some(limits) = container
        .pointer("/resources/limits")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    with_mut(container, "/resources", |res| {
        set_default(res, "requests", json!({}));
        if let Some(requests) = res.get_mut("requests").and_then(Value::as_object_mut) {
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        }
    });
}

fn host_network_ports(container: &mut Value) {
    for_each_mut(container, "ports", |port| {
        if get_int(port, "hostPort").unwrap_or(0) == 0
            && let Some(cp) = port.get("containerPort").cloned()
            && let Some(m) = port.as_object_mut()
        {
            m.insert("hostPort".into(), cp);
        }
    });
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
pub fn default_pod_spec(spec: &mut Value) {
    set_default_str(spec, "dnsPolicy", "ClusterFirst");
    set_default_str(spec, "restartPolicy", "Always");
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default_str(spec, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers"] {
        for_each_mut(spec, list, default_container);
    }
    for_each_mut(spec, "ephemeralContainers", default_container_common);
    for_each_mut(spec, "volumes", default_volume);
}

fn default_container(c: &mut Value) {
    default_container_common(c);
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        with_mut(c, &format!("/{probe}"), default_probe);
    }
    for hook in ["postStart", "preStop"] {
        with_mut(c, &format!("/lifecycle/{hook}/httpGet"), default_http_get);
    }
}

/// `SetDefaults_Container` parts that ephemeral containers share.
fn default_container_common(c: &mut Value) {
    if !has(c, "imagePullPolicy") || c.get("imagePullPolicy").and_then(Value::as_str) == Some("") {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag(image).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        set_default_str(c, "imagePullPolicy", policy);
    }
    set_default_str(c, "terminationMessagePath", "/dev/termination-log");
    set_default_str(c, "terminationMessagePolicy", "File");
    for_each_mut(c, "ports", |p| set_default_str(p, "protocol", "TCP"));
    for_each_mut(c, "env", |e| {
        with_mut(e, "/valueFrom/fieldRef", |f| {
            set_default_str(f, "apiVersion", "v1")
        })
    });
}

/// The tag an image reference resolves to: `latest` when it has neither tag nor digest,
/// `None` when it is pinned by digest only.
pub fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    match last_segment.rsplit_once(':') {
        Some((_, tag)) => Some(tag.to_string()),
        None if digest => None,
        None => Some("latest".to_string()),
    }
}

fn default_probe(p: &mut Value) {
    set_default(p, "timeoutSeconds", json!(1));
    set_default(p, "periodSeconds", json!(10));
    set_default(p, "successThreshold", json!(1));
    set_default(p, "failureThreshold", json!(3));
    with_mut(p, "/httpGet", default_http_get);
}

fn default_http_get(h: &mut Value) {
    set_default_str(h, "path", "/");
    set_default_str(h, "scheme", "HTTP");
}

/// Every volume source upstream knows; a volume naming none of them gets an `emptyDir`.
pub const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Value) {
    if !VOLUME_SOURCES.iter().any(|s| has(v, s)) {
        set_default(v, "emptyDir", json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        with_mut(v, &format!("/{source}"), |s| {
            set_default(s, "defaultMode", json!(DEFAULT_MODE))
        });
    }
    with_mut(v, "/hostPath", |h| set_default(h, "type", json!("")));
    with_mut(v, "/downwardAPI", |d| {
        for_each_mut(d, "items", |i| {
            with_mut(i, "/fieldRef", |f| set_default_str(f, "apiVersion", "v1"))
        });
    });
    with_mut(v, "/projected", |p| {
        for_each_mut(p, "sources", |s| {
            with_mut(s, "/downwardAPI", |d| {
                for_each_mut(d, "items", |i| {
                    with_mut(i, "/fieldRef", |f| set_default_str(f, "apiVersion", "v1"))
                });
            });
            with_mut(s, "/serviceAccountToken", |t| {
                set_default(t, "expirationSeconds", json!(3600))
            });
        });
    });
    with_mut(v, "/iscsi", |i| {
        set_default_str(i, "iscsiInterface", "default")
    });
    with_mut(
        v,
        "/ephemeral/volumeClaimTemplate/spec",
        super::storage::default_pvc_spec,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "1"}},
             "livenessProbe": {"httpGet": {"port": 80}},
             "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
            {"name": "b", "image": "nginx:1.25"},
            {"name": "c", "image": "registry:5000/x@sha256:abc"},
            {"name": "d", "image": "x:latest", "imagePullPolicy": "Never"},
        ], "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "s"}}]}});
        default_pod(&mut pod);
        let s = &pod["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["schedulerName"], "default-scheduler");
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["enableServiceLinks"], true);
        let c = &s["containers"];
        assert_eq!(c[0]["imagePullPolicy"], "Always");
        assert_eq!(c[1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[2]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[3]["imagePullPolicy"], "Never");
        assert_eq!(c[0]["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c[0]["terminationMessagePolicy"], "File");
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(c[0]["resources"]["requests"], json!({"cpu": "1"}));
        assert_eq!(c[0]["livenessProbe"]["periodSeconds"], 10);
        assert_eq!(c[0]["livenessProbe"]["httpGet"]["path"], "/");
        assert_eq!(c[0]["livenessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c[0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(s["volumes"][1]["secret"]["defaultMode"], 420);
    }

    #[test]
    fn template_defaults_skip_pod_only_fields() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}}]}});
        default_pod_template(&mut t);
        assert!(t["spec"].get("enableServiceLinks").is_none());
        assert!(
            t["spec"]["containers"][0]["resources"]
                .get("requests")
                .is_none()
        );
        assert_eq!(t["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("localhost:5000/nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("localhost:5000/nginx:1").as_deref(), Some("1"));
        assert_eq!(image_tag("nginx@sha256:x"), None);
    }

    #[test]
    fn host_network_copies_ports() {
        let mut pod = json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 8080}]}]}});
        default_pod(&mut pod);
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
    }
}
