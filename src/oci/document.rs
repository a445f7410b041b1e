//! The OCI documents vouch reads: descriptors, image manifests, image indexes and the
//! `rootfs.diff_ids` of an image configuration (OCI image spec v1.1, and Docker's image
//! manifest v2 schema 2, which has the same shape).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::hash::{Algorithm, Digest, DigestError};
use crate::json::{self, JsonError};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Every manifest and index media type vouch accepts, for a registry's `Accept` header.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

/// The empty descriptor's media type: the `{}` blob artifacts use as a placeholder layer.
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The annotation that names the file a layer holds (as oras writes it).
pub const TITLE: &str = "org.opencontainers.image.title";
/// The annotation ModelPack tools (modctl) place a layer's file by, and its older key.
pub const MODEL_FILEPATH: &str = "org.cncf.model.filepath";
pub const CNAI_MODEL_FILEPATH: &str = "org.cnai.model.filepath";
/// Every annotation that names the file a descriptor holds: each is a name of the file.
pub const NAME_ANNOTATIONS: [&str; 3] = [TITLE, MODEL_FILEPATH, CNAI_MODEL_FILEPATH];
/// The annotation that tags a manifest in an image layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Manifests, indexes and configurations larger than this are refused, as registries do.
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// Why a text is not an OCI digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OciDigestError {
    #[error("'{0}' is not a digest (ALGORITHM:HEX, e.g. sha256:…)")]
    Form(String),
    #[error("'{text}': OCI digests use sha256 or sha512, not '{algorithm}'")]
    Algorithm { text: String, algorithm: String },
    #[error("'{0}': OCI digests are written in lower-case hex")]
    UpperCase(String),
    #[error("'{text}': {error}")]
    Hex { text: String, error: DigestError },
}

/// Parses an OCI digest: `sha256:` or `sha512:` and lower-case hex of the right length.
pub fn parse_digest(text: &str) -> Result<Digest, OciDigestError> {
    let (name, hex) = text
        .split_once(':')
        .ok_or_else(|| OciDigestError::Form(text.to_string()))?;
    let algorithm = match name {
        "sha256" => Algorithm::Sha256,
        "sha512" => Algorithm::Sha512,
        _ => {
            return Err(OciDigestError::Algorithm {
                text: text.to_string(),
                algorithm: name.to_string(),
            })
        }
    };
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(OciDigestError::UpperCase(text.to_string()));
    }
    Digest::from_hex(algorithm, hex).map_err(|error| OciDigestError::Hex {
        text: text.to_string(),
        error,
    })
}

fn digest_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_digest(&text).map_err(serde::de::Error::custom)
}

/// A content descriptor: what a manifest or index says about the blob it points to.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    #[serde(deserialize_with = "digest_field")]
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    /// What kind of artifact the descriptor points to (OCI 1.1: a referrer's type).
    #[serde(default)]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn title(&self) -> Option<&str> {
        self.annotations.get(TITLE).map(String::as_str)
    }

    /// The file names the descriptor's annotations give ([`NAME_ANNOTATIONS`]), with
    /// their keys.
    pub fn names(&self) -> Vec<(&'static str, &str)> {
        NAME_ANNOTATIONS
            .iter()
            .filter_map(|&key| self.annotations.get(key).map(|name| (key, name.as_str())))
            .collect()
    }
}

/// A text that is not `OS/ARCH[/VARIANT]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a platform: write OS/ARCH or OS/ARCH/VARIANT (e.g. linux/amd64, linux/arm/v7)"
)]
pub struct NotAPlatform(pub String);

/// The platform an index entry is built for.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `OS/ARCH[/VARIANT]`, as a user names the platform to verify.
    pub fn parse(text: &str) -> Result<Platform, NotAPlatform> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || !(2..=3).contains(&parts.len()) {
            return Err(NotAPlatform(text.to_string()));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// The platform of this machine, as container images name it (`linux/amd64`).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Whether an index entry for `offered` serves a request for `self`: a request without
    /// a variant accepts any variant.
    pub fn accepts(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && (self.variant.is_none() || self.variant == offered.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An image manifest: a configuration and layers.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// OCI 1.1: the kind of artifact a manifest that is not an image holds.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// OCI 1.1: the manifest this one refers to (a signature's image).
    #[serde(default)]
    pub subject: Option<Box<Descriptor>>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// Whether the configuration is an image configuration, which lists `rootfs.diff_ids`.
    pub fn has_image_config(&self) -> bool {
        IMAGE_CONFIGS.contains(&self.config.media_type.as_str())
    }
}

/// An image index (or Docker manifest list): manifests, usually one per platform.
#[derive(Clone, Debug, Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

/// A manifest or an index.
// A document is parsed once per manifest read; boxing the manifest buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Document {
    Index(Index),
    Manifest(ImageManifest),
}

impl Document {
    /// `index` or `manifest`, for subject names.
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Index(_) => "index",
            Document::Manifest(_) => "manifest",
        }
    }

    /// Parses manifest or index bytes with the strict reader ([`crate::json`]), so that a
    /// document Go clients would read differently is refused. `declared` is the media type
    /// the referring descriptor (or the registry) gave; a document that says otherwise is
    /// refused, as the image spec requires.
    pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<Document, JsonError> {
        let value: Value = json::from_slice(bytes).map_err(|e| match e {
            JsonError::Malformed(m) => JsonError::Malformed(format!("not valid JSON: {m}")),
            ambiguous => ambiguous,
        })?;
        let object = value
            .as_object()
            .ok_or_else(|| malformed("the document is not a JSON object"))?;
        let lookup = |key| json::field(object, key, "");
        let own = lookup("mediaType")?.and_then(Value::as_str);
        let schema_version = lookup("schemaVersion")?.and_then(Value::as_u64);
        let has_manifests = lookup("manifests")?.is_some();
        let declared = declared.filter(|d| !d.is_empty() && *d != "application/json");
        if let (Some(own), Some(declared)) = (own, declared) {
            if own != declared {
                return Err(malformed(format!(
                    "its mediaType is {own}, but it was referred to as {declared}"
                )));
            }
        }
        let media_type = own.or(declared);
        if media_type.is_some_and(|m| DOCKER_SCHEMA1.contains(&m)) || schema_version == Some(1) {
            return Err(malformed("Docker image manifest schema 1 is not supported (it has no content digests to verify); re-push the image with schema 2 or OCI"));
        }
        match schema_version {
            Some(2) => {}
            Some(other) => {
                return Err(malformed(format!("schemaVersion {other} is not supported")))
            }
            None => return Err(malformed("schemaVersion is missing")),
        }
        let is_index = match media_type {
            Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            Some(other) => {
                return Err(malformed(format!(
                    "media type {other} is not a manifest or index"
                )))
            }
            None => has_manifests,
        };
        // A document that also carries the other kind's fields reads as either kind, as
        // clients guess it (CVE-2021-41190); containers/image refuses it too.
        let (kind, foreign): (&str, &[&str]) = if is_index {
            ("index", &["config", "layers"])
        } else {
            ("manifest", &["manifests"])
        };
        for key in foreign {
            if lookup(key)?.is_some_and(|v| !v.is_null()) {
                return Err(JsonError::Ambiguous(format!(
                    "an image {kind} that also carries \"{key}\", a field of an image {}, reads as either; it is refused",
                    if is_index { "manifest" } else { "index" }
                )));
            }
        }
        let typed = |kind: &str, e: JsonError| match e {
            JsonError::Malformed(m) => malformed(format!("malformed {kind}: {m}")),
            ambiguous => ambiguous,
        };
        if is_index {
            json::from_slice(bytes)
                .map(Document::Index)
                .map_err(|e| typed("index", e))
        } else {
            json::from_slice(bytes)
                .map(Document::Manifest)
                .map_err(|e| typed("manifest", e))
        }
    }
}

fn malformed(message: impl Into<String>) -> JsonError {
    JsonError::Malformed(message.into())
}

/// Why an image configuration gives no diff_ids.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("malformed image configuration: {0}")]
    Malformed(String),
    #[error("ambiguous image configuration: {0}")]
    Ambiguous(String),
    #[error("rootfs.diff_ids[{index}]: {error}")]
    DiffId { index: usize, error: OciDigestError },
}

/// The `rootfs.diff_ids` of an image configuration: the digests of the uncompressed layers.
pub fn diff_ids(config: &[u8]) -> Result<Vec<Digest>, ConfigError> {
    #[derive(Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(Deserialize)]
    struct RootFs {
        diff_ids: Vec<String>,
    }
    let config: Config = json::from_slice(config).map_err(|e| match e {
        JsonError::Malformed(m) => ConfigError::Malformed(m),
        JsonError::Ambiguous(m) => ConfigError::Ambiguous(m),
    })?;
    config
        .rootfs
        .diff_ids
        .iter()
        .enumerate()
        .map(|(index, text)| {
            parse_digest(text).map_err(|error| ConfigError::DiffId { index, error })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn digests_are_sha256_or_sha512_in_lower_case() {
        assert_eq!(
            parse_digest(&format!("sha256:{HEX}")).unwrap(),
            Algorithm::Sha256.digest(b"abc")
        );
        let upper = format!("sha256:{}", HEX.to_uppercase());
        assert_eq!(
            parse_digest(&upper),
            Err(OciDigestError::UpperCase(upper.clone()))
        );
        assert!(parse_digest(&format!("md5:{HEX}"))
            .unwrap_err()
            .to_string()
            .contains("sha256 or sha512"));
        assert_eq!(
            parse_digest("sha512:abcd").unwrap_err().to_string(),
            "'sha512:abcd': a sha512 digest has 128 hex digits, found 4"
        );
        assert_eq!(
            parse_digest("sha256"),
            Err(OciDigestError::Form("sha256".into()))
        );
    }

    #[test]
    fn tells_indexes_from_manifests_and_refuses_mismatched_media_types() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{HEX}","size":3}},"layers":[]}}"#
        );
        assert!(matches!(
            Document::parse(manifest.as_bytes(), Some(OCI_MANIFEST)),
            Ok(Document::Manifest(m)) if m.has_image_config()
        ));
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            Document::parse(index.as_bytes(), None),
            Ok(Document::Index(_))
        ));
        let lying = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert!(Document::parse(lying.as_bytes(), Some(OCI_MANIFEST))
            .unwrap_err()
            .to_string()
            .contains("referred to as"));
        assert!(Document::parse(br#"{"schemaVersion":1}"#, None)
            .unwrap_err()
            .to_string()
            .contains("schema 1"));
        assert!(Document::parse(b"[1]", None).is_err());
    }

    /// What Go's encoding/json would read otherwise than serde is refused, whichever part
    /// of the document carries it.
    #[test]
    fn case_variants_and_duplicates_are_ambiguous() {
        let layer = format!(
            r#"{{"mediaType":"application/octet-stream","digest":"sha256:{HEX}","size":3}}"#
        );
        let sized = layer.replace(r#""size":3"#, r#""size":3,"Size":4"#);
        let manifest = |rest: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{layer},"layers":[{layer}]{rest}}}"#
            )
        };
        let cases = [
            (
                manifest(&format!(r#","Layers":[{layer},{layer}]"#)),
                "key \"Layers\" differs from field \"layers\"",
            ),
            (
                manifest(r#","mediatype":"x""#),
                "key \"mediatype\" differs from field \"mediaType\"",
            ),
            (manifest(r#","SchemaVersion":1"#), "field \"schemaVersion\""),
            (manifest(r#","layers":[]"#), "duplicate key \"layers\""),
            (
                format!(r#"{{"schemaVersion":2,"config":{layer},"layers":[{layer},{sized}]}}"#),
                "layers[1]: key \"Size\"",
            ),
            (
                format!(r#"{{"schemaVersion":2,"manifests":[],"Manifests":[{layer}]}}"#),
                "key \"Manifests\"",
            ),
        ];
        for (text, expected) in cases {
            match Document::parse(text.as_bytes(), None) {
                Err(JsonError::Ambiguous(message)) => {
                    assert!(message.contains(expected), "{text}: {message}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            Document::parse(manifest("").as_bytes(), None),
            Ok(Document::Manifest(m)) if m.layers.len() == 1
        ));
        assert!(
            diff_ids(br#"{"rootfs":{"diff_ids":[],"Diff_IDs":["sha256:00"]}}"#)
                .unwrap_err()
                .to_string()
                .starts_with("ambiguous image configuration: rootfs: key \"Diff_IDs\"")
        );
    }

    #[test]
    fn platforms_parse_and_match_variants() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        let arm64_v8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(arm64.accepts(&arm64_v8));
        assert!(!arm64_v8.accepts(&arm64));
        assert_eq!(arm64_v8.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("linux"), Err(NotAPlatform("linux".into())));
        assert!(Platform::parse("linux//v7").is_err());
    }

    #[test]
    fn reads_diff_ids() {
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["sha256:{HEX}"]}}}}"#);
        assert_eq!(
            diff_ids(config.as_bytes()).unwrap(),
            [Algorithm::Sha256.digest(b"abc")]
        );
        let bad = diff_ids(br#"{"rootfs":{"diff_ids":["nope"]}}"#).unwrap_err();
        assert!(matches!(bad, ConfigError::DiffId { index: 0, .. }));
        assert!(bad.to_string().starts_with("rootfs.diff_ids[0]: 'nope'"));
    }
}
