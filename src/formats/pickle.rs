//! Pickle: an opcode scanner, never an unpickler. It runs the opcode stream of every pickle
//! in a file (protocols 0 to 5) on a model of Python's unpickler that tracks only what
//! names an import: the stack, the marks and the memo, with the strings on them. Every
//! import (GLOBAL, INST, STACK_GLOBAL with its operands popped from that stack, EXT codes)
//! is listed with the name Python would import; operands that are not literal strings make
//! the import `unknown`. Each import is rated by picklescan's rules and by the strict
//! allow-list ([`policy`]).
//!
//! Files are chosen by content: pickles (any first byte that is an opcode), zip archives
//! (read as Python's zipfile reads them, [`zip`]), `.npy` arrays (the body after the
//! header, which numpy unpickles for object arrays), a zip found from the end behind any
//! prefix, and compressed streams inflated as pandas and joblib inflate them.
//! The work is bounded: opcodes per stream, stack and memo sizes, distinct imports.

pub mod policy;
pub mod zip;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use serde::Serialize;

use super::source::{Parsed, Problem};
pub use policy::{PicklePolicy, Safety};

/// Operand strings are kept up to this many bytes (module and attribute names are short);
/// a longer one is not tracked, and an import naming it is `unknown`.
const KEPT_STRING: usize = 256;
/// Protocol-0 text arguments are kept up to this many bytes.
const LINE_LIMIT: usize = 64 << 10;
/// Opcodes read per stream (a file, or an archive member) before scanning is refused.
pub const OPCODE_LIMIT: u64 = 20_000_000;
/// Stack entries and memo entries tracked at once.
const STACK_LIMIT: usize = 1 << 20;
const MEMO_LIMIT: usize = 1 << 20;
/// Distinct imports listed per stream.
const GLOBAL_LIMIT: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Global {
    pub module: String,
    pub name: String,
    /// picklescan's rating.
    pub safety: Safety,
    /// Whether the strict allow-list allows it.
    pub allowed: bool,
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
    /// Why scanning stopped before the end, when it did (where Python's unpickler stops too).
    pub error: Option<String>,
    /// Whether it stopped inside the stream's first pickle, before any STOP.
    #[serde(skip)]
    pub stopped_in_first: bool,
}

impl StreamScan {
    /// A stream that failed before any import and any complete pickle is not a pickle.
    pub fn is_pickle(&self) -> bool {
        self.pickles > 0 || !self.globals.is_empty()
    }
}

/// What the model of the unpickler keeps of a value: a `str`, or anything else.
#[derive(Clone, Debug)]
enum Value {
    Str(Rc<str>),
    Other,
}

/// The decoded argument of an opcode, as far as imports need it.
enum Arg {
    None,
    /// An unsigned integer argument (indexes, protocol, extension codes).
    Int(u64),
    /// A memo index written as a decimal line; `None` when Python refuses it.
    Index(Option<u64>),
    /// A string: `Some` when it is a `str` fully kept, `None` when it is not tracked.
    Str(Option<Rc<str>>),
    /// GLOBAL's and INST's module and name; `None` when too long to keep.
    Pair(Option<(String, String)>),
}

/// How an opcode's argument is encoded (pickletools' argument descriptors).
#[derive(Clone, Copy)]
enum Encoding {
    None,
    Fixed(usize),
    /// A signed little-endian integer of this many bytes.
    Signed(usize),
    /// A decimal line (INT, GET, PUT), or any other line that is only skipped.
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
    /// Python 2 `str`: a `str` when ASCII (every loader's encoding agrees then).
    Ascii,
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
        b'T' => ("BINSTRING", Counted(4, true, Ascii)),
        b'U' => ("SHORT_BINSTRING", Counted(1, false, Ascii)),
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

/// Reads one stream, counting bytes for messages and knowing how many are left.
struct Stream<R> {
    inner: R,
    position: u64,
    /// The stream's length, when known: a declared length past it is refused at once.
    len: Option<u64>,
}

/// What ended one pickle.
enum End {
    Stop,
    /// The stream had no byte left where a pickle would start.
    Exhausted,
}

fn truncated(what: &str, n: u64, left: u64) -> Problem {
    Problem::malformed(format!(
        "{what}: expected {n} bytes, but only {left} remain (truncated)"
    ))
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

    /// Fails at once when `n` bytes cannot be left in the stream.
    fn check_left(&self, n: u64, what: &str) -> Parsed<()> {
        match self.len {
            Some(len) if n > len.saturating_sub(self.position) => {
                Err(truncated(what, n, len.saturating_sub(self.position)))
            }
            _ => Ok(()),
        }
    }

    fn exact(&mut self, n: usize, what: &str) -> Parsed<Vec<u8>> {
        self.check_left(n as u64, what)?;
        let mut buffer = vec![0; n];
        let mut filled = 0;
        while filled < n {
            match self.inner.read(&mut buffer[filled..])? {
                0 => return Err(truncated(what, n as u64, filled as u64)),
                read => filled += read,
            }
        }
        self.position += n as u64;
        Ok(buffer)
    }

    /// Reads `n` declared bytes, keeping the first `KEPT_STRING` and discarding the rest
    /// as they stream by, so a huge declared length allocates nothing.
    fn counted(&mut self, n: u64, what: &str) -> Parsed<Vec<u8>> {
        self.check_left(n, what)?;
        let kept = n.min(KEPT_STRING as u64) as usize;
        let head = self.exact(kept, what)?;
        let rest = n - kept as u64;
        let skipped = io::copy(&mut (&mut self.inner).take(rest), &mut io::sink())?;
        self.position += skipped;
        if skipped < rest {
            return Err(truncated(what, n, kept as u64 + skipped));
        }
        Ok(head)
    }

    /// A protocol-0 argument line without its newline, its first `LINE_LIMIT` bytes kept
    /// (`None` when it was longer), the rest skipped to the newline.
    fn line(&mut self, what: &str) -> Parsed<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let mut complete = true;
        loop {
            let buffer = self.inner.fill_buf()?;
            if buffer.is_empty() {
                return Err(Problem::malformed(format!(
                    "{what}: no newline found (truncated)"
                )));
            }
            let (take, done) = match buffer.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buffer.len(), false),
            };
            let room = LINE_LIMIT.saturating_sub(line.len());
            line.extend_from_slice(&buffer[..take.min(room)]);
            complete &= take <= room;
            self.inner.consume(take);
            self.position += take as u64;
            if done {
                break;
            }
        }
        if !complete {
            return Ok(None);
        }
        line.pop();
        Ok(Some(line))
    }
}

/// Why a stream was left unscanned, so that nothing it holds can be vouched for.
#[derive(Debug, thiserror::Error)]
enum Unscanned {
    /// A bound of vouch's (not Python's) stopped the scan.
    #[error("{0}")]
    Bound(String),
    #[error("a read failed: {0}")]
    ReadFailed(io::Error),
}

/// Scans every pickle of `reader` (of `len` bytes, when known), back to back, until its end
/// or the first error.
fn scan_stream(reader: impl Read, len: Option<u64>) -> Result<StreamScan, Unscanned> {
    let mut scanner = Scanner::new(reader, len);
    scanner.scan_pickles();
    scanner.finish()
}

/// Runs pickles on a model of Python's unpickler, listing what they import.
struct Scanner<R> {
    stream: Stream<BufReader<R>>,
    stack: Vec<Value>,
    /// Stack lengths at each MARK (Python's metastack).
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    opcodes: u64,
    globals: BTreeSet<(String, String)>,
    scan: StreamScan,
    /// Set when a bound of vouch's or a failed read stopped the scan: the stream is unscanned.
    limit: Option<Unscanned>,
    /// Whether the current pickle's first opcode was read.
    opened: bool,
}

/// The text Python gives an import whose operands are not literal strings.
const UNKNOWN: &str = "unknown";

impl<R: Read> Scanner<R> {
    fn new(reader: R, len: Option<u64>) -> Scanner<R> {
        Scanner {
            stream: Stream {
                inner: BufReader::with_capacity(64 << 10, reader),
                position: 0,
                len,
            },
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            opcodes: 0,
            globals: BTreeSet::new(),
            scan: StreamScan::default(),
            limit: None,
            opened: false,
        }
    }

    /// Reads pickles to the end of the stream or to the first error. Each starts afresh,
    /// as each `pickle.load` does (a new stack, memo and protocol).
    fn scan_pickles(&mut self) {
        loop {
            match self.pickle() {
                Ok(End::Stop) => self.scan.pickles += 1,
                Ok(End::Exhausted) if self.scan.pickles > 0 => return,
                Ok(End::Exhausted) => {
                    self.scan.error = Some("the stream is empty".into());
                    return;
                }
                Err(Problem::Malformed(m)) => {
                    self.scan.error = Some(m);
                    self.scan.stopped_in_first = self.scan.pickles == 0 && self.opened;
                    return;
                }
                // A read that failed leaves the rest unscanned, unlike bytes Python refuses.
                Err(Problem::Io(e)) => {
                    self.limit = Some(Unscanned::ReadFailed(e));
                    return;
                }
            }
        }
    }

    /// The imports found, rated; `Err` when a bound stopped the scan.
    fn finish(mut self) -> Result<StreamScan, Unscanned> {
        if let Some(limit) = self.limit {
            return Err(limit);
        }
        self.scan.globals = self
            .globals
            .into_iter()
            .map(|(module, name)| Global {
                safety: policy::safety(&module, &name),
                allowed: policy::allowed(&module, &name),
                module,
                name,
            })
            .collect();
        Ok(self.scan)
    }

    fn bound(&mut self, message: String) -> Problem {
        self.limit = Some(Unscanned::Bound(message.clone()));
        Problem::malformed(message)
    }

    fn import(&mut self, module: String, name: String) -> Parsed<()> {
        if self.globals.len() >= GLOBAL_LIMIT
            && !self.globals.contains(&(module.clone(), name.clone()))
        {
            return Err(self.bound(format!(
                "more than {GLOBAL_LIMIT} distinct imports (bounded work)"
            )));
        }
        self.globals.insert((module, name));
        Ok(())
    }

    fn push(&mut self, value: Value) -> Parsed<()> {
        if self.stack.len() >= STACK_LIMIT {
            return Err(self.bound(format!(
                "a stack deeper than {STACK_LIMIT} entries (bounded work)"
            )));
        }
        self.stack.push(value);
        Ok(())
    }

    /// The bottom of the part of the stack the current MARK leaves visible.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, at: u64) -> Parsed<Value> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(at));
        }
        Ok(self.stack.pop().expect("above the fence"))
    }

    /// Replaces the top of the stack (what REDUCE, BUILD, APPEND ... leave there).
    fn replace_top(&mut self, at: u64) -> Parsed<()> {
        self.pop(at)?;
        self.stack.push(Value::Other);
        Ok(())
    }

    fn top(&self, at: u64) -> Parsed<Value> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(at));
        }
        Ok(self.stack.last().expect("above the fence").clone())
    }

    /// Pops everything down to the last MARK, and the MARK.
    fn pop_mark(&mut self, at: u64) -> Parsed<usize> {
        let Some(mark) = self.marks.pop() else {
            return Err(Problem::malformed(format!(
                "byte {at}: no MARK on the stack"
            )));
        };
        let popped = self.stack.len() - mark;
        self.stack.truncate(mark);
        Ok(popped)
    }

    fn memo_put(&mut self, key: u64, at: u64) -> Parsed<()> {
        let value = self.top(at)?;
        if self.memo.len() >= MEMO_LIMIT && !self.memo.contains_key(&key) {
            return Err(self.bound(format!(
                "more than {MEMO_LIMIT} memo entries (bounded work)"
            )));
        }
        self.memo.insert(key, value);
        Ok(())
    }

    /// One pickle, up to its STOP.
    fn pickle(&mut self) -> Parsed<End> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        self.opened = false;
        let mut first = true;
        loop {
            let at = self.stream.position;
            let Some(code) = self.stream.byte()? else {
                if first {
                    return Ok(End::Exhausted);
                }
                return Err(Problem::malformed(format!(
                    "the pickle ends at byte {at} before its STOP opcode (truncated)"
                )));
            };
            first = false;
            self.opcodes += 1;
            if self.opcodes > OPCODE_LIMIT {
                return Err(self.bound(format!("more than {OPCODE_LIMIT} opcodes (bounded work)")));
            }
            let op = opcode(code).ok_or_else(|| {
                Problem::malformed(format!("unknown opcode 0x{code:02x} at byte {at}"))
            })?;
            self.opened = true;
            let arg = self.argument(op.encoding, op.name, at)?;
            if self.step(op.name, arg, at)? {
                return Ok(End::Stop);
            }
        }
    }

    /// Applies one opcode to the stack and memo as Python's unpickler does; `true` at STOP.
    fn step(&mut self, op: &str, arg: Arg, at: u64) -> Parsed<bool> {
        match (op, arg) {
            ("STOP", _) => {
                self.pop(at)?;
                return Ok(true);
            }
            ("MARK", _) => {
                if self.marks.len() >= STACK_LIMIT {
                    return Err(self.bound(format!("more than {STACK_LIMIT} marks (bounded work)")));
                }
                self.marks.push(self.stack.len());
            }
            ("PROTO", Arg::Int(protocol)) => {
                if protocol > 5 {
                    return Err(Problem::malformed(format!(
                        "byte {at}: unsupported pickle protocol {protocol}"
                    )));
                }
                let protocol = protocol as u8;
                self.scan.protocol = self.scan.protocol.max(Some(protocol));
            }
            // Frames only group opcodes: the C unpickler refuses a frame longer than what is
            // left, the pure-Python one (dill's) reads it; neither reads anything else.
            ("FRAME", _) => {}
            ("POP", _) => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else {
                    self.pop_mark(at)?;
                }
            }
            ("POP_MARK", _) => {
                self.pop_mark(at)?;
            }
            ("DUP", _) => {
                let top = self.top(at)?;
                self.push(top)?;
            }
            (_, Arg::Str(text)) => self.push(text.map_or(Value::Other, Value::Str))?,
            ("GET" | "BINGET" | "LONG_BINGET", arg) => {
                let key = match arg {
                    Arg::Int(key) | Arg::Index(Some(key)) => key,
                    _ => return Err(Problem::malformed(format!("byte {at}: a bad GET index"))),
                };
                let Some(value) = self.memo.get(&key).cloned() else {
                    return Err(Problem::malformed(format!(
                        "byte {at}: memo entry {key} is read before it is written"
                    )));
                };
                self.push(value)?;
            }
            ("PUT" | "BINPUT" | "LONG_BINPUT", arg) => {
                let key = match arg {
                    Arg::Int(key) | Arg::Index(Some(key)) => key,
                    _ => return Err(Problem::malformed(format!("byte {at}: a bad PUT index"))),
                };
                self.memo_put(key, at)?;
            }
            ("MEMOIZE", _) => self.memo_put(self.memo.len() as u64, at)?,
            ("GLOBAL" | "INST", Arg::Pair(pair)) => {
                let (module, name) =
                    pair.unwrap_or_else(|| (UNKNOWN.to_string(), UNKNOWN.to_string()));
                self.import(module, name)?;
                if op == "INST" {
                    self.pop_mark(at)?;
                }
                self.push(Value::Other)?;
            }
            ("STACK_GLOBAL", _) => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                let text = |value: Value| match value {
                    Value::Str(text) => text.to_string(),
                    Value::Other => UNKNOWN.to_string(),
                };
                self.import(text(module), text(name))?;
                self.push(Value::Other)?;
            }
            ("EXT1" | "EXT2" | "EXT4", Arg::Int(code)) => {
                // The extension registry names the global; the pickle does not.
                self.import(format!("{UNKNOWN} extension"), code.to_string())?;
                self.push(Value::Other)?;
            }
            ("BINPERSID" | "REDUCE" | "BUILD" | "APPEND" | "TUPLE1" | "READONLY_BUFFER", _) => {
                if matches!(op, "TUPLE1" | "READONLY_BUFFER" | "BINPERSID") {
                    self.replace_top(at)?;
                } else {
                    self.pop(at)?;
                    self.replace_top(at)?;
                }
            }
            ("SETITEM" | "TUPLE2" | "NEWOBJ", _) => {
                self.pop(at)?;
                if op == "SETITEM" {
                    self.pop(at)?;
                    self.replace_top(at)?;
                } else {
                    self.replace_top(at)?;
                }
            }
            ("TUPLE3" | "NEWOBJ_EX", _) => {
                self.pop(at)?;
                self.pop(at)?;
                self.replace_top(at)?;
            }
            ("APPENDS" | "SETITEMS" | "ADDITEMS", _) => {
                self.pop_mark(at)?;
                self.replace_top(at)?;
            }
            ("TUPLE" | "LIST" | "DICT" | "FROZENSET", _) => {
                self.pop_mark(at)?;
                self.push(Value::Other)?;
            }
            ("OBJ", _) => {
                if self.pop_mark(at)? == 0 {
                    return Err(underflow(at));
                }
                self.push(Value::Other)?;
            }
            // Every other opcode pushes one value that is not a string.
            _ => self.push(Value::Other)?,
        }
        Ok(false)
    }

    fn argument(&mut self, encoding: Encoding, op: &str, at: u64) -> Parsed<Arg> {
        let what = || format!("{op} at byte {at}");
        let stream = &mut self.stream;
        Ok(match encoding {
            Encoding::None => Arg::None,
            Encoding::Fixed(n) => {
                let bytes = stream.exact(n, &what())?;
                let mut padded = [0u8; 8];
                padded[..n].copy_from_slice(&bytes);
                Arg::Int(u64::from_le_bytes(padded))
            }
            Encoding::Signed(n) => {
                let bytes = stream.exact(n, &what())?;
                let value = i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
                Arg::Int(u64::try_from(value).unwrap_or(0))
            }
            Encoding::DecimalLine => {
                let line = stream.line(&what())?;
                match op {
                    // Python refuses a negative or unparsable index, and one past isize.
                    "GET" | "PUT" => Arg::Index(
                        line.as_deref()
                            .and_then(python_int)
                            .and_then(|v| v.parse::<u64>().ok())
                            .filter(|v| *v <= i64::MAX as u64),
                    ),
                    _ => Arg::None,
                }
            }
            Encoding::LongLine | Encoding::FloatLine | Encoding::RawLine => {
                stream.line(&what())?;
                Arg::None
            }
            Encoding::QuotedLine => {
                let Some(line) = stream.line(&what())? else {
                    return Ok(Arg::Str(None));
                };
                let inner = unquote(&line).ok_or_else(|| {
                    Problem::malformed(format!("{}: the string is not quoted", what()))
                })?;
                let bytes = escape_decode(inner, &what())?;
                Arg::Str(kept_ascii(&bytes))
            }
            Encoding::UnicodeLine => {
                let line = stream.line(&what())?;
                Arg::Str(
                    line.as_deref()
                        .filter(|l| l.len() <= KEPT_STRING * 10)
                        .and_then(raw_unicode_escape)
                        .filter(|s| s.len() <= KEPT_STRING)
                        .map(Rc::from),
                )
            }
            Encoding::LinePair => {
                let module = stream.line(&what())?;
                let name = stream.line(&what())?;
                // GLOBAL's lines are UTF-8, INST's ASCII, neither escape-decoded.
                let decode = |line: Vec<u8>| match op {
                    "GLOBAL" => String::from_utf8(line).unwrap_or_else(|e| lossy(e.as_bytes())),
                    _ if line.is_ascii() => lossy(&line),
                    _ => format!("{UNKNOWN} (not ASCII)"),
                };
                Arg::Pair(module.zip(name).map(|(m, n)| (decode(m), decode(n))))
            }
            Encoding::Counted(width, signed, kind) => {
                let prefix = stream.exact(width, &what())?;
                let mut padded = [0u8; 8];
                padded[..width].copy_from_slice(&prefix);
                let len = u64::from_le_bytes(padded);
                if signed && width == 4 && (len as u32 as i32) < 0 {
                    return Err(Problem::malformed(format!(
                        "{}: negative byte count",
                        what()
                    )));
                }
                let bytes = stream.counted(len, &what())?;
                let whole = len as usize == bytes.len();
                match kind {
                    Text::Ascii => Arg::Str(kept_ascii(&bytes).filter(|_| whole)),
                    Text::Utf8 => {
                        let text = std::str::from_utf8(&bytes).ok().filter(|_| whole);
                        if text.is_none() && whole {
                            // Python decodes with surrogatepass; an invalid string stops it.
                            if !bytes.is_empty() && surrogate_free_invalid(&bytes) {
                                return Err(Problem::malformed(format!(
                                    "{}: the string is not UTF-8",
                                    what()
                                )));
                            }
                        }
                        Arg::Str(text.map(Rc::from))
                    }
                    Text::Bytes => Arg::None,
                }
            }
            Encoding::Float8 => {
                stream.exact(8, &what())?;
                Arg::None
            }
            Encoding::LongBytes(width) => {
                let prefix = stream.exact(width, &what())?;
                let mut padded = [0u8; 4];
                padded[..width].copy_from_slice(&prefix);
                let len = i32::from_le_bytes(padded);
                if len < 0 {
                    return Err(Problem::malformed(format!(
                        "{}: negative byte count",
                        what()
                    )));
                }
                stream.counted(len as u64, &what())?;
                Arg::None
            }
        })
    }
}

fn underflow(at: u64) -> Problem {
    Problem::malformed(format!("byte {at}: the unpickling stack underflows"))
}

/// A Python 2 string's bytes as a `str`, when every loader decodes them alike (ASCII).
fn kept_ascii(bytes: &[u8]) -> Option<Rc<str>> {
    (bytes.is_ascii() && bytes.len() <= KEPT_STRING).then(|| Rc::from(lossy(bytes)))
}

/// Whether bytes that are not UTF-8 are invalid even with encoded surrogates allowed.
fn surrogate_free_invalid(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Err(e) = std::str::from_utf8(rest) {
        let bad = &rest[e.valid_up_to()..];
        // An encoded surrogate: ED A0..BF 80..BF.
        let surrogate = bad.len() >= 3
            && bad[0] == 0xED
            && (0xA0..=0xBF).contains(&bad[1])
            && (0x80..=0xBF).contains(&bad[2]);
        if !surrogate {
            return true;
        }
        rest = &bad[3..];
    }
    false
}

/// The pickle a legacy (pre-zip) PyTorch file starts with: its magic number, protocol 2.
const TORCH_LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
const SEVEN_ZIP_MAGIC: &[u8] = b"7z\xbc\xaf\x27\x1c";
/// An empty zip archive starts with its end record.
const ZIP_END_MAGIC: &[u8] = b"PK\x05\x06";
const NPY_MAGIC: &[u8] = b"\x93NUMPY";
/// Bytes of a file or member looked at to choose how it is read.
const HEAD: usize = 32;

/// How the pickles of a file are packaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// One or more pickles, back to back.
    Pickle,
    /// A zip archive (PyTorch's format since 1.6, `.npz`, or any zip), its pickles scanned.
    Zip,
    /// PyTorch's legacy format: a magic-number pickle, then the pickles of the checkpoint.
    PytorchLegacy,
    /// A NumPy `.npy` array, whose body numpy unpickles when its dtype holds objects.
    Npy,
}

/// The pickles of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PickleFacts {
    pub container: Container,
    /// The compression the file was inflated from, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// One entry per pickle stream: the file itself, a `.npy` body, or each pickle member
    /// of an archive (a zip appended to a pickle included).
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

    /// The imports `policy` refuses, with the stream each is in.
    pub fn refused(&self, policy: PicklePolicy) -> impl Iterator<Item = (&Global, Option<&str>)> {
        self.globals()
            .filter(move |(g, _)| policy.refuses(&g.module, &g.name, g.safety))
    }
}

/// Whether bytes starting a file or member are read by the pickle scanner: a zip archive, a
/// 7z archive, a `.npy` array, a compressed stream (LZMA-alone, which has no magic, too),
/// or a pickle of any protocol (a first byte that is an opcode: protocols 0 and 1 have no
/// magic, and Python's unpickler takes any opcode first; what then holds no complete pickle
/// and no import is not a pickle). ([`scan_file`] also looks at what no head shows: a tar
/// header, a zip found from the end.)
pub fn sniff(head: &[u8]) -> bool {
    sniff_strong(head)
        || starts_with_opcode(head)
        || Compression::detect(head).is_some()
        || Compression::lzma_alone(head)
}

fn starts_with_opcode(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|&b| opcode(b).is_some())
}

/// Whether the first bytes can only be read as a pickle container: zip, 7z and `.npy`
/// magic, a PROTO opcode (0x80, a protocol up to 5) followed by another opcode, or the magic
/// of a compressed stream (zlib's two-byte header, which text can start with, is weak, and
/// LZMA-alone has no magic).
pub fn sniff_strong(head: &[u8]) -> bool {
    let proto = head.len() >= 3 && head[0] == 0x80 && head[1] <= 5 && opcode(head[2]).is_some();
    let compressed = Compression::detect(head).is_some_and(|c| c != Compression::Zlib);
    proto
        || compressed
        || [
            zip::LOCAL_HEADER.as_slice(),
            ZIP_END_MAGIC,
            SEVEN_ZIP_MAGIC,
            NPY_MAGIC,
        ]
        .iter()
        .any(|magic| head.starts_with(magic))
}

/// Scans the file `name` for pickles, chosen by content, as every loader that goes by
/// content could read it: inflated when it starts with a compression's magic number
/// (what it holds scanned as any file), and as it is: a tar or 7z archive (refused), a
/// zip archive (every member that is a pickle or a `.npy` array), a `.npy` array's body,
/// a legacy PyTorch file or plain pickles, and a zip archive Python's zipfile finds from
/// the end, whatever comes before it. A file that holds no pickle but starts as an
/// LZMA-alone stream liblzma accepts is refused (vouch cannot inflate it). `None` when it
/// holds no pickle at all. A container that cannot be read as its loader reads it, or that
/// exceeds a bound of the scan, is a [`Problem`].
/// (`_name` is not looked at: content decides.)
pub fn scan_file(file: &File, _name: &str) -> Parsed<Option<PickleFacts>> {
    let len = file.metadata()?.len();
    let mut head = vec![0u8; HEAD.min(len as usize)];
    file.read_exact_at(&mut head, 0)?;
    let inflated = match Compression::detect(&head) {
        Some(compression) => scan_compressed(file, len, compression)?,
        None => Inflated::NotCompressed,
    };
    let raw = scan_content(file, len, &head)?;
    match inflated {
        Inflated::Scanned(Some(mut facts)) => {
            facts
                .streams
                .extend(raw.into_iter().flat_map(|raw| raw.streams));
            Ok(Some(facts))
        }
        Inflated::Scanned(None) => Ok(raw),
        Inflated::NotCompressed if raw.is_none() && Compression::lzma_alone(&head) => {
            Err(cannot_inflate(Compression::Lzma))
        }
        Inflated::NotCompressed => Ok(raw),
    }
}

/// The pickles of `file` (`len` bytes, starting with `head`), read as a loader reads it.
fn scan_content(file: &File, len: u64, head: &[u8]) -> Parsed<Option<PickleFacts>> {
    if head.starts_with(SEVEN_ZIP_MAGIC) {
        return Err(Problem::malformed(
            "is a 7z archive, which vouch cannot look inside for pickles",
        ));
    }
    let mut block = vec![0u8; TAR_BLOCK.min(len as usize)];
    file.read_exact_at(&mut block, 0)?;
    if is_tar(&block) {
        return Err(Problem::malformed(
            "is a tar archive, which torch.load reads as a legacy checkpoint of pickles and \
             pandas.read_pickle reads by its extension; vouch cannot scan tar members",
        ));
    }
    let is_zip = head.starts_with(zip::LOCAL_HEADER) || head.starts_with(ZIP_END_MAGIC);
    let whole = || std::io::BufReader::new(ReadAt { file, position: 0 });
    // A zip's magic is no pickle a loader reads: its 'P' (PERSID) needs a persistent_load,
    // and the loaders that have one (torch) read a file with that magic as a zip.
    let (container, stream) = if is_zip {
        (Container::Zip, None)
    } else if head.starts_with(NPY_MAGIC) {
        (Container::Npy, npy_body(whole(), len)?)
    } else if starts_with_opcode(head) {
        let container = if head.starts_with(TORCH_LEGACY_MAGIC) {
            Container::PytorchLegacy
        } else {
            Container::Pickle
        };
        (
            container,
            Some(scanned(scan_stream(whole(), Some(len)), None)?),
        )
    } else {
        (Container::Pickle, None)
    };
    let mut streams: Vec<NamedStream> = stream
        .filter(StreamScan::is_pickle)
        .map(|scan| NamedStream { member: None, scan })
        .into_iter()
        .collect();
    // The zip Python's zipfile finds from the end, whatever comes before it (pandas reads
    // `*.zip` so, numpy.load a file starting with zip magic): read as zipfile reads it, or
    // refused, whatever the file starts with.
    let archive = if is_zip {
        Some(zip::open(file, len)?.ok_or_else(|| {
            Problem::malformed("is not a readable zip archive: no end of central directory record")
        })?)
    } else {
        zip::open_appended(file, len)?
    };
    let container = match (&archive, streams.is_empty()) {
        (Some(_), true) => Container::Zip,
        _ => container,
    };
    if let Some(archive) = &archive {
        streams.extend(scan_members(file, archive)?);
    }
    if streams.is_empty() && !is_zip {
        return Ok(None);
    }
    Ok(Some(PickleFacts {
        container,
        compression: None,
        streams,
    }))
}

/// A compressed stream, which loaders inflate before they unpickle: `pandas.read_pickle` by
/// the file's extension, `joblib.load` by its magic number, `pickle.load(gzip.open(..))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    /// A zlib stream, as joblib writes it.
    Zlib,
    /// joblib's format before 0.9.3: `ZF`, the inflated length in hex, then a zlib stream.
    #[serde(rename = "joblib-zf")]
    JoblibZf,
    Zstd,
    Bzip2,
    Xz,
    /// The legacy `.lzma` format ("LZMA-alone").
    Lzma,
    /// lzip, which liblzma's automatic decoder (`lzma.open`, pandas' `*.xz`) also reads.
    Lzip,
    /// An LZ4 frame.
    Lz4,
}

/// The `ZF` header of joblib's old format: the prefix and 19 bytes of hex length.
const JOBLIB_ZF_HEADER: usize = 21;

impl Compression {
    /// The compression `head`, a file's first bytes, starts with by its magic number.
    /// LZMA-alone has none: see [`Compression::lzma_alone`].
    pub fn detect(head: &[u8]) -> Option<Compression> {
        let zlib = head.len() >= 2
            && head[0] == 0x78
            && (u16::from(head[0]) * 256 + u16::from(head[1])) % 31 == 0;
        // zstd's frame, or a skippable frame (magic 0x184D2A50 to 0x184D2A5F) before it.
        let zstd = head.starts_with(b"\x28\xb5\x2f\xfd")
            || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18]);
        // joblib reads any file starting `ZF` as its old format, and int(length, 16) then
        // refuses what is not a hex number.
        let joblib_zf = head.len() >= JOBLIB_ZF_HEADER
            && head.starts_with(b"ZF")
            && python_int_value(&head[2..JOBLIB_ZF_HEADER], 16).is_some();
        if head.starts_with(b"\x1f\x8b\x08") {
            Some(Compression::Gzip)
        } else if zlib {
            Some(Compression::Zlib)
        } else if joblib_zf {
            Some(Compression::JoblibZf)
        } else if zstd {
            Some(Compression::Zstd)
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Some(Compression::Bzip2)
        } else if head.starts_with(b"\xfd7zXZ\x00") {
            Some(Compression::Xz)
        } else if head.starts_with(b"LZIP") {
            Some(Compression::Lzip)
        } else if head.starts_with(b"\x04\x22\x4d\x18") {
            Some(Compression::Lz4)
        } else {
            None
        }
    }

    /// Whether `head` starts an LZMA-alone stream that liblzma's automatic decoder (what
    /// `lzma.open`, pandas' `*.xz` and joblib's `5D 00` prefix use) accepts: a properties
    /// byte below 225, a dictionary size of 2^n or 2^n + 2^(n-1) (as liblzma computes it, so
    /// 0 and 0xFFFFFFFF too), and an uncompressed size below 256 GiB or unknown (all ones).
    /// LZMA-alone has no magic number, so this is asked only of files that hold no pickle.
    pub fn lzma_alone(head: &[u8]) -> bool {
        if head.len() < 13 || head[0] >= 225 {
            return false;
        }
        let dictionary = u32::from_le_bytes(head[1..5].try_into().expect("4 bytes"));
        let mut d = dictionary.wrapping_sub(1);
        for shift in [2, 3, 4, 8, 16] {
            d |= d >> shift;
        }
        let dictionary_ok = dictionary == u32::MAX || d.wrapping_add(1) == dictionary;
        let size = u64::from_le_bytes(head[5..13].try_into().expect("8 bytes"));
        dictionary_ok && (size == u64::MAX || size < 1 << 38)
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::JoblibZf => "joblib-zf",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Lzip => "lzip",
            Compression::Lz4 => "lz4",
        }
    }
}

/// What inflating a file gave.
enum Inflated {
    /// What it inflated to, scanned as any file.
    Scanned(Option<PickleFacts>),
    /// Nothing to inflate: no compression's magic, or a zlib header (which other bytes can
    /// start with) on a stream that no unpickler reads anything from.
    NotCompressed,
}

fn cannot_inflate(compression: Compression) -> Problem {
    let name = compression.name();
    Problem::malformed(format!(
        "is {name}-compressed, which loaders (pandas.read_pickle, joblib.load) inflate and \
         unpickle; vouch cannot inflate {name}, so it cannot be scanned"
    ))
}

/// Inflates a compressed file (gzip as Python's gzip module reads it, zlib, joblib's `ZF`
/// format, zstd) into an unnamed temporary file, bounded as a deflated zip member is
/// (absolutely, and against the compressed size), and scans what it holds as any file is
/// scanned; once only (no loader inflates twice). What vouch cannot inflate is refused, and
/// so is a stream that fails to inflate part way (a loader unpickles what it inflated
/// before the failure, and another decoder may read on): a decoder's failure never makes a
/// file one that holds no pickle. The one exception is zlib, whose two-byte header other
/// bytes start with: a zlib stream from which nothing inflates, or whose first inflated
/// byte is no pickle opcode (the unpickler joblib runs on it stops there), is no
/// compressed file, and the file is read as it is.
fn scan_compressed(file: &File, len: u64, compression: Compression) -> Parsed<Inflated> {
    let name = compression.name();
    let raw = |position| ReadAt { file, position };
    let mut decoder: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(PythonGzip::new(BufReader::with_capacity(64 << 10, raw(0)))),
        Compression::Zlib => Box::new(flate2::read::ZlibDecoder::new(raw(0))),
        Compression::JoblibZf => {
            // joblib's read_zfile skips one space after the header (older joblib wrote one).
            let mut next = [0u8];
            let start = match file.read_at(&mut next, JOBLIB_ZF_HEADER as u64)? {
                1 if next[0] == b' ' => JOBLIB_ZF_HEADER as u64 + 1,
                _ => JOBLIB_ZF_HEADER as u64,
            };
            Box::new(flate2::read::ZlibDecoder::new(raw(start)))
        }
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw(0))?),
        _ => return Err(cannot_inflate(compression)),
    };
    let limit =
        zip::INFLATED_MEMBER_LIMIT.min(len.saturating_mul(zip::RATIO_LIMIT).max(zip::RATIO_FLOOR));
    let mut inflated = tempfile::tempfile()?;
    match io::copy(&mut (&mut decoder).take(limit + 1), &mut inflated) {
        Ok(n) if n > limit => {
            return Err(Problem::malformed(format!(
                "is {name}-compressed and inflates to more than {limit} bytes from {len} (more \
                 than {} to 1, or over {} bytes): a possible decompression bomb, not scanned \
                 (bounded work)",
                zip::RATIO_LIMIT,
                zip::INFLATED_MEMBER_LIMIT
            )))
        }
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::Other
            ) =>
        {
            // io::copy wrote out everything it read before the failure.
            let done = inflated.metadata()?.len();
            let mut first = [0u8];
            let first = match inflated.read_at(&mut first, 0)? {
                1 => Some(first[0]),
                _ => None,
            };
            if compression == Compression::Zlib && first.is_none_or(|b| opcode(b).is_none()) {
                return Ok(Inflated::NotCompressed);
            }
            return Err(Problem::malformed(format!(
                "is {name}-compressed, but its stream fails to inflate after {done} bytes \
                 ({e}); a loader unpickles what inflates before such a failure and another \
                 decoder may read on, so it cannot be scanned"
            )));
        }
        Err(e) => return Err(Problem::Io(e)),
    }
    let inflated_len = inflated.metadata()?.len();
    let mut head = vec![0u8; HEAD.min(inflated_len as usize)];
    inflated.read_exact_at(&mut head, 0)?;
    match scan_content(&inflated, inflated_len, &head) {
        Ok(facts) => Ok(Inflated::Scanned(facts.map(|facts| PickleFacts {
            compression: Some(compression),
            ..facts
        }))),
        Err(Problem::Malformed(m)) => Err(Problem::malformed(format!(
            "is {name}-compressed; inflated, it {m}"
        ))),
        Err(problem) => Err(problem),
    }
}

/// gzip read as Python's gzip module reads it (`gzip.open`, pandas.read_pickle's `*.gz`):
/// members back to back; in each header the method must be deflate, reserved flag bits are
/// ignored, the extra field, name and comment skipped, the header CRC read and never
/// checked; each member's CRC-32 and length checked at its end; zero bytes after a member
/// skipped; anything else after a member is an error (Python's "Not a gzipped file").
struct PythonGzip<R> {
    inner: R,
    inflate: flate2::Decompress,
    crc: flate2::Crc,
    in_member: bool,
    /// The member's deflate stream ended; its trailer is next.
    ended: bool,
}

const GZIP_FHCRC: u8 = 0x02;
const GZIP_FEXTRA: u8 = 0x04;
const GZIP_FNAME: u8 = 0x08;
const GZIP_FCOMMENT: u8 = 0x10;

fn gzip_error(kind: io::ErrorKind, message: &str) -> io::Error {
    io::Error::new(kind, format!("gzip: {message}"))
}

impl<R: BufRead> PythonGzip<R> {
    fn new(inner: R) -> PythonGzip<R> {
        PythonGzip {
            inner,
            inflate: flate2::Decompress::new(false),
            crc: flate2::Crc::new(),
            in_member: false,
            ended: false,
        }
    }

    fn exact<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut bytes = [0u8; N];
        self.inner
            .read_exact(&mut bytes)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => gzip_error(
                    e.kind(),
                    "the file ended before the end-of-stream marker was reached",
                ),
                _ => e,
            })?;
        Ok(bytes)
    }

    /// Skips a NUL-terminated string (or to the end of the input, as Python does).
    fn skip_string(&mut self) -> io::Result<()> {
        loop {
            let buffer = self.inner.fill_buf()?;
            if buffer.is_empty() {
                return Ok(());
            }
            match buffer.iter().position(|&b| b == 0) {
                Some(at) => {
                    self.inner.consume(at + 1);
                    return Ok(());
                }
                None => {
                    let n = buffer.len();
                    self.inner.consume(n);
                }
            }
        }
    }

    /// Reads a member's header; `false` at the end of the input.
    fn header(&mut self) -> io::Result<bool> {
        if self.inner.fill_buf()?.is_empty() {
            return Ok(false);
        }
        let magic = self
            .exact::<2>()
            .map_err(|_| gzip_error(io::ErrorKind::InvalidData, "not a gzipped file"))?;
        if magic != [0x1f, 0x8b] {
            return Err(gzip_error(
                io::ErrorKind::InvalidData,
                "not a gzipped file after a member",
            ));
        }
        let fixed = self.exact::<8>()?;
        if fixed[0] != 8 {
            return Err(gzip_error(
                io::ErrorKind::InvalidData,
                "unknown compression method",
            ));
        }
        let flags = fixed[1];
        if flags & GZIP_FEXTRA != 0 {
            let n = u64::from(u16::from_le_bytes(self.exact::<2>()?));
            if io::copy(&mut (&mut self.inner).take(n), &mut io::sink())? < n {
                return Err(gzip_error(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended inside a header",
                ));
            }
        }
        if flags & GZIP_FNAME != 0 {
            self.skip_string()?;
        }
        if flags & GZIP_FCOMMENT != 0 {
            self.skip_string()?;
        }
        if flags & GZIP_FHCRC != 0 {
            self.exact::<2>()?;
        }
        Ok(true)
    }

    /// Checks a member's CRC-32 and length, then skips the zero bytes after it.
    fn trailer(&mut self) -> io::Result<()> {
        let trailer = self.exact::<8>()?;
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
        if crc != self.crc.sum() {
            return Err(gzip_error(io::ErrorKind::InvalidData, "CRC check failed"));
        }
        if size != self.crc.amount() {
            return Err(gzip_error(
                io::ErrorKind::InvalidData,
                "incorrect length of data produced",
            ));
        }
        loop {
            let buffer = self.inner.fill_buf()?;
            let zeros = buffer.iter().take_while(|&&b| b == 0).count();
            let done = buffer.is_empty() || zeros < buffer.len();
            self.inner.consume(zeros);
            if done {
                return Ok(());
            }
        }
    }
}

impl<R: BufRead> Read for PythonGzip<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.ended {
                self.trailer()?;
                self.ended = false;
                self.in_member = false;
            }
            if !self.in_member {
                if !self.header()? {
                    return Ok(0);
                }
                self.in_member = true;
                self.inflate.reset(false);
                self.crc.reset();
            }
            let input = self.inner.fill_buf()?;
            let end_of_input = input.is_empty();
            let (read_before, written_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, out, flate2::FlushDecompress::None)
                .map_err(|e| gzip_error(io::ErrorKind::InvalidData, &e.to_string()))?;
            let consumed = (self.inflate.total_in() - read_before) as usize;
            let produced = (self.inflate.total_out() - written_before) as usize;
            self.inner.consume(consumed);
            self.crc.update(&out[..produced]);
            if status == flate2::Status::StreamEnd {
                // Checked on the next read, as Python does: what inflated is returned first.
                self.ended = true;
            } else if produced == 0 && end_of_input {
                return Err(gzip_error(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended before the end-of-stream marker was reached",
                ));
            } else if produced == 0 && consumed == 0 {
                return Err(gzip_error(
                    io::ErrorKind::InvalidData,
                    "the deflate stream makes no progress",
                ));
            }
            if produced > 0 {
                return Ok(produced);
            }
        }
    }
}

const TAR_BLOCK: usize = 512;

/// Whether Python's tarfile (which `torch.load` tries first on a legacy checkpoint, and
/// pandas reads `*.tar` with) reads a tar header in `block`: 512 bytes, not all zero, whose
/// checksum field (base-256, or octal text as `int(text, 8)` reads it: surrounding
/// whitespace, a sign, a `0o` prefix, underscores between digits) equals the sum of its
/// bytes with that field as spaces (unsigned or signed).
pub(crate) fn is_tar(block: &[u8]) -> bool {
    if block.len() < TAR_BLOCK || block.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let recorded = if field[0] == 0o200 || field[0] == 0o377 {
        // Base-256: a big-endian two's-complement number after the marker byte.
        let mut n: i128 = if field[0] == 0o377 { -1 } else { 0 };
        for &b in &field[1..] {
            n = (n << 8) | i128::from(b);
        }
        n
    } else {
        // tarfile's nti: the text before a NUL, ASCII, stripped, then int(text or "0", 8).
        let text = field.split(|&b| b == 0).next().unwrap_or(&[]);
        if !text.is_ascii() {
            return false;
        }
        let text = python_strip(text);
        if text.is_empty() {
            0
        } else {
            match python_int_value(text, 8) {
                Some(n) => n,
                None => return false,
            }
        }
    };
    let rest = block[..148].iter().chain(&block[156..TAR_BLOCK]);
    let unsigned: i128 = 256 + rest.clone().map(|&b| i128::from(b)).sum::<i128>();
    let signed: i128 = 256 + rest.map(|&b| i128::from(b as i8)).sum::<i128>();
    recorded == unsigned || recorded == signed
}

/// Python's `str.strip()` of ASCII text: the whitespace it removes includes \x1c to \x1f.
fn python_strip(text: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f);
    let start = text.iter().position(|b| !space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |at| at + 1);
    &text[start..end]
}

/// Python's `int(text, radix)` (radix 8 or 16) of ASCII text: surrounding whitespace, an
/// optional sign, an optional `0o` / `0x` prefix, digits with single underscores between
/// them (and one after the prefix). `None` where Python raises, or past `i128`.
fn python_int_value(text: &[u8], radix: u32) -> Option<i128> {
    let text = python_strip(text);
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let prefix = match radix {
        8 => Some(b'o'),
        16 => Some(b'x'),
        _ => None,
    };
    let digits = match (text, prefix) {
        ([b'0', p, rest @ ..], Some(prefix)) if p.to_ascii_lowercase() == prefix => {
            rest.strip_prefix(b"_").unwrap_or(rest)
        }
        _ => text,
    };
    if digits.is_empty() || digits[0] == b'_' || digits.ends_with(b"_") {
        return None;
    }
    let mut value: i128 = 0;
    let mut underscore = false;
    for &b in digits {
        if b == b'_' {
            if underscore {
                return None;
            }
            underscore = true;
            continue;
        }
        underscore = false;
        let digit = char::from(b).to_digit(radix)?;
        value = value
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(digit))?;
    }
    Some(if negative { -value } else { value })
}

/// Reads a file from `position` on without moving a shared file offset.
struct ReadAt<'a> {
    file: &'a File,
    position: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buffer, self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

/// A stream's scan, or why it cannot be trusted as a problem naming where: a bound it hit;
/// a pickle that stops inside its first pickle, before any STOP (Python's unpickler stops
/// there too, but a loader with its own unpickler may read on, and what it reads next is
/// unseen); a pickle importing joblib's array wrapper, after which `joblib.load` reads raw
/// array bytes inside the stream with its own unpickler, which vouch does not model.
fn scanned(scan: Result<StreamScan, Unscanned>, member: Option<&str>) -> Parsed<StreamScan> {
    let unscannable = |why: String| {
        Problem::malformed(match member {
            Some(member) => format!("member {member:?} cannot be scanned: {why}"),
            None => format!("cannot be scanned: {why}"),
        })
    };
    let scan = scan.map_err(|e| unscannable(e.to_string()))?;
    if !scan.is_pickle() {
        return Ok(scan);
    }
    if let Some(wrapper) = scan.globals.iter().find(|g| is_joblib_array_wrapper(g)) {
        return Err(unscannable(format!(
            "its pickle imports {}, after which joblib.load reads raw array bytes inside the \
             pickle stream with joblib's own unpickler, which vouch does not model",
            wrapper.dotted()
        )));
    }
    match (&scan.error, scan.stopped_in_first) {
        (Some(error), true) => Err(unscannable(format!(
            "its pickle stops before its STOP opcode ({error}); a loader with its own unpickler \
             (joblib's reads NumpyArrayWrapper array bytes there) may read on, unseen"
        ))),
        _ => Ok(scan),
    }
}

/// joblib's wrappers of NumPy arrays whose bytes follow them raw in the pickle stream.
fn is_joblib_array_wrapper(global: &Global) -> bool {
    let joblib =
        global.module == "joblib.numpy_pickle" || global.module.ends_with(".joblib.numpy_pickle");
    joblib
        && matches!(
            global.name.as_str(),
            "NumpyArrayWrapper" | "NDArrayWrapper" | "ZNDArrayWrapper"
        )
}

/// The pickle numpy reads after a `.npy` header (`reader` is at the magic, `len` bytes long),
/// when the body starts like one.
fn npy_body(mut reader: impl BufRead, len: u64) -> Parsed<Option<StreamScan>> {
    let mut preamble = [0u8; 8];
    if reader.read_exact(&mut preamble).is_err() {
        return Ok(None);
    }
    let header_len = match preamble[6] {
        1 => {
            let mut n = [0u8; 2];
            reader.read_exact(&mut n)?;
            10 + u64::from(u16::from_le_bytes(n))
        }
        2 | 3 => {
            let mut n = [0u8; 4];
            reader.read_exact(&mut n)?;
            12 + u64::from(u32::from_le_bytes(n))
        }
        // numpy refuses other format versions.
        _ => return Ok(None),
    };
    let skip = header_len - if preamble[6] == 1 { 10 } else { 12 };
    if io::copy(&mut (&mut reader).take(skip), &mut io::sink())? < skip {
        return Ok(None);
    }
    let body = reader.fill_buf()?;
    if !starts_with_opcode(body) {
        return Ok(None);
    }
    scanned(
        scan_stream(reader, Some(len.saturating_sub(header_len))),
        None,
    )
    .map(Some)
}

/// Scans every member of `archive` that is a pickle or a `.npy` array, by content.
fn scan_members(file: &File, archive: &zip::Archive) -> Parsed<Vec<NamedStream>> {
    let mut streams = Vec::new();
    for member in &archive.members {
        if member.is_directory() {
            continue;
        }
        let mut reader = BufReader::with_capacity(64 << 10, member.open(file));
        let head = match reader.fill_buf() {
            Ok(head) => head[..head.len().min(HEAD)].to_vec(),
            Err(e) => {
                return Err(Problem::malformed(format!(
                    "is a zip archive whose member {:?} cannot be read: {e}",
                    member.name
                )))
            }
        };
        let scan = if head.starts_with(NPY_MAGIC) {
            npy_body(reader, member.size)?
        } else if starts_with_opcode(&head) {
            Some(scan_stream(reader, Some(member.size)))
                .map(|scan| scanned(scan, Some(&member.name)))
                .transpose()?
        } else {
            None
        };
        if let Some(scan) = scan.filter(StreamScan::is_pickle) {
            streams.push(NamedStream {
                member: Some(member.name.clone()),
                scan,
            });
        }
    }
    Ok(streams)
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

fn unquote(line: &[u8]) -> Option<&[u8]> {
    let quoted =
        line.len() >= 2 && (line[0] == b'"' || line[0] == b'\'') && line.last() == Some(&line[0]);
    quoted.then(|| &line[1..line.len() - 1])
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

/// Python's `raw-unicode-escape` decoding: latin-1, with `\uXXXX` and `\UXXXXXXXX` after an
/// odd run of backslashes. `None` where Python fails, or for a lone surrogate.
fn raw_unicode_escape(bytes: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == b'\\').count();
        out.extend(std::iter::repeat_n('\\', run));
        i += run;
        let width = match bytes.get(i) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => continue,
        };
        out.pop();
        let hex = std::str::from_utf8(bytes.get(i + 1..i + 1 + width)?).ok()?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
        i += 1 + width;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(bytes: &[u8]) -> StreamScan {
        scan_stream(bytes, Some(bytes.len() as u64)).unwrap()
    }

    fn imports(bytes: &[u8]) -> Vec<String> {
        scan(bytes).globals.iter().map(Global::dotted).collect()
    }

    /// An LZMA-alone header as liblzma's automatic decoder takes it (the dictionary sizes
    /// and uncompressed sizes below were checked with Python's `lzma.decompress`, which
    /// accepts 0, 1, 2, 3, 4, 6, 8, 12, 0x180, 0xC0000000 and 0xFFFFFFFF and refuses 5, 7,
    /// 0xFF, 0x1001, 0xFFFFFFFE). Regression: a dictionary size of 0 once overflowed a shift.
    #[test]
    fn lzma_alone_headers_are_recognised_as_liblzma_accepts_them() {
        let header = |props: u8, dictionary: u32, size: u64| {
            let mut head = vec![props];
            head.extend_from_slice(&dictionary.to_le_bytes());
            head.extend_from_slice(&size.to_le_bytes());
            head
        };
        for dictionary in [
            0,
            1,
            2,
            3,
            4,
            6,
            8,
            12,
            0x180,
            1 << 16,
            0xC000_0000,
            u32::MAX,
        ] {
            assert!(
                Compression::lzma_alone(&header(0x5D, dictionary, u64::MAX)),
                "{dictionary:#x}"
            );
        }
        for dictionary in [5, 7, 0xFF, 0x1001, 0xFFFF_FFFE, 0x8000_0001] {
            assert!(
                !Compression::lzma_alone(&header(0x5D, dictionary, u64::MAX)),
                "{dictionary:#x}"
            );
        }
        // Any properties byte below 225, not only 0x5D (pandas' `*.xz`, lzma.open).
        assert!(Compression::lzma_alone(&header(0, 1 << 16, 33)));
        assert!(Compression::lzma_alone(&header(224, 1 << 16, 33)));
        assert!(!Compression::lzma_alone(&header(225, 1 << 16, 33)));
        // An uncompressed size of 256 GiB or more (but not unknown) is refused by liblzma.
        assert!(Compression::lzma_alone(&header(
            0x5D,
            1 << 16,
            (1 << 38) - 1
        )));
        assert!(!Compression::lzma_alone(&header(0x5D, 1 << 16, 1 << 38)));
        assert!(!Compression::lzma_alone(&[0x5D, 0, 0, 0, 0, 0xff]));
        assert_eq!(Compression::detect(&header(0x5D, 0, u64::MAX)), None);
    }

    #[test]
    fn magic_numbers_joblib_and_liblzma_go_by() {
        let mut zf = b"ZF".to_vec();
        zf.extend_from_slice(format!("{:<19}", "0x2a").as_bytes());
        zf.extend_from_slice(b"x\x9c");
        assert_eq!(Compression::detect(&zf), Some(Compression::JoblibZf));
        zf[4] = b'g';
        assert_eq!(Compression::detect(&zf), None);
        assert_eq!(
            Compression::detect(b"LZIP\x01\x10\x00"),
            Some(Compression::Lzip)
        );
        assert_eq!(
            Compression::detect(b"\x5e\x2a\x4d\x18\x04\x00\x00\x00"),
            Some(Compression::Zstd)
        );
    }

    /// tarfile's nti reads the checksum with int(text, 8): checked against Python 3.11.
    #[test]
    fn octal_text_is_read_as_python_int_reads_it() {
        for (text, value) in [
            ("7", Some(7)),
            ("+7", Some(7)),
            ("-7", Some(-7)),
            (" 7 ", Some(7)),
            ("0o7", Some(7)),
            ("0O7", Some(7)),
            ("0o_7", Some(7)),
            ("0_7", Some(7)),
            ("+0o7", Some(7)),
            ("\x1c7\x1f", Some(7)),
            ("\x0b7\x0c", Some(7)),
            ("0o07_5", Some(61)),
            ("_7", None),
            ("7_", None),
            ("7__7", None),
            ("0o", None),
            ("0o__7", None),
            ("0o+7", None),
            ("0x7", None),
            ("- 7", None),
            ("8", None),
        ] {
            assert_eq!(python_int_value(text.as_bytes(), 8), value, "{text:?}");
        }
        assert_eq!(python_int_value(b"0x_1f ", 16), Some(31));
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
        assert_eq!(imports(&pickle), ["posix.system"]);
        assert_eq!(result.globals[0].safety, Safety::Dangerous);
        assert!(!result.globals[0].allowed);
    }

    #[test]
    fn memoize_indexes_count_every_entry_and_dup_copies() {
        // MEMOIZE after MEMOIZE stores the same string again; MEMOIZE after BINGET stores
        // what BINGET pushed. A model that memoizes opcode arguments names None.eval / 0.eval.
        let twice = b"\x80\x04\x8c\x08builtins\x94\x94\x8c\x04eval\x94h\x01h\x02\x93.";
        assert_eq!(imports(twice), ["builtins.eval"]);
        let after_get = b"\x80\x04\x8c\x08builtins\x94h\x00\x94\x8c\x04eval\x94000h\x01h\x02\x93.";
        assert_eq!(imports(after_get), ["builtins.eval"]);
        let dup = b"\x80\x04\x8c\x08builtins\x8c\x04eval2\x94\x93.";
        // STACK_GLOBAL pops 'eval' (the DUP) and 'eval' below it: Python imports eval.eval.
        assert_eq!(imports(dup), ["eval.eval"]);
        // PUT with any index, GET with the same.
        let put = b"(S'os'\np99999\nS'x'\n0g99999\nS'system'\n\x93.";
        assert_eq!(imports(put), ["os.system"]);
        // A GET of an entry never written stops Python; nothing after it is imported.
        let missing = b"\x80\x04h\x05\x8c\x06system\x93.";
        assert_eq!(imports(missing), Vec::<String>::new());
        assert!(scan(missing).error.unwrap().contains("memo entry 5"));
    }

    #[test]
    fn computed_stack_global_operands_are_unknown() {
        // The name is what a call returned (a REDUCE), not a literal string.
        let pickle = b"\x80\x04\x8c\x08builtins\x8c\x01x\x8c\x01y\x85R\x93.";
        assert_eq!(imports(pickle), ["builtins.unknown"]);
    }

    #[test]
    fn a_huge_declared_string_is_truncation_without_reading_or_allocating_it() {
        let mut pickle = vec![0x80, 4, 0x8d];
        pickle.extend_from_slice(&u64::MAX.to_le_bytes());
        pickle.extend_from_slice(b"abc");
        let result = scan(&pickle);
        assert!(result.error.as_deref().unwrap().contains("truncated"));
        assert!(!result.is_pickle());
    }

    #[test]
    fn a_tar_header_is_recognised_by_its_checksum() {
        let mut block = vec![0u8; TAR_BLOCK];
        block[..6].copy_from_slice(b"pickle");
        block[124..135].copy_from_slice(b"00000000010");
        block[156] = b'0';
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(is_tar(&block));
        // The same checksum as Python's int(text, 8) also reads it.
        for text in [
            format!("0o{sum:06o}"),
            format!(" +{sum:o}\t"),
            format!("{}_{}", &format!("{sum:o}")[..2], &format!("{sum:o}")[2..]),
        ] {
            let mut other = block.clone();
            other[148..156].copy_from_slice(format!("{text:<8}").as_bytes());
            assert!(is_tar(&other), "{text:?}");
        }
        block[0] = b'q';
        assert!(!is_tar(&block));
        assert!(!is_tar(&[0; TAR_BLOCK]));
    }

    #[test]
    fn raw_unicode_escape_decodes_as_python() {
        assert_eq!(raw_unicode_escape(br"a\u0062c").as_deref(), Some("abc"));
        assert_eq!(
            raw_unicode_escape(br"a\\u0062").as_deref(),
            Some(r"a\\u0062")
        );
        assert_eq!(raw_unicode_escape(br"\u00"), None);
    }
}
