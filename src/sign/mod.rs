//! Signatures: OMS bundles (DSSE envelopes in Sigstore bundles) signed with a key, a
//! certificate or Sigstore keyless signing; and signing with a key or certificate.
//!
//! A signature is checked before anything in its payload is used; the payload is returned
//! as the bytes that were signed, never re-serialized.

pub mod bundle;
pub mod keyless;
pub mod keys;
mod legacy_pem;
pub mod x509;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::hash::ReadError;
use crate::manifest::statement::{self, Statement, StatementError, PAYLOAD_TYPE};
use crate::model::oms::Manifest;
use crate::report::{Report, Subject, Verdict};
use bundle::{Bundle, Material};
use keyless::KeylessPolicy;
use keys::{PrivateKey, PublicKey};

/// Who must have signed.
pub enum SignerPolicy {
    /// The holder of this key (`--key`).
    Key(PublicKey),
    /// A certificate that chains to one of these trusted certificates (`--certificate-chain`).
    CertificateChain {
        anchors: Vec<Vec<u8>>,
        source: PathBuf,
        /// A trusted certificate that is not a self-signed root may end the chain.
        allow_partial: bool,
    },
    /// A Sigstore identity and issuer (`--identity`/`--identity-regexp`, `--issuer`).
    Keyless(Box<KeylessPolicy>),
}

/// A signature that checked out.
#[derive(Debug)]
pub struct Verified {
    /// The payload exactly as signed.
    pub payload: Vec<u8>,
    /// Who signed, in words.
    pub signer: String,
}

/// Why a signature was refused (an integrity failure, exit 1).
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection(pub String);

/// Checks an OMS bundle's signature under `policy` and returns its payload.
pub fn verify_model_signature(
    bundle: &Bundle,
    policy: &SignerPolicy,
) -> Result<Verified, Rejection> {
    let envelope = &bundle.envelope;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(Rejection(format!(
            "the payload type is \"{}\", not {PAYLOAD_TYPE}",
            envelope.payload_type
        )));
    }
    match (policy, &bundle.material) {
        (SignerPolicy::Key(key), Material::PublicKey { hint, pem }) => {
            check_key_identity(key, hint.as_deref(), pem.as_deref())?;
            let signer = format!("key {} ({})", key.hint(), key.curve.name());
            check_envelope(key, bundle, signer)
        }
        (
            SignerPolicy::CertificateChain {
                anchors,
                source,
                allow_partial,
            },
            Material::CertificateChain(chain),
        ) => {
            let leaf = x509::verify_chain(chain, anchors, *allow_partial).map_err(|e| {
                Rejection(format!(
                    "certificate chain not trusted by {}: {e}",
                    source.display()
                ))
            })?;
            let signer = format!(
                "certificate '{}' (chains to {})",
                leaf.subject,
                source.display()
            );
            check_envelope(&leaf.key, bundle, signer)
        }
        (SignerPolicy::Keyless(policy), Material::Keyless) => {
            let subject = subject_sha256(&envelope.payload)?;
            let signer = keyless::verify_digest(bundle, &subject, policy)?;
            Ok(Verified {
                payload: envelope.payload.clone(),
                signer: signer.describe(),
            })
        }
        (policy, material) => Err(Rejection(format!(
            "the signature was made with {}, but verification asked for {}",
            material.method(),
            match policy {
                SignerPolicy::Key(_) => "a key",
                SignerPolicy::CertificateChain { .. } => "a certificate chain",
                SignerPolicy::Keyless(_) => "a Sigstore identity",
            }
        ))),
    }
}

/// What checking an OMS signature bundle before using its payload found.
pub enum SignatureCheck {
    /// The signature verified: the statement it signs (parsed from the payload bytes as
    /// signed), and the `ok` subject that names the bundle and its signer.
    Verified {
        statement: Statement,
        subject: Subject,
    },
    /// The signature was refused: a report whose one `rejected` subject names the bundle
    /// and says why; nothing was compared with its payload.
    Refused(Report),
}

/// Reads the OMS signature bundle at `signature` and checks it under `policy`, for a check
/// of `target`. A bundle that cannot be read or parsed, or a payload in a layout vouch does
/// not support, is an input error (exit 2); a refused signature or a signed payload that is
/// no valid statement is a [`SignatureCheck::Refused`] report (exit 1).
pub fn check_signature(
    signature: &Path,
    policy: &SignerPolicy,
    target: &str,
) -> crate::error::Result<SignatureCheck> {
    use crate::error::Error;
    let started = Instant::now();
    let bytes = crate::fsio::read_input(signature)?;
    let bundle = bundle::parse(&bytes).map_err(|e| Error::input(signature, e))?;
    sigstore_bundle_json(&bytes).map_err(|e| Error::input(signature, e))?;
    let name = signature.display().to_string();
    let refused = |reason: String| {
        SignatureCheck::Refused(Report {
            target: target.to_string(),
            approval: format!("signature {name}"),
            subjects: vec![Subject::new(name.clone(), Verdict::Rejected).message(reason)],
            duration: started.elapsed(),
            ..Report::default()
        })
    };
    let verified = match verify_model_signature(&bundle, policy) {
        Ok(verified) => verified,
        Err(Rejection(reason)) => return Ok(refused(reason)),
    };
    match statement::parse(&verified.payload) {
        Ok(statement) => Ok(SignatureCheck::Verified {
            statement,
            subject: Subject::new(name.clone(), Verdict::Ok)
                .message(format!("signed by {}", verified.signer)),
        }),
        Err(StatementError::Unsupported(message)) => Err(Error::input(signature, message)),
        Err(e) => Ok(refused(format!(
            "the signed payload is not a valid OMS statement: {e}"
        ))),
    }
}

/// The bundle must name the verifier's key: model-signing records its PEM's SHA-256 as a
/// hint (the PEM itself before 1.1).
fn check_key_identity(
    key: &PublicKey,
    hint: Option<&str>,
    pem: Option<&[u8]>,
) -> Result<(), Rejection> {
    if let Some(hint) = hint {
        if !hint.is_empty() && hint != key.hint() {
            return Err(Rejection(format!(
                "wrong key: the signature names key {hint}, but --key is {}",
                key.hint()
            )));
        }
    }
    if let Some(pem) = pem {
        let theirs = PublicKey::from_pem(pem)
            .map_err(|e| Rejection(format!("the bundle's public key: {e}")))?;
        if theirs.spki != key.spki {
            return Err(Rejection(format!(
                "wrong key: the signature carries key {}, but --key is {}",
                theirs.hint(),
                key.hint()
            )));
        }
    }
    Ok(())
}

/// One of the envelope's signatures must verify over the DSSE pre-authentication encoding.
fn check_envelope(key: &PublicKey, bundle: &Bundle, signer: String) -> Result<Verified, Rejection> {
    let envelope = &bundle.envelope;
    let standard = pae(&envelope.payload_type, &envelope.payload);
    let legacy = pae_model_signing_0_2(&envelope.payload);
    for signature in &envelope.signatures {
        if key.verify(&standard, signature) {
            return Ok(Verified {
                payload: envelope.payload.clone(),
                signer,
            });
        }
        if key.verify(&legacy, signature) || key.verify_sha256(&legacy, signature) {
            return Ok(Verified {
                payload: envelope.payload.clone(),
                signer: format!("{signer}, in model-signing 0.2's legacy signature encoding"),
            });
        }
    }
    Err(Rejection(
        "the signature does not verify: the payload was altered, or it was signed by another key"
            .to_string(),
    ))
}

/// The subject digest of an in-toto payload, to bind a keyless signature to.
fn subject_sha256(payload: &[u8]) -> Result<String, Rejection> {
    // Strict: a payload with a key given twice binds no one subject (its case variants are
    // refused when the statement is parsed).
    let value: serde_json::Value = crate::json::from_slice(payload).map_err(|e| match e {
        crate::json::JsonError::Malformed(m) => {
            Rejection(format!("the signed payload is not JSON: {m}"))
        }
        ambiguous => Rejection(format!("the signed payload is {ambiguous}")),
    })?;
    value
        .pointer("/subject/0/digest/sha256")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Rejection("the signed payload has no sha256 subject digest".to_string()))
}

/// DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The encoding model-signing 0.2 signed by mistake: the header spelled `DSSEV1`, and the
/// payload as Python's `repr` of a bytes object (`b'...'`) rather than the bytes.
fn pae_model_signing_0_2(payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEV1 {} {} {} ",
        PAYLOAD_TYPE.len(),
        PAYLOAD_TYPE,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(crate::python::bytes_repr(payload).as_bytes());
    out
}

/// What signs: a key, optionally with its certificate and the chain above it.
pub struct Signer {
    pub key: PrivateKey,
    /// The signing certificate followed by its chain, DER; empty for the key method.
    pub certificates: Vec<Vec<u8>>,
}

impl Signer {
    /// A certificate signer; the certificate must hold the private key's public half.
    pub fn with_certificates(
        key: PrivateKey,
        certificates: Vec<Vec<u8>>,
    ) -> Result<Signer, String> {
        let leaf = certificates.first().ok_or("no signing certificate")?;
        let cert_key = x509::certificate_key(leaf)?;
        if cert_key.spki != key.public_key().spki {
            return Err("the certificate's public key does not match the private key".to_string());
        }
        Ok(Signer { key, certificates })
    }
}

/// Signs `manifest` as an OMS bundle, as model-signing writes one.
pub fn sign_manifest(manifest: &Manifest, signer: &Signer) -> Vec<u8> {
    let payload = statement::to_json(manifest);
    let signature = signer.key.sign(&pae(PAYLOAD_TYPE, &payload));
    let material = if signer.certificates.is_empty() {
        Material::PublicKey {
            hint: Some(signer.key.public_key().hint()),
            pem: None,
        }
    } else {
        Material::CertificateChain(signer.certificates.clone())
    };
    bundle::to_json(&material, &payload, &signature)
}

/// The media types of Sigstore bundles, v0.1 to v0.3.
const SIGSTORE_BUNDLE_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];

/// The bundle as JSON, once its `mediaType` shows it is a Sigstore bundle.
fn sigstore_bundle_json(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let bundle: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("is not a Sigstore bundle: {e}"))?;
    let media_type = bundle
        .get("mediaType")
        .ok_or("is not a Sigstore bundle: mediaType is missing")?;
    if !media_type
        .as_str()
        .is_some_and(|m| SIGSTORE_BUNDLE_MEDIA_TYPES.contains(&m))
    {
        return Err(format!(
            "mediaType {media_type} is not a Sigstore bundle media type (one of {})",
            SIGSTORE_BUNDLE_MEDIA_TYPES.join(", ")
        ));
    }
    Ok(bundle)
}

/// A detached bundle must be a Sigstore bundle by its media type, and a DSSE one must carry
/// an in-toto statement about a file, not an OMS model signature: that signs a model's root
/// digest (SHA-256 over its files' digests), which a file holding those digests would match.
fn check_detached_bundle(json: &str) -> Result<(), String> {
    use serde_json::Value;
    let bundle = sigstore_bundle_json(json.as_bytes())?;
    let Some(envelope) = bundle.get("dsseEnvelope") else {
        return Ok(());
    };
    let payload_type = envelope.get("payloadType").and_then(Value::as_str);
    if payload_type != Some(PAYLOAD_TYPE) {
        return Err(format!(
            "the DSSE envelope's payloadType is {}, not {PAYLOAD_TYPE}: no statement names the file",
            envelope.get("payloadType").unwrap_or(&Value::Null)
        ));
    }
    use base64::Engine as _;
    let payload = envelope
        .get("payload")
        .and_then(Value::as_str)
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .ok_or("the DSSE envelope's payload is missing or not base64")?;
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("the DSSE payload is not an in-toto statement: {e}"))?;
    let predicate_type = statement.get("predicateType").and_then(Value::as_str);
    if let Some(oms) = predicate_type
        .filter(|p| [statement::PREDICATE_TYPE, statement::PREDICATE_TYPE_V0_2].contains(p))
    {
        return Err(format!(
            "is an OMS model signature (predicate {oms}): it signs a model's root digest, not a file's \
             digest; verify the model it signs with --signature instead"
        ));
    }
    Ok(())
}

/// Verifies one file against a detached Sigstore bundle (a message signature or a DSSE
/// attestation whose subject is the file, as cosign and sigstore-python write them).
pub fn verify_detached_file(
    file: &std::path::Path,
    bundle_path: &std::path::Path,
    policy: &KeylessPolicy,
) -> crate::error::Result<Report> {
    use crate::error::Error;
    let started = std::time::Instant::now();
    let json = String::from_utf8(crate::fsio::read_input(bundle_path)?)
        .map_err(|_| Error::input(bundle_path, "is not UTF-8 text, so not a Sigstore bundle"))?;
    // The Sigstore types flatten the bundle: the strict reader checks its keys for
    // duplicates (the fields vouch reads are checked for case variants by bundle::parse).
    if let Err(ambiguous @ crate::json::JsonError::Ambiguous(_)) =
        crate::json::from_slice::<sigstore_types::Bundle>(json.as_bytes())
    {
        return Err(Error::input(bundle_path, ambiguous.to_string()));
    }
    check_detached_bundle(&json).map_err(|e| Error::input(bundle_path, e))?;
    let (handle, stamp) = crate::hash::reader::open_regular(file, true).map_err(|e| match e {
        ReadError::NotRegular(kind) => Error::input(
            file,
            format!("is {kind}; a signed artifact is a regular file"),
        ),
        ReadError::Io(e) => Error::io(file, e),
        ReadError::Unstable(message) => Error::Unstable {
            path: file.to_path_buf(),
            message,
        },
    })?;
    let bundle_name = bundle_path.display().to_string();
    let file_name = file.display().to_string();
    let subjects = match keyless::verify_detached(&json, std::io::BufReader::new(handle), policy) {
        Ok(signer) => vec![
            Subject::new(bundle_name, Verdict::Ok)
                .message(format!("signed by {}", signer.describe())),
            Subject::new(file_name, Verdict::Ok).message("matches the signed digest"),
        ],
        Err(keyless::KeylessFailure::ArtifactMismatch(detail)) => {
            vec![Subject::new(file_name, Verdict::Changed).message(format!(
                "the bundle signs other content than this file ({detail})"
            ))]
        }
        Err(keyless::KeylessFailure::Rejected(Rejection(reason))) => {
            vec![Subject::new(bundle_name, Verdict::Rejected).message(reason)]
        }
    };
    Ok(Report {
        target: file.display().to_string(),
        approval: format!("Sigstore bundle {}", bundle_path.display()),
        subjects,
        bytes_hashed: stamp.len,
        duration: started.elapsed(),
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_follows_the_dsse_spec() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}
