//! Content negotiation: decoding request bodies (JSON, YAML, protobuf) and choosing the
//! response form from `Accept` (JSON, YAML, protobuf, `as=Table`, `as=PartialObjectMetadata`).

use machinery::ApiError;
use serde_json::Value;

/// The largest request body accepted (upstream's 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub const JSON: &str = "application/json";
pub const YAML: &str = "application/yaml";
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The wire encoding of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

/// What shape the client wants objects in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    /// meta.k8s.io/v1 Table.
    Table,
    /// meta.k8s.io/v1 PartialObjectMetadata(List).
    PartialMetadata,
}

/// The outcome of negotiating `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    pub encoding: Encoding,
    pub shape: Shape,
}

impl Accept {
    pub const JSON: Accept = Accept {
        encoding: Encoding::Json,
        shape: Shape::Object,
    };

    pub fn content_type(&self) -> &'static str {
        match self.encoding {
            Encoding::Json => JSON,
            Encoding::Yaml => YAML,
            Encoding::Protobuf => PROTOBUF,
        }
    }
}

struct MediaRange<'a> {
    essence: String,
    params: Vec<(&'a str, &'a str)>,
}

fn parse_media_ranges(header: &str) -> Vec<MediaRange<'_>> {
    header
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let essence = it.next()?.trim().to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = it
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim(), v.trim().trim_matches('"')))
                })
                .collect();
            Some(MediaRange { essence, params })
        })
        .collect()
}

/// Picks the response form. `protobuf_ok` says whether the object kind has a protobuf
/// form (custom resources do not). Returns 406 when nothing offered is acceptable.
pub fn negotiate(accept: Option<&str>, protobuf_ok: bool) -> Result<Accept, ApiError> {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return Ok(Accept::JSON);
    };
    for range in parse_media_ranges(header) {
        let param = |k: &str| {
            range
                .params
                .iter()
                .find(|(pk, _)| *pk == k)
                .map(|(_, v)| *v)
        };
        let encoding = match range.essence.as_str() {
            JSON | "application/*" | "*/*" => Encoding::Json,
            YAML => Encoding::Yaml,
            PROTOBUF if protobuf_ok => Encoding::Protobuf,
            _ => continue,
        };
        let shape = match param("as") {
            None => Shape::Object,
            Some("Table")
                if param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1" | "v1beta1")) =>
            {
                Shape::Table
            }
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1" | "v1beta1")) =>
            {
                Shape::PartialMetadata
            }
            Some(_) => continue,
        };
        // tables are JSON-only, as upstream
        let encoding = if shape == Shape::Table && encoding == Encoding::Protobuf {
            continue;
        } else {
            encoding
        };
        return Ok(Accept { encoding, shape });
    }
    Err(ApiError::not_acceptable("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".to_string()))
}

/// The body encodings a request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyYaml,
    ApplyCbor,
}

/// Classifies a `Content-Type`.
pub fn body_type(content_type: Option<&str>) -> Result<BodyType, ApiError> {
    let ct = content_type.unwrap_or(JSON);
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match essence.as_str() {
        "" | JSON => BodyType::Json,
        YAML | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        PROTOBUF => BodyType::Protobuf,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" => BodyType::ApplyYaml,
        "application/apply-patch+cbor" => BodyType::ApplyCbor,
        _ => return Err(ApiError::unsupported_media_type(ct)),
    })
}

/// A decoding failure worded as upstream's: `couldn't get version/kind; json parse error: ...`
/// or the `<Kind> in version "<v>" cannot be handled as a <Kind>` form when `kind` is known.
fn decode_error(kind: Option<(&str, &str)>, detail: String) -> ApiError {
    match kind {
        Some((k, v)) => ApiError::bad_request(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: {detail}"
        )),
        None => ApiError::bad_request(detail),
    }
}

/// A body that is not even JSON (or YAML), worded as upstream's serializer does.
fn unrecognized(kind: Option<(&str, &str)>, detail: &str) -> ApiError {
    let kind = kind.map(|(k, _)| k).unwrap_or("object");
    ApiError::bad_request(format!(
        "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {detail}"
    ))
}

/// Decodes an object body (JSON, YAML or protobuf) into a JSON value.
/// `expected` is the endpoint's (kind, version) for error wording.
pub fn decode_object(
    body: &[u8],
    ty: BodyType,
    expected: Option<(&str, &str)>,
) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::too_large());
    }
    let value = match ty {
        BodyType::Json => serde_json::from_slice::<Value>(body)
            .map_err(|e| unrecognized(expected, &json_error_text(&e, body)))?,
        BodyType::Yaml | BodyType::ApplyYaml => {
            yaml_to_json(body).map_err(|e| decode_error(expected, e))?
        }
        BodyType::Protobuf => {
            protobuf::decode(body).map_err(|e| decode_error(expected, e.to_string()))?
        }
        _ => return Err(ApiError::unsupported_media_type("this body type")),
    };
    if !value.is_object() {
        return Err(decode_error(
            expected,
            "json: cannot unmarshal non-object into Go value of the expected type".to_string(),
        ));
    }
    Ok(value)
}

/// Text of a JSON syntax error in the style of Go's encoding/json where it matters to
/// users: the offending character and offset.
fn json_error_text(e: &serde_json::Error, body: &[u8]) -> String {
    if e.is_eof() {
        return "unexpected end of JSON input".into();
    }
    // byte offset of the error from line/column
    let mut offset = 0usize;
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if i + 1 == e.line() {
            offset += e.column().saturating_sub(1);
            break;
        }
        offset += line.len() + 1;
    }
    let ch = body.get(offset).map(|b| *b as char).unwrap_or(' ');
    format!("invalid character '{ch}' looking for beginning of value")
}

/// YAML to JSON, rejecting what cannot be represented (non-string keys are stringified).
pub fn yaml_to_json(body: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("yaml: invalid UTF-8: {e}"))?;
    let y: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| format!("yaml: {e}"))?;
    yaml_value_to_json(y)
}

fn yaml_value_to_json(y: serde_yaml::Value) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or("yaml: non-finite number")?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(yaml_value_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".into(),
                    _ => return Err("yaml: unsupported map key".into()),
                };
                out.insert(key, yaml_value_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_value_to_json(t.value)?,
    })
}

/// Encodes a response body.
pub fn encode(value: &Value, encoding: Encoding) -> Result<Vec<u8>, ApiError> {
    match encoding {
        Encoding::Json => serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string())),
        Encoding::Yaml => serde_yaml::to_string(value)
            .map(String::into_bytes)
            .map_err(|e| ApiError::internal(e.to_string())),
        Encoding::Protobuf => {
            protobuf::encode(value).map_err(|e| ApiError::internal(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_tables_and_fallbacks() {
        let a = negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"), true)
            .expect("ok");
        assert_eq!(a.shape, Shape::Table);
        let a = negotiate(Some("application/vnd.kubernetes.protobuf, */*"), false).expect("ok");
        assert_eq!(a, Accept::JSON);
        let a = negotiate(Some("application/vnd.kubernetes.protobuf, */*"), true).expect("ok");
        assert_eq!(a.encoding, Encoding::Protobuf);
        assert_eq!(
            negotiate(Some("text/html"), true).map_err(|e| e.code),
            Err(406)
        );
    }

    #[test]
    fn decodes_yaml_and_rejects_garbage() {
        let v = decode_object(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            BodyType::Yaml,
            None,
        )
        .expect("yaml");
        assert_eq!(v["metadata"]["name"], "x");
        let e = decode_object(b"{not json", BodyType::Json, Some(("ConfigMap", "v1")))
            .expect_err("bad");
        assert_eq!(e.code, 400);
        assert!(
            e.message
                .starts_with("the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: invalid character 'n'")
        );
        assert_eq!(body_type(Some("text/plain")).map_err(|e| e.code), Err(415));
    }
}
