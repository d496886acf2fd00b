//! Validation of CustomResourceDefinitions (upstream
//! `pkg/apis/apiextensions/validation/validation.go`), with upstream's field paths
//! (including its internal names such as `spec.conversion.webhookClientConfig` and
//! `additionalPrinterColumns[0].JSONPath`). Generic ObjectMeta rules are left to the
//! caller; only the CRD's own name rule is checked here.

use machinery::FieldError;
use machinery::names::{is_dns1035_label, is_dns1123_subdomain};
use serde_json::{Value, json};

use crate::schema::{Schema, strings};
use crate::structural;

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn text(x: &str) -> Value {
    Value::String(x.into())
}

/// Validates a CRD on create.
pub fn validate_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = vec![];
    let name = s(crd, "/metadata/name");
    if !name.is_empty() {
        let mut problems = is_dns1123_subdomain(name);
        let want = format!("{}.{}", s(crd, "/spec/names/plural"), s(crd, "/spec/group"));
        if name != want {
            problems.push(r#"must be spec.names.plural+"."+spec.group"#.into());
        }
        for p in problems {
            errs.push(FieldError::invalid("metadata.name", text(name), p));
        }
    }
    spec(&crd["spec"], &mut errs);
    if let Some(accepted) = crd
        .pointer("/status/acceptedNames")
        .filter(|a| a.is_object())
    {
        names(accepted, "status.acceptedNames", &mut errs);
    }
    if let Some(stored) = crd.pointer("/status/storedVersions") {
        stored_versions(stored, &crd["spec"], &mut errs);
    }
    api_approval(crd, &mut errs);
    errs
}

/// Validates a CRD update: everything [`validate_crd`] checks, plus the immutable
/// fields (`spec.group`, `spec.names.plural`; `spec.scope` and `spec.names.kind` once
/// the old CRD is Established).
pub fn validate_crd_update(crd: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_crd(crd);
    let established = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    let mut immutable = |pointer: &str, path: &str| {
        if crd.pointer(pointer) != old.pointer(pointer) {
            let v = crd.pointer(pointer).cloned().unwrap_or(Value::Null);
            errs.push(FieldError::invalid(path, v, "field is immutable"));
        }
    };
    if established {
        immutable("/spec/scope", "spec.scope");
        immutable("/spec/names/kind", "spec.names.kind");
    }
    immutable("/spec/group", "spec.group");
    immutable("/spec/names/plural", "spec.names.plural");
    errs
}

fn spec(spec: &Value, errs: &mut Vec<FieldError>) {
    let group = s(spec, "/group");
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        let problems = is_dns1123_subdomain(group);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                "spec.group",
                text(group),
                problems.join(","),
            ));
        } else if !group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                text(group),
                "should be a domain with at least one dot",
            ));
        }
    }
    match s(spec, "/scope") {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            text(other),
            &["Cluster", "Namespaced"],
        )),
    }
    versions(spec, errs);
    for k in ["plural", "singular", "kind", "listKind"] {
        if s(spec, &format!("/names/{k}")).is_empty() {
            errs.push(FieldError::required(format!("spec.names.{k}"), ""));
        }
    }
    names(&spec["names"], "spec.names", errs);
    if spec["preserveUnknownFields"] == json!(true) {
        let d = "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead";
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            Value::Bool(true),
            d,
        ));
    }
    if let Some(c) = spec.get("conversion").filter(|c| c.is_object()) {
        conversion(c, errs);
    }
}

fn versions(spec: &Value, errs: &mut Vec<FieldError>) {
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return;
    }
    let mut seen: Vec<&str> = vec![];
    let mut storage = 0;
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = s(v, "/name");
        for p in is_dns1035_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), text(name), p));
        }
        if v["storage"] == json!(true) {
            storage += 1;
        }
        if !seen.contains(&name) {
            seen.push(name);
        }
        version(v, &path, errs);
    }
    let all = Value::Array(versions.clone());
    if storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            all.clone(),
            "must have exactly one version marked as storage version",
        ));
    }
    if seen.len() != versions.len() {
        errs.push(FieldError::invalid(
            "spec.versions",
            all,
            "must contain unique version names",
        ));
    }
}

fn version(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(w) = v.get("deprecationWarning").and_then(Value::as_str) {
        let at = format!("{path}.deprecationWarning");
        if v["deprecated"] != json!(true) {
            errs.push(FieldError::invalid(
                &at,
                text(w),
                "can only be set for deprecated versions",
            ));
        } else if w.len() > 256 {
            errs.push(FieldError::too_long(&at, 256));
        } else if w.chars().any(|c| c.is_control()) {
            errs.push(FieldError::invalid(
                &at,
                text(w),
                "must only contain printable UTF-8 characters",
            ));
        }
    }
    let schema_path = format!("{path}.schema.openAPIV3Schema");
    let schema = v
        .pointer("/schema/openAPIV3Schema")
        .filter(|x| x.is_object());
    let compiled = match schema {
        None => {
            errs.push(FieldError::required(&schema_path, "schemas are required"));
            None
        }
        Some(schema) => {
            let before = errs.len();
            structural::check(schema, &schema_path, errs);
            let compiled = Schema::parse(schema, &schema_path, errs);
            defaults(schema, &compiled, &schema_path, errs);
            (errs.len() == before).then_some(compiled)
        }
    };
    if let Some(sub) = v.get("subresources").filter(|x| x.is_object()) {
        subresources(sub, &format!("{path}.subresources"), errs);
    }
    let columns = v.get("additionalPrinterColumns").and_then(Value::as_array);
    for (i, c) in columns.into_iter().flatten().enumerate() {
        column(c, &format!("{path}.additionalPrinterColumns[{i}]"), errs);
    }
    if let Some(fields) = v.get("selectableFields").and_then(Value::as_array) {
        selectable_fields(
            fields,
            compiled.as_ref(),
            &format!("{path}.selectableFields"),
            errs,
        );
    }
}

/// Every `default` must validate against its own schema node.
fn defaults(raw: &Value, s: &Schema, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(d) = &s.default {
        let mut out = crate::validate::Out::default();
        let name = format!("{path}.default");
        crate::validate::validate(s, d, &name, &mut out);
        errs.extend(out.errs);
    }
    for (k, p) in &s.properties {
        if let Some(praw) = raw.pointer(&format!(
            "/properties/{}",
            k.replace('~', "~0").replace('/', "~1")
        )) {
            defaults(praw, p, &format!("{path}.properties[{k}]"), errs);
        }
    }
    if let (Some(i), Some(iraw)) = (&s.items, raw.get("items")) {
        defaults(iraw, i, &format!("{path}.items"), errs);
    }
    if let (Some(a), Some(araw)) = (&s.additional, raw.get("additionalProperties")) {
        defaults(araw, a, &format!("{path}.additionalProperties"), errs);
    }
}

fn simple_json_path(p: &str, at: &str, errs: &mut Vec<FieldError>) -> bool {
    let problem = if p.is_empty() {
        "must not be empty"
    } else if !p.starts_with('.') {
        "must be a simple json path starting with ."
    } else {
        return true;
    };
    errs.push(FieldError::invalid(at, text(p), problem));
    false
}

fn subresources(sub: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(scale) = sub.get("scale").filter(|x| x.is_object()) else {
        return;
    };
    for (k, prefix, d) in [
        (
            "specReplicasPath",
            ".spec.",
            "should be a json path under .spec",
        ),
        (
            "statusReplicasPath",
            ".status.",
            "should be a json path under .status",
        ),
    ] {
        let at = format!("{path}.scale.{k}");
        let p = s(scale, &format!("/{k}"));
        if p.is_empty() {
            errs.push(FieldError::required(at, ""));
        } else if simple_json_path(p, &at, errs) && !p.starts_with(prefix) {
            errs.push(FieldError::invalid(at, text(p), d));
        }
    }
    let l = s(scale, "/labelSelectorPath");
    let at = format!("{path}.scale.labelSelectorPath");
    if !l.is_empty()
        && simple_json_path(l, &at, errs)
        && !l.starts_with(".spec.")
        && !l.starts_with(".status.")
    {
        errs.push(FieldError::invalid(
            at,
            text(l),
            "should be a json path under either .spec or .status",
        ));
    }
}

const COLUMN_TYPES: [&str; 5] = ["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: [&str; 8] = [
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];

fn column(c: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if s(c, "/name").is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    }
    match s(c, "/type") {
        "" => errs.push(FieldError::required(
            format!("{path}.type"),
            format!("must be one of {}", COLUMN_TYPES.join(",")),
        )),
        t if !COLUMN_TYPES.contains(&t) => errs.push(FieldError::not_supported(
            format!("{path}.type"),
            text(t),
            &COLUMN_TYPES,
        )),
        _ => {}
    }
    let f = s(c, "/format");
    if !f.is_empty() && !COLUMN_FORMATS.contains(&f) {
        errs.push(FieldError::not_supported(
            format!("{path}.format"),
            text(f),
            &COLUMN_FORMATS,
        ));
    }
    let p = s(c, "/jsonPath");
    if p.is_empty() {
        errs.push(FieldError::required(format!("{path}.JSONPath"), ""));
    } else {
        simple_json_path(p, &format!("{path}.JSONPath"), errs);
    }
}

fn selectable_fields(
    fields: &[Value],
    schema: Option<&Schema>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut seen: Vec<String> = vec![];
    for (i, f) in fields.iter().enumerate() {
        let at = format!("{path}[{i}].jsonPath");
        let p = s(f, "/jsonPath");
        if p.is_empty() {
            errs.push(FieldError::required(at, ""));
            continue;
        }
        let parts: Vec<&str> = p.strip_prefix('.').unwrap_or("").split('.').collect();
        if !p.starts_with('.') || parts.iter().any(|x| x.is_empty()) {
            errs.push(FieldError::invalid(
                at,
                text(p),
                "is an invalid path: does not refer to a valid field",
            ));
            continue;
        }
        if parts[0] == "metadata" {
            errs.push(FieldError::invalid(
                &at,
                text(p),
                "must not point to fields in metadata",
            ));
        } else if let Some(schema) = schema {
            let found = parts.iter().try_fold(schema, |s, k| s.property(k));
            match found {
                None => {
                    errs.push(FieldError::invalid(
                        at,
                        text(p),
                        "is an invalid path: does not refer to a valid field",
                    ));
                    continue;
                }
                Some(n) if !matches!(n.type_.as_str(), "string" | "boolean" | "integer") => {
                    let d = "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.";
                    errs.push(FieldError::invalid(&at, text(p), d));
                }
                _ => {}
            }
        }
        if seen.iter().any(|x| x == p) {
            errs.push(FieldError::duplicate(at, text(p)));
        } else {
            seen.push(p.to_string());
        }
    }
    if fields.len() > 8 {
        errs.push(FieldError {
            kind: machinery::status::FieldErrorKind::TooMany,
            field: path.into(),
            value: Some(Value::from(fields.len())),
            detail: "must have at most 8 items".into(),
        });
    }
}

fn names(n: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut label = |k: &str, value: &str, lower: bool| {
        let checked = if lower {
            value.to_lowercase()
        } else {
            value.to_string()
        };
        let problems = is_dns1035_label(&checked);
        if !value.is_empty() && !problems.is_empty() {
            let prefix = if lower {
                "may have mixed case, but should otherwise match: "
            } else {
                ""
            };
            errs.push(FieldError::invalid(
                format!("{path}.{k}"),
                text(value),
                format!("{prefix}{}", problems.join(",")),
            ));
        }
    };
    label("plural", s(n, "/plural"), false);
    label("singular", s(n, "/singular"), false);
    label("kind", s(n, "/kind"), true);
    label("listKind", s(n, "/listKind"), true);
    for (k, list) in [
        ("shortNames", strings(n.get("shortNames"))),
        ("categories", strings(n.get("categories"))),
    ] {
        for (i, x) in list.iter().enumerate() {
            let problems = is_dns1035_label(x);
            if !problems.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.{k}[{i}]"),
                    text(x),
                    problems.join(","),
                ));
            }
        }
    }
    let kind = s(n, "/kind");
    if !kind.is_empty() && kind == s(n, "/listKind") {
        errs.push(FieldError::invalid(
            format!("{path}.listKind"),
            text(kind),
            "kind and listKind may not be the same",
        ));
    }
}

fn conversion(c: &Value, errs: &mut Vec<FieldError>) {
    let strategy = s(c, "/strategy");
    let client_config = c.pointer("/webhook/clientConfig").filter(|x| x.is_object());
    let review = c
        .pointer("/webhook/conversionReviewVersions")
        .and_then(Value::as_array);
    if strategy != "None" && strategy != "Webhook" {
        errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            text(strategy),
            &["None", "Webhook"],
        ));
    }
    if strategy != "Webhook" {
        if client_config.is_some() {
            errs.push(FieldError::forbidden(
                "spec.conversion.webhookClientConfig",
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if review.is_some_and(|r| !r.is_empty()) {
            errs.push(FieldError::forbidden(
                "spec.conversion.conversionReviewVersions",
                "should not be set when strategy is not set to Webhook",
            ));
        }
        return;
    }
    let at = "spec.conversion.webhookClientConfig";
    match client_config {
        None => errs.push(FieldError::required(
            at,
            "required when strategy is set to Webhook",
        )),
        Some(cc) => {
            let url = cc.get("url").and_then(Value::as_str);
            let service = cc.get("service").filter(|x| x.is_object());
            match (url, service) {
                (Some(u), None) => webhook_url(u, &format!("{at}.url"), errs),
                (None, Some(svc)) => webhook_service(svc, &format!("{at}.service"), errs),
                _ => errs.push(FieldError::required(
                    at,
                    "exactly one of url or service is required",
                )),
            }
        }
    }
    let at = "spec.conversion.conversionReviewVersions";
    let versions = strings(c.pointer("/webhook/conversionReviewVersions"));
    if versions.is_empty() {
        errs.push(FieldError::required(at, ""));
        return;
    }
    let mut seen: Vec<&str> = vec![];
    for (i, v) in versions.iter().enumerate() {
        if seen.contains(&v.as_str()) {
            errs.push(FieldError::invalid(
                format!("{at}[{i}]"),
                text(v),
                "duplicate version",
            ));
            continue;
        }
        seen.push(v);
        for p in is_dns1035_label(v) {
            errs.push(FieldError::invalid(format!("{at}[{i}]"), text(v), p));
        }
    }
    if !versions.iter().any(|v| v == "v1" || v == "v1beta1") {
        errs.push(FieldError::invalid(
            at,
            text(&versions.join(",")),
            "must include at least one of v1, v1beta1",
        ));
    }
}

fn webhook_url(u: &str, at: &str, errs: &mut Vec<FieldError>) {
    const FORM: &str = "; desired format: https://host[/path]";
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    if scheme != "https" {
        errs.push(FieldError::invalid(
            at,
            text(scheme),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    let authority = if scheme.is_empty() {
        ""
    } else {
        rest.split(['/', '?', '#']).next().unwrap_or("")
    };
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    if host.is_empty() {
        errs.push(FieldError::invalid(
            at,
            text(host),
            format!("host must be specified{FORM}"),
        ));
    }
    if let Some(user) = user {
        errs.push(FieldError::invalid(
            at,
            text(user),
            "user information is not permitted in the URL",
        ));
    }
    if let Some((_, fragment)) = u.split_once('#') {
        errs.push(FieldError::invalid(
            at,
            text(fragment),
            "fragments are not permitted in the URL",
        ));
    }
    let before_fragment = u.split('#').next().unwrap_or("");
    if let Some((_, query)) = before_fragment.split_once('?')
        && !query.is_empty()
    {
        errs.push(FieldError::invalid(
            at,
            text(query),
            "query parameters are not permitted in the URL",
        ));
    }
}

fn webhook_service(svc: &Value, at: &str, errs: &mut Vec<FieldError>) {
    if s(svc, "/name").is_empty() {
        errs.push(FieldError::required(
            format!("{at}.name"),
            "service name is required",
        ));
    }
    if s(svc, "/namespace").is_empty() {
        errs.push(FieldError::required(
            format!("{at}.namespace"),
            "service namespace is required",
        ));
    }
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            format!("{at}.port"),
            Value::from(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let Some(path) = svc.get("path").and_then(Value::as_str) else {
        return;
    };
    if path.is_empty() || path == "/" {
        return;
    }
    let at = format!("{at}.path");
    if path == "//" {
        errs.push(FieldError::invalid(
            &at,
            text(path),
            "segment[0] may not be empty",
        ));
        return;
    }
    if !path.starts_with('/') {
        errs.push(FieldError::invalid(
            &at,
            text(path),
            "must start with a '/'",
        ));
    }
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    for (i, step) in trimmed.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(
                &at,
                text(path),
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for p in is_dns1123_subdomain(step) {
            errs.push(FieldError::invalid(
                &at,
                text(path),
                format!("segment[{i}]: {p}"),
            ));
        }
    }
}

fn stored_versions(stored: &Value, spec: &Value, errs: &mut Vec<FieldError>) {
    let at = "status.storedVersions";
    let list = strings(Some(stored));
    if list.is_empty() {
        errs.push(FieldError::invalid(
            at,
            stored.clone(),
            "must have at least one stored version",
        ));
        return;
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in &versions {
        let name = s(v, "/name");
        if v["storage"] == json!(true) && !list.iter().any(|x| x == name) {
            errs.push(FieldError::invalid(
                at,
                v.clone(),
                format!("must have the storage version {name}"),
            ));
        }
    }
    for (i, x) in list.iter().enumerate() {
        if !versions.iter().any(|v| s(v, "/name") == x) {
            errs.push(FieldError::invalid(
                format!("{at}[{i}]"),
                text(x),
                "must appear in spec.versions",
            ));
        }
    }
}

/// Groups under `k8s.io` and `kubernetes.io` need the API approval annotation.
fn api_approval(crd: &Value, errs: &mut Vec<FieldError>) {
    let group = s(crd, "/spec/group");
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|d| group == *d || group.ends_with(&format!(".{d}")));
    const KEY: &str = "api-approved.kubernetes.io";
    if protected
        && crd
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(KEY))
            .is_none()
    {
        errs.push(FieldError::required(
            format!("metadata.annotations[{KEY}]"),
            format!("protected groups must have approval annotation \"{KEY}\", see https://github.com/kubernetes/enhancements/pull/1111"),
        ));
    }
}

#[cfg(test)]
#[path = "crd_tests.rs"]
mod tests;
