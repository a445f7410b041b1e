//! Reading the format facts of every file of a model, shared by `vouch sbom`, `vouch scan`
//! and `vouch verify --deny-unsafe-pickle`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::formats::{self, Facts, Problem};
use crate::model::paths::normalize_relative_name;
use crate::model::walk::{Model, ModelFile};

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
    /// The operating system refused the read.
    Unreadable(String),
}

impl FileProblem {
    pub fn message(&self) -> &str {
        match self {
            FileProblem::Malformed(m) | FileProblem::Unreadable(m) => m,
        }
    }
}

/// An external-data file named by an ONNX graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalFile {
    /// Its `location` as the graph writes it.
    pub location: String,
    /// Its name relative to the model root (or to the ONNX file's directory for a model
    /// that is a single file), when the location stays inside it.
    pub name: Option<String>,
    pub path: PathBuf,
}

/// Reads the header of every file of `model`, several at once.
pub fn inspect_model(model: &Model) -> Vec<Inspected> {
    model
        .files
        .par_iter()
        .map(|file| inspect_file(model, file))
        .collect()
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

fn inspect_file(model: &Model, file: &ModelFile) -> Inspected {
    let name = display_name(model, file);
    match formats::inspect(&file.path, &name) {
        Ok(facts) => {
            let external = match &facts {
                Some(Facts::Onnx(onnx)) => onnx
                    .external_data
                    .iter()
                    .map(|location| external_file(model, file, location))
                    .collect(),
                _ => Vec::new(),
            };
            Inspected {
                facts,
                problem: None,
                external,
            }
        }
        Err(Problem::Malformed(message)) => Inspected {
            facts: None,
            problem: Some(FileProblem::Malformed(message)),
            external: Vec::new(),
        },
        Err(Problem::Io(e)) => Inspected {
            facts: None,
            problem: Some(FileProblem::Unreadable(e.to_string())),
            external: Vec::new(),
        },
    }
}

/// Resolves an external-data location beside the ONNX file; one that would leave the
/// model (absolute, or with `..`) gets no name and is never read.
fn external_file(model: &Model, file: &ModelFile, location: &str) -> ExternalFile {
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
    let root: &Path = if model.is_single_file {
        model.path.parent().unwrap_or(Path::new("."))
    } else {
        &model.path
    };
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    ExternalFile {
        location: location.to_string(),
        path: name.as_ref().map(|n| root.join(n)).unwrap_or_default(),
        name,
    }
}
