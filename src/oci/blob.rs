//! Streams one blob through its checks, a buffer at a time: its digests and size, and for
//! an image layer the digest of its decompressed content (its diff_id).
//!
//! Nothing here holds a whole blob in memory, except a configuration that is asked to be
//! kept (bounded by [`MAX_DOCUMENT_BYTES`]).

use std::io::{self, BufRead, Read, Write};

use super::document::MAX_DOCUMENT_BYTES;
use super::imagelayer::{self, LayerChanges, ModelRoot};
use super::tarlayer::{self, Compression, TarContent};
use crate::hash::{Algorithm, Digest, Hasher, Progress};

const BUFFER_BYTES: usize = 256 << 10;

/// What to find out about a blob.
#[derive(Clone, Debug)]
pub struct Wanted {
    /// Digests to compute, in one pass.
    pub algorithms: Vec<Algorithm>,
    /// The size its descriptor gives: at most one byte more is read.
    pub size: u64,
    /// Keep the content (a configuration, needed for its diff_ids).
    pub keep: bool,
    /// Decompress it and compute the SHA-256 of the result.
    pub diff_id: bool,
    /// Its media type says it is compressed (`+gzip`, `+zstd`, Docker's `.tar.gzip`).
    pub compressed: bool,
    /// A ModelPack tar layer, so compressed: read the files of its entries.
    pub tar: Option<Compression>,
    /// An image layer of a ModelCar image: read what it puts under this directory.
    pub model_root: Option<ModelRoot>,
}

/// What a blob turned out to be.
#[derive(Debug)]
pub struct Found {
    /// One per wanted algorithm, in the same order.
    pub digests: Vec<Digest>,
    /// Bytes read: the descriptor's size plus one when the blob is larger than it says.
    pub size: u64,
    pub content: Option<Vec<u8>>,
    /// The diff_id, or why the blob could not be decompressed.
    pub diff_id: Option<Result<Digest, Undecompressable>>,
    /// The files of a ModelPack tar layer, or why it could not be read as one.
    pub tar: Option<Result<TarContent, Undecompressable>>,
    /// What an image layer puts under the model root, or why it could not be read.
    pub image: Option<Result<LayerChanges, Undecompressable>>,
}

/// A layer whose content could not be decompressed or read as a tar archive, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the layer: {0}")]
pub struct Undecompressable(#[source] io::Error);

impl Found {
    pub fn digest(&self, algorithm: Algorithm) -> Option<&Digest> {
        self.digests.iter().find(|d| d.algorithm == algorithm)
    }
}

/// Reads `reader` to the end (or one byte past the descriptor's size) and reports what it
/// held. An error is a failure to read, never a verdict about the content. The bytes are
/// hashed where `reader` buffers them: a registry body's chunks are not copied again.
pub fn check(reader: impl BufRead, wanted: &Wanted, progress: &dyn Progress) -> io::Result<Found> {
    let keep = wanted.keep && wanted.size <= MAX_DOCUMENT_BYTES;
    let mut tee = Tee {
        inner: reader.take(wanted.size.saturating_add(1)),
        hashers: wanted.algorithms.iter().map(|a| a.hasher()).collect(),
        read: 0,
        kept: keep.then(Vec::new),
        failure: None,
        progress,
    };
    let (mut tar, mut image) = (None, None);
    let (diff_id, drained) = if let Some(root) = &wanted.model_root {
        let (changes, decompressed) =
            image_layer(&mut tee, wanted.compressed, root, &wanted.algorithms);
        image = Some(changes.map_err(Undecompressable));
        let diff_id = wanted
            .diff_id
            .then(|| decompressed.as_ref().map(Digest::clone).map_err(echo));
        (
            diff_id.map(|d| d.map_err(Undecompressable)),
            drain_buffered(&mut tee),
        )
    } else if let Some(compression) = wanted.tar {
        tar = Some(tarlayer::read(&mut tee, compression, &wanted.algorithms));
        (None, drain_buffered(&mut tee))
    } else if wanted.diff_id {
        let decompressed = decompressed_digest(&mut tee, wanted.compressed);
        let drained = drain_buffered(&mut tee);
        (Some(decompressed.map_err(Undecompressable)), drained)
    } else {
        (None, drain_buffered(&mut tee))
    };
    // The transport's own error, not the echo a decompressor may have passed on.
    if let Some(failure) = tee.failure.take() {
        return Err(failure);
    }
    drained?;
    Ok(Found {
        digests: tee.hashers.into_iter().map(Hasher::finalize).collect(),
        size: tee.read,
        content: tee.kept,
        diff_id,
        tar: tar.map(|t| t.map_err(Undecompressable)),
        image,
    })
}

/// Reads an image layer for what it puts under `root` (each file hashed by `algorithms`
/// and SHA-256), and the digest of its whole
/// decompressed content (its diff_id), in one pass; the digest's error is a stream that
/// could not be decompressed.
fn image_layer(
    compressed: &mut impl BufRead,
    declared: bool,
    root: &ModelRoot,
    algorithms: &[Algorithm],
) -> (io::Result<LayerChanges>, io::Result<Digest>) {
    let inner = match decompressed(compressed, declared) {
        Ok(inner) => inner,
        Err(e) => return (Err(echo(&e)), Err(e)),
    };
    let mut reader = HashingReader {
        inner,
        hasher: Algorithm::Sha256.hasher(),
    };
    let changes = imagelayer::read(&mut reader, root, algorithms);
    // The rest of the stream (the archive's padding) is part of the diff_id.
    if let Err(e) = drain(&mut reader) {
        return (changes.and(Err(echo(&e))), Err(e));
    }
    (changes, Ok(reader.hasher.finalize()))
}

/// An error to report twice.
fn echo(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

/// Whether a layer's media type says its tar is compressed.
pub fn declared_compressed(media_type: &str) -> bool {
    media_type.ends_with("+gzip")
        || media_type.ends_with("+zstd")
        || media_type.ends_with(".tar.gzip")
}

/// The decompressed stream of a layer whose media type says it is compressed (`declared`)
/// or not. A compressed one is decompressed by its magic bytes, as containerd and CRI-O do
/// (gzip, zstd, or else an uncompressed tar). Where runtimes part, the layer is refused: a
/// layer typed uncompressed whose bytes are gzip or zstd (containerd and umoci read it as a
/// tar, CRI-O's storage decompresses it), and one that starts with a zstd skippable frame
/// (containerd reads it as zstd, CRI-O as a tar).
fn decompressed<'a>(
    compressed: &'a mut impl BufRead,
    declared: bool,
) -> io::Result<Box<dyn Read + 'a>> {
    let head = compressed.fill_buf()?;
    let refuse = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidData, why.to_string()));
    if head.len() >= 4 && (0x50..=0x5f).contains(&head[0]) && head[1..4] == [0x2a, 0x4d, 0x18] {
        return refuse("the layer starts with a zstd skippable frame, which containerd reads as zstd and CRI-O's storage as an uncompressed tar");
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let zstd = head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if !declared && (gzip || zstd) {
        return refuse("the layer is typed as an uncompressed tar, but its bytes are compressed: containerd and umoci read it as a tar, CRI-O's storage decompresses it");
    }
    Ok(if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(compressed))
    } else if zstd {
        Box::new(zstd::stream::read::Decoder::with_buffer(compressed)?)
    } else {
        Box::new(compressed)
    })
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The SHA-256 of the decompressed stream.
fn decompressed_digest(compressed: &mut impl BufRead, declared: bool) -> io::Result<Digest> {
    let mut out = HashingWriter(Algorithm::Sha256.hasher());
    io::copy(&mut decompressed(compressed, declared)?, &mut out)?;
    Ok(out.0.finalize())
}

/// Reads a buffered reader to its end, a whole buffer at a time, copying nothing.
fn drain_buffered(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let n = match reader.fill_buf() {
            Ok(buffer) => buffer.len(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        reader.consume(n);
    }
}

fn drain(reader: &mut impl Read) -> io::Result<()> {
    let mut buffer = vec![0u8; BUFFER_BYTES];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Hashes, counts (and may keep) every byte read through it, in the inner reader's own
/// buffer; remembers a read failure so that a decompressor's error is not mistaken for the
/// transport's.
struct Tee<'a, R> {
    inner: R,
    hashers: Vec<Hasher>,
    read: u64,
    kept: Option<Vec<u8>>,
    failure: Option<io::Error>,
    progress: &'a dyn Progress,
}

impl<R: BufRead> Tee<'_, R> {
    /// Keeps the inner reader's error and hands its echo on.
    fn failed(&mut self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::Interrupted {
            return e;
        }
        let echo = echo(&e);
        self.failure = Some(e);
        echo
    }
}

impl<R: BufRead> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tee<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.failure.is_some() {
            return Err(io::Error::other("the blob could not be read"));
        }
        // Asked twice because the borrow of a failed call would outlive its error.
        if let Err(e) = self.inner.fill_buf() {
            return Err(self.failed(e));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if amount == 0 {
            return;
        }
        // What fill_buf returned is still buffered: asking again reads nothing.
        let bytes = match self.inner.fill_buf() {
            Ok(bytes) => &bytes[..amount.min(bytes.len())],
            Err(e) => {
                let _ = self.failed(e);
                return;
            }
        };
        for hasher in &mut self.hashers {
            hasher.update(bytes);
        }
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(bytes);
        }
        let n = bytes.len();
        self.read += n as u64;
        self.progress.advance(n as u64);
        self.inner.consume(n);
    }
}

struct HashingWriter(Hasher);

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Silent;

    fn wanted(size: u64, diff_id: bool) -> Wanted {
        Wanted {
            algorithms: vec![Algorithm::Sha256, Algorithm::Sha512],
            size,
            keep: false,
            diff_id,
            compressed: true,
            tar: None,
            model_root: None,
        }
    }

    fn tar_like() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn digests_every_algorithm_and_computes_diff_ids_of_each_compression() {
        let plain = tar_like();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&plain).unwrap();
        let gzip = gzip.finish().unwrap();
        let zstd = zstd::encode_all(plain.as_slice(), 3).unwrap();
        let diff_id = Algorithm::Sha256.digest(&plain);
        for blob in [&plain, &gzip, &zstd] {
            let found = check(blob.as_slice(), &wanted(blob.len() as u64, true), &Silent).unwrap();
            assert_eq!(found.size, blob.len() as u64);
            assert_eq!(found.digests[0], Algorithm::Sha256.digest(blob));
            assert_eq!(found.digests[1], Algorithm::Sha512.digest(blob));
            assert_eq!(found.diff_id.unwrap().unwrap(), diff_id);
        }
    }

    #[test]
    fn a_blob_in_small_buffers_is_hashed_and_kept_whole() {
        let plain = tar_like();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&plain).unwrap();
        let gzip = gzip.finish().unwrap();
        for (blob, diff_id) in [(&plain, false), (&gzip, true)] {
            let wanted = Wanted {
                keep: true,
                ..wanted(blob.len() as u64, diff_id)
            };
            let found = check(
                io::BufReader::with_capacity(7, blob.as_slice()),
                &wanted,
                &Silent,
            )
            .unwrap();
            assert_eq!(found.size, blob.len() as u64);
            assert_eq!(found.digests[0], Algorithm::Sha256.digest(blob));
            assert_eq!(found.content.as_deref(), Some(blob.as_slice()));
            if diff_id {
                assert_eq!(
                    found.diff_id.unwrap().unwrap(),
                    Algorithm::Sha256.digest(&plain)
                );
            }
        }
    }

    #[test]
    fn reads_at_most_one_byte_past_the_declared_size() {
        let blob = vec![7u8; 1000];
        let found = check(blob.as_slice(), &wanted(10, false), &Silent).unwrap();
        assert_eq!(found.size, 11);
        assert_eq!(found.digests[0], Algorithm::Sha256.digest(&blob[..11]));
    }

    #[test]
    fn a_corrupt_gzip_stream_is_a_diff_id_problem_and_its_digest_still_counts() {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&tar_like()).unwrap();
        let mut gzip = gzip.finish().unwrap();
        let middle = gzip.len() / 2;
        gzip[middle] ^= 0xff;
        let found = check(gzip.as_slice(), &wanted(gzip.len() as u64, true), &Silent).unwrap();
        assert_eq!(found.digests[0], Algorithm::Sha256.digest(&gzip));
        assert!(found
            .diff_id
            .unwrap()
            .unwrap_err()
            .to_string()
            .starts_with("cannot read the layer: "));
    }

    #[test]
    fn a_read_failure_is_an_error_not_a_verdict() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "reset by peer",
                    ));
                }
                self.0 -= 1;
                buf[0] = 0x1f;
                Ok(1)
            }
        }
        for diff_id in [false, true] {
            let err = check(
                io::BufReader::new(Broken(3)),
                &wanted(100, diff_id),
                &Silent,
            )
            .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        }
    }

    #[test]
    fn keeps_a_configuration() {
        let config = br#"{"rootfs":{}}"#;
        let found = check(
            config.as_slice(),
            &Wanted {
                keep: true,
                ..wanted(config.len() as u64, false)
            },
            &Silent,
        )
        .unwrap();
        assert_eq!(found.content.as_deref(), Some(config.as_slice()));
    }

    #[test]
    fn compression_that_runtimes_read_apart_is_refused() {
        let plain = tar_like();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&plain).unwrap();
        let gzip = gzip.finish().unwrap();
        let uncompressed = |size| Wanted {
            compressed: false,
            ..wanted(size, true)
        };
        let found = check(gzip.as_slice(), &uncompressed(gzip.len() as u64), &Silent).unwrap();
        let why = found.diff_id.unwrap().unwrap_err().to_string();
        assert!(why.contains("typed as an uncompressed tar"), "{why}");
        // Typed uncompressed and plain, or typed compressed and plain: read as a tar.
        for declared in [false, true] {
            let wanted = Wanted {
                compressed: declared,
                ..wanted(plain.len() as u64, true)
            };
            let found = check(plain.as_slice(), &wanted, &Silent).unwrap();
            assert_eq!(
                found.diff_id.unwrap().unwrap(),
                Algorithm::Sha256.digest(&plain)
            );
        }
        let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
        skippable.extend(zstd::encode_all(plain.as_slice(), 3).unwrap());
        let found = check(
            skippable.as_slice(),
            &wanted(skippable.len() as u64, true),
            &Silent,
        )
        .unwrap();
        let why = found.diff_id.unwrap().unwrap_err().to_string();
        assert!(why.contains("skippable frame"), "{why}");
    }
}
