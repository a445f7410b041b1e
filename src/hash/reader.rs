//! Reads a byte range of a file once and feeds every requested digest.
//!
//! Small ranges are read with `pread` into a reused buffer; larger ones are memory-mapped a
//! window at a time, with the kernel told to read ahead, and each window is unmapped as soon
//! as it is hashed, so resident memory stays bounded whatever the file's size. A file that
//! changes while it is read (size, inode or timestamps differ before and after, or a mapped
//! page vanished) is reported as unstable rather than given a digest.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use memmap2::{Advice, MmapOptions};

use super::algorithm::{Algorithm, Digest, Hasher};
use super::sigbus;
use crate::report::{Subject, Verdict};

/// How the reader splits its work; the defaults are what the benchmarks chose.
#[derive(Clone, Copy, Debug)]
pub struct ReaderConfig {
    /// Bytes mapped and hashed at a time.
    pub window: usize,
    /// Bytes mapped at a time when BLAKE3 spreads a window over threads: each window ends in
    /// a join of all of them, so larger windows pay it less often (16 MiB windows ran 8%
    /// behind b3sum in `cargo xtask bench`; 96 MiB ones, what each of two workers gets from
    /// the budget below, level with it).
    pub parallel_window: usize,
    /// Ranges up to this many bytes are read rather than mapped.
    pub small_read_limit: u64,
    /// Read with `O_DIRECT` in aligned windows, past the page cache (`io = "direct"`).
    pub direct: bool,
}

/// How files are read: `io` in vouch.toml, `--io` on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Io {
    /// Through the page cache: mapped in windows, read ahead.
    #[default]
    Buffered,
    /// With `O_DIRECT`, past the page cache, so the pages a serving process relies on stay.
    Direct,
}

/// Mapped bytes all workers may hold at once, which bounds resident memory.
const MAPPED_BUDGET: usize = 192 << 20;

impl ReaderConfig {
    /// The settings for `jobs` workers: large BLAKE3 windows, within the mapping budget.
    pub fn for_jobs(jobs: usize) -> ReaderConfig {
        let base = ReaderConfig::default();
        ReaderConfig {
            parallel_window: (MAPPED_BUDGET / jobs.max(1)).clamp(base.window, base.parallel_window),
            ..base
        }
    }

    /// The same settings, reading as `io` says.
    pub fn with_io(self, io: Io) -> ReaderConfig {
        ReaderConfig {
            direct: io == Io::Direct,
            ..self
        }
    }
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            window: 16 << 20,
            parallel_window: 128 << 20,
            small_read_limit: 1 << 20,
            direct: false,
        }
    }
}

/// Why a range could not be given a digest.
#[derive(Debug)]
pub enum ReadError {
    /// The file changed while it was read; the message says how.
    Unstable(String),
    /// Not a regular file (a FIFO, socket, device or directory); it was not read.
    NotRegular(&'static str),
    /// The operating system refused or failed the read.
    Io(io::Error),
}

impl ReadError {
    /// The verdict on a file that was listed, or named, as a regular file and then could not
    /// be read, with its message: the one mapping every check uses. A file gone when it is
    /// opened was removed after it was listed, which is `unstable` like a file that changed
    /// while it was read; one that is no longer a regular file is `changed`.
    pub fn verdict(&self) -> (Verdict, String) {
        match self {
            ReadError::Unstable(message) => (Verdict::Unstable, message.clone()),
            ReadError::NotRegular(kind) => {
                (Verdict::Changed, format!("is now {kind}; it was not read"))
            }
            ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound => (
                Verdict::Unstable,
                "was removed after it was listed".to_string(),
            ),
            ReadError::Io(e) => (Verdict::Unreadable, e.to_string()),
        }
    }

    /// The subject `name` with this error's verdict and message.
    pub fn subject(&self, name: impl Into<String>) -> Subject {
        let (verdict, message) = self.verdict();
        Subject::new(name, verdict).message(message)
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// What the walk saw of a file: if the file opened for reading is not this one, with this
/// length, it changed after it was listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
}

impl Identity {
    pub fn of(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
        }
    }

    pub fn of_stat(stat: &rustix::fs::Stat) -> Identity {
        Identity {
            dev: stat.st_dev,
            ino: stat.st_ino,
            len: stat.st_size as u64,
        }
    }

    /// `Unstable` when the opened file (stamped `opened`) is not the file that was listed.
    pub fn check(&self, opened: &Stamp) -> Result<(), ReadError> {
        let found = opened.identity();
        if found == *self {
            Ok(())
        } else if (found.dev, found.ino) != (self.dev, self.ino) {
            Err(ReadError::Unstable(
                "was replaced by another file after it was listed".to_string(),
            ))
        } else {
            Err(ReadError::Unstable(format!(
                "changed after it was listed: size went from {} to {} bytes",
                self.len, found.len
            )))
        }
    }
}

/// What identifies a file's content without reading it: if any of this differs after a
/// read from before it, the bytes read may mix two versions of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// What a hash cache keys a file's digest by: device, inode, size, and the
    /// modification and change times in nanoseconds (the change time cannot be set from
    /// user space, so a file edited with its mtime set back still misses).
    pub fn cache_key(&self) -> String {
        let ns = |(s, n): (i64, i64)| i128::from(s) * 1_000_000_000 + i128::from(n);
        format!(
            "{}:{}:{}:{}:{}",
            self.dev,
            self.ino,
            self.len,
            ns(self.mtime),
            ns(self.ctime)
        )
    }

    /// The file and length this stamp was taken of.
    pub fn identity(&self) -> Identity {
        Identity {
            dev: self.dev,
            ino: self.ino,
            len: self.len,
        }
    }

    /// Describes how `after` differs from `self`, for an `unstable` verdict.
    fn change_to(&self, after: &Stamp) -> Option<String> {
        if self == after {
            None
        } else if self.len != after.len {
            Some(format!(
                "changed while being read: size went from {} to {} bytes",
                self.len, after.len
            ))
        } else {
            Some("changed while being read: it was modified during hashing".to_string())
        }
    }
}

pub use crate::fsio::{special_kind, special_kind_of_mode};

/// Opens a regular file for reading without ever blocking: a FIFO swapped in after the
/// directory was listed is opened non-blocking and refused, never read.
pub fn open_regular(path: &Path, follow_symlinks: bool) -> Result<(File, Stamp), ReadError> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && !follow_symlinks => {
            return Err(ReadError::NotRegular("a symbolic link"));
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    regular(file)
}

/// Stamps an opened file, refusing it unless it is a regular file.
pub fn regular(file: File) -> Result<(File, Stamp), ReadError> {
    let meta = file.metadata()?;
    if let Some(kind) = special_kind(&meta) {
        return Err(ReadError::NotRegular(kind));
    }
    Ok((file, Stamp::of(&meta)))
}

/// Sequential digests take mapped bytes this much at a time, while the bytes a little
/// further on are prefetched into the cache. SHA-NI hashing straight from a large mapping is
/// bound by cache misses; with the next bytes prefetched the reader ran 12% faster than when
/// it copied 16 KiB pieces into a cached buffer (1.63 against 1.45 GiB/s, `cargo bench
/// --bench engine -- "reader 512 MiB file, page cache/sha256, window MiB/16"`).
const PIECE: usize = 1 << 10;
/// How far ahead of the piece being hashed the prefetch reaches.
const PREFETCH_DISTANCE: usize = 4 << 10;
/// Small ranges are read this much at a time, so the bytes are still cached when hashed.
const READ_CHUNK: usize = 64 << 10;

/// Feeds `data` to every hasher: BLAKE3 takes it whole (and may spread it over threads);
/// the sequential algorithms take it piece by piece, the coming bytes prefetched when
/// `prefetch` says the data is not already in the cache.
fn feed(hashers: &mut [Hasher], data: &[u8], prefetch: bool) {
    let parallel = |h: &Hasher| h.algorithm() == Algorithm::Blake3;
    for hasher in hashers.iter_mut().filter(|h| parallel(h)) {
        hasher.update_parallel(data);
    }
    if hashers.iter().all(parallel) {
        return;
    }
    let pieces = if prefetch { PIECE } else { data.len().max(1) };
    for (index, piece) in data.chunks(pieces).enumerate() {
        let ahead = index * pieces + PREFETCH_DISTANCE;
        if prefetch && ahead < data.len() {
            prefetch_range(&data[ahead..(ahead + PIECE).min(data.len())]);
        }
        for hasher in hashers.iter_mut().filter(|h| !parallel(h)) {
            hasher.update(piece);
        }
    }
}

/// Asks the CPU to bring `bytes` into its caches.
fn prefetch_range(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..bytes.len()).step_by(64) {
        // SAFETY: a prefetch is a hint; it never faults, and SSE is part of x86-64.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                bytes.as_ptr().add(line) as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Hashes bytes `[start, end)` of `file` with every algorithm in `algorithms`, in one pass.
///
/// `before` is the stamp taken when the file was opened; `on_bytes` is told of progress.
pub fn hash_range(
    file: &File,
    before: &Stamp,
    start: u64,
    end: u64,
    algorithms: &[Algorithm],
    config: &ReaderConfig,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Digest>, ReadError> {
    if end > before.len {
        return Err(ReadError::Unstable(format!(
            "changed before it could be read: it now has {} bytes, {} were expected",
            before.len, end
        )));
    }
    let mut hashers: Vec<Hasher> = algorithms.iter().map(|a| a.hasher()).collect();
    if config.direct {
        read_direct(file, start, end, &mut hashers, on_bytes)?;
    } else if end - start <= config.small_read_limit {
        read_small(file, start, end, &mut hashers)?;
        on_bytes(end - start);
    } else {
        let window = if algorithms.contains(&Algorithm::Blake3) {
            config.parallel_window
        } else {
            config.window
        };
        read_mapped(file, start, end, &mut hashers, window, on_bytes)?;
    }
    check_unchanged(file, before)?;
    Ok(hashers.into_iter().map(Hasher::finalize).collect())
}

/// `Unstable` when the open `file` no longer matches the stamp `before` taken when it was
/// opened.
pub fn check_unchanged(file: &File, before: &Stamp) -> Result<(), ReadError> {
    let after = Stamp::of(&file.metadata()?);
    match before.change_to(&after) {
        Some(change) => Err(ReadError::Unstable(change)),
        None => Ok(()),
    }
}

fn read_small(file: &File, start: u64, end: u64, hashers: &mut [Hasher]) -> Result<(), ReadError> {
    let mut chunk = vec![0u8; READ_CHUNK.min((end - start) as usize)];
    let mut offset = start;
    while offset < end {
        let want = ((end - offset) as usize).min(chunk.len());
        match file.read_at(&mut chunk[..want], offset) {
            Ok(0) => {
                return Err(ReadError::Unstable(format!(
                    "changed while being read: it ended after {} of {} bytes",
                    offset - start,
                    end - start
                )))
            }
            Ok(n) => {
                feed(hashers, &chunk[..n], false);
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(())
}

fn read_mapped(
    file: &File,
    start: u64,
    end: u64,
    hashers: &mut [Hasher],
    window: usize,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(), ReadError> {
    let fd = file.as_raw_fd();
    let mut offset = start;
    advise_willneed(fd, offset, (end - offset).min(window as u64));
    while offset < end {
        let len = (end - offset).min(window as u64);
        let next = offset + len;
        if next < end {
            advise_willneed(fd, next, (end - next).min(window as u64));
        }
        // SAFETY: the mapping is read-only and private; a concurrent truncation can make its
        // pages vanish, which the SIGBUS watch below turns into zero pages and a fault flag.
        let map = unsafe {
            MmapOptions::new()
                .offset(offset)
                .len(len as usize)
                .map(file)?
        };
        let _ = map.advise(Advice::Sequential);
        let watch = sigbus::watch(map.as_ptr(), map.len());
        feed(hashers, &map, true);
        let faulted = watch.release();
        drop(map);
        if faulted {
            return Err(ReadError::Unstable(
                "changed while being read: it was truncated while mapped".to_string(),
            ));
        }
        on_bytes(len);
        offset = next;
    }
    Ok(())
}

/// Direct reads are aligned to this (a page: a multiple of every disk's logical block).
const DIRECT_ALIGN: usize = 4096;
/// Bytes read per direct request: large requests keep the disk busy without read-ahead.
const DIRECT_WINDOW: usize = 8 << 20;

/// Turns `O_DIRECT` on or off for the open `file`. `Err` is the file system's refusal
/// (`EINVAL` where it has no direct I/O, as procfs and some FUSE file systems).
pub fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function borrows; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    if unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A zeroed buffer whose address is aligned for `O_DIRECT`.
struct AlignedBuffer {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

impl AlignedBuffer {
    fn new(len: usize) -> AlignedBuffer {
        let layout = std::alloc::Layout::from_size_align(len.max(DIRECT_ALIGN), DIRECT_ALIGN)
            .expect("a page-aligned layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr =
            std::ptr::NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuffer { ptr, layout }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the allocation is `layout.size()` initialised bytes, owned by `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: the buffer owns its allocation alone; moving it to another thread moves that.
unsafe impl Send for AlignedBuffer {}

/// One direct request: where it read, what came back, and the buffer it filled.
type Filled = (u64, io::Result<u64>, AlignedBuffer);

/// Reads `[start, end)` of `file` (switched to `O_DIRECT`) in aligned requests into aligned
/// buffers: the first request starts at the page below `start` and the bytes before
/// `start` are skipped; the last may return less than it asked, at the end of the file,
/// and only the bytes before `end` are hashed. The bytes hashed are the bytes read. With
/// no read-ahead from the kernel, a second buffer is read (by a thread of its own) while
/// the first is hashed.
fn read_direct(
    file: &File,
    start: u64,
    end: u64,
    hashers: &mut [Hasher],
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(), ReadError> {
    if start == end {
        return Ok(());
    }
    let align = DIRECT_ALIGN as u64;
    let first = start - start % align;
    let span = (end - first).div_ceil(align) * align;
    let size = (span as usize).min(DIRECT_WINDOW);
    let read = |offset: u64, mut buffer: AlignedBuffer| -> Filled {
        loop {
            match file.read_at(buffer.as_mut_slice(), offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return (offset, result.map(|n| n as u64), buffer),
            }
        }
    };
    // What a request that returned `n` bytes at `offset` leaves to do: hash its part of
    // `[start, end)`, and go on unless the file ended.
    let mut hash = |offset: u64, n: u64, buffer: &mut AlignedBuffer| -> Result<(), ReadError> {
        let usable = n.min(end.saturating_sub(offset));
        if usable == 0 || (offset + n < end && n % align != 0) {
            return Err(ReadError::Unstable(format!(
                "changed while being read: it ended after {} of {} bytes",
                (offset + usable).saturating_sub(start),
                end - start
            )));
        }
        let skip = start.saturating_sub(offset).min(usable);
        feed(
            hashers,
            &buffer.as_mut_slice()[skip as usize..usable as usize],
            false,
        );
        on_bytes(usable - skip);
        Ok(())
    };
    if span as usize <= DIRECT_WINDOW {
        let (offset, n, mut buffer) = read(first, AlignedBuffer::new(size));
        return hash(offset, n?, &mut buffer);
    }
    std::thread::scope(|scope| {
        let (filled_tx, filled_rx) = std::sync::mpsc::sync_channel::<Filled>(1);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<AlignedBuffer>(2);
        for _ in 0..2 {
            empty_tx
                .send(AlignedBuffer::new(size))
                .expect("the channel holds two buffers");
        }
        scope.spawn(move || {
            let mut offset = first;
            while offset < end {
                let Ok(buffer) = empty_rx.recv() else { return };
                let filled = read(offset, buffer);
                let stop = !matches!(filled.1, Ok(n) if n == size as u64);
                offset += *filled.1.as_ref().unwrap_or(&0);
                if filled_tx.send(filled).is_err() || stop {
                    return;
                }
            }
        });
        let mut done = first;
        while done < end {
            let Ok((offset, n, mut buffer)) = filled_rx.recv() else {
                break;
            };
            let n = n?;
            hash(offset, n, &mut buffer)?;
            done = offset + n;
            // The reader may have stopped already: a buffer it no longer needs is dropped.
            let _ = empty_tx.send(buffer);
        }
        if done < end {
            return Err(ReadError::Unstable(format!(
                "changed while being read: it ended after {} of {} bytes",
                done.saturating_sub(start),
                end - start
            )));
        }
        Ok(())
    })
}

/// Asks the kernel to start reading `[offset, offset + len)` into the page cache.
fn advise_willneed(fd: libc::c_int, offset: u64, len: u64) {
    // Advice only: a failure changes nothing but speed.
    unsafe {
        libc::posix_fadvise(
            fd,
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_WILLNEED,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn digest_of(path: &Path, start: u64, end: u64, config: &ReaderConfig) -> Vec<Digest> {
        let (file, stamp) = open_regular(path, false).unwrap();
        hash_range(&file, &stamp, start, end, &Algorithm::ALL, config, &|_| {}).unwrap()
    }

    #[test]
    fn each_read_error_has_one_verdict() {
        let gone = io::Error::from(io::ErrorKind::NotFound);
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let denied_message = denied.to_string();
        let cases = [
            (
                ReadError::Io(gone),
                Verdict::Unstable,
                "was removed after it was listed",
            ),
            (
                ReadError::Io(denied),
                Verdict::Unreadable,
                denied_message.as_str(),
            ),
            (
                ReadError::NotRegular("a FIFO (named pipe)"),
                Verdict::Changed,
                "is now a FIFO (named pipe); it was not read",
            ),
            (
                ReadError::Unstable("changed while being read".to_string()),
                Verdict::Unstable,
                "changed while being read",
            ),
        ];
        for (error, verdict, message) in cases {
            assert_eq!(error.verdict(), (verdict, message.to_string()), "{error:?}");
            let subject = error.subject("w.bin");
            assert_eq!(
                (
                    subject.name.as_str(),
                    subject.verdict,
                    subject.message.as_deref()
                ),
                ("w.bin", verdict, Some(message))
            );
        }
    }

    #[test]
    fn mapped_and_read_paths_agree_with_in_memory_digests() {
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i % 253) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&data).unwrap();
        // Windows that do not divide the range, for the sequential and the BLAKE3 path.
        let tiny_windows = ReaderConfig {
            window: 65_536 * 3,
            parallel_window: 65_536 * 5,
            small_read_limit: 0,
            direct: false,
        };
        let all_read = ReaderConfig {
            small_read_limit: u64::MAX,
            ..ReaderConfig::default()
        };
        // An unaligned range exercises the offset arithmetic of the windows.
        for (start, end) in [(0u64, data.len() as u64), (12_345, 2_999_999), (4096, 4097)] {
            let expected: Vec<Digest> = Algorithm::ALL
                .iter()
                .map(|a| a.digest(&data[start as usize..end as usize]))
                .collect();
            assert_eq!(digest_of(tmp.path(), start, end, &tiny_windows), expected);
            assert_eq!(digest_of(tmp.path(), start, end, &all_read), expected);
        }
    }

    #[test]
    fn direct_reads_agree_with_in_memory_digests_on_unaligned_ranges() {
        let data: Vec<u8> = (0..(17 << 20) + 5u32).map(|i| (i % 251) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&data).unwrap();
        let direct = ReaderConfig::default().with_io(Io::Direct);
        let len = data.len() as u64;
        for (start, end) in [(0, len), (12_345, len - 1), (4096, 4097), (5, 5), (0, 4095)] {
            let (file, stamp) = open_regular(tmp.path(), false).unwrap();
            set_direct(&file, true).expect("this file system takes O_DIRECT");
            let got =
                hash_range(&file, &stamp, start, end, &Algorithm::ALL, &direct, &|_| {}).unwrap();
            let expected: Vec<Digest> = Algorithm::ALL
                .iter()
                .map(|a| a.digest(&data[start as usize..end as usize]))
                .collect();
            assert_eq!(got, expected, "[{start}, {end})");
        }
    }

    #[test]
    fn a_direct_read_of_a_file_that_shrank_is_unstable() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&vec![3u8; 20 << 20]).unwrap();
        let (file, stamp) = open_regular(tmp.path(), false).unwrap();
        tmp.as_file().set_len((9 << 20) + 1).unwrap();
        set_direct(&file, true).unwrap();
        let direct = ReaderConfig::default().with_io(Io::Direct);
        let err = hash_range(
            &file,
            &stamp,
            0,
            20 << 20,
            &[Algorithm::Sha256],
            &direct,
            &|_| {},
        )
        .unwrap_err();
        assert!(matches!(err, ReadError::Unstable(m) if m.contains("ended after")));
    }

    #[test]
    fn procfs_refuses_o_direct() {
        let file = File::open("/proc/version").unwrap();
        let refused = set_direct(&file, true).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn a_range_past_the_end_is_unstable() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(b"short").unwrap();
        let (file, stamp) = open_regular(tmp.path(), false).unwrap();
        let err = hash_range(
            &file,
            &stamp,
            0,
            10,
            &[Algorithm::Sha256],
            &ReaderConfig::default(),
            &|_| {},
        )
        .unwrap_err();
        assert!(matches!(err, ReadError::Unstable(_)));
    }

    #[test]
    fn a_truncated_mapping_is_unstable_not_a_crash() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&vec![7u8; 4 << 20]).unwrap();
        let (file, stamp) = open_regular(tmp.path(), false).unwrap();
        let config = ReaderConfig {
            window: 4 << 20,
            small_read_limit: 0,
            ..ReaderConfig::default()
        };
        // Truncate after the first window is mapped: hashing a second, shrunken range faults.
        let map = unsafe { MmapOptions::new().len(4 << 20).map(&file).unwrap() };
        tmp.as_file().set_len(4096).unwrap();
        let watch = sigbus::watch(map.as_ptr(), map.len());
        let sum: u64 = map.iter().map(|&b| b as u64).sum();
        assert!(watch.release(), "the fault was seen");
        assert_eq!(sum, 7 * 4096, "pages past the end read as zeros");
        drop(map);
        let err = hash_range(
            &file,
            &stamp,
            0,
            4 << 20,
            &[Algorithm::Sha256],
            &config,
            &|_| {},
        )
        .unwrap_err();
        assert!(matches!(err, ReadError::Unstable(_)));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(
            matches!(open_regular(&fifo, false), Err(ReadError::NotRegular(k)) if k.contains("FIFO"))
        );
    }
}
