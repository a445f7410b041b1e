//! Digest algorithms and their streaming state.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A digest algorithm vouch can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-1, only for SPDX file checksums (which require it); never offered as a choice.
    Sha1,
    Sha256,
    Sha512,
    Blake2b,
    Blake3,
}

impl Algorithm {
    /// Every algorithm a user can choose, in the order `--help` lists them.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha256,
        Algorithm::Sha512,
        Algorithm::Blake3,
        Algorithm::Blake2b,
    ];

    /// The lower-case name used on the command line, in OMS manifests and in digests
    /// written as `name:hex`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            Algorithm::Blake2b => "blake2b",
            Algorithm::Blake3 => "blake3",
        }
    }

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 | Algorithm::Blake3 => 32,
            Algorithm::Sha512 | Algorithm::Blake2b => 64,
        }
    }

    /// The tag GNU coreutils writes in `--tag` (BSD-style) check lists.
    pub fn bsd_tag(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
            Algorithm::Blake2b => "BLAKE2b",
            Algorithm::Blake3 => "BLAKE3",
        }
    }

    /// Whether the OpenSSF Model Signing format v1.0 knows this algorithm.
    pub fn is_oms(self) -> bool {
        !matches!(self, Algorithm::Sha1 | Algorithm::Sha512)
    }

    /// A fresh streaming state for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            Algorithm::Blake2b => Hasher::Blake2b(blake2::Blake2b512::new()),
            Algorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    /// Digest of an in-memory buffer.
    pub fn digest(self, data: &[u8]) -> Digest {
        let mut hasher = self.hasher();
        hasher.update(data);
        hasher.finalize()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| DigestError::UnknownAlgorithm(s.to_string()))
    }
}

/// Why a text is not a digest (or an algorithm's name).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unknown digest algorithm '{0}' (expected sha256, sha512, blake3 or blake2b)")]
    UnknownAlgorithm(String),
    #[error("a {algorithm} digest has {} hex digits, found {found}", algorithm.digest_len() * 2)]
    Length { algorithm: Algorithm, found: usize },
    #[error("'{0}' is not hexadecimal")]
    NotHex(String),
    #[error("'{0}' is not of the form ALGORITHM:HEX (e.g. sha256:…)")]
    NotPrefixed(String),
    #[error("digests are written in lower-case hex")]
    UpperCase,
}

/// Streaming state of one digest computation.
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Blake2b(blake2::Blake2b512),
    Blake3(Box<blake3::Hasher>),
}

/// Below this many bytes BLAKE3's multi-threaded update costs more than it gains.
const BLAKE3_PARALLEL_MIN: usize = 1 << 20;

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Blake2b(h) => h.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }

    /// Like [`Hasher::update`], but BLAKE3 spreads a large buffer over the current
    /// rayon pool (its tree structure allows it; the other algorithms are sequential).
    pub fn update_parallel(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) if data.len() >= BLAKE3_PARALLEL_MIN => {
                h.update_rayon(data);
            }
            _ => self.update(data),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha1(_) => Algorithm::Sha1,
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
            Hasher::Blake2b(_) => Algorithm::Blake2b,
            Hasher::Blake3(_) => Algorithm::Blake3,
        }
    }

    pub fn finalize(self) -> Digest {
        let algorithm = self.algorithm();
        let bytes = match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Blake2b(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
        };
        Digest { algorithm, bytes }
    }
}

/// A computed or expected digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub bytes: Vec<u8>,
}

impl Digest {
    /// Parses lower- or upper-case hex of the right length for `algorithm`.
    pub fn from_hex(algorithm: Algorithm, text: &str) -> Result<Digest, DigestError> {
        if text.len() != algorithm.digest_len() * 2 {
            return Err(DigestError::Length {
                algorithm,
                found: text.len(),
            });
        }
        let bytes = hex::decode(text).map_err(|_| DigestError::NotHex(text.to_string()))?;
        Ok(Digest { algorithm, bytes })
    }

    /// Like [`Digest::from_hex`], but only lower-case hex, as documents that fix one
    /// spelling of a digest (OMS manifests) write it.
    pub fn from_lower_hex(algorithm: Algorithm, text: &str) -> Result<Digest, DigestError> {
        let digest = Digest::from_hex(algorithm, text)?;
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DigestError::UpperCase);
        }
        Ok(digest)
    }

    /// Parses `algorithm:hex`, e.g. `sha256:9f86…`.
    pub fn from_prefixed(text: &str) -> Result<Digest, DigestError> {
        let (name, hex) = text
            .split_once(':')
            .ok_or_else(|| DigestError::NotPrefixed(text.to_string()))?;
        let algorithm: Algorithm = name.parse()?;
        Digest::from_hex(algorithm, hex)
    }

    pub fn hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// `algorithm:hex`, as reports and `vouch digest` print it.
    pub fn prefixed(&self) -> String {
        format!("{}:{}", self.algorithm, self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefixed())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefixed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // FIPS 180-4 and the BLAKE2/BLAKE3 reference vectors for "abc".
        let cases = [
            (Algorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                Algorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                Algorithm::Sha512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
            (
                Algorithm::Blake2b,
                "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1\
                 7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
            ),
            (
                Algorithm::Blake3,
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
        ];
        for (algorithm, expected) in cases {
            assert_eq!(algorithm.digest(b"abc").hex(), expected, "{algorithm}");
        }
    }

    #[test]
    fn parallel_update_equals_sequential() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for algorithm in [Algorithm::Sha1].into_iter().chain(Algorithm::ALL) {
            let mut parallel = algorithm.hasher();
            parallel.update_parallel(&data);
            assert_eq!(parallel.finalize(), algorithm.digest(&data), "{algorithm}");
        }
    }

    #[test]
    fn parses_prefixed_digests() {
        let d = Digest::from_prefixed(
            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
        )
        .unwrap();
        assert_eq!(d, Algorithm::Sha256.digest(b"abc"));
        let short = Digest::from_prefixed("sha256:abcd").unwrap_err();
        assert_eq!(
            short,
            DigestError::Length {
                algorithm: Algorithm::Sha256,
                found: 4
            }
        );
        assert_eq!(
            short.to_string(),
            "a sha256 digest has 64 hex digits, found 4"
        );
        assert!(Digest::from_prefixed("md5:00")
            .unwrap_err()
            .to_string()
            .contains("unknown"));
        assert_eq!(
            Digest::from_prefixed(&format!("sha256:{}", "g".repeat(64))).unwrap_err(),
            DigestError::NotHex("g".repeat(64))
        );
        assert_eq!(
            Digest::from_prefixed("nocolon").unwrap_err(),
            DigestError::NotPrefixed("nocolon".into())
        );
    }
}
