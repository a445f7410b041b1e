//! Pickle: an opcode scanner, never an unpickler. It walks the opcode stream of every
//! pickle in a file (protocols 0 to 5), lists the globals it imports (GLOBAL, INST, and
//! STACK_GLOBAL with its operands traced through the memo), and rates each one with
//! picklescan's rules, so that its verdicts are picklescan's.
//!
//! Operands are traced exactly as picklescan traces them: a memo entry holds the argument
//! of the opcode before the PUT or MEMOIZE, and STACK_GLOBAL takes the two nearest
//! preceding operands that are not memo writes; one that is neither a string nor a memo
//! read makes the import `unknown`, which is dangerous.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read};

use serde::Serialize;

use super::source::{Parsed, Problem};

/// Operand strings are kept up to this many bytes (module and attribute names are short).
const KEPT_STRING: usize = 256;
/// Protocol-0 arguments are lines; longer ones are refused.
const LINE_LIMIT: usize = 64 << 10;
/// Memo entries tracked per file; a pickle that writes more is refused.
const MEMO_LIMIT: usize = 1 << 20;

/// How picklescan rates an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Safety {
    Innocuous,
    Suspicious,
    Dangerous,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Global {
    pub module: String,
    pub name: String,
    pub safety: Safety,
}

impl Global {
    /// `module.name`, as people write an import.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// What one pickle stream (a file, or a member of an archive) imports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamScan {
    /// Pickles read to their STOP opcode.
    pub pickles: u32,
    /// The highest protocol a PROTO opcode declared (protocols 0 and 1 declare none).
    pub protocol: Option<u8>,
    /// Imported globals, sorted, each once.
    pub globals: Vec<Global>,
    /// Why scanning stopped before the end, when it did.
    pub error: Option<String>,
}

impl StreamScan {
    /// picklescan's reading of a stream that failed before any import: not a pickle.
    pub fn is_pickle(&self) -> bool {
        self.pickles > 0 || !self.globals.is_empty()
    }
}

/// The argument of an opcode, as far as picklescan's memo tracing can see it.
#[derive(Clone, Debug)]
enum Arg {
    /// A Python `str` (the string opcodes, and GLOBAL's `module name`).
    Text(String),
    /// Anything else, as Python's `str()` would print it.
    Other(String),
    None,
}

impl Arg {
    fn as_text(&self) -> String {
        match self {
            Arg::Text(s) | Arg::Other(s) => s.clone(),
            Arg::None => "None".to_string(),
        }
    }
}

/// What STACK_GLOBAL can find before it.
#[derive(Clone, Debug)]
enum Operand {
    Text(String),
    MemoRead(u64),
    Unknown,
}

/// How an opcode's argument is encoded (pickletools' argument descriptors).
#[derive(Clone, Copy)]
enum Encoding {
    None,
    Fixed(usize),
    /// A signed little-endian integer of this many bytes.
    Signed(usize),
    DecimalLine,
    LongLine,
    FloatLine,
    QuotedLine,
    RawLine,
    UnicodeLine,
    LinePair,
    /// Length-prefixed bytes: prefix width, signed prefix, and what the bytes become.
    Counted(usize, bool, Text),
    Float8,
    LongBytes(usize),
}

#[derive(Clone, Copy, PartialEq)]
enum Text {
    Latin1,
    Utf8,
    Bytes,
}

struct Opcode {
    name: &'static str,
    encoding: Encoding,
}

fn opcode(code: u8) -> Option<Opcode> {
    use Encoding::*;
    use Text::*;
    let (name, encoding) = match code {
        b'(' => ("MARK", None),
        b'.' => ("STOP", None),
        b'0' => ("POP", None),
        b'1' => ("POP_MARK", None),
        b'2' => ("DUP", None),
        b'F' => ("FLOAT", FloatLine),
        b'I' => ("INT", DecimalLine),
        b'J' => ("BININT", Signed(4)),
        b'K' => ("BININT1", Fixed(1)),
        b'L' => ("LONG", LongLine),
        b'M' => ("BININT2", Fixed(2)),
        b'N' => ("NONE", None),
        b'P' => ("PERSID", RawLine),
        b'Q' => ("BINPERSID", None),
        b'R' => ("REDUCE", None),
        b'S' => ("STRING", QuotedLine),
        b'T' => ("BINSTRING", Counted(4, true, Latin1)),
        b'U' => ("SHORT_BINSTRING", Counted(1, false, Latin1)),
        b'V' => ("UNICODE", UnicodeLine),
        b'X' => ("BINUNICODE", Counted(4, false, Utf8)),
        b'a' => ("APPEND", None),
        b'b' => ("BUILD", None),
        b'c' => ("GLOBAL", LinePair),
        b'd' => ("DICT", None),
        b'}' => ("EMPTY_DICT", None),
        b'e' => ("APPENDS", None),
        b'g' => ("GET", DecimalLine),
        b'h' => ("BINGET", Fixed(1)),
        b'i' => ("INST", LinePair),
        b'j' => ("LONG_BINGET", Fixed(4)),
        b'l' => ("LIST", None),
        b']' => ("EMPTY_LIST", None),
        b'o' => ("OBJ", None),
        b'p' => ("PUT", DecimalLine),
        b'q' => ("BINPUT", Fixed(1)),
        b'r' => ("LONG_BINPUT", Fixed(4)),
        b's' => ("SETITEM", None),
        b't' => ("TUPLE", None),
        b')' => ("EMPTY_TUPLE", None),
        b'u' => ("SETITEMS", None),
        b'G' => ("BINFLOAT", Float8),
        0x80 => ("PROTO", Fixed(1)),
        0x81 => ("NEWOBJ", None),
        0x82 => ("EXT1", Fixed(1)),
        0x83 => ("EXT2", Fixed(2)),
        0x84 => ("EXT4", Signed(4)),
        0x85 => ("TUPLE1", None),
        0x86 => ("TUPLE2", None),
        0x87 => ("TUPLE3", None),
        0x88 => ("NEWTRUE", None),
        0x89 => ("NEWFALSE", None),
        0x8a => ("LONG1", LongBytes(1)),
        0x8b => ("LONG4", LongBytes(4)),
        b'B' => ("BINBYTES", Counted(4, false, Bytes)),
        b'C' => ("SHORT_BINBYTES", Counted(1, false, Bytes)),
        0x8c => ("SHORT_BINUNICODE", Counted(1, false, Utf8)),
        0x8d => ("BINUNICODE8", Counted(8, false, Utf8)),
        0x8e => ("BINBYTES8", Counted(8, false, Bytes)),
        0x8f => ("EMPTY_SET", None),
        0x90 => ("ADDITEMS", None),
        0x91 => ("FROZENSET", None),
        0x92 => ("NEWOBJ_EX", None),
        0x93 => ("STACK_GLOBAL", None),
        0x94 => ("MEMOIZE", None),
        0x95 => ("FRAME", Fixed(8)),
        0x96 => ("BYTEARRAY8", Counted(8, false, Bytes)),
        0x97 => ("NEXT_BUFFER", None),
        0x98 => ("READONLY_BUFFER", None),
        _ => return Option::None,
    };
    Some(Opcode { name, encoding })
}

/// Reads one pickle stream, counting bytes for messages.
struct Stream<R> {
    inner: R,
    position: u64,
}

/// What ended one pickle.
enum End {
    Stop,
    /// The stream had no byte left where a pickle would start.
    Exhausted,
}

impl<R: BufRead> Stream<R> {
    fn byte(&mut self) -> io::Result<Option<u8>> {
        let mut byte = [0u8];
        match self.inner.read(&mut byte)? {
            0 => Ok(None),
            _ => {
                self.position += 1;
                Ok(Some(byte[0]))
            }
        }
    }

    fn exact(&mut self, n: usize, what: &str) -> Parsed<Vec<u8>> {
        let mut buffer = vec![0; n];
        let mut filled = 0;
        while filled < n {
            match self.inner.read(&mut buffer[filled..])? {
                0 => {
                    return Err(Problem::malformed(format!(
                        "{what}: expected {n} bytes, but only {filled} remain (truncated)"
                    )))
                }
                read => filled += read,
            }
        }
        self.position += n as u64;
        Ok(buffer)
    }

    /// Reads `n` declared bytes, keeping the first `KEPT_STRING` and discarding the rest
    /// as they stream by, so a huge declared length allocates nothing.
    fn counted(&mut self, n: u64, what: &str) -> Parsed<Vec<u8>> {
        let kept = n.min(KEPT_STRING as u64) as usize;
        let head = self.exact(kept, what)?;
        let rest = n - kept as u64;
        let skipped = io::copy(&mut (&mut self.inner).take(rest), &mut io::sink())?;
        self.position += skipped;
        if skipped < rest {
            return Err(Problem::malformed(format!(
                "{what}: declares {n} bytes, but only {} remain (truncated)",
                kept as u64 + skipped
            )));
        }
        Ok(head)
    }

    /// A protocol-0 argument line, without its newline.
    fn line(&mut self, what: &str) -> Parsed<Vec<u8>> {
        let mut line = Vec::new();
        let read = (&mut self.inner)
            .take(LINE_LIMIT as u64 + 1)
            .read_until(b'\n', &mut line)?;
        self.position += read as u64;
        if line.last() != Some(&b'\n') {
            return Err(Problem::malformed(if line.len() > LINE_LIMIT {
                format!("{what}: a line longer than {LINE_LIMIT} bytes")
            } else {
                format!("{what}: no newline found (truncated)")
            }));
        }
        line.pop();
        Ok(line)
    }
}

/// Scans every pickle in `reader` until its end or the first error, as picklescan does.
pub fn scan_stream(reader: impl Read) -> StreamScan {
    let mut scanner = Scanner::new(reader);
    scanner.scan_pickles(u32::MAX);
    scanner.finish()
}

/// Walks pickles, tracing imports, across one stream (the memo lives as long as it does).
pub struct Scanner<R> {
    stream: Stream<BufReader<R>>,
    memo: HashMap<u64, Arg>,
    globals: BTreeSet<(String, String)>,
    scan: StreamScan,
}

impl<R: Read> Scanner<R> {
    pub fn new(reader: R) -> Scanner<R> {
        Scanner {
            stream: Stream {
                inner: BufReader::with_capacity(64 << 10, reader),
                position: 0,
            },
            memo: HashMap::new(),
            globals: BTreeSet::new(),
            scan: StreamScan::default(),
        }
    }

    /// Reads up to `limit` pickles; stops at the end of the stream or at an error.
    pub fn scan_pickles(&mut self, limit: u32) {
        for index in 0..limit {
            match self.pickle() {
                Ok(End::Stop) => self.scan.pickles += 1,
                Ok(End::Exhausted) if index > 0 => return,
                Ok(End::Exhausted) => {
                    self.scan.error = Some("the stream is empty".into());
                    return;
                }
                Err(problem) => {
                    self.scan.error = Some(match problem {
                        Problem::Malformed(m) => m,
                        Problem::Io(e) => format!("read error: {e}"),
                    });
                    return;
                }
            }
        }
    }

    /// Reads up to `count` pickles each on its own, as picklescan reads the pickles of a
    /// legacy PyTorch file: a fresh memo each, and a failure without imports ignored.
    fn scan_singles(&mut self, count: u32) {
        for _ in 0..count {
            self.memo.clear();
            let before = self.globals.len();
            let error = self.scan.error.take();
            self.scan_pickles(1);
            if self.globals.len() == before {
                self.scan.error = error;
            }
        }
    }

    /// The imports found, rated.
    pub fn finish(mut self) -> StreamScan {
        self.scan.globals = self
            .globals
            .into_iter()
            .map(|(module, name)| Global {
                safety: safety(&module, &name),
                module,
                name,
            })
            .collect();
        self.scan
    }

    /// One pickle, up to its STOP.
    fn pickle(&mut self) -> Parsed<End> {
        // The two nearest operands that are not memo writes, nearest first.
        let mut recent: Vec<Operand> = Vec::with_capacity(2);
        let mut previous: Option<Arg> = None;
        let mut ops = 0u64;
        loop {
            let at = self.stream.position;
            let Some(code) = self.stream.byte()? else {
                if ops == 0 {
                    return Ok(End::Exhausted);
                }
                return Err(Problem::malformed(format!(
                    "the pickle ends at byte {at} before its STOP opcode (truncated)"
                )));
            };
            ops += 1;
            let op = opcode(code).ok_or_else(|| {
                Problem::malformed(format!("unknown opcode 0x{code:02x} at byte {at}"))
            })?;
            let what = format!("{} at byte {at}", op.name);
            let arg = self.argument(op.encoding, &what)?;
            match op.name {
                "STOP" => return Ok(End::Stop),
                "PROTO" => {
                    if let Arg::Other(v) = &arg {
                        let v: u8 = v.parse().unwrap_or(u8::MAX);
                        self.scan.protocol = self.scan.protocol.max(Some(v));
                    }
                }
                "MEMOIZE" | "PUT" | "BINPUT" | "LONG_BINPUT" => {
                    if let Some(value) = previous.take() {
                        let key = if op.name == "MEMOIZE" {
                            self.memo.len() as u64
                        } else {
                            memo_key(&arg)
                        };
                        if self.memo.len() >= MEMO_LIMIT && !self.memo.contains_key(&key) {
                            return Err(Problem::malformed(format!(
                                "more than {MEMO_LIMIT} memo entries"
                            )));
                        }
                        self.memo.insert(key, value);
                    }
                    previous = Some(arg);
                    continue;
                }
                "GLOBAL" | "INST" => {
                    let text = arg.as_text();
                    let (module, name) = text.split_once(' ').unwrap_or((&text, ""));
                    self.globals.insert((module.to_string(), name.to_string()));
                }
                "STACK_GLOBAL" => {
                    if recent.len() < 2 {
                        return Err(Problem::malformed(format!(
                            "STACK_GLOBAL at byte {at} has {} operands before it instead of 2",
                            recent.len()
                        )));
                    }
                    let name = self.resolve(&recent[0]);
                    let module = self.resolve(&recent[1]);
                    self.globals.insert((module, name));
                }
                _ => {}
            }
            let operand = match (op.name, &arg) {
                ("GET" | "BINGET" | "LONG_BINGET", arg) => Operand::MemoRead(memo_key(arg)),
                (
                    "SHORT_BINUNICODE" | "UNICODE" | "BINUNICODE" | "BINUNICODE8" | "STRING"
                    | "BINSTRING" | "SHORT_BINSTRING",
                    Arg::Text(text),
                ) => Operand::Text(text.clone()),
                _ => Operand::Unknown,
            };
            recent.insert(0, operand);
            recent.truncate(2);
            previous = Some(arg);
        }
    }

    fn resolve(&self, operand: &Operand) -> String {
        match operand {
            Operand::Text(text) => text.clone(),
            Operand::MemoRead(key) => match self.memo.get(key) {
                Some(value) => value.as_text(),
                None => "unknown".to_string(),
            },
            Operand::Unknown => "unknown".to_string(),
        }
    }

    fn argument(&mut self, encoding: Encoding, what: &str) -> Parsed<Arg> {
        let stream = &mut self.stream;
        Ok(match encoding {
            Encoding::None => Arg::None,
            Encoding::Fixed(n) => {
                let bytes = stream.exact(n, what)?;
                let mut padded = [0u8; 8];
                padded[..n].copy_from_slice(&bytes);
                Arg::Other(u64::from_le_bytes(padded).to_string())
            }
            Encoding::Signed(n) => {
                let bytes = stream.exact(n, what)?;
                let value = i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
                Arg::Other(value.to_string())
            }
            Encoding::DecimalLine => {
                let line = stream.line(what)?;
                match line.as_slice() {
                    b"00" => Arg::Other("False".into()),
                    b"01" => Arg::Other("True".into()),
                    digits => Arg::Other(python_int(digits).ok_or_else(|| {
                        Problem::malformed(format!("{what}: '{}' is not an integer", lossy(digits)))
                    })?),
                }
            }
            Encoding::LongLine => {
                let line = stream.line(what)?;
                let digits = line.strip_suffix(b"L").unwrap_or(&line);
                Arg::Other(python_int(digits).ok_or_else(|| {
                    Problem::malformed(format!("{what}: '{}' is not an integer", lossy(digits)))
                })?)
            }
            Encoding::FloatLine => {
                let line = stream.line(what)?;
                let value: f64 = lossy(&line).trim().parse().map_err(|_| {
                    Problem::malformed(format!("{what}: '{}' is not a float", lossy(&line)))
                })?;
                Arg::Other(format!("{value:?}"))
            }
            Encoding::QuotedLine => {
                let line = stream.line(what)?;
                let inner = unquote(&line).ok_or_else(|| {
                    Problem::malformed(format!("{what}: the string is not quoted"))
                })?;
                Arg::Text(ascii(&escape_decode(inner, what)?, what)?)
            }
            Encoding::RawLine => {
                let line = stream.line(what)?;
                Arg::Text(ascii(&escape_decode(&line, what)?, what)?)
            }
            Encoding::UnicodeLine => {
                let line = stream.line(what)?;
                Arg::Text(raw_unicode_escape(&line))
            }
            Encoding::LinePair => {
                let module = stream.line(what)?;
                let name = stream.line(what)?;
                let module = ascii(&escape_decode(&module, what)?, what)?;
                let name = ascii(&escape_decode(&name, what)?, what)?;
                Arg::Text(format!("{module} {name}"))
            }
            Encoding::Counted(width, signed, kind) => {
                let prefix = stream.exact(width, what)?;
                let mut padded = [0u8; 8];
                padded[..width].copy_from_slice(&prefix);
                let len = u64::from_le_bytes(padded);
                if signed && width == 4 && (len as u32 as i32) < 0 {
                    return Err(Problem::malformed(format!("{what}: negative byte count")));
                }
                let bytes = stream.counted(len, what)?;
                match kind {
                    Text::Latin1 => Arg::Text(bytes.iter().map(|&b| b as char).collect()),
                    Text::Utf8 => Arg::Text(utf8_prefix(&bytes, len, what)?),
                    Text::Bytes => Arg::Other(crate::python::bytes_repr(&bytes)),
                }
            }
            Encoding::Float8 => {
                let bytes = stream.exact(8, what)?;
                let value = f64::from_be_bytes(bytes.try_into().expect("8 bytes"));
                Arg::Other(format!("{value:?}"))
            }
            Encoding::LongBytes(width) => {
                let prefix = stream.exact(width, what)?;
                let mut padded = [0u8; 4];
                padded[..width].copy_from_slice(&prefix);
                let len = i32::from_le_bytes(padded);
                if len < 0 {
                    return Err(Problem::malformed(format!("{what}: negative byte count")));
                }
                let bytes = stream.counted(len as u64, what)?;
                Arg::Other(python_long(&bytes, len as usize))
            }
        })
    }

    /// The first integer argument of the first pickle (the magic number of a legacy
    /// PyTorch file), as picklescan's PyTorch reader looks for it: the argument of the first
    /// opcode whose name contains INT or LONG.
    pub fn first_integer(&mut self) -> Option<String> {
        loop {
            let code = self.stream.byte().ok()??;
            let op = opcode(code)?;
            let arg = self.argument(op.encoding, op.name).ok()?;
            if op.name.contains("INT") || op.name.contains("LONG") {
                return Some(arg.as_text());
            }
            if op.name == "STOP" {
                return None;
            }
        }
    }
}

/// The magic number a legacy (pre-zip) PyTorch file pickles first.
const TORCH_MAGIC: &str = "119547037146038801333356";
/// picklescan reads this many pickles after the magic one in a legacy PyTorch file.
const TORCH_LEGACY_PICKLES: u32 = 5;

/// Extensions picklescan treats as PyTorch files.
pub const PYTORCH_EXTENSIONS: [&str; 4] = ["bin", "pt", "pth", "ckpt"];
/// Extensions picklescan treats as pickles (also inside archives).
pub const PICKLE_EXTENSIONS: [&str; 5] = ["pkl", "pickle", "joblib", "dat", "data"];
/// Extensions picklescan treats as archives.
pub const ARCHIVE_EXTENSIONS: [&str; 3] = ["zip", "npz", "7z"];

const ZIP_LOCAL_HEADER: &[u8] = b"PK\x03\x04";
const SEVEN_ZIP_MAGIC: &[u8] = b"7z\xbc\xaf\x27\x1c";

/// How the pickles of a file are packaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// One or more pickles, back to back.
    Pickle,
    /// A zip archive (PyTorch's format since 1.6, or any zip), its pickle members scanned.
    Zip,
    /// PyTorch's legacy format: a magic-number pickle, then the pickles of the checkpoint.
    PytorchLegacy,
}

/// The pickles of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PickleFacts {
    pub container: Container,
    /// One entry per pickle stream: the file itself, or each pickle member of an archive.
    pub streams: Vec<NamedStream>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedStream {
    /// The archive member, or `None` for the file itself.
    pub member: Option<String>,
    #[serde(flatten)]
    pub scan: StreamScan,
}

impl PickleFacts {
    /// Every import with the stream it is in, each once.
    pub fn globals(&self) -> impl Iterator<Item = (&Global, Option<&str>)> {
        self.streams.iter().flat_map(|stream| {
            stream
                .scan
                .globals
                .iter()
                .map(|global| (global, stream.member.as_deref()))
        })
    }

    pub fn dangerous(&self) -> impl Iterator<Item = (&Global, Option<&str>)> {
        self.globals()
            .filter(|(global, _)| global.safety == Safety::Dangerous)
    }
}

fn extension(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rfind('.') {
        Some(dot) if dot > 0 => base[dot + 1..].to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// Whether picklescan would scan a file of this name (in a directory scan).
pub fn is_candidate(name: &str) -> bool {
    let ext = extension(name);
    [
        &PYTORCH_EXTENSIONS[..],
        &PICKLE_EXTENSIONS,
        &ARCHIVE_EXTENSIONS,
    ]
    .iter()
    .any(|list| list.contains(&ext.as_str()))
}

/// Scans the file `name` as picklescan scans it: PyTorch files (zip or legacy), zip archives
/// (their pickle members), or plain pickles. `None` when it holds no pickle at all.
pub fn scan_file(file: &std::fs::File, name: &str) -> Parsed<Option<PickleFacts>> {
    use std::io::{Seek, SeekFrom};
    let mut head = Vec::with_capacity(8);
    let mut reader = file;
    reader.seek(SeekFrom::Start(0))?;
    reader.take(8).read_to_end(&mut head)?;
    fn rewind(mut file: &std::fs::File) -> std::io::Result<&std::fs::File> {
        file.seek(SeekFrom::Start(0)).map(|_| file)
    }
    if PYTORCH_EXTENSIONS.contains(&extension(name).as_str()) {
        if head.starts_with(ZIP_LOCAL_HEADER) {
            return scan_zip(rewind(file)?).map(Some);
        }
        if head.starts_with(SEVEN_ZIP_MAGIC) {
            return Err(seven_zip());
        }
        let magic = Scanner::new(rewind(file)?).first_integer();
        let mut scanner = Scanner::new(rewind(file)?);
        if magic.as_deref() == Some(TORCH_MAGIC) {
            scanner.scan_singles(TORCH_LEGACY_PICKLES);
            return Ok(Some(legacy(scanner)));
        }
        // picklescan then reads the first pickle as an attempt to bypass the magic check:
        // with imports it goes on as for a legacy file, without them it starts over.
        scanner.scan_singles(1);
        if !scanner.globals.is_empty() {
            scanner.scan_singles(TORCH_LEGACY_PICKLES);
            return Ok(Some(legacy(scanner)));
        }
    }
    if zip::ZipArchive::new(rewind(file)?).is_ok() {
        return scan_zip(rewind(file)?).map(Some);
    }
    if head.starts_with(SEVEN_ZIP_MAGIC) {
        return Err(seven_zip());
    }
    let scan = scan_stream(rewind(file)?);
    Ok(scan.is_pickle().then(|| PickleFacts {
        container: Container::Pickle,
        streams: vec![NamedStream { member: None, scan }],
    }))
}

fn legacy<R: Read>(scanner: Scanner<R>) -> PickleFacts {
    PickleFacts {
        container: Container::PytorchLegacy,
        streams: vec![NamedStream {
            member: None,
            scan: scanner.finish(),
        }],
    }
}

fn seven_zip() -> Problem {
    Problem::malformed("is a 7z archive, which vouch cannot look inside for pickles")
}

/// Scans the members of a zip archive that picklescan scans: those with a pickle extension
/// or starting with a PROTO opcode.
fn scan_zip(file: &std::fs::File) -> Parsed<PickleFacts> {
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| Problem::malformed(format!("is not a readable zip archive: {e}")))?;
    let mut streams = Vec::new();
    for index in 0..archive.len() {
        let mut member = match archive.by_index(index) {
            Ok(member) => member,
            Err(e) => {
                streams.push(NamedStream {
                    member: Some(format!("#{index}")),
                    scan: StreamScan {
                        error: Some(format!("cannot be read from the archive: {e}")),
                        ..StreamScan::default()
                    },
                });
                continue;
            }
        };
        if member.is_dir() {
            continue;
        }
        let name = member.name().to_string();
        let mut head = Vec::with_capacity(8);
        if let Err(e) = (&mut member).take(8).read_to_end(&mut head) {
            streams.push(NamedStream {
                member: Some(name),
                scan: StreamScan {
                    error: Some(format!("cannot be read from the archive: {e}")),
                    ..StreamScan::default()
                },
            });
            continue;
        }
        let starts_with_proto = head.len() >= 2 && head[0] == 0x80 && head[1] <= 5;
        if PICKLE_EXTENSIONS.contains(&extension(&name).as_str()) || starts_with_proto {
            let scan = scan_stream(head.as_slice().chain(member));
            streams.push(NamedStream {
                member: Some(name),
                scan,
            });
        }
    }
    Ok(PickleFacts {
        container: Container::Zip,
        streams,
    })
}

fn memo_key(arg: &Arg) -> u64 {
    match arg.as_text().as_str() {
        "False" => 0,
        "True" => 1,
        text => text.parse().unwrap_or(u64::MAX),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Python's `int()` of a byte string: optional sign and surrounding whitespace, digits with
/// single underscores between them. Returns the canonical decimal text.
fn python_int(text: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Some("0".to_string());
    }
    Some(format!("{sign}{trimmed}"))
}

/// The decimal value of a little-endian two's-complement integer (LONG1, LONG4), for the
/// sizes that fit 128 bits; longer ones are only described.
fn python_long(bytes: &[u8], declared: usize) -> String {
    if declared == 0 {
        return "0".to_string();
    }
    if declared > 16 {
        return format!("<{declared}-byte integer>");
    }
    let fill = if bytes[declared - 1] & 0x80 != 0 {
        0xff
    } else {
        0
    };
    let mut padded = [fill; 16];
    padded[..declared].copy_from_slice(bytes);
    i128::from_le_bytes(padded).to_string()
}

fn unquote(line: &[u8]) -> Option<&[u8]> {
    for quote in [b'"', b'\''] {
        if line.first() == Some(&quote) {
            return (line.len() >= 2 && line.last() == Some(&quote))
                .then(|| &line[1..line.len() - 1]);
        }
    }
    None
}

/// Python's `codecs.escape_decode`: backslash escapes in a byte string.
fn escape_decode(input: &[u8], what: &str) -> Parsed<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let Some(&c) = input.get(i + 1) else {
            return Err(Problem::malformed(format!("{what}: trailing backslash")));
        };
        i += 2;
        match c {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(c),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match input.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' => {
                let hex = input
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Problem::malformed(format!("{what}: invalid \\x escape")))?;
                out.push(hex);
                i += 2;
            }
            other => out.extend_from_slice(&[b'\\', other]),
        }
    }
    Ok(out)
}

fn ascii(bytes: &[u8], what: &str) -> Parsed<String> {
    if !bytes.is_ascii() {
        return Err(Problem::malformed(format!("{what}: the text is not ASCII")));
    }
    Ok(bytes.iter().map(|&b| b as char).collect())
}

/// Python's `raw-unicode-escape` decoding: latin-1, with `\uXXXX` and `\UXXXXXXXX`.
fn raw_unicode_escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let width = match bytes.get(i + 1) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            let code = bytes
                .get(i + 2..i + 2 + width)
                .filter(|_| width > 0)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32);
            if let Some(c) = code {
                out.push(c);
                i += 2 + width;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// The kept prefix of a UTF-8 string argument, cut at a character boundary when the
/// string was longer than what is kept.
fn utf8_prefix(bytes: &[u8], declared: u64, what: &str) -> Parsed<String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) if declared > bytes.len() as u64 && e.error_len().is_none() => {
            Ok(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => Err(Problem::malformed(format!(
            "{what}: the string is not UTF-8"
        ))),
    }
}

/// Which names of a module a picklescan rule covers.
enum Names {
    All,
    Only(&'static [&'static str]),
    /// picklescan tests these with Python's `in` on a string, so any part of it matches.
    Within(&'static str),
}

impl Names {
    fn covers(&self, name: &str) -> bool {
        match self {
            Names::All => true,
            Names::Only(names) => names.contains(&name),
            Names::Within(text) => text.contains(name),
        }
    }
}

/// Globals picklescan 1.0.5 rates innocuous.
fn safe_rule(module: &str) -> Option<Names> {
    const STORAGES: &[&str] = &[
        "LongStorage",
        "FloatStorage",
        "HalfStorage",
        "QUInt2x4Storage",
        "QUInt4x2Storage",
        "QInt32Storage",
        "QInt8Storage",
        "QUInt8Storage",
        "ComplexFloatStorage",
        "ComplexDoubleStorage",
        "DoubleStorage",
        "BFloat16Storage",
        "BoolStorage",
        "CharStorage",
        "ShortStorage",
        "IntStorage",
        "ByteStorage",
    ];
    Some(match module {
        "collections" => Names::Only(&["OrderedDict"]),
        "torch" => Names::Only(STORAGES),
        "numpy" => Names::Only(&["dtype", "ndarray"]),
        "numpy._core.multiarray" | "numpy.core.multiarray" => Names::Only(&["_reconstruct"]),
        "torch._utils" => Names::Only(&["_rebuild_tensor_v2"]),
        _ => return None,
    })
}

/// Globals picklescan 1.0.5 rates dangerous.
fn unsafe_rule(module: &str) -> Option<Names> {
    const BUILTINS: &[&str] = &[
        "eval",
        "compile",
        "getattr",
        "apply",
        "exec",
        "open",
        "breakpoint",
    ];
    const GETTERS: &[&str] = &["attrgetter", "itemgetter", "methodcaller"];
    Some(match module {
        "__builtin__" | "builtins" => Names::Only(BUILTINS),
        "cloudpickle.cloudpickle" => Names::Only(&[
            "_builtin_type",
            "_make_function",
            "_function_setstate",
            "_make_cell",
            "_make_empty_cell",
            "subimport",
        ]),
        "types" => Names::Only(&["CodeType"]),
        "functools" => Names::Within("partial"),
        "logging" => Names::Only(&["FileHandler"]),
        "_io" => Names::Only(&["FileIO"]),
        "_operator" | "operator" => Names::Only(GETTERS),
        "code" => Names::Only(&["InteractiveInterpreter.runcode"]),
        "doctest" => Names::Only(&["debug_script"]),
        "ensurepip" => Names::Only(&["_run_pip"]),
        "idlelib.autocomplete" => {
            Names::Only(&["AutoComplete.get_entity", "AutoComplete.fetch_completions"])
        }
        "idlelib.calltip" => Names::Only(&["Calltip.fetch_tip", "get_entity"]),
        "idlelib.debugobj" => Names::Only(&["ObjectTreeItem.SetText"]),
        "idlelib.pyshell" => Names::Only(&[
            "ModifiedInterpreter.runcode",
            "ModifiedInterpreter.runcommand",
        ]),
        "idlelib.run" => Names::Only(&["Executive.runcode"]),
        "imaplib" => Names::Only(&["IMAP4_stream"]),
        "lib2to3.pgen2.grammar" => Names::Only(&["Grammar.loads"]),
        "lib2to3.pgen2.pgen" => Names::Only(&["ParserGenerator.make_label"]),
        "pkgutil" => Names::Only(&["resolve_name"]),
        "torch._dynamo.guards" => Names::Only(&["GuardBuilder.get"]),
        "torch._inductor.codecache" => Names::Within("compile_file"),
        "torch.fx.experimental.symbolic_shapes" => {
            Names::Only(&["ShapeEnv.evaluate_guards_expression"])
        }
        "torch.jit.unsupported_tensor_ops" => Names::Only(&["execWrapper"]),
        "torch.serialization" => Names::Within("load"),
        "torch.utils._config_module" => Names::Only(&["ConfigModule.load_config"]),
        "torch.utils.bottleneck.__main__" => Names::Only(&["run_cprofile", "run_autograd_prof"]),
        "torch.utils.collect_env" => Names::Only(&["run"]),
        "torch.utils.data.datapipes.utils.decoder" => Names::Only(&["basichandlers"]),
        "trace" => Names::Only(&["Trace.run", "Trace.runctx"]),
        "aiohttp"
        | "asyncio"
        | "bdb"
        | "commands"
        | "ctypes"
        | "httplib"
        | "numpy.f2py"
        | "numpy.testing._private.utils"
        | "nt"
        | "posix"
        | "os"
        | "requests.api"
        | "runpy"
        | "shutil"
        | "socket"
        | "ssl"
        | "subprocess"
        | "sys"
        | "cProfile"
        | "distutils.file_util"
        | "pdb"
        | "pickle"
        | "_pickle"
        | "pip"
        | "pty"
        | "profile"
        | "pydoc"
        | "test"
        | "timeit"
        | "urllib.request"
        | "uuid"
        | "venv"
        | "webbrowser"
        | "_osx_support"
        | "_aix_support"
        | "_pyrepl" => Names::All,
        _ => return None,
    })
}

/// Rates an import as picklescan 1.0.5 does (without `--strict`).
pub fn safety(module: &str, name: &str) -> Safety {
    if module.contains("unknown") || name.contains("unknown") {
        return Safety::Dangerous;
    }
    let mut rule = unsafe_rule(module);
    if rule.is_none() {
        // A module under one that is dangerous as a whole is dangerous too.
        let parts: Vec<&str> = module.split('.').collect();
        rule = (1..parts.len())
            .map(|i| parts[..i].join("."))
            .find(|parent| matches!(unsafe_rule(parent), Some(Names::All)))
            .map(|_| Names::All);
    }
    if rule.is_some_and(|r| r.covers(name)) {
        return Safety::Dangerous;
    }
    if safe_rule(module).is_some_and(|r| r.covers(name)) {
        return Safety::Innocuous;
    }
    Safety::Suspicious
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(bytes: &[u8]) -> StreamScan {
        scan_stream(bytes)
    }

    #[test]
    fn traces_stack_global_operands_through_the_memo() {
        // Protocol 4: 'posix' and 'system' memoized, read back, then STACK_GLOBAL.
        let mut pickle = vec![0x80, 4, 0x95];
        pickle.extend_from_slice(&0u64.to_le_bytes());
        pickle.extend_from_slice(b"\x8c\x05posix\x94\x8c\x06system\x94");
        pickle.extend_from_slice(b"h\x00h\x01\x93\x94N\x85R.");
        let result = scan(&pickle);
        assert_eq!(result.error, None);
        assert_eq!(result.protocol, Some(4));
        assert_eq!(
            result.globals,
            [Global {
                module: "posix".into(),
                name: "system".into(),
                safety: Safety::Dangerous
            }]
        );
    }

    #[test]
    fn rates_imports_as_picklescan_does() {
        assert_eq!(safety("os", "system"), Safety::Dangerous);
        assert_eq!(safety("os.path", "join"), Safety::Dangerous);
        assert_eq!(safety("builtins", "exec"), Safety::Dangerous);
        assert_eq!(safety("builtins", "print"), Safety::Suspicious);
        assert_eq!(
            safety("torch._utils", "_rebuild_tensor_v2"),
            Safety::Innocuous
        );
        assert_eq!(safety("collections", "OrderedDict"), Safety::Innocuous);
        assert_eq!(safety("unknown", "x"), Safety::Dangerous);
        assert_eq!(safety("functools", "partial"), Safety::Dangerous);
    }

    #[test]
    fn a_huge_declared_string_is_a_finding_without_allocating_it() {
        let mut pickle = vec![0x80, 4, 0x8d];
        pickle.extend_from_slice(&u64::MAX.to_le_bytes());
        pickle.extend_from_slice(b"abc");
        let result = scan(&pickle);
        assert!(result.error.as_deref().unwrap().contains("truncated"));
        assert!(!result.is_pickle());
    }
}
