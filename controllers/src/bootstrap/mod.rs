//! The bootstrap-token controllers (upstream's `pkg/controller/bootstrap`), both off by
//! default as upstream:
//!
//! - [`signer`] (`bootstrapsigner`): signs the `kube-public/cluster-info` ConfigMap's
//!   kubeconfig with a detached JWS per signing token, so a joining node (kubeadm) can
//!   trust what it downloads anonymously;
//! - [`tokencleaner`] (`tokencleaner`): deletes bootstrap token secrets once expired.
//!
//! Here: what a bootstrap token secret is (upstream's `cluster-bootstrap` helpers) and
//! the detached JWS (RFC 7515 appendix F) kubeadm checks byte for byte.

pub mod signer;
pub mod tokencleaner;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey};
use k8s_openapi::api::core::v1::Secret;

/// Where token secrets live, and their type.
pub const TOKEN_NAMESPACE: &str = "kube-system";
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Token secrets are named this prefix plus the token id.
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// Secret data keys.
pub const TOKEN_ID_KEY: &str = "token-id";
pub const TOKEN_SECRET_KEY: &str = "token-secret";
pub const EXPIRATION_KEY: &str = "expiration";
pub const USAGE_SIGNING_KEY: &str = "usage-bootstrap-signing";
/// The ConfigMap the signer signs, and its keys.
pub const CLUSTER_INFO_NAMESPACE: &str = "kube-public";
pub const CLUSTER_INFO: &str = "cluster-info";
pub const KUBECONFIG_KEY: &str = "kubeconfig";
pub const JWS_KEY_PREFIX: &str = "jws-kubeconfig-";

/// A secret data value as text ("" when missing).
fn data<'a>(secret: &'a Secret, key: &str) -> &'a str {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| std::str::from_utf8(&v.0).ok())
        .unwrap_or("")
}

/// The token id in a secret name (`bootstrap-token-<6 of [a-z0-9]>`).
pub fn parse_secret_name(name: &str) -> Option<&str> {
    let id = name.strip_prefix(SECRET_PREFIX)?;
    let ok = id.len() == 6
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    ok.then_some(id)
}

/// How long until the token expires: `Err(())` when it has (an unparseable expiration
/// counts as expired), `Ok(None)` when it never does.
#[allow(clippy::result_unit_err)]
pub fn time_to_expiry(secret: &Secret, now: Timestamp) -> Result<Option<Duration>, ()> {
    let expiration = data(secret, EXPIRATION_KEY);
    if expiration.is_empty() {
        return Ok(None);
    }
    let Ok(at) = expiration.parse::<Timestamp>() else {
        tracing::debug!(secret = ?secret.metadata.name, expiration, "unparseable expiration; treating as expired");
        return Err(());
    };
    match Duration::try_from(at.duration_since(now)) {
        Ok(left) if !left.is_zero() => Ok(Some(left)),
        _ => Err(()),
    }
}

/// The token id and secret of a token that may sign cluster-info: well named, not
/// expired, and marked `usage-bootstrap-signing: "true"`.
pub fn token_for_signing(secret: &Secret, now: Timestamp) -> Option<(String, String)> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let name_id = parse_secret_name(name)?;
    let id = data(secret, TOKEN_ID_KEY);
    if id.is_empty() || id != name_id {
        tracing::debug!(secret = name, "token id missing or not matching the name");
        return None;
    }
    let token = data(secret, TOKEN_SECRET_KEY);
    if token.is_empty() || time_to_expiry(secret, now).is_err() {
        return None;
    }
    if data(secret, USAGE_SIGNING_KEY) != "true" {
        return None;
    }
    Some((id.to_string(), token.to_string()))
}

/// The detached JWS of `content` signed with HS256 by `token_secret` under key id
/// `token_id`: `<protected header>..<signature>`, the header exactly as kubeadm computes
/// it (`{"alg":"HS256","kid":"<id>"}`), so it can compare the strings.
pub fn detached_signature(
    content: &str,
    token_id: &str,
    token_secret: &str,
) -> Result<String, String> {
    let header = serde_json::json!({"alg": "HS256", "kid": token_id}).to_string();
    let header = URL_SAFE_NO_PAD.encode(header);
    let payload = URL_SAFE_NO_PAD.encode(content);
    let signing_input = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(token_secret.as_bytes()),
        Algorithm::HS256,
    )
    .map_err(|e| format!("can't HS256-sign the given token: {e}"))?;
    Ok(format!("{header}..{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // computed independently with Python's hmac/hashlib over the same signing input
    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters: []\n";
    const SIGNED: &str =
        "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..6noRUKYc6IcJatsCC4tJjBE6Jx8UClLwzsstr66SXaM";
    const SIGNED_EMPTY: &str =
        "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..MO2tlCpY1xB334qWeOe_XEv9c6DIMRNmKJZImOzY17k";

    #[test]
    fn detached_jws_matches_a_known_vector() {
        assert_eq!(
            detached_signature(KUBECONFIG, "abcdef", "0123456789abcdef").as_deref(),
            Ok(SIGNED)
        );
        assert_eq!(
            detached_signature("", "abcdef", "0123456789abcdef").as_deref(),
            Ok(SIGNED_EMPTY)
        );
    }

    fn secret(name: &str, data: serde_json::Value) -> Secret {
        use base64::engine::general_purpose::STANDARD;
        let data: serde_json::Map<String, serde_json::Value> = data
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| (k.clone(), json!(STANDARD.encode(v.as_str().unwrap_or("")))))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": TOKEN_NAMESPACE},
            "type": SECRET_TYPE,
            "data": data,
        }))
        .expect("secret")
    }

    #[test]
    fn names_and_expiry() {
        assert_eq!(parse_secret_name("bootstrap-token-abc123"), Some("abc123"));
        assert_eq!(parse_secret_name("bootstrap-token-ABC123"), None);
        assert_eq!(parse_secret_name("bootstrap-token-abc12"), None);
        assert_eq!(parse_secret_name("token-abc123"), None);
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().expect("time");
        let at = |e: &str| secret("bootstrap-token-abc123", json!({"expiration": e}));
        assert_eq!(
            time_to_expiry(&at("2030-01-01T01:00:00Z"), now),
            Ok(Some(Duration::from_secs(3600)))
        );
        assert_eq!(time_to_expiry(&at("2029-12-31T23:00:00Z"), now), Err(()));
        assert_eq!(time_to_expiry(&at("tomorrow"), now), Err(()));
        assert_eq!(time_to_expiry(&at(""), now), Ok(None));
    }

    #[test]
    fn signing_tokens() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().expect("time");
        let good = json!({"token-id": "abc123", "token-secret": "0123456789abcdef",
            "usage-bootstrap-signing": "true", "expiration": "2030-01-02T00:00:00Z"});
        let s = secret("bootstrap-token-abc123", good.clone());
        assert_eq!(
            token_for_signing(&s, now),
            Some(("abc123".into(), "0123456789abcdef".into()))
        );
        let mut not_signing = good.clone();
        not_signing["usage-bootstrap-signing"] = json!("false");
        assert_eq!(
            token_for_signing(&secret("bootstrap-token-abc123", not_signing), now),
            None
        );
        let mut expired = good.clone();
        expired["expiration"] = json!("2029-01-01T00:00:00Z");
        assert_eq!(
            token_for_signing(&secret("bootstrap-token-abc123", expired), now),
            None
        );
        assert_eq!(
            token_for_signing(&secret("bootstrap-token-zzz999", good), now),
            None
        );
    }
}
