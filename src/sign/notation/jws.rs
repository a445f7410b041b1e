//! The JWS JSON serialization of a Notation envelope (`application/jose+json`), taken
//! apart for the checks both formats share.

use super::{
    Algorithm, Decoded, Headers, Refusal, AUTHENTIC_SIGNING_TIME, EXPIRY, SIGNING_SCHEME,
    SIGNING_TIME, TIMESTAMP_SIGNATURE,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::time::SystemTime;

fn b64url(field: &str, text: &str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| Refusal::Integrity(format!("{field} is not base64url: {e}")))
}

fn parse_time(field: &str, v: &serde_json::Value) -> Result<SystemTime, Refusal> {
    let text = v
        .as_str()
        .ok_or_else(|| Refusal::Integrity(format!("{field} is not a string")))?;
    let ts: jiff::Timestamp = text.parse().map_err(|e| {
        Refusal::Integrity(format!("{field} {text:?} is not an RFC 3339 time: {e}"))
    })?;
    Ok(SystemTime::from(ts))
}

/// The envelope, its protected header and its payload, read by the strict JSON reader (a
/// key given twice is refused).
pub(super) fn decode(envelope: &[u8]) -> Result<Decoded, Refusal> {
    let doc = crate::json::value_of_go_structs(envelope)
        .map_err(|e| Refusal::Integrity(format!("the envelope is not JSON: {e}")))?;
    let field = |name: &str| {
        doc.get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Refusal::Integrity(format!("the envelope has no {name}")))
    };
    let protected_b64 = field("protected")?;
    let payload_b64 = field("payload")?;
    let signature = b64url("signature", field("signature")?)?;
    let protected = crate::json::value_of_go_structs(&b64url("protected", protected_b64)?)
        .map_err(|e| Refusal::Integrity(format!("the protected header is not JSON: {e}")))?;
    let x5c: Vec<Vec<u8>> = doc
        .pointer("/header/x5c")
        .and_then(|v| v.as_array())
        .ok_or_else(|| Refusal::Integrity("the envelope has no x5c chain".into()))?
        .iter()
        .map(|c| {
            c.as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| Refusal::Integrity("an x5c entry is not base64".into()))
        })
        .collect::<Result<_, _>>()?;
    let timestamp = match doc.pointer(&format!("/header/{TIMESTAMP_SIGNATURE}")) {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| {
                    Refusal::Integrity(format!("{TIMESTAMP_SIGNATURE} is not base64"))
                })?,
        ),
    };
    let alg = protected.get("alg").and_then(|v| v.as_str()).unwrap_or("");
    let algorithm = Algorithm::from_jws(alg)
        .ok_or_else(|| Refusal::Integrity(format!("unsupported JWS algorithm {alg:?}")))?;
    let Some(object) = protected.as_object() else {
        return Err(Refusal::Integrity(
            "the protected header is not an object".into(),
        ));
    };
    let text = |name: &str| {
        protected
            .get(name)
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    let time = |name: &str| protected.get(name).map(|v| parse_time(name, v)).transpose();
    let headers = Headers {
        content_type: text("cty"),
        crit: match protected.get("crit") {
            None => Vec::new(),
            Some(crit) => crit
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(String::from)).collect())
                .ok_or_else(|| Refusal::Integrity("crit is not an array of header names".into()))?,
        },
        present: object.keys().cloned().collect(),
        signing_scheme: text(SIGNING_SCHEME),
        signing_time: time(SIGNING_TIME)?,
        authentic_signing_time: time(AUTHENTIC_SIGNING_TIME)?,
        expiry: time(EXPIRY)?.map(|at| (at, text(EXPIRY).unwrap_or_default())),
    };
    Ok(Decoded {
        algorithm,
        signed: format!("{protected_b64}.{payload_b64}").into_bytes(),
        signature,
        headers,
        payload: b64url("payload", payload_b64)?,
        x5c,
        timestamp,
    })
}
