//! Sigstore bundles (v0.3) as OpenSSF Model Signing writes them: a DSSE envelope around the
//! in-toto statement, and verification material that is a public-key hint, an X.509 chain,
//! or a Fulcio certificate with transparency-log entries (keyless).
//!
//! Reading is structural and strict about what matters (the OMS bundle schema), lenient
//! about what model-signing releases wrote differently (`keyid: null`, a public key as
//! `rawBytes` before 1.1). Nothing here checks a signature.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::json::{self, JsonError};

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The payload type of an in-toto statement in a DSSE envelope.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Why a document is no signature bundle vouch can check.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not JSON: the parser's message, with line and column.
    #[error("malformed JSON: {0}")]
    Syntax(String),
    /// JSON another reader would read differently (a key given twice, or in two spellings).
    #[error("{0}")]
    Ambiguous(JsonError),
    /// Not a Sigstore bundle by its media type.
    #[error("{0}")]
    NotSigstore(String),
    /// A Sigstore bundle whose content is missing, empty or malformed: what, and where.
    #[error("{0}")]
    Malformed(String),
}

pub(super) fn malformed(message: impl Into<String>) -> BundleError {
    BundleError::Malformed(message.into())
}

/// How the signer is identified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Material {
    /// A managed key: `hint` is the hex SHA-256 of its PEM text; older bundles carry the
    /// PEM itself.
    PublicKey {
        hint: Option<String>,
        pem: Option<Vec<u8>>,
    },
    /// A certificate chain, leaf first, DER.
    CertificateChain(Vec<Vec<u8>>),
    /// A Fulcio certificate with transparency-log entries: verified by Sigstore's rules.
    Keyless,
}

impl Material {
    /// The signing method in words, for messages.
    pub fn method(&self) -> &'static str {
        match self {
            Material::PublicKey { .. } => "a private key (verify it with the public key)",
            Material::CertificateChain(_) => {
                "a certificate (verify it with the certificate chain it chains to)"
            }
            Material::Keyless => {
                "Sigstore keyless signing (verify it with the signer's identity and OIDC issuer)"
            }
        }
    }
}

/// A DSSE envelope: the payload and its signatures, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Vec<u8>>,
}

/// A parsed bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub material: Material,
    pub envelope: Envelope,
    /// The document as read, with `keyid: null` removed, for the Sigstore verifier.
    pub normalized_json: String,
}

/// Parses a bundle, saying what is missing or malformed and where. The strict reader
/// ([`crate::json`]) refuses a duplicate key anywhere, and each field read here refuses a
/// key that differs from it only by case.
pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
    let mut value: Value = json::from_slice(bytes).map_err(|e| match e {
        JsonError::Malformed(message) => BundleError::Syntax(message),
        ambiguous => BundleError::Ambiguous(ambiguous),
    })?;
    let top = value
        .as_object()
        .ok_or_else(|| malformed("the bundle is not a JSON object"))?;
    let media_type = get(top, "mediaType", "")?
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("mediaType is missing"))?;
    if !media_type.starts_with("application/vnd.dev.sigstore.bundle") {
        return Err(BundleError::NotSigstore(format!(
            "mediaType \"{media_type}\" is not a Sigstore bundle"
        )));
    }
    let material = get(top, "verificationMaterial", "")?
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("verificationMaterial is missing"))?;
    let material = parse_material(material)?;
    let envelope = get(top, "dsseEnvelope", "")?
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("dsseEnvelope is missing: an OMS bundle signs a DSSE envelope"))?;
    let envelope = parse_envelope(envelope)?;
    drop_null_key_ids(&mut value);
    Ok(Bundle {
        material,
        envelope,
        normalized_json: value.to_string(),
    })
}

/// The value of `key` in the object at `at`, refusing a case variant of the key.
fn get<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a Value>, BundleError> {
    json::field(object, key, at).map_err(BundleError::Ambiguous)
}

/// The object at `at`: each element of a list must be one.
fn object_at<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, BundleError> {
    value
        .as_object()
        .ok_or_else(|| malformed(format!("{at} is not an object")))
}

fn parse_material(material: &Map<String, Value>) -> Result<Material, BundleError> {
    const AT: &str = "verificationMaterial";
    if let Some(key) = get(material, "publicKey", AT)? {
        let at = "verificationMaterial.publicKey";
        let key = object_at(key, at)?;
        let hint = get(key, "hint", at)?
            .and_then(Value::as_str)
            .map(str::to_string);
        let pem = match get(key, "rawBytes", at)?.and_then(Value::as_str) {
            Some(raw) => Some(decode(raw, "verificationMaterial.publicKey.rawBytes")?),
            None => None,
        };
        if hint.is_none() && pem.is_none() {
            return Err(malformed(
                "verificationMaterial.publicKey has neither hint nor rawBytes",
            ));
        }
        return Ok(Material::PublicKey { hint, pem });
    }
    if let Some(chain) = get(material, "x509CertificateChain", AT)? {
        let at = "verificationMaterial.x509CertificateChain";
        let certificates = get(object_at(chain, at)?, "certificates", at)?
            .and_then(Value::as_array)
            .filter(|list| !list.is_empty())
            .ok_or_else(|| {
                malformed(
                    "verificationMaterial.x509CertificateChain.certificates is missing or empty",
                )
            })?;
        let der = certificates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = format!("verificationMaterial.x509CertificateChain.certificates[{i}]");
                let raw = get(object_at(c, &at)?, "rawBytes", &at)?
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(format!("{at}.rawBytes is missing")))?;
                decode(raw, &format!("{at}.rawBytes"))
            })
            .collect::<Result<_, _>>()?;
        return Ok(Material::CertificateChain(der));
    }
    if get(material, "certificate", AT)?.is_some() {
        let entries = get(material, "tlogEntries", AT)?.and_then(Value::as_array);
        if entries.is_none_or(|e| e.is_empty()) {
            return Err(malformed(
                "verificationMaterial.tlogEntries is missing or empty: a keyless signature needs its \
                 transparency-log entry",
            ));
        }
        return Ok(Material::Keyless);
    }
    Err(malformed(
        "verificationMaterial has no publicKey, x509CertificateChain or certificate",
    ))
}

fn parse_envelope(envelope: &Map<String, Value>) -> Result<Envelope, BundleError> {
    const AT: &str = "dsseEnvelope";
    let payload_type = get(envelope, "payloadType", AT)?
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("dsseEnvelope.payloadType is missing"))?
        .to_string();
    let payload = decode(
        get(envelope, "payload", AT)?
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("dsseEnvelope.payload is missing"))?,
        "dsseEnvelope.payload",
    )?;
    if payload.is_empty() {
        return Err(malformed("dsseEnvelope.payload is empty"));
    }
    let signatures = get(envelope, "signatures", AT)?
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed("dsseEnvelope.signatures is missing or empty"))?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = format!("dsseEnvelope.signatures[{i}]");
            let sig = get(object_at(s, &at)?, "sig", &at)?
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(format!("{at}.sig is missing")))?;
            decode(sig, &format!("{at}.sig"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Envelope {
        payload_type,
        payload,
        signatures,
    })
}

fn decode(text: &str, at: &str) -> Result<Vec<u8>, BundleError> {
    STANDARD
        .decode(text)
        .map_err(|e| malformed(format!("{at} is not base64: {e}")))
}

/// model-signing before 1.1 wrote `"keyid": null`, which the Sigstore types refuse; the
/// key id is not signed and not used, so it is dropped.
fn drop_null_key_ids(value: &mut Value) {
    if let Some(signatures) = value
        .pointer_mut("/dsseEnvelope/signatures")
        .and_then(Value::as_array_mut)
    {
        for signature in signatures.iter_mut().filter_map(Value::as_object_mut) {
            if signature.get("keyid").is_some_and(Value::is_null) {
                signature.remove("keyid");
            }
        }
    }
}

/// Writes a bundle as model-signing does for the key and certificate methods.
pub fn to_json(material: &Material, payload: &[u8], signature: &[u8]) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct BundleOut<'a> {
        media_type: &'a str,
        verification_material: MaterialOut,
        dsse_envelope: EnvelopeOut<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct MaterialOut {
        #[serde(skip_serializing_if = "Option::is_none")]
        public_key: Option<HintOut>,
        #[serde(skip_serializing_if = "Option::is_none")]
        x509_certificate_chain: Option<ChainOut>,
        tlog_entries: [(); 0],
    }
    #[derive(Serialize)]
    struct HintOut {
        hint: String,
    }
    #[derive(Serialize)]
    struct ChainOut {
        certificates: Vec<RawOut>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct RawOut {
        raw_bytes: String,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct EnvelopeOut<'a> {
        payload: String,
        payload_type: &'a str,
        signatures: [SignatureOut; 1],
    }
    #[derive(Serialize)]
    struct SignatureOut {
        sig: String,
        keyid: &'static str,
    }

    let verification_material = match material {
        Material::PublicKey { hint, .. } => MaterialOut {
            public_key: Some(HintOut {
                hint: hint.clone().unwrap_or_default(),
            }),
            x509_certificate_chain: None,
            tlog_entries: [],
        },
        Material::CertificateChain(chain) => MaterialOut {
            public_key: None,
            x509_certificate_chain: Some(ChainOut {
                certificates: chain
                    .iter()
                    .map(|der| RawOut {
                        raw_bytes: STANDARD.encode(der),
                    })
                    .collect(),
            }),
            tlog_entries: [],
        },
        Material::Keyless => unreachable!("vouch signs with keys and certificates only"),
    };
    let bundle = BundleOut {
        media_type: BUNDLE_MEDIA_TYPE,
        verification_material,
        dsse_envelope: EnvelopeOut {
            payload: STANDARD.encode(payload),
            payload_type: PAYLOAD_TYPE,
            signatures: [SignatureOut {
                sig: STANDARD.encode(signature),
                keyid: "",
            }],
        },
    };
    let mut out = serde_json::to_vec_pretty(&bundle).expect("a bundle always serializes");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bundles_parse_back() {
        let material = Material::PublicKey {
            hint: Some("ab".repeat(32)),
            pem: None,
        };
        let bytes = to_json(&material, b"{\"x\":1}", b"sig");
        let bundle = parse(&bytes).unwrap();
        assert_eq!(bundle.material, material);
        assert_eq!(bundle.envelope.payload, b"{\"x\":1}");
        assert_eq!(bundle.envelope.signatures, [b"sig".to_vec()]);
        assert_eq!(bundle.envelope.payload_type, PAYLOAD_TYPE);
    }

    #[test]
    fn structural_problems_are_named() {
        let cases = [
            ("", "malformed JSON"),
            ("{}", "mediaType"),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
                "verificationMaterial",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}}}"#,
                "dsseEnvelope",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AA=="}},"dsseEnvelope":{}}"#,
                "tlogEntries",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
