//! Readers of model weight formats: just enough of each header to say what a file is and
//! whether loading it could run code. Every reader is bounded: sizes declared in a file are
//! checked against the file before anything is allocated, and a malformed or hostile header
//! is a [`Problem`] with a message, never a panic.

pub mod gguf;
pub mod onnx;
pub mod pickle;
pub mod properties;
pub mod safetensors;
mod source;

use std::fs::File;

use serde::Serialize;

pub use source::Problem;
use source::Source;

/// A format vouch reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Safetensors,
    Gguf,
    Onnx,
    Pickle,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Safetensors => "safetensors",
            Kind::Gguf => "gguf",
            Kind::Onnx => "onnx",
            Kind::Pickle => "pickle",
        }
    }

    /// The reader for a file of this name whose first bytes are `head` (at least
    /// [`HEAD_LEN`] of them when the file has them), if any. Content decides before the
    /// name: GGUF magic, then a safetensors header under a safetensors name, then anything
    /// only a pickle container starts with (zip, 7z, `.npy` magic, a PROTO opcode), then the
    /// name, then a first byte that is a pickle opcode (protocols 0 and 1 have no magic).
    pub fn detect(name: &str, head: &[u8]) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let by_name = if lower.ends_with(".safetensors") {
            Some(Kind::Safetensors)
        } else if lower.ends_with(".gguf") {
            Some(Kind::Gguf)
        } else if lower.ends_with(".onnx") {
            Some(Kind::Onnx)
        } else {
            None
        };
        if head.starts_with(gguf::MAGIC) {
            Some(Kind::Gguf)
        } else if by_name == Some(Kind::Safetensors) && head.get(8) == Some(&b'{') {
            Some(Kind::Safetensors)
        } else if pickle::sniff_strong(head) {
            Some(Kind::Pickle)
        } else if by_name.is_some() {
            by_name
        } else if pickle::sniff(head) {
            Some(Kind::Pickle)
        } else {
            None
        }
    }
}

/// How many first bytes [`Kind::detect`] looks at.
pub const HEAD_LEN: u64 = 32;

/// What a reader found in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Facts {
    Safetensors(safetensors::SafetensorsFacts),
    Gguf(gguf::GgufFacts),
    Onnx(onnx::OnnxFacts),
    Pickle(pickle::PickleFacts),
}

impl Facts {
    pub fn kind(&self) -> Kind {
        match self {
            Facts::Safetensors(_) => Kind::Safetensors,
            Facts::Gguf(_) => Kind::Gguf,
            Facts::Onnx(_) => Kind::Onnx,
            Facts::Pickle(_) => Kind::Pickle,
        }
    }
}

/// Reads the header of `file`, open and `len` bytes long (named `name` inside its model),
/// with the reader its first bytes and name call for, and scans it for pickles as the
/// `--deny-unsafe-pickle` gate does, whatever its name: a file a loader that goes by content
/// reads as pickles (a first byte that is a pickle opcode, a tar, a zip found from the end,
/// a compressed stream) may also be a valid safetensors, GGUF or ONNX file.
///
/// A file holding pickles is reported as those pickles when its name's reader refuses it,
/// and, when those pickles import something, even when its name's reader read it (pickles
/// that import nothing run no code, and a header can start like one: a safetensors header
/// of 0x2E4E bytes starts `N.`). An ONNX graph that loads external data and is such a
/// pickle too is malformed: it is both, and what it loads must not go unchecked. A pickle scan that refuses the file (a tar, a zip that cannot be
/// read as zipfile reads it, an unscannable pickle) is the file's problem even when its
/// name's reader read it. `Ok(None)`: no reader applies and it holds no pickle. The caller
/// opened the file, so what is read is what the caller hashed.
pub fn inspect_open(file: &File, len: u64, name: &str) -> Result<Option<Facts>, Problem> {
    let mut head = Vec::with_capacity(HEAD_LEN as usize);
    std::io::Seek::rewind(&mut &*file)?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, HEAD_LEN), &mut head)?;
    let source = || -> std::io::Result<Source<&File>> {
        std::io::Seek::rewind(&mut &*file)?;
        Ok(Source::new(file, len))
    };
    let read = match Kind::detect(name, &head) {
        Some(Kind::Pickle) | None => None,
        Some(Kind::Safetensors) => Some(safetensors::read(&mut source()?).map(Facts::Safetensors)),
        Some(Kind::Gguf) => Some(gguf::read(&mut source()?).map(Facts::Gguf)),
        Some(Kind::Onnx) => Some(onnx::read(&mut source()?).map(Facts::Onnx)),
    };
    let pickles = pickle::scan_file(file, name);
    match (read, pickles) {
        (_, Err(Problem::Io(e))) => Err(Problem::Io(e)),
        (None, pickles) => Ok(pickles?.map(Facts::Pickle)),
        // A file its name's reader refuses that holds pickles is read as the pickles it holds.
        (Some(Err(_)), Ok(Some(facts))) => Ok(Some(Facts::Pickle(facts))),
        // The name's reader's own complaint first, as the file is named.
        (Some(Err(problem)), _) => Err(problem),
        (Some(Ok(_)), Err(problem)) => Err(problem),
        (Some(Ok(read)), Ok(Some(facts))) if facts.globals().next().is_some() => match read {
            Facts::Onnx(onnx) if !onnx.external_data.is_empty() => {
                let imports: Vec<String> = facts.globals().map(|(g, _)| g.dotted()).collect();
                Err(Problem::malformed(format!(
                    "is an ONNX graph loading external data ({}) that is also a pickle \
                     importing {} (numpy.load and torch.load unpickle it): both cannot be \
                     vouched for at once",
                    onnx.external_data.join(", "),
                    imports.join(", ")
                )))
            }
            _ => Ok(Some(Facts::Pickle(facts))),
        },
        (Some(Ok(read)), Ok(_)) => Ok(Some(read)),
    }
}
