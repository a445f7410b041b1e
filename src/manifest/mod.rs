//! Approved manifests: OMS statements, sha256sum/b3sum check lists, and pinned digests,
//! read strictly and turned into what a model must match.

pub mod check;
pub mod checklist;
pub mod digest;
pub mod statement;

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::hash::Algorithm;
use crate::model::oms::{Method, Resource, ResourceKey, Serialization};
use crate::model::paths::{check_name, normalize_relative_name, IgnoreSet};
use crate::model::verify::Expected;
use checklist::CheckEntry;
use statement::Statement;

/// Larger inputs are refused rather than read into memory: a manifest of a million files
/// is about 150 MB.
pub const MAX_INPUT_BYTES: u64 = 512 << 20;

/// Reads a whole input file (manifest, check list, signature), refusing oversized ones.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::input(path, "is a directory, not a file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::input(
            path,
            format!("is larger than {MAX_INPUT_BYTES} bytes; refusing to read it"),
        ));
    }
    Ok(bytes)
}

/// Reads and checks an unsigned OMS statement (exit 2 on anything malformed).
pub fn load_statement(path: &Path) -> Result<Statement> {
    let bytes = read_input(path)?;
    statement::parse(&bytes).map_err(|e| Error::input(path, e.to_string()))
}

/// What a statement approves.
pub fn statement_expected(statement: &Statement, source: &Path) -> Expected {
    let manifest = &statement.manifest;
    Expected {
        serialization: manifest.serialization.clone(),
        resources: manifest.resources.clone(),
        description: format!(
            "manifest {} ({})",
            source.display(),
            manifest.serialization.describe()
        ),
    }
}

/// Reads a check list whose untagged lines hold `algorithm` digests.
pub fn load_check_list(path: &Path, algorithm: Algorithm) -> Result<Vec<CheckEntry>> {
    let bytes = read_input(path)?;
    checklist::parse(&bytes, algorithm).map_err(|e| Error::input(path, e))
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
        let name = normalize_relative_name(text).map_err(at)?;
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
