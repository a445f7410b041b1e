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
pub const HEAD_LEN: u64 = 16;

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
/// with the reader its first bytes and name call for. `Ok(None)`: no reader applies, or a
/// file that could start a pickle holds none. The caller opened the file, so what is read
/// is what the caller hashed.
pub fn inspect_open(file: &File, len: u64, name: &str) -> Result<Option<Facts>, Problem> {
    let mut head = Vec::with_capacity(HEAD_LEN as usize);
    std::io::Seek::rewind(&mut &*file)?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, HEAD_LEN), &mut head)?;
    let source = || -> std::io::Result<Source<&File>> {
        std::io::Seek::rewind(&mut &*file)?;
        Ok(Source::new(file, len))
    };
    let Some(kind) = Kind::detect(name, &head) else {
        return Ok(None);
    };
    let read = match kind {
        Kind::Safetensors => safetensors::read(&mut source()?).map(Facts::Safetensors),
        Kind::Gguf => gguf::read(&mut source()?).map(Facts::Gguf),
        Kind::Onnx => onnx::read(&mut source()?).map(Facts::Onnx),
        Kind::Pickle => {
            return Ok(pickle::scan_file(file, name)?.map(Facts::Pickle));
        }
    };
    match read {
        // A file its name's reader refuses that starts like a pickle is read as loaders
        // that go by content read it: its pickles (and their imports) are what it holds.
        Err(Problem::Malformed(_)) if pickle::sniff(&head) => match pickle::scan_file(file, name) {
            Ok(Some(facts)) => Ok(Some(Facts::Pickle(facts))),
            _ => read.map(Some),
        },
        read => read.map(Some),
    }
}
