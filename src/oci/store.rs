//! Where manifests and blobs come from: a registry or an image layout on disk.

use std::io::BufRead;

use super::document::{Descriptor, MAX_DOCUMENT_BYTES};
use crate::error::Hint;
use crate::hash::Digest;

/// The manifest or index a reference names, as fetched.
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// The media type it was served or referred to as.
    pub media_type: Option<String>,
    /// What the store records for it beyond the pin (`--digest` or the digest the reference
    /// names): the entry of a layout's `index.json`.
    pub recorded: Option<Recorded>,
}

/// A digest, and maybe a size, that fetched bytes must match.
pub struct Recorded {
    pub digest: Digest,
    pub size: Option<u64>,
    /// Where the record comes from, in words (`index.json`).
    pub source: &'static str,
}

/// Why a manifest or blob could not be checked.
#[derive(Debug)]
pub enum Unavailable {
    /// The store has no such thing: the message says what was looked for.
    Missing(String),
    /// The store served content that does not match the digest it was asked for.
    Changed { expected: String, actual: String },
    /// It was not read because it breaks a rule (a symbolic link in a layout).
    Refused(String),
    /// It could not be read: I/O, network, credentials.
    Failed(String),
}

pub trait Store: Sync {
    /// The manifest or index the reference names.
    fn root(&self) -> Result<Fetched, Unavailable>;

    /// A manifest or index by its descriptor (bounded in size), as served.
    fn manifest(&self, descriptor: &Descriptor) -> Result<Vec<u8>, Unavailable>;

    /// A blob, streamed, read where the store buffers it.
    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn BufRead + Send + '_>, Unavailable>;

    /// The manifest or index a tag names (cosign's `sha256-HEX.sig` tag, the referrers
    /// tag-schema fallback `sha256-HEX`), or `None` when nothing has that tag.
    fn tagged(&self, tag: &str) -> Result<Option<Vec<u8>>, Unavailable>;

    /// The manifests whose `subject` is `subject`, as the OCI 1.1 referrers API lists them
    /// (a layout: the manifests of `index.json` that name it), or `None` when the store has
    /// no such API (a registry answering 404).
    fn referrers(&self, subject: &Digest) -> Result<Option<Vec<Descriptor>>, Unavailable>;

    /// How many times to try reading a blob before calling it unreadable.
    fn attempts(&self) -> u32;

    /// Things to tell the user about how the store was reached (credentials not used…).
    fn warnings(&self) -> Vec<String>;

    /// What would get past the failures so far (credentials a registry asked for), if any.
    fn hint(&self) -> Option<Hint> {
        None
    }
}

/// Refuses a manifest or index larger than any real one (`served` says where it came from),
/// whichever store served it.
pub fn within_document_limit(bytes: Vec<u8>, served: &str) -> Result<Vec<u8>, Unavailable> {
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(Unavailable::Refused(format!(
            "{served} is more than the {MAX_DOCUMENT_BYTES} bytes a manifest may have"
        )));
    }
    Ok(bytes)
}

/// A store that can be written: a registry reached with push access, an image layout.
pub trait Sink: Store {
    /// Whether the store already holds the blob.
    fn has_blob(&self, digest: &Digest) -> Result<bool, Unavailable>;

    /// Stores a blob whose bytes hash to `digest` (the caller made them).
    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Unavailable>;

    /// Stores a manifest of `media_type` and points `tag` at it (replacing what it named);
    /// without a tag, stores it by its digest (a referrer, found by its subject).
    fn put_manifest(
        &self,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Unavailable>;

    /// Where `tag` lives, in words (`127.0.0.1:5000/repo:TAG`, `oci:DIR:TAG`).
    fn location(&self, tag: &str) -> String;
}
