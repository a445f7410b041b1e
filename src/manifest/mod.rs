//! Approved manifests: OMS statements, sha256sum/b3sum check lists, and pinned digests,
//! read strictly and turned into what a model must match.

pub mod checklist;
pub mod digest;
pub mod statement;

use std::collections::HashSet;
use std::path::Path;

use crate::error::{Error, Hint, Result};
use crate::fsio::read_input;
use crate::hash::Algorithm;
use crate::model::compare::Expected;
use crate::model::oms::{Method, Resource, ResourceKey, Serialization};
use crate::model::paths::{check_name, normalize_relative_name, IgnoreSet};
use checklist::CheckEntry;
use statement::{Statement, StatementError};

/// Reads and checks an unsigned OMS statement (exit 2 on anything malformed).
pub fn load_statement(path: &Path) -> Result<Statement> {
    let bytes = read_input(path)?;
    statement::parse(&bytes).map_err(|e| {
        let error = Error::input(path, e.to_string());
        match e {
            StatementError::Signed(_) => error.with_hint(Hint::CheckSignature),
            _ => error,
        }
    })
}

/// A statement that ignores one of its own resources (named here).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("inconsistent manifest: its ignore_paths cover '{resource}', one of its own resources")]
pub struct IgnoresOwnResource {
    pub resource: String,
}

/// A statement must not ignore its own resources: model-signing refuses a manifest whose
/// `ignore_paths` cover a file it lists, since it would be checked or not depending on who
/// reads it. The message names the first such file.
pub fn check_consistent(statement: &Statement) -> Result<(), IgnoresOwnResource> {
    let manifest = &statement.manifest;
    let ignore = &manifest.serialization.ignore_paths;
    match manifest
        .resources
        .iter()
        .find(|r| ignore.matches(&r.key.path))
    {
        Some(resource) => Err(IgnoresOwnResource {
            resource: resource.key.path.clone(),
        }),
        None => Ok(()),
    }
}

/// What a statement approves; a statement that ignores one of its own resources is an
/// input error.
pub fn statement_expected(statement: &Statement, source: &Path) -> Result<Expected> {
    check_consistent(statement).map_err(|e| Error::input(source, e.to_string()))?;
    let manifest = &statement.manifest;
    Ok(Expected {
        serialization: manifest.serialization.clone(),
        resources: manifest.resources.clone(),
        description: format!(
            "manifest {} ({})",
            source.display(),
            manifest.serialization.describe()
        ),
    })
}

/// Reads a check list whose untagged lines hold `algorithm` digests.
pub fn load_check_list(path: &Path, algorithm: Algorithm) -> Result<Vec<CheckEntry>> {
    let bytes = read_input(path)?;
    checklist::parse(&bytes, algorithm).map_err(|e| {
        let likely = e.likely_algorithm();
        let error = Error::input(path, e.to_string());
        match likely {
            Some(algorithm) => error.with_hint(Hint::Algorithm(algorithm.name())),
            None => error,
        }
    })
}

/// What a check list approves when its names are relative to a model root: every name
/// must be a normalized path inside the root, listed once, with one algorithm throughout.
pub fn check_list_expected(
    entries: &[CheckEntry],
    source: &Path,
    allow_symlinks: bool,
) -> Result<Expected> {
    let algorithm = entries[0].digest.algorithm;
    let mut seen = HashSet::new();
    let mut resources = Vec::with_capacity(entries.len());
    for entry in entries {
        let at = |message: String| Error::input(source, format!("line {}: {message}", entry.line));
        let text = std::str::from_utf8(&entry.name)
            .map_err(|_| at("the file name is not valid UTF-8".into()))?;
        let name = normalize_relative_name(text).map_err(|e| at(e.to_string()))?;
        check_name(&name).map_err(|e| at(format!("'{text}': {e}")))?;
        if entry.digest.algorithm != algorithm {
            return Err(at(format!(
                "a {} digest in a list of {algorithm} digests; one list holds one algorithm",
                entry.digest.algorithm
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(at(format!("'{name}' is listed twice")));
        }
        resources.push(Resource {
            key: ResourceKey {
                path: name,
                range: None,
            },
            digest: entry.digest.clone(),
        });
    }
    Ok(Expected {
        serialization: Serialization {
            method: Method::Files,
            algorithm,
            allow_symlinks,
            ignore_paths: IgnoreSet::default(),
        },
        resources,
        description: format!("check list {} ({algorithm})", source.display()),
    })
}
