//! Approved manifests: OMS statements, sha256sum/b3sum check lists, and pinned digests,
//! read strictly and turned into what a model must match.

pub mod checklist;
pub mod digest;
pub mod statement;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Hint, Result};
use crate::fsio::read_input;
use crate::hash::Algorithm;
use crate::model::compare::Expected;
use crate::model::oms::{Method, Resource, ResourceKey, Serialization};
use crate::model::paths::{check_name, normalize_relative_name, IgnoreSet, SINGLE_FILE_NAME};
use checklist::CheckEntry;
use statement::{Statement, StatementError};

/// Reads and checks an unsigned OMS statement (exit 2 on anything malformed).
pub fn load_statement(path: &Path) -> Result<Statement> {
    parse_statement(&read_input(path)?, path)
}

/// Parses the bytes of an approved statement read from `source` (named in errors).
pub fn parse_statement(bytes: &[u8], source: &Path) -> Result<Statement> {
    statement::parse(bytes).map_err(|e| {
        let error = Error::input(source, e.to_string());
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

/// A path as bytes with `./` components and trailing slashes dropped, for comparing the
/// names in a check list with a path given on the command line.
fn plain_path(path: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .collect();
    let joined = parts.join(&b'/');
    if path.starts_with(b"/") {
        [b"/".as_slice(), &joined].concat()
    } else {
        joined
    }
}

/// What the one entry of a check list that names the single file `file` approves: a line
/// whose name is the file's base name, or its path as given (`./` aside). Lines for other
/// files are left out, as a release's `SHA256SUMS` lists many. None, or more than one, is
/// an error (exit 2).
pub fn check_list_expected_for_file(
    entries: &[CheckEntry],
    source: &Path,
    file: &Path,
    allow_symlinks: bool,
) -> Result<Expected> {
    let entry = entry_for_file(entries, source, file)?;
    let algorithm = entry.digest.algorithm;
    let mut expected = list_expected(
        vec![Resource {
            key: ResourceKey {
                path: SINGLE_FILE_NAME.to_string(),
                range: None,
            },
            digest: entry.digest.clone(),
        }],
        source,
        algorithm,
        allow_symlinks,
    );
    expected.description = format!("{}, line {}", expected.description, entry.line);
    Ok(expected)
}

fn entry_for_file<'a>(
    entries: &'a [CheckEntry],
    source: &Path,
    file: &Path,
) -> Result<&'a CheckEntry> {
    let given = plain_path(file.as_os_str().as_bytes());
    let base = file
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    let matching: Vec<&CheckEntry> = entries
        .iter()
        .filter(|e| {
            let name = plain_path(&e.name);
            name == base || name == given
        })
        .collect();
    let shown = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match matching.as_slice() {
        [entry] => Ok(entry),
        [] => Err(Error::input(
            source,
            format!(
                "no line names {} (by its base name '{}', or as '{}')",
                file.display(),
                shown(&base),
                shown(&given)
            ),
        )),
        several => {
            let lines: Vec<String> = several.iter().map(|e| e.line.to_string()).collect();
            Err(Error::input(
                source,
                format!(
                    "lines {} all name {}; which one approves it is ambiguous",
                    lines.join(", "),
                    file.display()
                ),
            ))
        }
    }
}

/// A check list made by `vouch hash DIR` (or `sha256sum DIR/*`) names files as `DIR/a.bin`,
/// relative to the current directory. When every name starts with `dir` as given, the names
/// are read with that prefix dropped, relative to `dir`; the returned note says so. A name
/// that also exists inside `dir` with its prefix kept makes the reading ambiguous (exit 2).
pub fn relative_to_directory(
    entries: &[CheckEntry],
    source: &Path,
    dir: &Path,
) -> Result<Option<(Vec<CheckEntry>, String)>> {
    let mut prefix = plain_path(dir.as_os_str().as_bytes());
    if prefix.is_empty() {
        return Ok(None);
    }
    if prefix != b"/" {
        prefix.push(b'/');
    }
    let mut stripped = Vec::with_capacity(entries.len());
    for entry in entries {
        let name = plain_path(&entry.name);
        let Some(rest) = name.strip_prefix(prefix.as_slice()) else {
            return Ok(None);
        };
        stripped.push(CheckEntry {
            name: rest.to_vec(),
            ..entry.clone()
        });
    }
    let shown = String::from_utf8_lossy(&prefix).into_owned();
    if let Some(entry) = entries.iter().find(|e| {
        dir.join(OsStr::from_bytes(&e.name))
            .symlink_metadata()
            .is_ok()
    }) {
        return Err(Error::input(
            source,
            format!(
                "line {}: every name starts with {shown}, as `vouch hash {}` writes them, but \
                 '{}' also exists inside {}; which file the list means is ambiguous",
                entry.line,
                dir.display(),
                String::from_utf8_lossy(&entry.name),
                dir.display()
            ),
        ));
    }
    Ok(Some((
        stripped,
        format!("names start with {shown} and are read relative to it"),
    )))
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
    Ok(list_expected(resources, source, algorithm, allow_symlinks))
}

fn list_expected(
    resources: Vec<Resource>,
    source: &Path,
    algorithm: Algorithm,
    allow_symlinks: bool,
) -> Expected {
    Expected {
        serialization: Serialization {
            method: Method::Files,
            algorithm,
            allow_symlinks,
            ignore_paths: IgnoreSet::default(),
        },
        resources,
        description: format!("check list {} ({algorithm})", source.display()),
    }
}
