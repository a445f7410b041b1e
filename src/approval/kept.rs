//! An approval kept with a model version in an MLflow registry: the alias resolved to a
//! version, the stored bytes fetched through the tracking server's artifact proxy and
//! checked against the version's `vouch.approval_sha256` tag, all in memory. An approval is
//! bound to its version: it is read only from where `vouch approve --registry` stores the
//! approval of that name and version, under the digest its tag gives.

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

    /// The name of the stored file.
    pub fn file(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest.json",
            Kind::Signature => "model.sig",
        }
    }
}

/// Where approvals are stored through the artifact proxy, below the artifact root.
pub const APPROVAL_ROOT: &str = "mlflow-artifacts:/vouch-approvals";

/// Where the approval of version `version` of model `name`, of `kind`, whose bytes have the
/// SHA-256 `hex`, is stored: one object per approval, its path carrying its digest, so that
/// a new approval never overwrites the bytes an older tag still names, and the version it
/// was made for.
pub fn location(name: &str, version: &str, kind: Kind, hex: &str) -> String {
    format!("{APPROVAL_ROOT}/{name}/{version}/{hex}/{}", kind.file())
}

/// Why `uri`, the `vouch.approval_uri` tag of `version`, is not where the approval of
/// `version` (of `kind`, with the `vouch.approval_sha256` tag `sha`) is stored; `None` when
/// it is exactly that place.
fn unbound(version: &ModelVersion, uri: &str, kind: Kind, sha: &str) -> Option<String> {
    let Some(hex) = sha.strip_prefix("sha256:").filter(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }) else {
        return Some(format!(
            "tampered approval: {} of {} is {sha:?}, not sha256: and 64 lowercase hex digits",
            tags::APPROVAL_SHA256,
            version.uri()
        ));
    };
    let expected = location(&version.name, &version.version, kind, hex);
    if uri == expected {
        return None;
    }
    let own = format!("{APPROVAL_ROOT}/{}/{}/", version.name, version.version);
    let why = match uri.strip_prefix(&own) {
        None => format!(
            "it is not where vouch approve stores an approval of {} ({own}...): an approval \
             is bound to the version it was made for (tags copied from another version?)",
            version.uri()
        ),
        Some(rest) if !rest.starts_with(&format!("{hex}/")) => format!(
            "its digest does not agree with {} ({sha})",
            tags::APPROVAL_SHA256
        ),
        Some(_) => format!(
            "a {} approval is stored as {hex}/{}, nothing else",
            kind.name(),
            kind.file()
        ),
    };
    Some(format!(
        "tampered approval: {} of {} is {uri}, not {expected}: {why}",
        tags::APPROVAL_URI,
        version.uri()
    ))
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

/// Fetches the approval of `version` and checks it against its tags: it must be stored
/// exactly where `vouch approve --registry` stores the approval of this version
/// ([`location`]), and its bytes must have the digest `vouch.approval_sha256` gives.
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
    if let Some(why) = unbound(&version, &location, kind, &sha) {
        return Ok(Fetched::Refused { version, why });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str, number: &str) -> ModelVersion {
        ModelVersion {
            name: name.to_string(),
            version: number.to_string(),
            source: String::new(),
            storage_location: None,
            tags: Default::default(),
            aliases: Vec::new(),
        }
    }

    #[test]
    fn an_approval_is_read_only_from_where_approve_stores_it_for_its_version() {
        let hex = "ab".repeat(32);
        let sha = format!("sha256:{hex}");
        let own = location("team/fraud", "3", Kind::Manifest, &hex);
        assert_eq!(
            own,
            format!("mlflow-artifacts:/vouch-approvals/team/fraud/3/{hex}/manifest.json")
        );
        let v3 = version("team/fraud", "3");
        assert_eq!(unbound(&v3, &own, Kind::Manifest, &sha), None);
        let refused = |uri: &str, kind: Kind, sha: &str| {
            unbound(&v3, uri, kind, sha).unwrap_or_else(|| panic!("{uri} {sha} accepted"))
        };
        // Another version's, another model's, another place.
        for other in [
            location("team/fraud", "1", Kind::Manifest, &hex),
            location("team/fraud", "33", Kind::Manifest, &hex),
            location("other", "3", Kind::Manifest, &hex),
            format!("mlflow-artifacts:/elsewhere/{hex}/manifest.json"),
            format!(
                "mlflow-artifacts://host:5000/vouch-approvals/team/fraud/3/{hex}/manifest.json"
            ),
        ] {
            let why = refused(&other, Kind::Manifest, &sha);
            assert!(why.contains(tags::APPROVAL_URI), "{why}");
            assert!(why.contains("bound to the version"), "{why}");
        }
        // Its digest is not the tag's; its file is not its kind's.
        let why = refused(&own, Kind::Manifest, &format!("sha256:{}", "cd".repeat(32)));
        assert!(why.contains(tags::APPROVAL_SHA256), "{why}");
        assert!(refused(&own, Kind::Signature, &sha).contains("model.sig"));
        assert!(refused(&format!("{own}/x"), Kind::Manifest, &sha).contains("nothing else"));
        // A digest tag that is no SHA-256.
        for bad in [
            hex.clone(),
            format!("sha256:{}", "AB".repeat(32)),
            "sha256:ab".into(),
        ] {
            let why = refused(&own, Kind::Manifest, &bad);
            assert!(why.contains(tags::APPROVAL_SHA256), "{why}");
        }
    }
}
