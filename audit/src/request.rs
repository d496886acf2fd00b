//! What the audit layer needs to know about an incoming request, and helpers that derive
//! the audit ID, source IPs and user agent exactly as upstream's request handling does.
//! Deliberately free of HTTP types: the API server maps its own request onto these.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The request header that carries (and echoes back) the audit ID.
pub const HEADER_AUDIT_ID: &str = "Audit-ID";

/// Annotation the authorizer's decision is recorded under (`allow` or `forbid`).
pub const ANNOTATION_AUTHZ_DECISION: &str = "authorization.k8s.io/decision";

/// Annotation the authorizer's reason is recorded under.
pub const ANNOTATION_AUTHZ_REASON: &str = "authorization.k8s.io/reason";

/// Longest user agent recorded before it is cut and marked.
const MAX_USER_AGENT_LENGTH: usize = 1024;
const USER_AGENT_TRUNCATE_SUFFIX: &str = "...TRUNCATED";

/// The authorizer attributes of a request, which the policy matches against and the
/// event records. For resource requests the fields come from the request info; for
/// non-resource requests only `user`, `groups`, `verb` and `path` matter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// The authenticated (not impersonated) username.
    pub user: String,
    /// The authenticated user's UID, recorded in the event.
    pub uid: String,
    /// The authenticated user's groups.
    pub groups: Vec<String>,
    /// The authenticated user's extra attributes, recorded in the event.
    pub extra: BTreeMap<String, Vec<String>>,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`
    /// for resource requests; the lowercased HTTP method otherwise.
    pub verb: String,
    /// The namespace, empty for cluster-scoped resources.
    pub namespace: String,
    /// The API group, empty for the core group.
    pub api_group: String,
    /// The API version, e.g. `v1`.
    pub api_version: String,
    /// The resource, e.g. `pods`.
    pub resource: String,
    /// The subresource, e.g. `log`; empty when none.
    pub subresource: String,
    /// The object name; empty for list, watch-all and most creates.
    pub name: String,
    /// The URL path (no query), matched by `nonResourceURLs`.
    pub path: String,
    /// Whether this is a resource (API) request rather than a non-resource URL.
    pub resource_request: bool,
}

/// The audit ID for a request: the client's `Audit-ID` header verbatim when present and
/// non-empty, otherwise a fresh random UUID. Echo it as the response's `Audit-Id` header.
pub fn audit_id_from_header(header: Option<&str>) -> String {
    match header {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// The request's source IPs: every parseable `X-Forwarded-For` entry in order, then
/// `X-Real-Ip` unless already listed, then the peer address unless it equals the last
/// entry. `remote_addr` may be `ip`, `ip:port` or `[ipv6]:port`.
pub fn source_ips(
    x_forwarded_for: Option<&str>,
    x_real_ip: Option<&str>,
    remote_addr: Option<&str>,
) -> Vec<String> {
    let mut ips: Vec<IpAddr> = x_forwarded_for
        .unwrap_or("")
        .split(',')
        .filter_map(|part| parse_ip(part.trim()))
        .collect();
    if let Some(ip) = x_real_ip.and_then(parse_ip)
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    if let Some(ip) = remote_addr.and_then(parse_host_port)
        && ips.last() != Some(&ip)
    {
        ips.push(ip);
    }
    ips.iter().map(IpAddr::to_string).collect()
}

/// The user agent as recorded: cut to 1024 bytes (on a character boundary) and marked.
pub fn truncate_user_agent(user_agent: &str) -> String {
    if user_agent.len() <= MAX_USER_AGENT_LENGTH {
        return user_agent.to_string();
    }
    let mut end = MAX_USER_AGENT_LENGTH;
    while !user_agent.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{USER_AGENT_TRUNCATE_SUFFIX}", &user_agent[..end])
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn parse_host_port(addr: &str) -> Option<IpAddr> {
    if let Ok(sock) = addr.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    parse_ip(addr.trim_start_matches('[').trim_end_matches(']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_id_prefers_header() {
        assert_eq!(audit_id_from_header(Some("abc")), "abc");
        let generated = audit_id_from_header(Some(""));
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        assert_ne!(audit_id_from_header(None), audit_id_from_header(None));
    }

    #[test]
    fn source_ips_follow_upstream_order() {
        assert_eq!(
            source_ips(None, None, Some("10.0.0.1:4431")),
            vec!["10.0.0.1"]
        );
        assert_eq!(
            source_ips(
                Some("1.1.1.1, bogus, 2.2.2.2"),
                Some("3.3.3.3"),
                Some("[::1]:80")
            ),
            vec!["1.1.1.1", "2.2.2.2", "3.3.3.3", "::1"]
        );
        // X-Real-Ip already in the chain, peer equal to the last entry: no duplicates.
        assert_eq!(
            source_ips(Some("1.1.1.1,2.2.2.2"), Some("1.1.1.1"), Some("2.2.2.2:1")),
            vec!["1.1.1.1", "2.2.2.2"]
        );
        assert!(source_ips(None, None, Some("not-an-ip")).is_empty());
    }

    #[test]
    fn user_agent_truncation() {
        assert_eq!(truncate_user_agent("kubectl/v1.31"), "kubectl/v1.31");
        let long = "é".repeat(600); // 1200 bytes; byte 1024 is a boundary
        let cut = truncate_user_agent(&long);
        assert!(cut.ends_with("...TRUNCATED"));
        assert_eq!(cut.len(), 1024 + 12);
        let odd = format!("a{}", "é".repeat(600)); // byte 1024 falls inside a character
        assert_eq!(truncate_user_agent(&odd).len(), 1023 + 12);
    }
}
