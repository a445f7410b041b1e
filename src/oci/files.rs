//! A model stored as an OCI artifact, one layer per file named by the annotation
//! `org.opencontainers.image.title` (or ModelPack's `org.cncf.model.filepath`), compared
//! file by file with the approved files and their SHA-256 digests.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use super::blob::Found;
use super::document::{Descriptor, EMPTY, TITLE};
use super::store::Unavailable;
use super::tarlayer::TarFile;
use super::unavailable_subject;
use crate::hash::{Algorithm, Digest};
use crate::model::paths::{check_name, normalize_relative_name, IgnoreSet, SINGLE_FILE_NAME};
use crate::report::{Subject, Verdict};

/// The files an approval lists, with their SHA-256 digests.
#[derive(Clone, Debug)]
pub struct ApprovedFiles {
    pub(super) files: Vec<(String, Digest)>,
    pub(super) ignore: IgnoreSet,
    /// In words, for reports: `manifest approved.json (files, sha256)`.
    pub description: String,
}

impl ApprovedFiles {
    /// The approved files, each with its SHA-256 digest; names under `ignore` are not
    /// looked for among the layers. `description` names the approval in reports.
    pub fn new(files: Vec<(String, Digest)>, ignore: IgnoreSet, description: String) -> Self {
        ApprovedFiles {
            files,
            ignore,
            description,
        }
    }

    fn is_single_file(&self) -> bool {
        matches!(self.files.as_slice(), [(name, _)] if name == SINGLE_FILE_NAME)
    }
}

/// One layer (or the configuration) of an artifact and what reading it found.
pub struct Layer<'a> {
    pub descriptor: &'a Descriptor,
    pub result: &'a Result<Found, Unavailable>,
}

/// Where a descriptor sits in its manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Config,
    /// The layer at this position (from 0).
    Layer(usize),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Config => write!(f, "config"),
            Part::Layer(position) => write!(f, "layer {}", position + 1),
        }
    }
}

/// The files an artifact's layers (and a titled configuration) hold, named by their
/// name annotations.
#[derive(Debug, Default)]
pub struct TitledLayers {
    /// Each usable name (normalized, not ignored, carried by one descriptor only) with the
    /// part that holds it.
    pub files: BTreeMap<String, Part>,
    /// Parts that hold no file of the model, in manifest order, then names carried twice.
    pub problems: Vec<TitleProblem>,
}

/// Why a layer of an artifact is no file of its model.
#[derive(Debug, PartialEq, Eq)]
pub enum TitleProblem {
    /// The layer at this position has no name annotation.
    Untitled(usize),
    /// The part has a name that is no safe relative path.
    Unsafe {
        part: Part,
        key: &'static str,
        title: String,
        reason: String,
    },
    /// The part's name annotations name different files: clients place it under either.
    Disagree {
        part: Part,
        names: [(&'static str, String); 2],
    },
    /// More than one part carries this name, so it names no one file.
    Ambiguous(String),
    /// The part is typed as the empty descriptor but does not hold `{}`.
    NotEmpty(Part),
    /// The part is a directory oras unpacks ([`oras_unpacks`]): `oras pull` writes the
    /// files of its archive, not one file of its name.
    Unpacked { part: Part, title: String },
}

/// oras's annotation for a layer that is a directory packed as a tar (`oras push DIR`).
const ORAS_UNPACK: &str = "io.deis.oras.content.unpack";

/// Whether `oras pull` writes a titled layer as the files of its archive: oras (Go) when
/// the layer is marked [`ORAS_UNPACK`], oras-py whenever it is typed as a gzipped image layer.
fn oras_unpacks(layer: &Descriptor) -> bool {
    layer.annotations.get(ORAS_UNPACK).map(String::as_str) == Some("true")
        || layer.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
}

/// The only content a layer typed as the empty descriptor may have.
pub const EMPTY_CONTENT: &[u8] = b"{}";

/// Whether a descriptor typed as the empty descriptor describes exactly `{}`.
fn describes_empty_content(layer: &Descriptor) -> bool {
    layer.size == EMPTY_CONTENT.len() as u64
        && layer.digest == layer.digest.algorithm.digest(EMPTY_CONTENT)
}

/// The one file name a descriptor's name annotations give (`None` without any), or why
/// they give none.
fn file_name(part: Part, descriptor: &Descriptor) -> Result<Option<String>, TitleProblem> {
    let mut named: Option<(&'static str, &str, String)> = None;
    for (key, title) in descriptor.names() {
        let name = normalize_relative_name(title)
            .and_then(|n| check_name(&n).map(|_| n))
            .map_err(|reason| TitleProblem::Unsafe {
                part,
                key,
                title: title.to_string(),
                reason: reason.to_string(),
            })?;
        match &named {
            None => named = Some((key, title, name)),
            Some((first_key, first, first_name)) if *first_name != name => {
                return Err(TitleProblem::Disagree {
                    part,
                    names: [(first_key, first.to_string()), (key, title.to_string())],
                })
            }
            Some(_) => {}
        }
    }
    Ok(named.map(|(_, _, name)| name))
}

/// Reads the names of an artifact's layers and configuration: every layer a name
/// annotation ([`super::document::NAME_ANNOTATIONS`]) names is a file, whatever its media type, and so is
/// a configuration that carries one; an untitled empty placeholder layer (which must hold
/// `{}`) is none. Names under an ignored path are left out, except under the names ignored
/// on disk by default (`.git`...), which an artifact has no reason to carry.
pub fn titled_layers<'a>(
    config: &'a Descriptor,
    layers: impl IntoIterator<Item = &'a Descriptor>,
    ignore: &IgnoreSet,
) -> TitledLayers {
    let mut titled = TitledLayers::default();
    let mut ambiguous = BTreeSet::new();
    let on_disk_only = IgnoreSet::with_defaults();
    let parts = std::iter::once((Part::Config, config)).chain(
        layers
            .into_iter()
            .enumerate()
            .map(|(position, layer)| (Part::Layer(position), layer)),
    );
    for (part, descriptor) in parts {
        // A ModelPack tar layer holds the files of its entries, not one file.
        if part != Part::Config && super::tarlayer::tar_layer(&descriptor.media_type).is_some() {
            continue;
        }
        if descriptor.media_type == EMPTY && !describes_empty_content(descriptor) {
            titled.problems.push(TitleProblem::NotEmpty(part));
            continue;
        }
        let name = match file_name(part, descriptor) {
            Ok(Some(name)) if oras_unpacks(descriptor) => {
                titled
                    .problems
                    .push(TitleProblem::Unpacked { part, title: name });
                continue;
            }
            Ok(Some(name)) => name,
            Ok(None) => {
                if let (Part::Layer(position), false) = (part, descriptor.media_type == EMPTY) {
                    titled.problems.push(TitleProblem::Untitled(position));
                }
                continue;
            }
            Err(problem) => {
                titled.problems.push(problem);
                continue;
            }
        };
        if ignore.matches(&name) && !on_disk_only.matches(&name) {
            continue;
        }
        match titled.files.entry(name) {
            Entry::Vacant(vacant) => {
                vacant.insert(part);
            }
            Entry::Occupied(taken) => {
                ambiguous.insert(taken.key().clone());
            }
        }
    }
    for name in ambiguous {
        titled.files.remove(&name);
        titled.problems.push(TitleProblem::Ambiguous(name));
    }
    titled
}

/// Compares the configuration and layers of one artifact with the approved files. Subject
/// names are the file names, after `prefix` (the platform, when an index holds several
/// manifests).
pub fn compare(
    approved: &ApprovedFiles,
    config: &Layer,
    layers: &[Layer],
    prefix: &str,
) -> Vec<Subject> {
    let mut subjects = Vec::new();
    let titled = titled_layers(
        config.descriptor,
        layers.iter().map(|l| l.descriptor),
        &approved.ignore,
    );
    let at = |part: Part| match part {
        Part::Config => config,
        Part::Layer(position) => &layers[position],
    };
    let mut ambiguous = BTreeSet::new();
    for problem in titled.problems {
        subjects.push(match problem {
            TitleProblem::NotEmpty(part) => {
                let descriptor = at(part).descriptor;
                let digest = descriptor.digest.prefixed();
                Subject::new(format!("{prefix}{part} {digest}"), Verdict::Rejected)
                    .actual(digest)
                    .message(format!(
                    "is typed as the empty descriptor ({EMPTY}) but describes {} bytes other than {{}}",
                    descriptor.size
                ))
            }
            TitleProblem::Untitled(position) => {
                let digest = layers[position].descriptor.digest.prefixed();
                Subject::new(
                    format!("{prefix}layer {} {digest}", position + 1),
                    Verdict::Extra,
                )
                .actual(digest)
                .message(format!(
                    "has no {TITLE} (or ModelPack filepath) annotation, so it is no file of the approved model"
                ))
            }
            TitleProblem::Unsafe {
                part,
                key,
                title,
                reason,
            } => Subject::new(format!("{prefix}{title}"), Verdict::Rejected)
                .message(format!("{part} has an unsafe title ({key}): {reason}")),
            TitleProblem::Disagree {
                part,
                names: [(first_key, first), (other_key, other)],
            } => Subject::new(format!("{prefix}{first}"), Verdict::Rejected).message(format!(
                "{part} is named '{first}' by {first_key} but '{other}' by {other_key}; clients place it under either"
            )),
            TitleProblem::Unpacked { part, title } => {
                Subject::new(format!("{prefix}{title}"), Verdict::Rejected).message(format!(
                    "{part} is a directory oras unpacks (typed as a gzipped tar, or marked {ORAS_UNPACK}): `oras pull` writes the files of its archive, not one file '{title}'"
                ))
            }
            // A name carried twice names no one file: neither layer is taken for it.
            TitleProblem::Ambiguous(name) => {
                let subject = Subject::new(format!("{prefix}{name}"), Verdict::Rejected)
                    .message("more than one layer carries this title; the artifact is ambiguous");
                ambiguous.insert(name);
                subject
            }
        });
    }
    let mut by_name: BTreeMap<String, Part> = titled.files;
    let (mut from_tar, tar_subjects) =
        tar_files(approved, layers, prefix, &mut by_name, &mut ambiguous);
    subjects.extend(tar_subjects);
    if approved.is_single_file() && by_name.len() == 1 && from_tar.is_empty() {
        // A model that is one file is approved under the name `.`, whatever its file name.
        let (name, part) = by_name.pop_first().expect("one entry");
        let digest = &approved.files[0].1;
        subjects.push(file_subject(format!("{prefix}{name}"), digest, at(part)));
        return subjects;
    }
    for (name, digest) in &approved.files {
        if ambiguous.contains(name) {
            continue;
        }
        if let Some((position, file)) = from_tar.remove(name) {
            let verdict = if &file.sha256 == digest {
                Verdict::Ok
            } else {
                Verdict::Changed
            };
            subjects.push(
                Subject::new(format!("{prefix}{name}"), verdict)
                    .expected(digest.prefixed())
                    .actual(file.sha256.prefixed())
                    .message(format!("from the tar layer {}", position + 1)),
            );
            continue;
        }
        match by_name.remove(name) {
            Some(part) => subjects.push(file_subject(format!("{prefix}{name}"), digest, at(part))),
            None => subjects.push(
                Subject::new(format!("{prefix}{name}"), Verdict::Missing)
                    .expected(digest.prefixed())
                    .message("approved, but no layer of the artifact carries this title"),
            ),
        }
    }
    for (name, (position, file)) in from_tar {
        subjects.push(
            Subject::new(format!("{prefix}{name}"), Verdict::Extra)
                .actual(file.sha256.prefixed())
                .message(format!(
                    "a file of the tar layer {}, but not in the approved manifest",
                    position + 1
                )),
        );
    }
    for (name, part) in by_name {
        let message = match part {
            Part::Config => "the artifact's configuration is named as this file, but it is not in the approved manifest",
            Part::Layer(_) => "a layer of the artifact, but not in the approved manifest",
        };
        let mut subject = Subject::new(format!("{prefix}{name}"), Verdict::Extra).message(message);
        if let Ok(found) = at(part).result {
            if let Some(sha256) = found.digest(Algorithm::Sha256) {
                subject = subject.actual(sha256.prefixed());
            }
        }
        subjects.push(subject);
    }
    subjects
}

/// The files one artifact holds, named and with their SHA-256 digests: what a comparison
/// with an approval of no files finds extra. When any part cannot be taken faithfully as a
/// file (an unsafe, disagreeing or twice-given name, an untitled layer, a tar entry that is
/// a link, a layer that could not be read), the subjects that say so instead.
pub fn held(
    config: &Layer,
    layers: &[Layer],
    ignore: &IgnoreSet,
) -> Result<Vec<(String, Digest)>, Vec<Subject>> {
    let none = ApprovedFiles::new(Vec::new(), ignore.clone(), String::new());
    let untitled: BTreeSet<String> = titled_layers(
        config.descriptor,
        layers.iter().map(|l| l.descriptor),
        ignore,
    )
    .problems
    .iter()
    .filter_map(|problem| match problem {
        TitleProblem::Untitled(position) => Some(format!(
            "layer {} {}",
            position + 1,
            layers[*position].descriptor.digest.prefixed()
        )),
        _ => None,
    })
    .collect();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for subject in compare(&none, config, layers, "") {
        let digest = subject
            .actual
            .as_deref()
            .and_then(|d| Digest::from_prefixed(d).ok());
        match digest {
            Some(digest) if subject.verdict == Verdict::Extra && !untitled.contains(&subject.name) => {
                files.push((subject.name, digest))
            }
            _ if untitled.contains(&subject.name) => problems.push(
                Subject {
                    verdict: Verdict::Rejected,
                    ..subject
                }
                .message(format!(
                    "has no {TITLE} (or ModelPack filepath) annotation, so no file of the model can be named after it"
                )),
            ),
            _ => problems.push(subject),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// The files a comparison with an approval of no files finds extra, each with its
/// SHA-256; or, when any subject is something else (a refused entry, an unread layer),
/// those subjects.
pub fn extra_files(subjects: Vec<Subject>) -> Result<Vec<(String, Digest)>, Vec<Subject>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for subject in subjects {
        let digest = subject
            .actual
            .as_deref()
            .and_then(|d| Digest::from_prefixed(d).ok());
        match digest {
            Some(digest) if subject.verdict == Verdict::Extra => files.push((subject.name, digest)),
            _ => problems.push(subject),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// The verdict on one approved file: the SHA-256 of the bytes actually read against the
/// approved one (so a corrupt blob is caught here too, not only against its descriptor).
fn file_subject(name: String, approved: &Digest, layer: &Layer) -> Subject {
    let found = match layer.result {
        Ok(found) => found,
        Err(unavailable) => {
            return unavailable_subject(name, Some(approved.prefixed()), unavailable)
        }
    };
    let subject = Subject::new(name, Verdict::Ok).expected(approved.prefixed());
    let Some(actual) = found.digest(Algorithm::Sha256) else {
        unreachable!("SHA-256 is computed for every layer when files are compared")
    };
    if found.size > layer.descriptor.size {
        return Subject {
            verdict: Verdict::Changed,
            ..subject
        }
        .message(format!(
            "the layer holds more than the {} bytes its descriptor gives",
            layer.descriptor.size
        ));
    }
    let verdict = if actual == approved {
        Verdict::Ok
    } else {
        Verdict::Changed
    };
    Subject { verdict, ..subject }.actual(actual.prefixed())
}

/// The files of the artifact's ModelPack tar layers, by name with the layer's position,
/// and the subjects for what they hold that is no file (unsafe entries, links, a layer
/// that cannot be read, a name also carried elsewhere). A name carried by two layers, or
/// by a tar entry and a titled layer, names no one file: it goes to `ambiguous`.
fn tar_files(
    approved: &ApprovedFiles,
    layers: &[Layer],
    prefix: &str,
    titled: &mut BTreeMap<String, Part>,
    ambiguous: &mut BTreeSet<String>,
) -> (BTreeMap<String, (usize, TarFile)>, Vec<Subject>) {
    let mut files: BTreeMap<String, (usize, TarFile)> = BTreeMap::new();
    let mut subjects = Vec::new();
    let on_disk_only = IgnoreSet::with_defaults();
    for (position, layer) in layers.iter().enumerate() {
        if super::tarlayer::tar_layer(&layer.descriptor.media_type).is_none() {
            continue;
        }
        let digest = layer.descriptor.digest.prefixed();
        let layer_name = format!("{prefix}layer {} {digest}", position + 1);
        let content = match layer.result {
            Err(unavailable) => {
                subjects.push(unavailable_subject(layer_name, None, unavailable));
                continue;
            }
            Ok(found) => match &found.tar {
                Some(Ok(content)) => content,
                Some(Err(problem)) => {
                    subjects.push(
                        Subject::new(layer_name, Verdict::Rejected)
                            .actual(digest)
                            .message(format!("is typed as a ModelPack tar layer, but {problem}")),
                    );
                    continue;
                }
                None => unreachable!("a tar layer is read as one"),
            },
        };
        for (written, reason) in &content.problems {
            subjects.push(
                Subject::new(format!("{prefix}{written}"), Verdict::Rejected).message(format!(
                    "an entry of the tar layer {}: {reason}",
                    position + 1
                )),
            );
        }
        for file in &content.files {
            if approved.ignore.matches(&file.name) && !on_disk_only.matches(&file.name) {
                continue;
            }
            if ambiguous.contains(&file.name) {
                continue;
            }
            if titled.remove(&file.name).is_some() || files.remove(&file.name).is_some() {
                ambiguous.insert(file.name.clone());
                subjects.push(
                    Subject::new(format!("{prefix}{}", file.name), Verdict::Rejected).message(
                        "more than one layer carries this file; the artifact is ambiguous",
                    ),
                );
                continue;
            }
            files.insert(file.name.clone(), (position, file.clone()));
        }
    }
    (files, subjects)
}
