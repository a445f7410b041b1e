//! Elliptic-curve keys as model-signing uses them: P-256 with SHA-256, P-384 with SHA-384,
//! P-521 with SHA-512, in PEM — PKCS#8 or SEC1, encrypted or not — and signatures in DER.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair,
};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::hash::Algorithm;

/// Why a PEM file holds no key vouch can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not PEM: {0}")]
    NotPem(String),
    #[error("no PEM block found (expected -----BEGIN ...-----)")]
    NoPemBlock,
    #[error("no PUBLIC KEY block in the PEM file")]
    NoPublicKeyBlock,
    #[error("no PRIVATE KEY, ENCRYPTED PRIVATE KEY or EC PRIVATE KEY block in the PEM file")]
    NoPrivateKeyBlock,
    #[error("not a public key: {0}")]
    NotPublicKey(String),
    /// The key's algorithm (an object identifier) is not elliptic-curve.
    #[error("the key's algorithm {0} is not an elliptic-curve key (model signing uses P-256, P-384 or P-521)")]
    NotElliptic(String),
    #[error("the key's curve is not P-256, P-384 or P-521")]
    UnsupportedCurve,
    #[error("the key is not a P-256, P-384 or P-521 elliptic-curve private key")]
    NotEcPrivateKey,
    /// The key is encrypted and no password was given (the caller says how to give one).
    #[error("the key is encrypted and no password was given")]
    PasswordNeeded,
    #[error("malformed encrypted PKCS#8 key: {0}")]
    MalformedEncrypted(String),
    #[error("cannot decrypt the key: wrong password, or an unsupported cipher")]
    Pkcs8Decryption,
    /// OpenSSL's traditional encryption could not be undone.
    #[error(transparent)]
    Legacy(#[from] super::legacy_pem::LegacyPemError),
}

pub const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// A NIST curve, each with the hash model-signing pairs it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub(crate) const ALL: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];

    fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        match *oid {
            SECP256R1 => Some(Curve::P256),
            SECP384R1 => Some(Curve::P384),
            SECP521R1 => Some(Curve::P521),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    pub(crate) fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        }
    }

    /// ECDSA with the curve's own hash (DER signatures).
    fn verification(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1,
        }
    }

    /// ECDSA with SHA-256 whatever the curve: model-signing 0.2 signed that way.
    fn verification_sha256(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA256_ASN1,
            Curve::P521 => &signature::ECDSA_P521_SHA256_ASN1,
        }
    }
}

/// An EC public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub curve: Curve,
    /// SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// The uncompressed point.
    point: Vec<u8>,
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo (DER) holding a P-256, P-384 or P-521 key.
    pub fn from_spki(der: &[u8]) -> Result<PublicKey, KeyError> {
        let info = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|e| KeyError::NotPublicKey(e.to_string()))?;
        if info.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(KeyError::NotElliptic(info.algorithm.oid.to_string()));
        }
        let curve = info
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .and_then(|oid| Curve::from_oid(&oid))
            .ok_or(KeyError::UnsupportedCurve)?;
        let point = info.subject_public_key.raw_bytes().to_vec();
        Ok(PublicKey {
            curve,
            spki: der.to_vec(),
            point,
        })
    }

    /// Reads a `PUBLIC KEY` PEM.
    pub fn from_pem(text: &[u8]) -> Result<PublicKey, KeyError> {
        let block = pem_blocks(text)?
            .into_iter()
            .find(|b| b.tag() == "PUBLIC KEY")
            .ok_or(KeyError::NoPublicKeyBlock)?;
        PublicKey::from_spki(block.contents())
    }

    /// The key as PEM text, the way Python's cryptography writes it (64-column base64).
    pub fn pem(&self) -> String {
        let block = pem::Pem::new("PUBLIC KEY", self.spki.clone());
        pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// model-signing's key hint: hex SHA-256 of the key's PEM text.
    pub fn hint(&self) -> String {
        Algorithm::Sha256.digest(self.pem().as_bytes()).hex()
    }

    /// Checks an ECDSA (DER) signature over `message` with the curve's hash.
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(self.curve.verification(), &self.point)
            .verify(message, signature_der)
            .is_ok()
    }

    /// Checks an ECDSA (DER) signature over the message whose SHA-256, -384 or -512 is
    /// `digest` (the hash a Sigstore message signature names; false for another hash).
    pub fn verify_digest(&self, digest: &aws_lc_rs::digest::Digest, signature_der: &[u8]) -> bool {
        use aws_lc_rs::digest::{SHA256, SHA384, SHA512};
        let hash = digest.algorithm();
        let algorithm = match (self.curve, hash) {
            (Curve::P256, h) if h == &SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
            (Curve::P256, h) if h == &SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
            (Curve::P256, h) if h == &SHA512 => &signature::ECDSA_P256_SHA512_ASN1,
            (Curve::P384, h) if h == &SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
            (Curve::P384, h) if h == &SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
            (Curve::P384, h) if h == &SHA512 => &signature::ECDSA_P384_SHA512_ASN1,
            (Curve::P521, h) if h == &SHA256 => &signature::ECDSA_P521_SHA256_ASN1,
            (Curve::P521, h) if h == &SHA384 => &signature::ECDSA_P521_SHA384_ASN1,
            (Curve::P521, h) if h == &SHA512 => &signature::ECDSA_P521_SHA512_ASN1,
            _ => return false,
        };
        signature::UnparsedPublicKey::new(algorithm, &self.point)
            .verify_digest(digest, signature_der)
            .is_ok()
    }

    /// Checks a signature made the way model-signing 0.2 made it (SHA-256 on any curve).
    pub fn verify_sha256(&self, message: &[u8], signature_der: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(self.curve.verification_sha256(), &self.point)
            .verify(message, signature_der)
            .is_ok()
    }
}

/// A private key ready to sign.
pub struct PrivateKey {
    pair: EcdsaKeyPair,
    curve: Curve,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.curve.name())
    }
}

impl PrivateKey {
    /// Reads a private key PEM: `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY` (PKCS#8,
    /// PBES2), or `EC PRIVATE KEY` (SEC1, optionally with OpenSSL's legacy encryption).
    pub fn from_pem(text: &[u8], password: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        let blocks = pem_blocks(text)?;
        let block = blocks
            .iter()
            .find(|b| {
                matches!(
                    b.tag(),
                    "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "EC PRIVATE KEY"
                )
            })
            .ok_or(KeyError::NoPrivateKeyBlock)?;
        let der = match block.tag() {
            "ENCRYPTED PRIVATE KEY" => {
                let password = password.ok_or(KeyError::PasswordNeeded)?;
                let info = pkcs8::EncryptedPrivateKeyInfo::try_from(block.contents())
                    .map_err(|e| KeyError::MalformedEncrypted(e.to_string()))?;
                info.decrypt(password)
                    .map_err(|_| KeyError::Pkcs8Decryption)?
                    .as_bytes()
                    .to_vec()
            }
            "EC PRIVATE KEY"
                if block
                    .headers()
                    .get("Proc-Type")
                    .is_some_and(|p| p.contains("ENCRYPTED")) =>
            {
                let password = password.ok_or(KeyError::PasswordNeeded)?;
                super::legacy_pem::decrypt(block, password)?
            }
            _ => block.contents().to_vec(),
        };
        let (curve, pair) = Curve::ALL
            .into_iter()
            .find_map(|curve| {
                EcdsaKeyPair::from_private_key_der(curve.signing(), &der)
                    .ok()
                    .map(|p| (curve, p))
            })
            .ok_or(KeyError::NotEcPrivateKey)?;
        Ok(PrivateKey { pair, curve })
    }

    pub fn public_key(&self) -> PublicKey {
        let spki = self
            .pair
            .public_key()
            .as_der()
            .expect("an EC public key always encodes")
            .as_ref()
            .to_vec();
        PublicKey {
            curve: self.curve,
            spki,
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// An ECDSA signature (DER) over `message` with the curve's hash.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .expect("ECDSA signing with a valid key does not fail")
            .as_ref()
            .to_vec()
    }
}

/// The PEM blocks of a file, with a message that says what went wrong.
pub fn pem_blocks(text: &[u8]) -> Result<Vec<pem::Pem>, KeyError> {
    let blocks = pem::parse_many(text).map_err(|e| KeyError::NotPem(e.to_string()))?;
    if blocks.is_empty() {
        return Err(KeyError::NoPemBlock);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_curve_sign_and_verify() {
        for curve in Curve::ALL {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(curve.signing(), &rng).unwrap();
            let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
            let key = PrivateKey::from_pem(pem.as_bytes(), None).unwrap();
            assert_eq!(key.curve, curve);
            let public = key.public_key();
            let signature = key.sign(b"message");
            assert!(public.verify(b"message", &signature));
            assert!(!public.verify(b"massage", &signature));
            let hash = match curve {
                Curve::P256 => &aws_lc_rs::digest::SHA256,
                Curve::P384 => &aws_lc_rs::digest::SHA384,
                Curve::P521 => &aws_lc_rs::digest::SHA512,
            };
            let digest = aws_lc_rs::digest::digest(hash, b"message");
            assert!(public.verify_digest(&digest, &signature));
            let other = aws_lc_rs::digest::digest(hash, b"massage");
            assert!(!public.verify_digest(&other, &signature));
            let reread = PublicKey::from_pem(public.pem().as_bytes()).unwrap();
            assert_eq!(reread, public);
            assert_eq!(public.hint().len(), 64);
        }
    }

    #[test]
    fn bad_keys_are_explained() {
        assert!(matches!(
            PrivateKey::from_pem(b"garbage", None),
            Err(KeyError::NotPem(_) | KeyError::NoPemBlock)
        ));
        let cert_only = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            PrivateKey::from_pem(cert_only.as_bytes(), None).unwrap_err(),
            KeyError::NoPrivateKeyBlock
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(
            PrivateKey::from_pem(encrypted.as_bytes(), None).unwrap_err(),
            KeyError::PasswordNeeded
        );
    }
}
