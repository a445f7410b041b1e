//! SPDX 2.3 JSON: one package for the model, its files with SHA-1 and SHA-256 checksums,
//! the document DESCRIBES the package, the package CONTAINS each file, and a document
//! namespace made unique by a UUID. An image is a `CONTAINER` package with its purl, its
//! configuration and layers as files it CONTAINS, and the package of the model an
//! artifact holds, which it CONTAINS too.

use serde::Serialize;

use super::document::{Sbom, Subject};
use super::image::{DescribedBlob, ImageDescription};
use super::model::{DescribedFile, ModelDescription};
use crate::formats::properties::fact_properties;
use crate::hash::{Algorithm, Digest};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    files: Vec<File>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    download_location: &'static str,
    files_analyzed: bool,
    package_verification_code: VerificationCode,
    license_concluded: &'static str,
    license_declared: &'static str,
    copyright_text: &'static str,
    comment: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerificationCode {
    package_verification_code_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    file_name: String,
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    copyright_text: &'static str,
    comment: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";
const MODEL_ID: &str = "SPDXRef-Model";
const IMAGE_ID: &str = "SPDXRef-Image";
const NO_ASSERTION: &str = "NOASSERTION";

/// The SBOM as SPDX 2.3 JSON, ending with a newline.
pub fn render(sbom: &Sbom) -> Vec<u8> {
    let mut contents = Contents::default();
    match &sbom.subject {
        Subject::Model(model) => {
            contents.relate(DOCUMENT_ID, "DESCRIBES", MODEL_ID);
            contents.add_model(model);
        }
        Subject::Image(image) => {
            contents.relate(DOCUMENT_ID, "DESCRIBES", IMAGE_ID);
            contents.add_image(image);
        }
    }
    let (name, version) = sbom.subject.name_and_version();
    let document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: DOCUMENT_ID,
        name: match version {
            Some(version) => format!("{name}-{version}"),
            None => name.to_string(),
        },
        document_namespace: format!(
            "https://spdx.org/spdxdocs/vouch/{}-{}",
            uri_safe(name),
            sbom.serial("spdx")
        ),
        creation_info: CreationInfo {
            created: sbom.created.timestamp(),
            creators: vec![format!("Tool: vouch-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages: contents.packages,
        files: contents.files,
        relationships: contents.relationships,
    };
    let mut out = serde_json::to_vec_pretty(&document).expect("an SBOM always serializes");
    out.push(b'\n');
    out
}

/// The packages, files and relationships of a document, in the order they are added.
#[derive(Default)]
struct Contents {
    packages: Vec<Package>,
    files: Vec<File>,
    relationships: Vec<Relationship>,
}

impl Contents {
    fn relate(&mut self, element: &str, relationship_type: &'static str, related: &str) {
        self.relationships.push(Relationship {
            spdx_element_id: element.to_string(),
            relationship_type,
            related_spdx_element: related.to_string(),
        });
    }

    /// The model's package, and each of its files, which the package CONTAINS.
    fn add_model(&mut self, model: &ModelDescription) {
        self.packages.push(package(model));
        for (index, file) in model.files.iter().enumerate() {
            let file = spdx_file(index, file);
            self.relate(MODEL_ID, "CONTAINS", &file.spdx_id);
            self.files.push(file);
        }
    }

    /// The image's package, its configuration and layers as files it CONTAINS, and the
    /// package of the model an artifact holds, which it CONTAINS too.
    fn add_image(&mut self, image: &ImageDescription) {
        let mut blobs = vec![blob_file(
            "SPDXRef-Config".into(),
            "configuration",
            &image.config,
        )];
        for (position, layer) in image.layers.iter().enumerate() {
            let id = format!("SPDXRef-Layer-{}", position + 1);
            blobs.push(blob_file(id, &format!("layer {}", position + 1), layer));
        }
        let blob_sha1s = std::iter::once(&image.config)
            .chain(&image.layers)
            .map(|blob| &blob.sha1);
        self.packages
            .push(image_package(image, verification_code(blob_sha1s)));
        for blob in blobs {
            self.relate(IMAGE_ID, "CONTAINS", &blob.spdx_id);
            self.files.push(blob);
        }
        if let Some(model) = &image.model {
            self.relate(IMAGE_ID, "CONTAINS", MODEL_ID);
            self.add_model(model);
        }
    }
}

fn image_package(image: &ImageDescription, verification_code: String) -> Package {
    let manifest = &image.manifest;
    let mut comment = format!(
        "Container image {} ({}). Manifest {}",
        image.reference,
        image.root_digest.prefixed(),
        manifest.digest.prefixed()
    );
    if !manifest.media_type.is_empty() {
        comment.push_str(&format!(" ({})", manifest.media_type));
    }
    if let Some(platform) = &manifest.platform {
        comment.push_str(&format!(" for {platform}"));
    }
    comment.push('.');
    Package {
        spdx_id: IMAGE_ID,
        name: image.name.clone(),
        version_info: Some(image.version.clone()),
        primary_package_purpose: Some("CONTAINER"),
        checksums: vec![checksum(&manifest.digest)],
        download_location: NO_ASSERTION,
        files_analyzed: true,
        package_verification_code: VerificationCode {
            package_verification_code_value: verification_code,
        },
        license_concluded: NO_ASSERTION,
        license_declared: NO_ASSERTION,
        copyright_text: NO_ASSERTION,
        comment,
        external_refs: vec![purl_reference(&image.purl)],
    }
}

/// A configuration or layer blob, named by its path in an OCI image layout.
fn blob_file(spdx_id: String, role: &str, blob: &DescribedBlob) -> File {
    let mut checksums = vec![checksum(&blob.sha1), checksum(&blob.sha256)];
    if blob.digest.algorithm == Algorithm::Sha512 {
        checksums.push(checksum(&blob.digest));
    }
    let mut lines = vec![
        format!("vouch:oci:role: {role}"),
        format!("vouch:oci:media-type: {}", blob.media_type),
        format!("vouch:oci:size: {}", blob.size),
    ];
    if let Some(title) = &blob.title {
        lines.push(format!("vouch:oci:title: {title}"));
    }
    File {
        spdx_id,
        file_name: format!(
            "./blobs/{}/{}",
            blob.digest.algorithm.name(),
            blob.digest.hex()
        ),
        checksums,
        license_concluded: NO_ASSERTION,
        copyright_text: NO_ASSERTION,
        comment: lines.join("\n"),
    }
}

/// SPDX's name for a checksum algorithm vouch records.
fn checksum(digest: &Digest) -> Checksum {
    Checksum {
        algorithm: match digest.algorithm {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
            Algorithm::Blake2b => "BLAKE2b-512",
            Algorithm::Blake3 => "BLAKE3",
        },
        checksum_value: digest.hex(),
    }
}

fn purl_reference(purl: &str) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: purl.to_string(),
    }
}

fn package(model: &ModelDescription) -> Package {
    let mut comment = format!(
        "Machine-learning model. OMS root digest (files, sha256): {}.",
        model.root_digest.prefixed()
    );
    if let Some(p) = &model.parameters {
        for (label, value) in [
            ("architecture family", &p.architecture_family),
            ("model architecture", &p.model_architecture),
            ("task", &p.task),
        ] {
            if let Some(value) = value {
                comment.push_str(&format!(" {label}: {value}."));
            }
        }
    }
    Package {
        spdx_id: MODEL_ID,
        name: model.name.clone(),
        version_info: model.version.clone(),
        primary_package_purpose: None,
        checksums: Vec::new(),
        download_location: NO_ASSERTION,
        files_analyzed: true,
        package_verification_code: VerificationCode {
            package_verification_code_value: verification_code(model.files.iter().map(|f| &f.sha1)),
        },
        license_concluded: NO_ASSERTION,
        license_declared: NO_ASSERTION,
        copyright_text: NO_ASSERTION,
        comment,
        external_refs: model.purl.iter().map(|p| purl_reference(p)).collect(),
    }
}

/// SPDX 2.3 section 7.9: SHA-1 over the sorted, concatenated SHA-1 hex digests of the files.
fn verification_code<'a>(sha1s: impl Iterator<Item = &'a Digest>) -> String {
    let mut digests: Vec<String> = sha1s.map(Digest::hex).collect();
    digests.sort();
    Algorithm::Sha1.digest(digests.concat().as_bytes()).hex()
}

fn spdx_file(index: usize, file: &DescribedFile) -> File {
    let checksums = vec![checksum(&file.sha1), checksum(&file.sha256)];
    let mut lines = vec![format!("vouch:file:size: {}", file.size)];
    if let Some(owner) = &file.external_data_of {
        lines.push(format!("vouch:onnx:external-data-of: {owner}"));
    }
    if let Some(facts) = &file.facts {
        lines.extend(
            fact_properties(facts)
                .into_iter()
                .map(|(name, value)| format!("{name}: {value}")),
        );
    }
    File {
        spdx_id: format!("SPDXRef-File-{}", index + 1),
        file_name: format!("./{}", file.name),
        checksums,
        license_concluded: NO_ASSERTION,
        copyright_text: NO_ASSERTION,
        comment: lines.join("\n"),
    }
}

/// A model name made safe for a URI path segment.
fn uri_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}
