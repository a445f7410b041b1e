//! A model stored as an OCI artifact, one layer per file named by the annotation
//! `org.opencontainers.image.title`, compared file by file with an approved OMS manifest.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use super::blob::Found;
use super::document::{Descriptor, EMPTY, TITLE};
use super::store::Unavailable;
use super::unavailable_subject;
use crate::hash::{Algorithm, Digest};
use crate::manifest::statement::Statement;
use crate::model::oms::Method;
use crate::model::paths::{check_name, normalize_relative_name, IgnoreSet, SINGLE_FILE_NAME};
use crate::report::{Subject, Verdict};

/// The files an approval lists, with their SHA-256 digests.
#[derive(Clone, Debug)]
pub struct ApprovedFiles {
    files: Vec<(String, Digest)>,
    ignore: IgnoreSet,
    /// In words, for reports: `manifest approved.json (files, sha256)`.
    pub description: String,
}

impl ApprovedFiles {
    /// The files of an OMS statement, unsigned or taken from a verified signature.
    /// `source` says where it came from, for reports.
    pub fn from_statement(statement: &Statement, source: &str) -> Result<ApprovedFiles, String> {
        let manifest = &statement.manifest;
        let serialization = &manifest.serialization;
        if serialization.method != Method::Files || serialization.algorithm != Algorithm::Sha256 {
            return Err(format!(
                "an OCI artifact stores whole files under their SHA-256 digests, but this manifest is serialized as {}; make it with `vouch manifest` without --shard-size and --algo",
                serialization.describe()
            ));
        }
        let mut ignore = serialization.ignore_paths.clone();
        for name in IgnoreSet::with_defaults().recorded() {
            ignore.insert(name);
        }
        Ok(ApprovedFiles {
            files: manifest
                .resources
                .iter()
                .map(|r| (r.key.path.clone(), r.digest.clone()))
                .collect(),
            ignore,
            description: format!("manifest {source} ({})", serialization.describe()),
        })
    }

    fn is_single_file(&self) -> bool {
        matches!(self.files.as_slice(), [(name, _)] if name == SINGLE_FILE_NAME)
    }
}

/// One layer of an artifact and what reading it found.
pub struct Layer<'a> {
    pub descriptor: &'a Descriptor,
    pub result: &'a Result<Found, Unavailable>,
}

/// Compares the layers of one artifact with the approved files. Subject names are the
/// file names, after `prefix` (the platform, when an index holds several manifests).
pub fn compare(approved: &ApprovedFiles, layers: &[Layer], prefix: &str) -> Vec<Subject> {
    let mut subjects = Vec::new();
    let mut by_name: BTreeMap<String, &Layer> = BTreeMap::new();
    let mut ambiguous = BTreeSet::new();
    for (i, layer) in layers.iter().enumerate() {
        if layer.descriptor.media_type == EMPTY {
            continue;
        }
        let digest = layer.descriptor.digest.prefixed();
        let Some(title) = layer.descriptor.title() else {
            subjects.push(
                Subject::new(format!("{prefix}layer {} {digest}", i + 1), Verdict::Extra)
                    .actual(digest)
                    .message(format!(
                        "has no {TITLE} annotation, so it is no file of the approved model"
                    )),
            );
            continue;
        };
        let name = match normalize_relative_name(title).and_then(|n| check_name(&n).map(|_| n)) {
            Ok(name) => name,
            Err(e) => {
                subjects.push(
                    Subject::new(format!("{prefix}{title}"), Verdict::Rejected)
                        .message(format!("layer {} has an unsafe title: {e}", i + 1)),
                );
                continue;
            }
        };
        if approved.ignore.matches(&name) {
            continue;
        }
        match by_name.entry(name) {
            Entry::Vacant(vacant) => {
                vacant.insert(layer);
            }
            Entry::Occupied(taken) => {
                ambiguous.insert(taken.key().clone());
            }
        }
    }
    // A title carried twice names no one file: neither layer is taken for it.
    for name in &ambiguous {
        by_name.remove(name);
        subjects.push(
            Subject::new(format!("{prefix}{name}"), Verdict::Rejected)
                .message("more than one layer carries this title; the artifact is ambiguous"),
        );
    }
    if approved.is_single_file() && by_name.len() == 1 {
        // A model that is one file is approved under the name `.`, whatever its file name.
        let (name, layer) = by_name.pop_first().expect("one entry");
        let digest = &approved.files[0].1;
        subjects.push(file_subject(format!("{prefix}{name}"), digest, layer));
        return subjects;
    }
    for (name, digest) in &approved.files {
        if ambiguous.contains(name) {
            continue;
        }
        match by_name.remove(name) {
            Some(layer) => subjects.push(file_subject(format!("{prefix}{name}"), digest, layer)),
            None => subjects.push(
                Subject::new(format!("{prefix}{name}"), Verdict::Missing)
                    .expected(digest.prefixed())
                    .message("approved, but no layer of the artifact carries this title"),
            ),
        }
    }
    for (name, layer) in by_name {
        let mut subject = Subject::new(format!("{prefix}{name}"), Verdict::Extra)
            .message("a layer of the artifact, but not in the approved manifest");
        if let Ok(found) = layer.result {
            if let Some(sha256) = found.digest(Algorithm::Sha256) {
                subject = subject.actual(sha256.prefixed());
            }
        }
        subjects.push(subject);
    }
    subjects
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
