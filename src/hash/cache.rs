//! A tamper-aware cache of file digests, so a re-check of files that did not change
//! costs a `stat` instead of a read.
//!
//! Entries are keyed by device, inode, size, and modification and change times in
//! nanoseconds ([`Stamp::cache_key`]): the change time cannot be set from user space, so a
//! file edited and then given its old mtime back (`touch -r`) misses. Every entry carries an
//! HMAC-SHA256 under a key file (created 0600 when absent), so an entry edited by hand
//! vouches for nothing. Each run re-hashes a uniformly random sample of the cached files
//! within a byte budget (at least one file), and the whole scope every `full_every`; a
//! mismatch in the sample, or a bad HMAC, turns the cache off for the scope and every file
//! is hashed. What defeats it: root with raw disk or clock access can change bytes without
//! moving ctime; the sample and the full runs bound how long that can go unseen.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

use super::algorithm::{Algorithm, Digest};
use super::reader::{ReadError, Stamp};
use super::task::Task;

/// Hashes the given tasks without the cache: the engine's own pass, handed in so that the
/// cache does not depend on the scheduler that holds it.
pub(super) type HashUncached<'a> =
    dyn Fn(&[Task], &[Algorithm]) -> (Vec<Result<Vec<Digest>, ReadError>>, u64) + 'a;
use crate::error::{Error, Result};

/// How much each run re-reads of what the cache would vouch for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// This fraction of the scope's bytes (the default is 1%).
    Fraction(f64),
    /// At most this many bytes.
    Bytes(u64),
    /// No sample: only the full runs re-read what the cache vouches for.
    Off,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::Fraction(0.01)
    }
}

/// Where the cache lives and how far it is trusted.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheSettings {
    pub path: PathBuf,
    /// The HMAC key file; by default the cache's path with `.key` appended.
    pub key: PathBuf,
    pub rehash_budget: Budget,
    pub full_every: Duration,
}

/// `full_every` unless set: a week.
pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);

impl CacheSettings {
    /// The defaults for a cache at `path`.
    pub fn at(path: PathBuf) -> CacheSettings {
        let mut key = path.clone().into_os_string();
        key.push(".key");
        CacheSettings {
            path,
            key: PathBuf::from(key),
            rehash_budget: Budget::default(),
            full_every: DEFAULT_FULL_EVERY,
        }
    }

    /// Refuses a cache or key file inside `model`: a cache that lives in what it vouches
    /// for would change the model, and whoever can write the model could write it.
    pub fn refuse_inside(&self, model: &Path) -> Result<()> {
        let Ok(model) = model.canonicalize() else {
            return Ok(());
        };
        for (path, what) in [(&self.path, "cache"), (&self.key, "cache_key")] {
            if absolute(path).starts_with(&model) {
                return Err(Error::input(
                    path,
                    format!(
                        "the hash {what} lies inside the model {}; keep it outside every model",
                        model.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `path` made absolute with its existing ancestors resolved, for a containment check.
fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut base = path.as_path();
    loop {
        if let Ok(real) = base.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return path,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    entries: HashMap<String, Signed>,
    /// When each scope last had every file hashed (Unix seconds).
    #[serde(default)]
    full: HashMap<String, Signed>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Signed {
    value: String,
    mac: String,
}

/// What the cache did in one check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CacheUse {
    /// Bytes whose digest was taken from the cache rather than read.
    pub bytes_from_cache: u64,
    pub files_from_cache: u64,
    /// Files re-hashed because the sample chose them.
    pub files_sampled: u64,
    /// Why every file was hashed, when the cache vouched for none.
    pub note: Option<String>,
}

/// The cache as one scope (a drift target, a `verify` model) uses it.
pub struct Cache {
    settings: CacheSettings,
    scope: String,
    key: hmac::Key,
    stored: Stored,
    updates: Mutex<Vec<(String, String)>>,
    full_done: Mutex<bool>,
    used: Mutex<CacheUse>,
}

enum Lookup {
    Hit(Digest),
    Miss,
    Forged,
}

impl Cache {
    /// Opens the cache for `scope`, creating its key file (0600) when absent. A cache file
    /// that is not there yet is empty; one that cannot be parsed is refused.
    pub fn open(settings: &CacheSettings, scope: &str) -> Result<Cache> {
        let key = load_or_create_key(&settings.key)?;
        let stored = read_stored(&settings.path)?;
        Ok(Cache {
            settings: settings.clone(),
            scope: scope.to_string(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            stored,
            updates: Mutex::new(Vec::new()),
            full_done: Mutex::new(false),
            used: Mutex::new(CacheUse::default()),
        })
    }

    /// What the cache did so far.
    pub fn used(&self) -> CacheUse {
        self.used.lock().expect("cache lock").clone()
    }

    fn mac(&self, what: &str, key: &str, value: &str) -> String {
        let message = format!("vouch-cache-v1\0{what}\0{key}\0{value}");
        hex::encode(hmac::sign(&self.key, message.as_bytes()).as_ref())
    }

    fn checked(&self, what: &str, key: &str, signed: &Signed) -> bool {
        let Ok(tag) = hex::decode(&signed.mac) else {
            return false;
        };
        let message = format!("vouch-cache-v1\0{what}\0{key}\0{}", signed.value);
        hmac::verify(&self.key, message.as_bytes(), &tag).is_ok()
    }

    fn lookup(&self, key: &str) -> Lookup {
        match self.stored.entries.get(key) {
            None => Lookup::Miss,
            Some(signed) if !self.checked("entry", key, signed) => Lookup::Forged,
            Some(signed) => match Digest::from_prefixed(&signed.value) {
                Ok(digest) => Lookup::Hit(digest),
                Err(_) => Lookup::Forged,
            },
        }
    }

    /// When the full run is due, why.
    fn full_due(&self) -> Option<String> {
        let Some(signed) = self.stored.full.get(&self.scope) else {
            return Some("no full run of it is on record yet".to_string());
        };
        if !self.checked("full", &self.scope, signed) {
            return Some("the record of its last full run fails its HMAC".to_string());
        }
        let last: i64 = signed.value.parse().unwrap_or(0);
        let age = jiff::Timestamp::now().as_second() - last;
        (age < 0 || age as u64 >= self.settings.full_every.as_secs()).then(|| {
            format!(
                "a full run is due (full_every = {} s)",
                self.settings.full_every.as_secs()
            )
        })
    }

    /// As the engine's `hash_all`, taking whole-file digests from the cache where it can.
    pub(super) fn hash_all(
        &self,
        hash_uncached: &HashUncached,
        tasks: &[Task],
        algorithms: &[Algorithm],
    ) -> (Vec<Result<Vec<Digest>, ReadError>>, u64) {
        if algorithms.len() != 1 {
            return hash_uncached(tasks, algorithms);
        }
        let algorithm = algorithms[0];
        // What the cache says of each whole-file task, from the file as it is now.
        let mut keys: Vec<Option<(String, Stamp)>> = Vec::with_capacity(tasks.len());
        let mut hits: BTreeMap<usize, Digest> = BTreeMap::new();
        let mut forged = false;
        for (index, task) in tasks.iter().enumerate() {
            let stamp = (task.start == 0 && task.end == task.identity.len)
                .then(|| settled_stamp(&task.location))
                .flatten()
                .filter(|stamp| stamp.identity() == task.identity);
            let Some(stamp) = stamp else {
                keys.push(None);
                continue;
            };
            let key = format!("{}:{}", algorithm.name(), stamp.cache_key());
            match self.lookup(&key) {
                Lookup::Hit(digest) if digest.algorithm == algorithm => {
                    hits.insert(index, digest);
                }
                Lookup::Hit(_) | Lookup::Forged => forged = true,
                Lookup::Miss => {}
            }
            keys.push(Some((key, stamp)));
        }
        let mut note = if forged {
            Some("a cache entry fails its HMAC (edited by hand?)".to_string())
        } else {
            self.full_due()
        };
        let total: u64 = tasks.iter().map(|t| t.end - t.start).sum();
        let sample = if note.is_none() {
            self.choose_sample(&hits, tasks, total)
        } else {
            HashSet::new()
        };
        // Hash what missed, the sample, and (with the cache off) everything.
        let mut to_hash: Vec<usize> = (0..tasks.len())
            .filter(|i| note.is_some() || sample.contains(i) || !hits.contains_key(i))
            .collect();
        let (mut results, mut bytes) = self.hash_some(hash_uncached, tasks, &to_hash, algorithms);
        let mut files_sampled = 0;
        if note.is_none() {
            for (index, cached) in &hits {
                if !sample.contains(index) {
                    continue;
                }
                files_sampled += 1;
                if let Some(Ok(found)) = results.get(index) {
                    if found.first() != Some(cached) {
                        note = Some(format!(
                            "the sample found a cached digest that does not match {}",
                            tasks[*index].location.path().display()
                        ));
                    }
                }
            }
            if note.is_some() {
                let rest: Vec<usize> = hits
                    .keys()
                    .copied()
                    .filter(|i| !sample.contains(i))
                    .collect();
                let (more, more_bytes) = self.hash_some(hash_uncached, tasks, &rest, algorithms);
                results.extend(more);
                bytes += more_bytes;
                to_hash.extend(rest);
            }
        }
        let mut used = CacheUse {
            files_sampled,
            ..CacheUse::default()
        };
        let mut out = Vec::with_capacity(tasks.len());
        let hashed: Vec<bool> = (0..tasks.len()).map(|i| results.contains_key(&i)).collect();
        for (index, task) in tasks.iter().enumerate() {
            match results.remove(&index) {
                Some(result) => out.push(result),
                None => {
                    let digest = &hits[&index];
                    used.bytes_from_cache += task.end - task.start;
                    used.files_from_cache += 1;
                    out.push(Ok(vec![digest.clone()]));
                }
            }
        }
        self.remember(tasks, &keys, &out, &hashed);
        if used.files_from_cache == 0 && out.iter().all(Result::is_ok) {
            *self.full_done.lock().expect("cache lock") = true;
        }
        used.note = note;
        let mut total_used = self.used.lock().expect("cache lock");
        total_used.bytes_from_cache += used.bytes_from_cache;
        total_used.files_from_cache += used.files_from_cache;
        total_used.files_sampled += used.files_sampled;
        if used.note.is_some() {
            total_used.note = used.note;
        }
        (out, bytes)
    }

    /// Cached files chosen uniformly at random, within the byte budget, at least one.
    fn choose_sample(
        &self,
        hits: &BTreeMap<usize, Digest>,
        tasks: &[Task],
        total: u64,
    ) -> HashSet<usize> {
        let budget = match self.settings.rehash_budget {
            Budget::Fraction(f) => (total as f64 * f) as u64,
            Budget::Bytes(b) => b,
            Budget::Off => return HashSet::new(),
        };
        let mut order: Vec<usize> = hits.keys().copied().collect();
        let mut random = vec![0u8; 8 * order.len()];
        if !kernel_random(&mut random) {
            // No randomness: a predictable sample would let a tamperer avoid it, so every
            // cached file is re-hashed.
            return hits.keys().copied().collect();
        }
        for i in (1..order.len()).rev() {
            let bytes: [u8; 8] = random[8 * i..8 * i + 8].try_into().expect("8 bytes");
            let j = (u64::from_le_bytes(bytes) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut chosen = HashSet::new();
        let mut spent = 0u64;
        for index in order {
            let len = tasks[index].end - tasks[index].start;
            if chosen.is_empty() || spent + len <= budget {
                spent += len;
                chosen.insert(index);
            }
        }
        chosen
    }

    fn hash_some(
        &self,
        hash_uncached: &HashUncached,
        tasks: &[Task],
        indices: &[usize],
        algorithms: &[Algorithm],
    ) -> (HashMap<usize, Result<Vec<Digest>, ReadError>>, u64) {
        let some: Vec<Task> = indices.iter().map(|&i| tasks[i].clone()).collect();
        let (results, bytes) = hash_uncached(&some, algorithms);
        (indices.iter().copied().zip(results).collect(), bytes)
    }

    /// Notes the digests of the files hashed (`hashed`) that are still as they were stamped
    /// before the hashing; what came from the cache is there already.
    fn remember(
        &self,
        tasks: &[Task],
        keys: &[Option<(String, Stamp)>],
        results: &[Result<Vec<Digest>, ReadError>],
        hashed: &[bool],
    ) {
        let mut updates = self.updates.lock().expect("cache lock");
        for (((task, key), result), _) in tasks
            .iter()
            .zip(keys)
            .zip(results)
            .zip(hashed)
            .filter(|(_, &hashed)| hashed)
        {
            let (Some((key, stamp)), Ok(digests)) = (key, result) else {
                continue;
            };
            let still = task.location.open().ok().map(|(_, now)| now);
            if still.as_ref() == Some(stamp) {
                if let Some(digest) = digests.first() {
                    updates.push((key.clone(), digest.prefixed()));
                }
            }
        }
    }

    /// Writes what this scope learned into the cache file, merged with what other scopes
    /// wrote meanwhile (under a lock), replacing it atomically.
    /// A run that learned nothing (every file taken from the cache) leaves the file as it is.
    pub fn save(&self) -> Result<()> {
        let full_done = *self.full_done.lock().expect("cache lock");
        if !full_done && self.updates.lock().expect("cache lock").is_empty() {
            return Ok(());
        }
        let path = &self.settings.path;
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&lock_path, e.into()))?;
        let mut stored = read_stored(path)?;
        let updates = self.updates.lock().expect("cache lock");
        // A file's older entries go when it gets a new one.
        let replaced: HashSet<String> = updates.iter().map(|(k, _)| file_of(k)).collect();
        stored
            .entries
            .retain(|k, _| !replaced.contains(&file_of(k)));
        for (key, value) in updates.iter() {
            let mac = self.mac("entry", key, value);
            stored.entries.insert(
                key.clone(),
                Signed {
                    value: value.clone(),
                    mac,
                },
            );
        }
        if full_done {
            let now = jiff::Timestamp::now().as_second().to_string();
            let mac = self.mac("full", &self.scope, &now);
            stored
                .full
                .insert(self.scope.clone(), Signed { value: now, mac });
        }
        let text = serde_json::to_vec(&stored).map_err(|e| Error::input(path, e.to_string()))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        temp.write_all(&text).map_err(|e| Error::io(path, e))?;
        temp.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }
}

/// Fills `buffer` from the kernel's random source (getrandom). aws-lc's generator would
/// do as well, but seeding it costs a run about 50 ms of CPU-jitter sampling, more than a
/// cached re-verify of a large model takes in all.
/// The stamp of the file at `location`, taken after its written pages were flushed.
///
/// Only the first write to a clean page of a shared mapping moves a file's times; later
/// writes to the page, while it stays dirty, move nothing. A stamp taken on a dirty page
/// would go on matching a file whose bytes were changed after it was hashed. Once the pages
/// are written back, each is clean and write-protected again, so any write after the stamp
/// moves the file's times and misses the cache. `None` (the file is hashed every time)
/// where writes through a mapping move no time at all: tmpfs and ramfs have no writeback.
fn settled_stamp(location: &super::opening::Location) -> Option<Stamp> {
    use std::os::fd::AsRawFd;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    let (file, _) = location.open().ok()?;
    let fd = file.as_raw_fd();
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd, &mut fs) } != 0
        || [TMPFS_MAGIC, RAMFS_MAGIC].contains(&(fs.f_type as i64))
    {
        return None;
    }
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    if unsafe { libc::sync_file_range(fd, 0, 0, flags) } != 0 {
        return None;
    }
    super::reader::regular(file).ok().map(|(_, stamp)| stamp)
}

fn kernel_random(buffer: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < buffer.len() {
        match rustix::rand::getrandom(&mut buffer[filled..], rustix::rand::GetRandomFlags::empty())
        {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The algorithm, device and inode of an entry's key: which file it is of.
fn file_of(key: &str) -> String {
    key.splitn(4, ':').take(3).collect::<Vec<_>>().join(":")
}

fn read_stored(path: &Path) -> Result<Stored> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::input(
                path,
                format!("is not a vouch hash cache ({e}); remove it to start afresh"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The key in `path`, or a new random one written there with mode 0600. A key file others
/// may read is refused: whoever reads it can forge entries.
fn load_or_create_key(path: &Path) -> Result<Vec<u8>> {
    // No link is followed, and the key is read from the file whose owner and mode were
    // checked: a key another user made (or could read) lets that user forge entries.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(mut file) => {
            let meta = file.metadata().map_err(|e| Error::io(path, e))?;
            if !meta.is_file() {
                return Err(Error::input(path, "the cache key is not a regular file"));
            }
            if meta.uid() != unsafe { libc::geteuid() } {
                return Err(Error::input(
                    path,
                    "the cache key file belongs to another user, who could forge cache entries with it; remove it (vouch makes a new one)",
                ));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(Error::input(
                    path,
                    "the cache key file may be read or written by others; chmod 600 it",
                ));
            }
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(&mut file, 4096), &mut text)
                .map_err(|e| Error::io(path, e))?;
            match hex::decode(text.trim()) {
                Ok(key) if key.len() >= 32 => Ok(key),
                _ => Err(Error::input(
                    path,
                    "is not a cache key (64 or more hexadecimal digits)",
                )),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; 32];
            if !kernel_random(&mut key) {
                return Err(Error::input(path, "no random bytes for a new cache key"));
            }
            // Written whole to a temporary file (0600) and linked into place only if no key
            // is there: of checks that start at once, one makes the key and the rest read it.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(path, e))?;
            writeln!(temp, "{}", hex::encode(&key)).map_err(|e| Error::io(path, e))?;
            match temp.persist_noclobber(path) {
                Ok(_) => Ok(key),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_key(path)
                }
                Err(e) => Err(Error::io(path, e.error)),
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(Error::input(
            path,
            "the cache key is a symbolic link; vouch follows none to it",
        )),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_that_start_at_once_share_one_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.key");
        let keys: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_create_key(&path)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0] && k.len() == 32));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Only the key is left in the folder: no temporary file stays behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
