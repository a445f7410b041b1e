//! cosign's legacy image signatures with a key (`cosign verify --key`): a simple-signing
//! payload, signed as it is, with the signature (base64) in the layer annotation
//! `dev.cosignproject.cosign/signature`.
//!
//! A signature counts only when it verifies with the key **and** its payload names the
//! digest the image resolved to (`critical.image.docker-manifest-digest`, in either case
//! spelling cosign and containers/image use) and, when a repository is given, its
//! `critical.identity.docker-reference` names that repository (with or without a tag).
//!
//! Rekor SETs of these signatures are checked in [`super::rekor`]; signatures by a
//! certificate (keyless Fulcio, a private PKI) in [`super::fulcio`].

use aws_lc_rs::signature;
use base64::Engine as _;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::keys::{pem_blocks, PublicKey};
use crate::hash::Digest;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the signature, base64.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `critical.type` of a cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A cosign public key (`cosign.pub`): ECDSA P-256/P-384/P-521 (with the curve's hash),
/// RSA (PKCS#1 v1.5, SHA-256) or Ed25519.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CosignKey {
    Ecdsa(PublicKey),
    Rsa(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// Why a key file holds no cosign key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyFileError(pub String);

impl CosignKey {
    /// Reads a `PUBLIC KEY` PEM block.
    pub fn from_pem(text: &[u8]) -> Result<CosignKey, KeyFileError> {
        let blocks = pem_blocks(text).map_err(|e| KeyFileError(e.to_string()))?;
        let block = blocks
            .into_iter()
            .find(|b| b.tag() == "PUBLIC KEY")
            .ok_or_else(|| KeyFileError("it holds no PUBLIC KEY PEM block".into()))?;
        CosignKey::from_spki(block.contents())
    }

    /// Reads a DER SubjectPublicKeyInfo (a key file's, or a certificate's).
    pub fn from_spki(der: &[u8]) -> Result<CosignKey, KeyFileError> {
        let info = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|e| KeyFileError(format!("not a public key: {e}")))?;
        let raw = info.subject_public_key.raw_bytes().to_vec();
        match info.algorithm.oid {
            RSA_ENCRYPTION => Ok(CosignKey::Rsa(raw)),
            ED25519 => Ok(CosignKey::Ed25519(raw)),
            _ => PublicKey::from_spki(der)
                .map(CosignKey::Ecdsa)
                .map_err(|e| KeyFileError(e.to_string())),
        }
    }

    /// The key's fingerprint, as vouch names keys: the hex SHA-256 of an ECDSA key's PEM,
    /// of an RSA or Ed25519 key's bytes.
    pub fn fingerprint(&self) -> String {
        match self {
            CosignKey::Ecdsa(key) => key.hint(),
            CosignKey::Rsa(bytes) | CosignKey::Ed25519(bytes) => {
                crate::hash::Algorithm::Sha256.digest(bytes).hex()
            }
        }
    }

    /// Checks a signature over `message` as cosign makes it with this kind of key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            CosignKey::Ecdsa(key) => key.verify(message, signature),
            CosignKey::Rsa(der) => {
                signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(message, signature)
                    .is_ok()
            }
            CosignKey::Ed25519(raw) => signature::UnparsedPublicKey::new(&signature::ED25519, raw)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

/// The simple-signing payload cosign signs for an image: the repository it was signed for
/// (`host/path`, no tag or digest) and the manifest digest, in cosign's own byte layout.
pub fn simple_signing_payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    let quoted = |text: &str| serde_json::to_string(text).expect("a string serializes");
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":{}}},"image":{{"docker-manifest-digest":{}}},"type":{}}},"optional":null}}"#,
        quoted(docker_reference),
        quoted(&digest.prefixed()),
        quoted(SIGNATURE_TYPE)
    )
    .into_bytes()
}

/// Decodes base64 the way Go's decoder does for cosign annotations: whitespace (the
/// 76-column wrapping some signers write) is ignored.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// Why a legacy cosign signature does not count.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the layer is {0}, not a simple-signing payload")]
    NotSimpleSigning(String),
    #[error("the layer has no {SIGNATURE_ANNOTATION} annotation")]
    NoSignature,
    #[error("the signature annotation is not base64")]
    MalformedSignature,
    #[error("the signature does not verify with the key (wrong key or changed payload)")]
    WrongKey,
    #[error("the payload is malformed: {0}")]
    MalformedPayload(String),
    #[error("the payload signs {signed}, not the image's digest {resolved}")]
    OtherDigest { signed: String, resolved: String },
    #[error("the payload names the image {signed}, not the repository {expected}")]
    OtherRepository { signed: String, expected: String },
    #[error("the payload names no repository (critical.identity.docker-reference), so it does not say it signs {expected}")]
    NoRepository { expected: String },
}

/// What a verified signature's payload says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedImage {
    pub digest: String,
    pub docker_reference: Option<String>,
}

/// Checks one legacy signature: the layer's media type, the signature over the exact
/// payload bytes with `key`, then the payload's digest against `resolved` and its
/// docker-reference against `repository` (`host/path`, when given).
pub fn verify_simple_signing(
    media_type: &str,
    payload: &[u8],
    signature_b64: Option<&str>,
    key: &CosignKey,
    resolved: &Digest,
    repository: Option<&str>,
) -> Result<SignedImage, Refusal> {
    if media_type != SIMPLE_SIGNING {
        return Err(Refusal::NotSimpleSigning(media_type.to_string()));
    }
    let signature = signature_b64.ok_or(Refusal::NoSignature)?;
    let signature = decode_base64(signature).ok_or(Refusal::MalformedSignature)?;
    if !key.verify(payload, &signature) {
        return Err(Refusal::WrongKey);
    }
    let signed = read_payload(payload)?;
    if signed.digest != resolved.prefixed() {
        return Err(Refusal::OtherDigest {
            signed: signed.digest,
            resolved: resolved.prefixed(),
        });
    }
    // A signature must say which repository it signs: one that names none could have been
    // made for any image of the key's owner.
    if let Some(expected) = repository {
        match &signed.docker_reference {
            None => {
                return Err(Refusal::NoRepository {
                    expected: expected.to_string(),
                })
            }
            Some(named) if !names_repository(named, expected) => {
                return Err(Refusal::OtherRepository {
                    signed: named.clone(),
                    expected: expected.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(signed)
}

/// Whether a docker-reference (`host/path`, `host/path:tag`, `host/path@digest`) names the
/// repository `host/path`.
pub fn names_repository(reference: &str, repository: &str) -> bool {
    let Some(rest) = reference.strip_prefix(repository) else {
        return false;
    };
    rest.is_empty() || rest.starts_with(':') || rest.starts_with('@')
}

/// Reads a simple-signing payload (already verified).
pub fn read_payload(payload: &[u8]) -> Result<SignedImage, Refusal> {
    let malformed = |m: &str| Refusal::MalformedPayload(m.to_string());
    let value = crate::json::value_of_go_structs(payload)
        .map_err(|e| Refusal::MalformedPayload(e.to_string()))?;
    let critical = value
        .get("critical")
        .and_then(|c| c.as_object())
        .ok_or_else(|| malformed("it has no critical object"))?;
    if critical.get("type").and_then(|t| t.as_str()) != Some(SIGNATURE_TYPE) {
        return Err(malformed(
            "its critical.type is not a cosign image signature",
        ));
    }
    let image = critical
        .get("image")
        .and_then(|i| i.as_object())
        .ok_or_else(|| malformed("it has no critical.image"))?;
    // cosign writes `docker-manifest-digest`; some signers `Docker-manifest-digest`.
    let spellings: Vec<&str> = ["docker-manifest-digest", "Docker-manifest-digest"]
        .iter()
        .filter_map(|key| image.get(*key))
        .map(|v| {
            v.as_str()
                .ok_or_else(|| malformed("its manifest digest is not a string"))
        })
        .collect::<Result<_, _>>()?;
    let digest = match spellings.as_slice() {
        [one] => one.to_string(),
        [a, b] if a == b => a.to_string(),
        [] => return Err(malformed("it has no critical.image.docker-manifest-digest")),
        _ => return Err(malformed("it names two different manifest digests")),
    };
    let docker_reference = critical
        .get("identity")
        .and_then(|i| i.get("docker-reference"))
        .and_then(|r| r.as_str())
        .map(str::to_string);
    Ok(SignedImage {
        digest,
        docker_reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's encoding/json (cosign) takes a later case variant of a field for the field: a
    /// payload with one beside the field names two images, so it is refused.
    #[test]
    fn a_payload_with_a_case_variant_of_a_field_is_refused() {
        let good = "sha256:".to_string() + &"a".repeat(64);
        let other = "sha256:".to_string() + &"b".repeat(64);
        let payload = |critical: &str| format!(r#"{{"critical":{{{critical}}},"optional":null}}"#);
        let image = |extra: &str| {
            format!(
                r#""identity":{{"docker-reference":"h/r"}},"image":{{"docker-manifest-digest":"{good}"{extra}}},"type":"{SIGNATURE_TYPE}""#
            )
        };
        let plain = payload(&image(""));
        assert_eq!(read_payload(plain.as_bytes()).unwrap().digest, good);
        for variant in [
            payload(&image(&format!(r#","Docker-Manifest-Digest":"{other}""#))),
            // The Kelvin sign folds to `k` in Go: `doc\u{212a}er-...` is `docker-...`.
            payload(&image(&format!(
                r#","doc\u212aer-manifest-digest":"{other}""#
            ))),
            format!(
                r#"{{"critical":{{{}}},"Critical":{{"image":{{"docker-manifest-digest":"{other}"}}}}}}"#,
                image("")
            ),
            payload(&format!(
                r#"{},"Identity":{{"docker-reference":"evil/r"}}"#,
                image("")
            )),
        ] {
            let refused = read_payload(variant.as_bytes());
            assert!(
                matches!(&refused, Err(Refusal::MalformedPayload(m)) if m.contains("one field to Go")),
                "{variant}: {refused:?}"
            );
        }
    }

    #[test]
    fn repositories_match_with_or_without_a_tag_but_not_as_a_prefix() {
        assert!(names_repository("h:5000/a/b", "h:5000/a/b"));
        assert!(names_repository("h:5000/a/b:tag", "h:5000/a/b"));
        assert!(!names_repository("h:5000/a/bc", "h:5000/a/b"));
        assert!(!names_repository("h:5000/a", "h:5000/a/b"));
    }

    #[test]
    fn a_signature_that_names_no_repository_is_refused_where_one_is_expected() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        use base64::Engine as _;
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let key = CosignKey::Ed25519(pair.public_key().as_ref().to_vec());
        let digest = crate::hash::Algorithm::Sha256.digest(b"manifest");
        let payload = |identity: &str| {
            format!(
                r#"{{"critical":{{{identity}"image":{{"docker-manifest-digest":"{}"}},"type":"{SIGNATURE_TYPE}"}},"optional":null}}"#,
                digest.prefixed()
            )
        };
        let check = |payload: &str, repository: Option<&str>| {
            let signature = base64::engine::general_purpose::STANDARD
                .encode(pair.sign(payload.as_bytes()).as_ref());
            verify_simple_signing(
                SIMPLE_SIGNING,
                payload.as_bytes(),
                Some(&signature),
                &key,
                &digest,
                repository,
            )
        };
        let anonymous = payload("");
        assert!(check(&anonymous, None).is_ok());
        assert_eq!(
            check(&anonymous, Some("h:5000/a")),
            Err(Refusal::NoRepository {
                expected: "h:5000/a".into()
            })
        );
        let named = payload(r#""identity":{"docker-reference":"h:5000/a"},"#);
        assert!(check(&named, Some("h:5000/a")).is_ok());
        assert!(matches!(
            check(&named, Some("h:5000/b")),
            Err(Refusal::OtherRepository { .. })
        ));
    }

    #[test]
    fn the_payload_is_cosigns_bytes_and_reads_back() {
        let digest = crate::hash::Algorithm::Sha256.digest(b"manifest");
        let payload = simple_signing_payload("h:5000/a/b", &digest);
        assert_eq!(
            String::from_utf8(payload.clone()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"h:5000/a/b"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
                digest.prefixed()
            )
        );
        let read = read_payload(&payload).unwrap();
        assert_eq!(read.digest, digest.prefixed());
        assert_eq!(read.docker_reference.as_deref(), Some("h:5000/a/b"));
    }

    #[test]
    fn base64_with_newlines_decodes_like_go() {
        assert_eq!(decode_base64("aGVs\nbG8=\n").unwrap(), b"hello");
        assert!(decode_base64("not base64!").is_none());
    }
}
