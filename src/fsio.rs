//! Reading approval inputs without ever blocking, and writing outputs so that nobody ever
//! sees half of one.

use std::fs::{Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::{Error, Result};

/// Larger inputs are refused rather than read into memory: a manifest of a million files
/// is about 150 MB.
pub const MAX_INPUT_BYTES: u64 = 512 << 20;

/// Reads a whole approval input (manifest, signature bundle, check list, key, certificate,
/// trusted root, config, password file). It is opened without blocking and must be a regular
/// file: a FIFO, socket or device is an input error naming it, never a read that hangs.
/// Oversized files are refused.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::io(path, e);
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if let Some(kind) = special_kind(&meta) {
        return Err(Error::input(
            path,
            format!("is {kind}, not a regular file; it was not read"),
        ));
    }
    // A regular file never blocks, but reads should not see EAGAIN either (a FUSE or
    // network file system may honour the flag).
    // SAFETY: fcntl on a descriptor this function owns; no memory is passed.
    let cleared = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0) };
    if cleared == -1 {
        return Err(io(std::io::Error::last_os_error()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::input(
            path,
            format!("is larger than {MAX_INPUT_BYTES} bytes; refusing to read it"),
        ));
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, in words (`None` for a regular file).
pub fn special_kind(meta: &Metadata) -> Option<&'static str> {
    special_kind_of_mode(meta.mode())
}

/// What a file that is not a regular file is, from its `st_mode`.
pub fn special_kind_of_mode(mode: u32) -> Option<&'static str> {
    use rustix::fs::FileType;
    match FileType::from_raw_mode(mode) {
        FileType::RegularFile => None,
        FileType::Directory => Some("a directory"),
        FileType::Fifo => Some("a FIFO (named pipe)"),
        FileType::Socket => Some("a socket"),
        FileType::BlockDevice => Some("a block device"),
        FileType::CharacterDevice => Some("a character device"),
        FileType::Symlink => Some("a symbolic link"),
        FileType::Unknown => Some("not a regular file"),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, flushed to disk
/// and renamed over `path`: readers see the old content or the new, never a mix, and an
/// interrupted write leaves the old file untouched.
///
/// A device, FIFO or socket at `path` (`-o /dev/null`, `-o /dev/stdout`, a pipe) is written
/// to as it is: renaming over it would replace the device node with a regular file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        let kind = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() || kind.is_socket() {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            return out.write_all(bytes).map_err(|e| Error::io(path, e));
        }
        if kind.is_dir() {
            return Err(Error::input(path, "is a directory, not a file to write"));
        }
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let io = |e: std::io::Error| Error::io(path, e);
    let mut file = tempfile::Builder::new()
        .prefix(".vouch-")
        .suffix(".tmp")
        // 0666 less the umask, as for any new file; tempfile's default would be 0600.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-o /dev/null` or a pipe is written to, never renamed over (which would leave a
    /// regular file where the device or FIFO was).
    #[test]
    fn a_fifo_is_written_to_and_stays_a_fifo() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let reading = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_atomically(&fifo, b"report").unwrap();
        assert_eq!(reading.join().unwrap(), b"report");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        assert!(write_atomically(dir.path(), b"x").is_err());
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.json"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let err = write_atomically(Path::new("/nonexistent-dir/out.json"), b"x").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/out.json"),
            "{err}"
        );
    }
}
