//! A CSR's PKCS#10 request, parsed once into what the approver and the signers look at
//! (subject, subject alternative names), and the per-signer checks upstream makes of it
//! (`pkg/apis/certificates/helpers.go` and the signer's `isRequestForSigner` functions).

use std::collections::BTreeSet;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::{
    KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING, LEGACY_UNKNOWN,
};

/// The parts of a certificate request the controllers decide on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CertRequest {
    /// The DER of the whole request (what the signer signs from).
    pub der: Vec<u8>,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<std::net::IpAddr>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
}

/// Parses `spec.request`: the first PEM block must be a `CERTIFICATE REQUEST`.
pub fn parse(pem: &[u8]) -> Result<CertRequest, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, req) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("unable to parse certificate request: {e}"))?;
    let info = &req.certification_request_info;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue| a.as_str().map(str::to_string);
    let mut out = CertRequest {
        der: block.contents.clone(),
        // as Go's pkix.Name, the last common name wins
        common_name: info
            .subject
            .iter_common_name()
            .filter_map(|a| text(a).ok())
            .last()
            .unwrap_or_default(),
        organizations: info
            .subject
            .iter_organization()
            .filter_map(|a| text(a).ok())
            .collect(),
        ..Default::default()
    };
    for ext in req.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = ext else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                GeneralName::RFC822Name(e) => out.emails.push(e.to_string()),
                GeneralName::URI(u) => out.uris.push(u.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        out.ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Verifies the request's self-signature (proof of possession of the key).
pub fn verify_signature(der: &[u8]) -> Result<(), String> {
    let (_, req) = X509CertificationRequest::from_der(der)
        .map_err(|e| format!("unable to parse certificate request: {e}"))?;
    req.verify_signature()
        .map_err(|e| format!("unable to verify certificate request signature: {e}"))
}

fn usage_set(usages: &[String]) -> BTreeSet<&str> {
    usages.iter().map(String::as_str).collect()
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

fn require_system_nodes(req: &CertRequest) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    Ok(())
}

fn require_node_common_name(req: &CertRequest) -> Result<(), String> {
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// A kubelet's client certificate request (`system:node:<name>` in `system:nodes`, no
/// subject alternative names, client usages).
pub fn validate_kubelet_client(req: &CertRequest, usages: &[String]) -> Result<(), String> {
    require_system_nodes(req)?;
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    require_node_common_name(req)?;
    let with_rsa = set(&["client auth", "digital signature", "key encipherment"]);
    let without = set(&["client auth", "digital signature"]);
    let got = usage_set(usages);
    if got != with_rsa && got != without {
        return Err(format!("usages did not match {:?}", list(&with_rsa)));
    }
    Ok(())
}

/// A kubelet's serving certificate request (in `system:nodes`, DNS or IP names only,
/// server usages, `system:node:` common name).
pub fn validate_kubelet_serving(req: &CertRequest, usages: &[String]) -> Result<(), String> {
    require_system_nodes(req)?;
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let with_rsa = set(&["digital signature", "key encipherment", "server auth"]);
    let without = set(&["digital signature", "server auth"]);
    let got = usage_set(usages);
    if got != with_rsa && got != without {
        return Err(format!("usages did not match {:?}", list(&with_rsa)));
    }
    require_node_common_name(req)
}

/// A client certificate for the API server: `client auth` required, only the signing
/// usages besides.
pub fn validate_apiserver_client(usages: &[String]) -> Result<(), String> {
    let mut client_auth = false;
    for u in usages {
        match u.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

/// The check of the signer `signer_name` (legacy-unknown checks nothing). Err means the
/// signer refuses the request: upstream marks the CSR Failed.
pub fn validate_for_signer(
    signer_name: &str,
    req: &CertRequest,
    usages: &[String],
) -> Result<(), String> {
    match signer_name {
        KUBELET_SERVING => validate_kubelet_serving(req, usages),
        KUBE_APISERVER_CLIENT_KUBELET => validate_kubelet_client(req, usages),
        KUBE_APISERVER_CLIENT => validate_apiserver_client(usages),
        LEGACY_UNKNOWN => Ok(()),
        other => Err(format!("unrecognized signerName: {other:?}")),
    }
}

fn list(s: &BTreeSet<&str>) -> Vec<String> {
    s.iter().map(|u| u.to_string()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    /// A PEM CSR for `cn` in `orgs` with the given subject alternative names.
    pub(crate) fn csr_pem(cn: &str, orgs: &[&str], sans: Vec<SanType>) -> String {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        for o in orgs {
            p.distinguished_name.push(DnType::OrganizationName, *o);
        }
        p.subject_alt_names = sans;
        p.serialize_request(&key).expect("csr").pem().expect("pem")
    }

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_subject_and_names() {
        let pem = csr_pem(
            "system:node:n1",
            &["system:nodes"],
            vec![
                SanType::DnsName("n1.example".try_into().expect("dns")),
                SanType::IpAddress("10.0.0.1".parse().expect("ip")),
            ],
        );
        let req = parse(pem.as_bytes()).expect("parse");
        assert_eq!(req.common_name, "system:node:n1");
        assert_eq!(req.organizations, ["system:nodes"]);
        assert_eq!(req.dns_names, ["n1.example"]);
        assert_eq!(
            req.ip_addresses,
            ["10.0.0.1".parse::<std::net::IpAddr>().expect("ip")]
        );
        assert!(verify_signature(&req.der).is_ok());
        assert_eq!(
            parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err("PEM block type must be CERTIFICATE REQUEST".into())
        );
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn kubelet_client_requests() {
        let ok = parse(csr_pem("system:node:n1", &["system:nodes"], vec![]).as_bytes()).expect("p");
        let client = usages(&["digital signature", "client auth"]);
        assert_eq!(validate_kubelet_client(&ok, &client), Ok(()));
        let rsa = usages(&["digital signature", "key encipherment", "client auth"]);
        assert_eq!(validate_kubelet_client(&ok, &rsa), Ok(()));
        assert!(
            validate_kubelet_client(&ok, &usages(&["client auth"]))
                .is_err_and(|e| e.starts_with("usages did not match"))
        );
        let wrong_org = parse(csr_pem("system:node:n1", &["x"], vec![]).as_bytes()).expect("p");
        assert_eq!(
            validate_kubelet_client(&wrong_org, &client),
            Err("subject organization is not system:nodes".into())
        );
        let wrong_cn = parse(csr_pem("bob", &["system:nodes"], vec![]).as_bytes()).expect("p");
        assert_eq!(
            validate_kubelet_client(&wrong_cn, &client),
            Err("subject common name does not begin with system:node:".into())
        );
        let dns = vec![SanType::DnsName("a".try_into().expect("dns"))];
        let with_dns =
            parse(csr_pem("system:node:n1", &["system:nodes"], dns).as_bytes()).expect("p");
        assert_eq!(
            validate_kubelet_client(&with_dns, &client),
            Err("DNS subjectAltNames are not allowed".into())
        );
    }

    #[test]
    fn kubelet_serving_requests() {
        let dns = vec![SanType::DnsName("n1".try_into().expect("dns"))];
        let ok = parse(csr_pem("system:node:n1", &["system:nodes"], dns).as_bytes()).expect("p");
        let serving = usages(&["digital signature", "server auth"]);
        assert_eq!(validate_kubelet_serving(&ok, &serving), Ok(()));
        let bare =
            parse(csr_pem("system:node:n1", &["system:nodes"], vec![]).as_bytes()).expect("p");
        assert_eq!(
            validate_kubelet_serving(&bare, &serving),
            Err("DNS or IP subjectAltName is required".into())
        );
        assert!(validate_kubelet_serving(&ok, &usages(&["client auth"])).is_err());
    }

    #[test]
    fn apiserver_client_usages() {
        assert_eq!(validate_apiserver_client(&usages(&["client auth"])), Ok(()));
        assert_eq!(
            validate_apiserver_client(&usages(&["client auth", "server auth"])),
            Err("invalid usage for client certificate: server auth".into())
        );
        assert_eq!(
            validate_apiserver_client(&usages(&["digital signature"])),
            Err("missing required usage for client certificate: client auth".into())
        );
        let any = CertRequest::default();
        assert_eq!(validate_for_signer(LEGACY_UNKNOWN, &any, &[]), Ok(()));
        assert!(validate_for_signer("example.com/x", &any, &[]).is_err());
    }
}
