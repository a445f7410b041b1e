//! Attaching a layer to an image as cosign's legacy scheme does: the manifest tagged
//! `sha256-HEX.sig` in the image's own repository (or layout) holds one layer per
//! signature. A new layer is appended to the layers already there (an identical one is not
//! added twice), the configuration is written as cosign writes it (`rootfs.diff_ids` the
//! layer digests, one empty history entry each), and the manifest is pushed under the tag.
//!
//! What the layer holds and says is the caller's: this module only stores it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::document::{Descriptor, Document, EMPTY, OCI_INDEX, OCI_MANIFEST};
use super::referrers::fallback_tag;
use super::registry::Access;
use super::store::{Sink, Unavailable};
use super::{open_sink, resolve_root, Connection, ImageRef};
use crate::error::{Error, Result};
use crate::hash::{Algorithm, Digest};
use crate::report::Report;

/// The media type of the configuration cosign gives a signature manifest.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The creation time go-containerregistry writes for a time never set.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A layer to attach: its bytes, media type and annotations.
#[derive(Clone, Debug)]
pub struct NewLayer {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// An image whose digest is known, in a store that can be written.
pub struct Target {
    sink: Box<dyn Sink>,
    /// The digest of the manifest or index the reference resolved to.
    pub digest: Digest,
    /// Its descriptor (media type and size), the subject of a referrer.
    subject: Descriptor,
    /// What to tell the user about how the store was reached.
    pub warnings: Vec<String>,
}

/// An opened target, or the report saying why the reference resolved to nothing usable
/// (absent, moved off its pin, unreadable).
pub enum Opened {
    Resolved(Target),
    Unresolved(Report),
}

/// What [`Target::append_layer`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The digest of the manifest now tagged.
    pub manifest: Digest,
    /// Where the tag lives, in words.
    pub location: String,
    /// How many layers the manifest has.
    pub layers: usize,
    /// `false` when an identical layer was already there (nothing was written).
    pub added: bool,
}

/// Opens `reference` for writing (a registry with push access, a layout) and resolves the
/// digest it names, checked as `vouch oci digest` checks it.
pub fn open_target(reference: &ImageRef, connection: &Connection) -> Result<Opened> {
    let sink = open_sink(reference, connection, Access::PullPush)?;
    let mut report = Report {
        target: reference.to_string(),
        warnings: sink.warnings(),
        ..Report::default()
    };
    let pin = reference.digest().cloned();
    let resolved = resolve_root(sink.as_ref(), reference, pin.as_ref(), &mut report)?;
    match resolved {
        Some((_, descriptor, _)) if report.exit_status() == 0 => Ok(Opened::Resolved(Target {
            warnings: sink.warnings(),
            sink,
            digest: descriptor.digest.clone(),
            subject: descriptor,
        })),
        _ => Ok(Opened::Unresolved(report)),
    }
}

#[derive(Serialize)]
struct DescriptorOut<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: usize,
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
}

/// The manifest as cosign writes it; fields of an existing one beyond these are kept.
#[derive(Serialize)]
struct ManifestOut<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: DescriptorOut<'a>,
    layers: Vec<serde_json::Value>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct ConfigOut<'a> {
    architecture: &'a str,
    created: &'a str,
    history: Vec<History<'a>>,
    os: &'a str,
    rootfs: RootFs,
    config: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

impl Target {
    /// Where `tag` lives, in words.
    pub fn location(&self, tag: &str) -> String {
        self.sink.location(tag)
    }

    /// Appends `layer` to the manifest tagged `tag` (creating it when there is none) and
    /// pushes the blobs and the manifest.
    pub fn append_layer(&self, tag: &str, layer: &NewLayer) -> Result<Appended> {
        let location = self.sink.location(tag);
        let remote = |unavailable: Unavailable| Error::Remote {
            target: location.clone(),
            message: described(unavailable),
        };
        let layer_digest = Algorithm::Sha256.digest(&layer.bytes);
        let new_layer = serde_json::to_value(DescriptorOut {
            media_type: &layer.media_type,
            size: layer.bytes.len(),
            digest: layer_digest.prefixed(),
            annotations: (!layer.annotations.is_empty()).then_some(&layer.annotations),
        })
        .expect("a descriptor serializes");

        let (mut layers, rest) = match self.sink.tagged(tag).map_err(&remote)? {
            None => (Vec::new(), serde_json::Map::new()),
            Some(bytes) => existing(&bytes).map_err(|message| Error::Remote {
                target: location.clone(),
                message,
            })?,
        };
        let same = |old: &serde_json::Value| {
            old.get("digest") == new_layer.get("digest")
                && old.get("mediaType") == new_layer.get("mediaType")
                && old.get("annotations").cloned().unwrap_or_default()
                    == new_layer.get("annotations").cloned().unwrap_or_default()
        };
        if layers.iter().any(same) {
            let bytes = self.sink.tagged(tag).map_err(&remote)?.unwrap_or_default();
            return Ok(Appended {
                manifest: Algorithm::Sha256.digest(&bytes),
                location,
                layers: layers.len(),
                added: false,
            });
        }
        layers.push(new_layer);

        // cosign's layers are stored uncompressed: each diff_id is the layer's digest.
        let diff_ids = layers
            .iter()
            .map(|l| {
                l.get("digest")
                    .and_then(|d| d.as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>();
        let config = serde_json::to_vec(&ConfigOut {
            architecture: "",
            created: ZERO_TIME,
            history: diff_ids
                .iter()
                .map(|_| History { created: ZERO_TIME })
                .collect(),
            os: "",
            rootfs: RootFs {
                kind: "layers",
                diff_ids,
            },
            config: serde_json::Map::new(),
        })
        .expect("a configuration serializes");
        let config_digest = Algorithm::Sha256.digest(&config);
        let manifest = serde_json::to_vec(&ManifestOut {
            schema_version: 2,
            media_type: OCI_MANIFEST,
            config: DescriptorOut {
                media_type: OCI_CONFIG,
                size: config.len(),
                digest: config_digest.prefixed(),
                annotations: None,
            },
            layers,
            rest,
        })
        .expect("a manifest serializes");
        let count = Document::parse(&manifest, Some(OCI_MANIFEST))
            .ok()
            .and_then(|d| match d {
                Document::Manifest(m) => Some(m.layers.len()),
                Document::Index(_) => None,
            })
            .expect("the manifest written reads back as one");

        for (digest, bytes) in [(&layer_digest, &layer.bytes), (&config_digest, &config)] {
            if !self.sink.has_blob(digest).map_err(&remote)? {
                self.sink.put_blob(digest, bytes).map_err(&remote)?;
            }
        }
        self.sink
            .put_manifest(Some(tag), OCI_MANIFEST, &manifest)
            .map_err(&remote)?;
        Ok(Appended {
            manifest: Algorithm::Sha256.digest(&manifest),
            location,
            layers: count,
            added: true,
        })
    }
}

/// What [`Target::attach_referrer`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referred {
    /// The digest of the referrer manifest.
    pub manifest: Digest,
    /// Where the referrers fallback index that lists it lives, in words.
    pub location: String,
    /// `false` when that index already listed it (nothing new was written).
    pub added: bool,
}

impl Target {
    /// Attaches `layer` to the image as an OCI 1.1 referrer of `artifact_type`: a manifest
    /// with the empty config, the one layer, the image as its subject and `annotations`,
    /// stored by its digest and listed in the referrers fallback index (tag `sha256-HEX`),
    /// which registries without the referrers API and layouts need.
    pub fn attach_referrer(
        &self,
        artifact_type: &str,
        layer: &NewLayer,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Referred> {
        let tag = fallback_tag(&self.digest);
        let location = self.sink.location(&tag);
        let remote = |message: String| Error::Remote {
            target: location.clone(),
            message,
        };
        let stored = |unavailable: Unavailable| remote(described(unavailable));
        let config = b"{}";
        let config_digest = Algorithm::Sha256.digest(config);
        let layer_digest = Algorithm::Sha256.digest(&layer.bytes);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY, "size": config.len(), "digest": config_digest.prefixed()},
            "layers": [{
                "mediaType": layer.media_type,
                "size": layer.bytes.len(),
                "digest": layer_digest.prefixed(),
            }],
            "subject": {
                "mediaType": self.subject.media_type,
                "size": self.subject.size,
                "digest": self.subject.digest.prefixed(),
            },
            "annotations": annotations,
        }))
        .expect("a manifest serializes");
        let manifest_digest = Algorithm::Sha256.digest(&manifest);
        let mut listed = match self.sink.tagged(&tag).map_err(stored)? {
            None => Vec::new(),
            Some(bytes) => listed_referrers(&bytes).map_err(&remote)?,
        };
        if listed
            .iter()
            .any(|d| d.get("digest").and_then(|d| d.as_str()) == Some(&manifest_digest.prefixed()))
        {
            return Ok(Referred {
                manifest: manifest_digest,
                location,
                added: false,
            });
        }
        for (digest, bytes) in [(&config_digest, &config[..]), (&layer_digest, &layer.bytes)] {
            if !self.sink.has_blob(digest).map_err(stored)? {
                self.sink.put_blob(digest, bytes).map_err(stored)?;
            }
        }
        self.sink
            .put_manifest(None, OCI_MANIFEST, &manifest)
            .map_err(stored)?;
        listed.push(serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "size": manifest.len(),
            "digest": manifest_digest.prefixed(),
            "artifactType": artifact_type,
            "annotations": annotations,
        }));
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": listed,
        }))
        .expect("an index serializes");
        self.sink
            .put_manifest(Some(&tag), OCI_INDEX, &index)
            .map_err(stored)?;
        Ok(Referred {
            manifest: manifest_digest,
            location,
            added: true,
        })
    }
}

/// Why the store did not do what was asked, in words.
fn described(unavailable: Unavailable) -> String {
    match unavailable {
        Unavailable::Missing(m) | Unavailable::Refused(m) | Unavailable::Failed(m) => m,
        Unavailable::Changed { expected, actual } => {
            format!("the store holds {actual} where {expected} was written or asked for")
        }
    }
}

/// The descriptors a referrers fallback index lists, as written.
fn listed_referrers(bytes: &[u8]) -> std::result::Result<Vec<serde_json::Value>, String> {
    let refuse =
        |why: String| format!("the referrers index already tagged there cannot be added to: {why}");
    match Document::parse(bytes, Some(OCI_INDEX)) {
        Ok(Document::Index(_)) => {}
        Ok(Document::Manifest(_)) => return Err(refuse("it is a manifest".into())),
        Err(e) => return Err(refuse(e.to_string())),
    }
    let value: serde_json::Value =
        crate::json::from_slice(bytes).map_err(|e| refuse(e.to_string()))?;
    match value.get("manifests") {
        Some(serde_json::Value::Array(listed)) => Ok(listed.clone()),
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(_) => Err(refuse("its manifests are not a list".into())),
    }
}

/// The layers of an existing signature manifest, as written, and its other fields (the
/// schema version, media type and config are written anew).
type Existing = (
    Vec<serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
);

fn existing(bytes: &[u8]) -> std::result::Result<Existing, String> {
    let refuse =
        |why: String| format!("the manifest already tagged there cannot be added to: {why}");
    match Document::parse(bytes, None) {
        Ok(Document::Manifest(_)) => {}
        Ok(Document::Index(_)) => return Err(refuse("it is an index".into())),
        Err(e) => return Err(refuse(e.to_string())),
    }
    let value: serde_json::Value =
        crate::json::from_slice(bytes).map_err(|e| refuse(e.to_string()))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(refuse("it is not a JSON object".into()));
    };
    let layers = match fields.remove("layers") {
        Some(serde_json::Value::Array(layers)) => layers,
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(_) => return Err(refuse("its layers are not a list".into())),
    };
    for key in ["schemaVersion", "mediaType", "config"] {
        fields.remove(key);
    }
    Ok((layers, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_manifest_keeps_its_layers_and_other_fields() {
        let config = r#"{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}"#;
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[{config}],"annotations":{{"a":"b"}}}}"#
        );
        let (layers, rest) = existing(manifest.as_bytes()).unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(rest.keys().collect::<Vec<_>>(), ["annotations"]);
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(existing(index.as_bytes())
            .unwrap_err()
            .contains("it is an index"));
    }
}
