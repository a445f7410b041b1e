//! Lists the files of a model without reading them.
//!
//! Directories are descended (ignored ones are not entered), regular files are listed with
//! their sizes, and everything that cannot be part of a model faithfully — symbolic links not
//! allowed or leading outside the root, FIFOs, sockets, devices, unlistable directories,
//! names that are not UTF-8 — is listed as a [`Problem`] and never opened.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::paths::{IgnoreSet, SINGLE_FILE_NAME};
use crate::error::{Error, Result};
use crate::hash::reader::special_kind;

#[derive(Clone, Copy, Debug)]
pub struct WalkOptions<'a> {
    pub allow_symlinks: bool,
    pub ignore: &'a IgnoreSet,
    /// Names must be UTF-8 (true for manifests, whose names are JSON strings).
    pub require_utf8: bool,
}

/// A model as found on disk.
#[derive(Debug)]
pub struct Model {
    /// The path as the user gave it.
    pub path: PathBuf,
    /// The model's name: the last component of its path, as model-signing records it.
    pub name: String,
    pub is_single_file: bool,
    pub files: Vec<ModelFile>,
    pub problems: Vec<Problem>,
}

#[derive(Clone, Debug)]
pub struct ModelFile {
    /// Relative name (`/`-separated), or `.` for a single-file model.
    pub name: String,
    /// The relative path as the file system spells it (`name` may be a lossy copy of it
    /// when UTF-8 is not required).
    pub relative: PathBuf,
    /// Where to read it: inside the root, or the vetted target of an allowed symlink.
    pub path: PathBuf,
    pub len: u64,
    /// The path may be a symlink that was vetted; open it following links.
    pub follow: bool,
}

#[derive(Debug)]
pub struct Problem {
    pub name: String,
    pub kind: ProblemKind,
}

#[derive(Debug)]
pub enum ProblemKind {
    SymlinkNotAllowed { target: String },
    SymlinkOutsideRoot { target: String },
    SymlinkToDirectory { target: String },
    SymlinkBroken { target: String },
    Special(&'static str),
    Unreadable(io::Error),
    NameNotUtf8,
}

impl ProblemKind {
    pub fn is_symlink(&self) -> bool {
        matches!(
            self,
            ProblemKind::SymlinkNotAllowed { .. }
                | ProblemKind::SymlinkOutsideRoot { .. }
                | ProblemKind::SymlinkToDirectory { .. }
                | ProblemKind::SymlinkBroken { .. }
        )
    }
}

impl Problem {
    /// A sentence saying what is wrong and what the user can do about it.
    pub fn describe(&self) -> String {
        match &self.kind {
            ProblemKind::SymlinkNotAllowed { target } => format!(
                "is a symbolic link (to {target}); links are refused unless --allow-symlinks is given"
            ),
            ProblemKind::SymlinkOutsideRoot { target } => {
                format!("is a symbolic link that leads outside the model root (to {target}); it is never followed")
            }
            ProblemKind::SymlinkToDirectory { target } => format!(
                "is a symbolic link to a directory ({target}); its files would not be covered, so it is refused"
            ),
            ProblemKind::SymlinkBroken { target } => {
                format!("is a symbolic link to {target}, which does not exist")
            }
            ProblemKind::Special(kind) => {
                format!("is {kind}; special files are never opened and cannot be part of a model")
            }
            ProblemKind::Unreadable(e) => format!("cannot be read: {e}"),
            ProblemKind::NameNotUtf8 => {
                "has a name that is not valid UTF-8, which a manifest cannot record".to_string()
            }
        }
    }
}

/// Lists the model at `path`: a directory, or a single regular file.
pub fn walk(path: &Path, options: &WalkOptions) -> Result<Model> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let name = model_name(path);
    if meta.is_file() {
        let file = ModelFile {
            name: SINGLE_FILE_NAME.to_string(),
            relative: PathBuf::new(),
            path: path.to_path_buf(),
            len: meta.len(),
            follow: true,
        };
        return Ok(Model {
            path: path.to_path_buf(),
            name,
            is_single_file: true,
            files: vec![file],
            problems: vec![],
        });
    }
    if !meta.is_dir() {
        let kind = special_kind(&meta).unwrap_or("not a regular file");
        return Err(Error::input(
            path,
            format!("is {kind}; a model is a directory or a regular file"),
        ));
    }
    let root = path.canonicalize().map_err(|e| Error::io(path, e))?;
    let mut walker = Walker {
        root: &root,
        options,
        files: Vec::new(),
        problems: Vec::new(),
    };
    walker.descend(&root, "", Path::new(""))?;
    Ok(Model {
        path: path.to_path_buf(),
        name,
        is_single_file: false,
        files: walker.files,
        problems: walker.problems,
    })
}

/// The last component of the path, or of the resolved path for `.` and `..`.
pub fn model_name(path: &Path) -> String {
    match path.file_name() {
        Some(name) => name.to_string_lossy().into_owned(),
        None => path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    }
}

struct Walker<'a> {
    root: &'a Path,
    options: &'a WalkOptions<'a>,
    files: Vec<ModelFile>,
    problems: Vec<Problem>,
}

impl Walker<'_> {
    fn descend(&mut self, dir: &Path, prefix: &str, relative: &Path) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if prefix.is_empty() => return Err(Error::io(dir, e)),
            Err(e) => {
                self.problem(prefix.to_string(), ProblemKind::Unreadable(e));
                return Ok(());
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.problem(prefix.to_string(), ProblemKind::Unreadable(e));
                    continue;
                }
            };
            let file_name = entry.file_name();
            let part = match file_name.to_str() {
                Some(part) => part.to_string(),
                None if self.options.require_utf8 => {
                    let lossy = join(prefix, &file_name.to_string_lossy());
                    self.problem(lossy, ProblemKind::NameNotUtf8);
                    continue;
                }
                None => file_name.to_string_lossy().into_owned(),
            };
            let name = join(prefix, &part);
            let relative = relative.join(&file_name);
            if self.options.ignore.matches(&name) {
                continue;
            }
            let path = entry.path();
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    self.problem(name, ProblemKind::Unreadable(e));
                    continue;
                }
            };
            let file_type = meta.file_type();
            if file_type.is_dir() {
                self.descend(&path, &name, &relative)?;
            } else if file_type.is_file() {
                self.files.push(ModelFile {
                    name,
                    relative,
                    path,
                    len: meta.len(),
                    follow: false,
                });
            } else if file_type.is_symlink() {
                self.symlink(name, relative, path);
            } else {
                let kind = special_kind(&meta).unwrap_or("not a regular file");
                self.problem(name, ProblemKind::Special(kind));
            }
        }
        Ok(())
    }

    fn symlink(&mut self, name: String, relative: PathBuf, path: PathBuf) {
        let target = fs::read_link(&path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".to_string());
        if !self.options.allow_symlinks {
            return self.problem(name, ProblemKind::SymlinkNotAllowed { target });
        }
        let resolved = match path.canonicalize() {
            Ok(resolved) => resolved,
            Err(_) => return self.problem(name, ProblemKind::SymlinkBroken { target }),
        };
        if !resolved.starts_with(self.root) {
            return self.problem(name, ProblemKind::SymlinkOutsideRoot { target });
        }
        match fs::metadata(&resolved) {
            Ok(meta) if meta.is_file() => self.files.push(ModelFile {
                name,
                relative,
                path: resolved,
                len: meta.len(),
                follow: false,
            }),
            Ok(meta) if meta.is_dir() => {
                self.problem(name, ProblemKind::SymlinkToDirectory { target })
            }
            Ok(meta) => {
                let kind = special_kind(&meta).unwrap_or("not a regular file");
                self.problem(name, ProblemKind::Special(kind))
            }
            Err(e) => self.problem(name, ProblemKind::Unreadable(e)),
        }
    }

    fn problem(&mut self, name: String, kind: ProblemKind) {
        self.problems.push(Problem { name, kind });
    }
}

fn join(prefix: &str, part: &str) -> String {
    if prefix.is_empty() {
        part.to_string()
    } else {
        format!("{prefix}/{part}")
    }
}
