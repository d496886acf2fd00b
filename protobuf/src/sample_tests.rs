//! Table-driven round trips: for every kind in the descriptor table, a JSON object with
//! every field filled (recursing to a bounded depth) must survive JSON -> protobuf -> JSON.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::table::{self, KINDS, Label, MESSAGES, MapValue, Special, Ty};

/// How deep samples recurse into nested messages.
const SAMPLE_DEPTH: usize = 5;

/// A sample JSON value for the message at `index`, or `None` where recursion must stop.
fn sample_message(index: u16, depth: usize) -> Option<Value> {
    let msg = table::message(index);
    let nested = |tag: u32| match table::field_by_tag(msg, tag).map(|(_, f)| f.ty) {
        Some(Ty::Message(i)) => sample_message(i, depth + 1),
        _ => None,
    };
    Some(match msg.special {
        Special::Time => json!("2024-01-02T03:04:05Z"),
        Special::MicroTime => json!("2024-01-02T03:04:05.123456Z"),
        Special::Duration => json!("1h2m3.5s"),
        Special::Quantity => json!("250m"),
        Special::IntOrString if depth.is_multiple_of(2) => json!(8080),
        Special::IntOrString => json!("http"),
        Special::RawExtension => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}})
        }
        Special::RawJson => {
            json!({"f:metadata": {"f:labels": {".": {}}}, "n": [1, 2.5, "x", null, true]})
        }
        Special::StringList => json!(["get", "list"]),
        Special::SchemaOrBool if depth >= SAMPLE_DEPTH => json!(false),
        Special::SchemaOrBool => nested(2)?,
        Special::SchemaOrStringArray if depth.is_multiple_of(2) => json!(["a", "b"]),
        Special::SchemaOrStringArray => nested(1)?,
        Special::SchemaOrArray if depth.is_multiple_of(2) => Value::Array(vec![nested(1)?]),
        Special::SchemaOrArray => nested(1)?,
        Special::None if depth > SAMPLE_DEPTH => return None,
        Special::None => Value::Object(sample_object(index, depth)),
    })
}

fn sample_object(index: u16, depth: usize) -> Map<String, Value> {
    let mut out = Map::new();
    for field in table::message(index).fields {
        if field.inline {
            if let Ty::Message(i) = field.ty {
                out.extend(sample_object(i, depth + 1));
            }
            continue;
        }
        let value = match field.ty {
            Ty::Map(value_ty) => {
                let value = match value_ty {
                    MapValue::String => Some(json!("value")),
                    MapValue::Bytes => Some(json!(
                        base64::engine::general_purpose::STANDARD.encode(b"\x00bytes\xff")
                    )),
                    MapValue::Message(i) => sample_message(i, depth + 1),
                };
                value.map(|v| json!({"key-a": v.clone(), "key-b": v}))
            }
            ty => sample_scalar(ty, field.json, depth).map(|v| match field.label {
                Label::Repeated => Value::Array(vec![v.clone(), v]),
                Label::Optional => v,
            }),
        };
        match value {
            Some(value) => {
                out.insert(field.json.to_string(), value);
            }
            // Decoding turns an absent required list into [], so the sample says so too.
            None if field.required && field.label == Label::Repeated => {
                out.insert(field.json.to_string(), json!([]));
            }
            None => {}
        }
    }
    out
}

fn sample_scalar(ty: Ty, name: &str, depth: usize) -> Option<Value> {
    Some(match ty {
        Ty::String => json!(format!("{name}-value")),
        Ty::Int32 => json!(-7),
        Ty::Int64 => json!(1_234_567_890_123i64),
        Ty::Bool => json!(true),
        Ty::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(b"hello\x00\x01")),
        Ty::Double => json!(1.5),
        Ty::Message(i) => sample_message(i, depth + 1)?,
        Ty::Map(_) => return None,
    })
}

#[test]
fn every_kind_round_trips() {
    let mut failures = Vec::new();
    for (api_version, kind, index) in KINDS {
        let mut obj = Map::new();
        obj.insert("kind".into(), json!(kind));
        obj.insert("apiVersion".into(), json!(api_version));
        obj.extend(sample_object(*index, 0));
        let obj = Value::Object(obj);
        let result = crate::encode(&obj).and_then(|bytes| crate::decode(&bytes));
        match result {
            Ok(back) if back == obj => {}
            Ok(back) => failures.push(format!(
                "{api_version} {kind}: {}",
                first_difference(&obj, &back, "")
            )),
            Err(e) => failures.push(format!("{api_version} {kind}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} kinds fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The first path where two JSON values differ, for readable failures.
fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(v, w, &format!("{path}.{k}")),
                    None => return format!("{path}.{k} missing after round trip"),
                }
            }
            if let Some(k) = y.keys().find(|k| !x.contains_key(*k)) {
                return format!("{path}.{k} added by round trip: {}", y[k]);
            }
            format!("{path}: equal?")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return first_difference(v, w, &format!("{path}.{i}"));
                }
            }
            format!("{path}: equal?")
        }
        _ => format!("{path}: {a} became {b}"),
    }
}

#[test]
fn table_is_consistent() {
    for (i, msg) in MESSAGES.iter().enumerate() {
        assert!(
            msg.fields.windows(2).all(|w| w[0].tag < w[1].tag),
            "{} fields not sorted",
            msg.name
        );
        for field in msg.fields {
            if let Ty::Message(j) | Ty::Map(MapValue::Message(j)) = field.ty {
                assert!(
                    usize::from(j) < MESSAGES.len(),
                    "{}.{} dangling",
                    msg.name,
                    field.json
                );
            }
        }
        if i > 0 {
            assert!(
                MESSAGES[i - 1].name < msg.name,
                "messages not sorted at {}",
                msg.name
            );
        }
    }
    assert!(
        KINDS
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)),
        "KINDS not sorted"
    );
}

#[test]
fn kinds_are_found() {
    assert!(crate::supports("v1", "Pod"));
    assert!(crate::supports("v1", "PodList"));
    assert!(crate::supports("apps/v1", "Deployment"));
    assert!(crate::supports(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole"
    ));
    assert!(crate::supports(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition"
    ));
    assert!(crate::supports("apiregistration.k8s.io/v1", "APIService"));
    assert!(crate::supports("v1", "Status"));
    assert!(crate::supports("meta.k8s.io/v1", "Status"));
    assert!(crate::supports("apps/v1", "WatchEvent"));
    assert!(crate::supports("batch/v1", "DeleteOptions"));
    assert!(crate::supports("v1", "APIResourceList"));
    assert!(crate::supports(
        "meta.k8s.io/v1",
        "PartialObjectMetadataList"
    ));
    assert!(!crate::supports("example.com/v1", "Widget"));
    assert!(!crate::supports("example.com/v1", "Status"));
    assert!(!crate::supports("v1", "PodTemplateSpec"));
    assert!(!crate::supports("v1", "ResourceClaim"));
}

/// Our bytes for a full sample, decoded by the k8s-pb prost structs and re-encoded, must
/// come back byte for byte: the field numbers, wire types and order agree with upstream's.
#[test]
fn samples_match_prost_bytes() {
    use k8s_pb::api;

    fn check<M: prost::Message + Default>(api_version: &str, kind: &str) -> Result<(), String> {
        let index = table::kind_message(api_version, kind).ok_or(format!("{kind} not found"))?;
        let mut obj = sample_object(index, 0);
        obj.insert("kind".into(), json!(kind));
        obj.insert("apiVersion".into(), json!(api_version));
        let mut raw = Vec::new();
        crate::encode::message(index, &Value::Object(obj), &mut raw, 0)
            .map_err(|e| e.to_string())?;
        let decoded = M::decode(raw.as_slice()).map_err(|e| format!("{kind}: prost: {e}"))?;
        if decoded.encode_to_vec() != raw {
            return Err(format!(
                "{api_version} {kind}: prost re-encodes different bytes"
            ));
        }
        Ok(())
    }

    let results = [
        check::<api::core::v1::Pod>("v1", "Pod"),
        check::<api::core::v1::PodList>("v1", "PodList"),
        check::<api::core::v1::Node>("v1", "Node"),
        check::<api::core::v1::Service>("v1", "Service"),
        check::<api::core::v1::Secret>("v1", "Secret"),
        check::<api::core::v1::ConfigMap>("v1", "ConfigMap"),
        check::<api::core::v1::PersistentVolume>("v1", "PersistentVolume"),
        check::<api::core::v1::Event>("v1", "Event"),
        check::<api::core::v1::Endpoints>("v1", "Endpoints"),
        check::<api::apps::v1::Deployment>("apps/v1", "Deployment"),
        check::<api::apps::v1::StatefulSet>("apps/v1", "StatefulSet"),
        check::<api::apps::v1::DaemonSet>("apps/v1", "DaemonSet"),
        check::<api::apps::v1::ControllerRevision>("apps/v1", "ControllerRevision"),
        check::<api::batch::v1::CronJob>("batch/v1", "CronJob"),
        check::<api::rbac::v1::ClusterRole>("rbac.authorization.k8s.io/v1", "ClusterRole"),
        check::<api::networking::v1::Ingress>("networking.k8s.io/v1", "Ingress"),
        check::<api::networking::v1::NetworkPolicy>("networking.k8s.io/v1", "NetworkPolicy"),
        check::<api::discovery::v1::EndpointSlice>("discovery.k8s.io/v1", "EndpointSlice"),
        check::<api::coordination::v1::Lease>("coordination.k8s.io/v1", "Lease"),
        check::<api::autoscaling::v2::HorizontalPodAutoscaler>(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
        ),
        check::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
        ),
        check::<api::resource::v1::ResourceClaim>("resource.k8s.io/v1", "ResourceClaim"),
        check::<api::authorization::v1::SubjectAccessReview>(
            "authorization.k8s.io/v1",
            "SubjectAccessReview",
        ),
        check::<api::authentication::v1::TokenReview>("authentication.k8s.io/v1", "TokenReview"),
        check::<
            k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        check::<k8s_pb::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(
            "apiregistration.k8s.io/v1",
            "APIService",
        ),
        check::<k8s_pb::apimachinery::pkg::apis::meta::v1::Status>("v1", "Status"),
        check::<k8s_pb::apimachinery::pkg::apis::meta::v1::APIResourceList>(
            "v1",
            "APIResourceList",
        ),
        check::<k8s_pb::apimachinery::pkg::apis::meta::v1::DeleteOptions>("v1", "DeleteOptions"),
        check::<k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent>("v1", "WatchEvent"),
    ];
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The JSON names in the table agree with k8s-openapi's: a full sample deserialized into
/// the k8s-openapi struct and serialized back loses nothing (a wrong name would be dropped).
#[test]
fn samples_match_k8s_openapi_json() {
    use k8s_openapi::api;

    fn check<T: k8s_openapi::serde::de::DeserializeOwned + k8s_openapi::serde::Serialize>(
        api_version: &str,
        kind: &str,
    ) -> Result<(), String> {
        let index = table::kind_message(api_version, kind).ok_or(format!("{kind} not found"))?;
        let mut obj = sample_object(index, 0);
        obj.insert("kind".into(), json!(kind));
        obj.insert("apiVersion".into(), json!(api_version));
        let obj = Value::Object(obj);
        let typed: T = serde_json::from_value(obj.clone()).map_err(|e| format!("{kind}: {e}"))?;
        let back = serde_json::to_value(&typed).map_err(|e| format!("{kind}: {e}"))?;
        // k8s-openapi adds what it requires (`{}` where the sample stopped recursing, the
        // type meta of nested resources); only lost or changed values are failures.
        match first_loss(&obj, &back, "") {
            Some(loss) => Err(format!("{api_version} {kind}: {loss}")),
            None => Ok(()),
        }
    }

    let results = [
        check::<api::core::v1::Pod>("v1", "Pod"),
        check::<api::core::v1::Node>("v1", "Node"),
        check::<api::core::v1::Service>("v1", "Service"),
        check::<api::core::v1::PersistentVolume>("v1", "PersistentVolume"),
        check::<api::core::v1::PersistentVolumeClaim>("v1", "PersistentVolumeClaim"),
        check::<api::core::v1::Event>("v1", "Event"),
        check::<api::apps::v1::Deployment>("apps/v1", "Deployment"),
        check::<api::apps::v1::StatefulSet>("apps/v1", "StatefulSet"),
        check::<api::batch::v1::CronJob>("batch/v1", "CronJob"),
        check::<api::networking::v1::Ingress>("networking.k8s.io/v1", "Ingress"),
        check::<api::discovery::v1::EndpointSlice>("discovery.k8s.io/v1", "EndpointSlice"),
        check::<api::coordination::v1::Lease>("coordination.k8s.io/v1", "Lease"),
        check::<api::autoscaling::v2::HorizontalPodAutoscaler>("autoscaling/v2", "HorizontalPodAutoscaler"),
        check::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
        ),
        check::<api::admissionregistration::v1::MutatingWebhookConfiguration>(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
        ),
        check::<api::resource::v1::ResourceClaim>("resource.k8s.io/v1", "ResourceClaim"),
        check::<api::resource::v1::ResourceSlice>("resource.k8s.io/v1", "ResourceSlice"),
        check::<api::flowcontrol::v1::FlowSchema>("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
        check::<api::storage::v1::CSIDriver>("storage.k8s.io/v1", "CSIDriver"),
        check::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
        ),
        check::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(
            "apiregistration.k8s.io/v1",
            "APIService",
        ),
    ];
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first path where `b` lost or changed a value of `a` (keys added in `b` are fine).
fn first_loss(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.iter().find_map(|(k, v)| match y.get(k) {
            Some(w) => first_loss(v, w, &format!("{path}.{k}")),
            None => Some(format!("{path}.{k} lost")),
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_loss(v, w, &format!("{path}.{i}"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} became {b}")),
    }
}
