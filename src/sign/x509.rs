//! Certificate-chain verification for the OMS certificate method, by model-signing's rules.
//!
//! model-signing checks the bundle's chain with OpenSSL against the certificates the verifier
//! trusts, at the leaf's notBefore time (the bundle carries no timestamp), then requires the
//! leaf to allow signing (KeyUsage digitalSignature or ExtendedKeyUsage codeSigning). Its own
//! test certificates mark the leaf `CA:TRUE`, which rustls-webpki refuses for an end entity,
//! so the path is checked here: each link's signature, issuer/subject names, validity at that
//! time, CA and keyCertSign for issuers, path length limits, and no unknown critical
//! extension. Name constraints are refused rather than ignored.

use std::time::SystemTime;

use aws_lc_rs::signature::{self, VerificationAlgorithm};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use super::keys::{KeyError, PublicKey, ID_EC_PUBLIC_KEY};

/// Why a certificate or a chain of them is not trusted or not usable. Certificates are
/// named by their subjects.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// `what` (e.g. `trusted certificate 2`) is not DER X.509.
    #[error("{what} is not a valid certificate: {detail}")]
    Invalid { what: String, detail: String },
    #[error("'{subject}' has a malformed extension {oid}: {detail}")]
    MalformedExtension {
        subject: String,
        oid: String,
        detail: String,
    },
    /// `at` says which time the chain was judged at.
    #[error("'{subject}' is not valid at {at} (valid {not_before} to {not_after})")]
    NotValidAt {
        subject: String,
        at: String,
        not_before: String,
        not_after: String,
    },
    #[error("'{0}' has name constraints, which vouch does not evaluate")]
    NameConstraints(String),
    #[error("'{subject}' has an unknown critical extension {oid}")]
    UnknownCriticalExtension { subject: String, oid: String },
    #[error("'{subject}' allows {limit} CA certificates below it")]
    PathLength { subject: String, limit: u8 },
    #[error("'{0}' issued a certificate but is not a CA")]
    NotCa(String),
    #[error("'{0}' issued a certificate but its key usage excludes keyCertSign")]
    NoKeyCertSign(String),
    #[error("'{issuer}' signed with algorithm {algorithm} and key type {key_type}, which vouch does not verify")]
    UnsupportedAlgorithm {
        issuer: String,
        algorithm: String,
        key_type: String,
    },
    /// The path reached a trusted certificate that is no root, whose issuer is not found.
    #[error(
        "the chain reaches the trusted certificate '{trusted}', which is not a self-signed root, \
         and its issuer '{issuer}' is neither trusted nor in the bundle's chain; trust the root \
         certificate, or allow partial chains to let an intermediate end the chain"
    )]
    EndsBelowRoot { trusted: String, issuer: String },
    #[error(
        "the chain does not lead to a trusted certificate: '{subject}' was issued by '{issuer}', which is neither \
         trusted nor in the bundle's chain (or its signature does not verify)"
    )]
    Untrusted { subject: String, issuer: String },
    #[error("the certificate chain is longer than {MAX_DEPTH}")]
    TooLong,
    #[error("the signing certificate '{0}' allows neither digitalSignature nor codeSigning")]
    LeafCannotSign(String),
    #[error("the signing certificate's key does not encode: {0}")]
    LeafKeyEncoding(String),
    #[error("the signing certificate's key: {0}")]
    LeafKey(KeyError),
    #[error("{0}")]
    Pem(KeyError),
    #[error("no CERTIFICATE block in the PEM file")]
    NoCertificateBlock,
}

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const NAME_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.30");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Extensions understood here or harmless to accept when critical.
const KNOWN_CRITICAL: [&str; 5] = [
    "2.5.29.19",
    "2.5.29.15",
    "2.5.29.37",
    "2.5.29.17",
    "2.5.29.32",
];
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const MAX_DEPTH: usize = 8;

/// The verified signer.
#[derive(Debug)]
pub struct VerifiedLeaf {
    pub key: PublicKey,
    /// The leaf's subject, e.g. `CN=release-signer`.
    pub subject: String,
}

/// A certificate with its raw to-be-signed bytes.
struct Parsed {
    cert: Certificate,
    tbs: Vec<u8>,
}

impl Parsed {
    fn new(der: &[u8], what: &str) -> Result<Parsed, CertificateError> {
        let invalid = |e: x509_cert::der::Error| CertificateError::Invalid {
            what: what.to_string(),
            detail: e.to_string(),
        };
        let cert = Certificate::from_der(der).map_err(invalid)?;
        let tbs = raw_tbs(der).map_err(invalid)?;
        Ok(Parsed { cert, tbs })
    }

    fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    fn extension<T: for<'a> Decode<'a>>(
        &self,
        oid: ObjectIdentifier,
    ) -> Result<Option<T>, CertificateError> {
        let Some(extensions) = &self.cert.tbs_certificate.extensions else {
            return Ok(None);
        };
        match extensions.iter().find(|e| e.extn_id == oid) {
            None => Ok(None),
            Some(e) => T::from_der(e.extn_value.as_bytes())
                .map(Some)
                .map_err(|err| CertificateError::MalformedExtension {
                    subject: self.subject(),
                    oid: oid.to_string(),
                    detail: err.to_string(),
                }),
        }
    }

    fn valid_at(&self, time: &JudgedAt) -> Result<(), CertificateError> {
        let validity = &self.cert.tbs_certificate.validity;
        if time.time < validity.not_before.to_system_time()
            || time.time > validity.not_after.to_system_time()
        {
            return Err(CertificateError::NotValidAt {
                subject: self.subject(),
                at: time.what.clone(),
                not_before: validity.not_before.to_string(),
                not_after: validity.not_after.to_string(),
            });
        }
        Ok(())
    }

    fn check_critical_extensions(&self) -> Result<(), CertificateError> {
        for extension in self.cert.tbs_certificate.extensions.iter().flatten() {
            if extension.extn_id == NAME_CONSTRAINTS {
                return Err(CertificateError::NameConstraints(self.subject()));
            }
            if extension.critical
                && !KNOWN_CRITICAL.contains(&extension.extn_id.to_string().as_str())
            {
                return Err(CertificateError::UnknownCriticalExtension {
                    subject: self.subject(),
                    oid: extension.extn_id.to_string(),
                });
            }
        }
        Ok(())
    }

    /// This certificate may issue others: CA, keyCertSign if key usage is given, and a path
    /// length limit that allows `below` more CA certificates beneath it.
    fn check_issuer(&self, below: usize, anchor: bool) -> Result<(), CertificateError> {
        match self.extension::<BasicConstraints>(BASIC_CONSTRAINTS)? {
            Some(bc) if bc.ca => {
                if let Some(limit) = bc.path_len_constraint {
                    if below > usize::from(limit) {
                        return Err(CertificateError::PathLength {
                            subject: self.subject(),
                            limit,
                        });
                    }
                }
            }
            // A trust anchor without basic constraints (an X.509 v1 root) is accepted, as OpenSSL does.
            None if anchor => {}
            _ => return Err(CertificateError::NotCa(self.subject())),
        }
        if let Some(usage) = self.extension::<KeyUsage>(KEY_USAGE)? {
            if !usage.0.contains(KeyUsages::KeyCertSign) {
                return Err(CertificateError::NoKeyCertSign(self.subject()));
            }
        }
        Ok(())
    }

    /// A root: issued by itself, and signed by its own key.
    fn is_self_signed(&self) -> bool {
        self.subject() == self.issuer() && self.signed_by(self).unwrap_or(false)
    }

    /// Whether `self` was signed by `issuer`'s key.
    fn signed_by(&self, issuer: &Parsed) -> Result<bool, CertificateError> {
        let spki = &issuer.cert.tbs_certificate.subject_public_key_info;
        let key = spki.subject_public_key.raw_bytes();
        let algorithm = signature_algorithm(
            &self.cert.signature_algorithm.oid,
            &spki.algorithm,
            &issuer.subject(),
        )?;
        let signature = self.cert.signature.raw_bytes();
        Ok(signature::UnparsedPublicKey::new(algorithm, key)
            .verify(&self.tbs, signature)
            .is_ok())
    }
}

/// Checks `chain` (leaf first, then the bundle's intermediates) against `anchors`, the
/// certificates the verifier trusts. Returns the leaf's key and subject.
///
/// The path must end in a self-signed trusted root, as OpenSSL (and so model-signing)
/// requires: a trusted certificate that is not self-signed is one more link whose issuer
/// must be found too, unless `allow_partial` makes any trusted certificate end the path
/// (OpenSSL's partial chains).
pub fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    allow_partial: bool,
) -> Result<VerifiedLeaf, CertificateError> {
    let leaf = Parsed::new(&chain[0], "the signing certificate")?;
    let time = JudgedAt {
        time: leaf
            .cert
            .tbs_certificate
            .validity
            .not_before
            .to_system_time(),
        what: "the signing certificate's issue time".to_string(),
    };
    verify_path(&leaf, &chain[1..], anchors, allow_partial, &time)?;
    Ok(VerifiedLeaf {
        key: leaf_key(&leaf)?,
        subject: leaf.subject(),
    })
}

/// The time a chain is judged at, and how a refusal names it (e.g. "the Rekor entry's
/// integrated time 2023-01-20T20:51:33Z").
#[derive(Clone, Debug)]
pub struct JudgedAt {
    pub time: SystemTime,
    pub what: String,
}

/// As [`verify_chain`], with every certificate judged valid at `time` (not at the leaf's
/// issue time), and whatever the leaf's key type: the caller reads the key.
pub fn verify_chain_at(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    allow_partial: bool,
    time: &JudgedAt,
) -> Result<(), CertificateError> {
    let leaf = Parsed::new(&chain[0], "the signing certificate")?;
    verify_path(&leaf, &chain[1..], anchors, allow_partial, time)
}

fn verify_path(
    leaf: &Parsed,
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    allow_partial: bool,
    time: &JudgedAt,
) -> Result<(), CertificateError> {
    let intermediates: Vec<Parsed> = chain
        .iter()
        .enumerate()
        .map(|(i, der)| Parsed::new(der, &format!("certificate {} of the bundle's chain", i + 2)))
        .collect::<Result<_, _>>()?;
    let anchors: Vec<Parsed> = anchors
        .iter()
        .enumerate()
        .map(|(i, der)| Parsed::new(der, &format!("trusted certificate {}", i + 1)))
        .collect::<Result<_, _>>()?;

    check_leaf(leaf)?;
    let mut used = vec![false; intermediates.len()];
    let mut current = leaf;
    // The last trusted certificate passed that was not a root, for the error.
    let mut partial: Option<String> = None;
    for depth in 0..MAX_DEPTH {
        current.valid_at(time)?;
        current.check_critical_extensions()?;
        let issuer_name = current.issuer();
        let trusted = anchors
            .iter()
            .filter(|a| a.subject() == issuer_name)
            .find(|a| current.signed_by(a).unwrap_or(false));
        if let Some(anchor) = trusted {
            anchor.valid_at(time)?;
            // A self-signed root (or, with partial chains, any trusted certificate) ends the path.
            if allow_partial || anchor.is_self_signed() {
                anchor.check_issuer(depth, true)?;
                return Ok(());
            }
            anchor.check_issuer(depth, false)?;
            partial = Some(anchor.subject());
            current = anchor;
            continue;
        }
        let next = intermediates.iter().enumerate().find(|(i, candidate)| {
            !used[*i]
                && candidate.subject() == issuer_name
                && current.signed_by(candidate).unwrap_or(false)
        });
        let Some((index, issuer)) = next else {
            if let Some(trusted) = partial {
                return Err(CertificateError::EndsBelowRoot {
                    trusted,
                    issuer: issuer_name,
                });
            }
            return Err(CertificateError::Untrusted {
                subject: current.subject(),
                issuer: issuer_name,
            });
        };
        issuer.check_issuer(depth, false)?;
        used[index] = true;
        current = issuer;
    }
    Err(CertificateError::TooLong)
}

/// The leaf must allow signing, by model-signing's rule.
fn check_leaf(leaf: &Parsed) -> Result<(), CertificateError> {
    let signs = leaf
        .extension::<KeyUsage>(KEY_USAGE)?
        .is_some_and(|usage| usage.0.contains(KeyUsages::DigitalSignature));
    let code_signing = leaf
        .extension::<ExtendedKeyUsage>(EXT_KEY_USAGE)?
        .is_some_and(|eku| eku.0.contains(&CODE_SIGNING));
    if signs || code_signing {
        Ok(())
    } else {
        Err(CertificateError::LeafCannotSign(leaf.subject()))
    }
}

fn leaf_key(leaf: &Parsed) -> Result<PublicKey, CertificateError> {
    let spki = leaf
        .cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| CertificateError::LeafKeyEncoding(e.to_string()))?;
    PublicKey::from_spki(&spki).map_err(CertificateError::LeafKey)
}

/// The raw bytes of the TBSCertificate, exactly as signed (never re-encoded).
pub(super) fn raw_tbs(der: &[u8]) -> x509_cert::der::Result<Vec<u8>> {
    let mut reader = SliceReader::new(der)?;
    Header::decode(&mut reader)?;
    Ok(reader.tlv_bytes()?.to_vec())
}

/// The verification algorithm for a certificate signature `oid` made with a key of `issuer_key`.
fn signature_algorithm(
    oid: &ObjectIdentifier,
    issuer_key: &x509_cert::spki::AlgorithmIdentifierOwned,
    issuer: &str,
) -> Result<&'static dyn VerificationAlgorithm, CertificateError> {
    let curve = || {
        (issuer_key.oid == ID_EC_PUBLIC_KEY)
            .then(|| {
                issuer_key
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            })
            .flatten()
            .map(|c| c.to_string())
    };
    let rsa = issuer_key.oid == RSA_ENCRYPTION;
    let algorithm: &'static dyn VerificationAlgorithm =
        match (oid.to_string().as_str(), rsa, curve().as_deref()) {
            ("1.2.840.113549.1.1.11", true, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
            ("1.2.840.113549.1.1.12", true, _) => &signature::RSA_PKCS1_2048_8192_SHA384,
            ("1.2.840.113549.1.1.13", true, _) => &signature::RSA_PKCS1_2048_8192_SHA512,
            ("1.2.840.10045.4.3.2", _, Some("1.2.840.10045.3.1.7")) => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            ("1.2.840.10045.4.3.2", _, Some("1.3.132.0.34")) => &signature::ECDSA_P384_SHA256_ASN1,
            ("1.2.840.10045.4.3.2", _, Some("1.3.132.0.35")) => &signature::ECDSA_P521_SHA256_ASN1,
            ("1.2.840.10045.4.3.3", _, Some("1.2.840.10045.3.1.7")) => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            ("1.2.840.10045.4.3.3", _, Some("1.3.132.0.34")) => &signature::ECDSA_P384_SHA384_ASN1,
            ("1.2.840.10045.4.3.3", _, Some("1.3.132.0.35")) => &signature::ECDSA_P521_SHA384_ASN1,
            ("1.2.840.10045.4.3.4", _, Some("1.2.840.10045.3.1.7")) => {
                &signature::ECDSA_P256_SHA512_ASN1
            }
            ("1.2.840.10045.4.3.4", _, Some("1.3.132.0.34")) => &signature::ECDSA_P384_SHA512_ASN1,
            ("1.2.840.10045.4.3.4", _, Some("1.3.132.0.35")) => &signature::ECDSA_P521_SHA512_ASN1,
            ("1.3.101.112", _, _) if issuer_key.oid == ED25519 => &signature::ED25519,
            (other, _, _) => {
                return Err(CertificateError::UnsupportedAlgorithm {
                    issuer: issuer.to_string(),
                    algorithm: other.to_string(),
                    key_type: issuer_key.oid.to_string(),
                })
            }
        };
    Ok(algorithm)
}

/// The public key a certificate (DER) holds.
pub fn certificate_key(der: &[u8]) -> Result<PublicKey, CertificateError> {
    leaf_key(&Parsed::new(der, "the signing certificate")?)
}

/// The certificates (DER) of a PEM file, in order.
pub fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, CertificateError> {
    let certificates: Vec<Vec<u8>> = super::keys::pem_blocks(text)
        .map_err(CertificateError::Pem)?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if certificates.is_empty() {
        return Err(CertificateError::NoCertificateBlock);
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    fn params(name: &str, ca: Option<BasicConstraints>) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        match ca {
            Some(constraints) => {
                p.is_ca = IsCa::Ca(constraints);
                p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
            }
            None => {
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
            }
        }
        p
    }

    /// root -> intermediate -> leaf, each editable before signing.
    fn chain(
        edit_root: impl Fn(&mut CertificateParams),
        edit_intermediate: impl Fn(&mut CertificateParams),
        edit_leaf: impl Fn(&mut CertificateParams),
    ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let root_key = KeyPair::generate().unwrap();
        let mut root = params("root", Some(BasicConstraints::Unconstrained));
        edit_root(&mut root);
        let root_der = root.self_signed(&root_key).unwrap().der().to_vec();
        let int_key = KeyPair::generate().unwrap();
        let mut intermediate = params("intermediate", Some(BasicConstraints::Unconstrained));
        edit_intermediate(&mut intermediate);
        let int_der = intermediate
            .signed_by(&int_key, &Issuer::from_params(&root, &root_key))
            .unwrap()
            .der()
            .to_vec();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = params("leaf", None);
        edit_leaf(&mut leaf);
        let leaf_der = leaf
            .signed_by(&leaf_key, &Issuer::from_params(&intermediate, &int_key))
            .unwrap()
            .der()
            .to_vec();
        (root_der, int_der, leaf_der)
    }

    fn check(chain: (Vec<u8>, Vec<u8>, Vec<u8>)) -> Result<VerifiedLeaf, CertificateError> {
        let (root, intermediate, leaf) = chain;
        verify_chain(&[leaf, intermediate], &[root], false)
    }

    #[test]
    fn a_proper_chain_verifies() {
        let leaf = check(chain(|_| {}, |_| {}, |_| {})).unwrap();
        assert_eq!(leaf.subject, "CN=leaf");
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases: Vec<(Result<VerifiedLeaf, CertificateError>, &str)> = vec![
            (
                check(chain(
                    |_| {},
                    |_| {},
                    |l| {
                        l.key_usages.clear();
                        l.extended_key_usages.clear();
                    },
                )),
                "allows neither",
            ),
            (
                check(chain(|_| {}, |i| i.is_ca = IsCa::ExplicitNoCa, |_| {})),
                "is not a CA",
            ),
            (
                check(chain(
                    |_| {},
                    |i| i.key_usages = vec![KeyUsagePurpose::DigitalSignature],
                    |_| {},
                )),
                "keyCertSign",
            ),
            (
                check(chain(
                    |r| r.is_ca = IsCa::Ca(BasicConstraints::Constrained(0)),
                    |_| {},
                    |_| {},
                )),
                "allows 0",
            ),
            (
                check(chain(
                    |_| {},
                    |i| i.not_before = rcgen::date_time_ymd(2030, 1, 1),
                    |_| {},
                )),
                "not valid at",
            ),
            (
                check(chain(
                    |_| {},
                    |_| {},
                    |l| {
                        let mut extension =
                            CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![0x05, 0x00]);
                        extension.set_criticality(true);
                        l.custom_extensions.push(extension);
                    },
                )),
                "unknown critical extension",
            ),
        ];
        for (result, needle) in cases {
            let err = result.expect_err(needle).to_string();
            assert!(err.contains(needle), "expected '{needle}' in: {err}");
        }
    }

    #[test]
    fn a_chain_to_another_root_does_not_verify() {
        let (_, intermediate, leaf) = chain(|_| {}, |_| {}, |_| {});
        let (other_root, _, _) = chain(|_| {}, |_| {}, |_| {});
        let err = verify_chain(&[leaf, intermediate], &[other_root], false).unwrap_err();
        assert!(
            matches!(&err, CertificateError::Untrusted { subject, .. } if subject == "CN=intermediate"),
            "{err}"
        );
    }

    #[test]
    fn an_intermediate_ends_the_chain_only_when_partial_chains_are_allowed() {
        let (root, intermediate, leaf) = chain(|_| {}, |_| {}, |_| {});
        let err = verify_chain(
            std::slice::from_ref(&leaf),
            std::slice::from_ref(&intermediate),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(&err, CertificateError::EndsBelowRoot { trusted, .. } if trusted == "CN=intermediate"),
            "{err}"
        );
        let leaf_only = verify_chain(
            std::slice::from_ref(&leaf),
            std::slice::from_ref(&intermediate),
            true,
        )
        .unwrap();
        assert_eq!(leaf_only.subject, "CN=leaf");
        // Trusting both, the path goes on from the intermediate to the root.
        verify_chain(&[leaf], &[intermediate, root], false).unwrap();
    }
}
