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

/// The platform an index entry is built for. `os.version` and `os.features` are not read:
/// no puller vouch answers for compares them on Linux, so entries that differ only there
/// serve the same request (see [`Selection`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// A platform as containerd's `platforms.Normalize` writes it: the OS lower-cased (`""` is
/// the host's, `macos` is `darwin`), the architecture's aliases folded (`x86_64` and
/// `x86-64` are `amd64`, `aarch64` is `arm64`, `i386` is `386`, `armhf` is `arm/v7`,
/// `armel` is `arm/v6`) and the default variants written as containerd writes them (none
/// for `amd64/v1` and `arm64/v8`, `v7` for a bare `arm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Normalized {
    fn new(os: &str, architecture: &str, variant: &str) -> Normalized {
        let os = match os.to_lowercase() {
            empty if empty.is_empty() => host_os().to_string(),
            macos if macos == "macos" => "darwin".to_string(),
            other => other,
        };
        let (mut architecture, mut variant) = (architecture.to_lowercase(), variant.to_lowercase());
        match architecture.as_str() {
            "i386" => {
                architecture = "386".into();
                variant.clear();
            }
            "x86_64" | "x86-64" | "amd64" => {
                architecture = "amd64".into();
                if variant == "v1" {
                    variant.clear();
                }
            }
            "aarch64" | "arm64" => {
                architecture = "arm64".into();
                match variant.as_str() {
                    "8" | "v8" | "v8.0" => variant.clear(),
                    "9" | "9.0" | "v9.0" => variant = "v9".into(),
                    _ => {}
                }
            }
            "armhf" => (architecture, variant) = ("arm".into(), "v7".into()),
            "armel" => (architecture, variant) = ("arm".into(), "v6".into()),
            "arm" => match variant.as_str() {
                "" | "7" => variant = "v7".into(),
                "5" | "6" | "8" => variant = format!("v{variant}"),
                _ => {}
            },
            _ => {}
        }
        Normalized {
            os,
            architecture,
            variant,
        }
    }
}

/// The OS as Go names it (`runtime.GOOS`): what containerd takes an empty `os` for.
fn host_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
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

    /// The variant, `""` when there is none (as Go reads an absent field).
    fn variant(&self) -> &str {
        self.variant.as_deref().unwrap_or("")
    }

    /// The platform as containerd compares it.
    pub fn normalized(&self) -> Normalized {
        Normalized::new(&self.os, &self.architecture, self.variant())
    }

    /// Whether an index entry for `offered` could serve a request for `self` by one of the
    /// direct rules pullers match by: the same strings (containers/image), the same OS and
    /// architecture when the request names no variant (oras, which takes any variant
    /// then), or the same platform once both are normalised (containerd, Docker).
    /// Normalised OS and architecture with a request that names no variant match too.
    pub fn accepts(&self, offered: &Platform) -> bool {
        let (wanted, found) = (self.normalized(), offered.normalized());
        let same_machine = wanted.os == found.os && wanted.architecture == found.architecture;
        same_machine && (self.variant().is_empty() || wanted.variant == found.variant)
    }
}

/// Which entries of an index could be pulled for one platform request, by whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The positions of every entry some puller could take for the request: those the
    /// direct rules of [`Platform::accepts`] match, and the one each modelled puller would
    /// choose by its own preference order (lower variants, `386` on `amd64`, an entry with
    /// no variant or no platform at all). In index order.
    pub candidates: Vec<usize>,
    /// What each modelled puller would choose (`None`: it finds no manifest).
    pub picks: Vec<(&'static str, Option<usize>)>,
}

impl Selection {
    /// The entry every puller would take, when only one could be taken.
    pub fn unique(&self) -> Option<usize> {
        match self.candidates.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }

    /// The pullers' choices in words: `containerd/Docker take entry 2; oras takes entry 1`.
    pub fn describe_picks(&self) -> String {
        let mut by_entry: Vec<(Option<usize>, Vec<&str>)> = Vec::new();
        for (puller, pick) in &self.picks {
            match by_entry.iter_mut().find(|(p, _)| p == pick) {
                Some((_, pullers)) => pullers.push(puller),
                None => by_entry.push((*pick, vec![puller])),
            }
        }
        by_entry
            .iter()
            .map(|(pick, pullers)| {
                let what = pick.map_or("none".to_string(), |i| format!("entry {}", i + 1));
                let verb = match pullers.as_slice() {
                    [one] if !one.contains('/') => "takes",
                    _ => "take",
                };
                format!("{} {verb} {what}", pullers.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The pullers whose choice [`select`] models, as named in reports.
const CONTAINERD: &str = "containerd/Docker";
const CONTAINERS_IMAGE: &str = "containers/image (skopeo, Podman, CRI-O)";
const CONTAINERS_IMAGE_OLD: &str = "older containers/image";
const ORAS: &str = "oras";

/// Which of the index entries whose platforms are `entries` (`None`: an entry without a
/// platform) could be pulled for `wanted`, modelling containerd (and Docker, which
/// chooses with containerd's matcher), containers/image (skopeo, Podman, CRI-O; in both of
/// its variant orders) and oras-go; see [`Selection`].
pub fn select(entries: &[Option<&Platform>], wanted: &Platform) -> Selection {
    let picks = vec![
        (CONTAINERD, containerd_pick(entries, wanted)),
        (
            CONTAINERS_IMAGE,
            containers_image_pick(entries, wanted, true),
        ),
        (
            CONTAINERS_IMAGE_OLD,
            containers_image_pick(entries, wanted, false),
        ),
        (ORAS, oras_pick(entries, wanted)),
    ];
    let candidates = (0..entries.len())
        .filter(|&i| {
            entries[i].is_some_and(|p| wanted.accepts(p))
                || picks.iter().any(|(_, p)| *p == Some(i))
        })
        .collect();
    Selection { candidates, picks }
}

/// The entry with the best rank (lowest; ties to the earlier entry), as each puller sorts.
fn best(ranks: impl Iterator<Item = (usize, Option<usize>)>) -> Option<usize> {
    ranks
        .filter_map(|(i, rank)| rank.map(|r| (r, i)))
        .min()
        .map(|(_, i)| i)
}

/// containerd's `images.Manifest` with `platforms.Only(wanted)` (how containerd, nerdctl,
/// the CRI plugin and Docker choose): every entry whose normalised platform is in the
/// request's vector, or that has no platform (last; its configuration is then checked,
/// which is taken here as matching), stably sorted by the vector's order; the first.
fn containerd_pick(entries: &[Option<&Platform>], wanted: &Platform) -> Option<usize> {
    let vector = containerd_vector(wanted.normalized());
    best(entries.iter().enumerate().map(|(i, entry)| {
        let rank = match entry {
            None => Some(usize::MAX),
            Some(p) => {
                let found = p.normalized();
                vector.iter().position(|v| *v == found)
            }
        };
        (i, rank)
    }))
}

/// containerd's `platformVector`: the request, then what it also runs (lower amd64 levels
/// and `386`; lower arm variants; lower arm64 revisions and 32-bit arm), each normalised
/// as containerd's matcher normalises it.
fn containerd_vector(wanted: Normalized) -> Vec<Normalized> {
    let level = |variant: &str| {
        variant
            .strip_prefix('v')
            .unwrap_or(variant)
            .parse::<u32>()
            .ok()
    };
    let with =
        |architecture: &str, variant: String| Normalized::new(&wanted.os, architecture, &variant);
    let mut vector = vec![wanted.clone()];
    match wanted.architecture.as_str() {
        "amd64" => {
            if let Some(level) = level(&wanted.variant).filter(|&l| l > 1) {
                vector.extend((1..level).rev().map(|l| with("amd64", format!("v{l}"))));
            }
            vector.push(with("386", String::new()));
        }
        "arm" => {
            if let Some(level) = level(&wanted.variant).filter(|&l| l > 5) {
                vector.extend((5..level).rev().map(|l| with("arm", format!("v{l}"))));
            }
        }
        "arm64" => {
            let variant = match wanted.variant.as_str() {
                "" => "v8".to_string(),
                other => other.to_string(),
            };
            vector.clear();
            let Some(versions) = arm64_versions(&variant) else {
                return vector;
            };
            for (major, top) in versions {
                for minor in (0..=top).rev() {
                    let revision = match minor {
                        0 => format!("v{major}"),
                        _ => format!("v{major}.{minor}"),
                    };
                    vector.push(with("arm64", revision));
                }
            }
            let arm = match variant.starts_with("v8") || variant.starts_with("v9") {
                true => "v8".to_string(),
                false => variant,
            };
            vector.extend(containerd_vector(with("arm", arm)));
        }
        _ => {}
    }
    vector
}

/// containerd's `arm64variantToVersion`: the (major, highest minor) revisions an arm64
/// variant runs, best first.
fn arm64_versions(variant: &str) -> Option<Vec<(u32, u32)>> {
    let (major, minor) = match variant.strip_prefix('v')?.split_once('.') {
        Some((major, minor)) => (major, minor.parse::<u32>().ok()?),
        None => (variant.strip_prefix('v')?, 0),
    };
    match major {
        "8" if minor <= 9 => Some(vec![(8, minor)]),
        "9" if minor <= 7 => Some(vec![(9, minor), (8, (minor + 5).min(9))]),
        _ => None,
    }
}

/// containers/image's `chooseInstance` (skopeo, Podman, CRI-O): the entry matching the
/// earliest of the wanted platforms (the variant asked for, lower ones it knows of, then
/// none; or none, then every known variant), compared as strings; an entry without a
/// platform after all others. `amd64_levels`: newer releases, which also know amd64's
/// levels and read `amd64/v1` as `amd64`.
fn containers_image_pick(
    entries: &[Option<&Platform>],
    wanted: &Platform,
    amd64_levels: bool,
) -> Option<usize> {
    let arch = wanted.architecture.as_str();
    let norm = |architecture: &str, variant: &str| -> String {
        match (amd64_levels, architecture, variant) {
            (true, "amd64", "v1") => String::new(),
            _ => variant.to_string(),
        }
    };
    let compatibility: &[&str] = match arch {
        "arm" => &["v8", "v7", "v6", "v5"],
        "arm64" => &["v8"],
        "amd64" if amd64_levels => &["v4", "v3", "v2"],
        _ => &[],
    };
    let variant = norm(arch, wanted.variant());
    let mut variants: Vec<String> = Vec::new();
    if variant.is_empty() {
        variants.push(String::new());
        if arch != "amd64" {
            variants.extend(compatibility.iter().map(|v| v.to_string()));
        }
    } else {
        match compatibility.iter().position(|v| *v == variant) {
            Some(i) => variants.extend(compatibility[i..].iter().map(|v| v.to_string())),
            None => variants.push(variant),
        }
        variants.push(String::new());
    }
    best(entries.iter().enumerate().map(|(i, entry)| {
        let rank = match entry {
            None => Some(usize::MAX),
            Some(p) => variants.iter().position(|v| {
                p.architecture == arch
                    && p.os == wanted.os
                    && norm(&p.architecture, p.variant()) == norm(arch, v)
            }),
        };
        (i, rank)
    }))
}

/// oras-go's `SelectManifest`: the first entry with the same OS and architecture, and the
/// same variant when one is asked for; entries without a platform are passed over.
fn oras_pick(entries: &[Option<&Platform>], wanted: &Platform) -> Option<usize> {
    entries.iter().position(|entry| {
        entry.is_some_and(|p| {
            p.os == wanted.os
                && p.architecture == wanted.architecture
                && (wanted.variant().is_empty() || p.variant() == wanted.variant())
        })
    })
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
        // containerd writes arm64/v8 as arm64: one platform.
        assert!(arm64_v8.accepts(&arm64));
        assert!(!Platform::parse("linux/arm64/v9").unwrap().accepts(&arm64));
        assert_eq!(arm64_v8.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("linux"), Err(NotAPlatform("linux".into())));
        assert!(Platform::parse("linux//v7").is_err());
    }

    fn p(text: &str) -> Platform {
        let mut platform = Platform::parse(text).unwrap();
        platform.os = platform.os.replace('_', "");
        platform
    }

    /// The candidates for `wanted` among `entries` (`-` for an entry without a platform,
    /// `_/ARCH` for an empty OS), 1-based.
    fn candidates(entries: &[&str], wanted: &str) -> Vec<usize> {
        let platforms: Vec<Option<Platform>> =
            entries.iter().map(|e| (*e != "-").then(|| p(e))).collect();
        let refs: Vec<Option<&Platform>> = platforms.iter().map(Option::as_ref).collect();
        select(&refs, &p(wanted))
            .candidates
            .iter()
            .map(|i| i + 1)
            .collect()
    }

    #[test]
    fn normalises_as_containerd_does() {
        let n = |text: &str| {
            let n = p(text).normalized();
            format!("{}/{}/{}", n.os, n.architecture, n.variant)
        };
        assert_eq!(n("Linux/x86_64"), "linux/amd64/");
        assert_eq!(n("linux/x86-64/v1"), "linux/amd64/");
        assert_eq!(n("linux/amd64/V3"), "linux/amd64/v3");
        assert_eq!(n("linux/aarch64/v8"), "linux/arm64/");
        assert_eq!(n("linux/arm64/9"), "linux/arm64/v9");
        assert_eq!(n("linux/armhf"), "linux/arm/v7");
        assert_eq!(n("linux/armel"), "linux/arm/v6");
        assert_eq!(n("linux/arm"), "linux/arm/v7");
        assert_eq!(n("linux/arm/6"), "linux/arm/v6");
        assert_eq!(n("linux/i386/x"), "linux/386/");
        assert_eq!(n("MacOS/arm64"), "darwin/arm64/");
        assert_eq!(n("_/amd64"), format!("{}/amd64/", host_os()));
    }

    /// Every entry some puller could take for the request is a candidate; one candidate is
    /// the entry to verify, several an ambiguity.
    #[test]
    fn candidates_are_what_any_puller_could_take() {
        let ordinary = [
            "linux/amd64",
            "linux/arm/v6",
            "linux/arm/v7",
            "linux/arm64/v8",
            "linux/386",
            "unknown/unknown",
        ];
        for (wanted, expected) in [
            ("linux/amd64", vec![1]),
            ("linux/amd64/v1", vec![1]),
            ("linux/arm/v7", vec![3]),
            ("linux/arm/v6", vec![2]),
            ("linux/arm", vec![2, 3]),
            ("linux/arm64", vec![4]),
            ("linux/arm64/v8", vec![4]),
            ("linux/386", vec![5]),
            ("linux/s390x", vec![]),
        ] {
            assert_eq!(candidates(&ordinary, wanted), expected, "{wanted}");
        }
        for (entries, wanted, expected) in [
            // A request without a variant: oras takes any variant, the others none.
            (
                &["linux/amd64/v3", "linux/amd64"][..],
                "linux/amd64",
                vec![1, 2],
            ),
            // A request with one: every puller prefers the exact entry.
            (
                &["linux/amd64/v3", "linux/amd64"],
                "linux/amd64/v3",
                vec![1],
            ),
            (
                &["linux/amd64/v2", "linux/amd64/v3"],
                "linux/amd64/v3",
                vec![2],
            ),
            // Normalised alike (containerd takes the first, the others the second).
            (&["linux/x86_64", "linux/amd64"], "linux/amd64", vec![1, 2]),
            (&["Linux/amd64", "linux/amd64"], "linux/amd64", vec![1, 2]),
            (&["_/amd64", "linux/amd64"], "linux/amd64", vec![1, 2]),
            (
                &["linux/aarch64", "linux/arm64/v8"],
                "linux/arm64/v8",
                vec![1, 2],
            ),
            (&["linux/arm", "linux/arm/v7"], "linux/arm/v7", vec![1, 2]),
            (&["linux/armhf", "linux/arm/v7"], "linux/arm/v7", vec![1, 2]),
            (&["linux/amd64", "linux/amd64"], "linux/amd64", vec![1, 2]),
            // Fallbacks a puller takes: 386 (containerd), no variant or a lower one
            // (containers/image), no platform (both).
            (&["linux/amd64/v3", "linux/386"], "linux/amd64", vec![1, 2]),
            (
                &["linux/x86_64/v3", "linux/amd64"],
                "linux/amd64/v3",
                vec![1, 2],
            ),
            (
                &["linux/amd64/v2", "linux/amd64"],
                "linux/amd64/v3",
                vec![1, 2],
            ),
            (&["linux/arm", "linux/arm/v6"], "linux/arm/v7", vec![1, 2]),
            (&["linux/amd64/v3", "-"], "linux/amd64", vec![1, 2]),
            (&["linux/arm/v7", "linux/arm64/v8"], "linux/arm64", vec![2]),
            // containerd runs 32-bit arm on arm64; oras takes any arm64 variant.
            (
                &["linux/arm/v7", "linux/arm64/v9"],
                "linux/arm64",
                vec![1, 2],
            ),
            // Only the fallback: every puller that finds one takes it.
            (&["linux/amd64", "-"], "linux/amd64", vec![1]),
            (&["-"], "linux/amd64", vec![1]),
            (&["linux/386"], "linux/amd64", vec![1]),
        ] {
            assert_eq!(
                candidates(entries, wanted),
                expected,
                "{entries:?} {wanted}"
            );
        }
    }

    #[test]
    fn names_what_each_puller_takes() {
        let entries = [p("linux/amd64/v3"), p("linux/amd64")];
        let refs: Vec<Option<&Platform>> = entries.iter().map(Some).collect();
        let selection = select(&refs, &p("linux/amd64"));
        assert_eq!(selection.unique(), None);
        assert_eq!(
            selection.describe_picks(),
            "containerd/Docker, containers/image (skopeo, Podman, CRI-O), older containers/image take entry 2; oras takes entry 1"
        );
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
