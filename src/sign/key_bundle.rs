//! Detached Sigstore bundles signed with a key (`cosign sign-blob --key --new-bundle-format`,
//! sigstore-js with a key signer): a message signature over the file, whose message digest
//! must be the file's SHA-256, or a DSSE in-toto statement whose subject digest is the
//! file's SHA-256. The key decides: a `publicKey.hint` is not read.
//!
//! A bundle with no transparency-log entry and no RFC 3161 timestamp is checked here, as
//! `cosign verify-blob --key --insecure-ignore-tlog` and model-signing check key bundles. One
//! that carries either is verified by sigstore-verify against the Sigstore public-good
//! trusted root: each log entry's inclusion proof, checkpoint and promise, each timestamp,
//! and that each entry logs this signature.

use std::io::Read;

use x509_cert::der::Decode as _;

use aws_lc_rs::digest::{self, SHA256};
use sigstore_trust_root::{TrustedRoot, SIGSTORE_PRODUCTION_TRUSTED_ROOT};
use sigstore_types::{Artifact, Bundle, DerPublicKey, HashAlgorithm, Sha256Hash, SignatureContent};
use sigstore_types::{
    DsseEnvelope, MessageSignature, VerificationMaterial, VerificationMaterialContent,
};
use sigstore_verify::{Error as SigstoreError, PublicKeyVerificationPolicy, Verifier};

use super::bundle::PAYLOAD_TYPE;
use super::keys::PublicKey;
use super::{subject_sha256, DetachedFailure, Rejection};

/// What a bundle must cover: the bytes a reader yields, or content known by its SHA-256
/// (an image manifest, by the digest it resolved to).
pub enum Covered<R> {
    Bytes(R),
    Sha256(Sha256Hash),
}

impl<R: Read> Covered<R> {
    /// The digest of the content with `algorithm`; for content known by its SHA-256, only
    /// that one.
    fn digest(
        self,
        algorithm: &'static digest::Algorithm,
    ) -> Result<digest::Digest, DetachedFailure> {
        match self {
            Covered::Bytes(reader) => digest_of(reader, algorithm),
            Covered::Sha256(known) if algorithm == &SHA256 => {
                digest::Digest::import_less_safe(known.as_bytes(), &SHA256).map_err(|_| {
                    DetachedFailure::Malformed("the SHA-256 digest is not 32 bytes".to_string())
                })
            }
            Covered::Sha256(_) => Err(DetachedFailure::ArtifactMismatch(
                "the bundle's message digest is not SHA-256, and the content is known only by its SHA-256".to_string(),
            )),
        }
    }
}

/// Verifies the content `artifact` covers against the detached bundle `json` with `key`,
/// and names the signer.
pub fn verify<R: Read>(
    json: &str,
    artifact: Covered<R>,
    key: &PublicKey,
    root: Option<&TrustedRoot>,
) -> Result<String, DetachedFailure> {
    let bundle = parse(json)?;
    let material = &bundle.verification_material;
    if !matches!(material.content, VerificationMaterialContent::PublicKey(_)) {
        return Err(DetachedFailure::Rejected(Rejection(
            "the bundle was signed with a certificate, not a key: verify it with --identity and \
             --issuer (Sigstore keyless)"
                .to_string(),
        )));
    }
    let signer = format!("key {} ({})", key.hint(), key.curve.name());
    let logged = !material.tlog_entries.is_empty();
    if witnessed(material) {
        return verify_logged(&bundle, artifact, key, logged, signer, root);
    }
    verify_content(&bundle, artifact, key)?;
    Ok(signer)
}

/// The bundle `json`, read by sigstore's bundle reader.
fn parse(json: &str) -> Result<Bundle, DetachedFailure> {
    Bundle::from_json(json).map_err(|e| {
        DetachedFailure::Malformed(format!("does not follow the Sigstore bundle format: {e}"))
    })
}

/// Whether a bundle carries transparency-log entries or RFC 3161 timestamps.
fn witnessed(material: &VerificationMaterial) -> bool {
    !material.tlog_entries.is_empty()
        || !material
            .timestamp_verification_data
            .rfc3161_timestamps
            .is_empty()
}

/// Checks the bundle's signature with `key` over what `artifact` covers: a message
/// signature whose digest is the content's, or a DSSE envelope whose statement's subject is.
fn verify_content<R: Read>(
    bundle: &Bundle,
    artifact: Covered<R>,
    key: &PublicKey,
) -> Result<(), DetachedFailure> {
    match &bundle.content {
        SignatureContent::MessageSignature(message) => {
            verify_message(message, artifact, key)?;
        }
        SignatureContent::DsseEnvelope(envelope) => {
            check_dsse(
                envelope,
                artifact,
                |pae, sig| key.verify(pae, sig),
                || not_by(key),
            )?;
        }
        _ => {
            return Err(DetachedFailure::Malformed(
                "holds neither a message signature nor a DSSE envelope".to_string(),
            ))
        }
    }
    Ok(())
}

/// A DSSE envelope of an in-toto statement whose signature `verifies` over its PAE and
/// whose subject is what `artifact` covers.
fn check_dsse<R: Read>(
    envelope: &DsseEnvelope,
    artifact: Covered<R>,
    verifies: impl Fn(&[u8], &[u8]) -> bool,
    not_by: impl Fn() -> DetachedFailure,
) -> Result<(), DetachedFailure> {
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(DetachedFailure::Rejected(Rejection(format!(
            "the DSSE payload type is {:?}, not an in-toto statement ({PAYLOAD_TYPE})",
            envelope.payload_type
        ))));
    }
    if !verifies(&envelope.pae(), envelope.signature.sig.as_bytes()) {
        return Err(not_by());
    }
    let statement_type = crate::json::value_of_go_structs(envelope.payload.as_bytes())
        .ok()
        .and_then(|v| v.get("_type").and_then(|t| t.as_str()).map(str::to_string));
    if !matches!(
        statement_type.as_deref(),
        Some("https://in-toto.io/Statement/v1" | "https://in-toto.io/Statement/v0.1")
    ) {
        return Err(DetachedFailure::Rejected(Rejection(format!(
            "the DSSE payload is no in-toto statement (its _type is {statement_type:?})"
        ))));
    }
    let subject = subject_sha256(envelope.payload.as_bytes()).map_err(DetachedFailure::Rejected)?;
    let file = hex::encode(artifact.digest(&SHA256)?.as_ref());
    if !subject.eq_ignore_ascii_case(&file) {
        return Err(DetachedFailure::ArtifactMismatch(format!(
            "the signed statement's subject is sha256:{subject}, the file's sha256:{file}"
        )));
    }
    Ok(())
}

/// A bundle signed with a key `verify` does not take (RSA, Ed25519: cosign's other keys),
/// named `signer`: only a DSSE envelope with no log entry or timestamp, whose PAE signature
/// `verifies` and whose statement's subject is what `artifact` covers.
pub fn verify_dsse_by<R: Read>(
    json: &str,
    artifact: Covered<R>,
    verifies: impl Fn(&[u8], &[u8]) -> bool,
    signer: String,
) -> Result<String, DetachedFailure> {
    let bundle = parse(json)?;
    let material = &bundle.verification_material;
    if !matches!(material.content, VerificationMaterialContent::PublicKey(_)) {
        return Err(DetachedFailure::Rejected(Rejection(
            "the bundle was signed with a certificate, not a key".to_string(),
        )));
    }
    if witnessed(material) {
        return Err(DetachedFailure::Rejected(Rejection(
            "the log entries and timestamps of a bundle signed with an RSA or Ed25519 key are not checked yet (ECDSA keys' are)".to_string(),
        )));
    }
    let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return Err(DetachedFailure::Rejected(Rejection(
            "a message signature by an RSA or Ed25519 key is not checked yet (a DSSE statement is)"
                .to_string(),
        )));
    };
    check_dsse(envelope, artifact, verifies, || {
        DetachedFailure::Rejected(Rejection(format!(
            "the signature does not verify with the {signer}: the bundle was altered, or another key signed it"
        )))
    })?;
    Ok(signer)
}

/// Verifies a bundle signed by a certificate, judged by `check_signer` (given the leaf and
/// the intermediates the bundle carries, DER): its signature with the leaf's (ECDSA) key
/// over what `artifact` covers. Log entries and timestamps are not read: this is a private
/// PKI's bundle, trusted through its chain alone.
pub fn verify_certified<R: Read>(
    json: &str,
    artifact: Covered<R>,
    check_signer: impl FnOnce(&[u8], &[Vec<u8>]) -> Result<String, String>,
) -> Result<String, DetachedFailure> {
    let bundle = parse(json)?;
    let chain: Vec<Vec<u8>> = match &bundle.verification_material.content {
        VerificationMaterialContent::Certificate(leaf) => vec![leaf.raw_bytes.as_bytes().to_vec()],
        VerificationMaterialContent::X509CertificateChain { certificates } => certificates
            .iter()
            .map(|c| c.raw_bytes.as_bytes().to_vec())
            .collect(),
        _ => {
            return Err(DetachedFailure::Rejected(Rejection(
                "the bundle was signed with a key, not a certificate".to_string(),
            )))
        }
    };
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(DetachedFailure::Malformed(
            "its certificate chain is empty".to_string(),
        ));
    };
    let signer = check_signer(leaf, intermediates)
        .map_err(|why| DetachedFailure::Rejected(Rejection(why)))?;
    let spki = x509_cert::Certificate::from_der(leaf)
        .and_then(|c| x509_cert::der::Encode::to_der(&c.tbs_certificate.subject_public_key_info))
        .map_err(|e| DetachedFailure::Malformed(format!("its certificate: {e}")))?;
    let key = PublicKey::from_spki(&spki).map_err(|e| {
        DetachedFailure::Rejected(Rejection(format!(
            "its certificate's key is not checked yet ({e}); ECDSA keys are"
        )))
    })?;
    verify_content(&bundle, artifact, &key)?;
    Ok(signer)
}

/// The message digest must be the file's (SHA-256, -384 or -512, as the bundle says), and
/// the signature must verify with `key` over the file hashed so (as sigstore-verify
/// resolves the scheme: cosign signs a P-384 key's message with SHA-384, sigstore-js with
/// the SHA-256 it names).
fn verify_message<R: Read>(
    message: &MessageSignature,
    artifact: Covered<R>,
    key: &PublicKey,
) -> Result<(), DetachedFailure> {
    let declared = message.message_digest.as_ref().ok_or_else(|| {
        DetachedFailure::Malformed(
            "messageSignature.messageDigest is missing: nothing names the signed file's digest"
                .to_string(),
        )
    })?;
    let (algorithm, name) = match declared.algorithm {
        HashAlgorithm::Sha2256 => (&digest::SHA256, "sha256"),
        HashAlgorithm::Sha2384 => (&digest::SHA384, "sha384"),
        HashAlgorithm::Sha2512 => (&digest::SHA512, "sha512"),
        other => {
            return Err(DetachedFailure::Malformed(format!(
                "messageSignature.messageDigest is {other:?}, not SHA2_256, SHA2_384 or SHA2_512"
            )))
        }
    };
    let file = artifact.digest(algorithm)?;
    if declared.digest.as_bytes() != file.as_ref() {
        return Err(DetachedFailure::ArtifactMismatch(format!(
            "the bundle's message digest is {name}:{}, the file's {name}:{}",
            hex::encode(declared.digest.as_bytes()),
            hex::encode(file.as_ref())
        )));
    }
    if !key.verify_digest(&file, message.signature.as_bytes()) {
        return Err(not_by(key));
    }
    Ok(())
}

fn not_by(key: &PublicKey) -> DetachedFailure {
    DetachedFailure::Rejected(Rejection(format!(
        "the signature does not verify with the key {}: the bundle was altered, or another key \
         signed it",
        key.hint()
    )))
}

/// The digest of everything `artifact` yields.
fn digest_of(
    mut artifact: impl Read,
    algorithm: &'static digest::Algorithm,
) -> Result<digest::Digest, DetachedFailure> {
    let mut context = digest::Context::new(algorithm);
    let mut buffer = vec![0; 1 << 20];
    loop {
        match artifact.read(&mut buffer) {
            Ok(0) => return Ok(context.finish()),
            Ok(read) => context.update(&buffer[..read]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DetachedFailure::Unreadable(e)),
        }
    }
}

/// A bundle with log entries (`logged`) or timestamps: sigstore-verify checks them and the
/// signature against `root` (the public-good trusted root when none is given).
fn verify_logged<R: Read>(
    bundle: &Bundle,
    artifact: Covered<R>,
    key: &PublicKey,
    logged: bool,
    signer: String,
    root: Option<&TrustedRoot>,
) -> Result<String, DetachedFailure> {
    let rejected = |m: String| DetachedFailure::Rejected(Rejection(m));
    let shipped;
    let root = match root {
        Some(root) => root,
        None => {
            shipped = TrustedRoot::from_json(SIGSTORE_PRODUCTION_TRUSTED_ROOT)
                .map_err(|e| rejected(format!("the built-in trusted root: {e}")))?;
            &shipped
        }
    };
    let verifier = Verifier::new(root).map_err(|e| rejected(format!("the trusted root: {e}")))?;
    let mut policy = PublicKeyVerificationPolicy::new(DerPublicKey::new(key.spki.clone()));
    if !logged {
        policy = policy.skip_tlog_unsafe();
    }
    let verified = match artifact {
        Covered::Bytes(reader) => verifier.verify_reader(reader, bundle, &policy),
        Covered::Sha256(known) => verifier.verify(Artifact::Digest(known.into()), bundle, &policy),
    };
    match verified {
        Ok(result) => Ok(match result.integrated_time() {
            Some(time) => format!("{signer}, logged at {time}"),
            None => signer,
        }),
        Err(SigstoreError::ArtifactMismatch(m)) => Err(DetachedFailure::ArtifactMismatch(m)),
        Err(e) => Err(rejected(super::keyless::reason(&e))),
    }
}
