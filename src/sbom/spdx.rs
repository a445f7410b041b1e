//! SPDX 2.3 JSON: one package for the model, its files with SHA-1 and SHA-256 checksums,
//! the document DESCRIBES the package, the package CONTAINS each file, and a document
//! namespace made unique by a UUID.

use serde::Serialize;

use super::describe::{DescribedFile, ModelDescription, Sbom, Subject};
use super::properties::fact_properties;
use crate::hash::Algorithm;

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

const PACKAGE_ID: &str = "SPDXRef-Model";
const NO_ASSERTION: &str = "NOASSERTION";

/// The SBOM as SPDX 2.3 JSON, ending with a newline.
pub fn render(sbom: &Sbom) -> Vec<u8> {
    let Subject::Model(model) = &sbom.subject;
    let files: Vec<File> = model
        .files
        .iter()
        .enumerate()
        .map(|(index, file)| spdx_file(index, file))
        .collect();
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: PACKAGE_ID.into(),
    }];
    relationships.extend(files.iter().map(|file| Relationship {
        spdx_element_id: PACKAGE_ID.into(),
        relationship_type: "CONTAINS",
        related_spdx_element: file.spdx_id.clone(),
    }));
    let document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: match &model.version {
            Some(version) => format!("{}-{version}", model.name),
            None => model.name.clone(),
        },
        document_namespace: format!(
            "https://spdx.org/spdxdocs/vouch/{}-{}",
            uri_safe(&model.name),
            sbom.serial("spdx")
        ),
        creation_info: CreationInfo {
            created: sbom.created.timestamp(),
            creators: vec![format!("Tool: vouch-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages: vec![package(model)],
        files,
        relationships,
    };
    let mut out = serde_json::to_vec_pretty(&document).expect("an SBOM always serializes");
    out.push(b'\n');
    out
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
        spdx_id: PACKAGE_ID,
        name: model.name.clone(),
        version_info: model.version.clone(),
        download_location: NO_ASSERTION,
        files_analyzed: true,
        package_verification_code: VerificationCode {
            package_verification_code_value: verification_code(&model.files),
        },
        license_concluded: NO_ASSERTION,
        license_declared: NO_ASSERTION,
        copyright_text: NO_ASSERTION,
        comment,
        external_refs: model
            .purl
            .iter()
            .map(|purl| ExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_type: "purl",
                reference_locator: purl.clone(),
            })
            .collect(),
    }
}

/// SPDX 2.3 section 7.9: SHA-1 over the sorted, concatenated SHA-1 hex digests of the files.
fn verification_code(files: &[DescribedFile]) -> String {
    let mut digests: Vec<String> = files.iter().map(|f| f.sha1.hex()).collect();
    digests.sort();
    Algorithm::Sha1.digest(digests.concat().as_bytes()).hex()
}

fn spdx_file(index: usize, file: &DescribedFile) -> File {
    let checksums = vec![
        Checksum {
            algorithm: "SHA1",
            checksum_value: file.sha1.hex(),
        },
        Checksum {
            algorithm: "SHA256",
            checksum_value: file.sha256.hex(),
        },
    ];
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
