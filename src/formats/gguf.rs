//! GGUF (llama.cpp): magic, version, tensor and key-value counts, typed key-value pairs,
//! then one info record per tensor (name, dimensions, type, offset) before the data.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use serde::Serialize;

use super::source::{Parsed, Problem, Source};

pub const MAGIC: &[u8; 4] = b"GGUF";
/// Strings the facts need (names, architecture) are read up to this size; others are skipped.
const STRING_LIMIT: usize = 64 << 10;
/// GGML's own limit on tensor dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays nest at most this deep (GGUF writers produce one level).
const MAX_ARRAY_DEPTH: u32 = 4;
const DEFAULT_ALIGNMENT: u64 = 32;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GgufFacts {
    pub version: u32,
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// `general.file_type` as llama.cpp names it (`MOSTLY_Q8_0`), or its number if unknown.
    pub file_type: Option<String>,
    pub tensor_count: u64,
    pub parameter_count: u64,
    /// `<architecture>.context_length`.
    pub context_length: Option<u64>,
    /// Number of tensors of each GGML type (the quantization actually used).
    pub tensor_types: BTreeMap<String, u64>,
}

/// A GGML tensor type: its name and (elements per block, bytes per block).
fn ggml_type(id: u32) -> Option<(&'static str, u64, u64)> {
    Some(match id {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 40),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        40 => ("NVFP4", 64, 36),
        41 => ("Q1_0", 128, 18),
        _ => return None,
    })
}

/// llama.cpp's `llama_ftype` names, as the gguf package spells them.
fn file_type_name(id: u64) -> Option<&'static str> {
    Some(match id {
        0 => "ALL_F32",
        1 => "MOSTLY_F16",
        2 => "MOSTLY_Q4_0",
        3 => "MOSTLY_Q4_1",
        7 => "MOSTLY_Q8_0",
        8 => "MOSTLY_Q5_0",
        9 => "MOSTLY_Q5_1",
        10 => "MOSTLY_Q2_K",
        11 => "MOSTLY_Q3_K_S",
        12 => "MOSTLY_Q3_K_M",
        13 => "MOSTLY_Q3_K_L",
        14 => "MOSTLY_Q4_K_S",
        15 => "MOSTLY_Q4_K_M",
        16 => "MOSTLY_Q5_K_S",
        17 => "MOSTLY_Q5_K_M",
        18 => "MOSTLY_Q6_K",
        19 => "MOSTLY_IQ2_XXS",
        20 => "MOSTLY_IQ2_XS",
        21 => "MOSTLY_Q2_K_S",
        22 => "MOSTLY_IQ3_XS",
        23 => "MOSTLY_IQ3_XXS",
        24 => "MOSTLY_IQ1_S",
        25 => "MOSTLY_IQ4_NL",
        26 => "MOSTLY_IQ3_S",
        27 => "MOSTLY_IQ3_M",
        28 => "MOSTLY_IQ2_S",
        29 => "MOSTLY_IQ2_M",
        30 => "MOSTLY_IQ4_XS",
        31 => "MOSTLY_IQ1_M",
        32 => "MOSTLY_BF16",
        36 => "MOSTLY_TQ1_0",
        37 => "MOSTLY_TQ2_0",
        38 => "MOSTLY_MXFP4_MOE",
        39 => "MOSTLY_NVFP4",
        40 => "MOSTLY_Q1_0",
        1024 => "GUESSED",
        _ => return None,
    })
}

/// A value kept from the key-value section (only the kinds the facts need).
enum Value {
    Integer(u64),
    Text(String),
    Other,
}

const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// Size in bytes of a fixed-size value type.
fn scalar_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

pub fn read<R: Read + Seek>(source: &mut Source<R>) -> Parsed<GgufFacts> {
    if &source.array::<4>("the magic")? != MAGIC {
        return Err(Problem::malformed("does not start with the GGUF magic"));
    }
    let version = source.u32_le("the version")?;
    match version {
        2 | 3 => {}
        v if v.swap_bytes() <= 3 => {
            return Err(Problem::malformed(
                "is a big-endian GGUF file, which vouch does not read",
            ))
        }
        v => {
            return Err(Problem::malformed(format!(
                "has GGUF version {v}; vouch reads versions 2 and 3"
            )))
        }
    }
    let tensor_count = source.u64_le("the tensor count")?;
    let kv_count = source.u64_le("the key-value count")?;
    let mut facts = GgufFacts {
        version,
        tensor_count,
        ..GgufFacts::default()
    };
    let mut context_lengths = BTreeMap::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..kv_count {
        let key = string(source, "a key")?.unwrap_or_default();
        let value_type = source.u32_le("a value type")?;
        let value = value(source, value_type, wanted(&key), 0)?;
        match (key.as_str(), value) {
            ("general.architecture", Value::Text(text)) => facts.architecture = Some(text),
            ("general.name", Value::Text(text)) => facts.name = Some(text),
            ("general.file_type", Value::Integer(id)) => {
                facts.file_type = Some(file_type_name(id).map_or(id.to_string(), str::to_string))
            }
            ("general.alignment", Value::Integer(0)) => {
                return Err(Problem::malformed("general.alignment is zero"))
            }
            ("general.alignment", Value::Integer(n)) => alignment = n,
            (key, Value::Integer(n)) if key.ends_with(".context_length") => {
                context_lengths.insert(key.to_string(), n);
            }
            _ => {}
        }
    }
    if let Some(arch) = &facts.architecture {
        facts.context_length = context_lengths
            .get(&format!("{arch}.context_length"))
            .copied();
    }
    let mut extents = Vec::new();
    for index in 0..tensor_count {
        let name = string(source, "a tensor name")?.unwrap_or_default();
        let dims = source.u32_le("a tensor's dimension count")?;
        if dims > MAX_DIMS {
            return Err(Problem::malformed(format!(
                "tensor {index} ('{name}') has {dims} dimensions; GGML allows at most {MAX_DIMS}"
            )));
        }
        let mut elements: u64 = 1;
        let mut first_dim = 1;
        for d in 0..dims {
            let dim = source.u64_le("a tensor dimension")?;
            if d == 0 {
                first_dim = dim;
            }
            elements = elements.checked_mul(dim).ok_or_else(|| {
                Problem::malformed(format!("tensor '{name}': element count overflows 64 bits"))
            })?;
        }
        let type_id = source.u32_le("a tensor type")?;
        let offset = source.u64_le("a tensor offset")?;
        let (type_name, block, block_bytes) = ggml_type(type_id).ok_or_else(|| {
            Problem::malformed(format!("tensor '{name}' has unknown GGML type {type_id}"))
        })?;
        if first_dim % block != 0 {
            return Err(Problem::malformed(format!(
                "tensor '{name}': first dimension {first_dim} is not a multiple of the {type_name} block size {block}"
            )));
        }
        *facts.tensor_types.entry(type_name.to_string()).or_default() += 1;
        facts.parameter_count = facts
            .parameter_count
            .checked_add(elements)
            .ok_or_else(|| Problem::malformed("the parameter count overflows 64 bits"))?;
        let bytes = (elements / block)
            .checked_mul(block_bytes)
            .ok_or_else(|| Problem::malformed(format!("tensor '{name}': size overflows")))?;
        extents.push((name, offset, bytes));
    }
    let data_start = source
        .position()
        .div_ceil(alignment)
        .saturating_mul(alignment);
    for (name, offset, bytes) in extents {
        let end = data_start
            .checked_add(offset)
            .and_then(|start| start.checked_add(bytes));
        if end.is_none_or(|end| end > source.len()) {
            return Err(Problem::malformed(format!(
                "tensor '{name}' ({bytes} bytes at data offset {offset}) extends past the end of the {}-byte file (truncated?)",
                source.len()
            )));
        }
    }
    Ok(facts)
}

/// Whether the facts need the value of `key` (otherwise strings are skipped unread).
fn wanted(key: &str) -> bool {
    matches!(key, "general.architecture" | "general.name")
}

/// A length-prefixed string: read when small, `None` when it was too long and skipped.
fn string<R: Read + Seek>(source: &mut Source<R>, what: &str) -> Parsed<Option<String>> {
    let len = source.u64_le(what)?;
    if len > STRING_LIMIT as u64 {
        source.skip(len, what)?;
        return Ok(None);
    }
    let bytes = source.bytes(len, STRING_LIMIT, what)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Problem::malformed(format!("{what} is not UTF-8")))
}

fn value<R: Read + Seek>(
    source: &mut Source<R>,
    value_type: u32,
    keep_text: bool,
    depth: u32,
) -> Parsed<Value> {
    if let Some(size) = scalar_size(value_type) {
        let bytes = source.bytes(size, 8, "a value")?;
        let mut padded = [0u8; 8];
        padded[..bytes.len()].copy_from_slice(&bytes);
        let raw = u64::from_le_bytes(padded);
        // Unsigned and signed integer types (not floats, not bool) make integers.
        return Ok(match value_type {
            0 | 2 | 4 | 10 => Value::Integer(raw),
            1 | 3 | 5 | 11 if sign_extend(raw, size) >= 0 => Value::Integer(raw),
            _ => Value::Other,
        });
    }
    match value_type {
        STRING if keep_text => {
            Ok(string(source, "a string value")?.map_or(Value::Other, Value::Text))
        }
        STRING => {
            let len = source.u64_le("a string value")?;
            source.skip(len, "a string value")?;
            Ok(Value::Other)
        }
        ARRAY => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(Problem::malformed(format!(
                    "arrays nest deeper than {MAX_ARRAY_DEPTH} levels"
                )));
            }
            let element_type = source.u32_le("an array's element type")?;
            let count = source.u64_le("an array's length")?;
            if let Some(size) = scalar_size(element_type) {
                let bytes = count
                    .checked_mul(size)
                    .ok_or_else(|| Problem::malformed("an array's size overflows 64 bits"))?;
                source.skip(bytes, "an array")?;
            } else {
                for _ in 0..count {
                    value(source, element_type, false, depth + 1)?;
                }
            }
            Ok(Value::Other)
        }
        other => Err(Problem::malformed(format!(
            "unknown value type {other} at offset {}",
            source.position()
        ))),
    }
}

fn sign_extend(raw: u64, size: u64) -> i64 {
    let shift = 64 - 8 * size;
    ((raw << shift) as i64) >> shift
}
