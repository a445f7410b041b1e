//! Compares a model on disk with what was approved, producing the outcome [`Report`].
//!
//! The model is serialized exactly as the approval says (method, algorithm, shard size,
//! symlink policy, ignore paths), every resource is hashed, and the two lists are compared
//! file by file, so that each difference is named: changed (with both digests, or the size
//! change for shards), missing, extra, unreadable, unstable, or rejected by policy.

use std::path::Path;
use std::time::Instant;

use crate::approval::{resolve, Approval, Pin, Resolution, ROOT_DIGEST_BINDS_NO_NAMES};
use crate::error::Result;
use crate::hash::{Engine, Stamp};
use crate::manifest::digest::manifest_digest;
use crate::model::compare::{found_manifest, Comparison, Expected};
use crate::model::oms::{Resource, Serialization};
use crate::model::paths::{name_inside, IgnoreSet, DEFAULT_IGNORED};
use crate::model::walk::{self, Model, ModelFile};
use crate::model::{hash_model, hash_model_inspecting, walk_options, HashedModel};
use crate::report::{Report, Subject, Verdict};

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
    pub deny_unsafe_pickle: Option<crate::formats::pickle::PicklePolicy>,
}

/// Verifies the model at `path` against `approval`: what `vouch verify` and every drift
/// target run. A signed approval's signature is checked first: a refused one is a report
/// with one `rejected` subject (exit 1), and the model is not read.
pub fn check_model(
    path: &Path,
    approval: &Approval,
    options: &VerifyOptions,
    engine: &Engine,
) -> Result<Report> {
    let started = Instant::now();
    let mut report = match resolve(approval, Some(path))? {
        Resolution::Expected(resolved) => {
            let mut options = options.clone();
            options
                .approval_files
                .extend(resolved.source.file().map(Path::to_path_buf));
            let mut report = verify(path, &resolved.expected, &options, engine)?;
            if let Some(signature) = resolved.signature {
                report.subjects.insert(0, signature);
            }
            report.approval_version = resolved.version.as_ref().map(|v| v.uri());
            report
        }
        Resolution::Pinned { pin, serialization } => {
            verify_pinned(path, serialization, pin, options, engine)?
        }
        Resolution::Refused(refusal) => refusal.report(path.display().to_string()),
    };
    report.duration = started.elapsed();
    Ok(report)
}

/// Verifies the model at `path` against `expected`.
fn verify(
    path: &Path,
    expected: &Expected,
    options: &VerifyOptions,
    engine: &Engine,
) -> Result<Report> {
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
    Ok(report)
}

/// Verifies the model at `path` against a pinned digest, serialized as `serialization`.
fn verify_pinned(
    path: &Path,
    serialization: &Serialization,
    pin: &Pin,
    options: &VerifyOptions,
    engine: &Engine,
) -> Result<Report> {
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
            report.subjects.push(error.subject(comparison.display(key)));
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
            // A release's published SHA-256 of a file is no OMS root digest: say so.
            let plain = found
                .resources
                .iter()
                .find(|resource| &resource.digest == pin.digest());
            subject = subject.message(match plain {
                Some(resource) => format!(
                    "the pinned digest is the plain SHA-256 of {} (as sha256sum prints it), not the model's {}: pin what `vouch digest` prints, or check the file against a check list with --check",
                    comparison.display(&resource.key),
                    pin.kind()
                ),
                None => format!(
                    "the model's {} differs from the pinned one; verify against a manifest to see which file changed",
                    pin.kind()
                ),
            });
        }
        report.subjects.push(subject);
    }
    report.subjects.extend(pickle_subjects);
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
            let scanned = crate::verify::inspect::pickle_gate(model, file, open);
            subjects.extend(crate::verify::scan::unsafe_pickle_subjects(
                [(name.clone(), &scanned)],
                policy,
            ));
        }
        if is_onnx_graph(&file.name, model) {
            let inspected = crate::verify::inspect::inspect_open(model, file, open, stamp.len);
            subjects.extend(crate::verify::scan::uncovered_external_data(
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
        subjects.push(error.subject(name));
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
    LocalDirMetadata,
}

struct Ignores {
    approval: IgnoreSet,
    extra: IgnoreSet,
    extra_setting: &'static str,
    approval_files: IgnoreSet,
    git_defaults: IgnoreSet,
    local_dir: IgnoreSet,
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
        // As for the git defaults: what the approval lists is checked, metadata or not.
        let mut local_dir = IgnoreSet::default();
        let mut metadata = IgnoreSet::default();
        metadata.insert(crate::model::hf::LOCAL_DIR_METADATA.to_string());
        if !approved.iter().any(|r| metadata.matches(&r.key.path)) {
            crate::model::hf::ignore_local_dir_metadata(path, &mut local_dir);
        }
        Ignores {
            approval,
            extra,
            extra_setting: options.extra_ignores_setting,
            approval_files,
            git_defaults,
            local_dir,
        }
    }

    fn all(&self) -> IgnoreSet {
        let mut all = IgnoreSet::default();
        for set in [
            &self.approval,
            &self.extra,
            &self.approval_files,
            &self.git_defaults,
            &self.local_dir,
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
            (&self.local_dir, IgnoreOrigin::LocalDirMetadata),
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
            IgnoreOrigin::GitDefault => "the default git ignores (turning them off checks them)",
            IgnoreOrigin::LocalDirMetadata => "being huggingface_hub's download metadata",
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
                "not checked and not approved, left out by the default git ignores (turning them off checks them): {}",
                present.join(", ")
            ));
        }
    }
}
