//! Signing an image as `cosign sign --key` does in its legacy scheme: the simple-signing
//! payload naming the digest the reference resolves to and the repository, signed with the
//! key, attached as a layer of the `sha256-HEX.sig` manifest in the same repository or
//! layout, where `vouch oci verify --key` and cosign look for it.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

use crate::approval::rules::signed_repository;
use crate::approval::setting::Spelling;
use crate::error::{Error, Result};
use crate::fsio::read_input;
use crate::hash::Algorithm;
use crate::hash::Digest;
use crate::oci::push::{open_target, Appended, NewLayer, Opened, Referred, Target};
use crate::oci::referrers::cosign_signature_tag;
use crate::oci::{Connection, ImageRef};
use crate::report::Report;
use crate::sign::bundle::BUNDLE_MEDIA_TYPE;
use crate::sign::cosign::CosignKey;
use crate::sign::cosign::{
    simple_signing_payload, verify_simple_signing, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
};
use crate::sign::cosign_private::CosignSigner;
use crate::sign::{
    image_signature_bundle, verify_key_bundle_of_digest, DetachedFailure, COSIGN_SIGN_PREDICATE,
};

/// What to sign, with what.
pub struct SignRequest<'a> {
    pub reference: &'a ImageRef,
    pub connection: &'a Connection,
    /// The private key file.
    pub key: &'a Path,
    /// The password of an encrypted key (empty when none was given).
    pub password: &'a [u8],
    /// The repository the payload names, instead of the reference's (`host/path`); an image
    /// layout has none, so it needs one.
    pub signed_repository: Option<&'a str>,
    /// Write cosign 3's Sigstore bundle referrer instead of the legacy `.sig` layer.
    pub bundle: bool,
}

/// Where a signature went.
#[derive(Debug)]
pub enum Written {
    /// A layer of the `sha256-HEX.sig` manifest (cosign's legacy scheme).
    Legacy(Appended),
    /// A Sigstore bundle v0.3 referrer, listed in the referrers fallback index.
    Bundle(Referred),
}

/// A signature written.
#[derive(Debug)]
pub struct Signed {
    /// The digest signed: the manifest or index the reference resolved to.
    pub digest: Digest,
    /// The repository the payload names.
    pub docker_reference: String,
    /// The kind of key and signature, in words.
    pub key: String,
    pub written: Written,
    pub warnings: Vec<String>,
}

/// The outcome: a signature written, or the report of why the reference resolved to no
/// digest to sign.
#[derive(Debug)]
pub enum Signing {
    Signed(Signed),
    Unresolved(Report),
}

/// Signs the image `request.reference` resolves to and writes the signature beside it.
/// The key is read (and its password checked) before the registry or layout is opened.
pub fn sign_image(request: &SignRequest) -> Result<Signing> {
    let docker_reference = match (request.signed_repository, request.reference) {
        (Some(given), _) => signed_repository(given)
            .map_err(|e| Error::Usage(e.spelled(Spelling::Flag)))?,
        (None, ImageRef::Registry(image)) => format!("{}/{}", image.host, image.repository),
        (None, ImageRef::Layout(_)) => {
            return Err(Error::Usage(format!(
                "{} is an image layout, which names no repository: give --signed-repository HOST[:PORT]/PATH, the repository the signature is for",
                request.reference
            )))
        }
    };
    let text = read_input(request.key)?;
    let signer = CosignSigner::from_pem(&text, request.password)
        .map_err(|e| Error::input(request.key, format!("cannot sign with it: {e}")))?;

    let bundle_key = request.bundle.then(|| signer.public_key());
    let mut target = match open_target(request.reference, request.connection)? {
        Opened::Resolved(target) => target,
        Opened::Unresolved(report) => return Ok(Signing::Unresolved(report)),
    };
    if request.reference.digest().is_none() {
        target.warnings.push(format!(
            "{} names a tag: signed {}, what it named when it was read; sign REF@{} to sign \
             exactly the digest you approved",
            request.reference, target.digest, target.digest
        ));
    }
    if let Some(public) = bundle_key {
        let written = sign_bundle(&target, &signer, &public, &docker_reference, request.key)?;
        return Ok(Signing::Signed(Signed {
            digest: target.digest.clone(),
            docker_reference,
            key: signer.describe(),
            written,
            warnings: target.warnings,
        }));
    }
    let payload = simple_signing_payload(&docker_reference, &target.digest);
    let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign(&payload));
    // What is written must be what a verifier accepts: checked here with the key's own
    // public half before anything is pushed.
    verify_simple_signing(
        SIMPLE_SIGNING,
        &payload,
        Some(&signature),
        &signer.public_key(),
        &target.digest,
        Some(&docker_reference),
    )
    .map_err(|e| {
        Error::input(
            request.key,
            format!("its signature does not verify with its own public key: {e}"),
        )
    })?;
    let layer = NewLayer {
        media_type: SIMPLE_SIGNING.to_string(),
        bytes: payload,
        annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature)]),
    };
    let appended = target.append_layer(&cosign_signature_tag(&target.digest), &layer)?;
    Ok(Signing::Signed(Signed {
        digest: target.digest.clone(),
        docker_reference,
        key: signer.describe(),
        written: Written::Legacy(appended),
        warnings: target.warnings,
    }))
}

/// Signs the target's digest as cosign 3 does with a key: a bundle holding a DSSE statement
/// of cosign's sign predicate, checked with the key's public half, attached as a referrer.
fn sign_bundle(
    target: &Target,
    signer: &CosignSigner,
    public: &CosignKey,
    docker_reference: &str,
    key_file: &Path,
) -> Result<Written> {
    if target.digest.algorithm != Algorithm::Sha256 {
        return Err(Error::Usage(format!(
            "--bundle: a Sigstore bundle names a sha256 digest, and the image's is {}",
            target.digest
        )));
    }
    let hex = target.digest.hex();
    let bundle = image_signature_bundle(docker_reference, &hex, public.fingerprint(), |message| {
        signer.sign(message)
    });
    let json = String::from_utf8(bundle).expect("a bundle is JSON text");
    verify_key_bundle_of_digest(&json, &hex, public, None).map_err(|e| {
        let why = match e {
            DetachedFailure::ArtifactMismatch(m) | DetachedFailure::Malformed(m) => m,
            DetachedFailure::Rejected(r) => r.0,
            DetachedFailure::Unreadable(e) => e.to_string(),
        };
        Error::input(
            key_file,
            format!("its bundle does not verify with its own public key: {why}"),
        )
    })?;
    let created = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let annotations = BTreeMap::from([
        (BUNDLE_CONTENT.to_string(), "dsse-envelope".to_string()),
        (
            BUNDLE_PREDICATE_TYPE.to_string(),
            COSIGN_SIGN_PREDICATE.to_string(),
        ),
        (CREATED.to_string(), created),
    ]);
    let layer = NewLayer {
        media_type: BUNDLE_MEDIA_TYPE.to_string(),
        bytes: json.into_bytes(),
        annotations: BTreeMap::new(),
    };
    Ok(Written::Bundle(target.attach_referrer(
        BUNDLE_MEDIA_TYPE,
        &layer,
        &annotations,
    )?))
}

/// cosign's annotations of a bundle referrer: what the bundle holds, and its predicate.
const BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
const BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
/// When the referrer was made (OCI's annotation).
const CREATED: &str = "org.opencontainers.image.created";
