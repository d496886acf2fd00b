//! Authentication: who is asking. x509 client certificates (verified by the TLS layer
//! against `--client-ca-file`: CN is the user, O the groups), static bearer tokens
//! (`--token-auth-file`), bootstrap tokens, service-account tokens, then anonymous
//! requests (`--anonymous-auth`), first success wins as upstream's union authenticator. Every authenticated user is also in
//! `system:authenticated`. Tokens never reach the logs.

use std::collections::{BTreeMap, HashMap};

use machinery::ApiError;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The authenticated user, as upstream's `user.Info`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    /// Empty when the authenticator knows none (certificates, anonymous).
    pub uid: String,
    /// Extra attributes (service-account tokens' pod, front-proxy `X-Remote-Extra-*`).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..User::default()
        }
    }

    pub fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }
}

/// The user a verified client certificate names.
pub fn user_from_cert(der: &[u8]) -> Option<User> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".into());
    Some(User {
        name,
        groups,
        ..User::default()
    })
}

/// The 401 every failed authentication answers, as upstream (no detail that would help
/// an attacker).
pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The configured authenticators.
pub struct Authenticator {
    tokens: HashMap<String, User>,
    anonymous: bool,
    /// Service-account JWTs, checked against the stored objects they are bound to.
    service_accounts: Option<(
        std::sync::Arc<crate::serviceaccount::TokenIssuer>,
        crate::storage::Store,
    )>,
    /// Bootstrap tokens (`--enable-bootstrap-token-auth`), checked against their Secrets.
    bootstrap: Option<crate::storage::Store>,
}

/// Parses upstream's static token file: `token,user,uid[,"group1,group2"]` per line.
pub fn parse_token_file(text: &str) -> Result<HashMap<String, User>, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv(line);
        if fields.len() < 3 {
            return Err(format!(
                "token file line {}: want token,user,uid[,groups], got {} fields",
                i + 1,
                fields.len()
            ));
        }
        let mut groups: Vec<String> = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        groups.push("system:authenticated".into());
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(format!(
                "token file line {}: the token and the user name must not be empty",
                i + 1
            ));
        }
        out.insert(
            fields[0].clone(),
            User {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
                ..User::default()
            },
        );
    }
    Ok(out)
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

impl Authenticator {
    pub fn new(tokens: HashMap<String, User>, anonymous: bool) -> Self {
        Authenticator {
            tokens,
            anonymous,
            service_accounts: None,
            bootstrap: None,
        }
    }

    /// Also accepts bootstrap tokens whose Secrets `store` holds.
    pub fn with_bootstrap_tokens(mut self, store: crate::storage::Store) -> Self {
        self.bootstrap = Some(store);
        self
    }

    /// Also accepts service-account tokens `issuer` verifies.
    pub fn with_service_accounts(
        mut self,
        issuer: std::sync::Arc<crate::serviceaccount::TokenIssuer>,
        store: crate::storage::Store,
    ) -> Self {
        self.service_accounts = Some((issuer, store));
        self
    }

    fn token_user(&self, token: &str) -> Option<User> {
        if let Some(u) = self.tokens.get(token) {
            return Some(u.clone());
        }
        if let Some(store) = &self.bootstrap
            && let Some(u) = crate::bootstraptoken::authenticate(store, token)
        {
            return Some(u);
        }
        let (issuer, store) = self.service_accounts.as_ref()?;
        let claims = issuer.verify(token)?;
        crate::serviceaccount::user_for_claims(store, &claims)
    }

    /// Who sent a request: the verified client certificate's user, else a bearer token's,
    /// else anonymous when allowed; 401 otherwise (also for an unknown token).
    pub fn authenticate(
        &self,
        cert_user: Option<&User>,
        cert_rejected: bool,
        authorization: Option<&str>,
    ) -> Result<User, ApiError> {
        if let Some(u) = cert_user {
            return Ok(u.clone());
        }
        if let Some(header) = authorization {
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .map(str::trim);
            return match token {
                Some(t) if !t.is_empty() => self.token_user(t).ok_or_else(unauthorized),
                _ => Err(unauthorized()),
            };
        }
        if self.anonymous && !cert_rejected {
            Ok(User::anonymous())
        } else {
            Err(unauthorized())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_and_authentication_order() {
        let tokens =
            parse_token_file("# comment\nt1,alice,uid1,\"dev,ops\"\nt2,bob,uid2\n").expect("parse");
        assert_eq!(
            tokens["t1"].groups,
            vec!["dev", "ops", "system:authenticated"]
        );
        let a = Authenticator::new(tokens, true);
        assert_eq!(
            a.authenticate(None, false, Some("Bearer t2"))
                .map(|u| u.name),
            Ok("bob".into())
        );
        assert_eq!(
            a.authenticate(None, false, Some("Bearer nope"))
                .map_err(|e| e.code),
            Err(401)
        );
        assert_eq!(
            a.authenticate(None, false, Some("Basic abc"))
                .map_err(|e| e.code),
            Err(401)
        );
        assert_eq!(
            a.authenticate(None, false, None).map(|u| u.name),
            Ok("system:anonymous".into())
        );
        let cert = User {
            name: "c".into(),
            ..User::default()
        };
        assert_eq!(
            a.authenticate(Some(&cert), false, Some("Bearer nope"))
                .map(|u| u.name),
            Ok("c".into())
        );
        // a certificate no CA vouches for is never anonymous; a good token still counts
        assert_eq!(
            a.authenticate(None, true, None).map_err(|e| e.code),
            Err(401)
        );
        assert_eq!(
            a.authenticate(None, true, Some("Bearer t2"))
                .map(|u| u.name),
            Ok("bob".into())
        );
        let closed = Authenticator::new(HashMap::new(), false);
        assert_eq!(
            closed.authenticate(None, false, None).map_err(|e| e.code),
            Err(401)
        );
        assert!(parse_token_file("only,two").is_err());
    }
}
