//! Models on disk: listing their files, serializing them the OMS way, and checking them
//! against what was approved.

pub mod compare;
pub mod hf;
pub mod oms;
pub mod paths;
pub mod walk;

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Hint, Result};
use crate::hash::{Digest, Engine, ReadError, Stamp, Task};
use crate::report::Verdict;
use oms::{Manifest, ResourceKey, Serialization};
use walk::{Model, ModelFile, WalkOptions};

/// The OMS manifest of the model at `path`, for `vouch digest` and `vouch manifest`.
///
/// Anything that would make the manifest unfaithful stops it: a symlink or special file
/// (exit 2, each one named), an unreadable file (exit 3), a file that changed while it
/// was read (exit 1).
pub fn build_manifest(
    path: &Path,
    serialization: &Serialization,
    engine: &Engine,
) -> Result<(Manifest, u64)> {
    let model = walk_faithfully(path, serialization)?;
    let hashed = hash_model(&model, serialization, engine);
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
        let or_allow_symlinks = model
            .problems
            .iter()
            .any(|p| matches!(p.kind, walk::ProblemKind::SymlinkNotAllowed { .. }));
        return Err(Error::input(
            path,
            format!(
                "cannot be serialized faithfully (remove these or leave them out):{}",
                lines.concat()
            ),
        )
        .with_hint(Hint::LeaveOut { or_allow_symlinks }));
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

/// Every resource of a listed model with its digest (or why it has none), and what an
/// inspection found in each file.
pub struct HashedModel<T = ()> {
    pub resources: Vec<(ResourceKey, Result<Digest, ReadError>)>,
    pub bytes: u64,
    /// By index in the model's files: what the inspection found, read from the handle the
    /// file was hashed from (`None` when not inspected, or when it could not be read).
    pub inspected: Vec<Option<T>>,
    /// Files with no resource to hash (empty, under the shards method) that could not be
    /// opened for their inspection, by index in the model's files.
    pub unread: Vec<(usize, ReadError)>,
}

/// Hashes every resource of `model` under `serialization`.
pub fn hash_model(model: &Model, serialization: &Serialization, engine: &Engine) -> HashedModel {
    let planned = oms::plan(model, serialization.method);
    let tasks: Vec<Task> = planned.iter().map(|(_, _, task)| task.clone()).collect();
    let (results, bytes) = engine.hash_all(&tasks, &[serialization.algorithm]);
    let resources = planned
        .into_iter()
        .zip(results)
        .map(|((key, _, _), result)| (key, result.map(|mut digests| digests.remove(0))))
        .collect();
    HashedModel {
        resources,
        bytes,
        inspected: Vec::new(),
        unread: Vec::new(),
    }
}

/// As [`hash_model`], and `inspect` reads every file from the handle it is hashed from,
/// in the same pass, so what it finds is of the bytes the digests are of. A file that has
/// no resource (an empty file under the shards method) is opened once for it alone.
pub fn hash_model_inspecting<T: Send + Sync>(
    model: &Model,
    serialization: &Serialization,
    engine: &Engine,
    inspect: &(dyn Fn(&ModelFile, &File, &Stamp) -> T + Sync),
) -> HashedModel<T> {
    let planned = oms::plan(model, serialization.method);
    let mut owners: Vec<usize> = planned.iter().map(|(_, owner, _)| *owner).collect();
    let mut tasks: Vec<Task> = planned.iter().map(|(_, _, task)| task.clone()).collect();
    let mut has_task = vec![false; model.files.len()];
    for &owner in &owners {
        has_task[owner] = true;
    }
    for (index, file) in model.files.iter().enumerate() {
        if !has_task[index] {
            owners.push(index);
            tasks.push(Task::whole(file.location.clone(), file.identity));
        }
    }
    let by_task =
        |task: usize, open: &File, stamp: &Stamp| inspect(&model.files[owners[task]], open, stamp);
    let (mut results, bytes) =
        engine.hash_all_inspecting(&tasks, &[serialization.algorithm], &by_task);
    let mut inspected: Vec<Option<T>> = model.files.iter().map(|_| None).collect();
    let mut unread = Vec::new();
    for (task, result) in results.drain(planned.len()..).enumerate() {
        let owner = owners[planned.len() + task];
        match result {
            Ok((_, found)) => inspected[owner] = found,
            Err(error) => unread.push((owner, error)),
        }
    }
    let mut resources = Vec::with_capacity(planned.len());
    for ((key, owner, _), result) in planned.into_iter().zip(results) {
        resources.push((
            key,
            result.map(|(mut digests, found)| {
                if found.is_some() {
                    inspected[owner] = found;
                }
                digests.remove(0)
            }),
        ));
    }
    HashedModel {
        resources,
        bytes,
        inspected,
        unread,
    }
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
    match (error.verdict(), error) {
        ((Verdict::Unreadable, _), ReadError::Io(source)) => Error::io(path, source),
        ((Verdict::Unstable, message), _) => Error::Unstable { path, message },
        ((_, message), _) => Error::input(path, message),
    }
}
