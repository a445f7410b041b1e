//! The SBOM to render: what it describes (a model or an image), when it was made, and its
//! serial number. The CycloneDX and SPDX renderers read this and the descriptions.

use std::time::SystemTime;

use super::image::ImageDescription;
use super::model::ModelDescription;

/// What an SBOM describes.
#[derive(Clone, Debug)]
pub enum Subject {
    Model(ModelDescription),
    /// A container image or OCI artifact, with the model it may hold.
    Image(Box<ImageDescription>),
}

impl Subject {
    /// The name and version the document is named after.
    pub fn name_and_version(&self) -> (&str, Option<&str>) {
        match self {
            Subject::Model(model) => (&model.name, model.version.as_deref()),
            Subject::Image(image) => (&image.name, Some(&image.version)),
        }
    }
}

/// An SBOM to render: the subject, when it was made, and how its serial number is chosen.
#[derive(Clone, Debug)]
pub struct Sbom {
    pub subject: Subject,
    pub created: Created,
}

/// The moment an SBOM is made.
#[derive(Clone, Copy, Debug)]
pub enum Created {
    /// Now, with a random serial number.
    Now(SystemTime),
    /// `SOURCE_DATE_EPOCH`: this time, and serial numbers derived from the content, so the
    /// same input gives the same bytes.
    Reproducible(SystemTime),
}

impl Created {
    pub fn time(self) -> SystemTime {
        match self {
            Created::Now(t) | Created::Reproducible(t) => t,
        }
    }

    /// RFC 3339 in UTC, to the second.
    pub fn timestamp(self) -> String {
        humantime::format_rfc3339_seconds(self.time()).to_string()
    }
}

/// Namespace of vouch's name-based (v5) UUIDs.
const UUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5c0b_7a61_4d0e_4e7e_9b55_8f0c_2a1d_6e33);

impl Sbom {
    /// A unique id for this document: random, or under `SOURCE_DATE_EPOCH` derived from
    /// everything the document says (`format` tells the two SBOM formats apart).
    pub fn serial(&self, format: &str) -> uuid::Uuid {
        match self.created {
            Created::Now(_) => uuid::Uuid::new_v4(),
            Created::Reproducible(_) => {
                let mut name = format!("{format}\n{}\n", self.created.timestamp());
                match &self.subject {
                    Subject::Model(model) => model_fingerprint(model, &mut name),
                    Subject::Image(image) => {
                        name.push_str(&format!(
                            "{}\n{}\n{}\n{}\n{}\n{}\n",
                            image.name,
                            image.version,
                            image.purl,
                            image.reference,
                            image.root_digest,
                            image.manifest.digest
                        ));
                        for blob in std::iter::once(&image.config).chain(&image.layers) {
                            name.push_str(&format!(
                                "{} {} {:?} {:?}\n",
                                blob.digest, blob.media_type, blob.title, blob.blake3
                            ));
                        }
                        if let Some(model) = &image.model {
                            model_fingerprint(model, &mut name);
                        }
                    }
                }
                uuid::Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes())
            }
        }
    }
}

/// Everything a model description says, for a serial number derived from the content.
fn model_fingerprint(model: &ModelDescription, out: &mut String) {
    out.push_str(&format!(
        "{}\n{:?}\n{:?}\n{}\n",
        model.name, model.version, model.purl, model.root_digest
    ));
    for file in &model.files {
        out.push_str(&format!(
            "{} {} {:?}\n",
            file.name, file.sha256, file.blake3
        ));
    }
}
