//! Container images and model artifacts in OCI registries and image layouts.
//!
//! [`verify`] resolves a reference to its manifest (through an index to the chosen
//! platforms), checks the manifest's digest against a pin, then streams the configuration
//! and every layer, checking each blob's digest and size against its descriptor, with
//! bounded concurrency and never a whole blob in memory. On request it also checks each
//! layer's diff_id, and compares the files of a model artifact with the approved files
//! ([`ApprovedFiles`]). [`inspect`] reads one image the same way to
//! describe it (an SBOM), returning it only when every blob matched. Everything found becomes
//! a [`Report`]; only what stops the check early (a malformed reference, an unreachable
//! registry) is an [`Error`].

pub mod auth;
mod blob;
pub mod document;
mod files;
mod imagelayer;
mod layout;
mod modelcar;
pub mod push;
pub mod reference;
pub mod referrers;
mod registry;
mod store;
mod tarheaders;
mod tarlayer;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::{Error, Hint, Result};
use crate::hash::{Algorithm, Digest, Engine};
use crate::model::paths::IgnoreSet;
use crate::report::{Report, Status, Subject, Verdict};
use auth::Credentials;
use blob::{Found, Wanted};
use document::{Descriptor, Document, ImageManifest, Index, Platform};
use store::{Sink, Store, Unavailable};

pub use files::{titled_layers, ApprovedFiles, Part, TitleProblem, TitledLayers};
pub use imagelayer::ModelRoot;
pub use modelcar::RootFile;
pub use reference::ImageRef;
pub use tarlayer::{TarContent, TarFile};

/// How to reach a registry (unused for image layouts).
#[derive(Clone, Debug)]
pub struct Connection {
    /// Credentials given explicitly; without them, Docker's `config.json` is consulted.
    pub credentials: Option<Credentials>,
    /// Speak plain HTTP to a registry that is not on this machine.
    pub insecure: bool,
    /// Connect and read timeout of each request.
    pub timeout: Duration,
    /// How many more times to try a request that failed for a reason that may pass.
    pub retries: u32,
    /// The slowest transfer accepted, in bytes per second: each request and each blob must
    /// be done within `timeout` plus its size at this rate.
    pub min_rate: u64,
}

/// The default of `--min-rate` and `min_rate`: 1 MiB/s.
pub const DEFAULT_MIN_RATE: u64 = 1 << 20;

/// Which manifests of an index to verify.
#[derive(Clone, Debug)]
pub enum Platforms {
    /// This machine's platform (or the only manifest of an index that has one).
    Host,
    Only(Platform),
    All,
}

/// What to verify an image against, beyond its own descriptors.
#[derive(Clone, Debug)]
pub struct Options {
    pub platforms: Platforms,
    /// The approved digest of what the reference resolves to (a moved tag fails).
    pub pinned: Option<Digest>,
    /// Also decompress each layer and check it against the configuration's diff_ids.
    pub diff_ids: bool,
    /// Which blobs to read.
    pub reading: Reading,
    /// A ModelCar image: the model is the files under this directory of the image's
    /// filesystem, once its layers are applied (`--model-root`).
    pub model_root: Option<ModelRoot>,
}

/// Which blobs a check reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Every blob, against its descriptor.
    Every,
    /// None (`--no-pull`): the approved files are compared with the digests the verified
    /// manifest gives its raw layers, which are the files' SHA-256 digests.
    None,
    /// Only those whose descriptor does not say what the check needs (ModelPack tar
    /// layers, layers not addressed by SHA-256): for writing a manifest of an artifact.
    Undescribed,
}

/// Indexes nested deeper than this are refused (a cycle could not end otherwise).
const MAX_NESTING: usize = 8;

/// Verifies the image or artifact `reference` names; with `approved`, it is a model
/// artifact whose layers hold those files. The report's duration is the caller's to set.
/// Also returns the descriptor of what the reference resolved to (digest, size and the
/// media type the document gives itself, else the one it was served as), when it was
/// found and parsed: what a signature of it must name.
pub fn verify(
    reference: &ImageRef,
    connection: &Connection,
    options: &Options,
    approved: Option<&ApprovedFiles>,
    engine: &Engine,
) -> Result<(Report, Option<Descriptor>)> {
    if options.model_root.is_some() && approved.is_none() {
        return Err(Error::Usage(
            "--model-root selects the files of an image to compare with an approval: give --manifest or --signature".into(),
        ));
    }
    // The files of a model artifact are compared by the SHA-256 of the bytes read.
    let digests = match approved {
        Some(_) => vec![Algorithm::Sha256],
        None => Vec::new(),
    };
    let Checked {
        mut report,
        resolved,
        plan,
        results,
        ..
    } = check(reference, connection, options, approved, &digests, engine)?;
    if reference.digest().is_none() && options.pinned.is_none() {
        if let Some(tag) = reference.tag() {
            report.warnings.push(format!(
                "the tag '{tag}' is not pinned: it was verified as it is now; pin its digest (`vouch oci digest` prints it)"
            ));
        }
    }
    let several = plan.images.len() > 1;
    for image in &plan.images {
        let prefix = match (&image.label, several) {
            (Some(label), true) => format!("{label} "),
            _ => String::new(),
        };
        if options.diff_ids {
            check_diff_ids(image, &plan.blobs, &results, &prefix, &mut report);
        }
        match (approved, &options.model_root) {
            (Some(approved), Some(root)) => {
                let (_, layers) = image.parts(&results);
                let (subjects, note) = modelcar::compare(approved, root, &layers, &prefix);
                report.subjects.extend(subjects);
                report.warnings.extend(note);
            }
            (Some(approved), None) => {
                let (config, layers) = image.parts(&results);
                report
                    .subjects
                    .extend(files::compare(approved, &config, &layers, &prefix));
            }
            (None, _) => {}
        }
    }
    Ok((report, resolved))
}

/// The files of a model artifact, and the report of reading what had to be read of it.
#[derive(Debug)]
pub struct HeldFiles {
    pub report: Report,
    /// Each file's name and SHA-256.
    pub files: Vec<(String, Digest)>,
}

/// The files of the model artifact `reference` names, each with its SHA-256, reading only
/// the blobs whose descriptors cannot tell (ModelPack tar layers; a raw layer's digest is
/// its file's SHA-256): what `vouch manifest REF` states; with `model_root`, the files
/// under that directory of a ModelCar image (every layer read). `Err` holds the report of an
/// artifact whose files cannot all be named faithfully, or whose manifest or read blobs
/// do not match their descriptors.
pub fn held_files(
    reference: &ImageRef,
    connection: &Connection,
    platforms: Platforms,
    model_root: Option<&ModelRoot>,
    ignore: &IgnoreSet,
    engine: &Engine,
) -> Result<std::result::Result<HeldFiles, Report>> {
    let none = ApprovedFiles::new(Vec::new(), ignore.clone(), "its layers' names".into());
    let options = Options {
        platforms,
        pinned: None,
        diff_ids: false,
        reading: Reading::Undescribed,
        model_root: model_root.cloned(),
    };
    let Checked {
        mut report,
        plan,
        results,
        ..
    } = check(
        reference,
        connection,
        &options,
        Some(&none),
        &[Algorithm::Sha256],
        engine,
    )?;
    let image = match plan.images.as_slice() {
        [image] => image,
        [] => return Ok(Err(report)),
        several => {
            return Err(Error::Usage(format!(
                "{reference} resolves to {} manifests; choose the platform whose model to describe",
                several.len()
            )))
        }
    };
    let (config, layers) = image.parts(&results);
    let held = match model_root {
        Some(root) => {
            let (subjects, note) = modelcar::compare(&none, root, &layers, "");
            report.warnings.extend(note);
            files::extra_files(subjects)
        }
        None => files::held(&config, &layers, ignore),
    };
    match held {
        Ok(files) if report.status() == Status::Verified => Ok(Ok(HeldFiles { report, files })),
        Ok(_) => Ok(Err(report)),
        Err(problems) => {
            report.subjects.extend(problems);
            Ok(Err(report))
        }
    }
}

/// An image whose manifest and blobs all matched their descriptors, read for describing
/// it (an SBOM).
#[derive(Debug)]
pub struct InspectedImage {
    /// The digest of what the reference resolves to (the index of a multi-platform image).
    pub root_digest: Digest,
    /// The image manifest: its digest, size and media type, and its platform when it was
    /// chosen from an index.
    pub manifest: Descriptor,
    pub config: InspectedBlob,
    pub layers: Vec<InspectedBlob>,
    /// A ModelCar image's files under the model root once its layers are applied, by name
    /// relative to it.
    pub model_files: Option<std::collections::BTreeMap<String, RootFile>>,
}

/// A blob as its descriptor names it, with the digests computed of the bytes read.
#[derive(Debug)]
pub struct InspectedBlob {
    pub descriptor: Descriptor,
    /// The descriptor's own algorithm and each one asked for.
    pub digests: Vec<Digest>,
    /// The files of a ModelPack tar layer, each hashed by the algorithms asked for.
    pub tar: Option<tarlayer::TarContent>,
}

impl InspectedBlob {
    pub fn digest(&self, algorithm: Algorithm) -> Option<&Digest> {
        self.digests.iter().find(|d| d.algorithm == algorithm)
    }
}

/// What reading an image for its description found.
#[derive(Debug)]
pub enum Inspection {
    /// Every blob matched its descriptor: the image, and things the user should know.
    Verified {
        image: Box<InspectedImage>,
        warnings: Vec<String>,
    },
    /// Something did not match or could not be read: the report names it.
    Failed(Report),
}

/// Reads the one image `reference` names (through an index, the manifest for `platform`,
/// by default this machine's), checking every blob against its descriptor while computing
/// `digests` of it (and of each file under `model_root`, for a ModelCar image). Only an
/// image that verified completely is returned.
pub fn inspect(
    reference: &ImageRef,
    connection: &Connection,
    platform: Option<Platform>,
    model_root: Option<&ModelRoot>,
    digests: &[Algorithm],
    engine: &Engine,
) -> Result<Inspection> {
    let options = Options {
        platforms: platform.map_or(Platforms::Host, Platforms::Only),
        pinned: None,
        diff_ids: false,
        reading: Reading::Every,
        model_root: model_root.cloned(),
    };
    let Checked {
        mut report,
        root_digest,
        mut plan,
        results,
        ..
    } = check(reference, connection, &options, None, digests, engine)?;
    if report.status() != Status::Verified {
        return Ok(Inspection::Failed(report));
    }
    let (Some(root_digest), Some(image)) = (root_digest, plan.images.pop()) else {
        report.subjects.push(
            Subject::new("manifest", Verdict::Missing).message("no image manifest was found"),
        );
        return Ok(Inspection::Failed(report));
    };
    // A tar layer that is no tar archive holds no files that could be described: fail
    // closed rather than describe the model without them.
    for (blob, result) in plan.blobs.iter().zip(&results) {
        if let Ok(Found {
            tar: Some(Err(problem)),
            ..
        }) = result
        {
            report.subjects.push(
                Subject::new(blob.name.clone(), Verdict::Rejected)
                    .actual(blob.descriptor.digest.prefixed())
                    .message(format!("is typed as a ModelPack tar layer, but {problem}")),
            );
        }
    }
    if report.status() != Status::Verified {
        return Ok(Inspection::Failed(report));
    }
    let model_files = match model_root {
        None => None,
        Some(root) => {
            let (_, layers) = image.parts(&results);
            match modelcar::tree(root, &layers, "") {
                Ok((files, outside)) => {
                    report
                        .warnings
                        .extend(modelcar::outside_note(root, outside));
                    Some(files)
                }
                Err(problems) => {
                    report.subjects.extend(problems);
                    return Ok(Inspection::Failed(report));
                }
            }
        }
    };
    // A blob may serve as more than one layer, so its digests are copied, not taken; each
    // use keeps its own descriptor (the plan keeps the first one, whose title may differ).
    let take = |i: usize, descriptor: &Descriptor| {
        let found = results[i].as_ref().ok();
        InspectedBlob {
            descriptor: descriptor.clone(),
            digests: found.map(|f| f.digests.clone()).unwrap_or_default(),
            tar: found.and_then(|f| f.tar.as_ref()?.as_ref().ok().cloned()),
        }
    };
    let inspected = InspectedImage {
        root_digest,
        manifest: image.descriptor,
        config: take(image.config, &image.manifest.config),
        layers: image
            .manifest
            .layers
            .iter()
            .zip(&image.layers)
            .map(|(descriptor, &i)| take(i, descriptor))
            .collect(),
        model_files,
    };
    Ok(Inspection::Verified {
        image: Box::new(inspected),
        warnings: report.warnings,
    })
}

/// What reading an image found: the report so far (the manifests and every blob checked
/// against its descriptor), the plan it followed, and each planned blob's result.
struct Checked {
    report: Report,
    /// The digest of what the reference resolves to, when it was found.
    root_digest: Option<Digest>,
    /// Its descriptor, with the media type it has, when it was found and parsed.
    resolved: Option<Descriptor>,
    plan: Plan,
    results: Vec<Result<Found, Unavailable>>,
}

/// Resolves `reference`, checks what it resolves to against the pin, and reads every blob
/// of the chosen images, computing `digests` of each beyond its descriptor's own.
fn check(
    reference: &ImageRef,
    connection: &Connection,
    options: &Options,
    approved: Option<&ApprovedFiles>,
    digests: &[Algorithm],
    engine: &Engine,
) -> Result<Checked> {
    let pin = pin(reference, options.pinned.as_ref())?;
    let store = open(reference, connection)?;
    let mut report = Report {
        target: reference.to_string(),
        approval: approval(pin.as_ref(), approved, options),
        warnings: store.warnings(),
        ..Report::default()
    };
    let Some((document, descriptor, media_type)) =
        resolve_root(store.as_ref(), reference, pin.as_ref(), &mut report)?
    else {
        return Ok(Checked {
            report,
            root_digest: None,
            resolved: None,
            plan: Plan::default(),
            results: Vec::new(),
        });
    };
    if let (Document::Manifest(_), Platforms::Only(_) | Platforms::All) =
        (&document, &options.platforms)
    {
        report.warnings.push(
            "the reference names a single manifest, not an index: a platform choice has no effect"
                .to_string(),
        );
    }
    let mut walk = Walk {
        store: store.as_ref(),
        options,
        digests,
        plan: Plan::default(),
        report: &mut report,
    };
    let root_digest = Some(descriptor.digest.clone());
    let resolved = Some(Descriptor {
        media_type,
        ..descriptor.clone()
    });
    walk.document(document, descriptor, None, 0);
    let plan = walk.plan;

    let files_approved = approved.is_some();
    let to_read: Vec<usize> = match options.reading {
        Reading::Every => (0..plan.blobs.len()).collect(),
        Reading::None => {
            if let Some((blob, why)) = plan
                .blobs
                .iter()
                .find_map(|b| described(b, files_approved).err().map(|why| (b, why)))
            {
                return Err(Error::Usage(format!(
                    "--no-pull cannot check {}: {why}; verify without --no-pull",
                    blob.name
                )));
            }
            report.warnings.push(format!(
                "--no-pull: no blob was read, only the manifests ({} bytes transferred); the files were compared with the digests the manifest gives its layers, which registries and pullers check on transfer, but a blob corrupted in the registry's store is caught only by a verify that reads it",
                report.bytes_hashed
            ));
            Vec::new()
        }
        Reading::Undescribed => (0..plan.blobs.len())
            .filter(|&i| described(&plan.blobs[i], files_approved).is_err())
            .collect(),
    };
    let read = check_blobs(store.as_ref(), &plan.blobs, &to_read, engine);
    let mut results: Vec<Option<Result<Found, Unavailable>>> =
        (0..plan.blobs.len()).map(|_| None).collect();
    for (&i, result) in to_read.iter().zip(read) {
        report.bytes_hashed += result.as_ref().map_or(0, |f| f.size);
        report.subjects.push(blob_subject(&plan.blobs[i], &result));
        results[i] = Some(result);
    }
    let results = results
        .into_iter()
        .zip(&plan.blobs)
        .map(|(result, blob)| {
            result.unwrap_or_else(|| {
                Ok(described(blob, files_approved).expect("only described blobs go unread"))
            })
        })
        .collect();
    Ok(Checked {
        report,
        root_digest,
        resolved,
        plan,
        results,
    })
}

/// Resolves `reference` to its manifest or index and checks it against what the reference
/// itself records: the report `vouch oci digest` prints the digest of.
pub fn digest(reference: &ImageRef, connection: &Connection) -> Result<Report> {
    let started = Instant::now();
    let store = open(reference, connection)?;
    let mut report = Report {
        target: reference.to_string(),
        warnings: store.warnings(),
        ..Report::default()
    };
    let pin = reference.digest().cloned();
    resolve_root(store.as_ref(), reference, pin.as_ref(), &mut report)?;
    report.duration = started.elapsed();
    Ok(report)
}

/// The pin: `--digest`, or the digest the reference names; they must agree.
fn pin(reference: &ImageRef, pinned: Option<&Digest>) -> Result<Option<Digest>> {
    match (pinned, reference.digest()) {
        (Some(pinned), Some(named)) if pinned != named => Err(Error::Usage(format!(
            "the pinned digest {pinned} differs from the digest the reference names ({named})"
        ))
        .with_hint(Hint::OnePin)),
        (pinned, named) => Ok(pinned.or(named).cloned()),
    }
}

fn approval(pin: Option<&Digest>, approved: Option<&ApprovedFiles>, options: &Options) -> String {
    let mut parts = Vec::new();
    if let Some(pin) = pin {
        parts.push(format!("pinned digest {pin}"));
    }
    match (approved, &options.model_root) {
        (Some(approved), Some(root)) => parts.push(format!(
            "{} (the files under {root} of the image's filesystem)",
            approved.description
        )),
        (Some(approved), None) => parts.push(approved.description.clone()),
        (None, _) => {}
    }
    parts.push(if options.reading == Reading::None {
        "descriptor digests (no blob read)".to_string()
    } else if options.diff_ids {
        "descriptor digests and diff_ids".to_string()
    } else {
        "descriptor digests".to_string()
    });
    parts.join(", ")
}

fn open(reference: &ImageRef, connection: &Connection) -> Result<Box<dyn Store>> {
    Ok(open_sink(reference, connection, registry::Access::Pull)?)
}

/// The store `reference` names, reached for `access` (a layout is always writable).
fn open_sink(
    reference: &ImageRef,
    connection: &Connection,
    access: registry::Access,
) -> Result<Box<dyn Sink>> {
    match reference {
        ImageRef::Layout(layout) => Ok(Box::new(layout::Layout::open(layout)?)),
        ImageRef::Registry(image) => {
            let (credentials, source, warnings) = match &connection.credentials {
                Some(credentials) => (
                    credentials.clone(),
                    Some("the given username and password".to_string()),
                    Vec::new(),
                ),
                None => match auth::docker_config_path() {
                    Some(path) => {
                        let found = auth::from_docker_config(&path, &image.host)?;
                        (found.credentials, found.source, found.warnings)
                    }
                    None => (Credentials::Anonymous, None, Vec::new()),
                },
            };
            Ok(Box::new(registry::Registry::connect(
                image,
                connection,
                credentials,
                source,
                warnings,
                access,
            )?))
        }
    }
}

/// Fetches what the reference names, adds its subject to `report` and sets the report's
/// root digest. Returns the parsed document, with a descriptor of it (as it was served) and
/// the media type it has (its own `mediaType`, else the one it was served as), when there
/// is one to go on with.
fn resolve_root(
    store: &dyn Store,
    reference: &ImageRef,
    pin: Option<&Digest>,
    report: &mut Report,
) -> Result<Option<(Document, Descriptor, String)>> {
    let root = match store.root() {
        Ok(root) => root,
        Err(Unavailable::Failed(message)) => {
            let error = Error::Remote {
                target: reference.to_string(),
                message,
            };
            return Err(match store.hint() {
                Some(hint) => error.with_hint(hint),
                None => error,
            });
        }
        Err(unavailable) => {
            let expected = pin.map(Digest::prefixed);
            report
                .subjects
                .push(unavailable_subject("manifest", expected, &unavailable));
            return Ok(None);
        }
    };
    let algorithm = pin
        .or(root.recorded.as_ref().map(|r| &r.digest))
        .map_or(Algorithm::Sha256, |d| d.algorithm);
    let actual = algorithm.digest(&root.bytes);
    report.root_digest = Some(actual.prefixed());
    report.bytes_hashed += root.bytes.len() as u64;
    let hashes_to = |d: &Digest| {
        if d.algorithm == algorithm {
            actual == *d
        } else {
            d.algorithm.digest(&root.bytes) == *d
        }
    };
    let mut problems = Vec::new();
    if let Some(pin) = pin {
        if !hashes_to(pin) {
            problems.push(match reference.tag() {
                Some(tag) => format!(
                    "the tag '{tag}' now points to {actual}, not to the pinned {pin}: it was moved"
                ),
                None => format!("the content hashes to {actual}, not to the pinned {pin}"),
            });
        }
    }
    if let Some(recorded) = &root.recorded {
        if !hashes_to(&recorded.digest) {
            problems.push(format!(
                "the content does not hash to {}, the digest {} records",
                recorded.digest, recorded.source
            ));
        }
        if let Some(size) = recorded.size.filter(|&s| s != root.bytes.len() as u64) {
            problems.push(format!(
                "{} records {size} bytes, the content has {}",
                recorded.source,
                root.bytes.len()
            ));
        }
    }
    let parsed = Document::parse(&root.bytes, root.media_type.as_deref());
    // A parsed document's own mediaType agrees with the one it was served as.
    let own_type = serde_json::from_slice::<serde_json::Value>(&root.bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string));
    let media_type = own_type
        .or_else(|| root.media_type.clone())
        .unwrap_or_default();
    let kind = parsed.as_ref().map_or("manifest", Document::kind);
    let expected = pin.or(root.recorded.as_ref().map(|r| &r.digest));
    let mut subject = Subject::new(kind, Verdict::Ok).actual(actual.prefixed());
    if let Some(expected) = expected {
        subject = subject.expected(expected.prefixed());
    }
    if !problems.is_empty() {
        subject.verdict = Verdict::Changed;
        subject = subject.message(problems.join("; "));
    }
    let descriptor = Descriptor {
        media_type: root.media_type.unwrap_or_default(),
        digest: actual,
        size: root.bytes.len() as u64,
        annotations: Default::default(),
        platform: None,
        artifact_type: None,
    };
    let document = match parsed {
        Ok(document) => Some((document, descriptor, media_type)),
        Err(e) => {
            if subject.verdict == Verdict::Ok {
                subject.verdict = Verdict::Rejected;
            }
            subject = subject.message(e.to_string());
            None
        }
    };
    report.subjects.push(subject);
    Ok(document)
}

/// The subject for something that could not be checked.
fn unavailable_subject(
    name: impl Into<String>,
    expected: Option<String>,
    unavailable: &Unavailable,
) -> Subject {
    let name = name.into();
    let subject = match unavailable {
        Unavailable::Missing(message) => Subject::new(name, Verdict::Missing).message(message),
        Unavailable::Changed { expected, actual } => Subject::new(name, Verdict::Changed)
            .expected(expected.clone())
            .actual(actual.clone())
            .message("the store served content that does not match this digest"),
        Unavailable::Refused(message) => Subject::new(name, Verdict::Rejected).message(message),
        Unavailable::Failed(message) => Subject::new(name, Verdict::Unreadable).message(message),
    };
    match (expected, &subject.expected) {
        (Some(expected), None) => subject.expected(expected),
        _ => subject,
    }
}

/// A blob to read, with what to find out about it.
struct PlannedBlob {
    descriptor: Descriptor,
    name: String,
    wanted: Wanted,
}

/// One image manifest: indexes into the plan's blobs.
struct PlannedImage {
    label: Option<String>,
    /// What the manifest was fetched as: the reference's root, or an index entry.
    descriptor: Descriptor,
    manifest: ImageManifest,
    config: usize,
    layers: Vec<usize>,
}

impl PlannedImage {
    /// The configuration and layers with what reading them found. The manifest's own
    /// descriptors: the plan keeps one per blob, and two layers with the same content (an
    /// empty `{}`, the configuration) carry different titles.
    fn parts<'a>(
        &'a self,
        results: &'a [Result<Found, Unavailable>],
    ) -> (files::Layer<'a>, Vec<files::Layer<'a>>) {
        let layers = self
            .manifest
            .layers
            .iter()
            .zip(&self.layers)
            .map(|(descriptor, &i)| files::Layer {
                descriptor,
                result: &results[i],
            })
            .collect();
        let config = files::Layer {
            descriptor: &self.manifest.config,
            result: &results[self.config],
        };
        (config, layers)
    }
}

#[derive(Default)]
struct Plan {
    blobs: Vec<PlannedBlob>,
    by_digest: HashMap<(Digest, u64), usize>,
    images: Vec<PlannedImage>,
}

impl Plan {
    /// Adds a blob, or merges what is wanted of it with an earlier use of the same blob.
    fn add(&mut self, descriptor: &Descriptor, name: String, mut wanted: Wanted) -> usize {
        let key = (descriptor.digest.clone(), descriptor.size);
        if let Some(&i) = self.by_digest.get(&key) {
            let known = &mut self.blobs[i].wanted;
            known.keep |= wanted.keep;
            known.diff_id |= wanted.diff_id;
            if known.model_root.is_none() {
                known.model_root = wanted.model_root;
            }
            for algorithm in wanted.algorithms {
                if !known.algorithms.contains(&algorithm) {
                    known.algorithms.push(algorithm);
                }
            }
            return i;
        }
        if !wanted.algorithms.contains(&descriptor.digest.algorithm) {
            wanted.algorithms.insert(0, descriptor.digest.algorithm);
        }
        self.blobs.push(PlannedBlob {
            descriptor: descriptor.clone(),
            name,
            wanted,
        });
        self.by_digest.insert(key, self.blobs.len() - 1);
        self.blobs.len() - 1
    }
}

/// Walks from the root through indexes to image manifests, planning their blobs.
struct Walk<'a> {
    store: &'a dyn Store,
    options: &'a Options,
    /// Digests to compute of every configuration and layer, beyond its descriptor's own.
    digests: &'a [Algorithm],
    plan: Plan,
    report: &'a mut Report,
}

impl Walk<'_> {
    fn document(
        &mut self,
        document: Document,
        descriptor: Descriptor,
        label: Option<String>,
        depth: usize,
    ) {
        match document {
            Document::Manifest(manifest) => self.image(manifest, descriptor, label),
            Document::Index(index) => self.index(&index, &descriptor.digest, label, depth),
        }
    }

    fn index(&mut self, index: &Index, digest: &Digest, label: Option<String>, depth: usize) {
        let prefix = label.as_ref().map(|l| format!("{l} ")).unwrap_or_default();
        if depth >= MAX_NESTING {
            self.report.subjects.push(
                Subject::new(format!("{prefix}index"), Verdict::Rejected)
                    .message(format!("indexes are nested more than {MAX_NESTING} deep")),
            );
            return;
        }
        let chosen = match self.choose(index) {
            Ok(chosen) => chosen,
            Err(Unchosen::Missing { wanted, message }) => {
                self.report.subjects.push(
                    Subject::new(format!("{prefix}manifest for {wanted}"), Verdict::Missing)
                        .message(message),
                );
                return;
            }
            Err(Unchosen::Ambiguous { wanted, message }) => {
                self.report.subjects.push(
                    Subject::new(format!("{prefix}index {digest} for {wanted}"), Verdict::Rejected)
                        .message(format!("{message}: the index names no one manifest for it, and vouch verifies none; name the manifest to verify by its digest (REF@sha256:…)")),
                );
                return;
            }
        };
        if let Platforms::All = self.options.platforms {
            for message in ambiguities(index) {
                self.report.warnings.push(format!(
                    "{prefix}index {digest}: {message}: the index names no one manifest for it (every entry was verified)"
                ));
            }
        }
        for (position, entry) in chosen {
            let shared =
                |other: &Descriptor| other.platform.is_some() && other.platform == entry.platform;
            let entry_label = match &entry.platform {
                // Two entries for one platform are told apart by position.
                Some(platform) if index.manifests.iter().filter(|m| shared(m)).count() > 1 => {
                    format!("{platform} (entry {})", position + 1)
                }
                Some(platform) => platform.to_string(),
                None => format!("entry {}", position + 1),
            };
            let child_label = match &label {
                Some(parent) => format!("{parent} {entry_label}"),
                None => entry_label,
            };
            if let Some(document) = self.child(entry, &child_label) {
                self.document(document, entry.clone(), Some(child_label), depth + 1);
            }
        }
    }

    /// The entries of an index to verify, with their positions; or why none is: the
    /// platform wanted, and that no entry serves it or that pullers could take more than
    /// one ([`document::select`]).
    fn choose<'i>(&self, index: &'i Index) -> Result<Vec<(usize, &'i Descriptor)>, Unchosen> {
        let entries = index.manifests.iter().enumerate();
        let (wanted, explicit) = match &self.options.platforms {
            Platforms::All => return Ok(entries.collect()),
            Platforms::Only(platform) => (platform.clone(), true),
            Platforms::Host => (Platform::host(), false),
        };
        let selection = select_in(index, &wanted);
        if let Some(only) = selection.unique() {
            return Ok(vec![(only, &index.manifests[only])]);
        }
        if selection.candidates.len() > 1 {
            return Err(Unchosen::Ambiguous {
                message: ambiguity(index, &wanted, &selection),
                wanted: wanted.to_string(),
            });
        }
        if let (false, [only]) = (explicit, index.manifests.as_slice()) {
            return Ok(vec![(0, only)]);
        }
        let offered: Vec<String> = index.manifests.iter().map(entry_platform).collect();
        let hint = if explicit {
            ""
        } else {
            "; choose one of them, or all platforms"
        };
        Err(Unchosen::Missing {
            wanted: wanted.to_string(),
            message: format!("the index offers {}{hint}", offered.join(", ")),
        })
    }

    /// Fetches a manifest an index points to and checks it against its descriptor.
    fn child(&mut self, entry: &Descriptor, label: &str) -> Option<Document> {
        let name = format!("{label} manifest {}", entry.digest);
        let expected = entry.digest.prefixed();
        let bytes = match self.store.manifest(entry) {
            Ok(bytes) => bytes,
            Err(unavailable) => {
                self.report
                    .subjects
                    .push(unavailable_subject(name, Some(expected), &unavailable));
                return None;
            }
        };
        self.report.bytes_hashed += bytes.len() as u64;
        let actual = entry.digest.algorithm.digest(&bytes);
        let mut subject = Subject::new(name, Verdict::Ok)
            .expected(expected)
            .actual(actual.prefixed());
        if actual != entry.digest {
            subject.verdict = Verdict::Changed;
            self.report.subjects.push(subject);
            return None;
        }
        if bytes.len() as u64 != entry.size {
            subject.verdict = Verdict::Changed;
            self.report.subjects.push(subject.message(format!(
                "its descriptor gives {} bytes, it has {}",
                entry.size,
                bytes.len()
            )));
            return None;
        }
        match Document::parse(&bytes, Some(&entry.media_type)) {
            Ok(document) => {
                self.report.subjects.push(subject);
                Some(document)
            }
            Err(e) => {
                subject.verdict = Verdict::Rejected;
                self.report.subjects.push(subject.message(e.to_string()));
                None
            }
        }
    }

    fn image(&mut self, manifest: ImageManifest, descriptor: Descriptor, label: Option<String>) {
        let prefix = label.as_ref().map(|l| format!("{l} ")).unwrap_or_default();
        let diff_ids = self.options.diff_ids && manifest.has_image_config();
        if self.options.diff_ids && !diff_ids {
            self.report.warnings.push(format!(
                "{prefix}no diff_ids to check: the configuration's media type {} is not an image configuration",
                manifest.config.media_type
            ));
        }
        let config = self.plan.add(
            &manifest.config,
            format!("{prefix}config {}", manifest.config.digest),
            Wanted {
                algorithms: self.digests.to_vec(),
                size: manifest.config.size,
                keep: diff_ids,
                diff_id: false,
                compressed: false,
                tar: None,
                model_root: None,
            },
        );
        let layers = manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let title = layer.title().map(|t| format!(" ({t})")).unwrap_or_default();
                self.plan.add(
                    layer,
                    format!("{prefix}layer {} {}{title}", i + 1, layer.digest),
                    Wanted {
                        algorithms: self.digests.to_vec(),
                        size: layer.size,
                        keep: false,
                        diff_id: diff_ids,
                        compressed: blob::declared_compressed(&layer.media_type),
                        tar: tarlayer::tar_layer(&layer.media_type),
                        model_root: self
                            .options
                            .model_root
                            .clone()
                            .filter(|_| imagelayer::is_image_layer(&layer.media_type)),
                    },
                )
            })
            .collect();
        self.plan.images.push(PlannedImage {
            label,
            descriptor,
            manifest,
            config,
            layers,
        });
    }
}

/// Why an index gives no entry to verify for the platform wanted.
enum Unchosen {
    Missing { wanted: String, message: String },
    Ambiguous { wanted: String, message: String },
}

/// [`document::select`] over the entries of `index`.
fn select_in(index: &Index, wanted: &Platform) -> document::Selection {
    let platforms: Vec<Option<&Platform>> = index
        .manifests
        .iter()
        .map(|m| m.platform.as_ref())
        .collect();
    document::select(&platforms, wanted)
}

fn entry_platform(entry: &Descriptor) -> String {
    entry
        .platform
        .as_ref()
        .map_or("(no platform)".to_string(), Platform::to_string)
}

/// The entries pullers could take for `wanted`, and which each takes.
fn ambiguity(index: &Index, wanted: &Platform, selection: &document::Selection) -> String {
    let entries: Vec<String> = selection
        .candidates
        .iter()
        .map(|&i| {
            let entry = &index.manifests[i];
            format!("{} ({}, {})", i + 1, entry_platform(entry), entry.digest)
        })
        .collect();
    format!(
        "entries {} could each be pulled for {wanted} ({})",
        entries.join(", "),
        selection.describe_picks()
    )
}

/// For this machine's platform and each platform the index's entries name, the entries
/// that pullers could each take for it, when there is more than one.
fn ambiguities(index: &Index) -> Vec<String> {
    let mut requests = vec![Platform::host()];
    for platform in index.manifests.iter().filter_map(|m| m.platform.as_ref()) {
        if !requests.contains(platform) {
            requests.push(platform.clone());
        }
    }
    let mut seen: Vec<Vec<usize>> = Vec::new();
    let mut found = Vec::new();
    for wanted in requests {
        let selection = select_in(index, &wanted);
        if selection.candidates.len() > 1 && !seen.contains(&selection.candidates) {
            found.push(ambiguity(index, &wanted, &selection));
            seen.push(selection.candidates);
        }
    }
    found
}

/// Reads the planned blobs `which` names, as many at a time as the engine has threads,
/// largest first; results in the order of `which`.
fn check_blobs(
    store: &dyn Store,
    blobs: &[PlannedBlob],
    which: &[usize],
    engine: &Engine,
) -> Vec<Result<Found, Unavailable>> {
    use crate::hash::queue::{self, Queue};
    let (jobs, progress) = (engine.jobs(), engine.progress());
    let sizes: Vec<u64> = which.iter().map(|&i| blobs[i].descriptor.size).collect();
    progress.begin(sizes.iter().sum());
    let results = queue::run(Queue::largest_first(&sizes), jobs, |k| {
        check_blob(store, &blobs[which[k]], progress)
    });
    progress.finish();
    results
}

/// What a planned blob is known to be from its descriptor alone, or why only its content
/// can say: a ModelPack tar layer whose files are wanted, a diff_id, a digest of another
/// algorithm than the descriptor's.
fn described(blob: &PlannedBlob, files_approved: bool) -> Result<Found, String> {
    let descriptor = &blob.descriptor;
    if blob.wanted.tar.is_some() && files_approved {
        return Err("it is a tar layer, whose files are known only by reading it".into());
    }
    if blob.wanted.model_root.is_some() {
        return Err("it is an image layer, whose files are known only by reading it".into());
    }
    if blob.wanted.diff_id {
        return Err("its diff_id is known only by decompressing it".into());
    }
    if let Some(other) = blob
        .wanted
        .algorithms
        .iter()
        .find(|&&a| a != descriptor.digest.algorithm)
    {
        return Err(format!(
            "its descriptor gives a {} digest, and the files are compared by {other}",
            descriptor.digest.algorithm
        ));
    }
    Ok(Found {
        digests: vec![descriptor.digest.clone(); blob.wanted.algorithms.len()],
        size: descriptor.size,
        content: None,
        diff_id: None,
        tar: None,
        image: None,
    })
}

/// Reads one blob, trying again (from the start) when the transfer breaks off, but not
/// when it ran past its deadline (a registry that slow is not waited for again).
fn check_blob(
    store: &dyn Store,
    blob: &PlannedBlob,
    progress: &dyn crate::hash::Progress,
) -> Result<Found, Unavailable> {
    let attempts = store.attempts().max(1);
    let mut attempt = 1;
    loop {
        let reader = store.blob(&blob.descriptor)?;
        match blob::check(reader, &blob.wanted, progress) {
            Ok(found) => return Ok(found),
            Err(e) if attempt < attempts && e.kind() != std::io::ErrorKind::TimedOut => {
                std::thread::sleep(Duration::from_millis(250) * attempt);
                attempt += 1;
            }
            Err(e) => return Err(Unavailable::Failed(format!("reading it failed: {e}"))),
        }
    }
}

/// Whether a blob read is exactly what its descriptor says.
fn verified<'a>(blob: &PlannedBlob, result: &'a Result<Found, Unavailable>) -> Option<&'a Found> {
    let found = result.as_ref().ok()?;
    let descriptor = &blob.descriptor;
    (found.size == descriptor.size
        && found.digest(descriptor.digest.algorithm) == Some(&descriptor.digest))
    .then_some(found)
}

fn blob_subject(blob: &PlannedBlob, result: &Result<Found, Unavailable>) -> Subject {
    let descriptor = &blob.descriptor;
    let expected = descriptor.digest.prefixed();
    let found = match result {
        Ok(found) => found,
        Err(unavailable) => {
            return unavailable_subject(blob.name.clone(), Some(expected), unavailable)
        }
    };
    let subject = Subject::new(blob.name.clone(), Verdict::Ok).expected(expected);
    if found.size > descriptor.size {
        return Subject {
            verdict: Verdict::Changed,
            ..subject
        }
        .message(format!(
            "the blob holds more than the {} bytes its descriptor gives",
            descriptor.size
        ));
    }
    let actual = found
        .digest(descriptor.digest.algorithm)
        .expect("the descriptor's algorithm is always computed");
    let subject = subject.actual(actual.prefixed());
    if found.size < descriptor.size {
        return Subject {
            verdict: Verdict::Changed,
            ..subject
        }
        .message(format!(
            "the blob has {} bytes, its descriptor gives {}",
            found.size, descriptor.size
        ));
    }
    if *actual != descriptor.digest {
        return Subject {
            verdict: Verdict::Changed,
            ..subject
        }
        .message("the blob's content does not match its digest");
    }
    subject
}

/// Checks each verified layer's decompressed digest against the configuration's diff_ids.
fn check_diff_ids(
    image: &PlannedImage,
    blobs: &[PlannedBlob],
    results: &[Result<Found, Unavailable>],
    prefix: &str,
    report: &mut Report,
) {
    if !image.manifest.has_image_config() {
        return;
    }
    // A configuration that is not what its descriptor says is already a failure.
    let Some(config) = verified(&blobs[image.config], &results[image.config]) else {
        return;
    };
    let name = format!("{prefix}diff_ids");
    let Some(content) = &config.content else {
        report.subjects.push(
            Subject::new(name, Verdict::Rejected)
                .message("the configuration is too large to read its diff_ids"),
        );
        return;
    };
    let diff_ids = match document::diff_ids(content) {
        Ok(diff_ids) => diff_ids,
        Err(e) => {
            report
                .subjects
                .push(Subject::new(name, Verdict::Rejected).message(e.to_string()));
            return;
        }
    };
    if diff_ids.len() != image.layers.len() {
        report
            .subjects
            .push(Subject::new(name, Verdict::Changed).message(format!(
                "the configuration lists {} diff_ids for {} layers",
                diff_ids.len(),
                image.layers.len()
            )));
    }
    for (position, (&layer, expected)) in image.layers.iter().zip(&diff_ids).enumerate() {
        let Some(found) = verified(&blobs[layer], &results[layer]) else {
            continue;
        };
        let name = format!(
            "{prefix}layer {} diff_id {}",
            position + 1,
            blobs[layer].descriptor.digest
        );
        let subject = Subject::new(name, Verdict::Ok).expected(expected.prefixed());
        let subject = match &found.diff_id {
            Some(Ok(actual)) if expected.algorithm != Algorithm::Sha256 => Subject {
                verdict: Verdict::Rejected,
                ..subject.actual(actual.prefixed())
            }
            .message("vouch computes SHA-256 diff_ids; this configuration lists another algorithm"),
            Some(Ok(actual)) => Subject {
                verdict: if actual == expected {
                    Verdict::Ok
                } else {
                    Verdict::Changed
                },
                ..subject.actual(actual.prefixed())
            },
            Some(Err(message)) => Subject {
                verdict: Verdict::Changed,
                ..subject
            }
            .message(message.to_string()),
            None => continue,
        };
        report.subjects.push(subject);
    }
}
