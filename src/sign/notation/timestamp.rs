//! RFC 3161 timestamp countersignatures (a TimeStampToken: CMS SignedData over a TSTInfo),
//! as Notation checks them: the token's signature by its signer certificate (named by its
//! ESS signingCertificate attribute), the signer's chain to a `tsa` store certificate at the
//! time it states, the signer's critical timeStamping-only extended key usage, and the
//! message imprint, which must be the hash of the envelope's signature bytes.
//! Revocation of the TSA's chain is not checked (it needs the network).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use std::time::{Duration, SystemTime};
use x509_cert::der::asn1::{Any, Int, ObjectIdentifier, OctetString};
use x509_cert::der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectKeyIdentifier};
use x509_cert::Certificate;

/// The largest token read.
const MAX_TOKEN_BYTES: usize = 1 << 20;
/// The most certificates a TSA chain may have.
const MAX_CHAIN: usize = 8;

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// The time a verified token states: its genTime give or take its accuracy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    pub earliest: SystemTime,
    pub latest: SystemTime,
}

impl Stamp {
    /// The time span in words.
    pub fn describe(&self) -> String {
        let show = |t: SystemTime| {
            jiff::Timestamp::try_from(t).map_or_else(|_| "?".into(), |t| t.to_string())
        };
        if self.earliest == self.latest {
            format!("at {}", show(self.earliest))
        } else {
            format!("between {} and {}", show(self.earliest), show(self.latest))
        }
    }
}

fn digest(algorithm: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match *algorithm {
        SHA1 => sha1::Sha1::digest(data).to_vec(),
        SHA256 => sha2::Sha256::digest(data).to_vec(),
        SHA384 => sha2::Sha384::digest(data).to_vec(),
        SHA512 => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

/// Verifies `token` as a timestamp of `signature` (the envelope's signature bytes) whose
/// signer chains to one of `roots`; returns the time it states, or why not.
pub(super) fn verify(token: &[u8], signature: &[u8], roots: &[Vec<u8>]) -> Result<Stamp, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the token is {} bytes, more than the {MAX_TOKEN_BYTES} vouch reads",
            token.len()
        ));
    }
    if roots.is_empty() {
        return Err("the trust policy names no tsa trust store".into());
    }
    let info = ContentInfo::from_der(token)
        .map_err(|e| format!("the token is not a CMS ContentInfo: {e}"))?;
    if info.content_type != SIGNED_DATA {
        return Err(format!(
            "the token holds {}, not SignedData",
            info.content_type
        ));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("the token's SignedData is malformed: {e}"))?;
    if signed.encap_content_info.econtent_type != TST_INFO {
        return Err("the token does not hold a TSTInfo".into());
    }
    let tst_der = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the token's TSTInfo is missing")?
        .decode_as::<OctetString>()
        .map_err(|e| format!("the token's TSTInfo is not an OCTET STRING: {e}"))?
        .into_bytes();
    let tst = TstInfo::parse(&tst_der).map_err(|e| format!("the TSTInfo is malformed: {e}"))?;
    let imprint = digest(&tst.imprint_algorithm, signature).ok_or_else(|| {
        format!(
            "the TSTInfo's message imprint uses the unsupported hash {}",
            tst.imprint_algorithm
        )
    })?;
    if imprint != tst.imprint {
        return Err("its message imprint is not the hash of this signature".into());
    }
    let certs: Vec<(Vec<u8>, Certificate)> = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(cert) => Some(cert.clone()),
            CertificateChoices::Other(_) => None,
        })
        .map(|cert| cert.to_der().map(|der| (der, cert)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("a token certificate cannot be encoded: {e}"))?;
    let [signer] = signed.signer_infos.0.as_slice() else {
        return Err(format!(
            "the token has {} signers, not one",
            signed.signer_infos.0.len()
        ));
    };
    let (leaf_der, leaf) = certs
        .iter()
        .find(|(_, cert)| identifies(&signer.sid, cert))
        .ok_or("the token does not carry its signer's certificate")?;
    check_signer_info(signer, &tst_der, leaf_der, leaf)?;
    let gen_time = tst.gen_time;
    check_tsa_leaf(leaf)?;
    tsa_chain(leaf_der, &certs, roots, gen_time)?;
    Ok(Stamp {
        earliest: gen_time.checked_sub(tst.accuracy).unwrap_or(gen_time),
        latest: gen_time + tst.accuracy,
    })
}

/// Whether `cert` is the one a SignerIdentifier names.
fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            cert.tbs_certificate.issuer == ias.issuer
                && cert.tbs_certificate.serial_number == ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            super::extension::<SubjectKeyIdentifier>(cert, SUBJECT_KEY_IDENTIFIER)
                .ok()
                .flatten()
                .is_some_and(|own| own == *ski)
        }
    }
}

/// The SignerInfo: its signed attributes say the content is a TSTInfo, hash it, and name
/// the signer's certificate; and its signature over them verifies with that certificate.
fn check_signer_info(
    signer: &SignerInfo,
    tst_der: &[u8],
    leaf_der: &[u8],
    leaf: &Certificate,
) -> Result<(), String> {
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or("the token has no signed attributes")?;
    let value = |oid: ObjectIdentifier| -> Option<&Any> {
        let attr = attrs.iter().find(|a| a.oid == oid)?;
        match attr.values.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    };
    let content_type = value(CONTENT_TYPE)
        .and_then(|v| v.decode_as::<ObjectIdentifier>().ok())
        .ok_or("the token has no single content-type attribute")?;
    if content_type != TST_INFO {
        return Err("the token's content-type attribute is not TSTInfo".into());
    }
    let digest_alg = signer.digest_alg.oid;
    let want = digest(&digest_alg, tst_der)
        .ok_or_else(|| format!("the token uses the unsupported digest {digest_alg}"))?;
    let got = value(MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or("the token has no single message-digest attribute")?;
    if got.as_bytes() != want.as_slice() {
        return Err("the token's message-digest attribute is not the hash of its TSTInfo".into());
    }
    let (hash_alg, hash) = if let Some(v) = value(SIGNING_CERTIFICATE_V2) {
        ess_cert_hash(v, true)
    } else if let Some(v) = value(SIGNING_CERTIFICATE) {
        ess_cert_hash(v, false)
    } else {
        Err("the token names no signing certificate (ESS signingCertificate)".into())
    }?;
    if digest(&hash_alg, leaf_der).as_deref() != Some(hash.as_slice()) {
        return Err("the token's signing-certificate attribute names another certificate".into());
    }
    let message = attrs
        .to_der()
        .map_err(|e| format!("the signed attributes cannot be encoded: {e}"))?;
    let spki = &leaf.tbs_certificate.subject_public_key_info;
    let algorithm = verifier(&signer.signature_algorithm.oid, &digest_alg, spki)
        .ok_or("the token is signed with an unsupported algorithm")?;
    aws_lc_rs::signature::UnparsedPublicKey::new(algorithm, spki.subject_public_key.raw_bytes())
        .verify(&message, signer.signature.as_bytes())
        .map_err(|_| "the token's signature does not verify with its signer's certificate".into())
}

/// The first certificate hash of an ESS SigningCertificate (SHA-1) or SigningCertificateV2
/// (its hash algorithm, SHA-256 by default).
fn ess_cert_hash(v: &Any, v2: bool) -> Result<(ObjectIdentifier, Vec<u8>), String> {
    let parse = || -> x509_cert::der::Result<(ObjectIdentifier, Vec<u8>)> {
        let bytes = v.to_der()?;
        let mut r = SliceReader::new(&bytes)?;
        r.sequence(|r| {
            let first = r.sequence(|certs| {
                certs
                    .sequence(|id| {
                        let alg = if v2 && id.peek_tag()? == Tag::Sequence {
                            id.sequence(|a| {
                                let oid = ObjectIdentifier::decode(a)?;
                                while !a.is_finished() {
                                    Any::decode(a)?;
                                }
                                Ok(oid)
                            })?
                        } else if v2 {
                            SHA256
                        } else {
                            SHA1
                        };
                        let hash = OctetString::decode(id)?.into_bytes();
                        while !id.is_finished() {
                            Any::decode(id)?;
                        }
                        Ok((alg, hash))
                    })
                    .and_then(|found| {
                        while !certs.is_finished() {
                            Any::decode(certs)?;
                        }
                        Ok(found)
                    })
            })?;
            while !r.is_finished() {
                Any::decode(r)?;
            }
            Ok(first)
        })
    };
    parse().map_err(|e| format!("the token's signing-certificate attribute is malformed: {e}"))
}

/// The verifier of a SignerInfo signature algorithm with its digest and the signer's key.
fn verifier(
    signature_alg: &ObjectIdentifier,
    digest_alg: &ObjectIdentifier,
    spki: &x509_cert::spki::SubjectPublicKeyInfoOwned,
) -> Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> {
    use aws_lc_rs::signature as s;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    Some(match (signature_alg.to_string().as_str(), *digest_alg) {
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.11", SHA256) => {
            &s::RSA_PKCS1_2048_8192_SHA256
        }
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.12", SHA384) => {
            &s::RSA_PKCS1_2048_8192_SHA384
        }
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.13", SHA512) => {
            &s::RSA_PKCS1_2048_8192_SHA512
        }
        ("1.2.840.10045.4.3.2", SHA256) if curve == Some(super::P256) => &s::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", SHA384) if curve == Some(super::P384) => &s::ECDSA_P384_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", SHA512) if curve == Some(super::P521) => &s::ECDSA_P521_SHA512_ASN1,
        _ => return None,
    })
}

/// A TSA signing certificate: a critical extended key usage of timeStamping alone, as
/// RFC 3161 requires.
fn check_tsa_leaf(leaf: &Certificate) -> Result<(), String> {
    let subject = &leaf.tbs_certificate.subject;
    let eku = leaf
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == super::EXT_KEY_USAGE);
    let usages = eku
        .filter(|e| e.critical)
        .and_then(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok());
    match usages {
        Some(u) if u.0 == [TIME_STAMPING] => Ok(()),
        _ => Err(format!(
            "the TSA certificate {subject} has no critical extended key usage of timeStamping alone"
        )),
    }
}

/// The signer's chain, through the token's certificates, to a `roots` certificate (or the
/// signer is one), every certificate valid at `at` and every issuer a CA.
fn tsa_chain(
    leaf_der: &[u8],
    certs: &[(Vec<u8>, Certificate)],
    roots: &[Vec<u8>],
    at: SystemTime,
) -> Result<(), String> {
    let valid = |cert: &Certificate| {
        let v = &cert.tbs_certificate.validity;
        if at < v.not_before.to_system_time() || at > v.not_after.to_system_time() {
            return Err(format!(
                "the TSA certificate {} is valid only {} to {}, not at the time the timestamp states",
                cert.tbs_certificate.subject, v.not_before, v.not_after
            ));
        }
        Ok(())
    };
    let mut current = leaf_der.to_vec();
    for depth in 0..MAX_CHAIN {
        let cert = Certificate::from_der(&current).map_err(|e| e.to_string())?;
        valid(&cert)?;
        if roots.contains(&current) {
            return Ok(());
        }
        if let Some(root) = roots.iter().find(|r| super::cert_signed_by(&current, r)) {
            let root_cert = Certificate::from_der(root).map_err(|e| e.to_string())?;
            valid(&root_cert)?;
            super::check_issuer(&root_cert, depth).map_err(|r| r.to_string())?;
            return Ok(());
        }
        let Some((issuer_der, issuer)) = certs
            .iter()
            .find(|(der, _)| *der != current && super::cert_signed_by(&current, der))
        else {
            return Err(format!(
                "the TSA certificate {} does not chain to a certificate of the tsa trust store",
                cert.tbs_certificate.subject
            ));
        };
        super::check_issuer(issuer, depth).map_err(|r| r.to_string())?;
        current = issuer_der.clone();
    }
    Err(format!(
        "the TSA chain is longer than {MAX_CHAIN} certificates"
    ))
}

/// What Notation reads of a TSTInfo: the message imprint, genTime and accuracy.
struct TstInfo {
    imprint_algorithm: ObjectIdentifier,
    imprint: Vec<u8>,
    gen_time: SystemTime,
    accuracy: Duration,
}

impl TstInfo {
    fn parse(der: &[u8]) -> x509_cert::der::Result<TstInfo> {
        let mut r = SliceReader::new(der)?;
        let info = r.sequence(|r| {
            Int::decode(r)?; // version
            ObjectIdentifier::decode(r)?; // policy
            let (imprint_algorithm, imprint) = r.sequence(|m| {
                let alg = m.sequence(|a| {
                    let oid = ObjectIdentifier::decode(a)?;
                    while !a.is_finished() {
                        Any::decode(a)?;
                    }
                    Ok(oid)
                })?;
                Ok((alg, OctetString::decode(m)?.into_bytes()))
            })?;
            Int::decode(r)?; // serialNumber
            let gen_time = generalized_time(&Any::decode(r)?)?;
            let mut accuracy = Duration::ZERO;
            if !r.is_finished() && r.peek_tag()? == Tag::Sequence {
                accuracy = parse_accuracy(&Any::decode(r)?)?;
            }
            while !r.is_finished() {
                Any::decode(r)?;
            }
            Ok(TstInfo {
                imprint_algorithm,
                imprint,
                gen_time,
                accuracy,
            })
        })?;
        r.finish(info)
    }
}

/// A GeneralizedTime `YYYYMMDDHHMMSS[.fff]Z`, the fraction (which DER allows and TSAs
/// use) kept.
fn generalized_time(any: &Any) -> x509_cert::der::Result<SystemTime> {
    let bad = || Tag::GeneralizedTime.value_error();
    if any.tag() != Tag::GeneralizedTime {
        return Err(bad());
    }
    let text = std::str::from_utf8(any.value()).map_err(|_| bad())?;
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return Err(bad());
    }
    let n = |range: std::ops::Range<usize>| whole[range].parse::<i16>().map_err(|_| bad());
    let nanos = format!("{fraction:0<9}")
        .parse::<i32>()
        .map_err(|_| bad())?;
    let time = jiff::civil::DateTime::new(
        n(0..4)?,
        n(4..6)? as i8,
        n(6..8)? as i8,
        n(8..10)? as i8,
        n(10..12)? as i8,
        n(12..14)? as i8,
        nanos,
    )
    .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
    .map_err(|_| bad())?;
    Ok(SystemTime::from(time.timestamp()))
}

/// An Accuracy `{ seconds INTEGER, [0] millis, [1] micros }`, each optional.
fn parse_accuracy(any: &Any) -> x509_cert::der::Result<Duration> {
    let mut r = SliceReader::new(any.value())?;
    let mut total = Duration::ZERO;
    while !r.is_finished() {
        let item = Any::decode(&mut r)?;
        let number = item
            .value()
            .iter()
            .try_fold(0u64, |n, b| n.checked_mul(256).map(|n| n + u64::from(*b)))
            .filter(|_| item.value().len() <= 8)
            .ok_or_else(|| item.tag().value_error())?;
        total += match item.tag() {
            Tag::Integer => Duration::from_secs(number),
            Tag::ContextSpecific {
                number: TagNumber::N0,
                ..
            } => Duration::from_millis(number),
            Tag::ContextSpecific {
                number: TagNumber::N1,
                ..
            } => Duration::from_micros(number),
            other => return Err(other.value_error()),
        };
    }
    Ok(total)
}
