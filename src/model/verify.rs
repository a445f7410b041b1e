//! Compares a model on disk with what was approved, producing the outcome [`Report`].
//!
//! The model is serialized exactly as the approval says (method, algorithm, shard size,
//! symlink policy, ignore paths), every resource is hashed, and the two lists are compared
//! file by file, so that each difference is named: changed (with both digests, or the size
//! change for shards), missing, extra, unreadable, unstable, or rejected by policy.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::oms::{Manifest, Method, Resource, ResourceKey, Serialization};
use super::paths::{compare_names, IgnoreSet, DEFAULT_IGNORED, SINGLE_FILE_NAME};
use super::walk::{self, Model, ModelFile, Problem, ProblemKind};
use super::{hash_model, hash_model_inspecting, walk_options, HashedModel};
use crate::error::Result;
use crate::hash::{Algorithm, Digest, Engine, ReadError, Stamp};
use crate::manifest::digest::manifest_digest;
use crate::manifest::{check_list_expected, load_check_list, load_statement, statement_expected};
use crate::report::{Report, Subject, Verdict};
use crate::sign::{check_signature, SignatureCheck, SignerPolicy, TrustSpec};

/// What a model must match: resources under a serialization.
#[derive(Clone, Debug)]
pub struct Expected {
    pub serialization: Serialization,
    pub resources: Vec<Resource>,
    /// In words, for reports: `manifest approved.json (files, sha256)`.
    pub description: String,
}

/// Settings of a verification that do not come from the approval.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// More paths to ignore, already normalized (`--ignore-paths`).
    pub extra_ignores: Vec<String>,
    /// How the user wrote those paths (`--ignore-paths`, a target's `ignore_paths`), for
    /// the warning that names approved files they left unchecked.
    pub extra_ignores_setting: &'static str,
    /// Check `.git`, `.gitattributes`, `.github` and `.gitignore` like any other file
    /// (`--no-ignore-git-paths`) instead of leaving them out.
    pub include_git_paths: bool,
    /// Files the approval came from; they are ignored when they lie inside the model.
    pub approval_files: Vec<std::path::PathBuf>,
    /// Reject files whose pickles import globals this policy refuses (`--deny-unsafe-pickle`).
    pub deny_unsafe_pickle: Option<crate::sbom::formats::pickle::PicklePolicy>,
}

/// What a model is checked against.
#[derive(Clone, Debug)]
pub enum Approval {
    /// An unsigned OMS statement.
    Manifest(PathBuf),
    /// An OMS signature bundle, and who must have signed it.
    Signature { bundle: PathBuf, trust: TrustSpec },
    /// A pinned digest of the model, and the serialization it was made with.
    Pinned {
        pin: Pin,
        serialization: Serialization,
    },
    /// A sha256sum/b3sum list whose names are relative to the model root.
    CheckList {
        list: PathBuf,
        algorithm: Algorithm,
        allow_symlinks: bool,
    },
}

/// A digest that pins a whole model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// The OMS root digest (`vouch digest`): it binds the resources' contents but not their
    /// names or where one file ends and the next begins.
    Root(Digest),
    /// The manifest digest (`vouch digest --manifest-digest`): it binds every resource's
    /// name and digest and the serialization (see [`crate::manifest::digest`]).
    Manifest(Digest),
}

/// The warning of a report that checked a root digest only.
pub const ROOT_DIGEST_BINDS_NO_NAMES: &str = "a root digest binds the files' contents, not their names or boundaries: \
     a renamed, moved or split file still matches it; pin the manifest digest (vouch digest --manifest-digest) \
     or verify against a manifest or signature to bind them";

/// Verifies the model at `path` against `approval`: what `vouch verify` and every drift
/// target run.
pub fn check_model(
    path: &Path,
    approval: &Approval,
    options: &VerifyOptions,
    engine: &Engine,
) -> Result<Report> {
    let mut options = options.clone();
    match approval {
        Approval::Manifest(file) => {
            let statement = load_statement(file)?;
            options.approval_files.push(file.clone());
            verify(
                path,
                &statement_expected(&statement, file)?,
                &options,
                engine,
            )
        }
        Approval::Signature { bundle, trust } => {
            verify_signed(path, bundle, &trust.load()?, &options, engine)
        }
        Approval::Pinned { pin, serialization } => {
            verify_pinned(path, serialization, pin, &options, engine)
        }
        Approval::CheckList {
            list,
            algorithm,
            allow_symlinks,
        } => {
            let entries = load_check_list(list, *algorithm)?;
            let expected = check_list_expected(&entries, list, *allow_symlinks)?;
            options.approval_files.push(list.clone());
            verify(path, &expected, &options, engine)
        }
    }
}

/// Verifies the model at `path` against `expected`.
pub fn verify(
    path: &Path,
    expected: &Expected,
    options: &VerifyOptions,
    engine: &Engine,
) -> Result<Report> {
    let started = Instant::now();
    let ignores = Ignores::new(path, &expected.serialization, options, &expected.resources);
    let serialization = Serialization {
        ignore_paths: ignores.all(),
        ..expected.serialization.clone()
    };
    let model = walk::walk(path, &walk_options(&serialization))?;
    let (hashed, pickle_subjects) = hash_and_gate(&model, &serialization, options, engine);

    let mut report = Report {
        target: path.display().to_string(),
        approval: expected.description.clone(),
        bytes_hashed: hashed.bytes,
        root_digest: found_manifest(&model, &serialization, &hashed)
            .map(|found| found.root_digest().prefixed()),
        ..Report::default()
    };
    // Ignoring a path means not checking it: approved entries under an ignored path are
    // skipped too (and named, with where the ignore came from), not reported missing.
    let (checked, skipped): (Vec<Resource>, Vec<Resource>) = expected
        .resources
        .iter()
        .cloned()
        .partition(|r| !serialization.ignore_paths.matches(&r.key.path));
    ignores.warn_skipped(skipped.iter().map(|r| r.key.path.as_str()), &mut report);
    ignores.warn_unlisted_git_paths(&model, &mut report);
    let comparison = Comparison {
        model: &model,
        method: serialization.method,
    };
    comparison.compare(&checked, hashed, &mut report);
    report.subjects.extend(pickle_subjects);
    report.duration = started.elapsed();
    Ok(report)
}

/// Verifies the model at `path` against a pinned digest, serialized as `serialization`.
pub fn verify_pinned(
    path: &Path,
    serialization: &Serialization,
    pin: &Pin,
    options: &VerifyOptions,
    engine: &Engine,
) -> Result<Report> {
    let started = Instant::now();
    let ignores = Ignores::new(path, serialization, options, &[]);
    let serialization = Serialization {
        ignore_paths: ignores.all(),
        ..serialization.clone()
    };
    let model = walk::walk(path, &walk_options(&serialization))?;
    let (hashed, pickle_subjects) = hash_and_gate(&model, &serialization, options, engine);
    let found = found_manifest(&model, &serialization, &hashed);

    let mut report = Report {
        target: path.display().to_string(),
        approval: format!(
            "{} {} ({})",
            pin.kind(),
            pin.digest(),
            serialization.describe()
        ),
        bytes_hashed: hashed.bytes,
        root_digest: found.as_ref().map(|m| m.root_digest().prefixed()),
        ..Report::default()
    };
    if let Pin::Root(_) = pin {
        report.warnings.push(ROOT_DIGEST_BINDS_NO_NAMES.to_string());
    }
    ignores.warn_unlisted_git_paths(&model, &mut report);
    let comparison = Comparison {
        model: &model,
        method: serialization.method,
    };
    for problem in &model.problems {
        report
            .subjects
            .push(comparison.problem_subject(problem, false));
    }
    for (key, result) in &hashed.resources {
        if let Err(error) = result {
            report
                .subjects
                .push(read_error_subject(comparison.display(key), error));
        }
    }
    if let Some(found) = found {
        let actual = match pin {
            Pin::Root(_) => found.root_digest(),
            Pin::Manifest(_) => manifest_digest(&found),
        };
        let verdict = if &actual == pin.digest() {
            Verdict::Ok
        } else {
            Verdict::Changed
        };
        let mut subject = Subject::new(model.name.clone(), verdict)
            .expected(pin.digest().prefixed())
            .actual(actual.prefixed());
        if verdict == Verdict::Changed {
            subject = subject.message(format!(
                "the model's {} differs from the pinned one; verify against a manifest to see which file changed",
                pin.kind()
            ));
        }
        report.subjects.push(subject);
    }
    report.subjects.extend(pickle_subjects);
    report.duration = started.elapsed();
    Ok(report)
}

/// Hashes the model and, in the same pass, from the very handles the digests are computed
/// from, checks what loading it would read besides: under `--deny-unsafe-pickle` the pickles
/// of every file, and always the external data of every ONNX graph (`*.onnx`). Returns the
/// digests and the subjects of those checks.
fn hash_and_gate(
    model: &Model,
    serialization: &Serialization,
    options: &VerifyOptions,
    engine: &Engine,
) -> (HashedModel, Vec<Subject>) {
    let policy = options.deny_unsafe_pickle;
    if policy.is_none() && !model.files.iter().any(|f| is_onnx_graph(&f.name, model)) {
        return (hash_model(model, serialization, engine), Vec::new());
    }
    let comparison = Comparison {
        model,
        method: serialization.method,
    };
    let gate = |file: &ModelFile, open: &std::fs::File, stamp: &Stamp| {
        let name = comparison.display_path(&file.name);
        let mut subjects = Vec::new();
        if let Some(policy) = policy {
            let scanned = crate::sbom::inspect::pickle_gate(model, file, open);
            subjects.extend(crate::sbom::scan::unsafe_pickle_subjects(
                [(name.clone(), &scanned)],
                policy,
            ));
        }
        if is_onnx_graph(&file.name, model) {
            let inspected = crate::sbom::inspect::inspect_open(model, file, open, stamp.len);
            subjects.extend(crate::sbom::scan::uncovered_external_data(
                &name,
                &inspected,
                model.is_single_file,
                &serialization.ignore_paths,
            ));
        }
        subjects
    };
    let hashed = hash_model_inspecting(model, serialization, engine, &gate);
    let mut subjects: Vec<Subject> = hashed.inspected.into_iter().flatten().flatten().collect();
    for (index, error) in &hashed.unread {
        let name = comparison.display_path(&model.files[*index].name);
        subjects.push(read_error_subject(name, error));
    }
    let hashed = HashedModel {
        resources: hashed.resources,
        bytes: hashed.bytes,
        inspected: Vec::new(),
        unread: Vec::new(),
    };
    (hashed, subjects)
}

/// Whether the model file `name` is an ONNX graph, which may load external data.
fn is_onnx_graph(name: &str, model: &Model) -> bool {
    let name = if model.is_single_file {
        model.name.as_str()
    } else {
        name
    };
    name.to_ascii_lowercase().ends_with(".onnx")
}

/// The paths a verification leaves out, by where each came from: the approval's own
/// `ignore_paths`, the user's extra ones, the approval's files when they lie inside the model,
/// and model-signing's default git names (unless the approval lists a file under one of them,
/// or `include_git_paths` is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IgnoreOrigin {
    Extra,
    Approval,
    ApprovalFile,
    GitDefault,
}

struct Ignores {
    approval: IgnoreSet,
    extra: IgnoreSet,
    extra_setting: &'static str,
    approval_files: IgnoreSet,
    git_defaults: IgnoreSet,
}

impl Ignores {
    fn new(
        path: &Path,
        serialization: &Serialization,
        options: &VerifyOptions,
        approved: &[Resource],
    ) -> Ignores {
        // A recorded set carries the defaults too; they are decided below.
        let mut approval = IgnoreSet::default();
        for entry in serialization.ignore_paths.recorded() {
            if !DEFAULT_IGNORED.contains(&entry.as_str()) {
                approval.insert(entry);
            }
        }
        let mut extra = IgnoreSet::default();
        for name in &options.extra_ignores {
            extra.insert(name.clone());
        }
        let mut approval_files = IgnoreSet::default();
        for file in &options.approval_files {
            if let Some(name) = name_inside(path, file) {
                approval_files.insert(name);
            }
        }
        let mut git_defaults = IgnoreSet::default();
        if !options.include_git_paths {
            for name in DEFAULT_IGNORED {
                let mut one = IgnoreSet::default();
                one.insert(name.to_string());
                if !approved.iter().any(|r| one.matches(&r.key.path)) {
                    git_defaults.insert(name.to_string());
                }
            }
        }
        Ignores {
            approval,
            extra,
            extra_setting: options.extra_ignores_setting,
            approval_files,
            git_defaults,
        }
    }

    fn all(&self) -> IgnoreSet {
        let mut all = IgnoreSet::default();
        for set in [
            &self.approval,
            &self.extra,
            &self.approval_files,
            &self.git_defaults,
        ] {
            for entry in set.recorded() {
                all.insert(entry);
            }
        }
        all
    }

    /// Where the ignore that covers `name` came from; `None` when nothing does.
    fn origin(&self, name: &str) -> Option<IgnoreOrigin> {
        [
            (&self.extra, IgnoreOrigin::Extra),
            (&self.approval, IgnoreOrigin::Approval),
            (&self.approval_files, IgnoreOrigin::ApprovalFile),
            (&self.git_defaults, IgnoreOrigin::GitDefault),
        ]
        .into_iter()
        .find(|(set, _)| set.matches(name))
        .map(|(_, origin)| origin)
    }

    fn describe(&self, origin: IgnoreOrigin) -> &'static str {
        match origin {
            IgnoreOrigin::Extra if self.extra_setting.is_empty() => "the extra ignore paths",
            IgnoreOrigin::Extra => self.extra_setting,
            IgnoreOrigin::Approval => "the approval's ignore_paths",
            IgnoreOrigin::ApprovalFile => "being the approval's own file",
            IgnoreOrigin::GitDefault => {
                "the default git ignores (--no-ignore-git-paths checks them)"
            }
        }
    }

    /// Names the approved files left unchecked, grouped by where their ignore came from.
    fn warn_skipped<'a>(&self, skipped: impl Iterator<Item = &'a str>, report: &mut Report) {
        let mut by_origin: Vec<(&str, Vec<&str>)> = Vec::new();
        for name in skipped {
            let origin = self
                .origin(name)
                .map_or("ignore paths", |o| self.describe(o));
            match by_origin.iter_mut().find(|(o, _)| *o == origin) {
                Some((_, names)) if names.last() != Some(&name) => names.push(name),
                Some(_) => {}
                None => by_origin.push((origin, vec![name])),
            }
        }
        for (origin, names) in by_origin {
            report.warnings.push(format!(
                "{} approved file(s) not checked because of {origin}: {}",
                names.len(),
                names.join(", ")
            ));
        }
    }

    /// Names what the default git ignores left out of a directory model that the approval
    /// does not list: it was not checked, and nothing approved it.
    fn warn_unlisted_git_paths(&self, model: &Model, report: &mut Report) {
        if model.is_single_file {
            return;
        }
        let present: Vec<&str> = DEFAULT_IGNORED
            .into_iter()
            .filter(|name| {
                self.origin(name) == Some(IgnoreOrigin::GitDefault)
                    && std::fs::symlink_metadata(model.path.join(name)).is_ok()
            })
            .collect();
        if !present.is_empty() {
            report.warnings.push(format!(
                "not checked and not approved, left out by the default git ignores (--no-ignore-git-paths checks them): {}",
                present.join(", ")
            ));
        }
    }
}

/// The model-relative name of `file` when it lies inside the model directory `root`.
pub fn name_inside(root: &Path, file: &Path) -> Option<String> {
    let root = root.canonicalize().ok()?;
    if !root.is_dir() {
        return None;
    }
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = parent.canonicalize().ok()?.join(file.file_name()?);
    let relative = file.strip_prefix(&root).ok()?;
    let name: Vec<&str> = relative.iter().map(|c| c.to_str()).collect::<Option<_>>()?;
    (!name.is_empty()).then(|| name.join("/"))
}

/// The manifest of the model as found, if every part of it could be hashed.
fn found_manifest(
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

impl Pin {
    pub fn digest(&self) -> &Digest {
        match self {
            Pin::Root(digest) | Pin::Manifest(digest) => digest,
        }
    }

    /// `root digest` or `manifest digest`, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Pin::Root(_) => "root digest",
            Pin::Manifest(_) => "manifest digest",
        }
    }
}

/// A file as found: its size and its resources with their digests.
struct Found {
    len: u64,
    resources: Vec<(ResourceKey, Result<Digest, ReadError>)>,
}

struct Comparison<'a> {
    model: &'a Model,
    method: Method,
}

impl Comparison<'_> {
    /// The name a report shows: the model's own name stands in for `.`.
    fn display(&self, key: &ResourceKey) -> String {
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

    fn display_path(&self, path: &str) -> String {
        self.display(&ResourceKey {
            path: path.to_string(),
            range: None,
        })
    }

    fn compare(&self, approved: &[Resource], hashed: HashedModel, report: &mut Report) {
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
            subjects.push(read_error_subject(self.display_path(path), error));
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

    fn problem_subject(&self, problem: &Problem, approved: bool) -> Subject {
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

fn read_error_subject(name: String, error: &ReadError) -> Subject {
    match error {
        ReadError::Unstable(message) => {
            Subject::new(name, Verdict::Unstable).message(message.clone())
        }
        ReadError::NotRegular(kind) => {
            Subject::new(name, Verdict::Changed).message(format!("is now {kind}; it was not read"))
        }
        ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Subject::new(name, Verdict::Unstable)
                .message("was removed while the model was being read")
        }
        ReadError::Io(e) => Subject::new(name, Verdict::Unreadable).message(e.to_string()),
    }
}

/// Verifies the model at `path` against the OMS signature bundle at `signature`: the
/// signature is checked under `policy` first, and only a payload that passed is used.
///
/// A refused signature is a report with one `rejected` subject (exit 1) and the model is not
/// read; a signed payload in a layout vouch does not support is an input error (exit 2).
pub fn verify_signed(
    path: &Path,
    signature: &Path,
    policy: &SignerPolicy,
    options: &VerifyOptions,
    engine: &Engine,
) -> Result<Report> {
    let started = Instant::now();
    let target = path.display().to_string();
    let (statement, signature_subject) = match check_signature(signature, policy, &target)? {
        SignatureCheck::Verified { statement, subject } => (statement, subject),
        SignatureCheck::Refused(report) => return Ok(report),
    };
    let mut options = options.clone();
    options.approval_files.push(signature.to_path_buf());
    let mut expected = statement_expected(&statement, signature)?;
    expected.description = format!(
        "signature {} ({})",
        signature.display(),
        statement.manifest.serialization.describe()
    );
    let mut report = verify(path, &expected, &options, engine)?;
    report.subjects.insert(0, signature_subject);
    report.duration = started.elapsed();
    Ok(report)
}
