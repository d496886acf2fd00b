//! Tests: documents.

use super::*;

#[test]
fn v3_index_lists_documents() {
    let resources = registry();
    let index = v3_index(&resources);
    let paths = index["paths"].as_object().expect("paths");
    for path in [
        "api",
        "api/v1",
        "apis",
        "apis/apps",
        "apis/apps/v1",
        "apis/autoscaling/v1",
        "apis/autoscaling/v2",
        "version",
    ] {
        let url = paths[path]["serverRelativeURL"]
            .as_str()
            .expect("serverRelativeURL");
        let (base, hash) = url.split_once("?hash=").expect("hash");
        assert_eq!(base, format!("/openapi/v3/{path}"));
        assert!(
            !hash.is_empty()
                && hash
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
            "{hash}"
        );
    }
    // Stable for the same registry, different when a document changes.
    assert_eq!(index, v3_index(&resources));
    let smaller: Vec<ResourceInfo> = resources
        .iter()
        .filter(|r| r.kind != "StatefulSet")
        .cloned()
        .collect();
    let other = v3_index(&smaller);
    assert_ne!(
        other["paths"]["apis/apps/v1"],
        index["paths"]["apis/apps/v1"]
    );
    assert_eq!(other["paths"]["api/v1"], index["paths"]["api/v1"]);
}

#[test]
fn v3_group_version_document() {
    let resources = registry();
    let doc = v3_group_version(&resources, "apis/apps/v1").expect("apps/v1");
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = &doc["components"]["schemas"];
    let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(deployment["properties"]["spec"]["description"].is_string());
    assert_eq!(
        gvks(deployment),
        vec![json!({"group": "apps", "kind": "Deployment", "version": "v1"})]
    );
    assert!(
        schemas.get("io.k8s.api.core.v1.Container").is_some(),
        "pod template reached"
    );
    // Only apps/v1 paths.
    for path in doc["paths"].as_object().expect("paths").keys() {
        assert!(path.starts_with("/apis/apps/v1"), "{path}");
    }
    assert!(
        schemas.get("io.k8s.api.core.v1.Pod").is_none(),
        "core kinds are not reached from apps/v1"
    );

    // kubectl decides on server-side field validation by finding the `fieldValidation` query
    // parameter on the PATCH operation carrying the kind's GVK.
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"fieldValidation") && names.contains(&"dryRun"),
        "{names:?}"
    );
    assert!(
        patch["requestBody"]["content"]["application/apply-patch+yaml"]["schema"]["$ref"]
            .is_string()
    );

    assert!(v3_group_version(&resources, "/api/v1/").is_some());
    assert!(v3_group_version(&resources, "apis/apps").is_some());
    assert!(v3_group_version(&resources, "apis/nope/v1").is_none());
    assert!(v3_group_version(&resources, "apis/apps/v2").is_none());
    assert!(v3_group_version(&resources, "../../etc").is_none());
    assert!(v3_group_version(&resources, "").is_none());
}

#[test]
fn generation_is_fast() {
    let resources = registry();
    let _ = definitions();
    let start = std::time::Instant::now();
    let _ = v2(&resources);
    let _ = v3_index(&resources);
    let elapsed = start.elapsed();
    // Unoptimized builds are several times slower than the server's release build.
    assert!(elapsed.as_secs_f64() < 5.0, "took {elapsed:?}");
}

/// Reads one length-delimited field's payloads at the top level of a protobuf message.
fn protobuf_fields(message: &[u8], wanted: u64) -> Vec<&[u8]> {
    fn varint(bytes: &[u8], at: &mut usize) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = bytes[*at];
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let key = varint(message, &mut at);
        match key & 7 {
            0 => {
                varint(message, &mut at);
            }
            1 => at += 8,
            2 => {
                let len = varint(message, &mut at) as usize;
                if key >> 3 == wanted {
                    out.push(&message[at..at + len]);
                }
                at += len;
            }
            other => panic!("unexpected wire type {other}"),
        }
    }
    out
}

#[test]
fn v2_protobuf_encodes_gnostic_document() {
    let doc = v2(&registry());
    let bytes = crate::v2_protobuf(&doc);
    assert_eq!(protobuf_fields(&bytes, 1), vec![b"2.0".as_slice()]);
    let paths = protobuf_fields(&bytes, 8);
    assert_eq!(paths.len(), 1);
    let named_paths = protobuf_fields(paths[0], 2);
    assert_eq!(
        named_paths.len(),
        doc["paths"].as_object().expect("paths").len()
    );
    let definitions = protobuf_fields(&bytes, 9);
    let named_schemas = protobuf_fields(definitions[0], 1);
    assert_eq!(
        named_schemas.len(),
        doc["definitions"].as_object().expect("definitions").len()
    );
    // NamedSchema { name = 1, value = 2 }: the first definition, by name.
    let first = doc["definitions"]
        .as_object()
        .expect("definitions")
        .keys()
        .next()
        .expect("a definition");
    assert_eq!(protobuf_fields(named_schemas[0], 1), vec![first.as_bytes()]);
    assert_eq!(crate::v2_protobuf(&json!("junk")), Vec::<u8>::new());
}

#[test]
fn v3_documents_match_single_documents() {
    let resources = registry();
    let all = crate::v3_documents(&resources, &Map::new());
    assert_eq!(all.index, v3_index(&resources));
    assert_eq!(
        all.documents.len(),
        all.index["paths"].as_object().expect("paths").len()
    );
    assert_eq!(
        Some(&all.documents["apis/apps/v1"]),
        v3_group_version(&resources, "apis/apps/v1").as_ref()
    );
}
