//! ONNX: a protobuf `ModelProto`. Its wire format is walked field by field without a schema
//! compiler: the few fields the facts need are read, everything else (tensor data above all)
//! is skipped by seeking, and every length is checked against its enclosing message.

use std::io::{Read, Seek};

use serde::Serialize;

use super::source::{Parsed, Problem, Source};

/// Strings the facts keep (producer, opset domains, external-data keys and values).
const STRING_LIMIT: usize = 64 << 10;
/// Graphs nest inside node attributes (If, Loop, Scan); deeper than this is refused.
const MAX_DEPTH: u32 = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OnnxFacts {
    pub ir_version: Option<i64>,
    /// Operator sets imported, in file order: the domain (empty for the default `ai.onnx`)
    /// and its version.
    pub opsets: Vec<Opset>,
    pub producer_name: Option<String>,
    pub producer_version: Option<String>,
    /// Files named by tensors stored outside the model (`location` of external data), sorted
    /// and without repeats, relative to the directory of the ONNX file.
    pub external_data: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Opset {
    pub domain: String,
    pub version: i64,
}

enum Wire {
    Varint(u64),
    /// A length-delimited field whose `len` bytes start at the current position.
    Bytes(u64),
}

struct Reader<'a, R> {
    source: &'a mut Source<R>,
    external: Vec<String>,
}

pub fn read<R: Read + Seek>(source: &mut Source<R>) -> Parsed<OnnxFacts> {
    let end = source.len();
    let mut reader = Reader {
        source,
        external: Vec::new(),
    };
    let mut facts = OnnxFacts::default();
    reader.message(end, |r, field, wire| {
        match (field, wire) {
            (1, Wire::Varint(v)) => facts.ir_version = Some(v as i64),
            (2, Wire::Bytes(len)) => facts.producer_name = Some(r.text(len, "producer_name")?),
            (3, Wire::Bytes(len)) => {
                facts.producer_version = Some(r.text(len, "producer_version")?)
            }
            (7, Wire::Bytes(len)) => r.graph(len, 0)?,
            (8, Wire::Bytes(len)) => facts.opsets.push(r.opset(len)?),
            (20, Wire::Bytes(len)) => r.nested(len, 0, &[1, 2], &[])?,
            (25, Wire::Bytes(len)) => r.nested(len, 0, &[], &[7])?,
            (_, wire) => r.skip(wire)?,
        }
        Ok(())
    })?;
    if facts.ir_version.is_none() && facts.opsets.is_empty() {
        return Err(Problem::malformed(
            "is not an ONNX model: no IR version and no operator set",
        ));
    }
    let mut external = reader.external;
    external.sort();
    external.dedup();
    facts.external_data = external;
    Ok(facts)
}

impl<R: Read + Seek> Reader<'_, R> {
    /// Calls `on_field` for each field up to `end`, which must land exactly on a field
    /// boundary.
    fn message(
        &mut self,
        end: u64,
        mut on_field: impl FnMut(&mut Self, u64, Wire) -> Parsed<()>,
    ) -> Parsed<()> {
        while self.source.position() < end {
            let key = self.varint()?;
            let field = key >> 3;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    self.source.skip(8, "a fixed64 field")?;
                    continue;
                }
                5 => {
                    self.source.skip(4, "a fixed32 field")?;
                    continue;
                }
                2 => {
                    let len = self.varint()?;
                    if len > end - self.source.position().min(end) {
                        return Err(Problem::malformed(format!(
                            "field {field} at offset {} declares {len} bytes, more than its enclosing message holds",
                            self.source.position()
                        )));
                    }
                    Wire::Bytes(len)
                }
                other => {
                    return Err(Problem::malformed(format!(
                        "unsupported protobuf wire type {other} at offset {}; this is not an ONNX model",
                        self.source.position()
                    )))
                }
            };
            on_field(self, field, wire)?;
        }
        if self.source.position() != end {
            return Err(Problem::malformed(
                "a protobuf field runs past the end of its message",
            ));
        }
        Ok(())
    }

    fn varint(&mut self) -> Parsed<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.source.u8("a protobuf varint")?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Problem::malformed(
            "a protobuf varint is longer than 10 bytes",
        ))
    }

    fn skip(&mut self, wire: Wire) -> Parsed<()> {
        match wire {
            Wire::Varint(_) => Ok(()),
            Wire::Bytes(len) => self.source.skip(len, "a protobuf field"),
        }
    }

    fn text(&mut self, len: u64, what: &str) -> Parsed<String> {
        let bytes = self.source.bytes(len, STRING_LIMIT, what)?;
        String::from_utf8(bytes).map_err(|_| Problem::malformed(format!("{what} is not UTF-8")))
    }

    fn end_of(&self, len: u64) -> u64 {
        self.source.position() + len
    }

    fn opset(&mut self, len: u64) -> Parsed<Opset> {
        let mut opset = Opset {
            domain: String::new(),
            version: 0,
        };
        let end = self.end_of(len);
        self.message(end, |r, field, wire| {
            match (field, wire) {
                (1, Wire::Bytes(len)) => opset.domain = r.text(len, "an opset domain")?,
                (2, Wire::Varint(v)) => opset.version = v as i64,
                (_, wire) => r.skip(wire)?,
            }
            Ok(())
        })?;
        Ok(opset)
    }

    fn deeper(depth: u32) -> Parsed<u32> {
        if depth >= MAX_DEPTH {
            return Err(Problem::malformed(format!(
                "graphs nest deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(depth + 1)
    }

    /// GraphProto: nodes (1), initializers (5) and sparse initializers (15) hold tensors.
    fn graph(&mut self, len: u64, depth: u32) -> Parsed<()> {
        let depth = Self::deeper(depth)?;
        let end = self.end_of(len);
        self.message(end, |r, field, wire| match (field, wire) {
            (1, Wire::Bytes(len)) => r.node(len, depth),
            (5, Wire::Bytes(len)) => r.tensor(len),
            (15, Wire::Bytes(len)) => r.sparse_tensor(len),
            (_, wire) => r.skip(wire),
        })
    }

    /// A message whose fields `graphs` are GraphProtos and `nodes` are NodeProtos
    /// (TrainingInfoProto, FunctionProto).
    fn nested(&mut self, len: u64, depth: u32, graphs: &[u64], nodes: &[u64]) -> Parsed<()> {
        let depth = Self::deeper(depth)?;
        let end = self.end_of(len);
        self.message(end, |r, field, wire| match wire {
            Wire::Bytes(len) if graphs.contains(&field) => r.graph(len, depth),
            Wire::Bytes(len) if nodes.contains(&field) => r.node(len, depth),
            wire => r.skip(wire),
        })
    }

    /// NodeProto: its attributes (5) may hold tensors and subgraphs.
    fn node(&mut self, len: u64, depth: u32) -> Parsed<()> {
        let end = self.end_of(len);
        self.message(end, |r, field, wire| match (field, wire) {
            (5, Wire::Bytes(len)) => r.attribute(len, depth),
            (_, wire) => r.skip(wire),
        })
    }

    /// AttributeProto: t (5), g (6), tensors (10), graphs (11), sparse_tensor (22),
    /// sparse_tensors (23).
    fn attribute(&mut self, len: u64, depth: u32) -> Parsed<()> {
        let end = self.end_of(len);
        self.message(end, |r, field, wire| match (field, wire) {
            (5 | 10, Wire::Bytes(len)) => r.tensor(len),
            (6 | 11, Wire::Bytes(len)) => r.graph(len, depth),
            (22 | 23, Wire::Bytes(len)) => r.sparse_tensor(len),
            (_, wire) => r.skip(wire),
        })
    }

    /// SparseTensorProto: values (1) and indices (2) are tensors.
    fn sparse_tensor(&mut self, len: u64) -> Parsed<()> {
        let end = self.end_of(len);
        self.message(end, |r, field, wire| match (field, wire) {
            (1 | 2, Wire::Bytes(len)) => r.tensor(len),
            (_, wire) => r.skip(wire),
        })
    }

    /// TensorProto: external_data (13) entries and data_location (14, 1 = EXTERNAL).
    fn tensor(&mut self, len: u64) -> Parsed<()> {
        let end = self.end_of(len);
        let mut location = None;
        let mut external = false;
        self.message(end, |r, field, wire| {
            match (field, wire) {
                (13, Wire::Bytes(len)) => {
                    if let Some((key, value)) = r.entry(len)? {
                        if key == "location" {
                            location = Some(value);
                        }
                    }
                }
                (14, Wire::Varint(v)) => external = v == 1,
                (_, wire) => r.skip(wire)?,
            }
            Ok(())
        })?;
        match (external, location) {
            (true, Some(location)) => self.external.push(location),
            (true, None) => {
                return Err(Problem::malformed(
                    "a tensor stored externally names no location",
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// StringStringEntryProto: key (1), value (2).
    fn entry(&mut self, len: u64) -> Parsed<Option<(String, String)>> {
        let end = self.end_of(len);
        let (mut key, mut value) = (None, None);
        self.message(end, |r, field, wire| {
            match (field, wire) {
                (1, Wire::Bytes(len)) => key = Some(r.text(len, "an external-data key")?),
                (2, Wire::Bytes(len)) => value = Some(r.text(len, "an external-data value")?),
                (_, wire) => r.skip(wire)?,
            }
            Ok(())
        })?;
        Ok(key.zip(value))
    }
}
