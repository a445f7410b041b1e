//! Opening the files of a model without ever following a symbolic link: every open is
//! relative to a directory handle, with no component of the relative path allowed to be a
//! link, so a directory swapped for a link while vouch runs is refused rather than followed
//! out of the model.
//!
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` does it in one call; where the
//! kernel lacks it (`ENOSYS`) or a seccomp filter refuses it (`EPERM`), the path is walked
//! one component at a time with `openat(O_NOFOLLOW)`, directories with `O_DIRECTORY`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::reader::{self, ReadError, Stamp};

/// A directory that relative opens are resolved beneath: the root of a model.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl RootDir {
    /// Opens the directory at `path`, the path the user gave (links in it are the user's).
    pub fn open(path: &Path) -> io::Result<RootDir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(RootDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the directory `relative` beneath `parent` with no link followed; `path` is how
    /// messages name it.
    pub fn beneath(parent: &RootDir, relative: &Path, path: &Path) -> io::Result<RootDir> {
        let fd = open_beneath(parent.fd(), relative, Target::Directory, Resolver::Auto)?;
        Ok(RootDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path the directory was opened by, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where a file is opened from.
#[derive(Clone, Debug)]
pub enum Location {
    /// A path the user named on the command line or in a check list, opened as given.
    Given(PathBuf),
    /// A relative path beneath a model's root handle; no component may be a link.
    Beneath {
        root: Arc<RootDir>,
        relative: PathBuf,
    },
}

impl Location {
    /// The path for messages.
    pub fn path(&self) -> PathBuf {
        match self {
            Location::Given(path) => path.clone(),
            Location::Beneath { root, relative } => root.path().join(relative),
        }
    }

    /// Opens the regular file for reading, never blocking and never following a link
    /// beneath a root.
    pub fn open(&self) -> Result<(File, Stamp), ReadError> {
        match self {
            Location::Given(path) => reader::open_regular(path, true),
            Location::Beneath { root, relative } => open_file_beneath(root.fd(), relative),
        }
    }
}

/// What is opened: a file to read or a directory to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    File,
    Directory,
}

/// How `relative` is resolved: `openat2` when the kernel allows it, or always one
/// component at a time (for tests of the fallback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    Auto,
    ComponentWise,
}

/// Set once `openat2` was found missing or forbidden, so it is not tried again.
static OPENAT2_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Opens a regular file beneath `dir` and stamps it, refusing links and special files.
pub fn open_file_beneath(dir: BorrowedFd, relative: &Path) -> Result<(File, Stamp), ReadError> {
    let fd = open_beneath(dir, relative, Target::File, Resolver::Auto).map_err(link_refused)?;
    reader::regular(File::from(fd))
}

/// A link met on the way (`ELOOP`, or `ENOTDIR` where a directory was expected) is a path
/// that changed after it was listed, since the walk saw no link there.
fn link_refused(error: io::Error) -> ReadError {
    match error.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EXDEV) => ReadError::Unstable(
            "changed after it was listed: its path now leads through a symbolic link, which is never followed"
                .to_string(),
        ),
        _ => ReadError::Io(error),
    }
}

/// Opens `relative` (plain components only) beneath `dir` without following any link, and
/// without blocking on a FIFO.
pub fn open_beneath(
    dir: BorrowedFd,
    relative: &Path,
    target: Target,
    resolver: Resolver,
) -> io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    if target == Target::Directory {
        flags |= OFlags::DIRECTORY;
    }
    let parts: Vec<&std::ffi::OsStr> = relative
        .components()
        .map(|c| match c {
            Component::Normal(part) => Ok(part),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a plain relative path", relative.display()),
            )),
        })
        .collect::<io::Result<_>>()?;
    let Some((last, directories)) = parts.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty relative path",
        ));
    };
    if resolver == Resolver::Auto && !OPENAT2_UNAVAILABLE.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        match rustix::fs::openat2(dir, relative, flags, Mode::empty(), resolve) {
            Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => {
                OPENAT2_UNAVAILABLE.store(true, Ordering::Relaxed);
            }
            result => return Ok(result?),
        }
    }
    let directory_flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::DIRECTORY;
    let mut parent: Option<OwnedFd> = None;
    for part in directories {
        let at = parent.as_ref().map_or(dir, |fd| fd.as_fd());
        parent = Some(rustix::fs::openat(
            at,
            *part,
            directory_flags,
            Mode::empty(),
        )?);
    }
    let at = parent.as_ref().map_or(dir, |fd| fd.as_fd());
    Ok(rustix::fs::openat(at, *last, flags, Mode::empty())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::reader::Identity;

    fn tree() -> (tempfile::TempDir, RootDir) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), b"inside").unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/file"), b"outside").unwrap();
        std::os::unix::fs::symlink("../outside", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("sub", root.join("alias")).unwrap();
        std::os::unix::fs::symlink("file", root.join("sub/link")).unwrap();
        let handle = RootDir::open(&root).unwrap();
        (dir, handle)
    }

    #[test]
    fn both_resolvers_open_plain_paths_and_refuse_every_link() {
        let (_dir, root) = tree();
        for resolver in [Resolver::Auto, Resolver::ComponentWise] {
            let fd = open_beneath(root.fd(), Path::new("sub/file"), Target::File, resolver)
                .unwrap_or_else(|e| panic!("{resolver:?}: {e}"));
            let mut text = String::new();
            std::io::Read::read_to_string(&mut File::from(fd), &mut text).unwrap();
            assert_eq!(text, "inside");
            assert!(open_beneath(root.fd(), Path::new("sub"), Target::Directory, resolver).is_ok());
            for refused in ["escape/file", "alias/file", "sub/link", "escape"] {
                let target = if refused == "escape" {
                    Target::Directory
                } else {
                    Target::File
                };
                let err = open_beneath(root.fd(), Path::new(refused), target, resolver)
                    .expect_err(refused);
                assert!(
                    matches!(err.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)),
                    "{resolver:?} {refused}: {err}"
                );
                assert!(matches!(link_refused(err), ReadError::Unstable(_)));
            }
            for invalid in ["../root/sub/file", "/etc/passwd", ""] {
                assert!(
                    open_beneath(root.fd(), Path::new(invalid), Target::File, resolver).is_err(),
                    "{resolver:?} {invalid}"
                );
            }
        }
    }

    #[test]
    fn a_fifo_beneath_the_root_is_refused_without_blocking() {
        let (dir, root) = tree();
        let fifo = dir.path().join("root/pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            open_file_beneath(root.fd(), Path::new("pipe")),
            Err(ReadError::NotRegular(k)) if k.contains("FIFO")
        ));
    }

    #[test]
    fn an_identity_tells_a_grown_or_replaced_file() {
        let (dir, root) = tree();
        let path = dir.path().join("root/sub/file");
        let listed = Identity::of(&std::fs::metadata(&path).unwrap());
        let (_, stamp) = open_file_beneath(root.fd(), Path::new("sub/file")).unwrap();
        assert!(listed.check(&stamp).is_ok());
        std::fs::write(&path, b"inside, and more").unwrap();
        let (_, stamp) = open_file_beneath(root.fd(), Path::new("sub/file")).unwrap();
        assert!(matches!(listed.check(&stamp), Err(ReadError::Unstable(m)) if m.contains("size")));
        let grown = stamp.identity();
        std::fs::write(dir.path().join("copy"), b"inside, and more").unwrap();
        std::fs::rename(dir.path().join("copy"), &path).unwrap();
        let (_, stamp) = open_file_beneath(root.fd(), Path::new("sub/file")).unwrap();
        assert!(
            matches!(grown.check(&stamp), Err(ReadError::Unstable(m)) if m.contains("replaced"))
        );
    }
}
