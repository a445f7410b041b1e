//! The comparison of a model as found with what was approved: pure, on values already
//! read, so that every difference is named (changed with both digests or the size change
//! for shards, missing, extra, unreadable, unstable, rejected by the walk's rules).

use std::collections::{HashMap, HashSet};

use super::oms::{Manifest, Method, Resource, ResourceKey, Serialization};
use super::paths::{compare_names, SINGLE_FILE_NAME};
use super::walk::{Model, Problem, ProblemKind};
use super::HashedModel;
use crate::hash::{Digest, ReadError};
use crate::report::{Report, Subject, Verdict};

/// What a model must match: resources under a serialization.
#[derive(Clone, Debug)]
pub struct Expected {
    pub serialization: Serialization,
    pub resources: Vec<Resource>,
    /// In words, for reports: `manifest approved.json (files, sha256)`.
    pub description: String,
}

/// The manifest of the model as found, if every part of it could be hashed.
pub fn found_manifest(
    model: &Model,
    serialization: &Serialization,
    hashed: &HashedModel,
) -> Option<Manifest> {
    if !model.problems.is_empty() {
        return None;
    }
    let resources = hashed
        .resources
        .iter()
        .map(|(key, result)| {
            result.as_ref().ok().map(|digest| Resource {
                key: key.clone(),
                digest: digest.clone(),
            })
        })
        .collect::<Option<_>>()?;
    Some(Manifest::new(
        model.name.clone(),
        serialization.clone(),
        resources,
    ))
}

/// A file as found: its size and its resources with their digests.
struct Found {
    len: u64,
    resources: Vec<(ResourceKey, Result<Digest, ReadError>)>,
}

pub struct Comparison<'a> {
    pub model: &'a Model,
    pub method: Method,
}

impl Comparison<'_> {
    /// The name a report shows: the model's own name stands in for `.`.
    pub fn display(&self, key: &ResourceKey) -> String {
        let path = if key.path == SINGLE_FILE_NAME {
            self.model.name.as_str()
        } else {
            key.path.as_str()
        };
        match key.range {
            None => path.to_string(),
            Some((start, end)) => format!("{path}:{start}:{end}"),
        }
    }

    pub fn display_path(&self, path: &str) -> String {
        self.display(&ResourceKey {
            path: path.to_string(),
            range: None,
        })
    }

    pub fn compare(&self, approved: &[Resource], hashed: HashedModel, report: &mut Report) {
        let mut approved_by_path: HashMap<&str, Vec<&Resource>> = HashMap::new();
        for resource in approved {
            approved_by_path
                .entry(&resource.key.path)
                .or_default()
                .push(resource);
        }
        for resources in approved_by_path.values_mut() {
            resources.sort_by(|a, b| a.key.cmp(&b.key));
        }
        let mut found: HashMap<String, Found> = self
            .model
            .files
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    Found {
                        len: f.size(),
                        resources: Vec::new(),
                    },
                )
            })
            .collect();
        for (key, result) in hashed.resources {
            if let Some(file) = found.get_mut(&key.path) {
                file.resources.push((key, result));
            }
        }

        let mut covered: HashSet<&str> = HashSet::new();
        let mut unreadable_dirs: Vec<&str> = Vec::new();
        for problem in &self.model.problems {
            covered.insert(&problem.name);
            if matches!(problem.kind, ProblemKind::Unreadable(_)) {
                unreadable_dirs.push(&problem.name);
            }
            report.subjects.push(self.problem_subject(
                problem,
                approved_by_path.contains_key(problem.name.as_str()),
            ));
        }
        let under_unreadable = |path: &str| {
            unreadable_dirs.iter().any(|dir| {
                path.len() > dir.len()
                    && path.starts_with(dir)
                    && path.as_bytes()[dir.len()] == b'/'
            })
        };

        let mut paths: Vec<&str> = approved_by_path
            .keys()
            .copied()
            .chain(found.keys().map(String::as_str))
            .collect();
        paths.sort_by(|a, b| compare_names(a, b));
        paths.dedup();
        for path in paths {
            if covered.contains(path) {
                continue;
            }
            match (approved_by_path.get(path), found.get(path)) {
                (Some(approved), Some(found)) => {
                    self.compare_file(path, approved, found, &mut report.subjects)
                }
                (Some(approved), None) if !under_unreadable(path) => {
                    report.subjects.push(self.missing_subject(path, approved));
                }
                (Some(_), None) => {}
                (None, Some(found)) => self.extra_file(path, found, report),
                (None, None) => unreachable!("every path comes from one side"),
            }
        }
        self.shape_warnings(approved, report);
        if matches!(self.method, Method::Shards { .. }) && !self.model.is_single_file {
            report.warnings.push(
                "a shards manifest records nothing for an empty file: an approved empty file that went missing \
                 cannot be detected (empty files present are named above)"
                    .to_string(),
            );
        }
    }

    fn compare_file(
        &self,
        path: &str,
        approved: &[&Resource],
        found: &Found,
        subjects: &mut Vec<Subject>,
    ) {
        if let Some(error) = found.resources.iter().find_map(|(_, r)| r.as_ref().err()) {
            subjects.push(error.subject(self.display_path(path)));
            return;
        }
        let same_layout = approved.len() == found.resources.len()
            && approved
                .iter()
                .zip(&found.resources)
                .all(|(a, (key, _))| a.key == *key);
        if !same_layout {
            let approved_len = approved
                .iter()
                .filter_map(|r| r.key.range.map(|(_, end)| end))
                .max()
                .unwrap_or(0);
            subjects.push(
                Subject::new(self.display_path(path), Verdict::Changed).message(format!(
                    "size changed: approved {approved_len} bytes, found {} bytes",
                    found.len
                )),
            );
            return;
        }
        for (resource, (key, result)) in approved.iter().zip(&found.resources) {
            let actual = result.as_ref().expect("read errors were handled above");
            let verdict = if *actual == resource.digest {
                Verdict::Ok
            } else {
                Verdict::Changed
            };
            subjects.push(
                Subject::new(self.display(key), verdict)
                    .expected(resource.digest.prefixed())
                    .actual(actual.prefixed()),
            );
        }
    }

    fn missing_subject(&self, path: &str, approved: &[&Resource]) -> Subject {
        let subject = Subject::new(self.display_path(path), Verdict::Missing);
        match self.method {
            Method::Files => subject.expected(approved[0].digest.prefixed()),
            Method::Shards { .. } => {
                let len = approved
                    .iter()
                    .filter_map(|r| r.key.range.map(|(_, end)| end))
                    .max()
                    .unwrap_or(0);
                subject.message(format!(
                    "approved as {len} bytes in {} shards",
                    approved.len()
                ))
            }
        }
    }

    fn extra_file(&self, path: &str, found: &Found, report: &mut Report) {
        if found.resources.is_empty() {
            // Only an empty file has no resource: the shards method records nothing for it.
            report.warnings.push(format!(
                "{} is empty: a shards manifest records no resource for an empty file, so this file is not protected by it \
                 (whether it was approved or appeared since cannot be told)",
                self.display_path(path)
            ));
            return;
        }
        let mut subject = Subject::new(self.display_path(path), Verdict::Extra)
            .message("present in the model but not in the approved manifest");
        if let (Method::Files, [(_, Ok(digest))]) = (self.method, found.resources.as_slice()) {
            subject = subject.actual(digest.prefixed());
        }
        report.subjects.push(subject);
    }

    pub fn problem_subject(&self, problem: &Problem, approved: bool) -> Subject {
        let verdict = match &problem.kind {
            kind if kind.is_symlink() => Verdict::Rejected,
            ProblemKind::Unreadable(_) => Verdict::Unreadable,
            ProblemKind::Special(_) if approved => Verdict::Changed,
            _ => Verdict::Extra,
        };
        Subject::new(self.display_path(&problem.name), verdict).message(problem.describe())
    }

    fn shape_warnings(&self, approved: &[Resource], report: &mut Report) {
        let approves_single_file =
            !approved.is_empty() && approved.iter().all(|r| r.key.path == SINGLE_FILE_NAME);
        if self.model.is_single_file && !approves_single_file && !approved.is_empty() {
            report.warnings.push(
                "the model is a single file, but the approval lists the files of a directory"
                    .to_string(),
            );
        } else if !self.model.is_single_file && approves_single_file {
            report
                .warnings
                .push("the approval describes a model that is a single file, but the model is a directory".to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;
    use crate::hash::{Algorithm, Identity, Location};
    use crate::model::walk::ModelFile;

    fn sha(content: &[u8]) -> Digest {
        Algorithm::Sha256.digest(content)
    }

    fn key(path: &str) -> ResourceKey {
        ResourceKey {
            path: path.to_string(),
            range: None,
        }
    }

    fn shard(path: &str, start: u64, end: u64) -> ResourceKey {
        ResourceKey {
            path: path.to_string(),
            range: Some((start, end)),
        }
    }

    fn approve(key: ResourceKey, content: &[u8]) -> Resource {
        Resource {
            key,
            digest: sha(content),
        }
    }

    fn file(name: &str, len: u64) -> ModelFile {
        ModelFile {
            name: name.to_string(),
            relative: PathBuf::from(name),
            location: Location::Given(PathBuf::from("/models/m").join(name)),
            identity: Identity {
                dev: 1,
                ino: 1,
                len,
            },
            blob: None,
        }
    }

    /// A directory model named `m` as a walk would list it, without touching a disk.
    fn directory(files: Vec<ModelFile>, problems: Vec<Problem>) -> Model {
        Model {
            path: PathBuf::from("/models/m"),
            name: "m".to_string(),
            is_single_file: false,
            root: None,
            files,
            problems,
        }
    }

    fn single_file(len: u64) -> Model {
        Model {
            path: PathBuf::from("/models/m.bin"),
            name: "m.bin".to_string(),
            is_single_file: true,
            root: None,
            files: vec![file(SINGLE_FILE_NAME, len)],
            problems: Vec::new(),
        }
    }

    fn hashed(resources: Vec<(ResourceKey, Result<Digest, ReadError>)>) -> HashedModel {
        HashedModel {
            resources,
            bytes: 0,
            inspected: Vec::new(),
            unread: Vec::new(),
        }
    }

    fn compare(
        model: &Model,
        method: Method,
        approved: &[Resource],
        found: Vec<(ResourceKey, Result<Digest, ReadError>)>,
    ) -> Report {
        let mut report = Report::default();
        Comparison { model, method }.compare(approved, hashed(found), &mut report);
        report
    }

    fn verdicts(report: &Report) -> Vec<(&str, Verdict)> {
        report
            .subjects
            .iter()
            .map(|s| (s.name.as_str(), s.verdict))
            .collect()
    }

    #[test]
    fn a_file_as_approved_is_ok_with_both_digests() {
        let model = directory(vec![file("a", 1)], Vec::new());
        let report = compare(
            &model,
            Method::Files,
            &[approve(key("a"), b"a")],
            vec![(key("a"), Ok(sha(b"a")))],
        );
        assert_eq!(
            report.subjects,
            [Subject::new("a", Verdict::Ok)
                .expected(sha(b"a").prefixed())
                .actual(sha(b"a").prefixed())]
        );
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn a_changed_file_names_the_approved_and_the_found_digest() {
        let model = directory(vec![file("w.bin", 3)], Vec::new());
        let report = compare(
            &model,
            Method::Files,
            &[approve(key("w.bin"), b"old")],
            vec![(key("w.bin"), Ok(sha(b"new")))],
        );
        assert_eq!(
            report.subjects,
            [Subject::new("w.bin", Verdict::Changed)
                .expected(sha(b"old").prefixed())
                .actual(sha(b"new").prefixed())]
        );
    }

    #[test]
    fn missing_and_extra_files_are_named_in_name_order() {
        let model = directory(vec![file("b", 1), file("new", 3)], Vec::new());
        let report = compare(
            &model,
            Method::Files,
            &[approve(key("b"), b"b"), approve(key("gone"), b"gone")],
            vec![(key("b"), Ok(sha(b"b"))), (key("new"), Ok(sha(b"new")))],
        );
        assert_eq!(
            verdicts(&report),
            [
                ("b", Verdict::Ok),
                ("gone", Verdict::Missing),
                ("new", Verdict::Extra)
            ]
        );
        assert_eq!(
            report.subjects[1],
            Subject::new("gone", Verdict::Missing).expected(sha(b"gone").prefixed())
        );
        assert_eq!(
            report.subjects[2],
            Subject::new("new", Verdict::Extra)
                .actual(sha(b"new").prefixed())
                .message("present in the model but not in the approved manifest")
        );
    }

    #[test]
    fn a_sharded_file_of_another_size_is_changed_with_both_sizes() {
        let method = Method::Shards { shard_size: 4 };
        let model = directory(vec![file("w", 6), file("same", 4)], Vec::new());
        let report = compare(
            &model,
            method,
            &[
                approve(shard("w", 0, 4), b"0123"),
                approve(shard("w", 4, 8), b"4567"),
                approve(shard("same", 0, 4), b"abcd"),
                approve(shard("gone", 0, 4), b"wxyz"),
                approve(shard("gone", 4, 5), b"!"),
            ],
            vec![
                (shard("w", 0, 4), Ok(sha(b"0123"))),
                (shard("w", 4, 6), Ok(sha(b"45"))),
                (shard("same", 0, 4), Ok(sha(b"abcd"))),
            ],
        );
        assert_eq!(
            report.subjects,
            [
                Subject::new("gone", Verdict::Missing).message("approved as 5 bytes in 2 shards"),
                Subject::new("same:0:4", Verdict::Ok)
                    .expected(sha(b"abcd").prefixed())
                    .actual(sha(b"abcd").prefixed()),
                Subject::new("w", Verdict::Changed)
                    .message("size changed: approved 8 bytes, found 6 bytes"),
            ]
        );
        // What a shards manifest cannot see is said once.
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("records nothing for an empty file"));
    }

    #[test]
    fn an_empty_file_under_shards_is_a_warning_not_a_verdict() {
        let method = Method::Shards { shard_size: 4 };
        let model = directory(vec![file("empty", 0)], Vec::new());
        let report = compare(&model, method, &[], Vec::new());
        assert!(report.subjects.is_empty(), "{:?}", report.subjects);
        assert!(report
            .warnings
            .iter()
            .any(|w| w.starts_with("empty is empty: a shards manifest records no resource")));
    }

    #[test]
    fn read_errors_are_unreadable_or_unstable_never_ok() {
        let model = directory(vec![file("locked", 1), file("moving", 1)], Vec::new());
        let report = compare(
            &model,
            Method::Files,
            &[approve(key("locked"), b"l"), approve(key("moving"), b"m")],
            vec![
                (
                    key("locked"),
                    Err(ReadError::Io(io::Error::from(
                        io::ErrorKind::PermissionDenied,
                    ))),
                ),
                (
                    key("moving"),
                    Err(ReadError::Unstable("grew while it was read".into())),
                ),
            ],
        );
        assert_eq!(
            verdicts(&report),
            [
                ("locked", Verdict::Unreadable),
                ("moving", Verdict::Unstable)
            ]
        );
        assert_eq!(
            report.subjects[1].message.as_deref(),
            Some("grew while it was read")
        );
        assert!(report.subjects.iter().all(|s| s.actual.is_none()));
    }

    #[test]
    fn an_unreadable_directory_hides_its_files_but_not_its_neighbours() {
        let unreadable = Problem {
            name: "sub".to_string(),
            kind: ProblemKind::Unreadable(io::Error::from(io::ErrorKind::PermissionDenied)),
        };
        let model = directory(Vec::new(), vec![unreadable]);
        let report = compare(
            &model,
            Method::Files,
            &[
                approve(key("sub/a"), b"a"),
                approve(key("sub/deep/b"), b"b"),
                approve(key("subway"), b"c"),
            ],
            Vec::new(),
        );
        // The files below it are neither missing nor vouched for: the directory is named
        // unreadable; a file that only shares its prefix is still missing.
        assert_eq!(
            verdicts(&report),
            [("sub", Verdict::Unreadable), ("subway", Verdict::Missing)]
        );
        assert!(report.subjects[0]
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("cannot be read")));
    }

    #[test]
    fn a_symlink_problem_is_rejected_whether_approved_or_not() {
        let link = |name: &str| Problem {
            name: name.to_string(),
            kind: ProblemKind::SymlinkNotAllowed {
                target: "real.bin".to_string(),
            },
        };
        let outside = Problem {
            name: "escape".to_string(),
            kind: ProblemKind::SymlinkOutsideRoot {
                target: "/etc/passwd".to_string(),
            },
        };
        let model = directory(
            vec![file("real.bin", 4)],
            vec![link("approved-link"), link("new-link"), outside],
        );
        let report = compare(
            &model,
            Method::Files,
            &[
                approve(key("approved-link"), b"real"),
                approve(key("real.bin"), b"real"),
            ],
            vec![(key("real.bin"), Ok(sha(b"real")))],
        );
        assert_eq!(
            verdicts(&report),
            [
                ("approved-link", Verdict::Rejected),
                ("new-link", Verdict::Rejected),
                ("escape", Verdict::Rejected),
                ("real.bin", Verdict::Ok)
            ]
        );
        let message = report.subjects[0].message.as_deref().unwrap();
        assert!(
            message.contains("symbolic link (to real.bin)") && !message.contains("--"),
            "{message}"
        );
    }

    #[test]
    fn a_special_file_is_changed_where_a_file_was_approved_and_extra_elsewhere() {
        let fifo = |name: &str| Problem {
            name: name.to_string(),
            kind: ProblemKind::Special("a FIFO"),
        };
        let model = directory(Vec::new(), vec![fifo("weights"), fifo("pipe")]);
        let report = compare(
            &model,
            Method::Files,
            &[approve(key("weights"), b"w")],
            Vec::new(),
        );
        assert_eq!(
            verdicts(&report),
            [("weights", Verdict::Changed), ("pipe", Verdict::Extra)]
        );
    }

    #[test]
    fn a_single_file_model_is_shown_by_its_name_and_a_shape_mismatch_is_a_warning() {
        let model = single_file(3);
        let report = compare(
            &model,
            Method::Files,
            &[approve(key(SINGLE_FILE_NAME), b"abc")],
            vec![(key(SINGLE_FILE_NAME), Ok(sha(b"abc")))],
        );
        assert_eq!(verdicts(&report), [("m.bin", Verdict::Ok)]);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);

        let report = compare(
            &model,
            Method::Files,
            &[approve(key("a"), b"a"), approve(key("b"), b"b")],
            vec![(key(SINGLE_FILE_NAME), Ok(sha(b"abc")))],
        );
        assert_eq!(
            report.warnings,
            ["the model is a single file, but the approval lists the files of a directory"]
        );

        let model = directory(vec![file("a", 1)], Vec::new());
        let report = compare(
            &model,
            Method::Files,
            &[approve(key(SINGLE_FILE_NAME), b"abc")],
            vec![(key("a"), Ok(sha(b"a")))],
        );
        assert_eq!(
            report.warnings,
            ["the approval describes a model that is a single file, but the model is a directory"]
        );
        assert_eq!(
            verdicts(&report),
            [("m", Verdict::Missing), ("a", Verdict::Extra)]
        );
    }

    #[test]
    fn the_found_manifest_exists_only_when_everything_was_hashed() {
        let serialization = Serialization::new(Algorithm::Sha256, None, false).unwrap();
        let model = directory(vec![file("a", 1), file("b", 1)], Vec::new());
        let all = hashed(vec![(key("b"), Ok(sha(b"b"))), (key("a"), Ok(sha(b"a")))]);
        let manifest = found_manifest(&model, &serialization, &all).unwrap();
        let names: Vec<String> = manifest
            .resources
            .iter()
            .map(|r| r.key.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let unread = hashed(vec![
            (key("a"), Ok(sha(b"a"))),
            (key("b"), Err(ReadError::Unstable("changed".into()))),
        ]);
        assert!(found_manifest(&model, &serialization, &unread).is_none());
        let with_problem = directory(
            vec![file("a", 1)],
            vec![Problem {
                name: "link".into(),
                kind: ProblemKind::ReplacedBySymlink,
            }],
        );
        let one = hashed(vec![(key("a"), Ok(sha(b"a")))]);
        assert!(found_manifest(&with_problem, &serialization, &one).is_none());
    }
}
