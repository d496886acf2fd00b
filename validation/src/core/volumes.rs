//! Pod volumes and volume mounts, as upstream's `ValidateVolumes` and
//! `ValidateVolumeMounts`.

use super::pod_defaults::VOLUME_SOURCES;
use crate::util::{
    Errs, arr, child, get_int, index, not_found, str_or_empty, validate_dns1123_label,
};
use machinery::FieldError;
use machinery::names;
use serde_json::{Value, json};

/// Upstream's `fileModeErrorMsg`.
const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Fields each volume source must set.
const REQUIRED_FIELDS: &[(&str, &str)] = &[
    ("hostPath", "path"),
    ("secret", "secretName"),
    ("configMap", "name"),
    ("persistentVolumeClaim", "claimName"),
    ("nfs", "server"),
    ("nfs", "path"),
    ("csi", "driver"),
    ("image", "reference"),
];

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// Validates `volumes` and returns the errors plus the volume names seen.
pub fn validate_volumes(volumes: &[Value], path: &str) -> (Errs, Vec<String>) {
    let mut errs = Errs::new();
    let mut names_seen: Vec<String> = Vec::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = index(path, i);
        let name = str_or_empty(vol, "name");
        errs.extend(validate_volume_source(vol, &p));
        let name_path = child(&p, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&name_path, ""));
        } else {
            errs.extend(validate_dns1123_label(name, &name_path));
        }
        if names_seen.iter().any(|n| n == name) {
            errs.push(FieldError::duplicate(&name_path, json!(name)));
        } else {
            names_seen.push(name.to_string());
        }
    }
    (errs, names_seen)
}

fn validate_volume_source(vol: &Value, path: &str) -> Errs {
    let mut errs = Errs::new();
    let mut count = 0;
    for source in VOLUME_SOURCES {
        let Some(s) = vol.get(*source).filter(|s| !s.is_null()) else {
            continue;
        };
        count += 1;
        if count > 1 {
            errs.push(FieldError::forbidden(
                child(path, source),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        let p = child(path, source);
        for (src, field) in REQUIRED_FIELDS {
            if src == source && str_or_empty(s, field).is_empty() {
                errs.push(FieldError::required(child(&p, field), ""));
            }
        }
        match *source {
            "hostPath" => errs.extend(crate::util::one_of(s, "type", &p, HOST_PATH_TYPES, false)),
            "secret" | "configMap" => errs.extend(validate_projection(s, &p)),
            "nfs" => {
                let nfs_path = str_or_empty(s, "path");
                if !nfs_path.is_empty() && !nfs_path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        child(&p, "path"),
                        json!(nfs_path),
                        "must be an absolute path",
                    ));
                }
            }
            "downwardAPI" | "projected" => errs.extend(validate_default_mode(s, &p)),
            "emptyDir" => {
                if let Some(size) = s.get("sizeLimit")
                    && crate::util::parse_quantity(size).is_some_and(|q| q < 0.0)
                {
                    errs.push(FieldError::forbidden(
                        child(&p, "sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    ));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn validate_default_mode(s: &Value, p: &str) -> Errs {
    match get_int(s, "defaultMode") {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(
            child(p, "defaultMode"),
            json!(m),
            FILE_MODE_MSG,
        )],
        _ => Vec::new(),
    }
}

/// Secret and ConfigMap volume sources: default mode and `items` key/path/mode.
fn validate_projection(s: &Value, p: &str) -> Errs {
    let mut errs = validate_default_mode(s, p);
    for (i, item) in arr(s, "items").iter().enumerate() {
        let ip = index(&child(p, "items"), i);
        if str_or_empty(item, "key").is_empty() {
            errs.push(FieldError::required(child(&ip, "key"), ""));
        }
        let path = str_or_empty(item, "path");
        if path.is_empty() {
            errs.push(FieldError::required(child(&ip, "path"), ""));
        } else {
            errs.extend(validate_local_descending_path(path, &child(&ip, "path")));
        }
        if let Some(m) = get_int(item, "mode").filter(|m| !(0..=0o777).contains(m)) {
            errs.push(FieldError::invalid(
                child(&ip, "mode"),
                json!(m),
                FILE_MODE_MSG,
            ));
        }
    }
    errs
}

/// `validateLocalDescendingPath`: relative, without `..` segments.
pub fn validate_local_descending_path(target: &str, path: &str) -> Errs {
    let mut errs = Errs::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(
            path,
            json!(target),
            "must be a relative path",
        ));
    }
    if target.split(['/', '\\']).any(|seg| seg == "..") {
        errs.push(FieldError::invalid(
            path,
            json!(target),
            "must not contain '..'",
        ));
    }
    errs
}

/// `ValidateVolumeMounts` for one container.
pub fn validate_volume_mounts(mounts: &[Value], volumes: &[String], path: &str) -> Errs {
    let mut errs = Errs::new();
    let mut mount_points: Vec<&str> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(path, i);
        let name = str_or_empty(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !volumes.iter().any(|v| v == name) {
            errs.push(not_found(child(&p, "name"), json!(name)));
        }
        let mount_path = str_or_empty(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if mount_points.contains(&mount_path) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                json!(mount_path),
                "must be unique",
            ));
        }
        mount_points.push(mount_path);
        let sub_path = str_or_empty(m, "subPath");
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(
                sub_path,
                &child(&p, "subPath"),
            ));
        }
        errs.extend(crate::util::one_of(
            m,
            "mountPropagation",
            &p,
            &["Bidirectional", "HostToContainer", "None"],
            false,
        ));
    }
    errs
}

/// `ValidateEnvFrom`/config references: the names of referenced objects.
pub fn validate_object_ref_name(name: &str, path: &str) -> Errs {
    names::is_dns1123_subdomain(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, json!(name), m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(e: &Errs) -> Vec<String> {
        e.iter().map(FieldError::message).collect()
    }

    #[test]
    fn volume_rules() {
        let vols = vec![
            json!({"name": "a", "emptyDir": {}}),
            json!({"name": "a", "emptyDir": {}, "secret": {"secretName": "s"}}),
            json!({"name": "Bad"}),
            json!({"name": "c", "configMap": {}}),
            json!({"name": "d", "secret": {"secretName": "s", "defaultMode": 4096}}),
        ];
        let (errs, names) = validate_volumes(&vols, "spec.volumes");
        assert_eq!(names, vec!["a", "Bad", "c", "d"]);
        let m = msgs(&errs);
        assert_eq!(
            m[0],
            "spec.volumes[1].secret: Forbidden: may not specify more than 1 volume type"
        );
        assert_eq!(m[1], "spec.volumes[1].name: Duplicate value: \"a\"");
        assert_eq!(
            m[2],
            "spec.volumes[2]: Required value: must specify a volume type"
        );
        assert!(m[3].starts_with(
            "spec.volumes[2].name: Invalid value: \"Bad\": a lowercase RFC 1123 label"
        ));
        assert_eq!(m[4], "spec.volumes[3].configMap.name: Required value");
        assert_eq!(
            m[5],
            "spec.volumes[4].secret.defaultMode: Invalid value: 4096: must be a number between 0 and 0777 (octal), both inclusive"
        );
    }

    #[test]
    fn mount_rules() {
        let mounts = vec![
            json!({"name": "data", "mountPath": "/d"}),
            json!({"name": "x", "mountPath": "/d", "subPath": "../up"}),
            json!({"name": "data"}),
        ];
        let m = msgs(&validate_volume_mounts(
            &mounts,
            &["data".into()],
            "c.volumeMounts",
        ));
        assert_eq!(
            m,
            vec![
                "c.volumeMounts[1].name: Invalid value: \"x\": not found",
                "c.volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
                "c.volumeMounts[1].subPath: Invalid value: \"../up\": must not contain '..'",
                "c.volumeMounts[2].mountPath: Required value",
            ]
        );
    }
}
