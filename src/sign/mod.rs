//! Signatures over bytes: DSSE envelopes in Sigstore bundles signed with a key, a
//! certificate or Sigstore keyless signing; detached Sigstore bundles over a file; and
//! signing with a key or certificate.
//!
//! A signature is checked before anything in its payload is used; the payload is returned
//! as the bytes that were signed, never re-serialized. What the payload says is for the
//! caller to read.

pub mod bundle;
pub mod cosign;
pub mod cosign_private;
pub mod fulcio;
mod key_bundle;
pub mod keyless;
pub mod keys;
mod legacy_pem;
pub mod notation;
pub mod rekor;
pub mod sct;
pub mod x509;

use std::path::PathBuf;

use bundle::{malformed, Bundle, BundleError, Material, PAYLOAD_TYPE};
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

/// Checks a bundle's signature over its in-toto payload under `policy` and returns the
/// payload as signed, and who signed it.
pub fn verify_bundle(bundle: &Bundle, policy: &SignerPolicy) -> Result<Verified, Rejection> {
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

/// Reads a Sigstore bundle around a DSSE envelope, before its signature is checked.
/// Malformed or not a Sigstore bundle by its media type: an input error.
pub fn read_bundle(bytes: &[u8]) -> Result<Bundle, BundleError> {
    let bundle = bundle::parse(bytes)?;
    sigstore_bundle_json(bytes)?;
    Ok(bundle)
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
                "wrong key: the signature names key {hint}, but the verifying key is {}",
                key.hint()
            )));
        }
    }
    if let Some(pem) = pem {
        let theirs = PublicKey::from_pem(pem)
            .map_err(|e| Rejection(format!("the bundle's public key: {e}")))?;
        if theirs.spki != key.spki {
            return Err(Rejection(format!(
                "wrong key: the signature carries key {}, but the verifying key is {}",
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
    // Strict: a payload with a key given twice, or two keys Go reads as one, binds no one
    // subject.
    let value = crate::json::value_of_go_structs(payload).map_err(|e| match e {
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
    ) -> Result<Signer, SignerError> {
        let leaf = certificates.first().ok_or(SignerError::NoCertificate)?;
        let cert_key = x509::certificate_key(leaf).map_err(SignerError::Certificate)?;
        if cert_key.spki != key.public_key().spki {
            return Err(SignerError::KeyMismatch);
        }
        Ok(Signer { key, certificates })
    }
}

/// Why a key and certificates make no signer.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("no signing certificate")]
    NoCertificate,
    #[error("{0}")]
    Certificate(x509::CertificateError),
    #[error("the certificate's public key does not match the private key")]
    KeyMismatch,
}

/// Signs the in-toto statement `payload` into a bundle, as model-signing writes one.
pub fn sign_payload(payload: &[u8], signer: &Signer) -> Vec<u8> {
    let signature = signer.key.sign(&pae(PAYLOAD_TYPE, payload));
    let material = if signer.certificates.is_empty() {
        Material::PublicKey {
            hint: Some(signer.key.public_key().hint()),
            pem: None,
        }
    } else {
        Material::CertificateChain(signer.certificates.clone())
    };
    bundle::to_json(&material, payload, &signature)
}

/// cosign's predicate type for a signature of an image (not an attestation).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// cosign 3's signature of an image with a key (`cosign sign --key`, the new bundle format,
/// no transparency log): a Sigstore bundle v0.3 whose DSSE envelope holds an in-toto v1
/// statement of cosign's sign predicate, its subject the image `repository` at the manifest
/// `sha256` (hex), signed by `sign` over the envelope's PAE, the key named by `hint`.
pub fn image_signature_bundle(
    repository: &str,
    sha256: &str,
    hint: String,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": repository, "digest": {"sha256": sha256}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    });
    let payload = serde_json::to_vec(&statement).expect("a statement always serializes");
    let signature = sign(&pae(PAYLOAD_TYPE, &payload));
    let material = Material::PublicKey {
        hint: Some(hint),
        pem: None,
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
fn sigstore_bundle_json(bytes: &[u8]) -> Result<serde_json::Value, BundleError> {
    let not_sigstore = BundleError::NotSigstore;
    let bundle: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| not_sigstore(format!("is not a Sigstore bundle: {e}")))?;
    let media_type = bundle.get("mediaType").ok_or_else(|| {
        not_sigstore("is not a Sigstore bundle: mediaType is missing".to_string())
    })?;
    if !media_type
        .as_str()
        .is_some_and(|m| SIGSTORE_BUNDLE_MEDIA_TYPES.contains(&m))
    {
        return Err(not_sigstore(format!(
            "mediaType {media_type} is not a Sigstore bundle media type (one of {})",
            SIGSTORE_BUNDLE_MEDIA_TYPES.join(", ")
        )));
    }
    Ok(bundle)
}

/// A detached Sigstore bundle, read but not yet checked.
pub struct DetachedBundle {
    json: String,
    /// The predicate type of the in-toto statement a DSSE bundle signs (`None` for a
    /// message signature, or a statement without one).
    pub predicate_type: Option<String>,
}

/// Reads a detached bundle: it must be a Sigstore bundle by its media type, and a DSSE one
/// must carry an in-toto statement (whose subject names the file).
pub fn read_detached_bundle(bytes: Vec<u8>) -> Result<DetachedBundle, BundleError> {
    use serde_json::Value;
    let json = String::from_utf8(bytes).map_err(|_| {
        BundleError::NotSigstore("is not UTF-8 text, so not a Sigstore bundle".to_string())
    })?;
    // The Sigstore types flatten the bundle: the strict reader checks its keys for
    // duplicates (the fields vouch reads are checked for case variants by bundle::parse).
    if let Err(ambiguous @ crate::json::JsonError::Ambiguous(_)) =
        crate::json::from_slice::<sigstore_types::Bundle>(json.as_bytes())
    {
        return Err(BundleError::Ambiguous(ambiguous));
    }
    let bundle = sigstore_bundle_json(json.as_bytes())?;
    let Some(envelope) = bundle.get("dsseEnvelope") else {
        return Ok(DetachedBundle {
            json,
            predicate_type: None,
        });
    };
    let payload_type = envelope.get("payloadType").and_then(Value::as_str);
    if payload_type != Some(PAYLOAD_TYPE) {
        return Err(malformed(format!(
            "the DSSE envelope's payloadType is {}, not {PAYLOAD_TYPE}: no statement names the file",
            envelope.get("payloadType").unwrap_or(&Value::Null)
        )));
    }
    use base64::Engine as _;
    let payload = envelope
        .get("payload")
        .and_then(Value::as_str)
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .ok_or_else(|| malformed("the DSSE envelope's payload is missing or not base64"))?;
    let statement = crate::json::value_of_go_structs(&payload)
        .map_err(|e| malformed(format!("the DSSE payload is not an in-toto statement: {e}")))?;
    let predicate_type = statement
        .get("predicateType")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(DetachedBundle {
        json,
        predicate_type,
    })
}

/// Who must have signed a detached bundle.
pub enum DetachedPolicy {
    /// The holder of this key (`--key`).
    Key(PublicKey),
    /// A Sigstore identity and issuer.
    Keyless(Box<KeylessPolicy>),
}

/// Why a detached bundle does not verify the file.
#[derive(Debug)]
pub enum DetachedFailure {
    /// The signature holds, but over other content than the file.
    ArtifactMismatch(String),
    /// The signature, its signer, log entry or timestamp was refused.
    Rejected(Rejection),
    /// The bundle cannot be checked as it is written (an input error).
    Malformed(String),
    /// The file could not be read.
    Unreadable(std::io::Error),
}

/// Verifies the bytes `artifact` reads against a detached bundle under `policy`, and names
/// the signer.
pub fn verify_detached(
    bundle: &DetachedBundle,
    artifact: impl std::io::Read,
    policy: &DetachedPolicy,
) -> Result<String, DetachedFailure> {
    match policy {
        DetachedPolicy::Key(key) => key_bundle::verify(
            &bundle.json,
            key_bundle::Covered::Bytes(artifact),
            key,
            None,
        ),
        DetachedPolicy::Keyless(policy) => keyless::verify_detached(&bundle.json, artifact, policy)
            .map(|signer| signer.describe())
            .map_err(|failure| match failure {
                keyless::KeylessFailure::ArtifactMismatch(m) => {
                    DetachedFailure::ArtifactMismatch(m)
                }
                keyless::KeylessFailure::Rejected(r) => DetachedFailure::Rejected(r),
            }),
    }
}

/// Verifies a Sigstore bundle signed with `key` whose statement's subject, or whose message
/// digest, must be `subject_sha256` (hex): an image's bundle v0.3 referrer under cosign's
/// key policy. An RSA or Ed25519 key verifies a DSSE statement only (a message signature by
/// one cannot be checked from the digest alone). Names the signer.
pub fn verify_key_bundle_of_digest(
    json: &str,
    subject_sha256: &str,
    key: &cosign::CosignKey,
    root: Option<&sigstore_trust_root::TrustedRoot>,
) -> Result<String, DetachedFailure> {
    let known = sigstore_types::Sha256Hash::from_hex(subject_sha256)
        .map_err(|e| DetachedFailure::Malformed(format!("the subject digest: {e}")))?;
    let covered = key_bundle::Covered::<std::io::Empty>::Sha256(known);
    let kind = match key {
        cosign::CosignKey::Ecdsa(key) => return key_bundle::verify(json, covered, key, root),
        cosign::CosignKey::Rsa(_) => "RSA",
        cosign::CosignKey::Ed25519(_) => "Ed25519",
    };
    let signer = format!("{kind} key {}", key.fingerprint());
    key_bundle::verify_dsse_by(json, covered, |pae, sig| key.verify(pae, sig), signer)
}

/// Verifies a Sigstore bundle signed by a certificate (of a private PKI), whose statement's
/// subject or message digest must be `subject_sha256` (hex): `check_signer` judges the leaf
/// and intermediates (DER) and names the signer.
pub fn verify_certified_bundle_of_digest(
    json: &str,
    subject_sha256: &str,
    check_signer: impl FnOnce(&[u8], &[Vec<u8>]) -> Result<String, String>,
) -> Result<String, DetachedFailure> {
    let known = sigstore_types::Sha256Hash::from_hex(subject_sha256)
        .map_err(|e| DetachedFailure::Malformed(format!("the subject digest: {e}")))?;
    key_bundle::verify_certified::<std::io::Empty>(
        json,
        key_bundle::Covered::Sha256(known),
        check_signer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p256_key() -> PrivateKey {
        use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        PrivateKey::from_pem(pem.as_bytes(), None).unwrap()
    }

    #[test]
    fn an_image_signature_bundle_verifies_with_its_key_for_its_digest_only() {
        let key = p256_key();
        let public = key.public_key();
        let digest = "ab".repeat(32);
        let json = image_signature_bundle("registry.example/app", &digest, public.hint(), |m| {
            key.sign(m)
        });
        let json = String::from_utf8(json).unwrap();
        let cosign_key = cosign::CosignKey::Ecdsa(public.clone());
        let signer = verify_key_bundle_of_digest(&json, &digest, &cosign_key, None).unwrap();
        assert!(signer.contains(&public.hint()), "{signer}");
        assert!(matches!(
            verify_key_bundle_of_digest(&json, &"cd".repeat(32), &cosign_key, None),
            Err(DetachedFailure::ArtifactMismatch(_))
        ));
        let other = cosign::CosignKey::Ecdsa(p256_key().public_key());
        assert!(matches!(
            verify_key_bundle_of_digest(&json, &digest, &other, None),
            Err(DetachedFailure::Rejected(_))
        ));
        // The same statement signed as another payload type is no in-toto statement.
        use base64::Engine as _;
        let mut edited: serde_json::Value = serde_json::from_str(&json).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(edited["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let signature = key.sign(&pae("text/plain", &payload));
        edited["dsseEnvelope"]["payloadType"] = "text/plain".into();
        edited["dsseEnvelope"]["signatures"][0]["sig"] = base64::engine::general_purpose::STANDARD
            .encode(signature)
            .into();
        match verify_key_bundle_of_digest(&edited.to_string(), &digest, &cosign_key, None) {
            Err(DetachedFailure::Rejected(r)) => assert!(r.0.contains("payload type"), "{}", r.0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pae_follows_the_dsse_spec() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}
