//! Service-account tokens: JWTs signed with `--service-account-signing-key-file` and
//! verified with `--service-account-key-file` (RS256 or ES256), upstream's claim layout
//! (bound to a pod or secret, so they stop working once that object is gone), legacy
//! secret-based tokens, the TokenRequest subresource, and service account issuer
//! discovery (`/.well-known/openid-configuration`, `/openid/v1/jwks`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::authn::User;
use crate::storage::Store;

/// The issuer of legacy (secret-based) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// A verification key and what discovery publishes of it.
struct PublicKey {
    key: DecodingKey,
    alg: Algorithm,
    jwk: Value,
}

/// Issues and verifies service-account tokens.
pub struct TokenIssuer {
    pub issuer: String,
    pub audiences: Vec<String>,
    signing: Option<(EncodingKey, Algorithm, String)>,
    public: Vec<PublicKey>,
    /// Tokens whose signature and claims passed lately, by SHA-256: their claims, until
    /// the earlier of [`VERIFIED_TTL`] after the check and the token's expiry. Only the
    /// signature check is remembered (it costs as much as the rest of a request); the
    /// objects a token is bound to are looked up on every request.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

/// A verified token's claims, and until when they hold without a new check.
type Verified = (Arc<Value>, Instant);

/// How long a verified token is not verified again (upstream caches successful token
/// authentications for 10s).
const VERIFIED_TTL: Duration = Duration::from_secs(10);
/// Verified tokens remembered at most (expired ones go first).
const VERIFIED_MAX: usize = 10_000;

/// A public key's DER (PKIX) and algorithm, and its parts for a JWK.
fn public_der(pem: &str) -> Result<(Vec<u8>, Algorithm, Value), String> {
    use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
    use rsa::traits::PublicKeyParts;
    let rsa_pub = rsa::RsaPublicKey::from_public_key_pem(pem)
        .ok()
        .or_else(|| {
            rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .ok()
                .map(|k| k.to_public_key())
        })
        .or_else(|| {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            rsa::RsaPrivateKey::from_pkcs1_pem(pem)
                .ok()
                .map(|k| k.to_public_key())
        });
    if let Some(k) = rsa_pub {
        let der = k
            .to_public_key_der()
            .map_err(|e| e.to_string())?
            .as_bytes()
            .to_vec();
        let parts = json!({"kty": "RSA", "n": B64URL.encode(k.n().to_bytes_be()), "e": B64URL.encode(k.e().to_bytes_be())});
        return Ok((der, Algorithm::RS256, parts));
    }
    let ec_pub = p256::PublicKey::from_public_key_pem(pem)
        .ok()
        .or_else(|| {
            p256::SecretKey::from_pkcs8_pem(pem)
                .ok()
                .map(|k| k.public_key())
        })
        .or_else(|| {
            p256::SecretKey::from_sec1_pem(pem)
                .ok()
                .map(|k| k.public_key())
        });
    if let Some(k) = ec_pub {
        let der = k
            .to_public_key_der()
            .map_err(|e| e.to_string())?
            .as_bytes()
            .to_vec();
        let point = p256::EncodedPoint::from(k);
        let (x, y) = (
            point.x().map(|x| x.to_vec()).unwrap_or_default(),
            point.y().map(|y| y.to_vec()).unwrap_or_default(),
        );
        let parts =
            json!({"kty": "EC", "crv": "P-256", "x": B64URL.encode(x), "y": B64URL.encode(y)});
        return Ok((der, Algorithm::ES256, parts));
    }
    Err("not an RSA or P-256 key in PEM (PKIX public, PKCS#1, PKCS#8 or SEC1 private)".into())
}

/// Upstream's key id: base64url(sha256(PKIX DER)).
fn key_id(der: &[u8]) -> String {
    B64URL.encode(Sha256::digest(der))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

impl TokenIssuer {
    /// Loads the keys named by the flags.
    pub fn load(
        issuer: &str,
        audiences: &[String],
        signing_key_file: Option<&Path>,
        key_files: &[PathBuf],
    ) -> Result<Self, String> {
        let mut public = Vec::new();
        for f in key_files {
            let pem = read(f)?;
            let (der, alg, mut jwk) =
                public_der(&pem).map_err(|e| format!("{}: {e}", f.display()))?;
            let key = match alg {
                Algorithm::ES256 => DecodingKey::from_ec_pem(ec_public_pem(&der).as_bytes())
                    .map_err(|e| format!("{}: {e}", f.display()))?,
                _ => DecodingKey::from_rsa_der(&rsa_pkcs1_der(&der)?),
            };
            jwk["use"] = json!("sig");
            jwk["kid"] = json!(key_id(&der));
            jwk["alg"] = json!(if alg == Algorithm::ES256 {
                "ES256"
            } else {
                "RS256"
            });
            public.push(PublicKey { key, alg, jwk });
        }
        let signing = match signing_key_file {
            Some(f) => {
                let pem = read(f)?;
                let (der, alg, _) =
                    public_der(&pem).map_err(|e| format!("{}: {e}", f.display()))?;
                let key = match alg {
                    Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
                    _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
                }
                .map_err(|e| format!("{}: {e}", f.display()))?;
                Some((key, alg, key_id(&der)))
            }
            None => None,
        };
        let audiences = if audiences.is_empty() {
            vec![issuer.to_string()]
        } else {
            audiences.to_vec()
        };
        Ok(TokenIssuer {
            issuer: issuer.to_string(),
            audiences,
            signing,
            public,
            verified: Mutex::default(),
        })
    }

    /// Signs `claims` (a JSON object) with the signing key.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let Some((key, alg, kid)) = &self.signing else {
            return Err("no --service-account-signing-key-file is configured".into());
        };
        let mut header = Header::new(*alg);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| e.to_string())
    }

    /// The verified claims of a token this server (or a legacy secret) issued.
    pub fn verify(&self, token: &str) -> Option<Arc<Value>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        let lock = || self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((claims, until)) = lock().get(&digest)
            && *until > now
        {
            return Some(claims.clone());
        }
        let claims = Arc::new(self.verify_signature(token)?);
        let left = match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) => {
                let secs = exp.saturating_sub(chrono::Utc::now().timestamp());
                Duration::from_secs(u64::try_from(secs).unwrap_or(0))
            }
            None => VERIFIED_TTL,
        };
        if !left.is_zero() {
            let mut cache = lock();
            if cache.len() >= VERIFIED_MAX {
                cache.retain(|_, (_, until)| *until > now);
                if cache.len() >= VERIFIED_MAX {
                    cache.clear();
                }
            }
            cache.insert(digest, (claims.clone(), now + left.min(VERIFIED_TTL)));
        }
        Some(claims)
    }

    fn verify_signature(&self, token: &str) -> Option<Value> {
        for k in &self.public {
            let mut v = Validation::new(k.alg);
            v.set_issuer(&[self.issuer.as_str(), LEGACY_ISSUER]);
            v.validate_aud = false;
            v.required_spec_claims = ["iss", "sub"].iter().map(|s| s.to_string()).collect();
            v.leeway = 0;
            if let Ok(data) = jsonwebtoken::decode::<Value>(token, &k.key, &v) {
                let claims = data.claims;
                if claims.get("iss").and_then(Value::as_str) == Some(LEGACY_ISSUER) {
                    return Some(claims);
                }
                let auds: Vec<&str> = match claims.get("aud") {
                    Some(Value::String(s)) => vec![s.as_str()],
                    Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if auds.iter().any(|a| self.audiences.iter().any(|x| x == a)) {
                    return Some(claims);
                }
                return None;
            }
        }
        None
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.public.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// `/.well-known/openid-configuration`.
    pub fn discovery(&self, jwks_uri: &str) -> Value {
        let mut algs: Vec<&str> = self
            .public
            .iter()
            .map(|k| {
                if k.alg == Algorithm::ES256 {
                    "ES256"
                } else {
                    "RS256"
                }
            })
            .collect();
        algs.sort();
        algs.dedup();
        json!({
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
        })
    }
}

/// The PKCS#1 RSAPublicKey inside a PKIX SubjectPublicKeyInfo (what jsonwebtoken wants).
fn rsa_pkcs1_der(pkix: &[u8]) -> Result<Vec<u8>, String> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let k = rsa::RsaPublicKey::from_public_key_der(pkix).map_err(|e| e.to_string())?;
    Ok(k.to_pkcs1_der()
        .map_err(|e| e.to_string())?
        .as_bytes()
        .to_vec())
}

fn ec_public_pem(pkix: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkix);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// The user a verified token's claims name, if the objects it is bound to still exist
/// with the same uids.
pub fn user_for_claims(store: &Store, claims: &Value) -> Option<User> {
    let (ns, sa_name, sa_uid) = if claims.get("iss").and_then(Value::as_str) == Some(LEGACY_ISSUER)
    {
        let ns = s(claims, "/kubernetes.io~1serviceaccount~1namespace");
        let secret = s(claims, "/kubernetes.io~1serviceaccount~1secret.name");
        // a legacy token works while its secret holds it
        let stored = store.get(&format!("/registry/secrets/{ns}/{secret}"))?;
        if stored
            .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
            .and_then(Value::as_str)
            != Some(s(
                claims,
                "/kubernetes.io~1serviceaccount~1service-account.name",
            ))
        {
            return None;
        }
        (
            ns.to_string(),
            s(
                claims,
                "/kubernetes.io~1serviceaccount~1service-account.name",
            )
            .to_string(),
            s(
                claims,
                "/kubernetes.io~1serviceaccount~1service-account.uid",
            )
            .to_string(),
        )
    } else {
        let k = claims.get("kubernetes.io")?;
        let ns = s(k, "/namespace").to_string();
        if let Some(pod) = k.get("pod") {
            let stored = store.get(&format!("/registry/pods/{ns}/{}", s(pod, "/name")))?;
            if s(&stored, "/metadata/uid") != s(pod, "/uid")
                || stored.pointer("/metadata/deletionTimestamp").is_some()
            {
                return None;
            }
        }
        if let Some(secret) = k.get("secret") {
            let stored = store.get(&format!("/registry/secrets/{ns}/{}", s(secret, "/name")))?;
            if s(&stored, "/metadata/uid") != s(secret, "/uid") {
                return None;
            }
        }
        (
            ns,
            s(k, "/serviceaccount/name").to_string(),
            s(k, "/serviceaccount/uid").to_string(),
        )
    };
    let sa = store.get(&format!("/registry/serviceaccounts/{ns}/{sa_name}"))?;
    if s(&sa, "/metadata/uid") != sa_uid {
        return None;
    }
    Some(User {
        name: format!("system:serviceaccount:{ns}:{sa_name}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
        uid: sa_uid,
        extra: bound_extra(claims),
    })
}

/// The `authentication.kubernetes.io/*` extras upstream derives from a bound token: the
/// pod and node it is bound to, and its credential id.
fn bound_extra(claims: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut extra = std::collections::BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        if !value.is_empty() {
            extra.insert(
                format!("authentication.kubernetes.io/{key}"),
                vec![value.to_string()],
            );
        }
    };
    if let Some(k) = claims.get("kubernetes.io") {
        put("pod-name", s(k, "/pod/name"));
        put("pod-uid", s(k, "/pod/uid"));
        put("node-name", s(k, "/node/name"));
        put("node-uid", s(k, "/node/uid"));
    }
    let jti = s(claims, "/jti");
    if !jti.is_empty() {
        put("credential-id", &format!("JTI={jti}"));
    }
    extra
}

/// The claims of a bound token for `sa` (a stored ServiceAccount), as upstream lays them out.
pub fn bound_claims(
    issuer: &TokenIssuer,
    sa: &Value,
    audiences: &[String],
    expiration_seconds: i64,
    bound: Option<(&str, &Value)>,
) -> Value {
    let now = chrono::Utc::now().timestamp();
    let ns = s(sa, "/metadata/namespace");
    let name = s(sa, "/metadata/name");
    let mut k8s = json!({
        "namespace": ns,
        "serviceaccount": {"name": name, "uid": s(sa, "/metadata/uid")},
    });
    if let Some((kind, obj)) = bound {
        let field = if kind == "Pod" { "pod" } else { "secret" };
        k8s[field] = json!({"name": s(obj, "/metadata/name"), "uid": s(obj, "/metadata/uid")});
    }
    json!({
        "aud": audiences,
        "exp": now + expiration_seconds,
        "iat": now,
        "iss": issuer.issuer,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": k8s,
        "nbf": now,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_KEY: &str = include_str!("../tests/testdata/sa-rsa.key");

    #[test]
    fn sign_verify_and_publish() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = dir.path().join("sa.key");
        std::fs::write(&key, RSA_KEY).expect("write");
        let iss = TokenIssuer::load(
            "https://kubernetes.default.svc",
            &[],
            Some(&key),
            std::slice::from_ref(&key),
        )
        .expect("load");
        let claims = json!({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:a:b", "aud": ["https://kubernetes.default.svc"], "exp": chrono::Utc::now().timestamp() + 60});
        let token = iss.sign(&claims).expect("sign");
        assert_eq!(
            iss.verify(&token).map(|c| c["sub"].clone()),
            Some(json!("system:serviceaccount:a:b"))
        );
        let wrong_aud = json!({"iss": "https://kubernetes.default.svc", "sub": "x", "aud": ["other"], "exp": chrono::Utc::now().timestamp() + 60});
        assert!(iss.verify(&iss.sign(&wrong_aud).expect("sign")).is_none());
        let expired = json!({"iss": "https://kubernetes.default.svc", "sub": "x", "aud": ["https://kubernetes.default.svc"], "exp": chrono::Utc::now().timestamp() - 10});
        assert!(iss.verify(&iss.sign(&expired).expect("sign")).is_none());
        assert!(iss.verify("garbage.token.here").is_none());
        // the second check of a token is answered from what the first one found
        let (first, again) = (iss.verify(&token), iss.verify(&token));
        assert!(matches!((&first, &again), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(iss.verify(&tampered).is_none());
        assert!(iss.verify(&tampered).is_none());
        let jwks = iss.jwks();
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        assert_eq!(
            iss.discovery("https://x/openid/v1/jwks")["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
    }
}
