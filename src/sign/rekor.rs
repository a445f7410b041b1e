//! Rekor signed entry timestamps (SETs) of cosign's legacy signatures, as the layer
//! annotation `dev.sigstore.cosign/bundle` carries them: the log's signature over the
//! canonical JSON of the entry it integrated (`body`, `integratedTime`, `logID`,
//! `logIndex`), checked with the key the trusted root gives that log (valid at the
//! integrated time), and the entry's body (a `hashedrekord`) checked against the payload,
//! signature and key it must log.

use base64::Engine as _;
use serde::Deserialize;
use sigstore_trust_root::{TrustedRoot, SIGSTORE_PRODUCTION_TRUSTED_ROOT};

use super::cosign::{decode_base64, CosignKey};
use super::keys::{pem_blocks, PublicKey};
use crate::hash::Algorithm;

/// The layer annotation holding the Rekor bundle.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// The Rekor logs a trusted root names: each log's ID (hex SHA-256 of its key), its key and
/// the seconds it was valid in.
#[derive(Clone, Debug)]
pub struct RekorLogs {
    logs: Vec<Log>,
}

/// A log of a trusted root (a transparency log or a certificate-transparency log).
#[derive(Clone, Debug)]
pub(super) struct Log {
    /// Lower-case hex of the log ID.
    id: String,
    pub(super) key: PublicKey,
    valid: Option<(i64, Option<i64>)>,
}

impl Log {
    /// The log with this key and ID; none when its key is not ECDSA.
    pub(super) fn of(
        key: &sigstore_trust_root::trusted_root::PublicKey,
        id: &sigstore_types::LogId,
    ) -> Option<Log> {
        Some(Log {
            id: hex::encode(id.key_id.as_bytes()),
            key: PublicKey::from_spki(key.raw_bytes.as_bytes()).ok()?,
            valid: key
                .valid_for
                .as_ref()
                .map(|r| (r.start.as_second(), r.end.map(|e| e.as_second()))),
        })
    }

    /// The log of `logs` whose ID is `id` (hex, any case) and whose key was valid at
    /// `time` (seconds since the epoch).
    pub(super) fn find<'a>(logs: &'a [Log], id: &str, time: i64) -> Option<&'a Log> {
        logs.iter().find(|log| {
            log.id.eq_ignore_ascii_case(id)
                && log
                    .valid
                    .is_none_or(|(start, end)| time >= start && end.is_none_or(|end| time <= end))
        })
    }
}

impl RekorLogs {
    /// The logs of a trusted_root.json (read strictly); keys that are not ECDSA (which
    /// Rekor's are) are left out.
    pub fn from_trusted_root(text: &str) -> Result<RekorLogs, String> {
        Ok(RekorLogs::of(&read_trusted_root(text)?))
    }

    /// The logs of a parsed trusted root.
    pub fn of(root: &TrustedRoot) -> RekorLogs {
        RekorLogs {
            logs: root
                .tlogs
                .iter()
                .filter_map(|tlog| Log::of(&tlog.public_key, &tlog.log_id))
                .collect(),
        }
    }

    /// The logs of the Sigstore public-good trusted root shipped with vouch.
    pub fn public_good() -> Result<RekorLogs, String> {
        RekorLogs::from_trusted_root(SIGSTORE_PRODUCTION_TRUSTED_ROOT)
    }
}

/// Reads a trusted_root.json strictly (no duplicate or case-variant key goes unnoticed).
pub fn read_trusted_root(text: &str) -> Result<TrustedRoot, String> {
    crate::json::from_slice(text.as_bytes())
        .map_err(|e| format!("not a Sigstore trusted root: {e}"))
}

/// Who a Rekor entry must name as the signer: a key, or a certificate (DER).
#[derive(Clone, Copy, Debug)]
pub enum LoggedSigner<'a> {
    Key(&'a CosignKey),
    Certificate(&'a [u8]),
}

/// What a checked SET says: where and when the signature was logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub log_index: i64,
    /// Seconds since the epoch.
    pub integrated_time: i64,
}

/// Why a SET does not vouch for a signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetRefusal {
    #[error("its Rekor bundle is malformed: {0}")]
    Malformed(String),
    #[error(
        "its Rekor entry is in the log {0}, which the trusted root does not name (at that time)"
    )]
    UnknownLog(String),
    #[error("its Rekor signed entry timestamp does not verify with the log's key")]
    BadTimestamp,
    #[error("its Rekor entry logs {0}, not this signature")]
    OtherEntry(&'static str),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RawPayload,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

#[derive(Deserialize)]
struct Body {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    spec: serde_json::Value,
}

/// Checks the SET of `annotation` against `logs`, then that the entry it signs logs this
/// `payload` (by its SHA-256), this `signature` and this `signer`.
pub fn verify_set(
    annotation: &str,
    logs: &RekorLogs,
    payload: &[u8],
    signature: &[u8],
    signer: LoggedSigner,
) -> Result<Logged, SetRefusal> {
    let malformed = |m: String| SetRefusal::Malformed(m);
    let bundle: RawBundle =
        crate::json::from_slice(annotation.as_bytes()).map_err(|e| malformed(e.to_string()))?;
    let entry = &bundle.payload;
    let log = Log::find(&logs.logs, &entry.log_id, entry.integrated_time)
        .ok_or_else(|| SetRefusal::UnknownLog(entry.log_id.clone()))?;
    // Rekor signs the entry as canonical JSON: keys sorted, no spaces.
    let canonical = format!(
        "{{\"body\":{},\"integratedTime\":{},\"logID\":{},\"logIndex\":{}}}",
        serde_json::Value::String(entry.body.clone()),
        entry.integrated_time,
        serde_json::Value::String(entry.log_id.clone()),
        entry.log_index
    );
    let set = decode_base64(&bundle.signed_entry_timestamp)
        .ok_or_else(|| malformed("its SignedEntryTimestamp is not base64".into()))?;
    if !log.key.verify(canonical.as_bytes(), &set) {
        return Err(SetRefusal::BadTimestamp);
    }
    let body = base64::engine::general_purpose::STANDARD
        .decode(&entry.body)
        .map_err(|_| malformed("its entry body is not base64".into()))?;
    check_body(&body, payload, signature, signer)?;
    Ok(Logged {
        log_index: entry.log_index,
        integrated_time: entry.integrated_time,
    })
}

/// A `hashedrekord` 0.0.1 body must name the payload's SHA-256, the signature and the
/// signer (its key, or the very certificate).
fn check_body(
    body: &[u8],
    payload: &[u8],
    signature: &[u8],
    signer: LoggedSigner,
) -> Result<(), SetRefusal> {
    let malformed = |m: &str| SetRefusal::Malformed(format!("its entry body {m}"));
    let body: Body = crate::json::from_slice(body).map_err(|e| malformed(&e.to_string()))?;
    if body.kind != "hashedrekord" || body.api_version != "0.0.1" {
        return Err(malformed(&format!(
            "is a {} {} entry, not hashedrekord 0.0.1",
            body.kind, body.api_version
        )));
    }
    let text = |path: &[&str]| -> Result<&str, SetRefusal> {
        let mut value = &body.spec;
        for key in path {
            let object = value
                .as_object()
                .ok_or_else(|| malformed(&format!("has no spec.{}", path.join("."))))?;
            value = crate::json::field(object, key, "spec")
                .map_err(|e| malformed(&e.to_string()))?
                .ok_or_else(|| malformed(&format!("has no spec.{}", path.join("."))))?;
        }
        value
            .as_str()
            .ok_or_else(|| malformed(&format!("spec.{} is not a string", path.join("."))))
    };
    if text(&["data", "hash", "algorithm"])? != "sha256"
        || !text(&["data", "hash", "value"])?
            .eq_ignore_ascii_case(&Algorithm::Sha256.digest(payload).hex())
    {
        return Err(SetRefusal::OtherEntry("another payload"));
    }
    if decode_base64(text(&["signature", "content"])?).as_deref() != Some(signature) {
        return Err(SetRefusal::OtherEntry("another signature"));
    }
    let key = decode_base64(text(&["signature", "publicKey", "content"])?)
        .ok_or_else(|| malformed("has a public key that is not base64"))?;
    match signer {
        LoggedSigner::Key(signer) => match CosignKey::from_pem(&key) {
            Ok(logged) if &logged == signer => Ok(()),
            _ => Err(SetRefusal::OtherEntry("another key")),
        },
        LoggedSigner::Certificate(der) => {
            let logged = pem_blocks(&key).ok().and_then(|blocks| {
                blocks
                    .into_iter()
                    .find(|b| b.tag() == "CERTIFICATE")
                    .map(pem::Pem::into_contents)
            });
            match logged {
                Some(logged) if logged == der => Ok(()),
                _ => Err(SetRefusal::OtherEntry("another certificate")),
            }
        }
    }
}
