//! Hand-written wire tests: exact envelope bytes, special JSON forms, watch frames, bytes
//! laid out the way Go clients write them, cross-checks against the prost structs of the
//! k8s-pb crate, and malformed input.

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message as _;
use serde_json::{Value, json};

/// Appends a varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-delimited field.
fn ld(out: &mut Vec<u8>, tag: u64, bytes: &[u8]) {
    varint(out, tag << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a varint field.
fn vi(out: &mut Vec<u8>, tag: u64, v: u64) {
    varint(out, tag << 3);
    varint(out, v);
}

/// The envelope exactly as upstream's serializer writes it.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    ld(&mut type_meta, 1, api_version.as_bytes());
    ld(&mut type_meta, 2, kind.as_bytes());
    let mut out = b"k8s\0".to_vec();
    ld(&mut out, 1, &type_meta);
    ld(&mut out, 2, raw);
    ld(&mut out, 3, b"");
    ld(&mut out, 4, b"");
    out
}

/// The `raw` of an envelope produced by `protobuf::encode`.
fn raw_of(bytes: &[u8]) -> Vec<u8> {
    let unknown =
        k8s_pb::apimachinery::pkg::runtime::Unknown::decode(&bytes[4..]).expect("Unknown");
    unknown.raw.expect("raw")
}

fn round_trip(obj: &Value) -> Value {
    let bytes = protobuf::encode(obj).expect("encode");
    protobuf::decode(&bytes).expect("decode")
}

#[test]
fn namespace_bytes_are_exactly_upstreams() {
    let ns = json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "default"}});
    let mut metadata = Vec::new();
    ld(&mut metadata, 1, b"default");
    let mut raw = Vec::new();
    ld(&mut raw, 1, &metadata);
    let expected = envelope("v1", "Namespace", &raw);
    assert_eq!(protobuf::encode(&ns).unwrap(), expected);
    assert_eq!(protobuf::decode(&expected).unwrap(), ns);
    assert!(protobuf::MEDIA_TYPE.starts_with("application/vnd.kubernetes.protobuf"));
    assert_eq!(
        protobuf::WATCH_MEDIA_TYPE,
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
}

fn sample_pod() -> Value {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": "web-0",
            "namespace": "default",
            "uid": "0b7a3c1e-0000-4000-8000-000000000001",
            "resourceVersion": "42",
            "creationTimestamp": "2024-01-02T03:04:05Z",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"a": ""},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u1", "controller": true}],
            "managedFields": [{
                "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}
            }]
        },
        "spec": {
            "containers": [{
                "name": "nginx",
                "image": "nginx:1.25",
                "command": ["nginx", "-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                "readinessProbe": {"tcpSocket": {"port": 80}},
                "securityContext": {"allowPrivilegeEscalation": false, "runAsUser": 0},
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x", "optional": true}}}]
            }],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "storageClassNameIsNotHere": "dropped-unknown-field-removed-below"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-01-02T03:04:06Z"}],
            "startTime": "2024-01-02T03:04:05Z",
            "podIPs": [{"ip": "10.0.0.5"}]
        }
    })
}

#[test]
fn pod_round_trips_with_time_quantity_intorstring_inline_and_drops_unknown_fields() {
    let pod = sample_pod();
    let mut expected = pod.clone();
    expected["spec"]
        .as_object_mut()
        .unwrap()
        .remove("storageClassNameIsNotHere");
    assert_eq!(round_trip(&pod), expected);
}

#[test]
fn pod_bytes_match_the_prost_structs() {
    let mut obj = sample_pod();
    // prost leaves out an empty map value; upstream (and this crate) write it.
    obj["metadata"]["annotations"] = json!({"a": "b"});
    let bytes = protobuf::encode(&obj).unwrap();
    let raw = raw_of(&bytes);
    let pod = core::Pod::decode(raw.as_slice()).expect("prost decodes our Pod");
    // Byte-exact: prost writes tags in order and maps sorted, as upstream does.
    assert_eq!(pod.encode_to_vec(), raw);

    let meta = pod.metadata.as_ref().unwrap();
    assert_eq!(meta.name.as_deref(), Some("web-0"));
    assert_eq!(meta.generation, None, "absent stays absent");
    let created = meta.creation_timestamp.as_ref().unwrap();
    assert_eq!(
        (created.seconds, created.nanos),
        (Some(1_704_164_645), Some(0))
    );
    assert_eq!(
        meta.labels.get("tier").map(String::as_str),
        Some("frontend")
    );
    let fields = meta.managed_fields[0]
        .fields_v1
        .as_ref()
        .unwrap()
        .raw
        .as_deref()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(fields).unwrap(),
        json!({"f:metadata": {"f:labels": {"f:app": {}}}})
    );

    let spec = pod.spec.as_ref().unwrap();
    let c = &spec.containers[0];
    let limits = &c.resources.as_ref().unwrap().limits;
    assert_eq!(limits["cpu"].string.as_deref(), Some("500m"));
    let http = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    let port = http.port.as_ref().unwrap();
    assert_eq!(
        (port.r#type, port.str_val.as_deref()),
        (Some(1), Some("http"))
    );
    let tcp = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap()
        .tcp_socket
        .as_ref()
        .unwrap();
    let port = tcp.port.as_ref().unwrap();
    assert_eq!((port.r#type, port.int_val), (Some(0), Some(80)));
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.allow_privilege_escalation, sc.run_as_user),
        (Some(false), Some(0))
    );
    let key_ref = c.env[0]
        .value_from
        .as_ref()
        .unwrap()
        .config_map_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        key_ref
            .local_object_reference
            .as_ref()
            .unwrap()
            .name
            .as_deref(),
        Some("cfg")
    );
    let cm = spec.volumes[0]
        .volume_source
        .as_ref()
        .unwrap()
        .config_map
        .as_ref()
        .unwrap();
    assert_eq!(cm.default_mode, Some(420));
    let cond = &pod.status.as_ref().unwrap().conditions[0];
    assert_eq!(
        cond.last_probe_time,
        Some(meta::Time::default()),
        "null Time is an empty message"
    );
}

#[test]
fn secret_bytes_are_base64_in_json() {
    let secret = json!({
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "s", "namespace": "ns"},
        "data": {"password": "aHVudGVyMg==", "bin": "AAH/"},
        "stringData": {"plain": "text"},
        "type": "Opaque",
        "immutable": false
    });
    let bytes = protobuf::encode(&secret).unwrap();
    let pb = core::Secret::decode(raw_of(&bytes).as_slice()).unwrap();
    assert_eq!(pb.data["password"], b"hunter2");
    assert_eq!(pb.data["bin"], [0u8, 1, 255]);
    assert_eq!(pb.immutable, Some(false));
    assert_eq!(protobuf::decode(&bytes).unwrap(), secret);

    let bad = json!({"kind": "Secret", "apiVersion": "v1", "data": {"k": "not base64!"}});
    let err = protobuf::encode(&bad).unwrap_err().to_string();
    assert!(err.contains("data.k"), "{err}");
}

#[test]
fn config_map_list_keeps_list_meta_and_items() {
    let list = json!({
        "kind": "ConfigMapList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "1234", "continue": "eyJydiI6MTIzNH0", "remainingItemCount": 7},
        "items": [
            {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}},
            {"metadata": {"name": "b", "namespace": "default"}, "binaryData": {"b": "AQID"}}
        ]
    });
    assert_eq!(round_trip(&list), list);

    // An empty list decodes with `items: []`, as upstream's JSON shows it.
    let empty = json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": []});
    assert_eq!(round_trip(&empty), empty);
    let no_items =
        json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}});
    assert_eq!(round_trip(&no_items), empty);
}

#[test]
fn status_round_trips_under_v1_and_meta() {
    let status = json!({
        "kind": "Status", "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "pods \"x\" not found",
        "reason": "NotFound",
        "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "spec"}]},
        "code": 404
    });
    assert_eq!(round_trip(&status), status);
    let bytes = protobuf::encode(&status).unwrap();
    let pb = meta::Status::decode(raw_of(&bytes).as_slice()).unwrap();
    assert_eq!(pb.code, Some(404));
    assert_eq!(pb.reason.as_deref(), Some("NotFound"));
    let mut in_group = status.clone();
    in_group["apiVersion"] = json!("meta.k8s.io/v1");
    assert_eq!(round_trip(&in_group), in_group);
}

#[test]
fn discovery_kinds_round_trip() {
    let list = json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
        "resources": [{
            "name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": ["deploy"], "categories": ["all"], "storageVersionHash": "8aSe+NMegvE="
        }]
    });
    assert_eq!(round_trip(&list), list);
    let versions = json!({
        "kind": "APIVersions", "apiVersion": "v1", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]
    });
    assert_eq!(round_trip(&versions), versions);
}

#[test]
fn lease_micro_time_keeps_microseconds() {
    let lease = json!({
        "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2024-01-02T03:04:05.123456Z"}
    });
    assert_eq!(round_trip(&lease), lease);
    let mut nanos = lease.clone();
    nanos["spec"]["renewTime"] = json!("2024-01-02T03:04:05.123456789Z");
    assert_eq!(round_trip(&nanos), lease);
}

#[test]
fn crd_schema_forms_round_trip() {
    let crd = json!({
        "kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 1, "maximum": 10.5, "default": 3},
                                "mode": {"type": "string", "enum": ["a", "b"]},
                                "tags": {"type": "array", "items": {"type": "string"}},
                                "meta": {"type": "object", "additionalProperties": {"type": "string"}},
                                "open": {"type": "object", "additionalProperties": false},
                                "any": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
                            },
                            "x-kubernetes-validations": [{"rule": "self.size > 0", "message": "positive"}]
                        }
                    }
                }},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]
            }],
            "conversion": {"strategy": "None"}
        }
    });
    assert_eq!(round_trip(&crd), crd);
}

#[test]
fn watch_event_frames() {
    let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "resourceVersion": "7"}});
    let frame = protobuf::encode_watch_event("ADDED", &pod).unwrap();
    // Layout: length prefix, then a bare WatchEvent{type=1, object=2{raw=1: envelope}}.
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4);
    let event = meta::WatchEvent::decode(&frame[4..]).expect("bare WatchEvent");
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let inner = event.object.unwrap().raw.unwrap();
    assert_eq!(inner, protobuf::encode(&pod).unwrap());

    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410});
    let mut stream = frame.clone();
    stream.extend(protobuf::encode_watch_event("ERROR", &status).unwrap());
    stream.extend_from_slice(&[0, 0, 0]);
    let (first, rest) = protobuf::split_watch_frame(&stream).unwrap();
    assert_eq!(
        protobuf::decode_watch_event(first).unwrap(),
        ("ADDED".to_string(), pod)
    );
    let (second, rest) = protobuf::split_watch_frame(rest).unwrap();
    assert_eq!(
        protobuf::decode_watch_event(second).unwrap(),
        ("ERROR".to_string(), status)
    );
    assert!(
        protobuf::split_watch_frame(rest).is_none(),
        "incomplete frame waits"
    );
    assert!(
        protobuf::decode_watch_event(&stream).is_err(),
        "trailing bytes"
    );
}

/// A ConfigMap laid out as a Go client writes it: every non-pointer field present, even
/// when empty, and the zero creationTimestamp as an empty message. Zero non-pointer
/// scalars (generation) are dropped as Go's omitempty would; a set pointer (immutable) stays.
#[test]
fn decodes_what_go_clients_send() {
    let mut meta = Vec::new();
    ld(&mut meta, 1, b"settings"); // name
    ld(&mut meta, 2, b""); // generateName
    ld(&mut meta, 3, b"team-a"); // namespace
    ld(&mut meta, 4, b""); // selfLink
    ld(&mut meta, 5, b""); // uid
    ld(&mut meta, 6, b""); // resourceVersion
    vi(&mut meta, 7, 0); // generation
    ld(&mut meta, 8, b""); // creationTimestamp: zero Time
    let mut label = Vec::new();
    ld(&mut label, 1, b"app");
    ld(&mut label, 2, b"demo");
    ld(&mut meta, 11, &label); // labels entry
    let mut raw = Vec::new();
    ld(&mut raw, 1, &meta);
    let mut entry = Vec::new();
    ld(&mut entry, 1, b"mode");
    ld(&mut entry, 2, b"fast");
    ld(&mut raw, 2, &entry); // data entry
    vi(&mut raw, 4, 0); // immutable: false (a pointer, set)
    raw.extend_from_slice(&[0xb8, 0x3e, 0x01]); // field 999 varint: unknown, skipped
    let bytes = envelope("v1", "ConfigMap", &raw);
    assert_eq!(
        protobuf::decode(&bytes).unwrap(),
        json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "settings", "namespace": "team-a", "creationTimestamp": null, "labels": {"app": "demo"}},
            "data": {"mode": "fast"},
            "immutable": false
        })
    );
}

#[test]
fn prost_built_pvc_decodes_with_meaningful_empty_storage_class() {
    let pvc = core::PersistentVolumeClaim {
        metadata: Some(meta::ObjectMeta {
            name: Some("data".into()),
            namespace: Some(String::new()),
            ..Default::default()
        }),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".into()],
            storage_class_name: Some(String::new()),
            resources: Some(core::VolumeResourceRequirements {
                requests: [(
                    "storage".to_string(),
                    k8s_pb::apimachinery::pkg::api::resource::Quantity {
                        string: Some("1Gi".into()),
                    },
                )]
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let bytes = envelope("v1", "PersistentVolumeClaim", &pvc.encode_to_vec());
    assert_eq!(
        protobuf::decode(&bytes).unwrap(),
        json!({
            "kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": ""}
        })
    );
}

#[test]
fn custom_resources_and_missing_type_meta_are_rejected() {
    assert!(!protobuf::supports("example.com/v1", "Widget"));
    let cr = json!({"kind": "Widget", "apiVersion": "example.com/v1", "metadata": {"name": "w"}});
    assert!(matches!(
        protobuf::encode(&cr),
        Err(protobuf::Error::UnsupportedKind { .. })
    ));
    assert!(matches!(
        protobuf::encode(&json!({"kind": "Pod"})),
        Err(protobuf::Error::MissingTypeMeta("apiVersion"))
    ));
    assert!(protobuf::encode(&json!("Pod")).is_err());
    let unknown_kind = envelope("example.com/v1", "Widget", b"");
    assert!(matches!(
        protobuf::decode(&unknown_kind),
        Err(protobuf::Error::UnsupportedKind { .. })
    ));
    assert!(matches!(
        protobuf::decode(&envelope("v1", "", b"")),
        Err(protobuf::Error::MissingTypeMeta("kind"))
    ));
}

#[test]
fn wrong_json_types_name_their_path() {
    let pod = json!({"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}});
    let err = protobuf::encode(&pod).unwrap_err().to_string();
    assert!(
        err.contains("spec.containers.0.ports.0.containerPort"),
        "{err}"
    );
    let big = json!({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": 4_294_967_296u64}});
    assert!(protobuf::encode(&big).is_err());
    let time =
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"creationTimestamp": "yesterday"}});
    assert!(protobuf::encode(&time).is_err());
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let good = protobuf::encode(&sample_pod()).unwrap();
    assert!(matches!(
        protobuf::decode(b""),
        Err(protobuf::Error::BadMagic)
    ));
    assert!(matches!(
        protobuf::decode(b"k8s"),
        Err(protobuf::Error::BadMagic)
    ));
    assert!(matches!(
        protobuf::decode(b"k8s\x01rest"),
        Err(protobuf::Error::BadMagic)
    ));
    assert!(protobuf::decode(b"k8s\0").is_err());
    assert!(matches!(
        protobuf::decode(b"{\"kind\":\"Pod\"}"),
        Err(protobuf::Error::BadMagic)
    ));
    // Truncated varint, overlong varint, truncated length, wrong wire type, field 0.
    assert!(matches!(
        protobuf::decode(b"k8s\0\x0a\x80"),
        Err(protobuf::Error::Truncated(_))
    ));
    assert!(matches!(
        protobuf::decode(b"k8s\0\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
        Err(protobuf::Error::VarintOverflow)
    ));
    assert!(matches!(
        protobuf::decode(b"k8s\0\x0a\x05ab"),
        Err(protobuf::Error::Truncated(_))
    ));
    assert!(matches!(
        protobuf::decode(b"k8s\0\x08\x01"),
        Err(protobuf::Error::InvalidWireType { tag: 1, wire: 0 })
    ));
    assert!(matches!(
        protobuf::decode(b"k8s\0\x02\x01"),
        Err(protobuf::Error::InvalidTag(0))
    ));
    let mut wrong = Vec::new();
    vi(&mut wrong, 1, 5); // Pod.metadata as a varint
    assert!(matches!(
        protobuf::decode(&envelope("v1", "Pod", &wrong)),
        Err(protobuf::Error::InvalidWireType { tag: 1, wire: 0 })
    ));
    let mut bad_utf8 = Vec::new();
    ld(&mut bad_utf8, 1, &{
        let mut m = Vec::new();
        ld(&mut m, 1, b"\xff\xfe");
        m
    });
    assert!(matches!(
        protobuf::decode(&envelope("v1", "Namespace", &bad_utf8)),
        Err(protobuf::Error::InvalidUtf8)
    ));
    // Every truncation and many corruptions of a real object: errors or values, no panics.
    for cut in 0..good.len() {
        let _ = protobuf::decode(&good[..cut]);
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = 4 + (seed as usize) % (bytes.len() - 4);
            bytes[at] = (seed >> 32) as u8;
        }
        let _ = protobuf::decode(&bytes);
    }
    assert!(protobuf::decode_watch_event(b"\0\0").is_err());
    assert!(protobuf::decode_watch_event(b"\0\0\0\x02\x0a\x05").is_err());
}

#[test]
fn deep_nesting_is_bounded() {
    // 500 nested JSONSchemaProps `not` fields (tag 28) on the wire.
    let mut schema: Vec<u8> = Vec::new();
    for _ in 0..500 {
        let mut outer = Vec::new();
        ld(&mut outer, 28, &schema);
        schema = outer;
    }
    let mut validation = Vec::new();
    ld(&mut validation, 1, &schema);
    let mut version = Vec::new();
    ld(&mut version, 1, b"v1");
    ld(&mut version, 4, &validation);
    let mut spec = Vec::new();
    ld(&mut spec, 7, &version);
    let mut crd = Vec::new();
    ld(&mut crd, 2, &spec);
    let bytes = envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    let result = protobuf::decode(&bytes);
    assert!(
        matches!(result, Err(protobuf::Error::TooDeep)),
        "{:?}",
        result.map(|v| v.to_string().len())
    );

    let mut deep = json!({"type": "string"});
    for _ in 0..500 {
        deep = json!({"not": deep});
    }
    let obj = json!({
        "kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": deep}}]}
    });
    assert!(matches!(
        protobuf::encode(&obj),
        Err(protobuf::Error::TooDeep)
    ));
}
