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
