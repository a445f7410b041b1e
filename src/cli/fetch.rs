//! Fetching an approval kept with a model version in an MLflow registry, checked against
//! its `vouch.approval_sha256` tag.

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::registry::{tags, Client, ModelUri, ModelVersion};

/// An approval fetched from the registry into a temporary file, checked against its tag.
pub struct Fetched {
    pub version: ModelVersion,
    pub kind: String,
    pub file: tempfile::TempPath,
}

/// What fetching an approval found: the approval, or bytes that do not match their tag.
pub enum Fetch {
    Approval(Fetched),
    Tampered { why: String },
}

/// Fetches the approval of the version `registry` names.
pub fn fetch_approval(registry: &str, tracking_uri: Option<&str>) -> Result<Fetch> {
    let uri = ModelUri::parse(registry)?;
    let client = Client::connect(tracking_uri)?;
    let version = client.resolve(&uri)?;
    fetch_for(&client, version)
}

pub(super) fn fetch_for(client: &Client, version: ModelVersion) -> Result<Fetch> {
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
        return Ok(Fetch::Tampered { why });
    };
    if kind != "manifest" && kind != "signature" {
        let why = format!("{}: {} is {kind:?}", version.uri(), tags::APPROVAL_KIND);
        return Ok(Fetch::Tampered { why });
    }
    let bytes = client.download(&location)?;
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if actual != sha {
        let why = format!(
            "tampered approval: {location} has {actual}, but {} of {} says {sha}",
            tags::APPROVAL_SHA256,
            version.uri()
        );
        return Ok(Fetch::Tampered { why });
    }
    let file = tempfile::NamedTempFile::new()
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, &bytes)?;
            Ok(f.into_temp_path())
        })
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    Ok(Fetch::Approval(Fetched {
        version,
        kind,
        file,
    }))
}
