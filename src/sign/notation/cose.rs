//! COSE_Sign1 Notation envelopes (`application/cose`, RFC 9052 as the Notary Project COSE
//! specification profiles it), taken apart for the checks both formats share. Decoded by
//! `ciborium` (the maintained serde CBOR crate, already in the dependency tree), whose
//! reader bounds nesting; a malformed envelope is an integrity refusal, never a panic.

use super::{
    Algorithm, Decoded, Headers, Refusal, AUTHENTIC_SIGNING_TIME, EXPIRY, SIGNING_SCHEME,
    SIGNING_TIME, TIMESTAMP_SIGNATURE,
};
use ciborium::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest envelope decoded (a signature layer is read with a smaller bound still).
const MAX_ENVELOPE_BYTES: usize = 4 << 20;
/// How deep CBOR may nest: a Notation envelope needs 4 levels.
const MAX_DEPTH: usize = 16;
/// The CBOR tag of COSE_Sign1_Tagged.
const COSE_SIGN1: u64 = 18;
const ALG: i128 = 1;
const CRIT: i128 = 2;
const CONTENT_TYPE: i128 = 3;
const X5CHAIN: i128 = 33;

fn bad(why: impl std::fmt::Display) -> Refusal {
    Refusal::Integrity(format!("the COSE envelope {why}"))
}

/// One CBOR item that is all of `bytes`.
fn cbor(bytes: &[u8], what: &str) -> Result<Value, Refusal> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
        .map_err(|e| bad(format!("has malformed CBOR in {what}: {e}")))?;
    if !rest.is_empty() {
        return Err(bad(format!("has {} bytes after {what}", rest.len())));
    }
    Ok(value)
}

/// A header map's label, in the words reports and `crit` use: a text label as itself, an
/// integer one as `label N`.
fn label(key: &Value) -> Result<String, Refusal> {
    match key {
        Value::Text(t) => Ok(t.clone()),
        Value::Integer(i) => Ok(format!("label {}", i128::from(*i))),
        _ => Err(bad(
            "has a header label that is neither an integer nor text",
        )),
    }
}

fn int_label(n: i128) -> String {
    format!("label {n}")
}

/// A header map, its labels unique.
fn header_map(value: Value, what: &str) -> Result<Vec<(String, Value)>, Refusal> {
    let Value::Map(entries) = value else {
        return Err(bad(format!("{what} is not a map")));
    };
    let mut map: Vec<(String, Value)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let name = label(&k)?;
        if map.iter().any(|(n, _)| *n == name) {
            return Err(bad(format!("{what} gives {name} twice")));
        }
        map.push((name, v));
    }
    Ok(map)
}

fn get<'a>(map: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    map.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// A CBOR date/time (tag 1, seconds since the epoch).
fn time(name: &str, v: &Value) -> Result<SystemTime, Refusal> {
    let seconds = match v {
        Value::Tag(1, inner) => match inner.as_ref() {
            Value::Integer(i) => u64::try_from(i128::from(*i)).ok().map(Duration::from_secs),
            Value::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1e15 => {
                Some(Duration::from_secs_f64(*f))
            }
            _ => None,
        },
        _ => None,
    };
    seconds.map(|s| UNIX_EPOCH + s).ok_or_else(|| {
        bad(format!(
            "has a {name} that is not a time after 1970 (tag 1)"
        ))
    })
}

fn bytes(v: Value, what: &str) -> Result<Vec<u8>, Refusal> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(bad(format!("{what} is not a byte string"))),
    }
}

/// The COSE algorithm identifiers Notation allows.
fn algorithm(v: Option<&Value>) -> Result<Algorithm, Refusal> {
    let id = match v {
        Some(Value::Integer(i)) => i128::from(*i),
        _ => return Err(bad("has no integer alg in its protected header")),
    };
    Ok(match id {
        -37 => Algorithm::Ps256,
        -38 => Algorithm::Ps384,
        -39 => Algorithm::Ps512,
        -7 => Algorithm::Es256,
        -35 => Algorithm::Es384,
        -36 => Algorithm::Es512,
        other => return Err(bad(format!("has the unsupported COSE algorithm {other}"))),
    })
}

/// A COSE_Sign1_Tagged `[protected, unprotected, payload, signature]`: the protected
/// header (alg, crit, content type, the `io.cncf.notary.*` headers), the `x5chain` and
/// timestamp of the unprotected one, and the Sig_structure
/// `["Signature1", protected, h'', payload]` the signature covers.
pub(super) fn decode(envelope: &[u8]) -> Result<Decoded, Refusal> {
    if envelope.len() > MAX_ENVELOPE_BYTES {
        return Err(bad(format!(
            "is {} bytes, more than the {MAX_ENVELOPE_BYTES} vouch reads",
            envelope.len()
        )));
    }
    let Value::Tag(COSE_SIGN1, body) = cbor(envelope, "the envelope")? else {
        return Err(bad("is not a COSE_Sign1 (CBOR tag 18)"));
    };
    let Value::Array(parts) = *body else {
        return Err(bad("is not a COSE_Sign1 array"));
    };
    let Ok([protected_raw, unprotected, payload, signature]) = <[Value; 4]>::try_from(parts) else {
        return Err(bad("is not a COSE_Sign1 array of 4 items"));
    };
    let protected_raw = bytes(protected_raw, "its protected header")?;
    let payload = match payload {
        Value::Null => return Err(bad("has a detached payload, which Notation does not use")),
        other => bytes(other, "its payload")?,
    };
    let signature = bytes(signature, "its signature")?;
    let protected = header_map(
        cbor(&protected_raw, "the protected header")?,
        "the protected header",
    )?;
    let unprotected = header_map(unprotected, "the unprotected header")?;

    let algorithm = algorithm(get(&protected, &int_label(ALG)))?;
    let crit = match get(&protected, &int_label(CRIT)) {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(label).collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("has a crit that is not an array")),
    };
    let text = |name: &str| -> Result<Option<String>, Refusal> {
        match get(&protected, name) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t.clone())),
            Some(_) => Err(bad(format!("has a {name} that is not text"))),
        }
    };
    let when = |name: &str| get(&protected, name).map(|v| time(name, v)).transpose();
    let headers = Headers {
        content_type: text(&int_label(CONTENT_TYPE))?,
        present: protected.iter().map(|(n, _)| n.clone()).collect(),
        crit,
        signing_scheme: text(SIGNING_SCHEME)?,
        signing_time: when(SIGNING_TIME)?,
        authentic_signing_time: when(AUTHENTIC_SIGNING_TIME)?,
        expiry: when(EXPIRY)?.map(|at| {
            let shown =
                jiff::Timestamp::try_from(at).map_or_else(|_| "?".into(), |t| t.to_string());
            (at, shown)
        }),
    };
    let x5c = match get(&unprotected, &int_label(X5CHAIN)) {
        None => return Err(bad("has no x5chain in its unprotected header")),
        Some(Value::Bytes(one)) => vec![one.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|c| match c {
                Value::Bytes(b) => Ok(b.clone()),
                _ => Err(bad("has an x5chain entry that is not a byte string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("has an x5chain that is neither bytes nor an array")),
    };
    let timestamp = match get(&unprotected, TIMESTAMP_SIGNATURE) {
        None => None,
        Some(Value::Bytes(token)) => Some(token.clone()),
        Some(_) => {
            return Err(bad(format!(
                "has a {TIMESTAMP_SIGNATURE} that is not bytes"
            )))
        }
    };
    let sig_structure = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected_raw),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.clone()),
    ]);
    let mut signed = Vec::new();
    ciborium::ser::into_writer(&sig_structure, &mut signed)
        .map_err(|e| bad(format!("cannot be encoded as a Sig_structure: {e}")))?;
    Ok(Decoded {
        algorithm,
        signed,
        signature,
        headers,
        payload,
        x5c,
        timestamp,
    })
}
