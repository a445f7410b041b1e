//! Zip archives read as Python's `zipfile` reads them (the reader `numpy.load` uses, and
//! whose view of an archive `torch.load` shares): the end-of-central-directory record is
//! searched for from the end of the file, the central directory is where the record says,
//! and each member's data starts after its local header.
//!
//! What two readers could read differently, or vouch cannot read, is refused rather than
//! skipped: a central directory whose recorded offset disagrees with where the record's
//! size puts it (Python then shifts every member, other readers do not), members that
//! overlap or share their data, encrypted members, methods other than stored and deflate,
//! directory entries that hold bytes, names that differ between the directory and the local
//! header. The work is bounded: member count, and the inflated size each deflated member
//! declares, absolutely and against its compressed size (a loader reads no more than that).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::super::source::{Parsed, Problem};

const END_RECORD: &[u8; 4] = b"PK\x05\x06";
const END_RECORD_LEN: u64 = 22;
const ZIP64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_END_RECORD: &[u8; 4] = b"PK\x06\x06";
const ZIP64_END_RECORD_LEN: u64 = 56;
const CENTRAL_HEADER: &[u8; 4] = b"PK\x01\x02";
const CENTRAL_HEADER_LEN: usize = 46;
pub const LOCAL_HEADER: &[u8; 4] = b"PK\x03\x04";
const LOCAL_HEADER_LEN: usize = 30;
/// The highest "version needed to extract" Python's zipfile opens.
const MAX_EXTRACT_VERSION: u8 = 63;

/// Members an archive may list.
pub const MEMBER_LIMIT: usize = 100_000;
/// What one deflated member may declare it inflates to.
pub const INFLATED_MEMBER_LIMIT: u64 = 4 << 30;
/// What all deflated members of an archive may declare together.
pub const INFLATED_TOTAL_LIMIT: u64 = 16 << 30;
/// How far a deflated member may declare it inflates beyond its compressed size, once it
/// declares more than [`RATIO_FLOOR`] bytes.
pub const RATIO_LIMIT: u64 = 256;
pub const RATIO_FLOOR: u64 = 1 << 20;

const STORED: u16 = 0;
const DEFLATED: u16 = 8;
const FLAG_ENCRYPTED: u16 = 0x1;
const FLAG_PATCHED: u16 = 0x20;
const FLAG_STRONG_ENCRYPTION: u16 = 0x40;
const FLAG_UTF8: u16 = 0x800;

/// One member of an archive, as a loader would read it.
#[derive(Clone, Debug)]
pub struct Member {
    /// The name Python's zipfile gives it (cut at a NUL byte).
    pub name: String,
    method: u16,
    /// Where its data starts, and how many bytes of it a loader reads.
    data_start: u64,
    compressed_size: u64,
    /// What the directory says it inflates to; a loader reads no more than this.
    pub size: u64,
}

impl Member {
    pub fn is_directory(&self) -> bool {
        self.name.ends_with('/')
    }

    /// The member's content, as Python's zipfile returns it: the data inflated (or not),
    /// cut at the size the directory declares.
    pub fn open<'a>(&self, file: &'a File) -> Box<dyn Read + 'a> {
        let raw = At {
            file,
            position: self.data_start,
            end: self.data_start.saturating_add(self.compressed_size),
        };
        match self.method {
            DEFLATED => Box::new(flate2::read::DeflateDecoder::new(raw).take(self.size)),
            _ => Box::new(raw.take(self.size)),
        }
    }
}

/// A zip archive found in a file.
#[derive(Debug)]
pub struct Archive {
    pub members: Vec<Member>,
}

/// Reads `len` bytes of `file` from `position` on, without moving a shared file offset.
struct At<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let want = (self.end.saturating_sub(self.position)).min(buffer.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buffer[..want], self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

/// Up to `n` bytes at `offset` (fewer at the end of the file).
fn read_at(file: &File, offset: u64, n: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::with_capacity(n);
    At {
        file,
        position: offset,
        end: offset.saturating_add(n as u64),
    }
    .read_to_end(&mut buffer)?;
    Ok(buffer)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn bad(message: impl Into<String>) -> Problem {
    Problem::malformed(message)
}

/// Where the central directory is, as Python's `zipfile._EndRecData` finds it.
struct EndRecord {
    /// Offset of the end-of-central-directory record.
    location: u64,
    size: u64,
    offset: u64,
    zip64: bool,
}

/// The end-of-central-directory record, searched for as Python's zipfile searches: at the
/// very end (no comment), else the last signature in the final 64 KiB + 22 bytes.
fn end_record(file: &File, len: u64) -> Parsed<Option<EndRecord>> {
    if len < END_RECORD_LEN {
        return Ok(None);
    }
    let last = read_at(file, len - END_RECORD_LEN, END_RECORD_LEN as usize)?;
    let (location, record) = if last.starts_with(END_RECORD) && last[20..22] == [0, 0] {
        (len - END_RECORD_LEN, last)
    } else {
        let start = len.saturating_sub((1 << 16) + END_RECORD_LEN);
        let tail = read_at(file, start, (len - start) as usize)?;
        let Some(at) = tail.windows(4).rposition(|w| w == END_RECORD) else {
            return Ok(None);
        };
        if tail.len() - at < END_RECORD_LEN as usize {
            return Ok(None);
        }
        (
            start + at as u64,
            tail[at..at + END_RECORD_LEN as usize].to_vec(),
        )
    };
    let mut end = EndRecord {
        location,
        size: u64::from(u32_at(&record, 12)),
        offset: u64::from(u32_at(&record, 16)),
        zip64: false,
    };
    // The zip64 locator and record, right before the end record, when they are there.
    if location >= ZIP64_LOCATOR_LEN {
        let locator = read_at(
            file,
            location - ZIP64_LOCATOR_LEN,
            ZIP64_LOCATOR_LEN as usize,
        )?;
        if locator.starts_with(ZIP64_LOCATOR) {
            if u32_at(&locator, 4) != 0 || u32_at(&locator, 16) > 1 {
                return Err(bad("is a zip archive spanning several disks"));
            }
            // Python's zipfile reads the zip64 record right before the locator; PyTorch's
            // reader (miniz) goes where the locator points. Both must be the one record.
            let pointed = u64_at(&locator, 8);
            let at = location.checked_sub(ZIP64_LOCATOR_LEN + ZIP64_END_RECORD_LEN);
            let record = match at {
                Some(at) if at == pointed => read_at(file, at, ZIP64_END_RECORD_LEN as usize)?,
                _ => Vec::new(),
            };
            if !record.starts_with(ZIP64_END_RECORD) {
                return Err(bad(format!(
                    "is a zip archive whose zip64 locator points at offset {pointed}, where no zip64 record lies right before it: PyTorch's reader follows the locator, Python's zipfile reads before it"
                )));
            }
            end.size = u64_at(&record, 40);
            end.offset = u64_at(&record, 48);
            end.zip64 = true;
        }
    }
    Ok(Some(end))
}

/// The zip archive in `file` (of `len` bytes) as Python's zipfile finds it from the end,
/// every member checked as a loader would open it; `None` when there is no end record.
pub fn open(file: &File, len: u64) -> Parsed<Option<Archive>> {
    let Some(end) = end_record(file, len)? else {
        return Ok(None);
    };
    // Python's zipfile: concat = location - size - offset, and every offset is shifted by it.
    let mut derived = i128::from(end.location) - i128::from(end.size);
    if end.zip64 {
        derived -= i128::from(ZIP64_END_RECORD_LEN + ZIP64_LOCATOR_LEN);
    }
    if derived < 0 {
        return Err(bad(
            "is a zip archive with a bad offset for its central directory",
        ));
    }
    if derived != i128::from(end.offset) {
        return Err(bad(format!(
            "is a zip archive whose central directory can be found in two ways: its end record \
             says offset {}, its size puts it at {derived}; Python's zipfile would shift every \
             member by {} bytes, other readers would not",
            end.offset,
            derived - i128::from(end.offset)
        )));
    }
    let start_dir = end.offset;
    let mut directory = io::BufReader::new(At {
        file,
        position: start_dir,
        end: start_dir.saturating_add(end.size),
    });
    let mut members = Vec::new();
    let mut total = 0u64;
    while total < end.size {
        if members.len() >= MEMBER_LIMIT {
            return Err(bad(format!(
                "is a zip archive of more than {MEMBER_LIMIT} members (bounded work)"
            )));
        }
        let mut header = [0u8; CENTRAL_HEADER_LEN];
        read_full(
            &mut directory,
            &mut header,
            "the central directory is truncated",
        )?;
        if &header[..4] != CENTRAL_HEADER {
            return Err(bad(
                "is a zip archive with a bad magic number in its central directory",
            ));
        }
        let extract_version = header[6];
        let flags = u16_at(&header, 8);
        let method = u16_at(&header, 10);
        let mut compressed_size = u64::from(u32_at(&header, 20));
        let mut size = u64::from(u32_at(&header, 24));
        let name_len = usize::from(u16_at(&header, 28));
        let extra_len = usize::from(u16_at(&header, 30));
        let comment_len = usize::from(u16_at(&header, 32));
        let mut header_offset = u64::from(u32_at(&header, 42));
        let mut raw_name = vec![0u8; name_len];
        read_full(
            &mut directory,
            &mut raw_name,
            "the central directory is truncated",
        )?;
        let mut extra = vec![0u8; extra_len];
        read_full(
            &mut directory,
            &mut extra,
            "the central directory is truncated",
        )?;
        io::copy(
            &mut (&mut directory).take(comment_len as u64),
            &mut io::sink(),
        )?;
        let full_name = decode_name(&raw_name, flags)?;
        if extract_version > MAX_EXTRACT_VERSION {
            return Err(bad(format!(
                "is a zip archive whose member {full_name:?} needs zip version {}.{}, which \
                 Python's zipfile does not open",
                extract_version / 10,
                extract_version % 10
            )));
        }
        zip64_extra(
            &extra,
            &mut size,
            &mut compressed_size,
            &mut header_offset,
            &full_name,
        )?;
        let name = match full_name.find('\0') {
            Some(nul) => full_name[..nul].to_string(),
            None => full_name.clone(),
        };
        members.push((
            header_offset,
            raw_name,
            flags,
            Member {
                name,
                method,
                data_start: 0,
                compressed_size,
                size,
            },
        ));
        total += (CENTRAL_HEADER_LEN + name_len + extra_len + comment_len) as u64;
    }
    check_members(file, len, start_dir, members).map(|members| Some(Archive { members }))
}

/// The zip archive Python's zipfile finds from the end of a file that does not start as
/// one (a zip appended to a pickle, or behind any prefix), read as [`open`] reads it.
/// `None` when there is no end record, or when no reader finds a central directory from it:
/// the record declares one, but no central directory header is where Python's zipfile puts
/// it nor where the record says (zipfile then raises BadZipFile, and no loader reads a
/// member; bytes that merely contain the record's signature are no archive).
pub fn open_appended(file: &File, len: u64) -> Parsed<Option<Archive>> {
    let Some(end) = end_record(file, len)? else {
        return Ok(None);
    };
    if end.size > 0 {
        let mut derived = i128::from(end.location) - i128::from(end.size);
        if end.zip64 {
            derived -= i128::from(ZIP64_END_RECORD_LEN + ZIP64_LOCATOR_LEN);
        }
        let mut found = false;
        for at in [u64::try_from(derived).ok(), Some(end.offset)]
            .into_iter()
            .flatten()
        {
            found |= read_at(file, at, CENTRAL_HEADER.len())? == CENTRAL_HEADER;
        }
        if !found {
            return Ok(None);
        }
    }
    open(file, len)
}

fn read_full(reader: &mut impl Read, buffer: &mut [u8], what: &str) -> Parsed<()> {
    reader.read_exact(buffer).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => bad(format!("is a zip archive: {what}")),
        _ => Problem::Io(e),
    })
}

/// Python's `ZipInfo._decodeExtra`: a zip64 field replaces the sizes and offset that are
/// saturated, in that order.
fn zip64_extra(
    mut extra: &[u8],
    size: &mut u64,
    compressed_size: &mut u64,
    header_offset: &mut u64,
    name: &str,
) -> Parsed<()> {
    let corrupt = || {
        bad(format!(
            "is a zip archive with a corrupt extra field in {name:?}"
        ))
    };
    while extra.len() >= 4 {
        let kind = u16_at(extra, 0);
        let len = usize::from(u16_at(extra, 2));
        if len + 4 > extra.len() {
            return Err(corrupt());
        }
        if kind == 1 {
            let mut data = &extra[4..len + 4];
            let mut next = || -> Parsed<u64> {
                let value = data.get(..8).ok_or_else(corrupt)?;
                let value = u64_at(value, 0);
                data = &data[8..];
                Ok(value)
            };
            if *size == 0xFFFF_FFFF || *size == u64::MAX {
                *size = next()?;
            }
            if *compressed_size == 0xFFFF_FFFF {
                *compressed_size = next()?;
            }
            if *header_offset == 0xFFFF_FFFF {
                *header_offset = next()?;
            }
        }
        extra = &extra[len + 4..];
    }
    Ok(())
}

/// Opens every member as Python's `ZipFile.open` would, and refuses what a loader could read
/// differently or vouch cannot read.
fn check_members(
    file: &File,
    len: u64,
    start_dir: u64,
    mut listed: Vec<(u64, Vec<u8>, u16, Member)>,
) -> Parsed<Vec<Member>> {
    let mut offsets: Vec<u64> = listed.iter().map(|m| m.0).collect();
    offsets.sort_unstable();
    let mut inflated_total = 0u64;
    for (header_offset, raw_name, flags, member) in &mut listed {
        let name = &member.name;
        let header = read_at(file, *header_offset, LOCAL_HEADER_LEN)?;
        if header.len() < LOCAL_HEADER_LEN {
            return Err(bad(format!(
                "is a zip archive whose member {name:?} has a truncated local header"
            )));
        }
        if &header[..4] != LOCAL_HEADER {
            return Err(bad(format!(
                "is a zip archive whose member {name:?} has a bad local header magic number"
            )));
        }
        let local_flags = u16_at(&header, 6);
        let local_name_len = usize::from(u16_at(&header, 26));
        let local_extra_len = u64::from(u16_at(&header, 28));
        let local_name = read_at(file, header_offset.saturating_add(30), local_name_len)?;
        if *flags & FLAG_PATCHED != 0 {
            return Err(bad(format!(
                "is a zip archive whose member {name:?} holds compressed patched data"
            )));
        }
        if *flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 {
            return Err(bad(format!(
                "is a zip archive whose member {name:?} is encrypted; it cannot be scanned"
            )));
        }
        if !same_name(&local_name, local_flags, raw_name, *flags) {
            return Err(bad(format!(
                "is a zip archive whose member {name:?} has another name in its local header"
            )));
        }
        match member.method {
            STORED | DEFLATED => {}
            method => {
                return Err(bad(format!(
                    "is a zip archive whose member {name:?} is compressed with {}, which vouch \
                     cannot inflate; it cannot be scanned",
                    method_name(method)
                )))
            }
        }
        if member.is_directory() && (member.size > 0 || member.compressed_size > 0) {
            return Err(bad(format!(
                "is a zip archive whose directory entry {name:?} holds {} bytes",
                member.size.max(member.compressed_size)
            )));
        }
        member.data_start = header_offset
            .saturating_add(30)
            .saturating_add(local_name_len as u64 + local_extra_len);
        let data_end = member.data_start.saturating_add(member.compressed_size);
        // The next member's header (or the directory) bounds this member's data.
        let next = offsets.partition_point(|o| o <= header_offset);
        let bound = offsets.get(next).copied().unwrap_or(start_dir);
        let shared = offsets.partition_point(|o| o < header_offset) + 1 != next;
        if shared || data_end > bound {
            return Err(bad(format!(
                "is a zip archive whose member {name:?} overlaps another member or the \
                 directory (a possible zip bomb)"
            )));
        }
        if data_end > len {
            return Err(bad(format!(
                "is a zip archive whose member {name:?} runs past the end of the file \
                 (truncated)"
            )));
        }
        if member.method == DEFLATED {
            inflated_total = inflated_total.saturating_add(member.size);
            let ratio_exceeded = member.size > RATIO_FLOOR
                && member.size / member.compressed_size.max(1) > RATIO_LIMIT;
            if ratio_exceeded || member.size > INFLATED_MEMBER_LIMIT {
                return Err(bad(format!(
                    "is a zip archive whose member {name:?} declares {} bytes inflated from {} \
                     (more than {RATIO_LIMIT} to 1, or over {INFLATED_MEMBER_LIMIT} bytes): a \
                     possible zip bomb, not inflated (bounded work)",
                    member.size, member.compressed_size
                )));
            }
            if inflated_total > INFLATED_TOTAL_LIMIT {
                return Err(bad(format!(
                    "is a zip archive whose members declare more than {INFLATED_TOTAL_LIMIT} \
                     inflated bytes together: a possible zip bomb (bounded work)"
                )));
            }
        }
    }
    Ok(listed.into_iter().map(|(_, _, _, member)| member).collect())
}

fn method_name(method: u16) -> String {
    match method {
        12 => "bzip2".into(),
        14 => "LZMA".into(),
        93 => "zstandard".into(),
        9 => "deflate64".into(),
        other => format!("method {other}"),
    }
}

/// Whether Python's zipfile decodes the two names to the same text.
fn same_name(local: &[u8], local_flags: u16, central: &[u8], central_flags: u16) -> bool {
    if (local_flags & FLAG_UTF8) == (central_flags & FLAG_UTF8) || local.is_ascii() {
        local == central
    } else {
        false
    }
}

/// A member name as Python's zipfile decodes it: UTF-8 when flagged, else code page 437.
fn decode_name(raw: &[u8], flags: u16) -> Parsed<String> {
    if flags & FLAG_UTF8 != 0 {
        return String::from_utf8(raw.to_vec())
            .map_err(|_| bad("is a zip archive with a member name that is not UTF-8"));
    }
    Ok(raw
        .iter()
        .map(|&b| match b {
            0..=0x7f => b as char,
            _ => CP437_HIGH[usize::from(b - 0x80)],
        })
        .collect())
}

/// Code page 437, bytes 0x80 to 0xFF.
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', 'É', 'æ', 'Æ',
    'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', 'á', 'í', 'ó', 'ú', 'ñ', 'Ñ',
    'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕',
    '╣', '║', '╗', '╝', '╜', '╛', '┐', '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦',
    '╠', '═', '╬', '╧', '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐',
    '▀', 'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', '≡', '±',
    '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];
