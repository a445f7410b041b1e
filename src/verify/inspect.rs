//! Reading the format facts of every file of a model, shared by `vouch sbom`, `vouch scan`
//! and `vouch verify --deny-unsafe-pickle`: always from a file already open, the handle
//! its digest was computed from, never by opening its path a second time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::formats::{self, pickle, Facts, Problem};
use crate::hash::opening::{open_beneath, Resolver, Target};
use crate::hash::reader::regular;
use crate::hash::{Engine, Location, ReadError, RootDir, Task};
use crate::model::paths::normalize_relative_name;
use crate::model::walk::{Model, ModelFile};
use crate::report::Verdict;

/// The facts of one file, or why there are none.
#[derive(Debug)]
pub struct Inspected {
    pub facts: Option<Facts>,
    pub problem: Option<FileProblem>,
    /// Files an ONNX graph stores tensors in, resolved beside it.
    pub external: Vec<ExternalFile>,
}

/// Why a file's header could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileProblem {
    /// Malformed, truncated or hostile: the message says what is wrong.
    Malformed(String),
    /// The file could not be read: the verdict its read error maps to
    /// ([`ReadError::verdict`]), with the message.
    Unread(Verdict, String),
}

impl FileProblem {
    pub fn message(&self) -> &str {
        match self {
            FileProblem::Malformed(m) | FileProblem::Unread(_, m) => m,
        }
    }
}

/// An external-data file named by an ONNX graph.
#[derive(Clone, Debug)]
pub struct ExternalFile {
    /// Its `location` as the graph writes it.
    pub location: String,
    /// Its name relative to the model root (or to the ONNX file's directory for a model
    /// that is a single file), when the location stays inside it.
    pub name: Option<String>,
    /// Where it is opened: beneath the model's root handle, no link on the way.
    pub opened_at: Option<Location>,
}

/// Opens every file of `model` once through its handle and reads its facts from that open
/// file (for `vouch scan`, which hashes nothing).
pub fn inspect_model(model: &Model, engine: &Engine) -> Vec<Inspected> {
    let tasks: Vec<Task> = model
        .files
        .iter()
        .map(|file| Task {
            end: 0,
            ..Task::whole(file.location.clone(), file.identity)
        })
        .collect();
    let inspect = |index: usize, open: &File, stamp: &crate::hash::Stamp| {
        inspect_open(model, &model.files[index], open, stamp.len)
    };
    let (results, _) = engine.hash_all_inspecting(&tasks, &[], &inspect);
    results
        .into_iter()
        .map(|result| match result {
            Ok((_, Some(inspected))) => inspected,
            Ok((_, None)) => unreachable!("every task starts at 0 and is inspected"),
            Err(error) => Inspected {
                facts: None,
                problem: Some(read_problem(error)),
                external: Vec::new(),
            },
        })
        .collect()
}

/// Why a file could not be opened for its facts.
pub fn read_problem(error: ReadError) -> FileProblem {
    let (verdict, message) = error.verdict();
    FileProblem::Unread(verdict, message)
}

/// The display name of a model file: its relative name, or the file's own name for a model
/// that is a single file.
pub fn display_name(model: &Model, file: &ModelFile) -> String {
    if model.is_single_file {
        model.name.clone()
    } else {
        file.name.clone()
    }
}

/// The facts of `file` of `model`, read from `open`, `len` bytes long.
pub fn inspect_open(model: &Model, file: &ModelFile, open: &File, len: u64) -> Inspected {
    let name = display_name(model, file);
    inspected(
        formats::inspect_open(open, len, &name),
        |facts| match facts {
            Some(Facts::Onnx(onnx)) => {
                let root = external_root(model);
                onnx.external_data
                    .iter()
                    .map(|location| external_file(model, file, root.as_ref(), location))
                    .collect()
            }
            _ => Vec::new(),
        },
    )
}

/// What `--deny-unsafe-pickle` needs of `file`: the pickles in it, chosen by content
/// whatever its name, read from `open`.
pub fn pickle_gate(model: &Model, file: &ModelFile, open: &File) -> Inspected {
    let name = display_name(model, file);
    let facts = pickle::scan_file(open, &name).map(|found| found.map(Facts::Pickle));
    inspected(facts, |_| Vec::new())
}

fn inspected(
    facts: Result<Option<Facts>, Problem>,
    external: impl FnOnce(&Option<Facts>) -> Vec<ExternalFile>,
) -> Inspected {
    match facts {
        Ok(facts) => Inspected {
            external: external(&facts),
            facts,
            problem: None,
        },
        Err(Problem::Malformed(message)) => Inspected {
            facts: None,
            problem: Some(FileProblem::Malformed(message)),
            external: Vec::new(),
        },
        Err(Problem::Io(e)) => Inspected {
            facts: None,
            problem: Some(FileProblem::Unread(Verdict::Unreadable, e.to_string())),
            external: Vec::new(),
        },
    }
}

/// The directory external-data locations are opened beneath: the model root, or the
/// directory of a model that is a single file.
fn external_root(model: &Model) -> Option<Arc<RootDir>> {
    if let Some(root) = &model.root {
        return Some(Arc::clone(root));
    }
    let parent = model.path.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    RootDir::open(parent).ok().map(Arc::new)
}

/// Resolves an external-data location beside the ONNX file; one that would leave the
/// model (absolute, or with `..`) gets no name and is never read.
fn external_file(
    model: &Model,
    file: &ModelFile,
    root: Option<&Arc<RootDir>>,
    location: &str,
) -> ExternalFile {
    let directory = if model.is_single_file {
        ""
    } else {
        file.name.rsplit_once('/').map_or("", |(dir, _)| dir)
    };
    let name = normalize_relative_name(location)
        .ok()
        .map(|relative| match directory {
            "" => relative,
            dir => format!("{dir}/{relative}"),
        });
    // A listed file is read where the walk found it (a snapshot file from its blob).
    let listed = name
        .as_deref()
        .filter(|_| !model.is_single_file)
        .and_then(|name| model.files.iter().find(|f| f.name == name));
    let opened_at = match (&name, root) {
        _ if listed.is_some() => listed.map(|f| f.location.clone()),
        (Some(name), Some(root)) => Some(Location::Beneath {
            root: Arc::clone(root),
            relative: PathBuf::from(name),
        }),
        _ => None,
    };
    ExternalFile {
        location: location.to_string(),
        name,
        opened_at,
    }
}

/// Why an external-data file is not read; it reads as the end of a sentence that starts
/// with the file's location.
#[derive(Debug, thiserror::Error)]
pub enum ExternalUnread {
    #[error("leaves the model directory; it was not read")]
    OutsideModel,
    #[error("does not exist")]
    Missing,
    #[error("is a symbolic link or lies under one; it is never followed")]
    Link,
    #[error("cannot be opened: {0}")]
    Open(std::io::Error),
    #[error("is {0}; it was not read")]
    NotRegular(&'static str),
    /// It changed while it was opened; the message says how.
    #[error("{0}")]
    Unstable(String),
    #[error("cannot be read: {0}")]
    Read(std::io::Error),
}

/// The task that hashes an external-data file, opened as every model file is: beneath the
/// root, no link on the way, a regular file. A location that is also a file of the model
/// must still be the file the walk listed.
pub fn external_task(model: &Model, external: &ExternalFile) -> Result<Task, ExternalUnread> {
    let (Some(name), Some(location)) = (&external.name, &external.opened_at) else {
        return Err(ExternalUnread::OutsideModel);
    };
    let Location::Beneath { root, relative } = location else {
        unreachable!("external data is always opened beneath a root");
    };
    let listed = model
        .files
        .iter()
        .find(|f| !model.is_single_file && f.name == *name);
    let identity = match listed {
        Some(file) => file.identity,
        None => {
            let fd = open_beneath(root.fd(), relative, Target::File, Resolver::Auto).map_err(
                |e| match e.raw_os_error() {
                    Some(libc::ENOENT) => ExternalUnread::Missing,
                    Some(libc::ELOOP) | Some(libc::ENOTDIR) => ExternalUnread::Link,
                    _ => ExternalUnread::Open(e),
                },
            )?;
            let (_, stamp) = regular(File::from(fd)).map_err(|e| match e {
                ReadError::NotRegular(kind) => ExternalUnread::NotRegular(kind),
                ReadError::Unstable(message) => ExternalUnread::Unstable(message),
                ReadError::Io(e) => ExternalUnread::Read(e),
            })?;
            stamp.identity()
        }
    };
    Ok(Task::whole(location.clone(), identity))
}
