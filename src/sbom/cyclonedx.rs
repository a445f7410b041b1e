//! CycloneDX 1.6 JSON: the model as `metadata.component` (type `machine-learning-model`),
//! its files as nested components with their hashes, a complete composition, the model card
//! parameters, and the format facts and OMS root digest as properties. An image is a
//! `container` component with a `pkg:oci` purl, its configuration and layers as nested
//! components (digests, sizes, media types), and the model an artifact holds nested too.

use serde::Serialize;

use super::document::{Sbom, Subject};
use super::image::{DescribedBlob, ImageDescription};
use super::model::{DescribedFile, ModelDescription};
use crate::formats::properties::{fact_properties, NAMESPACE};
use crate::hash::{Algorithm, Digest};

#[derive(Serialize)]
struct Bom {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    #[serde(rename = "serialNumber")]
    serial_number: String,
    version: u32,
    metadata: Metadata,
    compositions: Vec<Composition>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(rename = "mime-type", skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(rename = "modelCard", skip_serializing_if = "Option::is_none")]
    model_card: Option<ModelCard>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Property {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct ModelCard {
    #[serde(rename = "modelParameters")]
    model_parameters: ModelParameters,
}

#[derive(Serialize)]
struct ModelParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    #[serde(rename = "architectureFamily", skip_serializing_if = "Option::is_none")]
    architecture_family: Option<String>,
    #[serde(rename = "modelArchitecture", skip_serializing_if = "Option::is_none")]
    model_architecture: Option<String>,
}

#[derive(Serialize)]
struct Composition {
    aggregate: &'static str,
    assemblies: Vec<String>,
}

/// A property in vouch's namespace about an image or one of its blobs.
fn oci_property(key: &str, value: String) -> Property {
    property(format!("{NAMESPACE}:oci:{key}"), value)
}

fn property(name: impl Into<String>, value: impl Into<String>) -> Property {
    Property {
        name: name.into(),
        value: value.into(),
    }
}

/// The SBOM as CycloneDX 1.6 JSON, ending with a newline.
pub fn render(sbom: &Sbom) -> Vec<u8> {
    let component = match &sbom.subject {
        Subject::Model(model) => model_component(model),
        Subject::Image(image) => image_component(image),
    };
    let assembly = component
        .bom_ref
        .clone()
        .expect("the described component has a bom-ref");
    let bom = Bom {
        schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", sbom.serial("cyclonedx")),
        version: 1,
        metadata: Metadata {
            timestamp: sbom.created.timestamp(),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "vouch".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            },
            component,
        },
        compositions: vec![Composition {
            aggregate: "complete",
            assemblies: vec![assembly],
        }],
    };
    let mut out = serde_json::to_vec_pretty(&bom).expect("an SBOM always serializes");
    out.push(b'\n');
    out
}

fn model_ref(model: &ModelDescription) -> String {
    model
        .purl
        .clone()
        .unwrap_or_else(|| format!("model:{}", model.name))
}

fn model_component(model: &ModelDescription) -> Component {
    let properties = vec![
        property(
            format!("{NAMESPACE}:oms:root-digest"),
            model.root_digest.prefixed(),
        ),
        property(format!("{NAMESPACE}:oms:serialization"), "files, sha256"),
    ];
    Component {
        kind: "machine-learning-model",
        bom_ref: Some(model_ref(model)),
        name: model.name.clone(),
        version: model.version.clone(),
        purl: model.purl.clone(),
        model_card: model.parameters.as_ref().map(|p| ModelCard {
            model_parameters: ModelParameters {
                task: p.task.clone(),
                architecture_family: p.architecture_family.clone(),
                model_architecture: p.model_architecture.clone(),
            },
        }),
        properties,
        components: model.files.iter().map(file_component).collect(),
        ..Component::default()
    }
}

/// CycloneDX's name for a digest algorithm vouch records.
fn hash(digest: &Digest) -> Hash {
    Hash {
        alg: match digest.algorithm {
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
            Algorithm::Blake2b => "BLAKE2b-512",
            Algorithm::Blake3 => "BLAKE3",
        },
        content: digest.hex(),
    }
}

fn file_component(file: &DescribedFile) -> Component {
    let hashes = std::iter::once(&file.sha256)
        .chain(&file.blake3)
        .map(hash)
        .collect();
    let mut properties = vec![property(
        format!("{NAMESPACE}:file:size"),
        file.size.to_string(),
    )];
    if let Some(owner) = &file.external_data_of {
        properties.push(property(
            format!("{NAMESPACE}:onnx:external-data-of"),
            owner.clone(),
        ));
    }
    if let Some(facts) = &file.facts {
        properties.extend(
            fact_properties(facts)
                .into_iter()
                .map(|(name, value)| property(name, value)),
        );
    }
    Component {
        kind: "file",
        bom_ref: Some(format!("file:{}", file.name)),
        name: file.name.clone(),
        hashes,
        properties,
        ..Component::default()
    }
}

/// The image as a `container` component: its manifest's digest as its hash, its
/// configuration and layers nested, then the model an artifact holds.
fn image_component(image: &ImageDescription) -> Component {
    let manifest = &image.manifest;
    let mut properties = vec![
        oci_property("reference", image.reference.clone()),
        oci_property("digest", image.root_digest.prefixed()),
        oci_property("manifest-digest", manifest.digest.prefixed()),
    ];
    if !manifest.media_type.is_empty() {
        properties.push(oci_property(
            "manifest-media-type",
            manifest.media_type.clone(),
        ));
    }
    if let Some(platform) = &manifest.platform {
        properties.push(oci_property("platform", platform.to_string()));
    }
    let mut components = vec![blob_component("configuration", "config", &image.config)];
    for (position, layer) in image.layers.iter().enumerate() {
        let role = format!("layer {}", position + 1);
        let key = format!("layer-{}", position + 1);
        components.push(blob_component(&role, &key, layer));
    }
    components.extend(image.model.iter().map(model_component));
    Component {
        kind: "container",
        bom_ref: Some(image.purl.clone()),
        name: image.name.clone(),
        version: Some(image.version.clone()),
        purl: Some(image.purl.clone()),
        hashes: vec![hash(&manifest.digest)],
        properties,
        components,
        ..Component::default()
    }
}

/// A configuration or layer blob: named by its digest, described by its role (`layer 2`),
/// with its hashes, media type, size and title.
fn blob_component(role: &str, key: &str, blob: &DescribedBlob) -> Component {
    let mut properties = vec![
        oci_property("media-type", blob.media_type.clone()),
        oci_property("size", blob.size.to_string()),
    ];
    if let Some(title) = &blob.title {
        properties.push(oci_property("title", title.clone()));
    }
    let hashes = std::iter::once(&blob.sha256)
        .chain((blob.digest.algorithm == Algorithm::Sha512).then_some(&blob.digest))
        .chain(&blob.blake3)
        .map(hash)
        .collect();
    Component {
        kind: "file",
        bom_ref: Some(format!("oci:{key}:{}", blob.digest)),
        name: blob.digest.prefixed(),
        description: Some(role.to_string()),
        mime_type: is_mime_type(&blob.media_type).then(|| blob.media_type.clone()),
        hashes,
        properties,
        ..Component::default()
    }
}

/// Whether `text` fits CycloneDX's `mime-type` pattern (`^[-+a-z0-9.]+/[-+a-z0-9.]+$`);
/// a media type that does not is recorded only as a property.
fn is_mime_type(text: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-+.".contains(&b))
    };
    text.split_once('/')
        .is_some_and(|(kind, subtype)| part(kind) && part(subtype))
}
