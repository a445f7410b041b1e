//! The files a ModelPack tar layer (`application/vnd.cncf.model.*.v1.tar[+gzip|+zstd]`)
//! holds, read entry by entry as the layer streams: each regular file's SHA-256 and size.
//! Entry paths are held to the rules of manifest names (no `..`, no absolute path, no
//! name twice), and a link, device or other special entry is no file of the model.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Read, Write};

use crate::hash::{Algorithm, Digest, Hasher};
use crate::model::paths::{check_name, normalize_relative_name};

/// How a tar layer is compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a ModelPack tar layer, or `None` for any other media type.
pub fn tar_layer(media_type: &str) -> Option<Compression> {
    let rest = media_type
        .strip_prefix("application/vnd.cncf.model.")
        .or_else(|| media_type.strip_prefix("application/vnd.cnai.model."))?;
    if rest.ends_with(".tar") {
        Some(Compression::None)
    } else if rest.ends_with(".tar+gzip") {
        Some(Compression::Gzip)
    } else if rest.ends_with(".tar+zstd") {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// One regular file of a tar layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarFile {
    pub name: String,
    pub sha256: Digest,
    pub size: u64,
    /// Its digests in the other algorithms asked for (an SBOM's SHA-1, BLAKE3).
    pub others: Vec<Digest>,
}

impl TarFile {
    pub fn digest(&self, algorithm: Algorithm) -> Option<&Digest> {
        std::iter::once(&self.sha256)
            .chain(&self.others)
            .find(|d| d.algorithm == algorithm)
    }
}

/// What a tar layer holds: its usable files, and the entries that are no file of the
/// model, each as (the entry's path as written, why).
#[derive(Clone, Debug, Default)]
pub struct TarContent {
    pub files: Vec<TarFile>,
    pub problems: Vec<(String, String)>,
}

/// Reads a tar layer to its end, hashing each file by SHA-256 and by each of `others`.
/// An error is a stream that cannot be decompressed or is no tar archive.
pub fn read(
    compressed: &mut impl BufRead,
    compression: Compression,
    others: &[Algorithm],
) -> io::Result<TarContent> {
    let others: Vec<Algorithm> = others
        .iter()
        .copied()
        .filter(|&a| a != Algorithm::Sha256)
        .collect();
    match compression {
        Compression::None => entries(compressed, &others),
        Compression::Gzip => entries(flate2::bufread::MultiGzDecoder::new(compressed), &others),
        Compression::Zstd => entries(
            zstd::stream::read::Decoder::with_buffer(compressed)?,
            &others,
        ),
    }
}

fn entries(stream: impl Read, others: &[Algorithm]) -> io::Result<TarContent> {
    let mut content = TarContent::default();
    let mut seen = BTreeSet::new();
    let (stream, gate) = Bounded::new(stream);
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        // The entry's own data is read here, to its end, so that the tar reader reads
        // nothing but headers while the gate is closed.
        gate.open()?;
        'entry: {
            let written = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                break 'entry;
            }
            let name = match std::str::from_utf8(&entry.path_bytes()) {
                Err(_) => Err("the path is not UTF-8".to_string()),
                Ok(path) => normalize_relative_name(path)
                    .and_then(|n| check_name(&n).map(|_| n))
                    .map_err(|reason| format!("the path is no safe relative name: {reason}")),
            };
            let name = match name {
                Ok(name) => name,
                Err(reason) => {
                    content.problems.push((written, reason));
                    break 'entry;
                }
            };
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                content.problems.push((
                    written,
                    format!("is a link to '{target}'; vouch follows no link in a model layer"),
                ));
                break 'entry;
            }
            if !(kind.is_file() || kind.is_contiguous()) {
                content.problems.push((
                    written,
                    format!("is a special entry (tar type {:?}), no regular file", kind),
                ));
                break 'entry;
            }
            if !seen.insert(name.clone()) {
                content.problems.push((
                    written,
                    "the layer holds this name more than once; it names no one file".to_string(),
                ));
                break 'entry;
            }
            let mut out = HashingWriter(
                std::iter::once(Algorithm::Sha256)
                    .chain(others.iter().copied())
                    .map(Algorithm::hasher)
                    .collect(),
                0,
            );
            io::copy(&mut entry, &mut out)?;
            let mut digests = out.0.into_iter().map(Hasher::finalize);
            content.files.push(TarFile {
                name,
                sha256: digests.next().expect("SHA-256 is always computed"),
                size: out.1,
                others: digests.collect(),
            });
        }
        io::copy(&mut entry, &mut io::sink())?;
        gate.close(&entry)?;
    }
    // A name given twice is taken from neither entry.
    let twice: BTreeSet<String> = content
        .problems
        .iter()
        .filter(|(_, why)| why.starts_with("the layer holds this name more than once"))
        .filter_map(|(written, _)| normalize_relative_name(written).ok())
        .collect();
    content.files.retain(|f| !twice.contains(&f.name));
    Ok(content)
}

/// The most bytes the tar reader may read for one entry's headers: its header blocks with
/// the GNU long names and PAX records it keeps in memory (64 KiB).
pub const MAX_HEADER_BYTES: u64 = 64 << 10;

const BLOCK: u64 = 512;

/// The stream under a tar reader, which the caller opens ([`Gate::open`]) while it reads
/// an entry's own data and closes after. While closed, the tar reader gets at most
/// [`MAX_HEADER_BYTES`], then an error: a long-name or PAX entry that claims gigabytes is
/// refused before it is held in memory. A stream that ends right after an entry's data
/// (without the padding or the end-of-archive blocks, as umoci writes layers) ends the
/// archive there, as container runtimes read it; an entry whose data is cut short is an
/// error.
pub struct Bounded<R> {
    inner: R,
    gate: Gate,
}

/// Opens and closes a [`Bounded`] stream.
#[derive(Clone)]
pub struct Gate(std::rc::Rc<Shared>);

struct Shared {
    state: std::cell::Cell<GateState>,
    /// The header blocks read since the last entry's data and its padding: the headers of
    /// the entry the tar reader is about to hand out, checked when the gate opens.
    headers: std::cell::RefCell<Vec<u8>>,
}

#[derive(Clone, Copy)]
struct GateState {
    /// What the tar reader may still read; `None` while open.
    budget: Option<u64>,
    /// Bytes read from the stream.
    position: u64,
    /// Where the data of the entry being read began.
    opened_at: u64,
    /// Where the last entry's data ended.
    data_end: u64,
    /// Zeros still to give in place of a missing padding and end of archive, once the
    /// stream ended there.
    zeros: Option<u64>,
}

impl Gate {
    /// Opens the gate for the data of the entry the tar reader has just read the headers
    /// of, once those headers are ones every reader of layers reads alike
    /// ([`super::tarheaders::check`]).
    pub fn open(&self) -> io::Result<()> {
        let checked = super::tarheaders::check(&self.0.headers.borrow());
        checked.map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        let mut state = self.0.state.get();
        state.budget = None;
        state.opened_at = state.position;
        self.0.state.set(state);
        Ok(())
    }

    /// Closes the gate after `entry`'s data was read to its end.
    pub fn close<R: Read>(&self, entry: &tar::Entry<'_, R>) -> io::Result<()> {
        let size = entry.size();
        let mut state = self.0.state.get();
        if state.position - state.opened_at != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends within an entry's data",
            ));
        }
        state.budget = Some(MAX_HEADER_BYTES);
        state.data_end = state.position;
        self.0.state.set(state);
        self.0.headers.borrow_mut().clear();
        Ok(())
    }
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R) -> (Bounded<R>, Gate) {
        let gate = Gate(std::rc::Rc::new(Shared {
            state: std::cell::Cell::new(GateState {
                budget: Some(MAX_HEADER_BYTES),
                position: 0,
                opened_at: 0,
                data_end: 0,
                zeros: None,
            }),
            headers: Default::default(),
        }));
        (
            Bounded {
                inner,
                gate: gate.clone(),
            },
            gate,
        )
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.gate.0.state.get();
        if let Some(zeros) = state.zeros {
            let n = buf.len().min(usize::try_from(zeros).unwrap_or(usize::MAX));
            buf[..n].fill(0);
            state.zeros = Some(zeros - n as u64);
            self.gate.0.state.set(state);
            return Ok(n);
        }
        let take = match state.budget {
            None => buf.len(),
            Some(0) if !buf.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the headers of one tar entry (its long name or PAX records) take more than {MAX_HEADER_BYTES} bytes"),
                ))
            }
            Some(left) => buf.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
        };
        let n = self.inner.read(&mut buf[..take])?;
        let padded = state.data_end.div_ceil(BLOCK) * BLOCK;
        if state.budget.is_some() {
            // Header bytes: what lies past the last entry's padding.
            let skip = usize::try_from(padded.saturating_sub(state.position)).unwrap_or(n);
            if skip < n {
                self.gate
                    .0
                    .headers
                    .borrow_mut()
                    .extend_from_slice(&buf[skip..n]);
            }
        }
        state.position += n as u64;
        state.budget = state.budget.map(|left| left - n as u64);
        if n == 0 && take > 0 && state.budget.is_some() && state.position <= padded {
            // The end of the stream within the last entry's padding: what is missing of it,
            // and the two zero blocks that end an archive.
            state.zeros = Some(padded - state.position + 2 * BLOCK);
            self.gate.0.state.set(state);
            return self.read(buf);
        }
        self.gate.0.state.set(state);
        Ok(n)
    }
}

/// Feeds what is written to every hasher, counting the bytes.
pub(super) struct HashingWriter(pub(super) Vec<Hasher>, pub(super) u64);

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for hasher in &mut self.0 {
            hasher.update(buf);
        }
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        // set_path refuses `..`; write the raw name as a hostile packer would.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let header = header(path, *kind, data.len() as u64);
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn media_types() {
        assert_eq!(
            tar_layer("application/vnd.cncf.model.weight.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            tar_layer("application/vnd.cncf.model.doc.v1.tar"),
            Some(Compression::None)
        );
        assert_eq!(
            tar_layer("application/vnd.cncf.model.dataset.v1.tar+gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(tar_layer("application/vnd.cncf.model.weight.v1.raw"), None);
        assert_eq!(tar_layer("application/vnd.oci.image.layer.v1.tar"), None);
    }

    #[test]
    fn hashes_files_and_rejects_unsafe_entries() {
        use tar::EntryType::*;
        let bytes = archive(&[
            ("w/", Directory, b""),
            ("./w/a.bin", Regular, b"alpha"),
            ("../x", Regular, b"out"),
            ("/etc/passwd", Regular, b"abs"),
            ("w/link", Symlink, b""),
            ("dup", Regular, b"1"),
            ("dup", Regular, b"2"),
        ]);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let blob = match compression {
                Compression::None => bytes.clone(),
                Compression::Gzip => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(&bytes).unwrap();
                    e.finish().unwrap()
                }
                Compression::Zstd => zstd::encode_all(bytes.as_slice(), 3).unwrap(),
            };
            let content = read(&mut blob.as_slice(), compression, &[Algorithm::Sha1]).unwrap();
            assert_eq!(
                content.files,
                vec![TarFile {
                    name: "w/a.bin".into(),
                    sha256: Algorithm::Sha256.digest(b"alpha"),
                    size: 5,
                    others: vec![Algorithm::Sha1.digest(b"alpha")],
                }]
            );
            let paths: Vec<&str> = content.problems.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(
                paths,
                ["../x", "/etc/passwd", "w/link", "dup"],
                "{content:?}"
            );
        }
    }

    /// A GNU long-name entry that claims 4 GiB, followed by endless bytes: the tar crate
    /// would read it all into memory.
    pub(crate) fn long_name_bomb() -> impl Read {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(4 << 30);
        header.set_cksum();
        io::Cursor::new(header.as_bytes().to_vec()).chain(io::repeat(b'a'))
    }

    #[test]
    fn a_long_name_over_the_cap_is_refused_before_it_is_held() {
        let error = entries(long_name_bomb(), &[]).unwrap_err();
        assert!(
            error.to_string().contains("take more than 65536 bytes"),
            "{error}"
        );
        // A long name under the cap is read as the entry's path.
        let long = format!("w/{}.bin", "n".repeat(300));
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, &long, &b"alpha"[..])
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        let content = entries(bytes.as_slice(), &[]).unwrap();
        assert_eq!(content.files[0].name, long);
    }

    #[test]
    fn a_truncated_archive_is_an_error() {
        let bytes = archive(&[("a", tar::EntryType::Regular, &[7u8; 4096])]);
        assert!(read(&mut &bytes[..1000], Compression::None, &[]).is_err());
        // Cut in the second entry's header.
        let bytes = archive(&[
            ("a", tar::EntryType::Regular, b"1"),
            ("b", tar::EntryType::Regular, b"2"),
        ]);
        assert!(read(&mut &bytes[..1100], Compression::None, &[]).is_err());
    }

    #[test]
    fn an_archive_may_end_right_after_its_last_entrys_data() {
        // As umoci writes layers: no padding after the data, no end-of-archive blocks.
        let bytes = archive(&[
            ("a", tar::EntryType::Regular, b"first"),
            ("b", tar::EntryType::Regular, b"data"),
        ]);
        for end in [1024 + 512 + 4, 1024 + 1024] {
            let content = read(&mut &bytes[..end], Compression::None, &[]).unwrap();
            let names: Vec<&str> = content.files.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, ["a", "b"], "{end}");
            assert_eq!(content.files[1].sha256, Algorithm::Sha256.digest(b"data"));
        }
    }

    #[test]
    fn a_layer_readers_would_read_apart_is_refused_whole() {
        // A directory whose "data" is a header: Go and Python read the file it hides.
        let hidden = archive(&[("weights/evil.py", tar::EntryType::Regular, b"x")]);
        let bytes = archive(&[
            ("weights/a.bin", tar::EntryType::Regular, b"a"),
            ("docs/", tar::EntryType::Directory, &hidden[..1024]),
        ]);
        let error = read(&mut &bytes[..], Compression::None, &[]).unwrap_err();
        assert!(error.to_string().contains("claims data"), "{error}");
    }
}
