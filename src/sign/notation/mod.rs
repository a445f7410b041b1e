//! Notation JWS signature envelopes (`application/jose+json`): the signature, the `x5c`
//! chain against a trust store's certificates, the `io.cncf.notary.*` protected headers,
//! expiry and the signed `targetArtifact`; and ([`policy`]) the trust-policy document that
//! says which stores and identities are trusted and which failures only get logged.
//!
//! The chain is checked over each certificate's TBSCertificate as signed, each issuer held
//! to basicConstraints CA (with its path length) and keyCertSign, the leaf to
//! digitalSignature, no CA, and codeSigning when it limits its extended key usage. Not done:
//! COSE envelopes, RFC 3161 timestamps (a certificate that is not valid now fails the
//! authentic-timestamp check; there is no timestamp to rescue it), and revocation, which
//! needs the network (a chain that names OCSP or CRL endpoints fails the revocation
//! check). The envelope, its protected header and its payload are read by the strict JSON
//! reader (a key given twice is refused).

pub mod policy;

use aws_lc_rs::signature;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::path::Path;
use std::time::SystemTime;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
};
use x509_cert::name::Name;
use x509_cert::Certificate;

/// Why a Notation signature was refused, or what was only logged about it: each kind is
/// one of Notation's validations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("integrity: {0}")]
    Integrity(String),
    #[error("authenticity: {0}")]
    Authenticity(String),
    #[error("expiry: {0}")]
    Expired(String),
    #[error("authentic timestamp: {0}")]
    AuthenticTimestamp(String),
    #[error("revocation: {0}")]
    Revocation(String),
    #[error("the signature is for {found}, not {expected}")]
    OtherTarget { found: String, expected: String },
}

impl Refusal {
    /// The validation that failed, in words (`authenticity`, `expiry`…).
    pub fn validation(&self) -> &'static str {
        match self {
            Refusal::Integrity(_) | Refusal::OtherTarget { .. } => "integrity",
            Refusal::Authenticity(_) => "authenticity",
            Refusal::Expired(_) => "expiry",
            Refusal::AuthenticTimestamp(_) => "the authentic timestamp",
            Refusal::Revocation(_) => "revocation",
        }
    }
}

/// What the signature names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetArtifact {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// The trust a signature is checked against: the certificates of the `ca` and
/// `signingAuthority` stores a statement names (a `notary.x509` signature must chain to the
/// first, a `notary.x509.signingAuthority` one to the second), and whether it names a `tsa`
/// store (and when a timestamp would then be required).
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    pub ca: Vec<Vec<u8>>,
    pub signing_authority: Vec<Vec<u8>>,
    pub timestamps: Option<policy::VerifyTimestamp>,
}

/// An envelope whose integrity holds, and what the later validations found: each `None`
/// when it held, else why not.
#[derive(Debug, Clone)]
pub struct Examined {
    pub target: TargetArtifact,
    pub signing_scheme: String,
    /// The signing certificate's subject.
    pub subject: Name,
    pub authenticity: Option<String>,
    pub expiry: Option<String>,
    pub authentic_timestamp: Option<String>,
    pub revocation: Option<String>,
}

impl Examined {
    /// The verdict under `enforcement`, in Notation's order (authenticity, expiry, authentic
    /// timestamp, revocation): the first enforced failure refuses the signature; `Ok` holds
    /// the failures that were only logged.
    pub fn decide(&self, enforcement: &policy::Enforcement) -> Result<Vec<Refusal>, Refusal> {
        use policy::Action;
        let checks = [
            (
                enforcement.authenticity,
                &self.authenticity,
                Refusal::Authenticity as fn(String) -> Refusal,
            ),
            (enforcement.expiry, &self.expiry, Refusal::Expired),
            (
                enforcement.authentic_timestamp,
                &self.authentic_timestamp,
                Refusal::AuthenticTimestamp,
            ),
            (
                enforcement.revocation,
                &self.revocation,
                Refusal::Revocation,
            ),
        ];
        let mut logged = Vec::new();
        for (action, failure, kind) in checks {
            match (action, failure) {
                (_, None) | (Action::Skip, _) => {}
                (Action::Enforce, Some(why)) => return Err(kind(why.clone())),
                (Action::Log, Some(why)) => logged.push(kind(why.clone())),
            }
        }
        Ok(logged)
    }
}

/// A trust store read from `x509/{ca,signingAuthority,tsa}/NAME/`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {detail}")]
    Bad { path: String, detail: String },
}

/// Reads every certificate (PEM or DER) of one named trust store directory. Symlinks and
/// subdirectories are refused, as Notation refuses them.
pub fn read_store(dir: &Path) -> Result<Vec<Vec<u8>>, StoreError> {
    let bad = |p: &Path, d: String| StoreError::Bad {
        path: p.display().to_string(),
        detail: d,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| bad(dir, e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad(dir, "is not a directory (symlinks are refused)".into()));
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e.to_string()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(dir, e.to_string()))?;
    names.sort();
    let mut certs = Vec::new();
    for path in names {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| bad(&path, e.to_string()))?;
        if !meta.file_type().is_file() {
            return Err(bad(
                &path,
                "is not a regular file (symlinks and directories are refused in a trust store)"
                    .into(),
            ));
        }
        // Read as every approval input is: a regular file once opened, bounded in size.
        let bytes = crate::fsio::read_input(&path).map_err(|e| bad(&path, e.to_string()))?;
        let ders = if bytes.starts_with(b"-----") {
            pem::parse_many(&bytes)
                .map_err(|e| bad(&path, e.to_string()))?
                .into_iter()
                .filter(|b| b.tag() == "CERTIFICATE")
                .map(|b| b.into_contents())
                .collect()
        } else {
            vec![bytes]
        };
        if ders.is_empty() {
            return Err(bad(&path, "holds no certificate".into()));
        }
        for der in ders {
            Certificate::from_der(&der)
                .map_err(|e| bad(&path, format!("not a certificate: {e}")))?;
            certs.push(der);
        }
    }
    if certs.is_empty() {
        return Err(bad(dir, "the trust store holds no certificate".into()));
    }
    Ok(certs)
}

/// The certificates of the store `name` of a trust store directory `root`
/// (`root/x509/KIND/NAME`); no component below `root` may be a symlink.
pub fn read_named_store(root: &Path, name: &policy::StoreName) -> Result<Vec<Vec<u8>>, StoreError> {
    let x509 = root.join("x509");
    for dir in [x509.clone(), x509.join(&name.kind)] {
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| StoreError::Bad {
            path: dir.display().to_string(),
            detail: format!(
                "{e} (the trust store {}:{} is needed)",
                name.kind, name.name
            ),
        })?;
        if !meta.is_dir() {
            return Err(StoreError::Bad {
                path: dir.display().to_string(),
                detail: "is not a directory (symlinks are refused)".into(),
            });
        }
    }
    read_store(&x509.join(&name.kind).join(&name.name))
}

fn b64url(field: &str, text: &str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| Refusal::Integrity(format!("{field} is not base64url: {e}")))
}

fn parse_time(field: &str, v: &serde_json::Value) -> Result<SystemTime, Refusal> {
    let text = v
        .as_str()
        .ok_or_else(|| Refusal::Integrity(format!("{field} is not a string")))?;
    let ts: jiff::Timestamp = text.parse().map_err(|e| {
        Refusal::Integrity(format!("{field} {text:?} is not an RFC 3339 time: {e}"))
    })?;
    Ok(SystemTime::from(ts))
}

const KNOWN_CRIT: &[&str] = &[
    "io.cncf.notary.signingScheme",
    "io.cncf.notary.expiry",
    "io.cncf.notary.authenticSigningTime",
    "io.cncf.notary.verificationPlugin",
    "io.cncf.notary.verificationPluginMinVersion",
];

/// Checks a JWS envelope at time `now`: its integrity (an `Err` is always an integrity
/// failure), then the chain against `anchors`, expiry, the certificates' validity and
/// whether revocation could be checked, each recorded in the [`Examined`] for a level to
/// decide on. Trusted identities are the caller's to check against [`Examined::subject`].
pub fn verify_jws(
    envelope: &[u8],
    anchors: &Anchors,
    now: SystemTime,
) -> Result<Examined, Refusal> {
    let doc: serde_json::Value = crate::json::from_slice(envelope)
        .map_err(|e| Refusal::Integrity(format!("the envelope is not JSON: {e}")))?;
    let field = |name: &str| {
        doc.get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Refusal::Integrity(format!("the envelope has no {name}")))
    };
    let protected_b64 = field("protected")?;
    let payload_b64 = field("payload")?;
    let signature = b64url("signature", field("signature")?)?;
    let protected: serde_json::Value =
        crate::json::from_slice(&b64url("protected", protected_b64)?)
            .map_err(|e| Refusal::Integrity(format!("the protected header is not JSON: {e}")))?;
    let x5c: Vec<Vec<u8>> = doc
        .pointer("/header/x5c")
        .and_then(|v| v.as_array())
        .ok_or_else(|| Refusal::Integrity("the envelope has no x5c chain".into()))?
        .iter()
        .map(|c| {
            c.as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| Refusal::Integrity("an x5c entry is not base64".into()))
        })
        .collect::<Result<_, _>>()?;
    if x5c.is_empty() {
        return Err(Refusal::Integrity("the x5c chain is empty".into()));
    }
    let certs: Vec<Certificate> = x5c
        .iter()
        .map(|d| {
            Certificate::from_der(d)
                .map_err(|e| Refusal::Integrity(format!("an x5c certificate is invalid: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let alg = protected.get("alg").and_then(|v| v.as_str()).unwrap_or("");
    let leaf_key = certs[0]
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let params: &dyn signature::VerificationAlgorithm = match alg {
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
        other => {
            return Err(Refusal::Integrity(format!(
                "unsupported JWS algorithm {other:?}"
            )))
        }
    };
    let signing_input = format!("{protected_b64}.{payload_b64}");
    signature::UnparsedPublicKey::new(params, leaf_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| {
            Refusal::Integrity(
                "the signature does not verify with the x5c signing certificate".into(),
            )
        })?;

    // Protected headers.
    if protected.get("cty").and_then(|v| v.as_str())
        != Some("application/vnd.cncf.notary.payload.v1+json")
    {
        return Err(Refusal::Integrity(
            "cty is not application/vnd.cncf.notary.payload.v1+json".into(),
        ));
    }
    let crit: Vec<&str> = protected
        .get("crit")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for c in &crit {
        if !KNOWN_CRIT.contains(c) {
            return Err(Refusal::Integrity(format!("unknown critical header {c:?}")));
        }
        if protected.get(*c).is_none() {
            return Err(Refusal::Integrity(format!(
                "critical header {c:?} is missing"
            )));
        }
    }
    let scheme = protected
        .get("io.cncf.notary.signingScheme")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if !crit.contains(&"io.cncf.notary.signingScheme") {
        return Err(Refusal::Integrity(
            "io.cncf.notary.signingScheme is not marked critical".into(),
        ));
    }
    let (cert_time, trusted_certs, store_kind) = match scheme.as_str() {
        "notary.x509" => {
            parse_time(
                "io.cncf.notary.signingTime",
                protected
                    .get("io.cncf.notary.signingTime")
                    .unwrap_or(&serde_json::Value::Null),
            )?;
            (now, &anchors.ca, "ca")
        }
        "notary.x509.signingAuthority" => {
            if !crit.contains(&"io.cncf.notary.authenticSigningTime") {
                return Err(Refusal::Integrity(
                    "io.cncf.notary.authenticSigningTime is not critical".into(),
                ));
            }
            let at = parse_time(
                "io.cncf.notary.authenticSigningTime",
                &protected["io.cncf.notary.authenticSigningTime"],
            )?;
            (at, &anchors.signing_authority, "signingAuthority")
        }
        other => {
            return Err(Refusal::Integrity(format!(
                "unknown signing scheme {other:?}"
            )))
        }
    };
    let mut expiry = None;
    if let Some(at) = protected.get("io.cncf.notary.expiry") {
        if !crit.contains(&"io.cncf.notary.expiry") {
            return Err(Refusal::Integrity(
                "io.cncf.notary.expiry is not marked critical".into(),
            ));
        }
        if parse_time("io.cncf.notary.expiry", at)? <= now {
            expiry = Some(format!(
                "the signature expired at {}",
                at.as_str().unwrap_or("")
            ));
        }
    }
    let payload: serde_json::Value = crate::json::from_slice(&b64url("payload", payload_b64)?)
        .map_err(|e| Refusal::Integrity(format!("the payload is not JSON: {e}")))?;
    let t = payload
        .get("targetArtifact")
        .ok_or_else(|| Refusal::Integrity("the payload has no targetArtifact".into()))?;
    let text = |name: &str| {
        t.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| Refusal::Integrity(format!("targetArtifact has no {name}")))
    };
    let target = TargetArtifact {
        media_type: text("mediaType")?,
        digest: text("digest")?,
        size: t
            .get("size")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Refusal::Integrity("targetArtifact has no size".into()))?,
    };

    let authenticity = match trusted_certs.is_empty() {
        true => Some(format!(
            "a {scheme} signature must chain to a {store_kind} trust store, and the trust policy names none"
        )),
        false => chain(&x5c, &certs, trusted_certs).err(),
    };
    let invalid = certs.iter().enumerate().find_map(|(i, cert)| {
        let v = &cert.tbs_certificate.validity;
        (cert_time < v.not_before.to_system_time() || cert_time > v.not_after.to_system_time())
            .then(|| {
                format!(
                    "x5c certificate {} ({}) is valid only {} to {}",
                    i + 1,
                    cert.tbs_certificate.subject,
                    v.not_before,
                    v.not_after
                )
            })
    });
    let authentic_timestamp = match (scheme.as_str(), anchors.timestamps, invalid) {
        ("notary.x509", Some(policy::VerifyTimestamp::Always), _) => Some(
            "the trust policy names a tsa store, so Notation requires an RFC 3161 timestamp, and vouch does not verify timestamps".to_string(),
        ),
        ("notary.x509", Some(_), Some(invalid)) => Some(format!(
            "{invalid}, and vouch does not verify the RFC 3161 timestamp that could show it was signed while it was valid"
        )),
        ("notary.x509", None, Some(invalid)) => {
            Some(format!("{invalid}, and there is no trusted timestamp"))
        }
        (_, _, Some(invalid)) => Some(format!("{invalid}, at the authentic signing time")),
        (_, _, None) => None,
    };
    let revocation = certs.iter().find_map(|cert| {
        let ocsp = extension::<AuthorityInfoAccessSyntax>(cert, AUTHORITY_INFO_ACCESS)
            .map(|aia| aia.is_some_and(|aia| aia.0.iter().any(|d| d.access_method == OCSP)))
            .unwrap_or(true);
        let crl = cert
            .tbs_certificate
            .extensions
            .as_ref()
            .is_some_and(|e| e.iter().any(|e| e.extn_id == CRL_DISTRIBUTION_POINTS));
        (ocsp || crl).then(|| {
            format!(
                "{} names OCSP or CRL endpoints, and vouch checks no revocation (it does not go online)",
                cert.tbs_certificate.subject
            )
        })
    });
    Ok(Examined {
        target,
        signing_scheme: scheme,
        subject: certs[0].tbs_certificate.subject.clone(),
        authenticity,
        expiry,
        authentic_timestamp,
        revocation,
    })
}

/// The x5c chain: each certificate is signed by the next (over its TBSCertificate as
/// signed), the leaf may sign code and every issuer may issue, and it ends at a certificate
/// of `anchors` (the last one itself, or its issuer, which must then be allowed to issue).
fn chain(x5c: &[Vec<u8>], certs: &[Certificate], anchors: &[Vec<u8>]) -> Result<(), String> {
    let text = |r: Refusal| match r {
        Refusal::Authenticity(m) => m,
        other => other.to_string(),
    };
    check_leaf(&certs[0]).map_err(text)?;
    for (i, issuer) in certs.iter().enumerate().skip(1) {
        check_issuer(issuer, i - 1).map_err(text)?;
    }
    for (i, pair) in x5c.windows(2).enumerate() {
        if !cert_signed_by(&pair[0], &pair[1]) {
            return Err(format!(
                "x5c certificate {} is not signed by certificate {}",
                i + 1,
                i + 2
            ));
        }
    }
    let last = certs.last().expect("non-empty");
    let last_der = x5c.last().expect("non-empty");
    let trusted = anchors.iter().any(|a| {
        a == last_der
            || Certificate::from_der(a)
                .map(|anchor| {
                    anchor.tbs_certificate.subject == last.tbs_certificate.issuer
                        && cert_signed_by(last_der, a)
                        && check_issuer(&anchor, certs.len() - 1).is_ok()
                })
                .unwrap_or(false)
    });
    if !trusted {
        return Err("the signing chain does not lead to a certificate in the trust store".into());
    }
    Ok(())
}

/// Whether the examined signature names exactly `expected` (digest, size and media type).
pub fn check_target(v: &Examined, expected: &TargetArtifact) -> Result<(), Refusal> {
    if &v.target != expected {
        return Err(Refusal::OtherTarget {
            found: format!(
                "{} ({} bytes, {})",
                v.target.digest, v.target.size, v.target.media_type
            ),
            expected: format!(
                "{} ({} bytes, {})",
                expected.digest, expected.size, expected.media_type
            ),
        });
    }
    Ok(())
}

/// The signing certificate: no CA, key usage with digitalSignature, and if it limits its
/// extended key usage, codeSigning among them (Notation's rules for a signing certificate).
fn check_leaf(leaf: &Certificate) -> Result<(), Refusal> {
    let subject = leaf.tbs_certificate.subject.to_string();
    let refuse =
        |why: &str| Refusal::Authenticity(format!("the signing certificate {subject} {why}"));
    if extension::<BasicConstraints>(leaf, BASIC_CONSTRAINTS)
        .map_err(|e| refuse(&e))?
        .is_some_and(|bc| bc.ca)
    {
        return Err(refuse("is a CA certificate"));
    }
    match extension::<KeyUsage>(leaf, KEY_USAGE).map_err(|e| refuse(&e))? {
        Some(usage) if usage.0.contains(KeyUsages::DigitalSignature) => {}
        _ => return Err(refuse("has no key usage digitalSignature")),
    }
    if let Some(eku) = extension::<ExtendedKeyUsage>(leaf, EXT_KEY_USAGE).map_err(|e| refuse(&e))? {
        if !eku.0.contains(&CODE_SIGNING) {
            return Err(refuse("has extended key usages without codeSigning"));
        }
    }
    Ok(())
}

/// A certificate that issued another: CA, keyCertSign, and a path length limit that allows
/// the `below` CA certificates beneath it.
fn check_issuer(issuer: &Certificate, below: usize) -> Result<(), Refusal> {
    let subject = issuer.tbs_certificate.subject.to_string();
    let refuse =
        |why: &str| Refusal::Authenticity(format!("the issuing certificate {subject} {why}"));
    match extension::<BasicConstraints>(issuer, BASIC_CONSTRAINTS).map_err(|e| refuse(&e))? {
        Some(bc) if bc.ca => {
            if bc
                .path_len_constraint
                .is_some_and(|limit| below > usize::from(limit))
            {
                return Err(refuse("allows fewer CA certificates beneath it"));
            }
        }
        _ => return Err(refuse("is not a CA (basicConstraints)")),
    }
    match extension::<KeyUsage>(issuer, KEY_USAGE).map_err(|e| refuse(&e))? {
        Some(usage) if usage.0.contains(KeyUsages::KeyCertSign) => Ok(()),
        _ => Err(refuse("has no key usage keyCertSign")),
    }
}

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const AUTHORITY_INFO_ACCESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
const CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
const OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");

/// A certificate's extension `oid`, decoded; a malformed one is an error, in words.
fn extension<T: for<'a> Decode<'a>>(
    cert: &Certificate,
    oid: ObjectIdentifier,
) -> Result<Option<T>, String> {
    let Some(extensions) = &cert.tbs_certificate.extensions else {
        return Ok(None);
    };
    match extensions.iter().find(|e| e.extn_id == oid) {
        None => Ok(None),
        Some(e) => T::from_der(e.extn_value.as_bytes())
            .map(Some)
            .map_err(|err| format!("has a malformed extension {oid}: {err}")),
    }
}

/// Whether the certificate `cert_der` was signed by the key of `issuer_der`, over its
/// TBSCertificate exactly as signed.
fn cert_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    let (Ok(cert), Ok(issuer)) = (
        Certificate::from_der(cert_der),
        Certificate::from_der(issuer_der),
    ) else {
        return false;
    };
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    let Ok(tbs) = super::x509::raw_tbs(cert_der) else {
        return false;
    };
    let key = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let alg: &dyn signature::VerificationAlgorithm =
        match cert.signature_algorithm.oid.to_string().as_str() {
            "1.2.840.113549.1.1.11" => &signature::RSA_PKCS1_2048_8192_SHA256,
            "1.2.840.113549.1.1.12" => &signature::RSA_PKCS1_2048_8192_SHA384,
            "1.2.840.113549.1.1.13" => &signature::RSA_PKCS1_2048_8192_SHA512,
            "1.2.840.10045.4.3.2" => &signature::ECDSA_P256_SHA256_ASN1,
            "1.2.840.10045.4.3.3" => &signature::ECDSA_P384_SHA384_ASN1,
            _ => return false,
        };
    let Some(sig) = cert.signature.as_bytes() else {
        return false;
    };
    signature::UnparsedPublicKey::new(alg, key)
        .verify(&tbs, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints as Constraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
        Issuer, KeyPair, KeyUsagePurpose,
    };

    /// A CA and a leaf it signed, each editable before signing: (ca, leaf), DER.
    fn pair(
        edit_ca: impl Fn(&mut CertificateParams),
        edit_leaf: impl Fn(&mut CertificateParams),
    ) -> (Vec<u8>, Vec<u8>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "ca");
        ca.is_ca = IsCa::Ca(Constraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        edit_ca(&mut ca);
        let ca_der = ca.self_signed(&ca_key).unwrap().der().to_vec();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "leaf");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        edit_leaf(&mut leaf);
        let leaf_der = leaf
            .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
            .unwrap()
            .der()
            .to_vec();
        (ca_der, leaf_der)
    }

    fn cert(der: &[u8]) -> Certificate {
        Certificate::from_der(der).unwrap()
    }

    #[test]
    fn a_code_signing_leaf_under_a_ca_passes_the_chain_rules() {
        let (ca, leaf) = pair(|_| {}, |_| {});
        assert!(cert_signed_by(&leaf, &ca));
        assert!(!cert_signed_by(&ca, &leaf));
        check_leaf(&cert(&leaf)).unwrap();
        check_issuer(&cert(&ca), 0).unwrap();
    }

    #[test]
    fn each_broken_chain_rule_is_refused() {
        let refused = |result: Result<(), Refusal>, says: &str| match result {
            Err(Refusal::Authenticity(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{says}: {other:?}"),
        };
        let (ca, _) = pair(|ca| ca.is_ca = IsCa::ExplicitNoCa, |_| {});
        refused(check_issuer(&cert(&ca), 0), "is not a CA");
        let (ca, _) = pair(
            |ca| ca.key_usages = vec![KeyUsagePurpose::DigitalSignature],
            |_| {},
        );
        refused(check_issuer(&cert(&ca), 0), "keyCertSign");
        let (ca, _) = pair(
            |ca| ca.is_ca = IsCa::Ca(Constraints::Constrained(0)),
            |_| {},
        );
        refused(check_issuer(&cert(&ca), 1), "fewer CA certificates");
        let (_, leaf) = pair(
            |_| {},
            |leaf| leaf.is_ca = IsCa::Ca(Constraints::Unconstrained),
        );
        refused(check_leaf(&cert(&leaf)), "is a CA");
        let (_, leaf) = pair(|_| {}, |leaf| leaf.key_usages = vec![]);
        refused(check_leaf(&cert(&leaf)), "digitalSignature");
        let (_, leaf) = pair(
            |_| {},
            |leaf| leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
        );
        refused(check_leaf(&cert(&leaf)), "without codeSigning");
    }
}
