//! Hugging Face caches: a snapshot of the hub cache (`CACHE/models--ORG--NAME/snapshots/REV`)
//! is listed under its files' snapshot names and read from the blobs its links name.
//!
//! A snapshot link is resolved by its text alone, never by the kernel: it must be relative
//! and land exactly on `models--ORG--NAME/blobs/NAME` of the same repository, a regular file,
//! or on the one further link huggingface_hub 2.x makes for Xet files, `blobs/ETAG` ->
//! `CACHE/blobs/HH/XETHASH` (the shared store, layout version 1), a regular file. The landing
//! file is opened beneath the cache's handle with no link followed, so the bytes hashed are
//! the blob's. Anything else is a [`Refusal`], never followed.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType};

use super::paths::IgnoreSet;
use crate::error::{Error, Result};
use crate::hash::opening::{open_beneath, open_file_beneath, Resolver, Target};
use crate::hash::reader::special_kind_of_mode;
use crate::hash::{Identity, RootDir};

/// The marker of the cache-wide shared blob store, and the content of layout version 1.
const SHARED_STORE_MARKER: &str = ".huggingface-shared-blobs";
const SHARED_STORE_LAYOUT: &[u8] = b"1\n";

/// The directory of a `--local-dir` download that holds huggingface_hub's own bookkeeping;
/// it is not part of the model.
pub const LOCAL_DIR_METADATA: &str = ".cache/huggingface";

/// A snapshot directory of a repository in a hub cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The hub cache directory (resolved).
    pub cache: PathBuf,
    /// `models--ORG--NAME` (or `datasets--…`, `spaces--…`).
    pub repo: String,
    /// The snapshot's directory name: the commit it holds.
    pub revision: String,
}

impl Snapshot {
    /// Recognizes a snapshot by the resolved path of a directory: its parent is `snapshots`
    /// of a repository directory.
    pub fn recognize(path: &Path) -> Option<Snapshot> {
        let resolved = path.canonicalize().ok()?;
        let revision = resolved.file_name()?.to_str()?.to_string();
        let snapshots = resolved.parent()?;
        if snapshots.file_name()? != "snapshots" {
            return None;
        }
        let repo_dir = snapshots.parent()?;
        let repo = repo_dir.file_name()?.to_str()?.to_string();
        if !is_repo_dir_name(&repo) {
            return None;
        }
        Some(Snapshot {
            cache: repo_dir.parent()?.to_path_buf(),
            repo,
            revision,
        })
    }

    /// The snapshot's path beneath the cache directory.
    pub fn relative(&self) -> PathBuf {
        Path::new(&self.repo).join("snapshots").join(&self.revision)
    }
}

/// Whether `name` is a repository directory of a hub cache, as huggingface_hub names them.
pub fn is_repo_dir_name(name: &str) -> bool {
    ["models--", "datasets--", "spaces--"]
        .iter()
        .any(|prefix| name.len() > prefix.len() && name.starts_with(prefix))
}

/// Why a snapshot link is not followed.
#[derive(Debug)]
pub enum Refusal {
    /// It does not land where huggingface_hub puts blobs; `why` says where it leads.
    Link {
        target: String,
        why: &'static str,
    },
    Dangling {
        target: String,
    },
    Directory {
        target: String,
    },
    Special(&'static str),
    Unreadable(io::Error),
}

/// A snapshot file's link, resolved: where its blob is read beneath the cache, the blob's
/// name (what `--hf-blobs` checks the content against) and what the file is.
#[derive(Debug)]
pub struct Landing {
    pub relative: PathBuf,
    pub blob: String,
    pub identity: Identity,
}

/// Resolves the link `file_name` in the directory open as `dir`, which is `link_dir`
/// beneath the cache open as `cache`, for a snapshot of `repo`.
pub fn resolve_link(
    cache: BorrowedFd,
    repo: &str,
    dir: BorrowedFd,
    file_name: &OsStr,
    link_dir: &Path,
) -> std::result::Result<Landing, Refusal> {
    let target = rustix::fs::readlinkat(dir, file_name, Vec::new())
        .map_err(|e| Refusal::Unreadable(e.into()))?;
    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
    let shown = target.display().to_string();
    let refused = |why: &'static str| Refusal::Link {
        target: shown.clone(),
        why,
    };
    if target.is_absolute() {
        return Err(refused("is absolute"));
    }
    let landed = lexical(link_dir, &target).ok_or_else(|| refused(ESCAPES))?;
    let parts: Vec<&OsStr> = landed.iter().collect();
    match parts.as_slice() {
        [r, blobs, _] if *r == OsStr::new(repo) && *blobs == "blobs" => {}
        [r, ..] if r.to_str().is_some_and(is_repo_dir_name) && *r != OsStr::new(repo) => {
            return Err(refused("leads into another repository's blobs"))
        }
        _ => return Err(refused(NOT_IN_BLOBS)),
    }
    let blob = parts[2].to_string_lossy().into_owned();
    let blobs_dir = Path::new(repo).join("blobs");
    let blobs = open_beneath(cache, &blobs_dir, Target::Directory, Resolver::Auto)
        .map_err(|e| Refusal::Unreadable(link_error(e)))?;
    let stat = match rustix::fs::statat(&blobs, parts[2], AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(e) if e == rustix::io::Errno::NOENT => return Err(Refusal::Dangling { target: shown }),
        Err(e) => return Err(Refusal::Unreadable(e.into())),
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok(Landing {
            relative: landed,
            blob,
            identity: Identity::of_stat(&stat),
        }),
        FileType::Symlink => {
            let (relative, identity) = shared_blob(cache, blobs.as_fd(), parts[2], &blobs_dir)
                .map_err(|why| match why {
                    SharedRefusal::Why(why) => refused(why),
                    SharedRefusal::Problem(problem) => problem,
                })?;
            Ok(Landing {
                relative,
                blob,
                identity,
            })
        }
        FileType::Directory => Err(Refusal::Directory { target: shown }),
        _ => Err(Refusal::Special(
            special_kind_of_mode(stat.st_mode).unwrap_or("not a regular file"),
        )),
    }
}

const ESCAPES: &str = "leads out of the hub cache";
const NOT_IN_BLOBS: &str = "does not land directly in the repository's blobs/";

enum SharedRefusal {
    Why(&'static str),
    Problem(Refusal),
}

/// Follows the repository blob `name`, a link, into the shared Xet store: only
/// `../../blobs/HH/HASH` (64 lowercase hex, `HH` its first two) of a store that carries
/// the layout-1 marker, landing on a regular file.
fn shared_blob(
    cache: BorrowedFd,
    blobs: BorrowedFd,
    name: &OsStr,
    blobs_dir: &Path,
) -> std::result::Result<(PathBuf, Identity), SharedRefusal> {
    use SharedRefusal::{Problem, Why};
    let target = rustix::fs::readlinkat(blobs, name, Vec::new())
        .map_err(|e| Problem(Refusal::Unreadable(e.into())))?;
    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
    let landed = lexical(blobs_dir, &target).ok_or(Why(ESCAPES))?;
    // Every component, UTF-8 or not: the path checked is the path opened.
    let parts: Vec<&str> = landed.iter().map(|c| c.to_str().unwrap_or("")).collect();
    let [store, prefix, hash] = parts.as_slice() else {
        return Err(Why(
            "is a chain of links that does not end in the shared blob store",
        ));
    };
    let is_hash = hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if *store != "blobs" || !is_hash || !hash.starts_with(prefix) || prefix.len() != 2 {
        return Err(Why(
            "is a chain of links that does not end in the shared blob store",
        ));
    }
    let marker = Path::new("blobs").join(SHARED_STORE_MARKER);
    let layout = open_file_beneath(cache, &marker)
        .ok()
        .and_then(|(file, _)| {
            let mut text = Vec::new();
            io::Read::read_to_end(&mut io::Read::take(file, 16), &mut text).ok()?;
            Some(text)
        });
    if layout.as_deref() != Some(SHARED_STORE_LAYOUT) {
        return Err(Why(
            "leads into a shared blob store without huggingface_hub's layout-1 marker",
        ));
    }
    let dir = open_beneath(
        cache,
        &Path::new("blobs").join(prefix),
        Target::Directory,
        Resolver::Auto,
    )
    .map_err(|e| Problem(Refusal::Unreadable(link_error(e))))?;
    let stat = match rustix::fs::statat(&dir, *hash, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(e) if e == rustix::io::Errno::NOENT => {
            return Err(Problem(Refusal::Dangling {
                target: target.display().to_string(),
            }))
        }
        Err(e) => return Err(Problem(Refusal::Unreadable(e.into()))),
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok((landed, Identity::of_stat(&stat))),
        FileType::Symlink => Err(Why("is a chain of more links than huggingface_hub makes")),
        FileType::Directory => Err(Problem(Refusal::Directory {
            target: target.display().to_string(),
        })),
        _ => Err(Problem(Refusal::Special(
            special_kind_of_mode(stat.st_mode).unwrap_or("not a regular file"),
        ))),
    }
}

/// A link met on the way to the blobs is refused, never followed.
fn link_error(error: io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EXDEV) => io::Error::new(
            io::ErrorKind::InvalidData,
            "the way to the blobs leads through a symbolic link, which is never followed",
        ),
        _ => error,
    }
}

/// `target` read from `base` (a path beneath the cache), by its text: `None` when it is
/// absolute, climbs above the cache, or climbs after descending. The kernel takes `..`
/// after a component from wherever that component leads (`x/../blobs` with `x` a link
/// goes elsewhere), so only a leading run of `..` is read by text.
fn lexical(base: &Path, target: &Path) -> Option<PathBuf> {
    let mut parts: Vec<OsString> = base.iter().map(OsStr::to_os_string).collect();
    let mut descended = false;
    for component in target.components() {
        match component {
            Component::Normal(part) => {
                descended = true;
                parts.push(part.to_os_string())
            }
            Component::CurDir => {}
            Component::ParentDir if descended => return None,
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// The hub cache huggingface_hub uses: `HF_HUB_CACHE` (or the older
/// `HUGGINGFACE_HUB_CACHE`), else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`,
/// else `~/.cache/huggingface/hub`.
pub fn hub_cache() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = var("HF_HOME") {
        return Some(PathBuf::from(home).join("hub"));
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(cache.join("huggingface/hub"))
}

/// The model a user named: `hf://ORG/NAME[@REV]` (looked up in the hub cache), a repository
/// cache directory with `revision`, or any other path as it is.
pub fn resolve_target(given: &Path, revision: Option<&str>) -> Result<PathBuf> {
    let text = given.to_str().unwrap_or("");
    if let Some(parsed) = parse_uri(text) {
        let (dir, at) = parsed.map_err(Error::Usage)?;
        let revision = match (at.as_deref(), revision) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::Usage(format!(
                    "{text} names revision {a}, --revision names {b}; give one"
                )))
            }
            (a, b) => a.or(b).unwrap_or("main"),
        };
        let cache = hub_cache().ok_or_else(|| {
            Error::Usage(format!(
                "{text}: no hub cache to look in (set HF_HUB_CACHE or HF_HOME)"
            ))
        })?;
        let repo = cache.join(dir);
        if !repo.is_dir() {
            return Err(Error::input(
                &repo,
                format!("{text} is not in the hub cache {}", cache.display()),
            ));
        }
        return snapshot_of(&repo, revision);
    }
    match revision {
        None => Ok(given.to_path_buf()),
        Some(revision) => {
            let name = given
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            if !is_repo_dir_name(&name) {
                return Err(Error::Usage(format!(
                    "--revision goes with a hub cache repository directory (models--ORG--NAME) or hf://ORG/NAME, not {}",
                    given.display()
                )));
            }
            snapshot_of(given, revision)
        }
    }
}

/// `hf://ORG/NAME[@REV]` as its repository directory name and revision, or why it is
/// malformed; `None` for anything else.
pub fn parse_uri(text: &str) -> Option<std::result::Result<(String, Option<String>), String>> {
    let rest = text.strip_prefix("hf://")?;
    let (repo_id, at) = match rest.split_once('@') {
        Some((id, rev)) => (id, Some(rev)),
        None => (rest, None),
    };
    let Some(dir) = repo_dir_name(repo_id) else {
        return Some(Err(format!(
            "{text}: a Hugging Face model is hf://ORG/NAME or hf://NAME, optionally @REVISION"
        )));
    };
    match at {
        Some(rev) if !is_plain_revision(rev) => Some(Err(format!(
            "{text}: revision {rev:?} is not a commit or a ref name"
        ))),
        at => Some(Ok((dir, at.map(str::to_string)))),
    }
}

/// A commit or a ref name: plain path components only.
fn is_plain_revision(revision: &str) -> bool {
    !revision.is_empty()
        && Path::new(revision)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `models--ORG--NAME` for `ORG/NAME` (or `models--NAME`), when the id is one that
/// huggingface_hub accepts (its `validate_repo_id`): at most one `/`; each part 1 to 96 of
/// `A-Z a-z 0-9 _ - .`, beginning and ending with a letter, digit or `_`; no `--` or `..`;
/// no `.git` at the end. Anything looser lets two ids share a directory (`a-/b` and `a/-b`
/// are both `models--a---b`).
fn repo_dir_name(repo_id: &str) -> Option<String> {
    let parts: Vec<&str> = repo_id.split('/').collect();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let plain = |p: &&str| {
        let bytes = p.as_bytes();
        (1..=96).contains(&bytes.len())
            && bytes.iter().all(|&b| word(b) || b"-.".contains(&b))
            && word(bytes[0])
            && word(bytes[bytes.len() - 1])
    };
    let well_formed = parts.len() <= 2
        && parts.iter().all(plain)
        && !repo_id.contains("--")
        && !repo_id.contains("..")
        && !repo_id.ends_with(".git");
    well_formed.then(|| format!("models--{}", parts.join("--")))
}

/// The snapshot of the repository directory `repo` at `revision`: a commit that has a
/// snapshot, or a ref (`main`, `refs/pr/1`) in `refs/` naming one.
pub fn snapshot_of(repo: &Path, revision: &str) -> Result<PathBuf> {
    let root = RootDir::open(repo).map_err(|e| Error::io(repo, e))?;
    if !is_plain_revision(revision) {
        return Err(Error::Usage(format!(
            "revision {revision:?} is not a commit or a ref name"
        )));
    }
    let is_snapshot = |commit: &str| {
        open_beneath(
            root.fd(),
            &Path::new("snapshots").join(commit),
            Target::Directory,
            Resolver::Auto,
        )
        .is_ok()
    };
    if is_commit(revision) && is_snapshot(revision) {
        return Ok(repo.join("snapshots").join(revision));
    }
    let ref_path = Path::new("refs").join(revision.strip_prefix("refs/").unwrap_or(revision));
    let commit = match read_ref(root.fd(), &ref_path) {
        Ok(commit) => commit,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::input(
                repo,
                format!("has no snapshot or ref named {revision}"),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(Error::input(repo.join(&ref_path), e.to_string()))
        }
        Err(e) => return Err(Error::io(repo.join(&ref_path), e)),
    };
    if !is_snapshot(&commit) {
        return Err(Error::input(
            repo.join(&ref_path),
            format!("points at {commit}, which has no snapshot in this cache"),
        ));
    }
    Ok(repo.join("snapshots").join(commit))
}

/// The commit a ref file names, read beneath the repository without following a link.
pub fn read_ref(repo: BorrowedFd, relative: &Path) -> io::Result<String> {
    let (file, _) = open_file_beneath(repo, relative).map_err(|e| match e {
        crate::hash::ReadError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.verdict().1),
    })?;
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(file, 256), &mut text)?;
    // huggingface_hub reads the file verbatim and looks for the snapshot of that very
    // text: a trailing newline names another directory, so nothing is trimmed.
    if !is_commit(&text) {
        let why = if is_commit(text.trim()) {
            "holds a commit hash with spaces or a newline around it, which huggingface_hub would read as the name of another snapshot"
        } else {
            "does not hold a commit hash (exactly 40 hex digits)"
        };
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    Ok(text)
}

/// 40 lowercase hex digits: a git commit (or blob) name.
pub fn is_commit(text: &str) -> bool {
    is_lower_hex(text, 40)
}

/// Exactly `len` lowercase hex digits.
pub fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether the directory `model` is a `--local-dir` download, whose
/// `.cache/huggingface/download/` holds huggingface_hub's metadata of each file.
pub fn is_local_dir(model: &Path) -> bool {
    std::fs::symlink_metadata(model.join(LOCAL_DIR_METADATA).join("download"))
        .is_ok_and(|m| m.is_dir())
        && std::fs::symlink_metadata(model.join(".cache")).is_ok_and(|m| m.is_dir())
}

/// Leaves a `--local-dir` download's own metadata out of the model at `model`: the files
/// huggingface_hub writes under `.cache/huggingface/` and nothing else there. They are its
/// `.gitignore` (`*`), `CACHEDIR.TAG`, and in `download/` (or `upload/`) a `NAME.metadata`
/// per file that holds what huggingface_hub writes (a commit, an etag and a time), with
/// empty `.lock` files, each a regular file. Anything else under `.cache/huggingface/` (a
/// link, another file, a metadata file of other content) is part of the model as any file
/// is: a directory that only looks like a download hides nothing.
pub fn ignore_local_dir_metadata(model: &Path, ignore: &mut IgnoreSet) {
    if !is_local_dir(model) {
        return;
    }
    let Ok(root) = RootDir::open(model) else {
        return;
    };
    let mut found = Vec::new();
    metadata_files(&model.join(LOCAL_DIR_METADATA), "", &mut found);
    for name in found {
        let full = format!("{LOCAL_DIR_METADATA}/{name}");
        if is_download_metadata(root.fd(), &name, &full) {
            ignore.insert(full);
        }
    }
}

/// The regular files under `dir` (named from `prefix`), no link followed: those of
/// `.cache/huggingface/` itself and all below its `download/` and `upload/` (whose metadata
/// files mirror the model's paths). Anything else is left to the walk, which finds it a file
/// of the model.
fn metadata_files(dir: &Path, prefix: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let (Ok(kind), Some(name)) = (
            entry.file_type(),
            entry.file_name().to_str().map(String::from),
        ) else {
            continue;
        };
        let below = prefix.starts_with("download/") || prefix.starts_with("upload/");
        if kind.is_file() {
            found.push(format!("{prefix}{name}"));
        } else if kind.is_dir()
            && (below || (prefix.is_empty() && (name == "download" || name == "upload")))
        {
            metadata_files(&entry.path(), &format!("{prefix}{name}/"), found);
        }
    }
}

/// Whether `name` (under `.cache/huggingface/`, at `full` beneath the model) is a file
/// huggingface_hub wrote there, with the content it writes.
fn is_download_metadata(model: BorrowedFd, name: &str, full: &str) -> bool {
    let Ok((opened, _)) = open_file_beneath(model, Path::new(full)) else {
        return false;
    };
    let mut text = String::new();
    if io::Read::read_to_string(&mut io::Read::take(opened, 4097), &mut text).is_err()
        || text.len() > 4096
    {
        return false;
    }
    let (directory, file) = name.split_once('/').unwrap_or(("", name));
    // `download/sub/x.metadata` is the metadata of `sub/x`.
    match (directory, file) {
        ("", ".gitignore") => text.trim() == "*",
        ("", "CACHEDIR.TAG") => {
            let mut lines = text.lines();
            lines.next() == Some("Signature: 8a477f597d28d172789f06886806bc55")
                && lines.all(|l| l.is_empty() || l.starts_with('#'))
        }
        ("", ".gitignore.lock") => text.is_empty(),
        ("download" | "upload", file) if file.ends_with(".lock") => text.is_empty(),
        ("download" | "upload", file) if file.ends_with(".metadata") => {
            download_metadata(&text).is_some()
        }
        _ => false,
    }
}

/// The commit and etag of a `--local-dir` download's `NAME.metadata`, as huggingface_hub
/// writes it: three lines, the commit, the etag and a timestamp; `None` for anything else.
pub fn download_metadata(text: &str) -> Option<(String, String)> {
    let mut lines = text.lines().map(str::trim);
    let (commit, etag, time) = (lines.next()?, lines.next()?, lines.next()?);
    let etag = etag.trim_matches('"');
    let plain = is_commit(commit)
        && !etag.is_empty()
        && etag.bytes().all(|b| b.is_ascii_hexdigit())
        && time.parse::<f64>().is_ok_and(f64::is_finite)
        && lines.all(str::is_empty);
    plain.then(|| (commit.to_string(), etag.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_read_by_their_text() {
        let base = Path::new("models--a--b/snapshots/rev");
        assert_eq!(
            lexical(base, Path::new("../../blobs/x")),
            Some(PathBuf::from("models--a--b/blobs/x"))
        );
        assert_eq!(
            lexical(base, Path::new("../../../../../etc")),
            None,
            "above the cache"
        );
        assert_eq!(lexical(base, Path::new("/etc/passwd")), None);
        // `x` may be a link: `..` after it is not where the text says.
        assert_eq!(lexical(base, Path::new("../../x/../blobs/n")), None);
    }

    #[test]
    fn repo_ids_map_to_cache_directories() {
        assert_eq!(
            repo_dir_name("org/name").as_deref(),
            Some("models--org--name")
        );
        assert_eq!(repo_dir_name("gpt2").as_deref(), Some("models--gpt2"));
        assert_eq!(
            repo_dir_name("Org_1/model.v2-x").as_deref(),
            Some("models--Org_1--model.v2-x")
        );
        // `a-/b` and `a/-b` would both be `models--a---b`.
        for bad in [
            "",
            "a/b/c",
            "../x",
            "a//b",
            "a/..",
            "a--b/c",
            "a-/b",
            "a/-b",
            "a/b.",
            ".a/b",
            "a/b.git",
            "a..b",
            "caf\u{e9}/x",
        ] {
            assert_eq!(repo_dir_name(bad), None, "{bad}");
        }
    }
}
