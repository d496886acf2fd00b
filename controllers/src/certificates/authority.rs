//! The local certificate authority the signers issue from (upstream's
//! `pkg/controller/certificates/authority`): a CA certificate and key read from PEM files,
//! and the permissive signing policy — the request's subject, names and key, the usages
//! the CSR asks for, not a CA, valid from a few minutes in the past (backdating against
//! clock skew) for the requested lifetime, never past the CA's own expiry.

use std::time::Duration;

use jiff::Timestamp;
use rcgen::{
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType, SerialNumber, SubjectPublicKeyInfo,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use super::request::CertRequest;

/// A CA that signs certificate requests.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate's NotAfter: nothing it signs outlives it.
    not_after: Timestamp,
    /// Whether the CA names its key (then issued certificates carry it as the
    /// authority key identifier, as Go's x509 does).
    has_key_id: bool,
}

/// How a certificate is shaped (upstream's `PermissiveSigningPolicy`).
#[derive(Debug, Clone)]
pub struct Policy {
    /// The lifetime asked for.
    pub ttl: Duration,
    /// The CSR's `spec.usages`.
    pub usages: Vec<String>,
    /// How far NotBefore lies in the past.
    pub backdate: Duration,
    /// Certificates living less than this are not shortened by the backdate.
    pub short: Duration,
}

impl Authority {
    /// Reads the CA from PEM files (`--cluster-signing-cert-file`/`-key-file`).
    pub fn load(cert_file: &std::path::Path, key_file: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let cert = std::fs::read_to_string(cert_file)
            .with_context(|| format!("reading {}", cert_file.display()))?;
        let key = std::fs::read_to_string(key_file)
            .with_context(|| format!("reading {}", key_file.display()))?;
        Self::from_pem(&cert, &key).map_err(|e| {
            anyhow::anyhow!(
                "loading the CA from {} and {}: {e}",
                cert_file.display(),
                key_file.display()
            )
        })
    }

    /// The CA from its certificate and private key (PKCS#8, PKCS#1 RSA or SEC1 P-256).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let key = load_key(key_pem)?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| format!("parsing the CA certificate: {e}"))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| format!("parsing the CA certificate: {e}"))?;
        let not_after = Timestamp::from_second(cert.validity().not_after.timestamp())
            .map_err(|e| e.to_string())?;
        let has_key_id = cert.iter_extensions().any(|e| {
            matches!(
                e.parsed_extension(),
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_)
            )
        });
        let issuer = Issuer::from_ca_cert_der(&pem.contents.clone().into(), key)
            .map_err(|e| format!("using the CA certificate: {e}"))?;
        Ok(Authority {
            issuer,
            not_after,
            has_key_id,
        })
    }

    /// When the CA expires.
    pub fn not_after(&self) -> Timestamp {
        self.not_after
    }

    /// Signs `req` under `policy` at `now`; returns the certificate as PEM.
    pub fn sign(
        &self,
        req: &CertRequest,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<String, String> {
        let (not_before, not_after) = validity(now, policy, self.not_after)?;
        super::request::verify_signature(&req.der)?;
        let (_, csr) = X509CertificationRequest::from_der(&req.der)
            .map_err(|e| format!("unable to parse certificate request: {e}"))?;
        let info = &csr.certification_request_info;
        let public_key = SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
            .map_err(|e| format!("unsupported public key: {e}"))?;
        let (key_usages, extended_key_usages) = key_usages(&policy.usages)?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = subject(&info.subject)?;
        params.subject_alt_names = subject_alt_names(req)?;
        params.key_usages = key_usages;
        params.extended_key_usages = extended_key_usages;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = self.has_key_id;
        params.serial_number = Some(SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + unix_duration(not_before)?;
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + unix_duration(not_after)?;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|e| format!("failed to sign certificate: {e}"))?;
        Ok(cert.pem())
    }
}

fn unix_duration(t: Timestamp) -> Result<Duration, String> {
    u64::try_from(t.as_second())
        .map(Duration::from_secs)
        .map_err(|_| format!("time {t} is before 1970"))
}

/// Reads a private key PEM; ring takes PKCS#8 only, so PKCS#1 RSA and SEC1 EC keys (what
/// kubeadm and openssl often write) are converted first.
fn load_key(pem: &str) -> Result<KeyPair, String> {
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())?;
        let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        return KeyPair::try_from(der.as_bytes()).map_err(|e| e.to_string());
    }
    if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
        use p256::pkcs8::EncodePrivateKey;
        let key = p256::SecretKey::from_sec1_pem(pem)
            .map_err(|e| format!("only P-256 SEC1 keys are supported: {e}"))?;
        let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        return KeyPair::try_from(der.as_bytes()).map_err(|e| e.to_string());
    }
    KeyPair::from_pem(pem).map_err(|e| format!("parsing the CA key: {e}"))
}

/// NotBefore and NotAfter as upstream's policy sets them.
pub fn validity(
    now: Timestamp,
    policy: &Policy,
    ca_not_after: Timestamp,
) -> Result<(Timestamp, Timestamp), String> {
    let sub = |d: Duration| now.checked_sub(d).map_err(|e| e.to_string());
    let add = |d: Duration| now.checked_add(d).map_err(|e| e.to_string());
    let not_before = sub(policy.backdate)?;
    let mut not_after = if policy.ttl < policy.short {
        // a short-lived certificate keeps its whole lifetime
        add(policy.ttl)?
    } else {
        add(policy.ttl.saturating_sub(policy.backdate))?
    };
    if not_after >= ca_not_after {
        not_after = ca_not_after;
    }
    if not_before >= ca_not_after {
        return Err(format!("the signer has expired: NotAfter={ca_not_after}"));
    }
    if now >= ca_not_after {
        return Err(format!(
            "refusing to sign a certificate that expired in the past: NotAfter={ca_not_after}"
        ));
    }
    Ok((not_before, not_after))
}

/// The subject, with the attributes Go's x509 re-encodes, in its order.
fn subject(name: &x509_parser::x509::X509Name) -> Result<DistinguishedName, String> {
    const ORDER: &[(&str, Option<DnType>)] = &[
        ("2.5.4.6", Some(DnType::CountryName)),
        ("2.5.4.8", Some(DnType::StateOrProvinceName)),
        ("2.5.4.7", Some(DnType::LocalityName)),
        ("2.5.4.9", None),
        ("2.5.4.17", None),
        ("2.5.4.10", Some(DnType::OrganizationName)),
        ("2.5.4.11", Some(DnType::OrganizationalUnitName)),
        ("2.5.4.3", Some(DnType::CommonName)),
        ("2.5.4.5", None),
    ];
    let mut dn = DistinguishedName::new();
    for (oid, ty) in ORDER {
        let values: Vec<String> = name
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == *oid)
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let ty = ty.clone().unwrap_or_else(|| {
            DnType::CustomDnType(oid.split('.').filter_map(|n| n.parse().ok()).collect())
        });
        match values.as_slice() {
            [] => {}
            [v] => dn.push(ty, v.as_str()),
            // rcgen keeps one value per attribute type; a lossy subject (fewer groups
            // than asked for) would be worse than no certificate
            _ => return Err(format!("the subject has several values for {oid}")),
        }
    }
    Ok(dn)
}

fn subject_alt_names(req: &CertRequest) -> Result<Vec<SanType>, String> {
    let ia5 = |s: &str| rcgen::string::Ia5String::try_from(s).map_err(|e| e.to_string());
    let mut out = vec![];
    for d in &req.dns_names {
        out.push(SanType::DnsName(ia5(d)?));
    }
    for e in &req.emails {
        out.push(SanType::Rfc822Name(ia5(e)?));
    }
    for ip in &req.ip_addresses {
        out.push(SanType::IpAddress(*ip));
    }
    for u in &req.uris {
        out.push(SanType::URI(ia5(u)?));
    }
    Ok(out)
}

/// Maps `spec.usages` to key usages and extended key usages (the latter deduplicated
/// and in Go's order); any unknown usage is an error.
pub fn key_usages(
    usages: &[String],
) -> Result<(Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>), String> {
    use ExtendedKeyUsagePurpose as E;
    use KeyUsagePurpose as K;
    let mut ku = vec![];
    let mut eku: Vec<(u8, E)> = vec![];
    let mut unknown = vec![];
    for u in usages {
        let k = match u.as_str() {
            "signing" | "digital signature" => Some(K::DigitalSignature),
            "content commitment" => Some(K::ContentCommitment),
            "key encipherment" => Some(K::KeyEncipherment),
            "key agreement" => Some(K::KeyAgreement),
            "data encipherment" => Some(K::DataEncipherment),
            "cert sign" => Some(K::KeyCertSign),
            "crl sign" => Some(K::CrlSign),
            "encipher only" => Some(K::EncipherOnly),
            "decipher only" => Some(K::DecipherOnly),
            _ => None,
        };
        if let Some(k) = k {
            if !ku.contains(&k) {
                ku.push(k);
            }
            continue;
        }
        let e = match u.as_str() {
            "any" => (0, E::Any),
            "server auth" => (1, E::ServerAuth),
            "client auth" => (2, E::ClientAuth),
            "code signing" => (3, E::CodeSigning),
            "email protection" | "s/mime" => (4, E::EmailProtection),
            "ipsec end system" => (5, E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5])),
            "ipsec tunnel" => (6, E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 6])),
            "ipsec user" => (7, E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 7])),
            "timestamping" => (8, E::TimeStamping),
            "ocsp signing" => (9, E::OcspSigning),
            "microsoft sgc" => (10, E::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3])),
            "netscape sgc" => (11, E::Other(vec![2, 16, 840, 1, 113730, 4, 1])),
            _ => {
                unknown.push(u.clone());
                continue;
            }
        };
        if !eku.iter().any(|(n, _)| *n == e.0) {
            eku.push(e);
        }
    }
    if !unknown.is_empty() {
        return Err(format!("unrecognized usage values: {unknown:?}"));
    }
    eku.sort_by_key(|(n, _)| *n);
    Ok((ku, eku.into_iter().map(|(_, e)| e).collect()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::certificates::request::{parse, tests::csr_pem};
    use rcgen::{BasicConstraints, CertificateParams, KeyPair};

    /// A self-signed CA (certificate and key PEM) valid until `not_after`.
    pub(crate) fn ca(not_after: (i32, u8, u8)) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, "signing-ca");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        (p.self_signed(&key).expect("ca").pem(), key.serialize_pem())
    }

    fn policy(ttl: Duration) -> Policy {
        Policy {
            ttl,
            usages: vec!["client auth".into()],
            backdate: Duration::from_secs(300),
            short: Duration::from_secs(8 * 3600),
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn validity_backdates_and_clamps() {
        let now = ts("2030-01-01T00:00:00Z");
        let far = ts("2040-01-01T00:00:00Z");
        let (nb, na) = validity(now, &policy(Duration::from_secs(24 * 3600)), far).expect("ok");
        assert_eq!(nb, ts("2029-12-31T23:55:00Z"));
        assert_eq!(na, ts("2030-01-01T23:55:00Z"));
        // short certificates keep their whole lifetime
        let (_, na) = validity(now, &policy(Duration::from_secs(3600)), far).expect("ok");
        assert_eq!(na, ts("2030-01-01T01:00:00Z"));
        // never past the CA
        let soon = ts("2030-01-01T00:30:00Z");
        let (_, na) = validity(now, &policy(Duration::from_secs(3600)), soon).expect("ok");
        assert_eq!(na, soon);
        let past = ts("2029-12-31T23:58:00Z");
        assert!(
            validity(now, &policy(Duration::from_secs(3600)), past)
                .is_err_and(|e| e.starts_with("refusing to sign"))
        );
        let long_past = ts("2029-01-01T00:00:00Z");
        assert!(
            validity(now, &policy(Duration::from_secs(3600)), long_past)
                .is_err_and(|e| e.starts_with("the signer has expired"))
        );
    }

    #[test]
    fn usages_map_to_extensions() {
        let u = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (ku, eku) = key_usages(&u(&[
            "client auth",
            "digital signature",
            "server auth",
            "key encipherment",
            "signing",
        ]))
        .expect("ok");
        assert_eq!(
            ku,
            [
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment
            ]
        );
        assert_eq!(
            eku,
            [
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth
            ]
        );
        assert_eq!(
            key_usages(&u(&["client auth", "flying"])),
            Err(r#"unrecognized usage values: ["flying"]"#.into())
        );
    }

    #[test]
    fn signs_a_request() {
        let (ca_pem, ca_key) = ca((2040, 1, 1));
        let authority = Authority::from_pem(&ca_pem, &ca_key).expect("ca");
        let req = parse(csr_pem("alice", &["devs"], vec![]).as_bytes()).expect("csr");
        let now = Timestamp::now();
        let pem = authority
            .sign(&req, &policy(Duration::from_secs(24 * 3600)), now)
            .expect("signed");
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        let cert = block.parse_x509().expect("cert");
        assert_eq!(cert.subject().to_string(), "O=devs, CN=alice");
        assert_eq!(cert.issuer().to_string(), "CN=signing-ca");
        let nb = cert.validity().not_before.timestamp();
        assert_eq!(nb, now.as_second() - 300);
        let (_, ca_block) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).expect("pem");
        let ca_cert = ca_block.parse_x509().expect("ca");
        assert!(cert.verify_signature(Some(ca_cert.public_key())).is_ok());
        let bc = cert.basic_constraints().expect("ext").expect("bc");
        assert!(!bc.value.ca);
        let eku = cert.extended_key_usage().expect("ext").expect("eku");
        assert!(eku.value.client_auth && !eku.value.server_auth);
    }

    #[test]
    fn reads_sec1_ec_keys() {
        use p256::pkcs8::DecodePrivateKey;
        let key = KeyPair::generate().expect("key");
        let sec1 = p256::SecretKey::from_pkcs8_pem(&key.serialize_pem())
            .expect("pkcs8")
            .to_sec1_pem(p256::pkcs8::LineEnding::LF)
            .expect("sec1");
        let loaded = load_key(&sec1).expect("loaded");
        assert_eq!(
            rcgen::PublicKeyData::der_bytes(&loaded),
            rcgen::PublicKeyData::der_bytes(&key)
        );
    }
}
