//! safetensors: an 8-byte little-endian header length, then a JSON header naming each
//! tensor's dtype, shape and byte range, and an optional `__metadata__` string map.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use serde::Serialize;
use serde_json::Value;

use super::source::{Parsed, Problem, Source};

/// The header limit the safetensors library itself enforces.
const HEADER_LIMIT: usize = 100_000_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SafetensorsFacts {
    pub tensor_count: u64,
    pub parameter_count: u64,
    /// Number of tensors of each dtype.
    pub dtypes: BTreeMap<String, u64>,
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
}

/// Bits per element of the dtypes whose size is known, to check each tensor's byte range.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" => 64,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        _ => return None,
    })
}

pub fn read<R: Read + Seek>(source: &mut Source<R>) -> Parsed<SafetensorsFacts> {
    let header_len = source.u64_le("the header length")?;
    let header = source.bytes(header_len, HEADER_LIMIT, "the JSON header")?;
    let data_len = source.remaining();
    if header.first() != Some(&b'{') {
        return Err(Problem::malformed("the header is not a JSON object"));
    }
    // Strict: a key given twice (a tensor, `dtype`, `__metadata__`) is read one way here and
    // refused or read another way by the safetensors library.
    let entries: BTreeMap<String, Value> = crate::json::from_slice(&header)
        .map_err(|e| Problem::malformed(format!("the JSON header is invalid: {e}")))?;
    let mut facts = SafetensorsFacts::default();
    for (name, entry) in entries {
        if name == "__metadata__" {
            facts.metadata = serde_json::from_value(entry).map_err(|_| {
                Problem::malformed("__metadata__ is not a map of strings to strings")
            })?;
            continue;
        }
        let elements = tensor(&name, &entry, data_len)?;
        let dtype = entry["dtype"].as_str().unwrap_or_default().to_string();
        *facts.dtypes.entry(dtype).or_default() += 1;
        facts.tensor_count += 1;
        facts.parameter_count = facts
            .parameter_count
            .checked_add(elements)
            .ok_or_else(|| Problem::malformed("the parameter count overflows 64 bits"))?;
    }
    Ok(facts)
}

/// Checks one tensor entry against the data section and returns its element count.
fn tensor(name: &str, entry: &Value, data_len: u64) -> Parsed<u64> {
    let bad = |what: &str| Problem::malformed(format!("tensor '{name}': {what}"));
    let dtype = entry["dtype"]
        .as_str()
        .ok_or_else(|| bad("no dtype string"))?;
    let shape = entry["shape"]
        .as_array()
        .ok_or_else(|| bad("no shape array"))?;
    let mut elements: u64 = 1;
    for dim in shape {
        let dim = dim
            .as_u64()
            .ok_or_else(|| bad("a dimension is not a non-negative integer"))?;
        elements = elements
            .checked_mul(dim)
            .ok_or_else(|| bad("its element count overflows 64 bits"))?;
    }
    let offsets = entry["data_offsets"]
        .as_array()
        .filter(|o| o.len() == 2)
        .ok_or_else(|| bad("data_offsets is not a pair"))?;
    let (begin, end) = match (offsets[0].as_u64(), offsets[1].as_u64()) {
        (Some(begin), Some(end)) if begin <= end => (begin, end),
        _ => return Err(bad("data_offsets are not an ordered pair of integers")),
    };
    if end > data_len {
        return Err(bad(&format!(
            "its data ends at byte {end} of the data section, which holds only {data_len} bytes (truncated?)"
        )));
    }
    if let Some(bits) = dtype_bits(dtype) {
        let expected = elements
            .checked_mul(bits)
            .map(|b| b.div_ceil(8))
            .ok_or_else(|| bad("its byte size overflows 64 bits"))?;
        if expected != end - begin {
            return Err(bad(&format!(
                "{elements} elements of {dtype} need {expected} bytes, but data_offsets cover {}",
                end - begin
            )));
        }
    }
    Ok(elements)
}
