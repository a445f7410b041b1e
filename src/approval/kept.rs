//! An approval kept with a model version in an MLflow registry: the alias resolved to a
//! version, the stored bytes fetched through the tracking server's artifact proxy and
//! checked against the version's `vouch.approval_sha256` tag, all in memory.

use sha2::{Digest as _, Sha256};

use super::locator::RegistryLocator;
use crate::error::Result;
use crate::registry::{tags, Client, ModelVersion};

/// What `vouch approve --registry` stored (`vouch.approval_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Signature,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::Signature => "signature",
        }
    }
}

/// An approval's bytes, matching their tag.
pub struct Kept {
    pub version: ModelVersion,
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

/// What fetching found: the approval, or a version whose approval cannot be trusted (none,
/// or bytes that do not match their tag); `why` says which.
pub enum Fetched {
    Kept(Kept),
    Refused { version: ModelVersion, why: String },
}

/// Resolves `locator` (an alias to the version it points at now) and fetches its approval.
pub fn fetch(locator: &RegistryLocator) -> Result<Fetched> {
    let client = Client::connect(locator.tracking_uri.as_deref())?;
    let version = client.resolve(&locator.model)?;
    fetch_from(&client, version)
}

/// Fetches the approval of `version` and checks it against its tag.
pub fn fetch_from(client: &Client, version: ModelVersion) -> Result<Fetched> {
    let (Some(location), Some(kind), Some(sha)) = (
        version.tag(tags::APPROVAL_URI).map(str::to_string),
        version.tag(tags::APPROVAL_KIND).map(str::to_string),
        version.tag(tags::APPROVAL_SHA256).map(str::to_string),
    ) else {
        let why = format!(
            "{} has no vouch approval (tags {}, {}, {}): approve it with vouch approve --registry",
            version.uri(),
            tags::APPROVAL_URI,
            tags::APPROVAL_KIND,
            tags::APPROVAL_SHA256
        );
        return Ok(Fetched::Refused { version, why });
    };
    let kind = match kind.as_str() {
        "manifest" => Kind::Manifest,
        "signature" => Kind::Signature,
        other => {
            let why = format!(
                "{}: {} is {other:?}, neither manifest nor signature",
                version.uri(),
                tags::APPROVAL_KIND
            );
            return Ok(Fetched::Refused { version, why });
        }
    };
    let bytes = client.download(&location)?;
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if actual != sha {
        let why = format!(
            "tampered approval: {location} has {actual}, but {} of {} says {sha}",
            tags::APPROVAL_SHA256,
            version.uri()
        );
        return Ok(Fetched::Refused { version, why });
    }
    Ok(Fetched::Kept(Kept {
        version,
        kind,
        bytes,
    }))
}
