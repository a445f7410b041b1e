//! Private keys for cosign's legacy image signatures (`cosign sign --key`), and signing with
//! them.
//!
//! A key file is PEM: PKCS#8 `PRIVATE KEY` (ECDSA, Ed25519 or RSA), PKCS#8 `ENCRYPTED
//! PRIVATE KEY`, SEC1 `EC PRIVATE KEY` (optionally with OpenSSL's traditional encryption),
//! PKCS#1 `RSA PRIVATE KEY`, or the format `cosign generate-key-pair` writes:
//! `ENCRYPTED COSIGN PRIVATE KEY` (`ENCRYPTED SIGSTORE PRIVATE KEY` in newer releases), whose
//! body is JSON naming a scrypt key derivation and a NaCl secretbox (XSalsa20-Poly1305)
//! holding the PKCS#8 DER of the key.
//!
//! The signature is over the exact payload bytes: ECDSA with the curve's hash (DER), Ed25519,
//! or RSA PKCS#1 v1.5 with SHA-256, as cosign signs with each kind of key.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use crypto_secretbox::aead::Aead;
use crypto_secretbox::{KeyInit, XSalsa20Poly1305};

use super::cosign::CosignKey;
use super::keys::{pem_blocks, Curve, PublicKey};

/// The PEM labels of cosign's encrypted key format.
pub const COSIGN_ENCRYPTED_LABELS: [&str; 2] = [
    "ENCRYPTED COSIGN PRIVATE KEY",
    "ENCRYPTED SIGSTORE PRIVATE KEY",
];

/// The most scrypt's N may be in an encrypted key (cosign writes 32768; sigstore-rs 65536).
pub const MAX_SCRYPT_N: u64 = 1 << 20;
/// The most scrypt's r may be (cosign writes 8).
pub const MAX_SCRYPT_R: u64 = 32;
/// The most scrypt's p may be (cosign writes 1).
pub const MAX_SCRYPT_P: u64 = 16;
/// The most memory the derivation may take (128 · N · r bytes).
pub const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// The most mixing the derivation may do in all (128 · N · r · p bytes).
pub const MAX_SCRYPT_WORK: u64 = 2 << 30;

/// Why a key file gives no key to sign with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrivateKeyError {
    #[error(transparent)]
    Pem(#[from] super::keys::KeyError),
    #[error("it holds no private key block (expected PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY, ENCRYPTED PRIVATE KEY or ENCRYPTED COSIGN PRIVATE KEY)")]
    NoPrivateKey,
    #[error("its {label} block is malformed: {reason}")]
    Malformed { label: String, reason: String },
    #[error("its key derivation asks for scrypt with N={n}, r={r}, p={p}, more than vouch allows (N a power of two at most 2^20, r at most 32, p at most 16, 128·N·r at most 1 GiB of memory and 128·N·r·p at most 2 GiB of work)")]
    TooCostly { n: u64, r: u64, p: u64 },
    #[error("it uses {what} {name}, not {expected}")]
    UnsupportedScheme {
        what: &'static str,
        name: String,
        expected: &'static str,
    },
    #[error("cannot decrypt it: wrong password (or the file was altered)")]
    WrongPassword,
    #[error("the key inside is not an ECDSA P-256/P-384/P-521, Ed25519 or RSA private key")]
    UnsupportedKey,
}

/// A private key cosign signs images with.
pub enum CosignSigner {
    Ecdsa { pair: EcdsaKeyPair, curve: Curve },
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for CosignSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CosignSigner({})", self.describe())
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

impl CosignSigner {
    /// Reads a private key PEM; `password` opens an encrypted one (cosign's format, PKCS#8
    /// PBES2, OpenSSL's traditional encryption), and is not used otherwise.
    pub fn from_pem(text: &[u8], password: &[u8]) -> Result<CosignSigner, PrivateKeyError> {
        let blocks = pem_blocks(text)?;
        let block = blocks
            .iter()
            .find(|b| {
                COSIGN_ENCRYPTED_LABELS.contains(&b.tag())
                    || matches!(
                        b.tag(),
                        "PRIVATE KEY"
                            | "ENCRYPTED PRIVATE KEY"
                            | "EC PRIVATE KEY"
                            | "RSA PRIVATE KEY"
                    )
            })
            .ok_or(PrivateKeyError::NoPrivateKey)?;
        let label = block.tag().to_string();
        match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(block.contents())
                .map(CosignSigner::Rsa)
                .map_err(|e| PrivateKeyError::Malformed {
                    label,
                    reason: format!("not a PKCS#1 RSA private key ({e})"),
                }),
            "EC PRIVATE KEY" => {
                let der = if block
                    .headers()
                    .get("Proc-Type")
                    .is_some_and(|p| p.contains("ENCRYPTED"))
                {
                    super::legacy_pem::decrypt(block, password).map_err(|e| match e {
                        super::legacy_pem::LegacyPemError::WrongPassword => {
                            PrivateKeyError::WrongPassword
                        }
                        other => PrivateKeyError::Malformed {
                            label: label.clone(),
                            reason: other.to_string(),
                        },
                    })?
                } else {
                    block.contents().to_vec()
                };
                ecdsa(&der).ok_or_else(|| PrivateKeyError::Malformed {
                    label,
                    reason: "not a P-256, P-384 or P-521 SEC1 private key".into(),
                })
            }
            "ENCRYPTED PRIVATE KEY" => {
                let info =
                    pkcs8::EncryptedPrivateKeyInfo::try_from(block.contents()).map_err(|e| {
                        PrivateKeyError::Malformed {
                            label: label.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                let der = info
                    .decrypt(password)
                    .map_err(|_| PrivateKeyError::WrongPassword)?;
                from_pkcs8(der.as_bytes())
            }
            "PRIVATE KEY" => from_pkcs8(block.contents()),
            _ => {
                let der = open_cosign(block.contents(), password).map_err(|e| match e {
                    Opening::Error(error) => error,
                    Opening::Malformed(reason) => PrivateKeyError::Malformed {
                        label: label.clone(),
                        reason,
                    },
                })?;
                from_pkcs8(&der)
            }
        }
    }

    /// The signature over `message`, as cosign makes it with this kind of key.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            CosignSigner::Ecdsa { pair, .. } => pair
                .sign(&rng, message)
                .expect("ECDSA signing with a valid key does not fail")
                .as_ref()
                .to_vec(),
            CosignSigner::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            CosignSigner::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .expect("RSA signing with a valid key does not fail");
                signature
            }
        }
    }

    /// The public key that verifies this key's signatures.
    pub fn public_key(&self) -> CosignKey {
        match self {
            CosignSigner::Ecdsa { pair, .. } => {
                let spki = pair
                    .public_key()
                    .as_der()
                    .expect("an EC public key always encodes");
                CosignKey::Ecdsa(
                    PublicKey::from_spki(spki.as_ref()).expect("an EC public key reads back"),
                )
            }
            CosignSigner::Ed25519(pair) => CosignKey::Ed25519(pair.public_key().as_ref().to_vec()),
            CosignSigner::Rsa(pair) => CosignKey::Rsa(pair.public_key().as_ref().to_vec()),
        }
    }

    /// The kind of key and signature, in words.
    pub fn describe(&self) -> String {
        match self {
            CosignSigner::Ecdsa { curve, .. } => {
                let hash = match curve {
                    Curve::P256 => "SHA-256",
                    Curve::P384 => "SHA-384",
                    Curve::P521 => "SHA-512",
                };
                format!("ECDSA {} with {hash}", curve.name())
            }
            CosignSigner::Ed25519(_) => "Ed25519".into(),
            CosignSigner::Rsa(pair) => format!(
                "RSA-{} PKCS#1 v1.5 with SHA-256",
                pair.public_modulus_len() * 8
            ),
        }
    }
}

fn ecdsa(der: &[u8]) -> Option<CosignSigner> {
    Curve::ALL.into_iter().find_map(|curve| {
        EcdsaKeyPair::from_private_key_der(curve.signing(), der)
            .ok()
            .map(|pair| CosignSigner::Ecdsa { pair, curve })
    })
}

/// A PKCS#8 private key of any kind cosign signs with.
fn from_pkcs8(der: &[u8]) -> Result<CosignSigner, PrivateKeyError> {
    if let Some(signer) = ecdsa(der) {
        return Ok(signer);
    }
    if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        return Ok(CosignSigner::Ed25519(pair));
    }
    if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
        return Ok(CosignSigner::Rsa(pair));
    }
    Err(PrivateKeyError::UnsupportedKey)
}

enum Opening {
    Error(PrivateKeyError),
    Malformed(String),
}

/// Opens cosign's encrypted key body (JSON) with `password`: the PKCS#8 DER inside. The
/// scrypt parameters are bounded before any work is done.
fn open_cosign(body: &[u8], password: &[u8]) -> Result<Vec<u8>, Opening> {
    use base64::Engine as _;
    let key: EncryptedKey =
        crate::json::from_slice(body).map_err(|e| Opening::Malformed(e.to_string()))?;
    if key.kdf.name != "scrypt" {
        return Err(Opening::Error(PrivateKeyError::UnsupportedScheme {
            what: "the key derivation",
            name: key.kdf.name,
            expected: "scrypt",
        }));
    }
    if key.cipher.name != "nacl/secretbox" {
        return Err(Opening::Error(PrivateKeyError::UnsupportedScheme {
            what: "the cipher",
            name: key.cipher.name,
            expected: "nacl/secretbox",
        }));
    }
    let KdfParams { n, r, p } = key.kdf.params;
    let params = scrypt_params(n, r, p).map_err(Opening::Error)?;
    let decode = |what: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| Opening::Malformed(format!("its {what} is not base64: {e}")))
    };
    let salt = decode("salt", &key.kdf.salt)?;
    let nonce = decode("nonce", &key.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &key.ciphertext)?;
    if nonce.len() != 24 {
        return Err(Opening::Malformed(format!(
            "its nonce has {} bytes, not the 24 of XSalsa20",
            nonce.len()
        )));
    }
    let mut secret = [0u8; 32];
    scrypt::scrypt(password, &salt, &params, &mut secret)
        .map_err(|e| Opening::Malformed(format!("scrypt: {e}")))?;
    let cipher = XSalsa20Poly1305::new(&secret.into());
    let plain = cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| Opening::Error(PrivateKeyError::WrongPassword))?;
    secret.fill(0);
    Ok(plain)
}

/// scrypt parameters within vouch's bounds.
fn scrypt_params(n: u64, r: u64, p: u64) -> Result<scrypt::Params, PrivateKeyError> {
    let too_costly = PrivateKeyError::TooCostly { n, r, p };
    let within = n.is_power_of_two()
        && (2..=MAX_SCRYPT_N).contains(&n)
        && (1..=MAX_SCRYPT_R).contains(&r)
        && (1..=MAX_SCRYPT_P).contains(&p)
        && 128 * n * r <= MAX_SCRYPT_MEMORY
        && 128 * n * r * p <= MAX_SCRYPT_WORK;
    if !within {
        return Err(too_costly);
    }
    scrypt::Params::new(n.trailing_zeros() as u8, r as u32, p as u32, 32).map_err(|_| too_costly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrypt_parameters_are_bounded_before_any_work() {
        assert!(scrypt_params(32768, 8, 1).is_ok());
        assert!(scrypt_params(65536, 8, 1).is_ok());
        assert!(scrypt_params(1 << 20, 8, 1).is_ok());
        for (n, r, p) in [
            (1u64 << 40, 8, 1),
            (1 << 21, 8, 1),
            (3 << 10, 8, 1),
            (0, 8, 1),
            (1, 8, 1),
            (1 << 20, 32, 1),
            (32768, 0, 1),
            (32768, 33, 1),
            (32768, 8, 17),
            (32768, 8, 0),
            (1 << 20, 8, 4),
        ] {
            assert_eq!(
                scrypt_params(n, r, p).unwrap_err(),
                PrivateKeyError::TooCostly { n, r, p },
                "N={n} r={r} p={p}"
            );
        }
    }

    #[test]
    fn every_kind_of_pkcs8_key_signs_what_its_public_key_verifies() {
        let rng = SystemRandom::new();
        let mut ders = vec![
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref()
                .to_vec(),
        ];
        let rsa = aws_lc_rs::rsa::PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .unwrap();
        ders.push(rsa.as_der().unwrap().as_ref().to_vec());
        for der in ders {
            let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
            let signer = CosignSigner::from_pem(pem.as_bytes(), b"").unwrap();
            let signature = signer.sign(b"payload");
            let key = signer.public_key();
            assert!(key.verify(b"payload", &signature), "{}", signer.describe());
            assert!(!key.verify(b"payloaD", &signature), "{}", signer.describe());
        }
    }

    #[test]
    fn malformed_encrypted_keys_say_what_is_wrong() {
        let pem = |body: &str| {
            pem::encode(&pem::Pem::new(
                "ENCRYPTED COSIGN PRIVATE KEY",
                body.as_bytes().to_vec(),
            ))
        };
        let read = |body: &str| CosignSigner::from_pem(pem(body).as_bytes(), b"").unwrap_err();
        assert!(matches!(
            read("not json"),
            PrivateKeyError::Malformed { .. }
        ));
        let other_kdf = r#"{"kdf":{"name":"pbkdf2","params":{"N":2,"r":1,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#;
        assert!(matches!(
            read(other_kdf),
            PrivateKeyError::UnsupportedScheme { .. }
        ));
        let short_nonce = r#"{"kdf":{"name":"scrypt","params":{"N":2,"r":1,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":"AAAA"},"ciphertext":""}"#;
        assert!(read(short_nonce).to_string().contains("24 of XSalsa20"));
        let duplicate = r#"{"kdf":{"name":"scrypt","params":{"N":2,"N":4,"r":1,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#;
        assert!(matches!(read(duplicate), PrivateKeyError::Malformed { .. }));
    }
}
