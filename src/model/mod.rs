//! Models on disk: listing their files, serializing them the OMS way, and checking them
//! against what was approved.

pub mod oms;
pub mod paths;
pub mod verify;
pub mod walk;

use std::path::Path;

use crate::error::{Error, Result};
use crate::hash::{Digest, Engine, Progress, ReadError, Task};
use oms::{Manifest, ResourceKey, Serialization};
use walk::{Model, WalkOptions};

/// The OMS manifest of the model at `path`, for `vouch digest` and `vouch manifest`.
///
/// Anything that would make the manifest unfaithful stops it: a symlink or special file
/// (exit 2, each one named), an unreadable file (exit 3), a file that changed while it
/// was read (exit 1).
pub fn build_manifest(
    path: &Path,
    serialization: &Serialization,
    engine: &Engine,
    progress: &dyn Progress,
) -> Result<(Manifest, u64)> {
    let model = walk_faithfully(path, serialization)?;
    let hashed = hash_model(&model, serialization, engine, progress);
    let mut resources = Vec::with_capacity(hashed.resources.len());
    for (key, result) in hashed.resources {
        match result {
            Ok(digest) => resources.push(oms::Resource { key, digest }),
            Err(e) => return Err(read_error(&model, &key.path, e)),
        }
    }
    Ok((
        Manifest::new(model.name, serialization.clone(), resources),
        hashed.bytes,
    ))
}

/// Lists the model at `path` for a description that must be complete (a manifest, an
/// SBOM): any file that cannot be part of it faithfully stops the listing, each one named.
pub fn walk_faithfully(path: &Path, serialization: &Serialization) -> Result<Model> {
    let model = walk::walk(path, &walk_options(serialization))?;
    if !model.problems.is_empty() {
        let lines: Vec<String> = model
            .problems
            .iter()
            .map(|p| format!("\n  {}: {}", p.name, p.describe()))
            .collect();
        return Err(Error::input(
            path,
            format!(
                "cannot be serialized faithfully (remove these or pass --ignore-paths):{}",
                lines.concat()
            ),
        ));
    }
    Ok(model)
}

/// The walk settings a serialization implies.
pub fn walk_options(serialization: &Serialization) -> WalkOptions<'_> {
    WalkOptions {
        allow_symlinks: serialization.allow_symlinks,
        ignore: &serialization.ignore_paths,
        require_utf8: true,
    }
}

/// Every resource of a listed model with its digest (or why it has none).
pub struct HashedModel {
    pub resources: Vec<(ResourceKey, Result<Digest, ReadError>)>,
    pub bytes: u64,
}

/// Hashes every resource of `model` under `serialization`.
pub fn hash_model(
    model: &Model,
    serialization: &Serialization,
    engine: &Engine,
    progress: &dyn Progress,
) -> HashedModel {
    let planned = oms::plan(model, serialization.method);
    let tasks: Vec<Task> = planned.iter().map(|(_, task)| task.clone()).collect();
    let (results, bytes) = engine.hash_all(&tasks, &[serialization.algorithm], progress);
    let resources = planned
        .into_iter()
        .zip(results)
        .map(|((key, _), result)| (key, result.map(|mut digests| digests.remove(0))))
        .collect();
    HashedModel { resources, bytes }
}

/// The error that stops a complete description when the file `name` of `model` could not
/// be read.
pub fn read_error(model: &Model, name: &str, error: ReadError) -> Error {
    let path = if model.is_single_file {
        model.path.clone()
    } else {
        model.path.join(name)
    };
    read_error_at(path, error)
}

/// The error that stops a complete description when the file at `path` could not be read.
pub fn read_error_at(path: std::path::PathBuf, error: ReadError) -> Error {
    match error {
        ReadError::Unstable(message) => Error::Unstable { path, message },
        ReadError::NotRegular(kind) => Error::input(path, format!("is {kind}; it was not read")),
        ReadError::Io(source) if source.kind() == std::io::ErrorKind::NotFound => Error::Unstable {
            path,
            message: "was removed while the model was being read".to_string(),
        },
        ReadError::Io(source) => Error::io(path, source),
    }
}
