//! Notation JWS signature envelopes (`application/jose+json`): the signature, the `x5c`
//! chain against a trust store's certificates, the `io.cncf.notary.*` protected headers,
//! expiry and the signed `targetArtifact`.
//!
//! The chain is checked over each certificate's TBSCertificate as signed, each issuer held
//! to basicConstraints CA (with its path length) and keyCertSign, the leaf to
//! digitalSignature, no CA, and codeSigning when it limits its extended key usage. Not wired
//! to any command yet. Not done either: COSE envelopes, RFC 3161 timestamps (a signature
//! whose certificate has expired is refused, there is no timestamp to rescue it),
//! trust-policy documents. The envelope, its protected header and its payload are read by
//! the strict JSON reader (a key given twice is refused).

use aws_lc_rs::signature;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::path::Path;
use std::time::SystemTime;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// Why a Notation signature was refused.
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
    #[error("the signature is for {found}, not {expected}")]
    OtherTarget { found: String, expected: String },
}

/// What the signature names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetArtifact {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// A verified signature.
#[derive(Debug, Clone)]
pub struct Verified {
    pub target: TargetArtifact,
    pub signing_scheme: String,
    /// The signing certificate's subject.
    pub subject: String,
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
        let bytes = std::fs::read(&path).map_err(|e| bad(&path, e.to_string()))?;
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

/// Checks a JWS envelope. `anchors` are the trust store's certificates; `now` is the
/// verification time; `permissive` logs (here: ignores) expiry and certificate expiry the way
/// Notation's `permissive` level does, while integrity and authenticity always hold.
pub fn verify_jws(
    envelope: &[u8],
    anchors: &[Vec<u8>],
    now: SystemTime,
    permissive: bool,
) -> Result<Verified, Refusal> {
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
    let cert_time = match scheme.as_str() {
        "notary.x509" => {
            parse_time(
                "io.cncf.notary.signingTime",
                protected
                    .get("io.cncf.notary.signingTime")
                    .unwrap_or(&serde_json::Value::Null),
            )?;
            now
        }
        "notary.x509.signingAuthority" => {
            if !crit.contains(&"io.cncf.notary.authenticSigningTime") {
                return Err(Refusal::Integrity(
                    "io.cncf.notary.authenticSigningTime is not critical".into(),
                ));
            }
            parse_time(
                "io.cncf.notary.authenticSigningTime",
                &protected["io.cncf.notary.authenticSigningTime"],
            )?
        }
        other => {
            return Err(Refusal::Integrity(format!(
                "unknown signing scheme {other:?}"
            )))
        }
    };
    if let Some(expiry) = protected.get("io.cncf.notary.expiry") {
        if !crit.contains(&"io.cncf.notary.expiry") {
            return Err(Refusal::Integrity(
                "io.cncf.notary.expiry is not marked critical".into(),
            ));
        }
        let at = parse_time("io.cncf.notary.expiry", expiry)?;
        if at <= now && !permissive {
            return Err(Refusal::Expired(format!(
                "the signature expired at {}",
                expiry.as_str().unwrap_or("")
            )));
        }
    }

    // The chain: each certificate is signed by the next (over its TBSCertificate as
    // signed), the leaf may sign code and every issuer may issue, and the last one is in
    // the store.
    check_leaf(&certs[0])?;
    for (i, issuer) in certs.iter().enumerate().skip(1) {
        check_issuer(issuer, i - 1)?;
    }
    for (i, pair) in x5c.windows(2).enumerate() {
        if !cert_signed_by(&pair[0], &pair[1]) {
            return Err(Refusal::Authenticity(format!(
                "x5c certificate {} is not signed by certificate {}",
                i + 1,
                i + 2
            )));
        }
    }
    let last = certs.last().expect("non-empty");
    let last_der = x5c.last().expect("non-empty");
    // The store's certificate ends the chain: the last x5c certificate itself, or its
    // issuer, which must then be allowed to issue too.
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
        return Err(Refusal::Authenticity(
            "the signing chain does not lead to a certificate in the trust store".into(),
        ));
    }
    for (i, cert) in certs.iter().enumerate() {
        let v = &cert.tbs_certificate.validity;
        if (cert_time < v.not_before.to_system_time() || cert_time > v.not_after.to_system_time())
            && !permissive
        {
            return Err(Refusal::AuthenticTimestamp(format!(
                "x5c certificate {} ({}) is valid only {} to {}, and there is no trusted timestamp",
                i + 1,
                cert.tbs_certificate.subject,
                v.not_before,
                v.not_after
            )));
        }
    }

    let payload: serde_json::Value = crate::json::from_slice(&b64url("payload", payload_b64)?)
        .map_err(|e| Refusal::Integrity(format!("the payload is not JSON: {e}")))?;
    let t = payload
        .get("targetArtifact")
        .ok_or_else(|| Refusal::Integrity("the payload has no targetArtifact".into()))?;
    let target = TargetArtifact {
        media_type: t
            .get("mediaType")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        digest: t
            .get("digest")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        size: t
            .get("size")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Refusal::Integrity("targetArtifact has no size".into()))?,
    };
    Ok(Verified {
        target,
        signing_scheme: scheme,
        subject: certs[0].tbs_certificate.subject.to_string(),
    })
}

/// Whether the verified signature names exactly `expected` (digest, size and media type).
pub fn check_target(v: &Verified, expected: &TargetArtifact) -> Result<(), Refusal> {
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
