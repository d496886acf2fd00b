//! Bootstrap token authentication (`--enable-bootstrap-token-auth`), as kubeadm joins
//! use it: a bearer token `<id>.<secret>` is valid while the `bootstrap.kubernetes.io/token`
//! Secret `kube-system/bootstrap-token-<id>` holds that secret, allows authentication and
//! has not expired. The user is `system:bootstrap:<id>` in `system:bootstrappers` and the
//! Secret's `auth-extra-groups`.

use base64::Engine;
use serde_json::Value;

use crate::authn::User;
use crate::storage::Store;

const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";

/// `<id>.<secret>`: 6 and 16 characters of `[a-z0-9]`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

fn data(secret: &Value, key: &str) -> Option<String> {
    let raw = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes).ok()
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The user of a valid bootstrap token; None for anything else (the caller answers 401).
pub fn authenticate(store: &Store, token: &str) -> Option<User> {
    let (id, secret) = parse(token)?;
    let stored = store.get(&format!(
        "/registry/secrets/kube-system/bootstrap-token-{id}"
    ))?;
    user_for(&stored, id, secret, chrono::Utc::now())
}

fn user_for(
    stored: &Value,
    id: &str,
    secret: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<User> {
    if stored.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
        || stored.pointer("/metadata/deletionTimestamp").is_some()
    {
        return None;
    }
    if data(stored, "token-id").as_deref() != Some(id)
        || !same(&data(stored, "token-secret")?, secret)
        || data(stored, "usage-bootstrap-authentication").as_deref() != Some("true")
    {
        return None;
    }
    if let Some(expiration) = data(stored, "expiration") {
        let at = chrono::DateTime::parse_from_rfc3339(&expiration).ok()?;
        if at <= now {
            return None;
        }
    }
    let mut groups = vec!["system:bootstrappers".to_string()];
    for g in data(stored, "auth-extra-groups")
        .unwrap_or_default()
        .split(',')
    {
        let g = g.trim();
        if g.is_empty() {
            continue;
        }
        // only groups under system:bootstrappers: are honoured, as upstream validates
        if !g.starts_with("system:bootstrappers:") {
            return None;
        }
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    groups.push("system:authenticated".into());
    Some(User {
        name: format!("system:bootstrap:{id}"),
        groups,
        ..User::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(extra: &[(&str, &str)]) -> Value {
        let mut data = json!({
            "token-id": b64("abcdef"), "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64("true"),
        });
        for (k, v) in extra {
            data[*k] = json!(b64(v));
        }
        json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef"}, "data": data})
    }

    #[test]
    fn valid_expired_and_wrong_tokens() {
        let now = chrono::Utc::now();
        let s = secret(&[(
            "auth-extra-groups",
            "system:bootstrappers:kubeadm:default-node-token",
        )]);
        let u = user_for(&s, "abcdef", "0123456789abcdef", now).expect("valid");
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            vec![
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token",
                "system:authenticated"
            ]
        );
        assert!(user_for(&s, "abcdef", "0123456789abcdee", now).is_none());
        let expired = secret(&[("expiration", "2020-01-01T00:00:00Z")]);
        assert!(user_for(&expired, "abcdef", "0123456789abcdef", now).is_none());
        let bad_group = secret(&[("auth-extra-groups", "system:masters")]);
        assert!(user_for(&bad_group, "abcdef", "0123456789abcdef", now).is_none());
        let no_auth = secret(&[("usage-bootstrap-authentication", "false")]);
        assert!(user_for(&no_auth, "abcdef", "0123456789abcdef", now).is_none());
        assert!(parse("abcdef.0123456789abcdef").is_some());
        assert!(parse("ABCDEF.0123456789abcdef").is_none());
        assert!(parse("abcdef0123456789abcdef").is_none());
    }
}
