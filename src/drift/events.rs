//! Change events for `drift watch --on-change`: inotify watches on every model target's
//! directories (and, for a file or a linked file, its folder, filtered to its name) and
//! on its approval file. A write, attribute change, rename or deletion names the targets
//! it touches, and only those are checked again; a burst of events is coalesced into one
//! check. Lost events (the kernel's queue overflowed) or a watch that could not be placed
//! (the watch limit) are a full run, said as such.
//!
//! A file of a model with more than one name (a hard link to a file outside the model) can
//! be written through a name no directory watch sees, so such a file is also watched itself:
//! a watch on its inode sees writes and attribute changes through any name. When that watch
//! cannot be placed, the target is named as covered by the full runs only.
//!
//! Watches see writes made through `write(2)` and friends; a write through a shared memory
//! mapping raises no inotify event, which the periodic full runs still catch.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use super::config::{Deployed, Target};
use crate::approval::Approval;

/// A burst of events is over once none came for this long…
const QUIET: Duration = Duration::from_millis(150);
/// …or this long after its first event, so a steady stream of writes still gets checked.
const LONGEST_WAIT: Duration = Duration::from_millis(800);
/// How often the wait looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// What ends a wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// The periodic run is due.
    Due,
    /// Files of these targets changed.
    Changed(Vec<String>),
    /// Events may have been lost; every target must be checked. The text says why.
    FullRun(String),
    /// The stop flag was set.
    Stopped,
}

/// A target whose watches are incomplete, and why: only full runs cover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwatched {
    pub target: String,
    pub reason: String,
}

/// One thing to watch for a target: a directory, all of it or only the entry `name`; or,
/// with `links`, the file at `dir` itself, which has that many names (hard links).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Spot {
    dir: PathBuf,
    name: Option<OsString>,
    links: Option<u64>,
}

/// The watches of every model target.
pub struct Watcher {
    fd: OwnedFd,
    /// For each watch descriptor, the targets it serves and the entry each cares about.
    owners: HashMap<i32, Vec<(String, Option<OsString>)>>,
    /// Each target's model path and approval file, to place its watches again.
    roots: HashMap<String, (PathBuf, Option<PathBuf>)>,
}

/// What one batch of events asks for.
#[derive(Debug, Default)]
struct Pending {
    targets: BTreeSet<String>,
    lost: Option<String>,
}

impl Watcher {
    /// An inotify instance with no watches.
    pub fn new() -> io::Result<Watcher> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        Ok(Watcher {
            fd,
            owners: HashMap::new(),
            roots: HashMap::new(),
        })
    }

    /// Replaces every watch by the watches of `targets` (their model paths; an image has
    /// no files here). Returns the targets whose watches are incomplete.
    pub fn watch_all(&mut self, targets: &[Target]) -> io::Result<Vec<Unwatched>> {
        // A fresh instance: no event of a watch removed before this call comes later.
        *self = Watcher::new()?;
        let mut unwatched = Vec::new();
        for target in targets {
            if let Deployed::Model { path, approval } = &target.subject {
                self.roots.insert(
                    target.name.clone(),
                    (path.clone(), approval_file(approval).map(Path::to_path_buf)),
                );
                unwatched.extend(self.place(&target.name));
            }
        }
        Ok(unwatched)
    }

    /// How many watches are in place.
    pub fn watches(&self) -> usize {
        self.owners.len()
    }

    /// Places the watches of target `name` again, after its tree changed (a directory
    /// was made or moved in).
    fn place(&mut self, name: &str) -> Option<Unwatched> {
        let (path, approval) = self.roots.get(name).cloned()?;
        for owners in self.owners.values_mut() {
            owners.retain(|(target, _)| target != name);
        }
        let mut spots = spots_of(&path);
        spots.extend(approval.as_deref().and_then(entry_spot));
        let mut problem = None;
        for spot in spots {
            if let Err(e) = self.add(name, &spot) {
                let mut reason = describe_watch_error(&spot.dir, &e);
                if let Some(links) = spot.links {
                    reason = format!(
                        "{} has {links} names (hard links), so a write through a name outside \
                         the model is seen by no directory watch, and the file itself cannot be \
                         watched: {reason}",
                        spot.dir.display()
                    );
                }
                problem.get_or_insert(Unwatched {
                    target: name.to_string(),
                    reason,
                });
            }
        }
        let unused: Vec<i32> = self
            .owners
            .iter()
            .filter(|(_, owners)| owners.is_empty())
            .map(|(wd, _)| *wd)
            .collect();
        for wd in unused {
            self.owners.remove(&wd);
            let _ = inotify::remove_watch(&self.fd, wd);
        }
        problem
    }

    fn add(&mut self, target: &str, spot: &Spot) -> io::Result<()> {
        let mask = match spot.links {
            // The file's inode: a write or attribute change through any of its names. Not
            // followed if it has become a link since it was listed.
            Some(_) => {
                WatchFlags::MODIFY
                    | WatchFlags::ATTRIB
                    | WatchFlags::CLOSE_WRITE
                    | WatchFlags::DELETE_SELF
                    | WatchFlags::MOVE_SELF
                    | WatchFlags::DONT_FOLLOW
            }
            None => {
                WatchFlags::MODIFY
                    | WatchFlags::ATTRIB
                    | WatchFlags::CLOSE_WRITE
                    | WatchFlags::CREATE
                    | WatchFlags::DELETE
                    | WatchFlags::DELETE_SELF
                    | WatchFlags::MOVE_SELF
                    | WatchFlags::MOVED_FROM
                    | WatchFlags::MOVED_TO
                    | WatchFlags::ONLYDIR
            }
        };
        match inotify::add_watch(&self.fd, spot.dir.as_path(), mask) {
            Ok(wd) => {
                let owners = self.owners.entry(wd).or_default();
                let entry = (target.to_string(), spot.name.clone());
                if !owners.contains(&entry) {
                    owners.push(entry);
                }
                Ok(())
            }
            // A directory gone since it was listed: its parent's watch saw it go.
            Err(e) if e == rustix::io::Errno::NOENT => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for the first of: `until`, the stop flag, or a burst of changes (which it
    /// lets settle, then names the targets it touched, their watches placed again).
    pub fn wait(&mut self, until: Instant, stop: &AtomicBool) -> io::Result<Wake> {
        let mut pending = Pending::default();
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(Wake::Stopped);
            }
            let now = Instant::now();
            if let Some(first) = first {
                if now.duration_since(last) >= QUIET || now.duration_since(first) >= LONGEST_WAIT {
                    return Ok(self.settle(pending));
                }
            } else if now >= until {
                return Ok(Wake::Due);
            }
            let timeout = match first {
                Some(_) => QUIET.min(POLL),
                None => until.saturating_duration_since(now).min(POLL),
            };
            if self.poll(timeout)? && self.read_events(&mut pending)? {
                last = Instant::now();
                first.get_or_insert(last);
            }
        }
    }

    /// The wake a settled batch of events calls for.
    fn settle(&mut self, pending: Pending) -> Wake {
        if let Some(reason) = pending.lost {
            return Wake::FullRun(reason);
        }
        for name in &pending.targets {
            if let Some(problem) = self.place(name) {
                return Wake::FullRun(format!(
                    "target \"{}\" cannot be watched: {}",
                    problem.target, problem.reason
                ));
            }
        }
        Wake::Changed(pending.targets.into_iter().collect())
    }

    /// Whether events are ready within `timeout`.
    fn poll(&self, timeout: Duration) -> io::Result<bool> {
        let mut fds = [libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let millis = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one pollfd, which outlives the call.
        match unsafe { libc::poll(fds.as_mut_ptr(), 1, millis) } {
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            n => Ok(n > 0),
        }
    }

    /// Reads every queued event into `pending`; whether any of them mattered.
    fn read_events(&mut self, pending: &mut Pending) -> io::Result<bool> {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 64 << 10];
        let mut events = Vec::new();
        {
            let mut reader = inotify::Reader::new(self.fd.as_fd(), &mut buffer);
            loop {
                match reader.next() {
                    Ok(event) => events.push((
                        event.wd(),
                        event.events(),
                        event
                            .file_name()
                            .map(|n| OsStr::from_bytes(n.to_bytes()).to_os_string()),
                    )),
                    Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => {
                        break
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let mut mattered = false;
        for (wd, flags, name) in events {
            mattered |= self.note(wd, flags, name.as_deref(), pending);
        }
        Ok(mattered)
    }

    /// Records what one event asks for; whether it mattered.
    fn note(
        &mut self,
        wd: i32,
        flags: ReadFlags,
        name: Option<&OsStr>,
        pending: &mut Pending,
    ) -> bool {
        if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
            pending.lost.get_or_insert_with(|| {
                "the kernel's inotify event queue overflowed (fs.inotify.max_queued_events), so \
                 changes may have been missed"
                    .to_string()
            });
            return true;
        }
        let Some(owners) = self.owners.get(&wd) else {
            return false;
        };
        let mut mattered = false;
        for (target, wanted) in owners {
            // An event on the watched directory itself has no name.
            if wanted.is_none() || name.is_none() || wanted.as_deref() == name {
                pending.targets.insert(target.clone());
                mattered = true;
            }
        }
        if flags.contains(ReadFlags::IGNORED) {
            // The directory went away; its watch is gone with it.
            self.owners.remove(&wd);
        }
        mattered
    }
}

/// The file an approval is read from, when it is a file on this host.
fn approval_file(approval: &Approval) -> Option<&Path> {
    match approval {
        Approval::Manifest(file)
        | Approval::Signature { bundle: file, .. }
        | Approval::CheckList { list: file, .. } => file.file(),
        Approval::Pinned { .. } => None,
    }
}

/// The folder of `path`, filtered to its name: sees it written, replaced or removed.
fn entry_spot(path: &Path) -> Option<Spot> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some(Spot {
        dir,
        name: Some(name.to_os_string()),
        links: None,
    })
}

/// The watch of a regular file's own inode, when the file has more than one name: a hard
/// link elsewhere writes it where no directory watch of the model looks.
fn inode_spot(file: &Path, meta: &std::fs::Metadata) -> Option<Spot> {
    use std::os::unix::fs::MetadataExt;
    (meta.is_file() && meta.nlink() > 1).then(|| Spot {
        dir: file.to_path_buf(),
        name: None,
        links: Some(meta.nlink()),
    })
}

/// Where the changes of a model at `path` show: the entry itself in its folder, every
/// directory of its tree, the real place of every link in it (a Hugging Face snapshot's
/// files are links into `blobs/`), and every file in it that has other names.
fn spots_of(path: &Path) -> Vec<Spot> {
    let mut spots: Vec<Spot> = entry_spot(path).into_iter().collect();
    let mut seen = HashSet::new();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => link_spots(path, &mut spots, &mut seen),
        Ok(meta) if meta.is_dir() => tree_spots(path, &mut spots, &mut seen),
        Ok(meta) => spots.extend(inode_spot(path, &meta)),
        _ => {}
    }
    spots
}

fn tree_spots(dir: &Path, spots: &mut Vec<Spot>, seen: &mut HashSet<PathBuf>) {
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !seen.insert(real) {
        return;
    }
    spots.push(Spot {
        dir: dir.to_path_buf(),
        name: None,
        links: None,
    });
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            tree_spots(&path, spots, seen);
        } else if kind.is_symlink() {
            link_spots(&path, spots, seen);
        } else if kind.is_file() {
            if let Ok(meta) = entry.metadata() {
                spots.extend(inode_spot(&path, &meta));
            }
        }
    }
}

/// A link's real place: its target's folder, filtered to its name, or its tree.
fn link_spots(link: &Path, spots: &mut Vec<Spot>, seen: &mut HashSet<PathBuf>) {
    let Ok(real) = std::fs::canonicalize(link) else {
        return;
    };
    if real.is_dir() {
        tree_spots(&real, spots, seen);
    } else {
        spots.extend(entry_spot(&real));
        if let Ok(meta) = std::fs::symlink_metadata(&real) {
            spots.extend(inode_spot(&real, &meta));
        }
    }
}

/// A watch that could not be placed, in words; the watch limit says which setting.
fn describe_watch_error(dir: &Path, error: &io::Error) -> String {
    if error.raw_os_error() == Some(libc::ENOSPC) {
        let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".to_string());
        format!(
            "the inotify watch limit is reached at {} (fs.inotify.max_user_watches = {limit})",
            dir.display()
        )
    } else {
        format!("cannot watch {}: {error}", dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher_of(dir: &Path) -> Watcher {
        let mut watcher = Watcher::new().unwrap();
        watcher
            .roots
            .insert("m".to_string(), (dir.join("model"), None));
        assert_eq!(watcher.place("m"), None);
        watcher
    }

    // A synthetic event: the kernel's overflow notice is fed to the handler directly, since
    // a test cannot shrink one process's queue. tests/events.rs provokes a real overflow.
    #[test]
    fn an_overflow_notice_asks_for_a_full_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("model")).unwrap();
        let mut watcher = watcher_of(dir.path());
        let mut pending = Pending::default();
        assert!(watcher.note(-1, ReadFlags::QUEUE_OVERFLOW, None, &mut pending));
        match watcher.settle(pending) {
            Wake::FullRun(reason) => assert!(reason.contains("overflowed"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_watch_limit_is_named_with_its_setting() {
        let message = describe_watch_error(
            Path::new("/srv/m"),
            &io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(
            message.contains("fs.inotify.max_user_watches") && message.contains("/srv/m"),
            "{message}"
        );
    }

    #[test]
    fn a_write_through_a_hard_link_outside_the_model_names_the_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("model")).unwrap();
        std::fs::create_dir_all(dir.path().join("store")).unwrap();
        std::fs::write(dir.path().join("store/blob"), b"approved").unwrap();
        std::fs::hard_link(
            dir.path().join("store/blob"),
            dir.path().join("model/w.bin"),
        )
        .unwrap();
        let mut watcher = watcher_of(dir.path());
        let stop = AtomicBool::new(false);
        std::fs::write(dir.path().join("store/blob"), b"tampered").unwrap();
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            watcher.wait(later, &stop).unwrap(),
            Wake::Changed(vec!["m".to_string()])
        );
    }

    #[test]
    fn a_write_deep_in_the_tree_and_a_new_directory_name_the_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("model/sub")).unwrap();
        std::fs::write(dir.path().join("model/sub/w.bin"), b"x").unwrap();
        std::fs::write(dir.path().join("beside"), b"x").unwrap();
        let mut watcher = watcher_of(dir.path());
        let stop = AtomicBool::new(false);
        std::fs::write(dir.path().join("beside"), b"not the model").unwrap();
        let soon = Instant::now() + Duration::from_millis(300);
        assert_eq!(watcher.wait(soon, &stop).unwrap(), Wake::Due);
        std::fs::write(dir.path().join("model/sub/w.bin"), b"y").unwrap();
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            watcher.wait(later, &stop).unwrap(),
            Wake::Changed(vec!["m".to_string()])
        );
        // A directory made after the watches were placed is watched once the event is seen.
        std::fs::create_dir(dir.path().join("model/new")).unwrap();
        assert!(matches!(
            watcher.wait(later, &stop).unwrap(),
            Wake::Changed(_)
        ));
        std::fs::write(dir.path().join("model/new/f"), b"z").unwrap();
        assert!(matches!(
            watcher.wait(later, &stop).unwrap(),
            Wake::Changed(_)
        ));
    }
}
