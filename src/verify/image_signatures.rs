//! An image's own signatures under a signature policy: every signature attached to the
//! digest the reference resolved to is checked, and the image passes when at least one
//! satisfies the policy (as cosign decides). The report names each signature: those that
//! count as `ok` subjects, the others (with why) as `rejected` subjects when none counts,
//! else as warnings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::approval::ImageSigners;
use crate::error::{Error, Result};
use crate::fsio::read_input;
use crate::hash::Digest;
use crate::oci::referrers::{cosign_signature_tag, discover, Attached, Discovery, Place};
use crate::oci::{Connection, ImageRef};
use crate::report::{Report, Subject, Verdict};
use crate::sign::cosign::{decode_base64, verify_simple_signing, CosignKey, SIGNATURE_ANNOTATION};
use crate::sign::rekor::{verify_set, RekorLogs, BUNDLE_ANNOTATION};

/// A loaded cosign key policy.
#[derive(Debug)]
pub struct KeyPolicy {
    key: CosignKey,
    key_file: PathBuf,
    /// The repository a signature must name; `None`: not checked.
    repository: Option<String>,
    /// The logs whose signed entry timestamps are checked, where a signature has one.
    rekor: RekorLogs,
}

/// The name of the subject that says why no signature counts.
pub const NO_SIGNATURE_SUBJECT: &str = "image signature";

impl KeyPolicy {
    /// Reads the key (a malformed one is an input error naming the file); the repository is
    /// the one given, else `reference`'s (an image layout has none).
    pub fn load(signers: &ImageSigners, reference: &ImageRef) -> Result<KeyPolicy> {
        let ImageSigners::CosignKey {
            key,
            repository,
            trusted_root,
        } = signers;
        let parsed = CosignKey::from_pem(&read_input(key)?)
            .map_err(|e| Error::input(key, format!("not a cosign public key: {e}")))?;
        let repository = repository.clone().or_else(|| match reference {
            ImageRef::Registry(image) => Some(format!("{}/{}", image.host, image.repository)),
            ImageRef::Layout(_) => None,
        });
        let rekor = match trusted_root {
            Some(path) => {
                let text = String::from_utf8(read_input(path)?)
                    .map_err(|_| Error::input(path, "is not UTF-8 JSON"))?;
                RekorLogs::from_trusted_root(&text).map_err(|e| Error::input(path, e))?
            }
            None => RekorLogs::public_good()
                .map_err(|e| Error::input(Path::new("<built-in trusted root>"), e))?,
        };
        Ok(KeyPolicy::new(parsed, key, repository, rekor))
    }

    pub fn new(
        key: CosignKey,
        key_file: &Path,
        repository: Option<String>,
        rekor: RekorLogs,
    ) -> KeyPolicy {
        KeyPolicy {
            key,
            key_file: key_file.to_path_buf(),
            repository,
            rekor,
        }
    }

    /// The policy in words, for a report's approval line.
    pub fn describe(&self) -> String {
        let mut text = format!("a cosign signature by the key {}", self.key_file.display());
        if let Some(repository) = &self.repository {
            text.push_str(&format!(" naming {repository}"));
        }
        text
    }
}

/// Finds the signatures of `resolved` in the repository or layout of `reference` and adds
/// what [`judge`] makes of them to `report`.
pub fn check_signatures(
    reference: &ImageRef,
    connection: &Connection,
    resolved: &Digest,
    policy: &KeyPolicy,
    report: &mut Report,
) -> Result<()> {
    let discovery = discover(reference, connection, resolved)?;
    judge(&discovery, resolved, policy, report);
    if policy.repository.is_none() {
        report.warnings.push(
            "an image layout names no repository, so the repository a signature names \
             (critical.identity.docker-reference) was not checked; give it with --signed-repository \
             (signed_repository in vouch.toml) to check it"
                .to_string(),
        );
    }
    Ok(())
}

/// Why a signature does not count.
enum Refused {
    /// It was checked and refused.
    Rejected(String),
    /// It could not be read.
    Unreadable(String),
}

/// One signature found, and what the policy made of it.
struct Judged {
    name: String,
    outcome: std::result::Result<String, Refused>,
}

/// Checks every signature `discovery` holds against `policy` and the `resolved` digest,
/// and adds one subject per signature (or, when one counts, warnings for the others) to
/// `report`, and a rejected subject when none counts.
pub fn judge(discovery: &Discovery, resolved: &Digest, policy: &KeyPolicy, report: &mut Report) {
    let mut judged: Vec<Judged> = Vec::new();
    for attached in &discovery.attached {
        judged.extend(judge_attached(attached, resolved, policy));
    }
    judged.extend(discovery.unreadable.iter().map(|message| Judged {
        name: "attached artifact".to_string(),
        outcome: Err(Refused::Unreadable(message.clone())),
    }));
    report.approval = match report.approval.as_str() {
        "" => policy.describe(),
        before => format!("{before}, {}", policy.describe()),
    };
    if judged.iter().any(|j| j.outcome.is_ok()) {
        for Judged { name, outcome } in judged {
            match outcome {
                Ok(message) => report
                    .subjects
                    .push(Subject::new(name, Verdict::Ok).message(message)),
                Err(Refused::Rejected(why) | Refused::Unreadable(why)) => report
                    .warnings
                    .push(format!("{name} was not counted: {why}")),
            }
        }
        return;
    }
    let mut unreadable = false;
    let found = judged.len();
    for Judged { name, outcome } in judged {
        let subject = match outcome {
            Err(Refused::Rejected(why)) => Subject::new(name, Verdict::Rejected).message(why),
            Err(Refused::Unreadable(why)) => {
                unreadable = true;
                Subject::new(name, Verdict::Unreadable).message(why)
            }
            Ok(_) => unreachable!("no signature counts here"),
        };
        report.subjects.push(subject);
    }
    let why = if found == 0 {
        format!(
            "no signature of {resolved} was found (looked for the cosign tag {} and OCI referrers)",
            cosign_signature_tag(resolved)
        )
    } else {
        format!("{found} signature(s) of {resolved} found; none satisfies the policy")
    };
    // Only what could not be read may stand between the image and a signature that counts.
    let verdict = if unreadable {
        Verdict::Unreadable
    } else {
        Verdict::Rejected
    };
    report.subjects.push(
        Subject::new(NO_SIGNATURE_SUBJECT, verdict)
            .expected(policy.describe())
            .message(why),
    );
}

/// The signatures one attached manifest holds, judged.
fn judge_attached(attached: &Attached, resolved: &Digest, policy: &KeyPolicy) -> Vec<Judged> {
    let legacy = attached.found.iter().find_map(|place| match place {
        Place::LegacyTag(tag) => Some(tag.as_str()),
        _ => None,
    });
    match legacy {
        Some(tag) if tag.ends_with(".sig") => attached
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let name = format!(
                    "cosign signature {tag} layer {} ({})",
                    i + 1,
                    layer.descriptor.digest
                );
                let outcome = match &layer.bytes {
                    Err(why) => Err(Refused::Unreadable(why.clone())),
                    Ok(payload) => judge_layer(
                        &layer.descriptor.annotations,
                        &layer.descriptor.media_type,
                        payload,
                        resolved,
                        policy,
                    )
                    .map_err(Refused::Rejected),
                };
                Judged { name, outcome }
            })
            .collect(),
        // cosign attestations are not signatures of the image.
        Some(_) => Vec::new(),
        None => {
            let kind = attached
                .artifact_type
                .as_deref()
                .unwrap_or("untyped artifact");
            let places: Vec<String> = attached.found.iter().map(ToString::to_string).collect();
            vec![Judged {
                name: format!("referrer {} ({kind})", attached.digest),
                outcome: Err(Refused::Rejected(format!(
                    "found by the {}; a cosign key policy counts only legacy .sig signatures (vouch does not check referrers under it yet)",
                    places.join(" and ")
                ))),
            }]
        }
    }
}

/// One legacy signature layer: the signature with the key over the payload naming the
/// resolved digest (and the repository), then its Rekor SET when it carries one.
fn judge_layer(
    annotations: &BTreeMap<String, String>,
    media_type: &str,
    payload: &[u8],
    resolved: &Digest,
    policy: &KeyPolicy,
) -> std::result::Result<String, String> {
    let signature = annotations.get(SIGNATURE_ANNOTATION).map(String::as_str);
    let signed = verify_simple_signing(
        media_type,
        payload,
        signature,
        &policy.key,
        resolved,
        policy.repository.as_deref(),
    )
    .map_err(|refusal| refusal.to_string())?;
    let mut text = format!("signed by the key {}", policy.key_file.display());
    if let Some(named) = signed.docker_reference {
        text.push_str(&format!("; names {named}"));
    }
    match annotations.get(BUNDLE_ANNOTATION) {
        None => text.push_str("; no Rekor entry"),
        Some(bundle) => {
            // The signature decoded: verify_simple_signing has just checked it.
            let signature = signature.and_then(decode_base64).unwrap_or_default();
            let logged = verify_set(bundle, &policy.rekor, payload, &signature, &policy.key)
                .map_err(|refusal| refusal.to_string())?;
            let time = jiff::Timestamp::from_second(logged.integrated_time)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| logged.integrated_time.to_string());
            text.push_str(&format!(
                "; logged in Rekor at index {} on {time}",
                logged.log_index
            ));
        }
    }
    Ok(text)
}
