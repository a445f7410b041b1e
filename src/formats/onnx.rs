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
    let mut graphs = 0;
    reader.message(end, |r, field, wire| {
        match (field, wire) {
            (1, Wire::Varint(v)) => facts.ir_version = Some(v as i64),
            (2, Wire::Bytes(len)) => facts.producer_name = Some(r.text(len, "producer_name")?),
            (3, Wire::Bytes(len)) => {
                facts.producer_version = Some(r.text(len, "producer_version")?)
            }
            (7, Wire::Bytes(len)) => {
                once(&mut graphs, "the model's graph")?;
                r.graph(len, 0)?
            }
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

/// Counts a singular message field of one message: given twice, protobuf merges the two
/// copies into one (the later location of a tensor with the earlier's data_location), which
/// vouch does not model, so such a model is refused.
fn once(seen: &mut u32, what: &str) -> Parsed<()> {
    *seen += 1;
    if *seen > 1 {
        return Err(Problem::malformed(format!(
            "{what} is given twice; protobuf merges the copies, which vouch does not read so"
        )));
    }
    Ok(())
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
        // TrainingInfoProto's graphs are singular fields.
        let mut seen = [0u32; 2];
        self.message(end, |r, field, wire| match wire {
            Wire::Bytes(len) if graphs.contains(&field) => {
                let slot = &mut seen[usize::from(field != graphs[0])];
                once(slot, "a training graph").and_then(|_| r.graph(len, depth))
            }
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
        let (mut t, mut g, mut sparse) = (0, 0, 0);
        self.message(end, |r, field, wire| match (field, wire) {
            (5, Wire::Bytes(len)) => {
                once(&mut t, "an attribute's tensor").and_then(|_| r.tensor(len))
            }
            (10, Wire::Bytes(len)) => r.tensor(len),
            (6, Wire::Bytes(len)) => {
                once(&mut g, "an attribute's graph").and_then(|_| r.graph(len, depth))
            }
            (11, Wire::Bytes(len)) => r.graph(len, depth),
            (22, Wire::Bytes(len)) => {
                once(&mut sparse, "an attribute's sparse tensor").and_then(|_| r.sparse_tensor(len))
            }
            (23, Wire::Bytes(len)) => r.sparse_tensor(len),
            (_, wire) => r.skip(wire),
        })
    }

    /// SparseTensorProto: values (1) and indices (2) are tensors.
    fn sparse_tensor(&mut self, len: u64) -> Parsed<()> {
        let end = self.end_of(len);
        let (mut values, mut indices) = (0, 0);
        self.message(end, |r, field, wire| match (field, wire) {
            (1, Wire::Bytes(len)) => {
                once(&mut values, "a sparse tensor's values").and_then(|_| r.tensor(len))
            }
            (2, Wire::Bytes(len)) => {
                once(&mut indices, "a sparse tensor's indices").and_then(|_| r.tensor(len))
            }
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
                // An enum of 32 bits: protobuf reads the low 32 bits of the varint, and
                // keeps the value before for one it does not know (proto2).
                (14, Wire::Varint(v)) => match v as u32 {
                    0 => external = false,
                    1 => external = true,
                    _ => {}
                },
                (_, wire) => r.skip(wire)?,
            }
            Ok(())
        })?;
        match (external, location) {
            (true, Some(location)) if location.contains('\0') => return Err(Problem::malformed(
                "an external-data location holds a NUL byte (onnxruntime opens the name before it)",
            )),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(field: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(field << 3 | 2, &mut out);
        varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
        out
    }

    fn varint_field(field: u64, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(field << 3, &mut out);
        varint(value, &mut out);
        out
    }

    /// A TensorProto naming `location` for its external data, then `locations` (the
    /// data_location varints, in order).
    fn tensor(location: &str, locations: &[u64]) -> Vec<u8> {
        let entry = [
            bytes_field(1, b"location"),
            bytes_field(2, location.as_bytes()),
        ]
        .concat();
        let mut tensor = bytes_field(13, &entry);
        for &l in locations {
            tensor.extend(varint_field(14, l));
        }
        tensor
    }

    /// A model whose graph's one node has the attribute tensors `tensors` (field t, given
    /// once per tensor).
    fn model(tensors: &[Vec<u8>]) -> Vec<u8> {
        let attribute: Vec<u8> = tensors.iter().flat_map(|t| bytes_field(5, t)).collect();
        let node = bytes_field(5, &attribute);
        let graph = bytes_field(1, &node);
        [varint_field(1, 7), bytes_field(7, &graph)].concat()
    }

    fn external(bytes: &[u8]) -> Parsed<Vec<String>> {
        let mut source = Source::new(std::io::Cursor::new(bytes.to_vec()), bytes.len() as u64);
        read(&mut source).map(|facts| facts.external_data)
    }

    #[test]
    fn data_location_is_read_as_protobuf_reads_an_enum() {
        assert_eq!(
            external(&model(&[tensor("w.bin", &[1])])).unwrap(),
            ["w.bin"]
        );
        assert!(external(&model(&[tensor("w.bin", &[0])]))
            .unwrap()
            .is_empty());
        // The low 32 bits, and an unknown value keeps the one before it.
        for locations in [&[(1u64 << 32) | 1][..], &[u64::MAX - 0xffff_fffe], &[1, 7]] {
            assert_eq!(
                external(&model(&[tensor("w.bin", locations)])).unwrap(),
                ["w.bin"],
                "{locations:?}"
            );
        }
    }

    #[test]
    fn a_tensor_protobuf_would_merge_or_a_location_with_a_nul_is_refused() {
        let twice = model(&[tensor("w.bin", &[1]), tensor("hidden.bin", &[])]);
        let why = format!("{:?}", external(&twice).unwrap_err());
        assert!(why.contains("given twice"), "{why}");
        let nul = model(&[tensor("w.bin\0.ignored", &[1])]);
        let why = format!("{:?}", external(&nul).unwrap_err());
        assert!(why.contains("NUL"), "{why}");
    }
}
