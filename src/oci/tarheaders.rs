//! The headers of one tar entry, held to what every reader of a layer reads alike.
//!
//! Go's `archive/tar` (containerd, CRI-O, umoci, skopeo, modctl), Python's `tarfile`
//! (modelpack-client, olot, oras-py) and the tar crate vouch reads layers with agree on a
//! plain POSIX (ustar `00`, with PAX records) or GNU archive. Where they part, the same bytes
//! name another file or hold other content for one of them: a PAX key given twice (the crate
//! takes the first, Go and Python the last), GNU sparse files (the crate ignores their map and
//! name), a V7 or star header, a directory or link that claims data (Go and Python read none,
//! the crate skips it, so what follows is another entry for each), a global PAX header
//! (Python applies it to every later entry, Go to none), a GNU long name beside a PAX path,
//! a regular file named like a directory, an entry type Python extracts as a regular file.
//! Such a layer is refused whole: it is never read one way when its consumer reads another.

const BLOCK: usize = 512;

/// The PAX keys a layer may carry; any other is refused. `path`, `linkpath` and `size`
/// change what an entry is, and every reader applies them alike once each is given once; the
/// rest change nothing vouch compares.
const PAX_KEYS: &[&str] = &[
    "path", "linkpath", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname",
    "comment", "charset",
];

/// Vendor PAX keys that carry extended attributes, which no reader takes as a name or size.
const PAX_KEY_PREFIXES: &[&str] = &["SCHILY.xattr.", "LIBARCHIVE.xattr."];

/// Checks the header blocks the tar reader read for one entry: its extension headers (GNU
/// long names, a PAX header) and its own header, which ends `headers`. The reason names the
/// construct and why readers would differ on it.
pub fn check(headers: &[u8]) -> Result<(), String> {
    let mut at = 0;
    let mut pax: Option<Vec<(String, Vec<u8>)>> = None;
    let (mut long_name, mut long_link) = (None, None);
    loop {
        let block = headers
            .get(at..at + BLOCK)
            .ok_or("a tar header is cut short")?;
        at += BLOCK;
        let format = format_of(block)?;
        let size = header_size(block)?;
        let kind = block[156];
        match kind {
            b'x' | b'L' | b'K' => {
                let size = usize::try_from(size).map_err(|_| "a tar extension header is too large")?;
                let data = headers
                    .get(at..at.saturating_add(size))
                    .ok_or("a tar extension header is cut short")?;
                at += size.div_ceil(BLOCK) * BLOCK;
                let (slot, what) = match kind {
                    b'x' => {
                        if pax.replace(pax_records(data)?).is_some() {
                            return Err("one entry has two PAX headers".into());
                        }
                        continue;
                    }
                    b'L' => (&mut long_name, "long name"),
                    _ => (&mut long_link, "long link name"),
                };
                if slot.replace(gnu_long_name(data, what)?).is_some() {
                    return Err(format!("one entry has two GNU {what} headers"));
                }
            }
            b'g' => {
                return Err("the layer has a global PAX header, which Python's tarfile applies to every later entry and Go's archive/tar to none".into())
            }
            _ => {
                if at != headers.len() {
                    return Err("a tar entry's headers are followed by more headers".into());
                }
                return entry(block, format, size, pax.unwrap_or_default(), long_name, long_link);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Ustar,
    Gnu,
}

fn format_of(block: &[u8]) -> Result<Format, String> {
    match (&block[257..263], &block[263..265]) {
        // star writes ustar's magic with a shorter prefix and a trailer, which Go reads apart.
        (b"ustar\0", b"00") if &block[508..512] != b"tar\0" => Ok(Format::Ustar),
        (b"ustar ", b" \0") => Ok(Format::Gnu),
        _ => Err("a tar header is neither POSIX ustar (version 00) nor GNU: an old V7, star or unknown header, whose fields Go's archive/tar and the tar crate read differently".into()),
    }
}

/// The size field, read only where every reader reads the same number: octal digits
/// (after spaces, before NULs or spaces), or GNU's base-256 in the last eight bytes.
fn header_size(block: &[u8]) -> Result<u64, String> {
    let field = &block[124..136];
    let bad = || Err("a tar header's size field is no plain number".to_string());
    if field[0] & 0x80 != 0 {
        if field[0] != 0x80 || field[1..4].iter().any(|&b| b != 0) {
            return bad();
        }
        return Ok(u64::from_be_bytes(
            field[4..].try_into().expect("eight bytes"),
        ));
    }
    let digits = field.iter().skip_while(|&&b| b == b' ');
    let (mut value, mut count, mut ended) = (0u64, 0, false);
    for &b in digits {
        match b {
            b'0'..=b'7' if !ended => {
                value = value * 8 + u64::from(b - b'0');
                count += 1;
            }
            b' ' | 0 => ended = true,
            _ => return bad(),
        }
    }
    if count == 0 {
        return bad();
    }
    Ok(value)
}

/// Records of `LENGTH KEY=VALUE\n`, each read strictly, covering `data` exactly.
fn pax_records(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let bad = || Err("a PAX header holds a malformed record".to_string());
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    while !data.is_empty() {
        let Some(space) = data.iter().position(|&b| b == b' ') else {
            return bad();
        };
        let length = &data[..space];
        if length.is_empty() || length[0] == b'0' || !length.iter().all(u8::is_ascii_digit) {
            return bad();
        }
        let Ok(length) = std::str::from_utf8(length).unwrap_or("").parse::<usize>() else {
            return bad();
        };
        if length <= space + 1 || length > data.len() || data[length - 1] != b'\n' {
            return bad();
        }
        let body = &data[space + 1..length - 1];
        let Some(equals) = body.iter().position(|&b| b == b'=') else {
            return bad();
        };
        let Ok(key) = std::str::from_utf8(&body[..equals]) else {
            return bad();
        };
        let value = &body[equals + 1..];
        if key.is_empty() || key.contains('\0') {
            return bad();
        }
        if key.starts_with("GNU.sparse.") {
            return Err(format!("a PAX header describes a GNU sparse file ({key}), whose name and content Go's archive/tar and Python's tarfile read from its map and the tar crate does not"));
        }
        if !PAX_KEYS.contains(&key) && !PAX_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) {
            return Err(format!(
                "a PAX header holds the key '{key}', which vouch does not know how every reader applies"
            ));
        }
        if records.iter().any(|(k, _)| k == key) {
            return Err(format!("a PAX header gives '{key}' twice (the tar crate takes the first, Go's archive/tar and Python's tarfile the last)"));
        }
        let plain = match key {
            "path" | "linkpath" => !value.is_empty() && !value.contains(&0),
            "size" => !value.is_empty() && value.iter().all(u8::is_ascii_digit),
            _ => true,
        };
        if !plain {
            return Err(format!(
                "a PAX header's '{key}' is empty or not a plain value"
            ));
        }
        records.push((key.to_string(), value.to_vec()));
        data = &data[length..];
    }
    Ok(records)
}

/// A GNU long name's data: the name and at most one NUL after it (the tar crate drops one
/// NUL, Go and Python read to the first).
fn gnu_long_name(data: &[u8], what: &str) -> Result<Vec<u8>, String> {
    let name = data.strip_suffix(b"\0").unwrap_or(data);
    if name.is_empty() || name.contains(&0) {
        return Err(format!("a GNU {what} header holds no plain name"));
    }
    Ok(name.to_vec())
}

fn entry(
    block: &[u8],
    format: Format,
    header_size: u64,
    pax: Vec<(String, Vec<u8>)>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
) -> Result<(), String> {
    let kind = block[156];
    let pax_value = |key: &str| pax.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if long_name.is_some() && pax_value("path").is_some() {
        return Err("an entry has both a GNU long name and a PAX path (the tar crate takes the first, Go's archive/tar the second)".into());
    }
    if long_link.is_some() && pax_value("linkpath").is_some() {
        return Err("an entry has both a GNU long link name and a PAX linkpath".into());
    }
    match kind {
        0 | b'0' | b'7' | b'1'..=b'6' => {}
        b'S' => return Err("the layer holds a GNU sparse file, whose content Go's archive/tar and Python's tarfile expand from its map and the tar crate does not".into()),
        other => return Err(format!("an entry of tar type '{}', which Python's tarfile extracts as a regular file and Go's archive/tar does not", other.escape_ascii())),
    }
    if format == Format::Gnu && block[345..500].iter().any(|&b| b != 0) {
        return Err("a GNU tar header holds bytes where ustar keeps a name prefix, which Python's tarfile joins to the name and Go's archive/tar does not".into());
    }
    let size = match pax_value("size") {
        Some(digits) => std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or("a PAX size is out of range")?,
        None => header_size,
    };
    // Go's archive/tar and Python's tarfile read no data after these; the tar crate skips it.
    if (b'1'..=b'6').contains(&kind) && (size != 0 || header_size != 0) {
        return Err("a link, directory or device entry claims data, which Go's archive/tar and Python's tarfile read as the next header".into());
    }
    let name = match (pax_value("path"), long_name) {
        (Some(path), _) => path.clone(),
        (None, Some(long)) => long,
        (None, None) => {
            let field = |range: std::ops::Range<usize>| {
                let bytes = &block[range];
                bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())].to_vec()
            };
            let (name, prefix) = (field(0..100), field(345..500));
            if format == Format::Ustar && !prefix.is_empty() {
                [prefix, b"/".to_vec(), name].concat()
            } else {
                name
            }
        }
    };
    if kind != b'5' && name.ends_with(b"/") {
        return Err("an entry that is no directory has a name ending in '/', which Go's archive/tar and Python's tarfile may read as a directory".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header block of `kind` for `name` holding `size` bytes, in `format`.
    fn header(name: &[u8], kind: u8, size: u64, format: Format) -> Vec<u8> {
        let mut block = vec![0u8; BLOCK];
        block[..name.len()].copy_from_slice(name);
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        block[156] = kind;
        match format {
            Format::Ustar => {
                block[257..263].copy_from_slice(b"ustar\0");
                block[263..265].copy_from_slice(b"00");
            }
            Format::Gnu => {
                block[257..263].copy_from_slice(b"ustar ");
                block[263..265].copy_from_slice(b" \0");
            }
        }
        block
    }

    fn with_data(mut header: Vec<u8>, data: &[u8]) -> Vec<u8> {
        header.extend_from_slice(data);
        header.resize(header.len().div_ceil(BLOCK) * BLOCK, 0);
        header
    }

    fn record(key: &str, value: &str) -> String {
        let body = format!(" {key}={value}\n");
        let mut length = body.len() + 1;
        while format!("{length}{body}").len() != length {
            length += 1;
        }
        format!("{length}{body}")
    }

    fn pax_entry(records: &str, then: Vec<u8>) -> Vec<u8> {
        let mut bytes = with_data(
            header(b"PaxHeader", b'x', records.len() as u64, Format::Ustar),
            records.as_bytes(),
        );
        bytes.extend(then);
        bytes
    }

    #[test]
    fn plain_posix_and_gnu_entries_pass() {
        assert_eq!(
            check(&header(b"models/a.bin", b'0', 5, Format::Ustar)),
            Ok(())
        );
        assert_eq!(check(&header(b"models/", b'5', 0, Format::Gnu)), Ok(()));
        let long = with_data(
            header(b"././@LongLink", b'L', 9, Format::Gnu),
            b"models/a\0",
        );
        let mut bytes = long;
        bytes.extend(header(b"models/a", b'0', 3, Format::Gnu));
        assert_eq!(check(&bytes), Ok(()));
        let records = record("path", "models/long") + &record("mtime", "1.5");
        assert_eq!(
            check(&pax_entry(&records, header(b"x", b'0', 3, Format::Ustar))),
            Ok(())
        );
    }

    #[test]
    fn constructs_readers_part_on_are_refused() {
        let file = || header(b"models/a.bin", b'0', 3, Format::Ustar);
        let refused = |bytes: Vec<u8>, says: &str| {
            let why = check(&bytes).expect_err(says);
            assert!(why.contains(says), "{why}");
        };
        let twice = record("path", "etc/decoy") + &record("path", "models/a.bin");
        refused(pax_entry(&twice, file()), "gives 'path' twice");
        let sparse = record("GNU.sparse.name", "models/a.bin");
        refused(pax_entry(&sparse, file()), "GNU sparse");
        refused(
            pax_entry(&record("hdrcharset", "BINARY"), file()),
            "'hdrcharset'",
        );
        refused(pax_entry("12 path=a\n\0\0", file()), "malformed record");
        refused(
            pax_entry(&record("size", "+3"), file()),
            "not a plain value",
        );
        let mut v7 = file();
        v7[257..265].fill(0);
        refused(v7, "neither POSIX");
        let mut version = file();
        version[263..265].copy_from_slice(b"01");
        refused(version, "neither POSIX");
        let mut star = file();
        star[508..512].copy_from_slice(b"tar\0");
        refused(star, "neither POSIX");
        refused(header(b"models/", b'5', 512, Format::Ustar), "claims data");
        refused(header(b"models/l", b'2', 1, Format::Ustar), "claims data");
        refused(
            pax_entry(&record("size", "7"), header(b"d/", b'5', 0, Format::Ustar)),
            "claims data",
        );
        refused(header(b"models/a", b'S', 3, Format::Gnu), "GNU sparse file");
        refused(header(b"models/a", b'Z', 3, Format::Ustar), "tar type 'Z'");
        refused(header(b"models/a/", 0, 3, Format::Ustar), "ending in '/'");
        refused(
            header(b"pax_global_header", b'g', 0, Format::Ustar),
            "global PAX",
        );
        let mut gnu_prefix = header(b"a.bin", b'0', 3, Format::Gnu);
        gnu_prefix[345..351].copy_from_slice(b"models");
        refused(gnu_prefix, "name prefix");
        let mut both = with_data(header(b"././@LongLink", b'L', 2, Format::Gnu), b"a\0");
        both.extend(pax_entry(&record("path", "b"), file()));
        refused(both, "both a GNU long name and a PAX path");
        let mut two = with_data(header(b"././@LongLink", b'L', 2, Format::Gnu), b"a\0");
        two.extend(with_data(
            header(b"././@LongLink", b'L', 2, Format::Gnu),
            b"b\0",
        ));
        two.extend(file());
        refused(two, "two GNU long name headers");
        let nul = with_data(header(b"././@LongLink", b'L', 4, Format::Gnu), b"a\0b\0");
        refused([nul, file()].concat(), "no plain name");
        let mut spaced = file();
        spaced[124..136].copy_from_slice(b"00000000003x");
        refused(spaced, "no plain number");
    }

    #[test]
    fn sizes_are_read_as_every_reader_reads_them() {
        let mut block = header(b"a", b'0', 0, Format::Gnu);
        block[124..136].copy_from_slice(b"  17 \0\0\0\0\0\0\0");
        assert_eq!(header_size(&block), Ok(0o17));
        block[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(header_size(&block), Ok(256));
        block[124..136].copy_from_slice(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert!(header_size(&block).is_err());
        block[124..136].copy_from_slice(b"1 2\0\0\0\0\0\0\0\0\0");
        assert!(header_size(&block).is_err());
        block[124..136].copy_from_slice(&[0; 12]);
        assert!(header_size(&block).is_err());
    }
}
