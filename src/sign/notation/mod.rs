//! Notation signature envelopes, JWS (`application/jose+json`, `jws`) and COSE_Sign1
//! (`application/cose`, `cose`): the signature under the algorithm Notation pairs with the
//! signing certificate's key, the `x5c` chain against a trust store's certificates, the
//! `io.cncf.notary.*` protected headers, expiry, the signed `targetArtifact`, RFC 3161
//! timestamp countersignatures (`timestamp`) where the trust policy names a `tsa` store;
//! and ([`policy`]) the trust-policy document that says which stores and identities are
//! trusted and which failures only get logged.
//!
//! The chain is checked over each certificate's TBSCertificate as signed, each issuer held
//! to basicConstraints CA (with its path length) and keyCertSign, the leaf to
//! digitalSignature, no CA, and codeSigning when it limits its extended key usage. Not done:
//! revocation, which needs the network (a chain that names OCSP or CRL endpoints fails the
//! revocation check).

mod cose;
mod jws;
pub mod policy;
mod timestamp;

use aws_lc_rs::signature;
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
    /// The certificates of the `tsa` stores, roots for RFC 3161 timestamp tokens.
    pub tsa: Vec<Vec<u8>>,
    pub timestamps: Option<policy::VerifyTimestamp>,
}

/// An envelope whose integrity holds, and what the later validations found: each `None`
/// when it held, else why not.
#[derive(Debug, Clone)]
pub struct Examined {
    pub target: TargetArtifact,
    pub signing_scheme: String,
    pub algorithm: Algorithm,
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

/// A Notation signature algorithm (the Notary Project signature specification's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl Algorithm {
    /// The algorithm of a JWS `alg` name.
    fn from_jws(name: &str) -> Option<Algorithm> {
        Some(match name {
            "PS256" => Algorithm::Ps256,
            "PS384" => Algorithm::Ps384,
            "PS512" => Algorithm::Ps512,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "ES512" => Algorithm::Es512,
            _ => return None,
        })
    }

    /// The JWS name, which reports use for both envelope formats.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
        }
    }

    /// The verifier; ECDSA signatures are the raw `r || s` both JWS and COSE use.
    fn verifier(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Algorithm::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            Algorithm::Es512 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }

    /// The one algorithm Notation allows for a certificate's key: RSA 2048, 3072 and 4096
    /// bits sign with PS256, PS384 and PS512, EC P-256, P-384 and P-521 with ES256, ES384
    /// and ES512; any other key is refused.
    fn for_key(cert: &Certificate) -> Result<Algorithm, String> {
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let key = spki.subject_public_key.raw_bytes();
        match spki.algorithm.oid {
            RSA_ENCRYPTION => match rsa_modulus_bits(key) {
                Some(2048) => Ok(Algorithm::Ps256),
                Some(3072) => Ok(Algorithm::Ps384),
                Some(4096) => Ok(Algorithm::Ps512),
                Some(bits) => Err(format!(
                    "its RSA key has {bits} bits; Notation signs only with 2048, 3072 or 4096"
                )),
                None => Err("its RSA key is malformed".into()),
            },
            EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(P256) => Ok(Algorithm::Es256),
                    Some(P384) => Ok(Algorithm::Es384),
                    Some(P521) => Ok(Algorithm::Es512),
                    _ => Err("its EC key is not on P-256, P-384 or P-521".into()),
                }
            }
            other => Err(format!("its key type {other} is not RSA or EC")),
        }
    }
}

/// The bit length of an RSAPublicKey's modulus.
fn rsa_modulus_bits(key: &[u8]) -> Option<usize> {
    use x509_cert::der::asn1::UintRef;
    use x509_cert::der::{Reader, SliceReader};
    let mut reader = SliceReader::new(key).ok()?;
    let modulus = reader
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            UintRef::decode(r)?;
            Ok(n.as_bytes().to_vec())
        })
        .ok()?;
    let first = *modulus.first()?;
    Some(modulus.len() * 8 - first.leading_zeros() as usize)
}

/// The protected headers Notation reads, from either envelope format.
#[derive(Debug, Default)]
struct Headers {
    content_type: Option<String>,
    /// The names `crit` lists (a COSE integer label as `label N`).
    crit: Vec<String>,
    /// Every protected header name present.
    present: Vec<String>,
    signing_scheme: Option<String>,
    signing_time: Option<SystemTime>,
    authentic_signing_time: Option<SystemTime>,
    /// The expiry, and as the envelope writes it.
    expiry: Option<(SystemTime, String)>,
}

/// An envelope taken apart: what is signed, the signature, and the headers.
struct Decoded {
    algorithm: Algorithm,
    /// The bytes the signature covers (the JWS signing input, the COSE Sig_structure).
    signed: Vec<u8>,
    signature: Vec<u8>,
    headers: Headers,
    payload: Vec<u8>,
    x5c: Vec<Vec<u8>>,
    /// The RFC 3161 TimeStampToken of the unprotected `io.cncf.notary.timestampSignature`.
    timestamp: Option<Vec<u8>>,
}

const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";

const KNOWN_CRIT: &[&str] = &[
    SIGNING_SCHEME,
    EXPIRY,
    AUTHENTIC_SIGNING_TIME,
    "io.cncf.notary.verificationPlugin",
    "io.cncf.notary.verificationPluginMinVersion",
];

/// Checks a JWS envelope (`application/jose+json`) at time `now`; as [`verify_cose`].
pub fn verify_jws(
    envelope: &[u8],
    anchors: &Anchors,
    now: SystemTime,
) -> Result<Examined, Refusal> {
    examine(jws::decode(envelope)?, anchors, now)
}

/// Checks a COSE_Sign1 envelope (`application/cose`) at time `now`: its integrity (an
/// `Err` is always an integrity failure), then the chain against `anchors`, expiry, the
/// certificates' validity (at an RFC 3161 timestamp's time where the policy asks for one)
/// and whether revocation could be checked, each recorded in the [`Examined`] for a level
/// to decide on. Trusted identities are the caller's to check against
/// [`Examined::subject`].
pub fn verify_cose(
    envelope: &[u8],
    anchors: &Anchors,
    now: SystemTime,
) -> Result<Examined, Refusal> {
    examine(cose::decode(envelope)?, anchors, now)
}

/// The checks both envelope formats share.
fn examine(d: Decoded, anchors: &Anchors, now: SystemTime) -> Result<Examined, Refusal> {
    if d.x5c.is_empty() {
        return Err(Refusal::Integrity("the x5c chain is empty".into()));
    }
    let certs: Vec<Certificate> = d
        .x5c
        .iter()
        .map(|der| {
            Certificate::from_der(der)
                .map_err(|e| Refusal::Integrity(format!("an x5c certificate is invalid: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let key_algorithm = Algorithm::for_key(&certs[0]).map_err(|why| {
        Refusal::Integrity(format!(
            "the signing certificate {} cannot sign a Notation signature: {why}",
            certs[0].tbs_certificate.subject
        ))
    })?;
    if key_algorithm != d.algorithm {
        return Err(Refusal::Integrity(format!(
            "the envelope says {}, but the signing certificate's key signs with {}",
            d.algorithm.name(),
            key_algorithm.name()
        )));
    }
    let leaf_key = certs[0]
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    signature::UnparsedPublicKey::new(d.algorithm.verifier(), leaf_key)
        .verify(&d.signed, &d.signature)
        .map_err(|_| {
            Refusal::Integrity(
                "the signature does not verify with the x5c signing certificate".into(),
            )
        })?;

    let h = &d.headers;
    if h.content_type.as_deref() != Some(PAYLOAD_TYPE) {
        return Err(Refusal::Integrity(format!(
            "the content type is not {PAYLOAD_TYPE}"
        )));
    }
    for c in &h.crit {
        if !KNOWN_CRIT.contains(&c.as_str()) {
            return Err(Refusal::Integrity(format!("unknown critical header {c:?}")));
        }
        if !h.present.contains(c) {
            return Err(Refusal::Integrity(format!(
                "critical header {c:?} is missing"
            )));
        }
    }
    let critical = |name: &str| h.crit.iter().any(|c| c == name);
    if !critical(SIGNING_SCHEME) {
        return Err(Refusal::Integrity(format!(
            "{SIGNING_SCHEME} is not marked critical"
        )));
    }
    let scheme = h.signing_scheme.clone().unwrap_or_default();
    let (authentic_time, trusted_certs, store_kind) = match scheme.as_str() {
        "notary.x509" => {
            if h.signing_time.is_none() {
                return Err(Refusal::Integrity(format!("there is no {SIGNING_TIME}")));
            }
            (None, &anchors.ca, "ca")
        }
        "notary.x509.signingAuthority" => {
            if !critical(AUTHENTIC_SIGNING_TIME) {
                return Err(Refusal::Integrity(format!(
                    "{AUTHENTIC_SIGNING_TIME} is not critical"
                )));
            }
            let at = h.authentic_signing_time.ok_or_else(|| {
                Refusal::Integrity(format!("there is no {AUTHENTIC_SIGNING_TIME}"))
            })?;
            (Some(at), &anchors.signing_authority, "signingAuthority")
        }
        other => {
            return Err(Refusal::Integrity(format!(
                "unknown signing scheme {other:?}"
            )))
        }
    };
    let mut expiry = None;
    if let Some((at, shown)) = &h.expiry {
        if !critical(EXPIRY) {
            return Err(Refusal::Integrity(format!(
                "{EXPIRY} is not marked critical"
            )));
        }
        if *at <= now {
            expiry = Some(format!("the signature expired at {shown}"));
        }
    }
    let target = target_artifact(&d.payload)?;

    let authenticity = match trusted_certs.is_empty() {
        true => Some(format!(
            "a {scheme} signature must chain to a {store_kind} trust store, and the trust policy names none"
        )),
        false => chain(&d.x5c, &certs, trusted_certs).err(),
    };
    let invalid_in = |from: SystemTime, to: SystemTime| {
        certs.iter().enumerate().find_map(|(i, cert)| {
            let v = &cert.tbs_certificate.validity;
            (from < v.not_before.to_system_time() || to > v.not_after.to_system_time()).then(|| {
                format!(
                    "x5c certificate {} ({}) is valid only {} to {}",
                    i + 1,
                    cert.tbs_certificate.subject,
                    v.not_before,
                    v.not_after
                )
            })
        })
    };
    let authentic_timestamp = match (authentic_time, anchors.timestamps) {
        (Some(at), _) => invalid_in(at, at).map(|i| format!("{i}, at the authentic signing time")),
        (None, None) => {
            invalid_in(now, now).map(|i| format!("{i}, and there is no trusted timestamp"))
        }
        (None, Some(when)) => {
            let invalid_now = invalid_in(now, now);
            if when == policy::VerifyTimestamp::AfterCertExpiry && invalid_now.is_none() {
                None
            } else {
                match &d.timestamp {
                    None => Some(match invalid_now {
                        Some(i) => format!("{i}, and no timestamp countersignature was found"),
                        None => "the trust policy requires a timestamp (verifyTimestamp: always), and no timestamp countersignature was found".into(),
                    }),
                    Some(token) => match timestamp::verify(token, &d.signature, &anchors.tsa) {
                        Err(why) => Some(format!("the timestamp countersignature does not verify: {why}")),
                        Ok(stamp) => invalid_in(stamp.earliest, stamp.latest).map(|i| {
                            format!("{i}, and the timestamp says it was signed {}", stamp.describe())
                        }),
                    },
                }
            }
        }
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
        algorithm: d.algorithm,
        subject: certs[0].tbs_certificate.subject.clone(),
        authenticity,
        expiry,
        authentic_timestamp,
        revocation,
    })
}

/// The payload's `targetArtifact`, read by the strict JSON reader.
fn target_artifact(payload: &[u8]) -> Result<TargetArtifact, Refusal> {
    let payload = crate::json::value_of_go_structs(payload)
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
    Ok(TargetArtifact {
        media_type: text("mediaType")?,
        digest: text("digest")?,
        size: t
            .get("size")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Refusal::Integrity("targetArtifact has no size".into()))?,
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
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

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

    /// notation-go reads the payload with Go's encoding/json, which takes a later case
    /// variant of a field for the field: such a payload names two artifacts.
    #[test]
    fn a_payload_naming_its_target_twice_by_case_is_refused() {
        let target = |digest: &str| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":7}}"#,
                digest.repeat(64)
            )
        };
        let plain = format!(r#"{{"targetArtifact":{}}}"#, target("a"));
        assert!(target_artifact(plain.as_bytes()).is_ok());
        for variant in [
            format!(
                r#"{{"targetArtifact":{},"TargetArtifact":{}}}"#,
                target("a"),
                target("b")
            ),
            format!(
                r#"{{"targetArtifact":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","Digest":"sha256:{}","size":7}}}}"#,
                "a".repeat(64),
                "b".repeat(64)
            ),
        ] {
            let refused = target_artifact(variant.as_bytes())
                .err()
                .map(|r| r.to_string());
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|m| m.contains("one field to Go")),
                "{variant}: {refused:?}"
            );
        }
    }

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

    /// A JWS envelope signed by a fresh self-signed code-signing certificate on `curve`,
    /// with `alg` in its header: (envelope, certificate DER).
    fn ecdsa_jws(
        curve: &'static rcgen::SignatureAlgorithm,
        signer: &'static signature::EcdsaSigningAlgorithm,
        alg: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate_for(curve).unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(signer, &key.serialize_der()).unwrap();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        signed_jws(&key, alg, |tbs| {
            pair.sign(&rng, tbs).unwrap().as_ref().to_vec()
        })
    }

    /// As [`ecdsa_jws`], with a fresh RSA key of `size` signing with RSASSA-PSS `padding`.
    fn rsa_jws(
        size: aws_lc_rs::rsa::KeySize,
        padding: &'static dyn signature::RsaEncoding,
        alg: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        use aws_lc_rs::encoding::AsDer;
        let pair = aws_lc_rs::rsa::KeyPair::generate(size).unwrap();
        let der = pair.as_der().unwrap();
        let key = KeyPair::from_pkcs8_der_and_sign_algo(
            &der.as_ref().to_vec().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        signed_jws(&key, alg, |tbs| {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &rng, tbs, &mut sig).unwrap();
            sig
        })
    }

    /// A JWS envelope over a fixed target, `alg` in its header, signed by `sign` and carrying
    /// a self-signed code-signing certificate of `key`: (envelope, certificate DER).
    fn signed_jws(key: &KeyPair, alg: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        use base64::Engine;
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "signer");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let cert = params.self_signed(key).unwrap().der().to_vec();
        let protected = serde_json::json!({
            "alg": alg,
            "cty": PAYLOAD_TYPE,
            "crit": [SIGNING_SCHEME],
            SIGNING_SCHEME: "notary.x509",
            SIGNING_TIME: "2026-01-01T00:00:00Z",
        });
        let payload = serde_json::json!({"targetArtifact": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            "size": 517,
        }});
        let p = URL_SAFE_NO_PAD.encode(protected.to_string());
        let body = URL_SAFE_NO_PAD.encode(payload.to_string());
        let sig = sign(format!("{p}.{body}").as_bytes());
        let envelope = serde_json::json!({
            "protected": p,
            "payload": body,
            "signature": URL_SAFE_NO_PAD.encode(sig),
            "header": {"x5c": [STANDARD.encode(&cert)]},
        });
        (envelope.to_string().into_bytes(), cert)
    }

    /// Verifies `envelope` with `cert` as its trust anchor: the algorithm it was taken as,
    /// and that a flipped signature byte fails integrity.
    fn verified_algorithm(envelope: &[u8], cert: &[u8]) -> Algorithm {
        let anchors = Anchors {
            ca: vec![cert.to_vec()],
            ..Anchors::default()
        };
        let v = verify_jws(envelope, &anchors, SystemTime::now()).unwrap();
        assert_eq!(v.authenticity, None);
        let mut doc: serde_json::Value = serde_json::from_slice(envelope).unwrap();
        let sig = doc["signature"].as_str().unwrap().to_string();
        let flipped = format!(
            "{}{}",
            if sig.starts_with('A') { 'B' } else { 'A' },
            &sig[1..]
        );
        doc["signature"] = flipped.into();
        match verify_jws(doc.to_string().as_bytes(), &anchors, SystemTime::now()) {
            Err(Refusal::Integrity(m)) => assert!(m.contains("does not verify"), "{m}"),
            other => panic!("{other:?}"),
        }
        v.algorithm
    }

    #[test]
    fn rsa_pss_jws_envelopes_verify_with_the_alg_their_key_size_allows() {
        use aws_lc_rs::rsa::KeySize;
        for (size, padding, alg, algorithm) in [
            (
                KeySize::Rsa2048,
                &signature::RSA_PSS_SHA256,
                "PS256",
                Algorithm::Ps256,
            ),
            (
                KeySize::Rsa3072,
                &signature::RSA_PSS_SHA384,
                "PS384",
                Algorithm::Ps384,
            ),
            (
                KeySize::Rsa4096,
                &signature::RSA_PSS_SHA512,
                "PS512",
                Algorithm::Ps512,
            ),
        ] {
            let (envelope, cert) = rsa_jws(size, padding, alg);
            assert_eq!(verified_algorithm(&envelope, &cert), algorithm, "{alg}");
        }
        // A 2048-bit key signs with PS256 only.
        let (envelope, cert) = rsa_jws(KeySize::Rsa2048, &signature::RSA_PSS_SHA512, "PS512");
        let anchors = Anchors {
            ca: vec![cert],
            ..Anchors::default()
        };
        match verify_jws(&envelope, &anchors, SystemTime::now()) {
            Err(Refusal::Integrity(m)) => assert!(
                m.contains("says PS512, but the signing certificate's key signs with PS256"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ecdsa_jws_envelopes_verify_with_raw_signatures_and_the_alg_their_key_allows() {
        let cases: [(
            &'static rcgen::SignatureAlgorithm,
            &'static signature::EcdsaSigningAlgorithm,
            &str,
            Algorithm,
        ); 3] = [
            (
                &rcgen::PKCS_ECDSA_P256_SHA256,
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                "ES256",
                Algorithm::Es256,
            ),
            (
                &rcgen::PKCS_ECDSA_P384_SHA384,
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                "ES384",
                Algorithm::Es384,
            ),
            (
                &rcgen::PKCS_ECDSA_P521_SHA512,
                &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
                "ES512",
                Algorithm::Es512,
            ),
        ];
        for (curve, signer, alg, algorithm) in cases {
            let (envelope, cert) = ecdsa_jws(curve, signer, alg);
            assert_eq!(verified_algorithm(&envelope, &cert), algorithm, "{alg}");
        }
        // The alg must be the one the key signs with.
        let (envelope, cert) = ecdsa_jws(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            "ES384",
        );
        let anchors = Anchors {
            ca: vec![cert],
            ..Anchors::default()
        };
        match verify_jws(&envelope, &anchors, SystemTime::now()) {
            Err(Refusal::Integrity(m)) => {
                assert!(
                    m.contains("says ES384, but the signing certificate's key signs with ES256"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
