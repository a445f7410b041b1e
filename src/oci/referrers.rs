//! Finding what is attached to a manifest (signatures, attestations), wherever the
//! signers put it:
//!
//! - cosign's legacy scheme: the manifest tagged `sha256-HEX.sig` (and `.att` for
//!   attestations) in the same repository, whose layers are the signatures;
//! - OCI 1.1 referrers: the manifests whose `subject` is the digest, listed by the referrers
//!   API (`GET /v2/NAME/referrers/DIGEST`), by the tag-schema fallback index tagged
//!   `sha256-HEX` (registries without the API), or, in an image layout, by the manifests of
//!   `index.json` that name the digest as their subject.
//!
//! What is found is returned as read, digest-checked but not judged: deciding whether a
//! signature counts is the signature policy's (cosign, Notation).

use std::collections::BTreeMap;
use std::io::Read;

use super::document::{Descriptor, Document, ImageManifest};
use super::reference::ImageRef;
use super::store::{Store, Unavailable};
use super::{open, Connection};
use crate::error::{Error, Result};
use crate::hash::Digest;

/// The largest layer of an attached artifact that is read (a signature, a bundle, an
/// envelope); a bigger one is reported as not read.
pub const MAX_ATTACHED_BLOB_BYTES: u64 = 4 << 20;

/// How an attached artifact was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// cosign's `sha256-HEX.sig` (or `.att`) tag.
    LegacyTag(String),
    /// The registry's referrers API.
    ReferrersApi,
    /// The referrers tag-schema fallback index, tagged `sha256-HEX`.
    FallbackTag(String),
    /// A manifest of a layout's `index.json` whose subject is the digest.
    LayoutIndex,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::LegacyTag(tag) => write!(f, "cosign tag {tag}"),
            Place::ReferrersApi => write!(f, "referrers API"),
            Place::FallbackTag(tag) => write!(f, "referrers fallback tag {tag}"),
            Place::LayoutIndex => write!(f, "index.json referrer"),
        }
    }
}

/// A layer of an attached artifact: its descriptor and its bytes, or why they were not read.
#[derive(Clone, Debug)]
pub struct AttachedLayer {
    pub descriptor: Descriptor,
    pub bytes: std::result::Result<Vec<u8>, String>,
}

/// A manifest attached to the subject: a cosign `.sig` manifest, a referrer.
#[derive(Clone, Debug)]
pub struct Attached {
    /// The attached manifest's own digest (its bytes were checked against it).
    pub digest: Digest,
    pub media_type: String,
    /// The artifact type: the manifest's `artifactType`, else the descriptor's that listed
    /// it, else its config's media type (the older referrer form Notation writes).
    pub artifact_type: Option<String>,
    /// The manifest's annotations, merged over those of the descriptor that listed it.
    pub annotations: BTreeMap<String, String>,
    /// The subject the manifest names, if any.
    pub subject: Option<Descriptor>,
    pub config: Descriptor,
    pub layers: Vec<AttachedLayer>,
    /// Every way it was found (the referrers API and the fallback tag may list the same).
    pub found: Vec<Place>,
}

/// Everything found attached to one manifest digest.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub attached: Vec<Attached>,
    /// Attachments that were named but could not be read or did not match their digest,
    /// in words (where, and why).
    pub unreadable: Vec<String>,
    /// Whether the store answered the referrers API (`false`: a registry without it).
    pub referrers_api: bool,
}

/// The cosign legacy signature tag of a digest: `sha256-HEX.sig`.
pub fn cosign_signature_tag(subject: &Digest) -> String {
    format!("{}.sig", fallback_tag(subject))
}

/// The cosign legacy attestation tag of a digest: `sha256-HEX.att`.
pub fn cosign_attestation_tag(subject: &Digest) -> String {
    format!("{}.att", fallback_tag(subject))
}

/// The referrers tag-schema fallback tag of a digest: `sha256-HEX`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm.name(), subject.hex())
}

/// Finds everything attached to `subject`, a manifest digest of the repository or layout
/// `reference` names. An unreachable registry is an [`Error::Remote`]; attachments that
/// are named but absent, changed or refused are listed in [`Discovery::unreadable`].
pub fn discover(
    reference: &ImageRef,
    connection: &Connection,
    subject: &Digest,
) -> Result<Discovery> {
    let store = open(reference, connection)?;
    let layout = matches!(reference, ImageRef::Layout(_));
    discover_in(store.as_ref(), &reference.to_string(), layout, subject)
}

fn discover_in(
    store: &dyn Store,
    target: &str,
    layout: bool,
    subject: &Digest,
) -> Result<Discovery> {
    let remote = |message: String| Error::Remote {
        target: target.to_string(),
        message,
    };
    let mut discovery = Discovery::default();
    // cosign's legacy tags: the tagged manifest is itself the attachment.
    for tag in [
        cosign_signature_tag(subject),
        cosign_attestation_tag(subject),
    ] {
        match store.tagged(&tag) {
            Ok(Some(bytes)) => {
                let digest = subject.algorithm.digest(&bytes);
                add(
                    &mut discovery,
                    store,
                    None,
                    digest,
                    bytes,
                    Place::LegacyTag(tag),
                );
            }
            Ok(None) => {}
            Err(Unavailable::Failed(message)) => return Err(remote(message)),
            Err(other) => discovery
                .unreadable
                .push(format!("cosign tag {tag}: {}", describe(&other))),
        }
    }
    // OCI 1.1 referrers, through the API (or a layout's index.json).
    let mut listed: Vec<(Descriptor, Place)> = Vec::new();
    match store.referrers(subject) {
        Ok(Some(descriptors)) => {
            discovery.referrers_api = true;
            let place = if layout {
                Place::LayoutIndex
            } else {
                Place::ReferrersApi
            };
            listed.extend(descriptors.into_iter().map(|d| (d, place.clone())));
        }
        Ok(None) => {}
        Err(Unavailable::Failed(message)) => return Err(remote(message)),
        Err(other) => {
            discovery
                .unreadable
                .push(format!("referrers of {}: {}", subject, describe(&other)))
        }
    }
    // The tag-schema fallback index, which registries without the API need.
    let tag = fallback_tag(subject);
    match store.tagged(&tag) {
        Ok(Some(bytes)) => match Document::parse(&bytes, None) {
            Ok(Document::Index(index)) => listed.extend(
                index
                    .manifests
                    .into_iter()
                    .map(|d| (d, Place::FallbackTag(tag.clone()))),
            ),
            Ok(Document::Manifest(_)) => discovery.unreadable.push(format!(
                "referrers fallback tag {tag}: a manifest, not an index of referrers"
            )),
            Err(e) => discovery
                .unreadable
                .push(format!("referrers fallback tag {tag}: {e}")),
        },
        Ok(None) => {}
        Err(Unavailable::Failed(message)) => return Err(remote(message)),
        Err(other) => discovery.unreadable.push(format!(
            "referrers fallback tag {tag}: {}",
            describe(&other)
        )),
    }
    for (descriptor, place) in listed {
        if let Some(known) = discovery
            .attached
            .iter_mut()
            .find(|a| a.digest == descriptor.digest)
        {
            if !known.found.contains(&place) {
                known.found.push(place);
            }
            continue;
        }
        match store.manifest(&descriptor) {
            Ok(bytes) => {
                let digest = descriptor.digest.clone();
                add(
                    &mut discovery,
                    store,
                    Some(&descriptor),
                    digest,
                    bytes,
                    place,
                );
            }
            Err(Unavailable::Failed(message)) => return Err(remote(message)),
            Err(other) => discovery.unreadable.push(format!(
                "{} (listed by the {place}): {}",
                descriptor.digest,
                describe(&other)
            )),
        }
    }
    Ok(discovery)
}

/// Checks and parses an attached manifest and reads its layers into `discovery`.
fn add(
    discovery: &mut Discovery,
    store: &dyn Store,
    listed: Option<&Descriptor>,
    digest: Digest,
    bytes: Vec<u8>,
    place: Place,
) {
    let actual = digest.algorithm.digest(&bytes);
    if actual != digest {
        discovery.unreadable.push(format!(
            "{digest} (listed by the {place}): its bytes hash to {actual}"
        ));
        return;
    }
    if let Some(known) = discovery.attached.iter_mut().find(|a| a.digest == digest) {
        if !known.found.contains(&place) {
            known.found.push(place);
        }
        return;
    }
    let declared = listed.map(|d| d.media_type.as_str());
    let manifest: ImageManifest = match Document::parse(&bytes, declared) {
        Ok(Document::Manifest(manifest)) => manifest,
        Ok(Document::Index(_)) => {
            discovery.unreadable.push(format!(
                "{digest} (listed by the {place}): an index, not a manifest"
            ));
            return;
        }
        Err(e) => {
            discovery
                .unreadable
                .push(format!("{digest} (listed by the {place}): {e}"));
            return;
        }
    };
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .or_else(|| listed.map(|d| d.media_type.clone()))
        .unwrap_or_default();
    let mut annotations = listed.map(|d| d.annotations.clone()).unwrap_or_default();
    annotations.extend(manifest.annotations.clone());
    let artifact_type = manifest
        .artifact_type
        .clone()
        .or_else(|| listed.and_then(|d| d.artifact_type.clone()))
        .or_else(|| Some(manifest.config.media_type.clone()).filter(|m| !m.is_empty()));
    let layers = manifest
        .layers
        .iter()
        .map(|layer| AttachedLayer {
            descriptor: layer.clone(),
            bytes: read_blob(store, layer),
        })
        .collect();
    discovery.attached.push(Attached {
        digest,
        media_type,
        artifact_type,
        annotations,
        subject: manifest.subject.as_deref().cloned(),
        config: manifest.config.clone(),
        layers,
        found: vec![place],
    });
}

/// A small blob, whole, checked against its descriptor's size and digest.
fn read_blob(store: &dyn Store, descriptor: &Descriptor) -> std::result::Result<Vec<u8>, String> {
    let digest = &descriptor.digest;
    if descriptor.size > MAX_ATTACHED_BLOB_BYTES {
        return Err(format!(
            "the layer {digest} is {} bytes, more than the {MAX_ATTACHED_BLOB_BYTES} an attached layer may have; it was not read",
            descriptor.size
        ));
    }
    let mut bytes = Vec::new();
    store
        .blob(descriptor)
        .map_err(|e| format!("the layer {digest}: {}", describe(&e)))?
        .take(MAX_ATTACHED_BLOB_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the layer {digest}: {e}"))?;
    if bytes.len() as u64 != descriptor.size {
        return Err(format!(
            "the layer {digest} has {} bytes, its descriptor says {}",
            bytes.len(),
            descriptor.size
        ));
    }
    let actual = digest.algorithm.digest(&bytes);
    if &actual != digest {
        return Err(format!("the layer {digest}: its bytes hash to {actual}"));
    }
    Ok(bytes)
}

fn describe(unavailable: &Unavailable) -> String {
    match unavailable {
        Unavailable::Missing(m) | Unavailable::Refused(m) | Unavailable::Failed(m) => m.clone(),
        Unavailable::Changed { expected, actual } => {
            format!("served content hashes to {actual}, not {expected}")
        }
    }
}
