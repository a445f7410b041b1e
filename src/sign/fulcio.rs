//! cosign's legacy signatures by a certificate (`cosign verify --certificate-identity …
//! --certificate-oidc-issuer …`): the signer's certificate in the layer annotation
//! `dev.sigstore.cosign/certificate`, its intermediates in `dev.sigstore.cosign/chain`.
//!
//! The certificate must chain to the trusted certificates: a trusted root's Fulcio CAs
//! (keyless), judged at the Rekor entry's integrated time, which a signed entry timestamp
//! must vouch for; or the certificates of a private PKI (`--certificate-chain`), judged
//! now, without a log (cosign's `--insecure-ignore-tlog`). The signer is the certificate's
//! subject alternative names (e-mail, URI, DNS) and OIDC issuer (Fulcio's extension).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sigstore_trust_root::TrustedRoot;
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use super::cosign::CosignKey;
use super::keyless::{IdentityRule, IssuerRule};
use super::rekor::RekorLogs;
use super::sct::{self, CtLogs};
use super::x509::{pem_certificates, verify_chain_at, JudgedAt};

/// The layer annotation holding the signer's certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation holding the intermediates (PEM), as the signer sent them.
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// Fulcio's OIDC issuer extension, v2: a DER UTF8String.
const ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's OIDC issuer extension, v1 (deprecated): the raw string.
const ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");

/// A Fulcio CA of a trusted root: its chain (DER) and the seconds it issued in.
#[derive(Clone, Debug)]
pub struct FulcioCa {
    certificates: Vec<Vec<u8>>,
    valid: Option<(i64, Option<i64>)>,
}

/// The certificates a signer's certificate must chain to.
#[derive(Clone, Debug)]
pub enum CertificateAnchors {
    /// A trusted root's Fulcio CAs, Rekor logs and CT logs: a signed entry timestamp and
    /// a signed certificate timestamp are required.
    Fulcio {
        cas: Vec<FulcioCa>,
        rekor: RekorLogs,
        ct: CtLogs,
    },
    /// A private PKI's certificates; a trusted one that is no root ends a chain only with
    /// `allow_partial`.
    Pki {
        certificates: Vec<Vec<u8>>,
        allow_partial: bool,
    },
}

impl CertificateAnchors {
    /// The Fulcio CAs and Rekor logs of a trusted root.
    pub fn fulcio(root: &TrustedRoot) -> CertificateAnchors {
        let cas = root
            .certificate_authorities
            .iter()
            .map(|ca| FulcioCa {
                certificates: ca
                    .cert_chain
                    .certificates
                    .iter()
                    .map(|c| c.raw_bytes.as_bytes().to_vec())
                    .collect(),
                valid: ca
                    .valid_for
                    .as_ref()
                    .map(|r| (r.start.as_second(), r.end.map(|e| e.as_second()))),
            })
            .collect();
        CertificateAnchors::Fulcio {
            cas,
            rekor: RekorLogs::of(root),
            ct: CtLogs::of(root),
        }
    }
}

/// Who must have signed: the identity (one of the certificate's subject alternative
/// names) and, when given, the OIDC issuer.
#[derive(Debug)]
pub struct SignerRules {
    pub identity: IdentityRule,
    pub issuer: Option<IssuerRule>,
}

/// The signer's certificate, read (not yet trusted).
#[derive(Debug)]
pub struct SignerCertificate {
    pub der: Vec<u8>,
    pub key: CosignKey,
    /// The subject alternative names: e-mail addresses, URIs and DNS names.
    pub names: Vec<String>,
    /// Fulcio's OIDC issuer extension (v2, else v1).
    pub issuer: Option<String>,
}

/// Why a certificate does not vouch for a signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateRefusal {
    #[error("malformed: its {what} is not readable: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("untrusted chain: {0}")]
    Untrusted(String),
    #[error("no certificate transparency: {0}")]
    NoTransparency(String),
    #[error("untrusted chain: the trusted root has no Fulcio CA that issued certificates at {0}")]
    NoCaAtTime(String),
    #[error("wrong identity: the certificate names {names}, none of which {rule}")]
    Identity { names: String, rule: String },
    #[error("wrong issuer: the certificate names the OIDC issuer {issuer}, which {rule}")]
    Issuer { issuer: String, rule: String },
    #[error("wrong issuer: the certificate names no OIDC issuer (Fulcio's extension 1.3.6.1.4.1.57264.1.8 or .1.1), and {0} is required")]
    NoIssuer(String),
}

/// Reads the signer's certificate (the first CERTIFICATE block of a PEM annotation).
pub fn read_signer(pem: &str) -> Result<SignerCertificate, CertificateRefusal> {
    let malformed = |detail: String| CertificateRefusal::Malformed {
        what: "certificate",
        detail,
    };
    let der = pem_certificates(pem.as_bytes())
        .map_err(|e| malformed(e.to_string()))?
        .swap_remove(0);
    read_signer_der(der)
}

/// Reads the signer's certificate from its DER.
pub fn read_signer_der(der: Vec<u8>) -> Result<SignerCertificate, CertificateRefusal> {
    let malformed = |detail: String| CertificateRefusal::Malformed {
        what: "certificate",
        detail,
    };
    let cert = Certificate::from_der(&der).map_err(|e| malformed(e.to_string()))?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| malformed(e.to_string()))?;
    let key = CosignKey::from_spki(&spki).map_err(|e| malformed(format!("its key: {e}")))?;
    let extension = |oid: ObjectIdentifier| {
        tbs.extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    };
    let mut names = Vec::new();
    if let Some(value) = extension(SUBJECT_ALT_NAME) {
        let san = SubjectAltName::from_der(value).map_err(|e| malformed(e.to_string()))?;
        for name in san.0 {
            match name {
                GeneralName::Rfc822Name(n) => names.push(n.to_string()),
                GeneralName::UniformResourceIdentifier(n) => names.push(n.to_string()),
                GeneralName::DnsName(n) => names.push(n.to_string()),
                _ => {}
            }
        }
    }
    let issuer = match (extension(ISSUER_V2), extension(ISSUER_V1)) {
        (Some(v2), _) => Some(
            Utf8StringRef::from_der(v2)
                .map_err(|e| malformed(format!("its OIDC issuer extension: {e}")))?
                .as_str()
                .to_string(),
        ),
        (None, Some(v1)) => Some(
            String::from_utf8(v1.to_vec())
                .map_err(|_| malformed("its OIDC issuer extension is not UTF-8".into()))?,
        ),
        (None, None) => None,
    };
    Ok(SignerCertificate {
        der,
        key,
        names,
        issuer,
    })
}

/// Checks that `signer` chains, through the `intermediates` the signature carries, to
/// `anchors` at `at` (seconds since the epoch; the log's time for Fulcio, now for a
/// private PKI, `what` naming it), and names the signer `rules` require.
pub fn check_signer(
    signer: &SignerCertificate,
    intermediates: &[Vec<u8>],
    anchors: &CertificateAnchors,
    at: i64,
    what: &str,
    rules: &SignerRules,
) -> Result<(), CertificateRefusal> {
    let (trusted, allow_partial) = match anchors {
        CertificateAnchors::Fulcio { cas, .. } => {
            let current: Vec<Vec<u8>> = cas
                .iter()
                .filter(|ca| {
                    ca.valid
                        .is_none_or(|(start, end)| at >= start && end.is_none_or(|end| at <= end))
                })
                .flat_map(|ca| ca.certificates.iter().cloned())
                .collect();
            if current.is_empty() {
                return Err(CertificateRefusal::NoCaAtTime(what.to_string()));
            }
            (current, false)
        }
        CertificateAnchors::Pki {
            certificates,
            allow_partial,
        } => (certificates.clone(), *allow_partial),
    };
    let mut chain = vec![signer.der.clone()];
    chain.extend(intermediates.iter().cloned());
    let time = JudgedAt {
        time: UNIX_EPOCH + Duration::from_secs(at.max(0) as u64),
        what: what.to_string(),
    };
    verify_chain_at(&chain, &trusted, allow_partial, &time)
        .map_err(|e| CertificateRefusal::Untrusted(e.to_string()))?;
    if let CertificateAnchors::Fulcio { ct, .. } = anchors {
        let issuers = issuer_keys(&signer.der, intermediates.iter().chain(&trusted));
        sct::verify_embedded(&signer.der, &issuers, ct)
            .map_err(CertificateRefusal::NoTransparency)?;
    }
    let matched = signer.names.iter().any(|name| match &rules.identity {
        IdentityRule::Exact(identity) => name == identity,
        IdentityRule::Pattern(pattern) => pattern.is_match(name),
    });
    if !matched {
        let rule = match &rules.identity {
            IdentityRule::Exact(identity) => format!("is {identity}"),
            IdentityRule::Pattern(pattern) => format!("matches {}", pattern.as_str()),
        };
        let names = match signer.names.as_slice() {
            [] => "no subject alternative name".to_string(),
            names => names.join(", "),
        };
        return Err(CertificateRefusal::Identity { names, rule });
    }
    let Some(rule) = &rules.issuer else {
        return Ok(());
    };
    let (held, wanted) = match rule {
        IssuerRule::Exact(issuer) => (
            signer.issuer.as_deref().map(|i| i == issuer),
            format!("is not {issuer}"),
        ),
        IssuerRule::Pattern(pattern) => (
            signer.issuer.as_deref().map(|i| pattern.is_match(i)),
            format!("does not match {}", pattern.as_str()),
        ),
    };
    match held {
        Some(true) => Ok(()),
        Some(false) => Err(CertificateRefusal::Issuer {
            issuer: signer.issuer.clone().unwrap_or_default(),
            rule: wanted,
        }),
        None => Err(CertificateRefusal::NoIssuer(match rule {
            IssuerRule::Exact(issuer) => issuer.clone(),
            IssuerRule::Pattern(pattern) => format!("an issuer matching {}", pattern.as_str()),
        })),
    }
}

/// The keys (SubjectPublicKeyInfo DER) of the `candidates` whose subject is the issuer
/// `certificate` names.
fn issuer_keys<'a>(
    certificate: &[u8],
    candidates: impl Iterator<Item = &'a Vec<u8>>,
) -> Vec<Vec<u8>> {
    let Ok(cert) = Certificate::from_der(certificate) else {
        return Vec::new();
    };
    candidates
        .filter_map(|der| Certificate::from_der(der).ok())
        .filter(|candidate| candidate.tbs_certificate.subject == cert.tbs_certificate.issuer)
        .filter_map(|candidate| {
            candidate
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .ok()
        })
        .collect()
}

/// Seconds since the epoch, for judging a private PKI's certificates now.
pub fn seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
