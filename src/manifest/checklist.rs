//! Check lists as `sha256sum`, `sha512sum`, `b2sum` and `b3sum` write and read them.
//!
//! A line is `HEX  NAME` (or `HEX *NAME`, binary mode), or the BSD form `TAG (NAME) = HEX`.
//! A name holding a backslash or a line break is escaped and its line starts with `\`.
//! GNU coreutils escapes `\\`, `\n` and `\r` and writes other bytes raw; b3sum escapes `\\`
//! and `\n` only and writes names as UTF-8, replacing invalid sequences.

use crate::hash::{Algorithm, Digest, DigestError};

/// One line of a check list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckEntry {
    /// 1-based line number, for messages.
    pub line: usize,
    /// The name as the tool wrote it, unescaped; raw bytes (names need not be UTF-8).
    pub name: Vec<u8>,
    pub digest: Digest,
}

/// Why a check list cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckListError {
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: LineProblem },
    #[error("the check list has no entries")]
    Empty,
}

impl CheckListError {
    /// The algorithm whose digests the list seems to hold, when a digest has the length of
    /// another algorithm's than the one it was read as.
    pub fn likely_algorithm(&self) -> Option<Algorithm> {
        match self {
            CheckListError::Line {
                problem: LineProblem::Digest { fits, .. },
                ..
            } => fits.first().copied(),
            _ => None,
        }
    }
}

/// What is wrong with one line of a check list.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("expected '<{hex_digits} hex digits>  <file name>' (two spaces between)")]
    Form { hex_digits: usize },
    #[error("expected '{tag} (<file name>) = <hex digest>'")]
    TaggedForm { tag: &'static str },
    #[error("the digest is not hexadecimal")]
    NotText,
    /// A digest that does not parse; `fits` are the other algorithms of its length.
    #[error("{error}{}", length_of(fits))]
    Digest {
        error: DigestError,
        fits: Vec<Algorithm>,
    },
    #[error("the file name has an invalid escape (only \\\\, \\n and \\r exist)")]
    Escape,
}

fn length_of(fits: &[Algorithm]) -> String {
    if fits.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = fits.iter().map(|a| a.name()).collect();
    format!(" (the length of {} digests)", names.join(" or "))
}

/// Parses a whole check list. Lines without a tag hold digests of `algorithm`; tagged lines
/// name their own. Blank lines are skipped; anything else malformed is an error naming the
/// line and what was expected.
pub fn parse(text: &[u8], algorithm: Algorithm) -> Result<Vec<CheckEntry>, CheckListError> {
    let mut entries = Vec::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry =
            parse_line(raw, algorithm).map_err(|problem| CheckListError::Line { line, problem })?;
        entries.push(CheckEntry {
            line,
            name: entry.0,
            digest: entry.1,
        });
    }
    if entries.is_empty() {
        return Err(CheckListError::Empty);
    }
    Ok(entries)
}

fn parse_line(raw: &[u8], algorithm: Algorithm) -> Result<(Vec<u8>, Digest), LineProblem> {
    let (escaped, body) = match raw.strip_prefix(b"\\") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    if let Some(tagged) = parse_tagged(body, escaped)? {
        return Ok(tagged);
    }
    let hex_len = body.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let hex = std::str::from_utf8(&body[..hex_len]).expect("hex digits are ASCII");
    let rest = &body[hex_len..];
    let name = match rest {
        [b' ', b' ' | b'*', name @ ..] if !name.is_empty() => name,
        _ => {
            return Err(LineProblem::Form {
                hex_digits: algorithm.digest_len() * 2,
            })
        }
    };
    let digest = Digest::from_hex(algorithm, hex).map_err(|error| LineProblem::Digest {
        error,
        fits: Algorithm::ALL
            .into_iter()
            .filter(|a| a.digest_len() * 2 == hex.len() && *a != algorithm)
            .collect(),
    })?;
    Ok((unescape_if(name, escaped)?, digest))
}

/// `TAG (NAME) = HEX`, as `sha256sum --tag` and `b2sum --tag` write it.
fn parse_tagged(body: &[u8], escaped: bool) -> Result<Option<(Vec<u8>, Digest)>, LineProblem> {
    let Some(open) = body.windows(2).position(|w| w == b" (") else {
        return Ok(None);
    };
    let Ok(tag) = std::str::from_utf8(&body[..open]) else {
        return Ok(None);
    };
    let Some(algorithm) = Algorithm::ALL.into_iter().find(|a| a.bsd_tag() == tag) else {
        return Ok(None);
    };
    let rest = &body[open + 2..];
    let close = rest
        .windows(4)
        .rposition(|w| w == b") = ")
        .ok_or(LineProblem::TaggedForm {
            tag: algorithm.bsd_tag(),
        })?;
    let hex = std::str::from_utf8(&rest[close + 4..]).map_err(|_| LineProblem::NotText)?;
    let digest = Digest::from_hex(algorithm, hex).map_err(|error| LineProblem::Digest {
        error,
        fits: Vec::new(),
    })?;
    Ok(Some((unescape_if(&rest[..close], escaped)?, digest)))
}

fn unescape_if(name: &[u8], escaped: bool) -> Result<Vec<u8>, LineProblem> {
    if !escaped {
        return Ok(name.to_vec());
    }
    let mut out = Vec::with_capacity(name.len());
    let mut bytes = name.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'\\') => out.push(b'\\'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            _ => return Err(LineProblem::Escape),
        }
    }
    Ok(out)
}

/// One output line (with its newline) exactly as the peer tool for `digest`'s algorithm
/// prints it: b3sum for BLAKE3, GNU coreutils for the others.
pub fn format_line(digest: &Digest, name: &[u8]) -> Vec<u8> {
    let b3sum = digest.algorithm == Algorithm::Blake3;
    let name: Vec<u8> = if b3sum {
        String::from_utf8_lossy(name).into_owned().into_bytes()
    } else {
        name.to_vec()
    };
    let needs_escape = |b: u8| b == b'\\' || b == b'\n' || (!b3sum && b == b'\r');
    let escape = name.iter().any(|&b| needs_escape(b));
    let mut line = Vec::with_capacity(name.len() + digest.bytes.len() * 2 + 4);
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(digest.hex().as_bytes());
    line.extend_from_slice(b"  ");
    for &b in &name {
        match b {
            b'\\' if escape => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' if !b3sum => line.extend_from_slice(b"\\r"),
            _ => line.push(b),
        }
    }
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> Digest {
        Algorithm::Sha256.digest(data)
    }

    #[test]
    fn plain_binary_tagged_and_escaped_lines() {
        let d = sha(b"x");
        let text = format!(
            "{h}  a b\n{h} *bin\nSHA256 (tag (x)) = {h}\n\\{h}  a\\\\b\\nc\n\n",
            h = d.hex()
        );
        let entries = parse(text.as_bytes(), Algorithm::Sha256).unwrap();
        let names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"a b"[..], b"bin", b"tag (x)", b"a\\b\nc"]);
        assert!(entries.iter().all(|e| e.digest == d));
        assert_eq!(entries[3].line, 4);
    }

    #[test]
    fn malformed_lines_are_named() {
        let d = sha(b"x").hex();
        assert_eq!(
            parse(format!("{d} one-space\n").as_bytes(), Algorithm::Sha256).unwrap_err(),
            CheckListError::Line {
                line: 1,
                problem: LineProblem::Form { hex_digits: 64 }
            }
        );
        let sha512_line = format!("{}  f\n", Algorithm::Sha512.digest(b"x").hex());
        let err = parse(
            format!("{d}  ok\n{sha512_line}").as_bytes(),
            Algorithm::Sha256,
        )
        .unwrap_err();
        assert_eq!(err.likely_algorithm(), Some(Algorithm::Sha512));
        assert_eq!(
            err.to_string(),
            "line 2: a sha256 digest has 64 hex digits, found 128 (the length of sha512 or blake2b digests)"
        );
        assert_eq!(
            parse(b"", Algorithm::Sha256).unwrap_err(),
            CheckListError::Empty
        );
        let bad_escape = parse(format!("\\{d}  bad\\q\n").as_bytes(), Algorithm::Sha256);
        assert!(matches!(
            bad_escape,
            Err(CheckListError::Line {
                problem: LineProblem::Escape,
                ..
            })
        ));
        assert_eq!(bad_escape.unwrap_err().likely_algorithm(), None);
    }

    #[test]
    fn formatting_round_trips_every_name() {
        for name in [
            &b"plain"[..],
            b"back\\slash",
            b"new\nline",
            b"car\rriage",
            b"bad\xff",
        ] {
            for algorithm in [Algorithm::Sha256, Algorithm::Blake2b] {
                let d = algorithm.digest(name);
                let line = format_line(&d, name);
                let parsed = parse(&line, algorithm).unwrap();
                assert_eq!(parsed[0].name, name);
                assert_eq!(parsed[0].digest, d);
            }
        }
        // b3sum leaves carriage returns alone and writes names as (lossy) UTF-8.
        let d = Algorithm::Blake3.digest(b"");
        assert_eq!(
            format_line(&d, b"c\rr"),
            format!("{}  c\rr\n", d.hex()).into_bytes()
        );
        assert_eq!(
            format_line(&d, b"bad\xff"),
            format!("{}  bad\u{fffd}\n", d.hex()).into_bytes()
        );
    }
}
