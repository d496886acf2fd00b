//! `AdmissionReview` on the wire: the request body for the first version a webhook accepts,
//! the checks upstream makes of the answer, and the denial error (`ToStatusErr`).

use base64::Engine;
use machinery::ApiError;
use machinery::status::{Cause, Details};
use serde_json::{Value, json};

use crate::client::go_quote;
use crate::request::Request;

/// The `AdmissionReview` versions this crate speaks, in upstream's naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V1beta1,
}

impl Version {
    fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "admission.k8s.io/v1",
            Self::V1beta1 => "admission.k8s.io/v1beta1",
        }
    }
}

/// A request body ready to send, with the uid the answer must echo.
pub(crate) struct Outgoing {
    pub version: Version,
    pub uid: String,
    pub body: Vec<u8>,
}

/// Builds the review for the first of `versions` this crate knows, as upstream does.
pub(crate) fn create(versions: &[String], req: &Request) -> Result<Outgoing, String> {
    let version = versions
        .iter()
        .find_map(|v| match v.as_str() {
            "v1" => Some(Version::V1),
            "v1beta1" => Some(Version::V1beta1),
            _ => None,
        })
        .ok_or("webhook does not accept known AdmissionReview versions (v1, v1beta1)")?;
    let uid = uuid::Uuid::new_v4().to_string();
    let review = json!({
        "kind": "AdmissionReview",
        "apiVersion": version.api_version(),
        "request": req.admission_request(&uid),
    });
    Ok(Outgoing {
        version,
        uid,
        body: serde_json::to_vec(&review).map_err(|e| e.to_string())?,
    })
}

/// A checked webhook answer.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub allowed: bool,
    /// The decoded JSONPatch bytes (mutating webhooks only).
    pub patch: Vec<u8>,
    pub patch_type: String,
    /// `response.status` (a `metav1.Status`), if any.
    pub result: Option<Value>,
    pub audit_annotations: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// Why an answer was unusable, split where upstream splits its messages.
pub(crate) enum AnswerError {
    /// The body could not be decoded: upstream reports it as a failed call.
    Decode(String),
    /// The body decoded but broke the protocol: `received invalid webhook response: ...`.
    Invalid(String),
}

fn decode(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))?;
    if v.get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        return Err(format!(
            "Object 'Kind' is missing in '{}'",
            String::from_utf8_lossy(body)
        ));
    }
    Ok(v)
}

fn string_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Decodes and checks an answer to `sent`, as upstream's `VerifyAdmissionResponse`.
pub(crate) fn verify(sent: &Outgoing, body: &[u8], mutating: bool) -> Result<Answer, AnswerError> {
    let review = decode(body).map_err(AnswerError::Decode)?;
    let invalid = |m: String| Err(AnswerError::Invalid(m));
    let Some(resp) = review.get("response").filter(|r| r.is_object()) else {
        return invalid("webhook response was absent".into());
    };
    let patch = match resp.get("patch").and_then(Value::as_str) {
        Some(p) => base64::engine::general_purpose::STANDARD
            .decode(p)
            .map_err(|e| AnswerError::Decode(format!("illegal base64 data: {e}")))?,
        None => Vec::new(),
    };
    let patch_type = resp.get("patchType").and_then(Value::as_str);
    let mut answer = Answer {
        allowed: resp
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        result: resp.get("status").filter(|s| s.is_object()).cloned(),
        ..Answer::default()
    };
    if let Some(m) = resp.get("auditAnnotations").and_then(Value::as_object) {
        for (k, v) in m {
            answer
                .audit_annotations
                .push((k.clone(), v.as_str().unwrap_or_default().to_string()));
        }
    }
    if let Some(ws) = resp.get("warnings").and_then(Value::as_array) {
        answer.warnings = ws
            .iter()
            .filter_map(|w| w.as_str().map(String::from))
            .collect();
    }
    if sent.version == Version::V1beta1 {
        // v1beta1 answers were never checked for uid, kind or patchType.
        if mutating && !patch.is_empty() {
            answer.patch = patch;
            answer.patch_type = "JSONPatch".into();
        }
        return Ok(answer);
    }
    let uid = string_field(resp, "uid");
    if uid != sent.uid {
        return invalid(format!(
            "expected response.uid={}, got {}",
            go_quote(&sent.uid),
            go_quote(uid)
        ));
    }
    let (api_version, kind) = (
        string_field(&review, "apiVersion"),
        string_field(&review, "kind"),
    );
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        let got = if api_version.contains('/') {
            api_version.to_string()
        } else {
            format!("/{api_version}")
        };
        return invalid(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {got}, Kind={kind}"
        ));
    }
    if mutating {
        match (patch.is_empty(), patch_type) {
            (false, None) => {
                return invalid(
                    "webhook returned response.patch but not response.patchType".into(),
                );
            }
            (true, Some(_)) => {
                return invalid(
                    "webhook returned response.patchType but not response.patch".into(),
                );
            }
            (_, Some("")) => {
                return invalid("webhook returned invalid response.patchType of \"\"".into());
            }
            _ => {}
        }
        answer.patch = patch;
        answer.patch_type = patch_type.unwrap_or_default().to_string();
    } else if !patch.is_empty() {
        return invalid("validating webhook may not return response.patch".into());
    } else if patch_type.is_some() {
        return invalid("validating webhook may not return response.patchType".into());
    }
    Ok(answer)
}

fn details(v: &Value) -> Details {
    let s = |k: &str| string_field(v, k).to_string();
    Details {
        name: s("name"),
        group: s("group"),
        kind: s("kind"),
        causes: v
            .get("causes")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| Cause {
                        reason: string_field(c, "reason").into(),
                        message: string_field(c, "message").into(),
                        field: string_field(c, "field").into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        retry_after_seconds: v
            .get("retryAfterSeconds")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
    }
}

/// A webhook's refusal as the client sees it (upstream's `ToStatusErr`): the webhook's
/// status with the message prefixed, and a code of at least 400.
pub(crate) fn denial(webhook: &str, result: Option<&Value>) -> ApiError {
    let empty = Value::Null;
    let result = result.unwrap_or(&empty);
    let denied_by = format!("admission webhook {} denied the request", go_quote(webhook));
    let (message, reason) = (
        string_field(result, "message"),
        string_field(result, "reason"),
    );
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    let code = result
        .get("code")
        .and_then(Value::as_i64)
        .filter(|c| (400..=999).contains(c))
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(400);
    let mut err = ApiError::new(code, reason, message);
    if let Some(d) = result.get("details").filter(|d| d.is_object()) {
        err.details = Some(Box::new(details(d)));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(version: Version) -> Outgoing {
        Outgoing {
            version,
            uid: "u1".into(),
            body: Vec::new(),
        }
    }

    fn check(version: Version, body: Value, mutating: bool) -> Result<Answer, String> {
        verify(&sent(version), body.to_string().as_bytes(), mutating).map_err(|e| match e {
            AnswerError::Decode(m) => format!("decode: {m}"),
            AnswerError::Invalid(m) => format!("invalid: {m}"),
        })
    }

    #[test]
    fn uid_and_kind_are_checked_for_v1_only() {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "other", "allowed": true}});
        assert_eq!(
            check(Version::V1, body.clone(), false).unwrap_err(),
            "invalid: expected response.uid=\"u1\", got \"other\""
        );
        assert!(check(Version::V1beta1, body, false).unwrap().allowed);
        let body = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
            "response": {"uid": "u1", "allowed": true}});
        assert_eq!(
            check(Version::V1, body, false).unwrap_err(),
            "invalid: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta1, Kind=AdmissionReview"
        );
    }

    #[test]
    fn patches_are_for_mutating_webhooks() {
        let patch = base64::engine::general_purpose::STANDARD.encode("[]");
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u1", "allowed": true, "patch": patch}});
        assert_eq!(
            check(Version::V1, body.clone(), false).unwrap_err(),
            "invalid: validating webhook may not return response.patch"
        );
        assert_eq!(
            check(Version::V1, body, true).unwrap_err(),
            "invalid: webhook returned response.patch but not response.patchType"
        );
        assert_eq!(
            check(Version::V1, json!({"kind": "AdmissionReview"}), true).unwrap_err(),
            "invalid: webhook response was absent"
        );
    }

    #[test]
    fn denial_wording_and_codes() {
        let e = denial(
            "w.example.com",
            Some(&json!({"message": "no", "code": 422})),
        );
        assert_eq!(
            e.message,
            "admission webhook \"w.example.com\" denied the request: no"
        );
        assert_eq!(e.code, 422);
        let e = denial("w", None);
        assert_eq!(
            e.message,
            "admission webhook \"w\" denied the request without explanation"
        );
        assert_eq!(e.code, 400);
        let e = denial("w", Some(&json!({"reason": "Forbidden", "code": 200})));
        assert_eq!(
            e.message,
            "admission webhook \"w\" denied the request: Forbidden"
        );
        assert_eq!((e.code, e.reason.as_str()), (400, "Forbidden"));
    }
}
