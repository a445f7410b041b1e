//! Certificate Transparency (RFC 6962): the signed certificate timestamps (SCTs) a Fulcio
//! certificate embeds, proof that the CA submitted it to a CT log before issuing it. One
//! SCT must verify with the key a trusted root gives that log (valid at the SCT's time),
//! over the precertificate: the certificate's TBS without the SCT extension, bound to the
//! issuer's key.

use sigstore_trust_root::TrustedRoot;
use x509_cert::der::asn1::{ObjectIdentifier, OctetString};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use super::rekor::Log;

/// The extension holding the embedded SCT list.
const EMBEDDED_SCTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

/// The CT logs a trusted root names.
#[derive(Clone, Debug)]
pub struct CtLogs {
    logs: Vec<Log>,
}

impl CtLogs {
    /// The CT logs of a parsed trusted root (keys that are not ECDSA are left out).
    pub fn of(root: &TrustedRoot) -> CtLogs {
        CtLogs {
            logs: root
                .ctlogs
                .iter()
                .filter_map(|log| Log::of(&log.public_key, &log.log_id))
                .collect(),
        }
    }
}

/// One embedded SCT, as RFC 6962 §3.2 encodes it.
struct Sct<'a> {
    log_id: &'a [u8],
    /// Milliseconds since the epoch.
    timestamp: u64,
    extensions: &'a [u8],
    hash: u8,
    signature_algorithm: u8,
    signature: &'a [u8],
}

/// Reads TLS-encoded fields front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("it ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn number(&mut self, width: usize) -> Result<u64, String> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b)))
    }

    /// A field preceded by its length in `width` bytes.
    fn field(&mut self, width: usize) -> Result<&'a [u8], String> {
        let length = self.number(width)? as usize;
        self.take(length)
    }
}

/// The SCTs of an extension value (a DER OCTET STRING around the TLS-encoded list).
fn read_list(value: &[u8]) -> Result<Vec<Sct<'_>>, String> {
    // The value is borrowed from the certificate: read the OCTET STRING's header by hand.
    let inner = OctetString::from_der(value).map_err(|e| e.to_string())?;
    let offset = value.len() - inner.as_bytes().len();
    let mut list = Cursor(&value[offset..]);
    let mut entries = Cursor(list.field(2)?);
    if !list.0.is_empty() {
        return Err("bytes follow the list".into());
    }
    let mut scts = Vec::new();
    while !entries.0.is_empty() {
        let mut sct = Cursor(entries.field(2)?);
        if sct.take(1)? != [0] {
            continue; // Only v1 is defined; another version is no proof we can check.
        }
        let log_id = sct.take(32)?;
        let timestamp = sct.number(8)?;
        let extensions = sct.field(2)?;
        let hash = sct.take(1)?[0];
        let signature_algorithm = sct.take(1)?[0];
        let signature = sct.field(2)?;
        if !sct.0.is_empty() {
            return Err("bytes follow an SCT".into());
        }
        scts.push(Sct {
            log_id,
            timestamp,
            extensions,
            hash,
            signature_algorithm,
            signature,
        });
    }
    Ok(scts)
}

/// Checks that one SCT embedded in `certificate` (DER) verifies with a log of `logs`, for
/// the precertificate issued under one of `issuer_keys` (SubjectPublicKeyInfo DER: the
/// candidates for the certificate's issuer). The error says why none does.
pub fn verify_embedded(
    certificate: &[u8],
    issuer_keys: &[Vec<u8>],
    logs: &CtLogs,
) -> Result<(), String> {
    let cert = Certificate::from_der(certificate).map_err(|e| e.to_string())?;
    let extensions = cert.tbs_certificate.extensions.as_deref().unwrap_or(&[]);
    let value = extensions
        .iter()
        .find(|e| e.extn_id == EMBEDDED_SCTS)
        .map(|e| e.extn_value.as_bytes())
        .ok_or("the certificate embeds no signed certificate timestamp (SCT)")?;
    let scts = read_list(value).map_err(|e| format!("its SCT list is malformed: {e}"))?;
    let mut precert = cert.tbs_certificate.clone();
    let kept: Vec<_> = extensions
        .iter()
        .filter(|e| e.extn_id != EMBEDDED_SCTS)
        .cloned()
        .collect();
    // A precertificate with no other extension has none at all, not an empty list.
    precert.extensions = (!kept.is_empty()).then_some(kept);
    let tbs = precert.to_der().map_err(|e| e.to_string())?;
    let mut why = "the certificate embeds no SCT".to_string();
    for sct in &scts {
        let seconds = (sct.timestamp / 1000) as i64;
        let Some(log) = Log::find(&logs.logs, &hex::encode(sct.log_id), seconds) else {
            why = format!(
                "its SCT is from the CT log {}, which the trusted root does not name (at that time)",
                hex::encode(sct.log_id)
            );
            continue;
        };
        use aws_lc_rs::digest::{SHA256, SHA384, SHA512};
        let hash = match (sct.hash, sct.signature_algorithm) {
            (4, 3) => &SHA256,
            (5, 3) => &SHA384,
            (6, 3) => &SHA512,
            (hash, algorithm) => {
                why = format!("its SCT is signed with hash {hash} and algorithm {algorithm}, not ECDSA with SHA-2");
                continue;
            }
        };
        let verified = issuer_keys.iter().any(|issuer_key| {
            let signed = signed_data(sct, issuer_key, &tbs);
            let digest = aws_lc_rs::digest::digest(hash, &signed);
            log.key.verify_digest(&digest, sct.signature)
        });
        if verified {
            return Ok(());
        }
        why = format!(
            "its SCT from the CT log {} does not verify with the log's key for this certificate",
            hex::encode(sct.log_id)
        );
    }
    Err(why)
}

/// The bytes a CT log signs for a precertificate entry (RFC 6962 §3.2).
fn signed_data(sct: &Sct, issuer_key: &[u8], tbs: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(tbs.len() + 64);
    signed.push(0); // version v1
    signed.push(0); // signature type: certificate_timestamp
    signed.extend_from_slice(&sct.timestamp.to_be_bytes());
    signed.extend_from_slice(&1u16.to_be_bytes()); // entry type: precert_entry
    signed.extend_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, issuer_key).as_ref(),
    );
    signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
    signed.extend_from_slice(tbs);
    signed.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
    signed.extend_from_slice(sct.extensions);
    signed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_or_padded_sct_list_is_malformed() {
        // OCTET STRING { list length 5 { entry length 3 { version 0, ... } } }
        assert!(read_list(&[4, 5, 0, 3, 0, 1, 0]).is_err());
        assert!(read_list(&[4, 3, 0, 0, 9]).is_err());
        assert_eq!(read_list(&[4, 2, 0, 0]).unwrap().len(), 0);
    }
}
