//! What an SBOM says about a container image, or a model stored as an OCI artifact: the
//! image is read through [`oci::inspect`], so no blob is described that did not match its
//! descriptor while it was read.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{DescribeOptions, DescribedFile, ModelDescription};
use super::purl::{self, layout_name};
use crate::error::Result;
use crate::hash::{Algorithm, Digest, Engine};
use crate::model::oms;
use crate::model::paths::{compare_names, IgnoreSet};
use crate::oci::document::{Descriptor, Platform};
use crate::oci::{
    self, titled_layers, Connection, ImageRef, InspectedBlob, InspectedImage, Inspection,
    ModelRoot, Part, RootFile, TarContent, TarFile, TitleProblem, TitledLayers,
};
use crate::report::Report;

/// A container image or OCI artifact: its identity, its manifest, configuration and
/// layers, and the model it holds when its layers are files named by their titles.
#[derive(Clone, Debug)]
pub struct ImageDescription {
    /// `HOST[:PORT]/REPOSITORY` for an image in a registry, the directory's name for an
    /// image layout; or `--name`.
    pub name: String,
    /// `--version`, else the tag, else the digest the reference resolves to.
    pub version: String,
    /// `pkg:oci/NAME@DIGEST?…`, or `--purl`.
    pub purl: String,
    /// The reference as given.
    pub reference: String,
    /// The digest of what the reference resolves to (the index of a multi-platform image).
    pub root_digest: Digest,
    /// The image manifest described: digest, size, media type, and the platform it was
    /// chosen for when it came from an index.
    pub manifest: Descriptor,
    pub config: DescribedBlob,
    pub layers: Vec<DescribedBlob>,
    /// The model an artifact holds: its files are the layers with a title annotation and
    /// the files of its ModelPack tar layers.
    pub model: Option<ModelDescription>,
}

/// A configuration or layer blob, with digests of the bytes read.
#[derive(Clone, Debug)]
pub struct DescribedBlob {
    /// The digest its descriptor names it by (sha256 or sha512).
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub sha256: Digest,
    pub sha1: Digest,
    pub blake3: Option<Digest>,
    /// The file name a model artifact's layer carries (`org.opencontainers.image.title`).
    pub title: Option<String>,
}

/// What describing an image came to.
#[derive(Debug)]
pub enum ImageOutcome {
    /// Every blob matched its descriptor: the description, and warnings for the user.
    Described {
        image: Box<ImageDescription>,
        warnings: Vec<String>,
    },
    /// A blob (or manifest) did not match or could not be read: no SBOM may be made, and
    /// the report names what failed.
    Refused(Report),
}

/// Reads the image `reference` names (through an index, the manifest for `platform`, by
/// default this machine's) and describes it, checking every blob while hashing it. With
/// `model_root`, a ModelCar image: its model is the files under that directory.
pub fn describe_image(
    reference: &ImageRef,
    connection: &Connection,
    platform: Option<Platform>,
    model_root: Option<&ModelRoot>,
    options: &DescribeOptions,
    engine: &Engine,
) -> Result<ImageOutcome> {
    let mut digests = vec![Algorithm::Sha256, Algorithm::Sha1];
    if options.blake3 {
        digests.push(Algorithm::Blake3);
    }
    let (inspected, mut warnings) = match oci::inspect(
        reference, connection, platform, model_root, &digests, engine,
    )? {
        Inspection::Verified { image, warnings } => (image, warnings),
        Inspection::Failed(report) => return Ok(ImageOutcome::Refused(report)),
    };
    let InspectedImage {
        root_digest,
        manifest,
        config,
        layers,
        model_files,
    } = *inspected;
    let titled = titled_layers(
        &config.descriptor,
        layers.iter().map(|layer| &layer.descriptor),
        &IgnoreSet::default(),
    );
    let tars: Vec<(usize, TarContent)> = layers
        .iter()
        .enumerate()
        .filter_map(|(position, layer)| Some((position, layer.tar.clone()?)))
        .collect();
    let layers: Vec<DescribedBlob> = layers.into_iter().map(described_blob).collect();
    let config = described_blob(config);
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| image_name(reference));
    let version = options
        .version
        .clone()
        .or_else(|| reference.tag().map(str::to_string))
        .unwrap_or_else(|| root_digest.prefixed());
    let purl = options.purl.clone().unwrap_or_else(|| {
        purl::oci(
            reference,
            &root_digest,
            manifest.platform.as_ref().map(|p| p.architecture.as_str()),
        )
    });
    let model = match model_files {
        Some(files) => Some(modelcar_model(&name, &version, files)),
        None => artifact_model(
            &name,
            &version,
            titled,
            tars,
            &config,
            &layers,
            &mut warnings,
        ),
    };
    let image = ImageDescription {
        name,
        version,
        purl,
        reference: reference.to_string(),
        root_digest,
        manifest,
        config,
        layers,
        model,
    };
    Ok(ImageOutcome::Described {
        image: Box::new(image),
        warnings,
    })
}

fn described_blob(blob: InspectedBlob) -> DescribedBlob {
    let digest = |algorithm| blob.digest(algorithm).cloned();
    let computed = "oci::inspect computes every digest it is asked for";
    DescribedBlob {
        sha256: digest(Algorithm::Sha256).expect(computed),
        sha1: digest(Algorithm::Sha1).expect(computed),
        blake3: digest(Algorithm::Blake3),
        title: blob.descriptor.title().map(str::to_string),
        digest: blob.descriptor.digest,
        media_type: blob.descriptor.media_type,
        size: blob.descriptor.size,
    }
}

/// `HOST[:PORT]/REPOSITORY`, or the name of an image layout's directory.
fn image_name(reference: &ImageRef) -> String {
    match reference {
        ImageRef::Registry(image) => format!("{}/{}", image.host, image.repository),
        ImageRef::Layout(layout) => layout_name(&layout.dir),
    }
}

/// The model an artifact holds, when its layers carry titles or are ModelPack tar layers:
/// each titled layer is a file of it, and so is each regular file of a tar layer (a name
/// held twice names no file, and is warned of); its OMS root digest is the one `vouch
/// digest` prints for the same files on disk.
fn artifact_model(
    name: &str,
    version: &str,
    mut titled: TitledLayers,
    tars: Vec<(usize, TarContent)>,
    config: &DescribedBlob,
    layers: &[DescribedBlob],
    warnings: &mut Vec<String>,
) -> Option<ModelDescription> {
    let from_tar = tar_files(&mut titled, tars, layers, warnings);
    if titled.files.is_empty() && from_tar.is_empty() {
        return None;
    }
    let blob = |part: Part| match part {
        Part::Config => config,
        Part::Layer(position) => &layers[position],
    };
    for problem in titled.problems {
        let layer = |part: Part| format!("{part} {}", blob(part).digest);
        warnings.push(match problem {
            TitleProblem::Untitled(position) => format!(
                "{} has no title annotation: it is not listed as a file of the model",
                layer(Part::Layer(position))
            ),
            TitleProblem::Unsafe {
                part, title, reason, ..
            } => format!(
                "{} has the unsafe title '{title}' ({reason}): it is not listed as a file of the model",
                layer(part)
            ),
            TitleProblem::Disagree {
                part,
                names: [(first_key, first), (other_key, other)],
            } => format!(
                "{} is named '{first}' by {first_key} but '{other}' by {other_key}: it is not listed as a file of the model",
                layer(part)
            ),
            TitleProblem::NotEmpty(part) => format!(
                "{} is typed as the empty descriptor but does not hold {{}}: it is not listed as a file of the model",
                layer(part)
            ),
            TitleProblem::Unpacked { part, title } => format!(
                "{} ('{title}') is a directory oras unpacks: its files are not listed",
                layer(part)
            ),
            TitleProblem::Ambiguous(title) => format!(
                "more than one layer carries the title '{title}': no file of the model is listed under it"
            ),
        });
    }
    let files: Vec<DescribedFile> = titled
        .files
        .into_iter()
        .map(|(file_name, part)| {
            let layer = blob(part);
            DescribedFile {
                name: file_name,
                size: layer.size,
                sha1: layer.sha1.clone(),
                sha256: layer.sha256.clone(),
                blake3: layer.blake3.clone(),
                facts: None,
                external_data_of: None,
            }
        })
        .chain(from_tar.into_iter().map(|file| {
            DescribedFile {
                size: file.size,
                sha1: file
                    .digest(Algorithm::Sha1)
                    .expect("tar files are hashed by every algorithm asked for")
                    .clone(),
                blake3: file.digest(Algorithm::Blake3).cloned(),
                sha256: file.sha256,
                name: file.name,
                facts: None,
                external_data_of: None,
            }
        }))
        .collect();
    Some(model_description(name, version, files))
}

/// The model of a ModelCar image: the files under its model root (a layer's title names
/// no file of it there).
fn modelcar_model(
    name: &str,
    version: &str,
    files: BTreeMap<String, RootFile>,
) -> ModelDescription {
    let files: Vec<DescribedFile> = files
        .into_iter()
        .map(|(name, file)| DescribedFile {
            size: file.size,
            sha1: file
                .digest(Algorithm::Sha1)
                .expect("files are hashed by every algorithm asked for")
                .clone(),
            blake3: file.digest(Algorithm::Blake3).cloned(),
            sha256: file.sha256,
            name,
            facts: None,
            external_data_of: None,
        })
        .collect();
    model_description(name, version, files)
}

fn model_description(name: &str, version: &str, mut files: Vec<DescribedFile>) -> ModelDescription {
    files.sort_by(|a, b| compare_names(&a.name, &b.name));
    ModelDescription {
        name: name.to_string(),
        version: Some(version.to_string()),
        purl: None,
        root_digest: oms::root_digest(files.iter().map(|f| &f.sha256)),
        files,
        parameters: None,
    }
}

/// The files of an artifact's tar layers that name one file each: an entry that is no
/// safe regular file, or a name also held by a titled layer or another entry, is left out
/// (a titled layer it collides with too) with a warning.
fn tar_files(
    titled: &mut TitledLayers,
    tars: Vec<(usize, TarContent)>,
    layers: &[DescribedBlob],
    warnings: &mut Vec<String>,
) -> Vec<TarFile> {
    let mut files: BTreeMap<String, TarFile> = BTreeMap::new();
    let mut ambiguous = BTreeSet::new();
    for (position, content) in tars {
        let layer = format!("layer {} {}", position + 1, layers[position].digest);
        for (written, reason) in content.problems {
            warnings.push(format!(
                "the entry '{written}' of the tar {layer} is not listed as a file of the model: {reason}"
            ));
        }
        for file in content.files {
            if ambiguous.contains(&file.name) {
                continue;
            }
            if titled.files.remove(&file.name).is_some() || files.remove(&file.name).is_some() {
                warnings.push(format!(
                    "more than one layer holds the file '{}' (the last one the tar {layer}): no file of the model is listed under it",
                    file.name
                ));
                ambiguous.insert(file.name);
                continue;
            }
            files.insert(file.name.clone(), file);
        }
    }
    files.into_values().collect()
}
