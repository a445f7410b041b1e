//! `vouch scan`: the format facts and findings of every file of a model, in one model
//! rendered as text or JSON; and the pickle policy `vouch verify --deny-unsafe-pickle`
//! applies, as [`Subject`]s of the outcome model.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use super::inspect::{display_name, external_task, inspect_model, FileProblem, Inspected};
use crate::error::{Result, EXIT_INPUT, EXIT_INTEGRITY, EXIT_OPERATIONAL};
use crate::formats::pickle::{Global, PicklePolicy};
use crate::formats::properties::fact_properties;
use crate::formats::{Facts, Kind};
use crate::hash::{Algorithm, Engine, Task};
use crate::model::paths::{compare_names, IgnoreSet};
use crate::model::walk::{self, WalkOptions};
use crate::report::{Subject, Verdict};

#[derive(Debug, Serialize)]
pub struct ScanReport {
    pub target: String,
    /// The policy `dangerous` applies.
    pub pickle_policy: PicklePolicy,
    pub files: Vec<ScannedFile>,
    /// Entries that were not scanned (symbolic links, special files), with the reason.
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ScannedFile {
    pub name: String,
    pub size: u64,
    pub format: Option<Kind>,
    pub facts: Option<Facts>,
    /// `malformed` or `unreadable`, with a message.
    pub problem: Option<ProblemView>,
    /// Imports the pickle policy refuses, as `module.name` (with the archive member).
    pub dangerous: Vec<String>,
    /// External-data files an ONNX graph names, hashed.
    pub external_data: Vec<ExternalView>,
}

#[derive(Debug, Serialize)]
pub struct ProblemView {
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct ExternalView {
    pub location: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub problem: Option<String>,
}

impl ScanReport {
    /// 1 when a file imports a global the pickle policy refuses, or changed or went away after
    /// it was listed (`unstable`, `changed`), else 3 when one could not be read, else 2 when a
    /// header is malformed, else 0.
    pub fn exit_status(&self) -> u8 {
        let any = |f: &dyn Fn(&ScannedFile) -> bool| self.files.iter().any(f);
        let integrity =
            |kind: &str| kind == Verdict::Unstable.name() || kind == Verdict::Changed.name();
        if any(&|f| {
            !f.dangerous.is_empty() || f.problem.as_ref().is_some_and(|p| integrity(p.kind))
        }) {
            EXIT_INTEGRITY
        } else if any(&|f| f.problem.as_ref().is_some_and(|p| p.kind == "unreadable")) {
            EXIT_OPERATIONAL
        } else if any(&|f| {
            f.problem.is_some() || f.external_data.iter().any(|e| e.problem.is_some())
        }) {
            EXIT_INPUT
        } else {
            0
        }
    }

    pub fn render_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("a scan always serializes");
        out.push('\n');
        out
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for file in &self.files {
            let format = file.format.map_or("-", Kind::name);
            let _ = writeln!(out, "{}  {format}  {} bytes", file.name, file.size);
            if let Some(facts) = &file.facts {
                for (name, value) in fact_properties(facts) {
                    let name = name.strip_prefix("vouch:").unwrap_or(&name);
                    let _ = writeln!(out, "    {name}: {value}");
                }
            }
            for external in &file.external_data {
                let detail = match (&external.sha256, &external.problem) {
                    (Some(sha256), _) => format!("sha256:{sha256}"),
                    (None, Some(problem)) => problem.clone(),
                    (None, None) => String::new(),
                };
                let _ = writeln!(out, "    external data {}: {detail}", external.location);
            }
            if let Some(problem) = &file.problem {
                let _ = writeln!(
                    out,
                    "    {}: {}",
                    problem.kind.to_uppercase(),
                    problem.message
                );
            }
            for global in &file.dangerous {
                let _ = writeln!(out, "    {}", refusal(self.pickle_policy, global));
            }
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        let dangerous = self
            .files
            .iter()
            .filter(|f| !f.dangerous.is_empty())
            .count();
        let problems = self.files.iter().filter(|f| f.problem.is_some()).count();
        let _ = writeln!(
            out,
            "vouch: scanned {} files in {}: {dangerous} with unsafe pickle imports ({} policy), {problems} with unreadable or malformed headers",
            self.files.len(),
            self.target,
            self.pickle_policy.name()
        );
        out
    }
}

/// How `vouch scan` names an import `policy` refuses.
fn refusal(policy: PicklePolicy, global: &str) -> String {
    match policy {
        PicklePolicy::Strict => format!(
            "UNSAFE import {global}: not on the strict pickle allow-list; loading this file can run code"
        ),
        PicklePolicy::Picklescan => {
            format!("DANGEROUS import {global}: loading this file can run code")
        }
    }
}

/// Scans every file of the model at `path`, rating pickle imports with `policy`;
/// external-data files are hashed with SHA-256.
pub fn scan_model(path: &Path, policy: PicklePolicy, engine: &Engine) -> Result<ScanReport> {
    let mut ignore = IgnoreSet::with_defaults();
    crate::model::hf::ignore_local_dir_metadata(path, &mut ignore);
    let mut model = walk::walk(
        path,
        &WalkOptions {
            allow_symlinks: false,
            ignore: &ignore,
            require_utf8: false,
        },
    )?;
    model.files.sort_by(|a, b| compare_names(&a.name, &b.name));
    let inspected = inspect_model(&model, engine);
    let mut externals: Vec<Task> = Vec::new();
    let mut external_views: Vec<Vec<ExternalView>> = Vec::new();
    for inspected in &inspected {
        let mut views = Vec::new();
        for external in &inspected.external {
            let problem = match external_task(&model, external) {
                Ok(task) => {
                    externals.push(task);
                    None
                }
                Err(unread) => Some(unread.to_string()),
            };
            views.push(ExternalView {
                location: external.location.clone(),
                size: None,
                sha256: None,
                problem,
            });
        }
        external_views.push(views);
    }
    let (hashed, _) = engine.hash_all(&externals, &[Algorithm::Sha256]);
    let mut hashed = externals.iter().zip(hashed);
    for view in external_views.iter_mut().flatten() {
        if view.problem.is_some() {
            continue;
        }
        let (task, result) = hashed.next().expect("one result per external task");
        match result {
            Ok(digests) => {
                view.size = Some(task.end);
                view.sha256 = Some(digests[0].hex());
            }
            Err(e) => view.problem = Some(format!("cannot be read: {e:?}")),
        }
    }
    let mut files = Vec::new();
    for ((file, inspected), external_data) in model.files.iter().zip(inspected).zip(external_views)
    {
        let name = display_name(&model, file);
        files.push(ScannedFile {
            dangerous: refused_imports(&inspected, policy)
                .map(|(global, member)| describe_import(global, member))
                .collect(),
            format: inspected.facts.as_ref().map(Facts::kind),
            problem: inspected.problem.as_ref().map(|p| ProblemView {
                kind: match p {
                    FileProblem::Malformed(_) => "malformed",
                    FileProblem::Unread(verdict, _) => verdict.name(),
                },
                message: p.message().to_string(),
            }),
            facts: inspected.facts,
            external_data,
            size: file.size(),
            name,
        });
    }
    let warnings = model
        .problems
        .iter()
        .map(|p| format!("{}: {}; not scanned", p.name, p.describe()))
        .collect();
    Ok(ScanReport {
        target: path.display().to_string(),
        pickle_policy: policy,
        files,
        warnings,
    })
}

fn refused_imports(
    inspected: &Inspected,
    policy: PicklePolicy,
) -> impl Iterator<Item = (&Global, Option<&str>)> {
    let pickle = match &inspected.facts {
        Some(Facts::Pickle(pickle)) => Some(pickle),
        _ => None,
    };
    pickle.into_iter().flat_map(move |p| p.refused(policy))
}

fn describe_import(global: &Global, member: Option<&str>) -> String {
    match member {
        Some(member) => format!("{} (in {member})", global.dotted()),
        None => global.dotted(),
    }
}

/// A `rejected` subject for each external-data file the ONNX graph `name` (as `inspected`
/// from the hashed handle) loads that its approval cannot cover: one outside the model (an
/// absolute location or one with `..`), any beside a model that is the graph alone, or one
/// under an ignored path. One inside a directory model is a file of it, checked like the
/// others. A malformed graph is rejected too: what it loads is unknown.
pub fn uncovered_external_data(
    name: &str,
    inspected: &Inspected,
    single_file: bool,
    ignored: &IgnoreSet,
) -> Vec<Subject> {
    if let Some(FileProblem::Malformed(problem)) = &inspected.problem {
        return vec![Subject::new(name, Verdict::Rejected).message(format!(
            "an ONNX graph whose external data cannot be known: {problem}"
        ))];
    }
    let mut subjects = Vec::new();
    for external in &inspected.external {
        let location = &external.location;
        let why = match &external.name {
            None => "outside the model, where the approval does not reach".to_string(),
            Some(_) if single_file => {
                "beside the graph, which a single-file approval does not cover; \
                 verify the directory that holds both"
                    .to_string()
            }
            Some(file) if ignored.matches(file) => {
                format!("{file}, which this check ignores")
            }
            Some(_) => continue,
        };
        subjects.push(
            Subject::new(name, Verdict::Rejected)
                .message(format!("loads external data from {location}: {why}")),
        );
    }
    subjects
}

/// `--deny-unsafe-pickle`: a `rejected` subject for each file (by display name, with what
/// was read of it from the handle it was hashed from) that imports a global `policy`
/// refuses, or that holds pickles (chosen by content, whatever its name) in a container that
/// cannot be scanned as its loader reads it; for a file that cannot be read, one with the
/// verdict its read error maps to.
pub fn unsafe_pickle_subjects<'a>(
    scanned: impl IntoIterator<Item = (String, &'a Inspected)>,
    policy: PicklePolicy,
) -> Vec<Subject> {
    let mut subjects = Vec::new();
    for (name, inspected) in scanned {
        let imports: Vec<String> = refused_imports(inspected, policy)
            .map(|(global, member)| describe_import(global, member))
            .collect();
        let subject = match &inspected.problem {
            _ if !imports.is_empty() => {
                let why = match policy {
                    PicklePolicy::Strict => {
                        "which the strict pickle policy does not allow (only what a weights-only load needs)"
                    }
                    PicklePolicy::Picklescan => {
                        "which the picklescan pickle policy refuses (what picklescan rates dangerous)"
                    }
                };
                Subject::new(name, Verdict::Rejected).message(format!(
                    "unsafe pickle: imports {}, {why}; loading this file can run code",
                    imports.join(", "),
                ))
            }
            Some(FileProblem::Malformed(m)) => Subject::new(name, Verdict::Rejected).message(
                format!("cannot be scanned for unsafe pickle imports: {m}; the unsafe pickle check refuses what it cannot scan"),
            ),
            Some(FileProblem::Unread(verdict, m)) => Subject::new(name, *verdict)
                .message(format!("cannot be scanned for unsafe pickle imports: {m}")),
            None => continue,
        };
        subjects.push(subject);
    }
    subjects
}
