//! Lists the files of a model without reading them.
//!
//! Directories are descended by handle, each opened beneath its parent without following a
//! link and listed from that handle, so a directory swapped for a link during the walk is
//! never entered. Regular files are listed with their identity (device, inode, size), which
//! the reader checks again when it opens them, and everything that cannot be part of a model faithfully — symbolic links not
//! allowed or leading outside the root, FIFOs, sockets, devices, unlistable directories,
//! names that are not UTF-8 — is listed as a [`Problem`] and never opened.
//!
//! A Hugging Face snapshot (`models--ORG--NAME/snapshots/REV`) is listed under its files'
//! snapshot names, each read from the blob its link lands on by the rules of [`super::hf`].

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType};

use super::hf::{Refusal, Snapshot};
use super::paths::{IgnoreSet, SINGLE_FILE_NAME};
use crate::error::{Error, Result};
use crate::hash::opening::{open_beneath, Resolver, Target};
use crate::hash::reader::{special_kind, special_kind_of_mode};
use crate::hash::{Identity, Location, RootDir};

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
    /// The handle of the model directory every file is opened beneath (none for a model
    /// that is a single file).
    pub root: Option<Arc<RootDir>>,
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
    /// Where to read it: beneath the root (for an allowed symlink, its vetted target), or
    /// the path the user gave for a single-file model.
    pub location: Location,
    /// What the walk saw; the file opened for reading must still be this one.
    pub identity: Identity,
    /// For a Hugging Face snapshot file, the name of the blob its link lands on.
    pub blob: Option<String>,
}

impl ModelFile {
    /// Its size when it was listed.
    pub fn size(&self) -> u64 {
        self.identity.len
    }
}

#[derive(Debug)]
pub struct Problem {
    pub name: String,
    pub kind: ProblemKind,
}

#[derive(Debug)]
pub enum ProblemKind {
    SymlinkNotAllowed {
        target: String,
    },
    SymlinkOutsideRoot {
        target: String,
    },
    SymlinkToDirectory {
        target: String,
    },
    SymlinkBroken {
        target: String,
    },
    /// A directory when it was listed, a link by the time it was opened.
    ReplacedBySymlink,
    /// A Hugging Face snapshot link that does not land where huggingface_hub puts blobs.
    HfLink {
        target: String,
        why: &'static str,
    },
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
                | ProblemKind::ReplacedBySymlink
                | ProblemKind::HfLink { .. }
        )
    }
}

impl Problem {
    /// A sentence saying what is wrong and what the user can do about it.
    pub fn describe(&self) -> String {
        match &self.kind {
            ProblemKind::SymlinkNotAllowed { target } => format!(
                "is a symbolic link (to {target}); links are refused unless symbolic links are allowed"
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
            ProblemKind::HfLink { target, why } => format!(
                "is a Hugging Face snapshot link to {target}, which {why}; it is never followed"
            ),
            ProblemKind::ReplacedBySymlink => "was replaced by a symbolic link while the model was listed; it is never followed".to_string(),
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
            location: Location::Given(path.to_path_buf()),
            identity: Identity::of(&meta),
            blob: None,
        };
        return Ok(Model {
            path: path.to_path_buf(),
            name,
            is_single_file: true,
            root: None,
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
    let canonical = path.canonicalize().map_err(|e| Error::io(path, e))?;
    let snapshot = Snapshot::recognize(path);
    // A snapshot's files are read from the cache's blobs, so beneath the cache's handle.
    let (root, opened_beneath, prefix) = match &snapshot {
        Some(snapshot) => {
            let cache = RootDir::open(&snapshot.cache).map_err(|e| Error::io(path, e))?;
            let root = RootDir::beneath(&cache, &snapshot.relative(), path)
                .map_err(|e| Error::io(path, e))?;
            (Arc::new(root), Arc::new(cache), snapshot.relative())
        }
        None => {
            let root = Arc::new(RootDir::open(path).map_err(|e| Error::io(path, e))?);
            (Arc::clone(&root), root, PathBuf::new())
        }
    };
    let mut walker = Walker {
        root: &opened_beneath,
        prefix: &prefix,
        snapshot: snapshot.as_ref(),
        canonical: &canonical,
        options,
        files: Vec::new(),
        problems: Vec::new(),
    };
    let names = read_names(root.fd()).map_err(|e| Error::io(path, e))?;
    walker.entries(root.fd(), names, "", Path::new(""));
    let (files, problems) = (walker.files, walker.problems);
    Ok(Model {
        path: path.to_path_buf(),
        name,
        is_single_file: false,
        root: Some(root),
        files,
        problems,
    })
}

/// The names in the directory open as `dir`, read from the handle.
fn read_names(dir: BorrowedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name));
        }
    }
    Ok(names)
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
    /// The handle files are opened beneath: the model root, or a snapshot's hub cache.
    root: &'a Arc<RootDir>,
    /// The model root's path beneath `root`.
    prefix: &'a Path,
    snapshot: Option<&'a Snapshot>,
    /// The root's resolved path, which an allowed link must resolve under.
    canonical: &'a Path,
    options: &'a WalkOptions<'a>,
    files: Vec<ModelFile>,
    problems: Vec<Problem>,
}

impl Walker<'_> {
    /// Lists the entries `names` of the directory open as `dir`.
    fn entries(&mut self, dir: BorrowedFd, names: Vec<OsString>, prefix: &str, relative: &Path) {
        for file_name in names {
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
            let stat = match rustix::fs::statat(dir, &file_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(e) => {
                    self.problem(name, ProblemKind::Unreadable(e.into()));
                    continue;
                }
            };
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => self.descend(dir, &file_name, name, &relative),
                FileType::RegularFile => self.files.push(ModelFile {
                    name,
                    location: self.beneath(self.prefix.join(&relative)),
                    relative,
                    identity: Identity::of_stat(&stat),
                    blob: None,
                }),
                FileType::Symlink => match self.snapshot {
                    Some(snapshot) => {
                        self.snapshot_link(dir, &file_name, name, relative, &snapshot.repo)
                    }
                    None => self.symlink(name, relative),
                },
                _ => {
                    let kind = special_kind_of_mode(stat.st_mode).unwrap_or("not a regular file");
                    self.problem(name, ProblemKind::Special(kind));
                }
            }
        }
    }

    /// Opens the directory `file_name` of `parent` without following a link, and lists it.
    fn descend(&mut self, parent: BorrowedFd, file_name: &OsString, name: String, relative: &Path) {
        let listed = open_beneath(
            parent,
            Path::new(file_name),
            Target::Directory,
            Resolver::Auto,
        )
        .and_then(|dir| Ok((read_names(dir.as_fd())?, dir)));
        match listed {
            Ok((names, dir)) => self.entries(dir.as_fd(), names, &name, relative),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                self.problem(name, ProblemKind::ReplacedBySymlink)
            }
            Err(e) => self.problem(name, ProblemKind::Unreadable(e)),
        }
    }

    fn beneath(&self, relative: PathBuf) -> Location {
        Location::Beneath {
            root: Arc::clone(self.root),
            relative,
        }
    }

    /// Resolves a snapshot link to its blob by the rules of [`super::hf`].
    fn snapshot_link(
        &mut self,
        dir: BorrowedFd,
        file_name: &OsString,
        name: String,
        relative: PathBuf,
        repo: &str,
    ) {
        let link_dir = self
            .prefix
            .join(&relative)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        match super::hf::resolve_link(self.root.fd(), repo, dir, file_name, &link_dir) {
            Ok(landing) => self.files.push(ModelFile {
                name,
                relative,
                location: self.beneath(landing.relative),
                identity: landing.identity,
                blob: Some(landing.blob),
            }),
            Err(refusal) => {
                let kind = match refusal {
                    Refusal::Link { target, why } => ProblemKind::HfLink { target, why },
                    Refusal::Dangling { target } => ProblemKind::SymlinkBroken { target },
                    Refusal::Directory { target } => ProblemKind::SymlinkToDirectory { target },
                    Refusal::Special(kind) => ProblemKind::Special(kind),
                    Refusal::Unreadable(e) => ProblemKind::Unreadable(e),
                };
                self.problem(name, kind)
            }
        }
    }

    /// Vets a link: allowed only by the policy, and only to a regular file under the root.
    /// It is read as its target's path beneath the root, which is opened with no link on
    /// the way and must still be the file seen here.
    fn symlink(&mut self, name: String, relative: PathBuf) {
        let path = self.root.path().join(&relative);
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
        let Ok(inside) = resolved.strip_prefix(self.canonical) else {
            return self.problem(name, ProblemKind::SymlinkOutsideRoot { target });
        };
        match fs::metadata(&resolved) {
            Ok(meta) if meta.is_file() => self.files.push(ModelFile {
                name,
                relative,
                location: self.beneath(inside.to_path_buf()),
                identity: Identity::of(&meta),
                blob: None,
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
