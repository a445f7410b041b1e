//! A bounded reader over a file: every length read from the file is checked against what is
//! left of the file and against a fixed limit before a single byte is allocated for it.

use std::io::{self, BufReader, Read, Seek};

/// Why a header could not be read.
#[derive(Debug)]
pub enum Problem {
    /// The bytes are not what the format says (truncated, garbage, hostile sizes).
    Malformed(String),
    /// The operating system failed the read.
    Io(io::Error),
}

impl Problem {
    pub fn malformed(message: impl Into<String>) -> Problem {
        Problem::Malformed(message.into())
    }
}

impl From<io::Error> for Problem {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Problem::Malformed("the file ends in the middle of its header (truncated)".into())
        } else {
            Problem::Io(e)
        }
    }
}

pub type Parsed<T> = Result<T, Problem>;

/// A file read front to back, which knows how many bytes are left.
pub struct Source<R> {
    inner: BufReader<R>,
    position: u64,
    len: u64,
}

impl<R: Read + Seek> Source<R> {
    /// A source over `inner`, whose total length is `len`.
    pub fn new(inner: R, len: u64) -> Source<R> {
        Source {
            inner: BufReader::with_capacity(64 << 10, inner),
            position: 0,
            len,
        }
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.position)
    }

    /// Fails unless `n` more bytes are in the file; `what` names them in the message.
    pub fn need(&self, n: u64, what: &str) -> Parsed<()> {
        if n > self.remaining() {
            return Err(Problem::malformed(format!(
                "{what} of {n} bytes at offset {} runs past the end of the file ({} bytes remain; truncated?)",
                self.position,
                self.remaining()
            )));
        }
        Ok(())
    }

    /// Reads `n` bytes, refusing more than `limit` or more than the file holds.
    pub fn bytes(&mut self, n: u64, limit: usize, what: &str) -> Parsed<Vec<u8>> {
        self.need(n, what)?;
        if n > limit as u64 {
            return Err(Problem::malformed(format!(
                "{what} of {n} bytes exceeds vouch's limit of {limit} bytes"
            )));
        }
        let mut buffer = vec![0; n as usize];
        self.inner.read_exact(&mut buffer)?;
        self.position += n;
        Ok(buffer)
    }

    /// Moves past `n` bytes without reading them.
    pub fn skip(&mut self, n: u64, what: &str) -> Parsed<()> {
        self.need(n, what)?;
        let step =
            i64::try_from(n).map_err(|_| Problem::malformed(format!("{what} is too large")))?;
        self.inner.seek_relative(step)?;
        self.position += n;
        Ok(())
    }

    pub fn array<const N: usize>(&mut self, what: &str) -> Parsed<[u8; N]> {
        self.need(N as u64, what)?;
        let mut buffer = [0; N];
        self.inner.read_exact(&mut buffer)?;
        self.position += N as u64;
        Ok(buffer)
    }

    pub fn u8(&mut self, what: &str) -> Parsed<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u32_le(&mut self, what: &str) -> Parsed<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64_le(&mut self, what: &str) -> Parsed<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
}
